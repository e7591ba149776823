"""The token heatmap: one answer's tokens coloured by the chosen token's probability, with its
inspector, drawn the same way wherever an answer's logprobs are shown (the Playground, Compare's
panes, History, an Experiments cell). A `st.components.v2` component (token_heatmap.js beside
this file, inline, no iframe): it gets the tokens as JSON and builds its DOM with textContent, so
model text never becomes HTML. Clicks, arrow keys, hovering and the "unsure" threshold work in
the browser without a rerun; "Continue with this token" comes back here as a trigger value.

A cell of the map is a `logprobs.pieces` piece: a token, or the tokens one UTF-8 character was
split across, shown joined as that character (its bytes are in the inspector)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import streamlit as st

from playground.analysis import logprobs as lp
from playground.client.schema import TokenLogprob, TopLogprob

# Probability buckets, most likely first: (lower bound, background). Fixed, never from data.
PALETTE: list[tuple[float, str]] = [
    (0.90, "#dcefdc"),
    (0.70, "#ecf4c4"),
    (0.50, "#fff1a8"),
    (0.30, "#ffd6a0"),
    (0.10, "#ffb394"),
    (0.00, "#ff8f85"),
]
UNKNOWN_COLOUR = "#d9d9d9"  # logprob -9999: outside the top 20
TEXT_COLOUR = "#1f2328"
THRESHOLD = 0.30  # tokens less likely than this are outlined and listed as "unsure"
LEGEND = "Chosen-token probability:"

_component = st.components.v2.component(
    "playground_token_heatmap", js=Path(__file__).with_name("token_heatmap.js").read_text(), isolate_styles=False)


@dataclass(frozen=True)
class Branching:
    """Whether the inspector offers "Continue with this token", and if not, why."""

    offered: bool
    reason: str = ""


def colour_for(probability: float | None) -> str:
    if probability is None or math.isnan(probability):
        return UNKNOWN_COLOUR
    for bound, colour in PALETTE:
        if probability >= bound:
            return colour
    return PALETTE[-1][1]


def probability(token: TokenLogprob | TopLogprob) -> float | None:
    return math.exp(min(token.logprob, 0.0)) if lp.known(token.logprob) else None


def heatmap_data(tokens: Sequence[TokenLogprob], ident: str, *, threshold: float = THRESHOLD,
                 branch: Branching | None = None, top_p: float | None = None,
                 entropies: Sequence[float] | None = None) -> dict:
    """What the component draws (token_heatmap.js says the shape). `ident` names the answer: the
    component rebuilds its DOM only when it changes. `entropies`: the token table's column, when
    the caller has it (one vectorised pass; entropy_of per token is slow)."""
    rows = []
    if entropies is None:
        entropies = lp.token_table(tokens)["entropy"].tolist()
    names: dict[tuple, tuple[str, str]] = {}  # an alternative's text and bytes: the same few come back

    def name(alt: TopLogprob) -> tuple[str, str]:
        key = (alt.token, None if alt.bytes is None else tuple(alt.bytes))
        found = names.get(key)
        if found is None:
            found = names[key] = (lp.token_text(alt), lp.bytes_hex(alt))
        return found

    for token, entropy in zip(tokens, entropies):
        row = {"t": lp.token_text(token), "lp": token.logprob if lp.known(token.logprob) else None,
               "p": probability(token), "b": lp.bytes_hex(token),
               "a": [[text, alt.logprob if lp.SENTINEL < alt.logprob < math.inf else None, hexes]
                     for alt in token.top_logprobs for text, hexes in (name(alt),)]}
        if not math.isnan(entropy):
            row["e"] = entropy
        sampled = lp.sampled_logprob(token)
        if sampled is not None:
            row["s"] = sampled
        tail = lp.tail_reason(token, top_p)
        if tail:
            row["tail"] = tail
        rows.append(row)
    cells = []
    for piece in lp.pieces(tokens):
        known = [rows[i]["lp"] for i in range(piece.start, piece.end)]
        joint = math.exp(min(math.fsum(known), 0.0)) if None not in known else None  # the whole character's
        cells.append([piece.text, joint, piece.start, piece.end])
    offer = branch or Branching(False)
    return {"id": f"{ident}:{len(tokens)}:{offer.offered}:{offer.reason}", "answer": ident, "cells": cells,
            "tokens": rows, "threshold": threshold, "palette": [list(entry) for entry in PALETTE],
            "unknown": UNKNOWN_COLOUR, "ink": TEXT_COLOUR, "legend": LEGEND,
            "branch": {"offered": offer.offered, "reason": offer.reason}}


def token_heatmap(tokens: Sequence[TokenLogprob], key: str, *, ident: str | None = None,
                  branch: Branching | None = None, top_p: float | None = None,
                  entropies: Sequence[float] | None = None) -> dict | None:
    """Draw the heatmap and its inspector. Returns {position, rank, token} on the run where the
    user pressed "Continue with this token" on an alternative, else None."""
    safe = "heatmap_" + re.sub(r"[^A-Za-z0-9_-]", "-", key)
    data = heatmap_data(tokens, ident or key, branch=branch, top_p=top_p, entropies=entropies)
    result = _component(key=safe, data=data, on_branch_change=_ignore)
    chosen = result.get("branch") if result is not None else None
    return chosen if isinstance(chosen, dict) else None


def _ignore() -> None:
    """The branch trigger is read from the component's result; the callback only declares it."""

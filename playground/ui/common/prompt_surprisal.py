"""The prompt's surprisal, under the answer, when the reply carried vLLM's `prompt_logprobs`:
each message's tokens coloured with the heatmap's palette (read the other way round: red is a
token of the prompt the model did not expect), its mean surprisal and its most surprising tokens.
Model and user text is escaped (playground.textsafe) before it reaches st.html."""

from __future__ import annotations

import math

import streamlit as st

from playground.analysis import logprobs as lp
from playground.analysis import surprisal
from playground.client.run import Run
from playground.textsafe import escape_html
from playground.ui.common import token_heatmap

LEGEND = ("Prompt surprisal, the same colours read the other way: red marks a token of the prompt the model did "
          "not expect (high surprisal, in bits: -log2 p), green one it saw coming.")


def show(run: Run) -> None:
    if not run.prompt_logprobs:
        return
    tokens = surprisal.prompt_tokens(run.prompt_logprobs)
    messages = run.request.to_wire()["messages"]
    st.markdown("##### How surprising the prompt was")
    blocks = []
    for found in surprisal.by_message(tokens, messages):
        mean = found.mean_bits
        top = ", ".join(f"{escape_html(lp.visible_token(t.text))} ({t.bits:.1f} bits)"
                        for t in found.most_surprising())
        head = (f"<b>{escape_html(found.role)} message {found.index + 1}</b> · "
                + (f"mean surprisal {mean:.2f} bits per token" if mean is not None else "no tokens found")
                + (f" · most surprising: {top}" if top else ""))
        spans = "".join(_span(t) for t in found.tokens)
        blocks.append(f'<div class="pg-prompt-message" style="margin:0.35rem 0;"><div style="font-size:0.85rem;'
                      f'margin-bottom:0.2rem;">{head}</div><div class="pg-prompt-tokens" style="white-space:pre-wrap;'
                      f'word-break:break-word;line-height:1.8;font-family:ui-monospace,monospace;font-size:0.85rem;">'
                      f'{spans}</div></div>')
    st.html("".join(blocks) + f'<div class="pg-prompt-legend" style="font-size:0.75rem;opacity:0.85;">'
            f"{escape_html(LEGEND)}</div>")


def _span(token: surprisal.PromptToken) -> str:
    bits = f"{token.bits:.2f} bits, p={_percent(token.probability)}" if token.bits is not None else "first token"
    expected = "; the model expected " + ", ".join(
        f"{lp.visible_token(t)} ({_percent(math.exp(min(v, 0.0)))})" for t, v in token.alternatives[:3]) \
        if token.alternatives else ""
    return (f'<span class="pg-prompt-token" title="{escape_html(bits + expected)}" '
            f'style="background:{token_heatmap.colour_for(token.probability)};color:{token_heatmap.TEXT_COLOUR};'
            f'border-radius:3px;margin:0 1px 0 0;">{escape_html(token.text) or "&#8203;"}</span>')


def _percent(p: float | None) -> str:
    return "?" if p is None else ("<0.1%" if p < 0.001 else f"{p:.1%}")

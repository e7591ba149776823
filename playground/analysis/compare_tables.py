"""The Compare page's tables, as pure functions (no Streamlit): the summary table with cost,
the differences from a baseline run, the token diff's headlines, and the Repeat tables. The
playground.ui.compare modules draw them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from playground import settings
from playground.analysis import logprobs as lp
from playground.analysis._fastdiff import opcodes
from playground.analysis.repeat import RepeatSummary, tokens_of, words
from playground.client.run import Run, prompt_preview, run_status
from playground.client.schema import ChatRequest, TokenLogprob
from playground.settings import Prices
from playground.textsafe import code_span, escape_markdown


def stats_line(run: Run) -> str:
    """One line: tokens, time to first token, total time, speed, finish_reason."""
    usage = run.usage
    parts = [f"{usage.prompt_tokens} + {usage.completion_tokens} = {usage.total_tokens} tokens" if usage is not None
             else f"{run.completion_tokens} tokens (counted)"]
    if run.ttft_s is not None:
        parts.append(f"first token {format_seconds(run.ttft_s)}")
    if run.total_s is not None:
        parts.append(f"total {format_seconds(run.total_s)}")
    if run.tokens_per_s:
        parts.append(f"{run.tokens_per_s:.1f} tok/s")
    if len(run.choices) > 1:
        parts.append(f"{len(run.choices)} choices")
    parts.append(run.finish_reason or ("cancelled" if run.cancelled else "no finish_reason"))
    return " · ".join(parts)


def format_seconds(value: float | None) -> str:
    """'312 ms' under a second, '2.41 s' from there, '—' when unknown."""
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def summary_row(label: str, run: Run, prices: Prices) -> dict[str, Any]:
    """Every number a summary or a baseline comparison may show for one run (None: not known)."""
    request, usage = run.request, run.usage
    return {
        "run": label,
        "status": run_status(run),
        "completion tokens": usage.completion_tokens if usage is not None else (run.completion_tokens or None),
        "latency (s)": run.total_s,
        "TTFT (s)": run.ttft_s,
        "tokens/s": run.tokens_per_s,
        "cost ($)": settings.cost_of(run, prices),
        "prompt tokens": usage.prompt_tokens if usage is not None else None,
        "total tokens": usage.total_tokens if usage is not None else None,
        "finish_reason": run.finish_reason or "",
        "setup": setup_line(run),
        "prompt": prompt_preview(run),
        "model": run.response_model or request.model,
        "endpoint": run.endpoint,
        "temperature": request.temperature,
    }


# The summary table's columns on screen, in this order: the numbers people compare first, then
# what they need to tell the runs apart (the setup in one cell). Chosen to fit beside the
# sidebar in a 1440 px window; the frame keeps the rest (model, endpoint, temperature) for code.
SHOWN = ("run", "status", "completion tokens", "latency (s)", "TTFT (s)", "tokens/s", "cost ($)", "prompt tokens",
         "finish_reason", "setup", "prompt")
COUNTS = ("completion tokens", "prompt tokens", "total tokens")  # whole numbers, or unknown


def setup_line(run: Run) -> str:
    """The endpoint and the settings that were set, in one short cell: 'SGP · T 0.2 · max 32 · seed 7'
    (the model is in the run's label)."""
    request = run.request
    values = (("T", request.temperature), ("top_p", request.top_p),
              ("max", request.max_completion_tokens or request.max_tokens), ("seed", request.seed),
              ("top_logprobs", request.top_logprobs if request.logprobs else None))
    parts = [run.endpoint] if run.endpoint else []
    parts += [f"{name} {value:g}" for name, value in values if value is not None]
    return " · ".join(parts)


def summary_frame(rows: list[tuple[str, Run]], prices: Prices) -> pd.DataFrame:
    frame = pd.DataFrame([summary_row(label, run, prices) for label, run in rows])
    if not prices and "cost ($)" in frame:
        frame = frame.drop(columns=["cost ($)"])
    return whole_numbers(frame)


def shown_columns(frame: pd.DataFrame) -> list[str]:
    """The summary's columns to draw: SHOWN that the frame has, the prompt only when the runs
    were asked different things (else one caption says it: shared_prompt)."""
    return [c for c in SHOWN if c in frame and (c != "prompt" or shared_prompt(frame) is None)]


def shared_prompt(frame: pd.DataFrame) -> str | None:
    """The first words every run of the summary was asked, when they were all asked the same."""
    prompts = set(frame["prompt"]) if "prompt" in frame else set()
    return prompts.pop() if len(prompts) == 1 else None


def whole_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts as integers with a gap where unknown (pandas would make them floats: 3.0)."""
    for column in COUNTS:
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


DELTA_METRICS = ("completion tokens", "latency (s)", "TTFT (s)", "tokens/s", "cost ($)")


def _signed(value: float | None, base: float | None, digits: int) -> str:
    if value is None or base is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    delta = value - base
    text = f"{delta:+.{digits}f}"
    if base:
        text += f" ({delta / base:+.0%})"
    return text


def changed_fields(a: ChatRequest, b: ChatRequest) -> list[str]:
    """Request fields that differ (the wire bodies, stream settings left out)."""
    return sorted(key for key in b.changes_from(a) if key not in ("stream", "stream_options"))


def divergence(a: Run, b: Run) -> str:
    """Where two answers first differ, in tokens when both have logprobs, else in words (of
    both: a token list is never compared with a word list)."""
    (tokens_a, server_a), (tokens_b, server_b) = tokens_of(a), tokens_of(b)
    unit = "token" if server_a and server_b else "word"
    if unit == "word":
        tokens_a, tokens_b = words(a.text), words(b.text)
    where = lp.first_difference(tokens_a, tokens_b)
    return "identical" if where is None else f"{unit} {where}"


def delta_frame(baseline: Run, others: list[tuple[str, Run]], prices: Prices) -> pd.DataFrame:
    """Each other run against the baseline: metric deltas, the changed request fields and where
    the answers diverge."""
    base = summary_row("", baseline, prices)
    digits = {"completion tokens": 0, "TTFT (s)": 3, "latency (s)": 3, "tokens/s": 1, "cost ($)": 6}
    rows = []
    for label, run in others:
        row = summary_row(label, run, prices)
        out: dict[str, Any] = {"run": label}
        for metric in DELTA_METRICS:
            if metric == "cost ($)" and not prices:
                continue
            out[f"Δ {metric}"] = _signed(row[metric], base[metric], digits[metric])
        out["same text"] = run.text == baseline.text
        out["diverges at"] = divergence(baseline, run)
        out["changed fields"] = ", ".join(changed_fields(baseline.request, run.request)) or "(none)"
        rows.append(out)
    return pd.DataFrame(rows)


def token_diff(a: Run, b: Run, tokens_a: Sequence[TokenLogprob] | None = None,
               tokens_b: Sequence[TokenLogprob] | None = None) -> pd.DataFrame:
    """logprobs.diff_table, per token when both runs share a tokenizer, else per byte. `tokens_a`
    and `tokens_b`: the stretches to compare, when not the whole answers (a branch's)."""
    tokens_a = a.choices[0].logprobs if tokens_a is None else tokens_a
    tokens_b = b.choices[0].logprobs if tokens_b is None else tokens_b
    models = (a.response_model or a.request.model, b.response_model or b.request.model)
    same = lp.same_tokenizer(tokens_a, tokens_b, *models)
    frame = lp.diff_table(tokens_a, tokens_b, mode="token" if same else "byte")
    if frame.attrs["mode"] == "token":  # a character split across tokens reads as that character
        for side, tokens in (("a", tokens_a), ("b", tokens_b)):
            shown = lp.shown_tokens(tokens) + [None]  # index -1: the side has no token there
            frame[f"token_{side}"] = [shown[i] for i in frame[f"pos_{side}"].fillna(-1).astype(int).tolist()]
    frame.attrs["models"] = models
    return frame


@dataclass(frozen=True)
class TextSegment:
    """A stretch of two aligned answers: the same text ("equal"), or what each side has there."""

    op: str  # equal | replace | delete (only A has text) | insert (only B has text)
    a: str
    b: str


def text_diff(a: Sequence[TokenLogprob], b: Sequence[TokenLogprob], start: int = 0) -> list[TextSegment]:
    """The two answers side by side as text, aligned on their pieces (tokens, a split character
    joined), from token `start` of both on (a branch's point; the text before it is the same)."""
    pieces_a = [p for p in lp.pieces(a) if p.start >= start]
    pieces_b = [p for p in lp.pieces(b) if p.start >= start]
    texts_a, texts_b = [p.text for p in pieces_a], [p.text for p in pieces_b]
    return [TextSegment(tag, "".join(texts_a[i1:i2]), "".join(texts_b[j1:j2]))
            for tag, i1, i2, j1, j2 in opcodes(texts_a, texts_b)]


def diff_headlines(diff: pd.DataFrame, label_a: str, label_b: str) -> list[str]:
    """Plain sentences (markdown, model text escaped) that say what the diff table shows."""
    lines = []
    model_a, model_b = diff.attrs.get("models", ("", ""))
    byte_mode = diff.attrs.get("mode") == "byte"
    if byte_mode:
        lines.append(f"**These runs used different tokenizers** ({escape_markdown(model_a)} and "
                     f"{escape_markdown(model_b)}): their tokens cannot be matched one to one, so the texts are "
                     "compared byte by byte, cut at both sides' token boundaries.")
    where = diff.attrs.get("first_divergence")
    changed = diff[diff["op"] != "equal"]
    if where is None:
        lines.append("The two answers are **identical**, token for token.")
    else:
        unit = "byte" if byte_mode else "token"
        first = changed.iloc[0] if len(changed) else None
        if first is not None:
            a_has = _shown(first["token_a"], first["logprob_a"])
            b_has = _shown(first["token_b"], first["logprob_b"])
            lines.append(f"**First divergence at {unit} {where}**: A has {a_has}, B has {b_has}.")
        else:
            lines.append(f"**First divergence at {unit} {where}**.")
    equal = diff[diff["op"] == "equal"]
    overlap = diff["topk_overlap"].mean()
    stats = [f"{len(equal)} of {len(diff)} aligned rows equal"]
    if len(equal) and equal["delta"].notna().any():
        stats.append(f"mean |Δ logprob| on equal tokens {equal['delta'].abs().mean():.3f}")
    if not math.isnan(overlap):
        stats.append(f"mean top-k overlap {overlap:.0%}")
    lines.append("; ".join(stats) + ".")
    return lines


def _shown(token: Any, logprob: Any) -> str:
    if token is None or (isinstance(token, float) and math.isnan(token)):
        return "nothing (the answer ended)"
    text = code_span(lp.visible_token(str(token)))  # shown verbatim: no escapes inside a code span
    if logprob is not None and not (isinstance(logprob, float) and math.isnan(logprob)):
        p = math.exp(min(float(logprob), 0.0))
        text += f" (p={p:.1%})" if p >= 0.0005 else " (p<0.1%)"
    return text


def groups_frame(summary: RepeatSummary) -> pd.DataFrame:
    return pd.DataFrame([
        {"answer": n, "count": group.count, "share": group.count / summary.k if summary.k else None,
         "samples": ", ".join(str(summary.samples[s].number) for s in group.samples),
         "text": group.text[:200].replace("\n", "⏎ ") + ("..." if len(group.text) > 200 else "")}
        for n, group in enumerate(summary.groups, 1)
    ])


def samples_frame(summary: RepeatSummary) -> pd.DataFrame:
    """One row per sample. Its length is the server's count (usage) when it sent one; the fork
    position is in the unit the samples were compared in, which the column names."""
    unit = "token" if summary.server_tokens else "word"
    frame = pd.DataFrame([
        {"sample": s.number, "answer": s.group, "status": run_status(s.run),
         "completion tokens": s.run.usage.completion_tokens if s.run.usage is not None else None,
         "total logprob": s.total_logprob, f"forks from sample 1 at ({unit})": s.forks_from_first_at,
         "finish_reason": s.run.finish_reason or "", "TTFT (s)": s.run.ttft_s, "latency (s)": s.run.total_s}
        for s in summary.samples
    ])
    fork = f"forks from sample 1 at ({unit})"
    if fork in frame:
        frame[fork] = frame[fork].astype("Int64")
    return whole_numbers(frame)

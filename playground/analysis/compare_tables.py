"""The Compare page's tables, as pure functions (no Streamlit): a pane's request from its
widgets, the summary table with cost, the differences from a baseline run, the token diff's
headlines, and the Repeat tables. The playground.ui.compare_* modules draw them."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from playground import settings
from playground.analysis import logprobs as lp
from playground.analysis.repeat import RepeatSummary, tokens_of, words
from playground.client.run import Run
from playground.client.schema import ChatRequest
from playground.settings import Prices
from playground.textsafe import code_span, escape_markdown


def values_from_body(body: dict[str, Any]) -> dict[str, Any]:
    """The pane widgets' values for a request body (None: not set, the server's default)."""
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return {
        "model": body.get("model") or "",
        "temperature": _float(body.get("temperature")),
        "top_p": _float(body.get("top_p")),
        "max_tokens": int(max_tokens) if max_tokens else None,
        "seed": int(body["seed"]) if body.get("seed") is not None else None,
        "logprobs": bool(body.get("logprobs")),
        "top_logprobs": int(body["top_logprobs"]) if body.get("top_logprobs") is not None else None,
    }


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def build_request(base: dict[str, Any], messages: list[dict[str, Any]], values: dict[str, Any]) -> ChatRequest:
    """A pane's request: its base body, the messages, the widget overrides; always streamed
    with usage (time to first token and token counts are what Compare is for)."""
    body = {key: value for key, value in base.items() if key != "messages"}
    body["messages"] = messages
    body["model"] = (values.get("model") or "").strip()
    for name in ("temperature", "top_p", "seed"):
        _put(body, name, values.get(name))
    only_old_field = "max_tokens" in base and "max_completion_tokens" not in base
    length_field = "max_tokens" if only_old_field else "max_completion_tokens"
    _put(body, length_field, values.get("max_tokens"))
    if values.get("logprobs"):
        body["logprobs"] = True
        _put(body, "top_logprobs", values.get("top_logprobs") or None)
    else:
        body.pop("logprobs", None)
        body.pop("top_logprobs", None)
    body["stream"] = True
    options = dict(body.get("stream_options") or {})
    options.setdefault("include_usage", True)
    body["stream_options"] = options
    return ChatRequest.from_wire(body)


def _put(body: dict[str, Any], name: str, value: Any) -> None:
    if value is None:
        body.pop(name, None)
    else:
        body[name] = value


def run_status(run: Run) -> str:
    if run.error is not None:
        return f"error: {run.error.status_code or ''} {run.error.kind}".replace("  ", " ")
    if run.cancelled:
        return "stopped (partial)"
    if run.partial:
        return "cut off (partial)"
    return "ok"


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
    request, usage = run.request, run.usage
    return {
        "run": label,
        "endpoint": run.endpoint,
        "model": run.response_model or request.model,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max tokens": request.max_completion_tokens or request.max_tokens,
        "seed": request.seed,
        "prompt tokens": usage.prompt_tokens if usage is not None else None,
        "completion tokens": run.completion_tokens,
        "total tokens": usage.total_tokens if usage is not None else None,
        "TTFT (s)": run.ttft_s,
        "total (s)": run.total_s,
        "tokens/s": run.tokens_per_s,
        "finish_reason": run.finish_reason or ("cancelled" if run.cancelled else None),
        "cost ($)": settings.cost_of(run, prices),
        "status": run_status(run),
    }


def summary_frame(rows: list[tuple[str, Run]], prices: Prices) -> pd.DataFrame:
    frame = pd.DataFrame([summary_row(label, run, prices) for label, run in rows])
    if not prices and "cost ($)" in frame:
        frame = frame.drop(columns=["cost ($)"])
    return frame


DELTA_METRICS = ("completion tokens", "total tokens", "TTFT (s)", "total (s)", "tokens/s", "cost ($)")


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
    x, y = a.to_wire(), b.to_wire()
    ignore = {"stream", "stream_options"}
    return sorted(key for key in set(x) | set(y) if key not in ignore and x.get(key) != y.get(key))


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
    digits = {"completion tokens": 0, "total tokens": 0, "TTFT (s)": 3, "total (s)": 3, "tokens/s": 1, "cost ($)": 6}
    rows = []
    for label, run in others:
        row = summary_row(label, run, prices)
        out: dict[str, Any] = {"run": label}
        for metric in DELTA_METRICS:
            if metric == "cost ($)" and not prices:
                continue
            out[f"Δ {metric}"] = _signed(row[metric], base[metric], digits[metric])
        out["changed fields"] = ", ".join(changed_fields(baseline.request, run.request)) or "(none)"
        out["same text"] = run.text == baseline.text
        out["diverges at"] = divergence(baseline, run)
        rows.append(out)
    return pd.DataFrame(rows)


def token_diff(a: Run, b: Run) -> pd.DataFrame:
    """logprobs.diff_table, per token when both runs share a tokenizer, else per byte."""
    tokens_a, tokens_b = a.choices[0].logprobs, b.choices[0].logprobs
    models = (a.response_model or a.request.model, b.response_model or b.request.model)
    same = lp.same_tokenizer(tokens_a, tokens_b, *models)
    frame = lp.diff_table(tokens_a, tokens_b, mode="token" if same else "byte")
    frame.attrs["models"] = models
    return frame


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
    return pd.DataFrame([
        {"sample": s.number, "answer": s.group, "tokens": s.tokens, "total logprob": s.total_logprob,
         "forks from sample 1 at": s.forks_from_first_at, "finish_reason": s.run.finish_reason,
         "TTFT (s)": s.run.ttft_s, "total (s)": s.run.total_s, "status": run_status(s.run)}
        for s in summary.samples
    ])

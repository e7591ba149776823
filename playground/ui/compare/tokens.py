"""Compare's token views: each run's logprob table side by side with a chart of the chosen
token's probability along each answer, and the token-aligned diff of two runs (per byte when
their tokenizers differ)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.analysis import compare_tables
from playground.analysis import logprobs as lp
from playground.client.run import Run
from playground.client.schema import TokenLogprob
from playground.textsafe import escape_html, escape_markdown
from playground.ui.common import run_view, widget_sync
from playground.ui.compare import state
from playground.ui.compare.panes import pane_label

TOKEN_COLUMNS = {
    "probability": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0, format="percent"),
    "logprob": st.column_config.NumberColumn(format="%.3f"),
    "entropy": st.column_config.NumberColumn("entropy (bits)", format="%.2f"),
}
DIFF_COLUMNS = {
    "logprob_a": st.column_config.NumberColumn(format="%.3f"),
    "logprob_b": st.column_config.NumberColumn(format="%.3f"),
    "delta": st.column_config.NumberColumn("Δ logprob (B − A)", format="%.3f"),
    "topk_overlap": st.column_config.NumberColumn("top-k overlap", format="%.2f"),
}


def _tokens(run: Run) -> list:
    return run.choices[0].logprobs if run.choices else []


def logprob_section(results: dict[int, Run]) -> None:
    with_lp = {i: run for i, run in results.items() if _tokens(run)}
    st.subheader("Logprobs")
    if not with_lp:
        st.caption("Set logprobs to true in a pane's setup (its Logprobs group) and run again to see token tables "
                   "side by side.")
        return
    series = {pane_label(i, run): _tokens(run) for i, run in with_lp.items()}
    st.line_chart(lp.probability_chart_data(series), x_label="token position", y_label="chosen-token probability")
    for (i, run), column in zip(with_lp.items(), st.columns(len(with_lp))):
        with column:
            tokens = _tokens(run)
            perplexity = lp.perplexity(tokens)
            st.caption(escape_markdown(pane_label(i, run))
                       + (f" · perplexity {perplexity:.3g}" if perplexity is not None else ""))
            table = lp.token_table(tokens)
            table["token"] = [lp.visible_token(text) for text in lp.shown_tokens(tokens)]
            table.insert(2, "bytes", [lp.bytes_hex(token) for token in tokens])
            st.dataframe(table, hide_index=True, height=320, key=f"cmp.lp.{i}", column_config=TOKEN_COLUMNS)


def diff_section(results: dict[int, Run]) -> None:
    if len(results) < 2:
        return
    st.subheader("Token diff")
    options = list(results)
    labels = {i: pane_label(i, results[i]) for i in options}
    widget_sync.keep_valid(state.DIFF_A, options, options[0])
    widget_sync.keep_valid(state.DIFF_B, options, options[1])
    left, right = st.columns(2)
    a = left.selectbox("Run A", options, key=widget_sync.key(state.DIFF_A), format_func=labels.get,
                         persist_state=state.KEEP)
    b = right.selectbox("Run B", options, key=widget_sync.key(state.DIFF_B), format_func=labels.get,
                         persist_state=state.KEEP)
    if a == b:
        st.caption("Pick two different runs.")
        return
    run_a, run_b = results[a], results[b]
    if not (_tokens(run_a) and _tokens(run_b)):
        where = compare_tables.divergence(run_a, run_b)
        st.info("The token diff needs logprobs on both runs: set logprobs in both panes' setup and run again. "
                + ("Their texts are identical." if where == "identical" else f"Their texts first differ at {where}."))
        return
    tokens_a, tokens_b, note = _from_branch_point(run_a, run_b)
    diff = compare_tables.token_diff(run_a, run_b, tokens_a, tokens_b)
    if note:
        st.caption(f"A branch and the run it came from: both are compared {escape_markdown(note)}, the branch's "
                   "token first (the text before it is the same). Positions count from there.")
    for line in compare_tables.diff_headlines(diff, labels[a], labels[b]):
        st.markdown(line)
    side_by_side(compare_tables.text_diff(tokens_a, tokens_b), note, labels[a], labels[b])
    shown = diff[diff["op"] != "equal"] if st.checkbox("Only rows that differ", key=state.DIFF_ONLY) else diff
    shown = shown.assign(token_a=shown["token_a"].map(_visible), token_b=shown["token_b"].map(_visible))
    st.dataframe(shown, hide_index=True, key="cmp.diff_table", column_config=DIFF_COLUMNS)


def _visible(token: Any) -> Any:
    return lp.visible_token(token) if isinstance(token, str) else token


# Marks for the side-by-side view: what only A has there, what only B has (fixed, never from data).
MARK_A = "background:#ffd7d5;text-decoration:line-through;text-decoration-color:rgba(130,7,30,0.5);"
MARK_B = "background:#ccffd8;"


def _from_branch_point(run_a: Run, run_b: Run) -> tuple[list[TokenLogprob], list[TokenLogprob], str]:
    """The two answers' tokens to compare; a branch and its original from the branch point on
    (the branch's answer is what followed the token it took there, which leads its side)."""
    start = state.branch_point(run_a, run_b)
    if start is None:
        return _tokens(run_a), _tokens(run_b), ""
    note = f"from the branch point, token {start}"
    if run_b.branched_from is not None:
        return _tokens(run_a)[start:], [_taken(run_a, run_b, start), *_tokens(run_b)], note
    return [_taken(run_b, run_a, start), *_tokens(run_a)], _tokens(run_b)[start:], note


def _taken(original: Run, branch: Run, start: int) -> TokenLogprob:
    """The alternative the branch took at `start`, with the original's logprob for it there."""
    token = branch.branched_from.token
    alternatives = _tokens(original)[start].top_logprobs if start < len(_tokens(original)) else []
    for alt in alternatives:
        if lp.token_text(alt) == token:
            return TokenLogprob(token=alt.token, logprob=alt.logprob, bytes=alt.bytes)
    return TokenLogprob(token=token, logprob=lp.SENTINEL)


def side_by_side(segments: list[compare_tables.TextSegment], note: str, label_a: str, label_b: str) -> None:
    """The two answers as text in two columns, aligned, each difference marked on its side
    (model text escaped: it never becomes markup)."""
    st.markdown("###### The answers side by side" + (f" ({escape_markdown(note)})" if note else ""))
    for column, side, label, mark in zip(st.columns(2), ("a", "b"), (label_a, label_b), (MARK_A, MARK_B)):
        parts = []
        for segment in segments:
            text = escape_html(getattr(segment, side))
            if not text:
                continue
            marked = f'<span class="pg-diff-{side}" style="{mark}">{text}</span>'
            parts.append(text if segment.op == "equal" else marked)
        column.caption(escape_markdown(label))
        column.html(f'<div class="pg-text-diff pg-text-diff-{side}" style="{run_view.ANSWER_STYLE}font-size:0.9rem;">'
                    f'{"".join(parts)}</div>')

"""Compare's summary under the panes: one row per run (how it ended, completion tokens, latency,
time to first token, tokens per second, cost when there is a price table, prompt tokens,
finish_reason, its setup, what it was asked), and a baseline to pin: the other runs then show
their differences from it."""

from __future__ import annotations

import streamlit as st

from playground.analysis import compare_tables
from playground.client.run import Run
from playground.textsafe import escape_markdown
from playground.ui.common import widget_sync
from playground.ui.compare import state
from playground.ui.compare.panes import pane_label

NO_PRICES = ("No prices: add a [prices] table to .streamlit/secrets.toml (model = [input, output], dollars per "
             "million tokens) to see each run's cost.")

# Widths that fit every shown column beside the sidebar in a 1440 px window (about 980 px of
# table): numbers at the width of their header, text cut short (the panes show it whole).
SUMMARY_CONFIG = {
    "run": st.column_config.TextColumn(width=175),
    "status": st.column_config.TextColumn(width=65, help="ok, failed, partial (cut off) or stopped (by you)."),
    "completion tokens": st.column_config.NumberColumn(
        width=125, help="The server's count (its usage), else the tokens counted as they streamed."),
    "latency (s)": st.column_config.NumberColumn(format="%.3f", width=85,
                                                 help="From sending the request to the last byte."),
    "TTFT (s)": st.column_config.NumberColumn(format="%.3f", width=70, help="Time to the first token."),
    "tokens/s": st.column_config.NumberColumn(format="%.1f", width=70),
    "cost ($)": st.column_config.NumberColumn(format="%.6f", width=80),
    "prompt tokens": st.column_config.NumberColumn(width=105),
    "finish_reason": st.column_config.TextColumn("finish", width=70, help="The server's finish_reason."),
    "setup": st.column_config.TextColumn(width=120, help="The endpoint, then the settings that were set."),
    "prompt": st.column_config.TextColumn(width=95, help="The first words of the last user message."),
}
DELTA_CONFIG = {
    "run": st.column_config.TextColumn(width=150),
    "Δ completion tokens": st.column_config.TextColumn(width=145),
    "Δ latency (s)": st.column_config.TextColumn(width=105),
    "Δ TTFT (s)": st.column_config.TextColumn(width=95),
    "Δ tokens/s": st.column_config.TextColumn(width=100),
    "Δ cost ($)": st.column_config.TextColumn(width=95),
    "same text": st.column_config.CheckboxColumn(width=80),
    "diverges at": st.column_config.TextColumn(width=85),
    "changed fields": st.column_config.TextColumn(width=110),
}


def summary(results: dict[int, Run]) -> None:
    if not results:
        st.caption("Run the panes to see tokens, latency and cost side by side.")
        return
    labels = {i: pane_label(i, run) for i, run in results.items()}
    prices = state.prices()
    frame = compare_tables.summary_frame([(labels[i], run) for i, run in results.items()], prices)
    asked = compare_tables.shared_prompt(frame)
    if asked:
        st.caption(f"Every run was asked: {escape_markdown(asked)}")
    st.dataframe(frame, hide_index=True, key="cmp.summary", placeholder="", column_config=SUMMARY_CONFIG,
                 column_order=compare_tables.shown_columns(frame))
    if not prices:
        st.caption(NO_PRICES)
    if len(results) < 2:
        return
    options = [None, *results]
    widget_sync.keep_valid(state.BASELINE, options, None)
    baseline = st.selectbox("Baseline", options, key=widget_sync.key(state.BASELINE),
                            format_func=lambda i: "(none)" if i is None else labels[i],
                            help="Pin one run: the others show their differences from it.", persist_state=state.KEEP)
    if baseline is not None:
        others = [(labels[i], run) for i, run in results.items() if i != baseline]
        st.caption(f"Differences from the baseline, {escape_markdown(labels[baseline])}:")
        st.dataframe(compare_tables.delta_frame(results[baseline], others, prices), hide_index=True,
                     key="cmp.deltas", placeholder="", column_config=DELTA_CONFIG)

"""Compare's summary under the panes: one row per run (model, key parameters, tokens, time to
first token, total time, tokens per second, finish_reason, cost when there is a price table),
and a baseline to pin: the other runs then show their differences from it."""

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


def summary(results: dict[int, Run]) -> None:
    if not results:
        st.caption("Run the panes to see tokens, latency and cost side by side.")
        return
    labels = {i: pane_label(i, run) for i, run in results.items()}
    prices = state.prices()
    frame = compare_tables.summary_frame([(labels[i], run) for i, run in results.items()], prices)
    st.dataframe(frame, hide_index=True,
                 column_config={"TTFT (s)": st.column_config.NumberColumn(format="%.3f"),
                                "total (s)": st.column_config.NumberColumn(format="%.3f"),
                                "tokens/s": st.column_config.NumberColumn(format="%.1f"),
                                "cost ($)": st.column_config.NumberColumn(format="%.6f")})
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
        st.dataframe(compare_tables.delta_frame(results[baseline], others, prices), hide_index=True)

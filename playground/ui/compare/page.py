"""Compare: 2 to 4 panes side by side, streamed together, then a summary, logprobs, a token
diff and a Repeat check. This module draws the page from its parts:

- playground.ui.compare.state: endpoints, run store, the running batches and their harvest;
- playground.ui.compare.conversation: the shared conversation (and a pane's own) and its editor;
- playground.ui.compare.sources: a pane's setup in session state, loaded from the shared setup,
  a preset, a past run or History (`send_to_compare`);
- playground.ui.compare.panes: the pane widgets, the request each pane makes, the pane drawn;
- playground.ui.common.live_view: the answer boxes that show streams as they arrive;
- playground.ui.compare.summary, compare_tokens, compare_repeat: the views under the panes.
"""

from __future__ import annotations

import streamlit as st

from playground.ui.common import branches, live_view, notices
from playground.ui.compare import conversation, panes, sources, state
from playground.ui.compare.repeat import repeat_section
from playground.ui.compare.summary import summary
from playground.ui.compare.tokens import diff_section, logprob_section


def run_all() -> bool:
    """Run all's on_click (and a rerun from the shared conversation): False when refused."""
    chosen = panes.included()
    if not chosen:
        state.refused("Tick 'Include in Run all' in at least one pane.")
        return False
    items, presets, problems = panes.prepare(chosen)
    if problems:
        state.refused(*problems)
        return False
    state.start_run_all({i: slot for slot, i in enumerate(chosen)}, items, presets)
    return True


def render() -> None:
    state.init_state()
    conversation.init_shared()
    state.harvest()
    if state.take_run_all_request() and not run_all():  # Regenerate... refused: the cut messages come back
        branches.give_up(conversation.EDITOR)
    sources.take_incoming()
    current = state.batch()
    if current is not None:  # Run all's rerun: the panes' first text before the page is redrawn
        live_view.first_text_first({panes.place(i): (current, slot) for i, slot in state.batch_slots().items()})
    st.title("Compare")
    st.caption("One conversation through 2 to 4 setups side by side: text, usage, latency, logprobs.")
    conversation.shared_conversation()
    controls()
    shown = list(range(state.pane_count()))
    recent = sources.recent_runs()  # once for every pane's picker: a query of the run store
    for i, column in zip(shown, st.columns(len(shown), gap="medium")):
        with column:
            panes.pane(i, recent)
    results = {i: run for i, run in sorted(state.results().items()) if i in shown}
    st.divider()
    st.subheader("Summary")
    with st.container():
        if state.batch() is not None:
            live_view.replace_stale()
            st.caption("Streaming... the table appears when every pane has finished.")
        else:
            with st.container():
                summary(results)
                if results:
                    logprob_section(results)
                    diff_section(results)
    repeat_section(shown)


def controls() -> None:
    busy = state.running()
    left, middle, right = st.columns([2, 1, 1], vertical_alignment="bottom")
    left.number_input("Panes", state.MIN_PANES, state.MAX_PANES, step=1, key=state.PANES, disabled=busy,
                      persist_state=state.KEEP)
    middle.button("Run all", key="cmp.run_all", type="primary", disabled=busy, on_click=run_all, width="stretch")
    if busy:
        right.button("Stop generating", key="cmp.stop", on_click=state.stop_all, width="stretch")
    notices.show(state.NOTICES)

"""Live views of a running playground.runs.batch.Batch: parallel fragments that poll it and redraw,
so several answers fill at the same time. The first fragment to see the whole batch done
triggers the one full rerun that shows the results. Every page draws live text with them: the
Playground's run, Compare's panes and Repeat, and History's rerun. In a fragment's own rerun (the
Playground's Run bar) Streamlit runs them inline, not in parallel: a view then ends its run as
soon as a click waits for it (_a_click_waits), and the run that click starts draws the batch again."""

from __future__ import annotations

import time

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType

from playground.runs.batch import Batch
from playground.ui.common import run_view

POLL_S = 0.05  # redraw streaming text at most ~20 times a second
LOOK_S = 0.004  # between two looks at a slot with nothing new: new text is drawn within this


def replace_stale() -> None:
    """Put an element where a finished view's block was, so the old view goes at once.

    A page run that starts parallel fragments ends only when they do, and Streamlit keeps the
    previous run's elements on screen (faded) until the run ends: a pane would show its old
    answer under the new stream. An element in the old block's place drops the block."""
    st.empty()


@st.fragment(parallel=True)
def live_output(current: Batch, slot: int, choices: int = 1, streaming: bool = True) -> None:
    """Redraw one slot's text while it streams, in parallel with the other panes. `choices`:
    the request's n (each choice under its caption); `streaming` False for a request that
    waits for the whole answer (no cursor). The batch runs on whatever this fragment does: a
    rerun that interrupts it draws the same batch again."""
    box = st.empty()
    _draw(box, current, slot, choices, cursor=streaming)
    shown = _growth(current, slot, choices)
    while not current.finished(slot):
        if _a_click_waits():
            return  # the batch streams on: the run that follows draws it again
        texts = _growth(current, slot, choices)
        if texts == shown:  # nothing new: no redraw (each one costs the browser the whole page)
            time.sleep(LOOK_S)
            continue
        _draw(box, current, slot, choices, cursor=streaming)
        shown = texts
        time.sleep(POLL_S)
    _draw(box, current, slot, choices, cursor=False)
    if current.claim_final_redraw():
        st.rerun()


def _a_click_waits() -> bool:
    """Whether a click waits for this script run to end.

    Streamlit ends a running script at once for a click that reruns the whole page, but a click
    in a fragment (the Playground's Run bar is one: its Run then reruns only the bar, so the
    request leaves at once) is queued until the run ends. A view that held the run open while it
    streams would keep `Stop generating` waiting for the whole answer. No public API tells, so
    this reads the session's request queue, a private attribute: should Streamlit rename it, this
    says False and the browser test of Stop generating fails."""
    ctx = get_script_run_ctx()
    requests = getattr(ctx, "script_requests", None)
    return getattr(requests, "_state", None) == ScriptRequestType.RERUN


def _growth(current: Batch, slot: int, choices: int) -> tuple[int, ...]:
    return tuple(current.growth(slot, choice) for choice in range(max(choices, 1)))


def _draw(box, current: Batch, slot: int, choices: int, cursor: bool) -> None:
    if choices <= 1:
        box.html(run_view.answer_html(current.snapshot(slot), streaming=cursor))
        return
    with box.container():
        for choice in range(choices):
            st.caption(f"Choice {choice + 1}")
            st.html(run_view.answer_html(current.snapshot(slot, choice), streaming=cursor))


@st.fragment(parallel=True)
def live_progress(current: Batch) -> None:
    """A progress bar over the batch's items (Repeat's samples)."""
    bar = st.progress(0.0, text="Starting...")
    while not current.done:
        done, total = current.finished_count, len(current)
        bar.progress(done / total, text=f"{done} of {total} samples done")
        time.sleep(POLL_S * 2)
    bar.progress(1.0, text=f"{len(current)} of {len(current)} samples done")
    if current.claim_final_redraw():
        st.rerun()

"""Live views of a running playground.runs.batch.Batch. Every page shows a streaming answer the
same way: `live_text`, a box the page draws at the same spot on every run, streaming or not, so
it stays connected to its place's live channel (playground.ui.common.live_channel says why the
text goes beside Streamlit's element tree); and `live_output`, a parallel fragment per answer
that waits for it to finish (so several answers fill at the same time), and whose first to see
the whole batch done triggers the one full rerun that shows the results. In a fragment's own
rerun (the Playground's Run bar) Streamlit runs them inline, not in parallel: a view then ends
its run as soon as a click waits for it (streamlit_internals.run_is_over), and the run that
click starts draws the batch again."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import streamlit as st

from playground.runs.batch import Batch
from playground.ui.common import live_channel, run_view
from playground.ui.common.streamlit_internals import run_is_over

POLL_S = 0.05  # how often progress is redrawn (live_text.js redraws text every 55 ms)
LOOK_S = 0.01  # between two looks at whether a slot finished or a click waits
FIRST_TEXT_WAIT_S = 0.15  # how long a page holds its redraw back for a run's first text
SESSION = "live_session"  # this browser session's token: its live channels are its own (written here only)

_live_text = st.components.v2.component(
    "playground_live_text", js=(Path(__file__).with_name("live_text.js")).read_text(), isolate_styles=False)


def replace_stale() -> None:
    """Put an element where a finished view's block was, so the old view goes at once.

    A page run that starts parallel fragments ends only when they do, and Streamlit keeps the
    previous run's elements on screen (faded) until the run ends: a pane would show its old
    answer under the new stream. An element in the old block's place drops the block."""
    st.empty()


def live_text(place: str, current: Batch | None, slot: int = 0, choice: int = 0, streaming: bool = True,
              caption: str = "") -> None:
    """The live answer box of `place` (a name unique on its page), showing `current`'s answer
    (slot, choice) as it arrives; hidden when `current` is None. Draw it at the same spot on
    every run of the page, streaming or not: the box then keeps its connection, and a run's first
    token is on screen without waiting for the page to redraw. `streaming` False: a request that
    waits for the whole answer (no cursor)."""
    path, run = live_channel.attach(_session(), place, current, slot, choice)
    key = "live_" + re.sub(r"[^A-Za-z0-9_-]", "-", place)  # as it is in its st-key-* class
    _live_text(key=key, data={"url": path, "run": run, "live": current is not None, "cursor": streaming,
                              "caption": caption, "style": run_view.ANSWER_STYLE, "holder": f"st-key-{key}"})


def _session() -> str:
    """This browser session's token: a live channel belongs to one session's place. Kept in the
    session's own state (made on its first run), so no script run context is asked."""
    token = st.session_state.get(SESSION)
    if token is None:
        token = st.session_state[SESSION] = secrets.token_urlsafe(18)
    return token


def first_text_first(places: dict[str, tuple[Batch, int]]) -> None:
    """Hold this run's redraw back until each place's first text is on its way to the page, for
    at most FIRST_TEXT_WAIT_S. Call it when a run starts, before drawing anything: a redraw
    costs the browser 50-100 ms per pass over the whole page (500 ms and more for Compare's four
    panes on a busy machine), and text that arrives meanwhile waits for it. Waiting here is
    short: the request is out, and the text goes down the open channel on its own.
    `places`: place -> (batch, slot)."""
    session = _session()
    deadline = time.monotonic() + FIRST_TEXT_WAIT_S
    for place, (current, slot) in places.items():
        live_channel.attach(session, place, current, slot)
    for place in places:
        live_channel.wait_delivered(session, place, max(0.0, deadline - time.monotonic()))


@st.fragment(parallel=True)
def live_output(current: Batch, slot: int, choices: int = 1, streaming: bool = True, place: str = "") -> None:
    """Wait, beside the other panes, for one slot's answer to end. The page draws its first
    choice with live_text(place, ...); with `choices` > 1 (the request's n) this draws the others
    below it. The batch runs on whatever this fragment does: a rerun that interrupts it draws the
    same batch again."""
    for choice in range(1, choices):
        live_text(f"{place}.{choice}", current, slot, choice, streaming=streaming, caption=f"Choice {choice + 1}")
    while not current.finished(slot):
        if run_is_over():  # (streamlit_internals says when, and why no public API tells)
            return  # the batch streams on: the run that follows draws it again
        time.sleep(LOOK_S)
    if not run_is_over() and current.claim_final_redraw():  # a stale run's rerun would go nowhere
        st.rerun()


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

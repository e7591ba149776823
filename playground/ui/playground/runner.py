"""Running the request: the Run button (Ctrl+Enter), streaming with a `Stop generating`
button, and saving every run (finished, failed or stopped) to the run history.

How a stream is shown: a worker thread runs `ChatClient.run` (it touches no Streamlit API)
and saves the Run when it ends. The script thread polls the worker's recorder and redraws
the text at most every POLL_S seconds. A click on `Stop generating` makes Streamlit raise
its rerun exception inside the polling loop; the `finally` there sets the cancel event.
`ChatClient.run` honours it at every stage (waiting for the headers, a retry's back-off,
mid-stream) and returns within tens of milliseconds with the Run marked partial and
cancelled, so the next page run simply waits for the worker and shows that Run. The run in
flight lives in st.session_state["live_run"] (a one-item playground.runs.batch.Batch, as Compare
uses: its recorder holds the text as chunks arrive, and it saves the Run from its worker), so
nothing is lost when the script is interrupted.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from playground.client.endpoint import Endpoint
from playground.client.run import Run
from playground.client.schema import ChatRequest, message_text
from playground.runs.batch import Batch
from playground.runs.store import history_saver
from playground.textsafe import escape_markdown
from playground.ui.common import run_view

POLL_S = 0.05  # at most ~20 redraws a second
STOP_WAIT_S = 2.0  # a bound, not a delay: a cancelled worker is done in tens of ms (then saves)
LIVE = "live_run"
LAST = "last_run"
SAVE_ERROR = "last_run_save_error"
_REQUESTED = "_run_requested"


def _request_run() -> None:
    st.session_state[_REQUESTED] = True


def collect_finished() -> None:
    """Move the run of an interrupted script run into last_run.

    A new script run while a stream is in flight means the user clicked something (Stop
    generating, or any other widget): the stream is cancelled, and its partial run kept.
    Streamlit may start the new run before the interrupted one has finished its `finally`,
    so this cancels too, and waits for the worker."""
    live: Batch | None = st.session_state.get(LIVE)
    if live is not None:
        live.cancel()
        if live.wait(STOP_WAIT_S):
            if live.runs[0] is not None:
                _keep(live)
            else:  # stopped before its worker began: nothing was sent
                st.session_state.pop(LIVE, None)


def _keep(live: Batch) -> None:
    st.session_state[LAST] = live.runs[0]
    st.session_state[SAVE_ERROR] = "; ".join(live.errors) or None
    st.session_state.pop(LIVE, None)


def blockers(errors: dict[str, str]) -> list[str]:
    """What keeps Run disabled: a view holding a value that is not valid."""
    return [f"Fix {_where(source)} first: {message}" for source, message in errors.items()]


def not_ready(request: ChatRequest) -> list[str]:
    """What makes a click on Run do nothing but say why (Run stays enabled, so Ctrl+Enter
    in the message box both commits the text and runs)."""
    reasons = []
    if not any(message_text(m).strip() or getattr(m, "tool_calls", None) for m in request.messages):
        reasons.append("Type a message first.")
    if not request.model:
        reasons.append("Choose a model in the sidebar.")
    return reasons


def _where(source: str) -> str:
    if source == "json":
        return "the JSON view"
    if source.startswith("msg_"):
        return "the messages"
    return source.removeprefix("p_").replace("_", " ")


def render_run_area(request: ChatRequest, endpoint: Endpoint, errors: dict[str, str], preset: str | None,
                    waiting_for: list[str] | None = None) -> None:
    """The Run / Stop generating bar, the live answer while streaming, then the last run.
    `waiting_for`: more reasons to keep Run disabled (a preset's variables not filled in)."""
    collect_finished()
    start = st.session_state.pop(_REQUESTED, False)
    reasons = blockers(errors) + list(waiting_for or [])
    unready = not_ready(request)
    bar = st.container(horizontal=True, vertical_alignment="center")
    run_slot, stop_slot, note = bar.empty(), bar.empty(), bar.empty()
    if start and not reasons and not unready:
        # Run stays where it was (disabled), so the page does not jump; Stop appears beside it.
        _run_button(run_slot, ["running"])
        stop_slot.button("Stop generating", key="stop_generating", icon=":material/stop_circle:")
        where = escape_markdown(endpoint.name)
        note.caption(f"Streaming from {where} · {escape_markdown(request.model)}…" if request.stream
                     else f"Waiting for the whole answer from {where}…")
        stream(request, endpoint, preset, st.empty())
        st.rerun()  # draw the page again: Run enabled, the finished run below it
    _run_button(run_slot, reasons)
    if reasons:
        note.caption(escape_markdown(" ".join(reasons)))
    elif start and unready:
        note.warning(escape_markdown(" ".join(unready)), icon=":material/info:")
    last: Run | None = st.session_state.get(LAST)
    if last is not None:
        run_view.show_run(last, key="last")
        _save_note()


def _save_note() -> None:
    problem = st.session_state.get(SAVE_ERROR)
    if problem:
        st.warning(f"This run was not saved to the history: {escape_markdown(problem)}", icon=":material/history:")


def _run_button(slot: Any, reasons: list[str]) -> None:
    slot.button("Run", key="run", type="primary", icon=":material/play_arrow:", shortcut="Ctrl+Enter",
                on_click=_request_run, disabled=bool(reasons), help="Send the request (Ctrl+Enter)")


def stream(request: ChatRequest, endpoint: Endpoint, preset: str | None, out: Any) -> Run | None:
    """Run the request, drawing its text as it arrives; the Run ends in st.session_state
    ["last_run"] and is returned. When a click interrupts the script (Stop generating), the
    stream is cancelled and the next page run's collect_finished() keeps its Run."""
    live = Batch([(endpoint, request)], preset=preset, on_finish=history_saver([endpoint])).start()
    st.session_state[LIVE] = live
    finished = False
    try:
        shown: list[str] | None = None
        last_draw = 0.0
        while not live.wait(POLL_S):
            texts = _texts(live, request.n or 1)
            now = time.perf_counter()
            if texts != shown and now - last_draw >= POLL_S:
                _draw_live(out, texts, bool(request.stream))
                shown, last_draw = texts, now
            else:
                _ = LAST in st.session_state  # a yield point: lets a Stop click interrupt a silent stream
        finished = True
    finally:
        if not finished:
            live.cancel()  # Stop generating (or any other click): keep what arrived
    # Only reached when the loop ended by itself: show the result now.
    _keep(live)
    return live.runs[0]


def _texts(live: Batch, choices: int) -> list[str]:
    """The text of each choice so far ([] before the first chunk)."""
    return [live.snapshot(0, i) for i in range(choices)] if live.started(0) else []


def _draw_live(out: Any, texts: list[str], streaming: bool) -> None:
    with out.container():
        if not texts:
            st.html(run_view.answer_html("", streaming=streaming))
        elif len(texts) == 1:
            st.html(run_view.answer_html(texts[0], streaming=True))
        else:
            for i, text in enumerate(texts):
                st.caption(f"Choice {i + 1}")
                st.html(run_view.answer_html(text, streaming=True))

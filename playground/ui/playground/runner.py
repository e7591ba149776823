"""Running the request: the Run button (Ctrl+Enter), streaming with a `Stop generating`
button, and saving every run (finished, failed or stopped) to the run history.

How a stream is shown: Run starts a one-item playground.runs.batch.Batch (as Compare does) and
keeps it as the run in flight (state.start_run). Its worker thread runs `ChatClient.run` (it
touches no Streamlit API) and saves the Run to the history when it ends. The page shows it the
way every page does (playground.ui.common.live_view): the answer box below the Run bar is on
the page before Run is pressed, connected to its live channel, and the run's text comes down
that connection as it arrives; a parallel fragment waits for the run to end and triggers the
one full rerun that shows the finished run (usage, logprobs...) with Run enabled again.

Nothing but `Stop generating` stops a stream: any other rerun (an edit of a parameter or a
message, a switch to another page and back) draws the same batch again, still streaming or
finished. `Stop generating` cancels the batch: the Run keeps its partial text, marked
cancelled ("Stopped by you"). A stream the server closed early is partial (run_view says it
broke off). A reload starts a new browser session: the old session's batch runs to its end
and is saved to the history; the new session has nothing in flight to show. One run at a time:
Run is disabled while a run streams, and a click that slips through says so and starts nothing.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.client.endpoint import Endpoint
from playground.client.schema import ChatRequest
from playground.presets import MissingVariableError
from playground.runs.batch import Batch
from playground.textsafe import escape_markdown
from playground.ui.common import branches, live_view, run_view
from playground.ui.playground import state, tool_answers

BUSY = "A run is still streaming: wait for it, or press Stop generating, before running again."


def unfilled(names: list[str]) -> list[str]:
    """What keeps Run disabled while `{{variables}}` of the request have no value (the page's
    Variables panel gives them one)."""
    return [str(MissingVariableError(names))] if names else []


def not_ready(request: ChatRequest) -> list[str]:
    """What makes a click on Run do nothing but say why (Run stays enabled, so Ctrl+Enter
    in the message box both commits the text and runs): the editor's rule, and a model."""
    reasons = [problem for problem in state.EDITOR.problems(request) if problem not in state.EDITOR.blockers()]
    if not request.model:
        reasons.append("Choose a model in the sidebar.")
    return reasons


def render_run_area(request: ChatRequest, endpoint: Endpoint, preset: str | None,
                    waiting_for: list[str] | None = None) -> None:
    """The Run / Stop generating bar, the live answer while streaming, then the last run.
    `request` is what Run sends: the working request with its variables filled in.
    `waiting_for`: more reasons to keep Run disabled (a variable without a value, the sandbox starting)."""
    live = state.run_in_flight()
    start_now = state.take_run_request()
    reasons = state.EDITOR.blockers() + list(waiting_for or [])
    unready = not_ready(request)
    refused = start_now and live is not None
    if start_now and live is None and not reasons and not unready:
        live = state.start_run(request, endpoint, preset)
        live_view.first_text_first({PLACE: (live, 0)})  # before anything is drawn
    _keep_bar_in_view()
    bar = st.container(horizontal=True, vertical_alignment="center", key=RUN_BAR)
    run_slot, stop_slot, note = bar.empty(), bar.empty(), bar.empty()
    if live is not None:
        _show_live(live, run_slot, stop_slot, note, refused)
        return
    _answer_box(None)
    _run_button(run_slot, reasons)
    if reasons:
        note.caption(escape_markdown(" ".join(reasons)))
    elif start_now and unready:
        note.warning(escape_markdown(" ".join(unready)), icon=":material/info:")
    last = state.last_run()
    if last is not None:
        # one block in the place the live view takes: the next run's replace_stale() drops it at once
        with st.container(), st.container():
            previous = state.last_run_is_previous()
            if previous is None:
                tool_answers.note(last)  # why Auto-continue stopped here, if it did
                run_view.show_run(last, key="last", answers=tool_answers.answers(last))
                _add_to_conversation()
            else:  # folded and labelled: it is not the loaded request's result
                with st.expander(f"Previous answer, from the request {escape_markdown(previous)}",
                                 icon=":material/history:"):
                    run_view.show_run(last, key="last")
            _save_note()


def _show_live(live: Batch, run_slot: Any, stop_slot: Any, note: Any, refused: bool) -> None:
    """Run disabled, Stop beside it, and the answer filling in (drawn by a parallel fragment)."""
    endpoint, request = live.items[0]
    _run_button(run_slot, ["running"])
    stop_slot.button("Stop generating", key="stop_generating", icon=":material/stop_circle:", on_click=state.stop_run)
    if refused:
        note.warning(BUSY, icon=":material/info:")
    else:
        where = escape_markdown(endpoint.name)
        note.caption(f"Streaming from {where} · {escape_markdown(request.model)}…" if request.stream
                     else f"Waiting for the whole answer from {where}…")
    _answer_box(live)
    with st.container():
        live_view.replace_stale()
        live_view.live_output(live, 0, choices=request.n or 1, streaming=bool(request.stream), place=PLACE)


def _answer_box(live: Batch | None) -> None:
    """The live answer's box: here whether or not a run streams (live_view.live_text says why)."""
    request = live.items[0][1] if live is not None else None
    choices = (request.n or 1) if request is not None else 1
    live_view.live_text(PLACE, live, streaming=bool(request.stream) if request is not None else True,
                        caption="Choice 1" if choices > 1 else "")


def _add_to_conversation() -> None:
    """The answer joins the conversation as an assistant message, a new user message below it:
    the loop the OpenAI playground and Workbench are built around. A whole-page rerun, as this is
    in the Run area's fragment and the messages editor is not."""
    if state.answer_addable() and st.button(branches.ADD, key="add_to_conversation", icon=":material/add_comment:",
                                            help="Append this answer to the messages, with a new user message "
                                                 "below it for your next turn."):
        state.add_to_conversation()
        st.rerun()


def _save_note() -> None:
    problem = state.last_run_save_error()
    if problem:
        st.warning(f"This run was not saved to the history: {escape_markdown(problem)}", icon=":material/history:")


RUN_BAR = "run_bar"
PLACE = "playground"  # the live answer's place (live_view.live_text)


def _keep_bar_in_view() -> None:
    """With many messages the Run bar would scroll far below the parameters: it sticks to the
    bottom of the window while the messages above it are on screen. Streamlit has no sticky
    layout, so this is a stylesheet for the bar's own key class (the app's theme is light)."""
    # The bar's own box is only as tall as the bar: it is its wrapper that sticks. A sticky box
    # moves only within its parent's, and the bar sits in the page's run_area fragment, whose
    # block holds the run area alone: the boxes between the bar and the column (the fragment's)
    # are dissolved (display: contents), so the bar sticks within the column, beside the messages.
    # The column's block is the one that holds the Messages/JSON/Get code tabs: it is found by
    # their key's class (st-key-*, the only classes of Streamlit's that our CSS may use).
    column = f"div:has(> .st-key-{state.TABS})"
    st.html(f"<style>div:has(> .st-key-{RUN_BAR}) {{position: sticky; bottom: 0; z-index: 99; background: #ffffff;"
            "padding: 0.4rem 0; border-top: 1px solid rgba(49, 51, 63, 0.12);}"
            f"{column} div:has(.st-key-{RUN_BAR}):not(:has(> .st-key-{RUN_BAR})) {{display: contents;}}</style>")


def _run_button(slot: Any, reasons: list[str]) -> None:
    slot.button("Run", key="run", type="primary", icon=":material/play_arrow:", shortcut="Ctrl+Enter",
                on_click=state.request_run, disabled=bool(reasons), help="Send the request (Ctrl+Enter)")

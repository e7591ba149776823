"""Compare's page-wide state: the endpoints on offer, the run store, the running batches (Run all
and Repeat) and what they leave behind, and the messages shown once above the panes.

How streaming works: `Run all` starts a `playground.runs.batch.Batch` (plain worker threads that
only touch plain Python objects); each pane's answer box (always on the page, connected to its
live channel: playground.ui.common.live_view) shows its slot's text as it arrives, a parallel
fragment per pane waits for its slot, and the first fragment to see the batch done triggers one full
rerun, whose first act is `harvest()`. `Stop generating` sets the batch's cancel event: every
stream stops at once and keeps its partial text. The workers save every run as it finishes, so
a run is kept even when the page is left mid-stream. No Streamlit call from a worker thread.

Session keys (all start with "cmp."): PANES is how many panes show; RESULTS maps pane -> Run;
BATCH (with SLOTS: pane -> slot) and REPEAT are the running batches; REPEAT_RUNS the last
Repeat's runs; its notices (errors, notes) are shown once above the panes; INCOMING holds run ids sent
from History; TRIED says a run was refused for the panes' problems; SHARED the shared
conversation. Pane i's keys start with "cmp.{i}.": its request, edited by its own request editor
(`pane_editor(i)`: every field of the API, the JSON view), the widgets beside it (endpoint,
include, linked: PANE_WIDGETS, written from code with widget_sync), where its setup came from
("source") and its preset's name ("preset"). This module is the only writer of them all.
"""

from __future__ import annotations

import streamlit as st

from playground import settings
from playground.client.endpoint import LOCAL_MODEL, Endpoint
from playground.client.run import Run
from playground.client.schema import ChatRequest
from playground.runs.batch import Batch
from playground.runs.store import default_store
from playground.ui import sidebar
from playground.ui.common import notices, widget_sync
from playground.ui.common.request_editor import RequestEditor
from playground.ui.common.run_slot import RunSlot

RESULTS, BATCH, SLOTS = "cmp.results", "cmp.batch", "cmp.batch_slots"
REPEAT, REPEAT_RUNS, REPEAT_SEEDED = "cmp.repeat", "cmp.repeat_runs", "cmp.repeat_seeded"
INCOMING = "cmp.incoming"
BRANCH = "cmp.branch"  # the branch opened last: {"a": its original run, "b": the branch, "position"}
NOTICES = "compare"  # the page's queue of notices (playground.ui.common.notices)
TRIED = "cmp.tried"  # Run all or Repeat was pressed and refused: the panes' problems show in red
PANES, MIN_PANES, MAX_PANES = "cmp.n", 2, 4
# the pickers below the panes (drawn with widget_sync keys)
REPEAT_PANE, REPEAT_K = "cmp.repeat_pane", "cmp.repeat_k"
DIFF_A, DIFF_B, DIFF_ONLY = "cmp.diff_a", "cmp.diff_b", "cmp.diff_only"
BASELINE = "cmp.baseline"
KEEP = "session"  # widgets keep their values across page switches (persist_state)
SHARED = "cmp.shared"  # the shared conversation: wire message dicts
PANE_WIDGETS = ("endpoint", "include", "linked")  # beside the editor, written from code too


def pane_key(i: int, name: str) -> str:
    return f"cmp.{i}.{name}"


def pane_editor(i: int) -> RequestEditor:
    """Pane i's request editor: every field, its groups folded, a Model box (the pane's own), its
    token limit in the field the pane's endpoint reads (issue 22)."""
    return RequestEditor(prefix=pane_key(i, ""), open_groups=False, show_model=True,
                         endpoint=lambda: endpoints().get(pane_value(i, "endpoint") or ""))


def pane_value(i: int, name: str, default=None):
    """The value of pane i's widget `name` (one of PANE_WIDGETS)."""
    return widget_sync.value(pane_key(i, name), default)


def pane_source(i: int) -> str:
    return st.session_state.get(pane_key(i, "source"), "")


def pane_preset(i: int) -> str | None:
    return st.session_state.get(pane_key(i, "preset"))


def set_pane(i: int, request: ChatRequest, *, source: str, linked: bool, endpoint: str | None = None,
             preset: str | None = None, result: Run | None = None, include: bool = True) -> None:
    """Load a setup into pane i: its editor and widgets redraw from it. Streamed with usage, as
    Compare reads time to first token and token counts (the pane's JSON view shows it)."""
    pane_editor(i).load(_streamed(request))
    values = {"linked": linked, "include": include, **({"endpoint": endpoint} if endpoint is not None else {})}
    for name, value in values.items():
        widget_sync.write(pane_key(i, name), value)
    st.session_state[pane_key(i, "source")] = source
    st.session_state[pane_key(i, "preset")] = preset
    if result is not None:
        results()[i] = result
    else:
        results().pop(i, None)


def _streamed(request: ChatRequest) -> ChatRequest:
    body = request.to_wire()
    body["stream"] = True
    body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return ChatRequest.from_wire(body)


def write_pane_widget(i: int, name: str, value) -> None:
    widget_sync.write(pane_key(i, name), value)


def shared_messages() -> list[dict] | None:
    return st.session_state.get(SHARED)


def set_shared_messages(messages: list[dict]) -> None:
    """Replace the shared conversation (its editor redraws its widgets from it)."""
    st.session_state[SHARED] = [dict(m) for m in messages]


def add_pane() -> int:
    """One pane more (History sent more runs than panes show); its index."""
    st.session_state[PANES] += 1
    return pane_count() - 1


def send_to_compare(run_ids: list[str]) -> None:
    """Queue stored runs for the Compare page (History calls this, then switches page)."""
    st.session_state[INCOMING] = list(run_ids)


def take_incoming() -> list[str] | None:
    return st.session_state.pop(INCOMING, None)


def open_branch(original_id: str, branch_id: str, position: int) -> None:
    """Show a branched run beside the run it branched from (the token inspector's "Continue with
    this token" calls this, then switches page): the two stored runs go into the first two panes
    (the panes' earlier results are cleared), and the token diff starts at the branch point."""
    st.session_state[RESULTS] = {}
    st.session_state[INCOMING] = [original_id, branch_id]
    st.session_state[BRANCH] = {"a": original_id, "b": branch_id, "position": position}


def branch_point(a: Run, b: Run) -> int | None:
    """The token where `b` branched from `a` (or `a` from `b`), when they are the branch opened last."""
    branch = st.session_state.get(BRANCH)
    if branch and {branch["a"], branch["b"]} == {a.id, b.id}:
        return branch["position"]
    return None


runs_store = default_store
endpoints = sidebar.endpoints_by_name


def default_endpoint_name() -> str:
    return sidebar.current_endpoint().name


def default_model() -> str:
    return sidebar.current_model() or LOCAL_MODEL  # a custom endpoint may have no model yet


def prices() -> settings.Prices:
    return settings.price_table(sidebar.secrets())


def init_state() -> None:
    state = st.session_state
    state.setdefault(PANES, MIN_PANES)
    state.setdefault(RESULTS, {})
    state.setdefault(BATCH, None)
    state.setdefault(REPEAT, None)


def pane_count() -> int:
    return st.session_state[PANES]


def results() -> dict[int, Run]:
    return st.session_state[RESULTS]


RUN_ALL, REPEAT_RUN = RunSlot(BATCH, "compare"), RunSlot(REPEAT, "repeat")


def batch() -> Batch | None:
    """Run all's batch, running or finished and not harvested yet (its views claim the final redraw)."""
    return RUN_ALL.current()


def repeat_batch() -> Batch | None:
    return REPEAT_RUN.current()


def running() -> bool:
    return batch() is not None or repeat_batch() is not None


def start_run_all(slots: dict[int, int], items: list[tuple[Endpoint, ChatRequest]], presets: list[str | None]) -> None:
    """Stream the panes in `slots` (pane -> slot in `items`) together; their old results go."""
    for pane in slots:
        results().pop(pane, None)
    st.session_state[TRIED] = False
    st.session_state[SLOTS] = dict(slots)
    RUN_ALL.start(items, preset=presets)


def batch_slots() -> dict[int, int]:
    """Pane -> its slot in the running Run all batch (empty when none runs)."""
    return st.session_state.get(SLOTS, {}) if batch() is not None else {}


def start_repeat(endpoint: Endpoint, request: ChatRequest, k: int, preset: str | None) -> None:
    """Send one request k times (at most 4 at a time); the last Repeat's runs go."""
    st.session_state[REPEAT_RUNS] = None
    st.session_state[TRIED] = False
    st.session_state[REPEAT_SEEDED] = request.seed is not None
    REPEAT_RUN.start([(endpoint, request)] * k, concurrency=min(k, 4), preset=preset)


RUN_ALL_ASKED = "cmp.run_all_asked"  # a rerun from the shared conversation (Regenerate...) waits for Run all
ADDED = "cmp.added"  # ids of the runs whose answer was added to a conversation


def request_run_all() -> None:
    """The shared conversation's rerun: the next page run presses Run all."""
    st.session_state[RUN_ALL_ASKED] = True


def take_run_all_request() -> bool:
    return st.session_state.pop(RUN_ALL_ASKED, False)


def added(run_id: str) -> bool:
    return run_id in st.session_state.get(ADDED, ())


def mark_added(run_id: str) -> None:
    st.session_state[ADDED] = {*st.session_state.get(ADDED, ()), run_id}


def stop_all() -> None:
    """`Stop generating`: Run all's and Repeat's streams."""
    RUN_ALL.stop()
    REPEAT_RUN.stop()


def harvest() -> None:
    """Move finished batches' runs into the page state (called at the top of every page run)."""
    finished = RUN_ALL.take_finished()
    if finished is not None:
        for pane, slot in st.session_state.pop(SLOTS, {}).items():
            if finished.runs[slot] is not None:
                results()[pane] = finished.runs[slot]
        _report(finished)
    finished = REPEAT_RUN.take_finished()
    if finished is not None:
        st.session_state[REPEAT_RUNS] = list(finished.runs)
        _report(finished)


def _report(done: Batch) -> None:
    for message in done.errors:
        note(message)


def refused(*problems: str) -> None:
    """A run the user asked for cannot start: say why, and from now on mark each pane's problems."""
    st.session_state[TRIED] = True
    error(*problems)


def tried() -> bool:
    return st.session_state.get(TRIED, False)


def error(*messages: str) -> None:
    """Show these above the panes on the next draw."""
    for message in messages:
        notices.say(NOTICES, "error", message)


def note(message: str) -> None:
    notices.say(NOTICES, "warning", message)

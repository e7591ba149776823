"""The working request of the Playground page: one ChatRequest in st.session_state["request"].

The form (parameters and messages) and the JSON editor are two views of it. Each view's
widgets write their change back with `commit(request, source)`. This module remembers, per
view, the fingerprint of the request its widgets show; a view asks `needs_sync(view)` before
drawing and, when the request changed under it (the other view's edit, a preset, a share link,
a rerun from History), redraws its widgets from the request. So the views depend on this
module and never the reverse.

Errors that keep the request from being updated (bad JSON, an out-of-range value) are kept
per source in st.session_state["request_errors"]; Run is disabled while any is there.
"""

from __future__ import annotations

import json

import streamlit as st

from playground.client.endpoint import LOCAL_MODEL, Endpoint
from playground.client.run import Run
from playground.client.schema import ChatRequest
from playground.runs.batch import Batch
from playground.runs.store import history_saver
from playground.textsafe import escape_markdown
from playground.ui import sidebar

REQUEST = "request"
LIVE = "live_run"  # the run in flight: a one-item Batch (its worker saves the Run to the history)
LAST = "last_run"  # the Run shown under the Run button
SAVE_ERROR = "last_run_save_error"
_RUN_REQUESTED = "_run_requested"
STOP_WAIT_S = 2.0  # a bound, not a delay: a cancelled worker is done in tens of ms (then saves)
ERRORS = "request_errors"
_SYNCED = "_request_synced"  # view name -> fingerprint of the request its widgets show
FORM_VIEWS = ("params",)  # the message editor tells a change under it by itself
JSON_VIEW = "json"
_MODEL_SEEN = "_request_model_seen"


DEFAULT_TEMPERATURE = 0.7  # servers default to 1.0, at which the 135M sandbox model rambles
DEFAULT_MAX_COMPLETION_TOKENS = 256


def default_request(model: str) -> ChatRequest:
    """A newcomer's first request: one empty user message, streamed with usage."""
    return ChatRequest.from_wire({
        "model": model or LOCAL_MODEL,
        "messages": [{"role": "user", "content": ""}],
        "temperature": DEFAULT_TEMPERATURE,
        "max_completion_tokens": DEFAULT_MAX_COMPLETION_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
    })


def fingerprint(request: ChatRequest) -> str:
    return json.dumps(request.to_wire(), sort_keys=True, ensure_ascii=False)


def get_request() -> ChatRequest:
    return st.session_state[REQUEST]


def current_request() -> ChatRequest | None:
    """The working request, when the Playground has one yet (what other pages read)."""
    request = st.session_state.get(REQUEST)
    return request if isinstance(request, ChatRequest) else None


def load(request: ChatRequest) -> None:
    """Make `request` the working request (a preset, a share link, History's Load into
    Playground): every view redraws its widgets from it on the Playground's next run."""
    st.session_state[REQUEST] = request


def errors() -> dict[str, str]:
    return st.session_state.setdefault(ERRORS, {})


def set_error(source: str, message: str | None) -> None:
    errs = errors()
    if message:
        errs[source] = message
    else:
        errs.pop(source, None)


def show_error(source: str) -> None:
    """Under a widget: why its last change was not taken, if it was not."""
    message = errors().get(source)
    if message:
        st.error(escape_markdown(message), icon=":material/error:")


def commit(request: ChatRequest, source: str) -> None:
    """Store a new request that came from one view ("form" or "json"): that view's widgets show
    it already (unless the request had been replaced under them); the others redraw."""
    previous = st.session_state.get(REQUEST)
    st.session_state[REQUEST] = request
    synced, shown = _synced(), fingerprint(previous) if previous is not None else None
    for view in FORM_VIEWS if source == "form" else (JSON_VIEW,):
        if synced.get(view) == shown:
            synced[view] = fingerprint(request)


def needs_sync(view: str) -> bool:
    """Called by a view before it draws its widgets: True (once) when the request changed in a
    way the view's widgets do not show yet; the view then redraws them from the request (and
    the errors it had reported are gone with the values that caused them)."""
    current = fingerprint(get_request())
    synced = _synced()
    if synced.get(view) == current:
        return False
    synced[view] = current
    for source in list(errors()):
        if (source == "json") == (view == JSON_VIEW):
            set_error(source, None)
    return True


def _synced() -> dict[str, str]:
    return st.session_state.setdefault(_SYNCED, {})


def ensure(model: str) -> ChatRequest:
    """Called at the top of the page, before any request widget is drawn: creates the request
    on first use and follows the sidebar's model."""
    request = st.session_state.get(REQUEST)
    if not isinstance(request, ChatRequest):
        request = st.session_state[REQUEST] = default_request(model)
        st.session_state[_MODEL_SEEN] = request.model
    return _follow_model(request, model)


def _follow_model(request: ChatRequest, sidebar_model: str) -> ChatRequest:
    """Keep request.model and the sidebar's model the same; whichever changed last wins."""
    seen = st.session_state.get(_MODEL_SEEN)
    if sidebar_model and sidebar_model != request.model:
        if seen is not None and sidebar_model != seen:  # the sidebar changed
            request = request.model_copy(update={"model": sidebar_model})
            st.session_state[REQUEST] = request
        else:  # the request changed (a preset, a share link, History): the sidebar follows
            st.session_state[sidebar.MODEL_KEY] = request.model
            st.session_state[_MODEL_SEEN] = request.model
            st.rerun()  # the sidebar was drawn before this page: draw it again with the model
    st.session_state[_MODEL_SEEN] = request.model
    return request


# --- the run ----------------------------------------------------------------------------------


def request_run() -> None:
    """Run's on_click: the page run it starts sends the request (when nothing blocks it)."""
    st.session_state[_RUN_REQUESTED] = True


def take_run_request() -> bool:
    return st.session_state.pop(_RUN_REQUESTED, False)


def start_run(request: ChatRequest, endpoint: Endpoint, preset: str | None) -> Batch:
    """Send the request in a worker thread; it is the run in flight until it ends."""
    live = Batch([(endpoint, request)], preset=preset, on_finish=history_saver([endpoint])).start()
    st.session_state[LIVE] = live
    return live


def stop_run() -> None:
    """`Stop generating`: cancel the run in flight and give its worker a moment to end, so the
    page run this click starts already shows the stopped run."""
    live: Batch | None = st.session_state.get(LIVE)
    if live is not None:
        live.cancel()
        live.wait(STOP_WAIT_S)


def run_in_flight() -> Batch | None:
    """The run in flight, if any; a finished one becomes the last run (a run stopped before its
    worker began sent nothing, and leaves no last run)."""
    live: Batch | None = st.session_state.get(LIVE)
    if live is not None and live.done:
        if live.runs[0] is not None:
            st.session_state[LAST] = live.runs[0]
            st.session_state[SAVE_ERROR] = "; ".join(live.errors) or None
        st.session_state.pop(LIVE, None)
        live = None
    return live


def last_run() -> Run | None:
    return st.session_state.get(LAST)


def last_run_save_error() -> str | None:
    return st.session_state.get(SAVE_ERROR)

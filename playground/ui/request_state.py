"""The working request of the Playground page: one ChatRequest in st.session_state["request"].

The form (parameters and messages) and the JSON editor are two views of it. Each view's
widgets write their change back with `commit(request, source)`, which re-draws the *other*
view's widgets from the new request. A change made elsewhere (a preset, a share link, a
rerun from History) is noticed by its fingerprint and re-draws every view.

Errors that keep the request from being updated (bad JSON, an out-of-range value) are kept
per source in st.session_state["request_errors"]; Run is disabled while any is there.
"""

from __future__ import annotations

import json

import streamlit as st

from playground.client.endpoint import LOCAL_MODEL
from playground.client.schema import ChatRequest
from playground.textsafe import escape_markdown
from playground.ui import sidebar

REQUEST = "request"
ERRORS = "request_errors"
_FINGERPRINT = "_request_fp"
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
    """Store a new request that came from one view ("form" or "json") and redraw the other."""
    previous = st.session_state.get(REQUEST)
    external = previous is not None and fingerprint(previous) != st.session_state.get(_FINGERPRINT)
    st.session_state[REQUEST] = request
    _sync_views(request, form=external or source != "form", json_view=external or source != "json")


def ensure(model: str) -> ChatRequest:
    """Called at the top of the page, before any request widget is drawn.

    Creates the request on first use, follows the sidebar's model, and redraws the widgets
    when the request was replaced from outside (presets, share links, history)."""
    request = st.session_state.get(REQUEST)
    if not isinstance(request, ChatRequest):
        request = st.session_state[REQUEST] = default_request(model)
        st.session_state[_MODEL_SEEN] = request.model
        _sync_views(request, form=True, json_view=True)
    request = _follow_model(request, model)
    if fingerprint(request) != st.session_state.get(_FINGERPRINT):
        _sync_views(request, form=True, json_view=True)
    else:
        _fill_missing_widgets(request)
    return request


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


def _sync_views(request: ChatRequest, form: bool, json_view: bool) -> None:
    from playground.ui import json_editor, messages, params  # they import this module

    if form:
        params.sync_from_request(request)
        messages.sync_from_request(request)
        for source in list(errors()):
            if source != "json":
                set_error(source, None)
    if json_view:
        json_editor.sync_from_request(request)
        set_error("json", None)
    st.session_state[_FINGERPRINT] = fingerprint(request)


def _fill_missing_widgets(request: ChatRequest) -> None:
    """Widgets forget their state when they were not drawn (another page was shown, a run
    was interrupted, a conditional widget was hidden): draw just those from the request."""
    from playground.ui import json_editor, messages, params

    params.sync_from_request(request, only_missing=True)
    messages.sync_from_request(request, only_missing=True)
    json_editor.sync_from_request(request, only_missing=True)

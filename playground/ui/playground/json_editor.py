"""The whole request as editable JSON: the second view of st.session_state["request"]."""

from __future__ import annotations

import json

import streamlit as st
from pydantic import ValidationError

from playground.client.schema import ChatRequest, describe_error
from playground.textsafe import escape_markdown
from playground.ui import sidebar
from playground.ui.common import widget_sync
from playground.ui.playground import state as request_state

KEY = "request_json"


def to_text(request: ChatRequest) -> str:
    return json.dumps(request.to_wire(), indent=2, ensure_ascii=False)


def sync_from_request(request: ChatRequest, only_missing: bool = False) -> None:
    if not only_missing or not widget_sync.has(KEY):
        widget_sync.write(KEY, to_text(request))


def parse(text: str) -> tuple[ChatRequest | None, str | None]:
    """The request in `text`, or an error naming the line and column, or each bad field."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"Invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
    if not isinstance(body, dict):
        return None, f"The request must be a JSON object, got {type(body).__name__}"
    try:
        return ChatRequest.from_wire(body), None
    except ValidationError as error:
        return None, "\n".join(describe_error(error))


def _on_change() -> None:
    request, error = parse(widget_sync.value(KEY))
    if error is not None:
        request_state.set_error("json", error)
        return
    request_state.set_error("json", None)
    request_state.commit(request, source="json")
    sidebar.choose(model=request.model)


def _format() -> None:
    request, error = parse(widget_sync.value(KEY))
    if request is not None:
        widget_sync.write(KEY, to_text(request))


def render() -> None:
    sync_from_request(request_state.get_request(), only_missing=not request_state.needs_sync(request_state.JSON_VIEW))
    st.caption(
        "The exact body that is sent. Edit it here or in the form: both are views of one request. "
        "Fields this app does not know are kept and sent unchanged. Apply with Ctrl+Enter or by clicking away."
    )
    st.text_area(
        "Request JSON",
        key=widget_sync.key(KEY),
        height=460,
        on_change=_on_change,
        label_visibility="collapsed",
    )
    error = request_state.errors().get("json")
    if error:
        st.error(
            f"{escape_markdown(error)}\n\nThe last valid request is kept; Run is disabled until this is fixed.",
            icon=":material/data_object:",
        )
    else:
        st.button("Format", key="json_format", on_click=_format, type="tertiary", icon=":material/format_align_left:")

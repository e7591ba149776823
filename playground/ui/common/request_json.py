"""An editor's request as editable JSON: the second view of it."""

from __future__ import annotations

import json

import streamlit as st
from pydantic import ValidationError

from playground.client.schema import ChatRequest, describe_error
from playground.textsafe import escape_markdown
from playground.ui.common import widget_sync
from playground.ui.common.request_sync import JSON_VIEW, RequestEditor

KEY = "request_json"  # the text area's base key (after the editor's prefix)


def to_text(request: ChatRequest) -> str:
    return json.dumps(request.to_wire(), indent=2, ensure_ascii=False)


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


def _on_change(editor: RequestEditor) -> None:
    request, error = parse(widget_sync.value(editor.key(KEY)))
    if error is not None:
        editor.set_error("json", error)
        return
    editor.set_error("json", None)
    editor.commit(request, source="json")
    if editor.on_json_commit is not None:
        editor.on_json_commit(request)


def _format(editor: RequestEditor) -> None:
    request, error = parse(widget_sync.value(editor.key(KEY)))
    if request is not None:
        widget_sync.write(editor.key(KEY), to_text(request))


def render(editor: RequestEditor, disabled: bool = False) -> None:
    key = editor.key(KEY)
    if editor.needs_sync(JSON_VIEW) or not widget_sync.has(key):
        widget_sync.write(key, to_text(editor.get()))
    st.caption(
        "The exact body that is sent. Edit it here or in the form: both are views of one request. "
        "Fields this app does not know are kept and sent unchanged. Apply with Ctrl+Enter or by clicking away."
    )
    st.text_area("Request JSON", key=widget_sync.key(key), height=460, on_change=_on_change, args=(editor,),
                 label_visibility="collapsed", disabled=disabled)
    error = editor.errors().get("json")
    if error:
        st.error(
            f"{escape_markdown(error)}\n\nThe last valid request is kept; Run is disabled until this is fixed.",
            icon=":material/data_object:",
        )
    else:
        st.button("Format", key=editor.key("json_format"), on_click=_format, args=(editor,), type="tertiary",
                  icon=":material/format_align_left:", disabled=disabled)

"""An editor's request as editable JSON: the second view of it.

What you type is never thrown away (issue 22). While the text does not parse (or does not
validate), it is a draft: the last valid request is kept and runs are refused, and a change made
meanwhile in the form (or a preset loaded) does not overwrite the text: the view says the draft
is not applied, and "Revert" is the one way to drop it. Applying a fixed draft applies its edits
(against the request it was written from) on top of what changed since, so neither side is lost.
"""

from __future__ import annotations

import json

import streamlit as st
from pydantic import ValidationError

from playground import json_errors
from playground.client.schema import ChatRequest, describe_error
from playground.textsafe import escape_markdown
from playground.ui.common import widget_sync
from playground.ui.common.request_sync import JSON_VIEW, RequestEditor, follow_token_limit_field

KEY = "request_json"  # the text area's base key (after the editor's prefix)
_BASE = "_request_json_base"  # the request the text was last written from (wire body)
_BEHIND = "_request_json_behind"  # the request changed while the text held a draft


def to_text(request: ChatRequest) -> str:
    return json.dumps(request.to_wire(), indent=2, ensure_ascii=False)


def parse(text: str) -> tuple[ChatRequest | None, str | None]:
    """The request in `text`, or an error naming the line and column (the view shows that line
    with a caret under the column: show_error), or each bad field."""
    body, broken = json_errors.parse(text)
    if broken is not None:
        return None, broken.headline
    if not isinstance(body, dict):
        return None, f"The request must be a JSON object, got {type(body).__name__}"
    try:
        return ChatRequest.from_wire(body), None
    except ValidationError as error:
        return None, "\n".join(describe_error(error))


def _show_request(editor: RequestEditor, request: ChatRequest) -> None:
    """Write `request` into the text area: the draft, if any, is gone."""
    widget_sync.write(editor.key(KEY), to_text(request))
    st.session_state[editor.key(_BASE)] = request.to_wire()
    st.session_state.pop(editor.key(_BEHIND), None)


def _on_change(editor: RequestEditor) -> None:
    request, error = parse(widget_sync.value(editor.key(KEY)))
    if error is None and st.session_state.get(editor.key(_BEHIND)):
        request, error = _on_top(editor, request)
    if error is not None:
        editor.set_error("json", error)
        return
    editor.set_error("json", None)
    behind = st.session_state.pop(editor.key(_BEHIND), None)
    editor.commit(request, source="json")
    st.session_state[editor.key(_BASE)] = request.to_wire()
    if behind:  # the text shows the draft alone: show the request it made
        widget_sync.write(editor.key(KEY), to_text(request))
    if editor.on_json_commit is not None:
        editor.on_json_commit(request)


def _on_top(editor: RequestEditor, draft: ChatRequest) -> tuple[ChatRequest | None, str | None]:
    """The draft's edits (against the request it was written from) made to the request as it is
    now (the form changed it meanwhile)."""
    base = st.session_state.get(editor.key(_BASE))
    if base is None:
        return draft, None
    try:
        return editor.get().with_changes(draft.changes_from(ChatRequest.from_wire(base))), None
    except ValidationError as error:
        return None, "\n".join(describe_error(error))


def _format(editor: RequestEditor) -> None:
    request, error = parse(widget_sync.value(editor.key(KEY)))
    if request is not None:
        widget_sync.write(editor.key(KEY), to_text(request))


def _revert(editor: RequestEditor) -> None:
    editor.set_error("json", None)
    _show_request(editor, editor.get())


def render(editor: RequestEditor, disabled: bool = False) -> None:
    follow_token_limit_field(editor)
    key = editor.key(KEY)
    draft = editor.errors().get("json") if widget_sync.has(key) else None
    changed = editor.needs_sync(JSON_VIEW)  # (forgets the view's error when the request changed)
    if draft is not None:  # the text is a draft: never overwritten from the request
        editor.set_error("json", draft)
        if changed:
            st.session_state[editor.key(_BEHIND)] = True
    elif changed or not widget_sync.has(key):
        _show_request(editor, editor.get())
    st.caption(
        "The exact body that is sent. Edit it here or in the form: both are views of one request. "
        "Fields this app does not know are kept and sent unchanged. Apply with Ctrl+Enter or by clicking away."
    )
    st.text_area("Request JSON", key=widget_sync.key(key), height=460, on_change=_on_change, args=(editor,),
                 label_visibility="collapsed", disabled=disabled)
    if draft is None:
        st.button("Format", key=editor.key("json_format"), on_click=_format, args=(editor,), type="tertiary",
                  icon=":material/format_align_left:", disabled=disabled)
        return
    show_error(draft, widget_sync.value(key) or "")
    if st.session_state.get(editor.key(_BEHIND)):
        st.warning("Not applied: the request changed since (in the form, or a preset was loaded), and this text "
                   "is your draft, kept as you typed it. Once it is fixed, its edits are applied on top of those "
                   "changes.", icon=":material/edit_note:")
    st.button("Revert to the request", key=editor.key("json_revert"), on_click=_revert, args=(editor,),
              icon=":material/undo:", disabled=disabled,
              help="Drop this text and show the request as it is now (your draft is lost).")


def show_error(error: str, text: str) -> None:
    """Why the JSON view's text is not applied; for broken JSON, the line itself with a caret
    under the column (playground.json_errors), in a code block where the columns line up."""
    st.error(f"{escape_markdown(error)}\n\nThe last valid request is kept; Run is disabled until this is fixed.",
             icon=":material/data_object:")
    _, broken = json_errors.parse(text) if error.startswith("Invalid JSON at line") else (None, None)
    if broken is not None:
        st.code(broken.excerpt, language=None)

"""The messages editor: a system prompt, then the conversation; add, delete, move up and
down, change role, edit text. Assistant turns are editable, for few-shot prompts.

Each message has a stable id (st.session_state["_msg_ids"], parallel to request.messages),
so its widgets keep their keys when messages move. Content this editor cannot show as one
text box (several parts, images, audio) is shown read-only and kept untouched: edit it in
the JSON view.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import streamlit as st
from pydantic import ValidationError

from playground.client.schema import ChatRequest, describe_error, message_text
from playground.ui.common import widget_sync
from playground.ui.playground import state as request_state

IDS = "_msg_ids"
SYSTEM_KEY = "msg_system"
EDIT_ROLES = ["user", "assistant", "system", "developer", "tool"]


def _new_id() -> str:
    return uuid.uuid4().hex[:8]


def _has_system(request: ChatRequest) -> bool:
    return bool(request.messages) and request.messages[0].role == "system" and _editable(request.messages[0])


def _editable(message: Any) -> bool:
    """True when the content is one string (or one text part): one text box shows all of it."""
    content = getattr(message, "content", None)
    if content is None or isinstance(content, str):
        return True
    return len(content) == 1 and content[0].type == "text" and not content[0].__pydantic_extra__


def sync_from_request(request: ChatRequest, only_missing: bool = False) -> None:
    """Draw the messages into their widgets. With `only_missing`, keep every message's id
    (so a widget the user is typing in keeps its key) and fill only the keys that are gone."""
    ids = st.session_state.get(IDS)
    if not only_missing or not isinstance(ids, list) or len(ids) != len(request.messages):
        ids = [_new_id() for _ in request.messages]
        st.session_state[IDS] = ids
        only_missing = False

    def put(key: str, value: Any) -> None:
        if not only_missing or key not in st.session_state:
            widget_sync.write(key, value)

    put(SYSTEM_KEY, message_text(request.messages[0]) if _has_system(request) else "")
    start = 1 if _has_system(request) else 0
    for mid, message in zip(ids[start:], request.messages[start:]):
        put(f"msg_role_{mid}", message.role)
        put(f"msg_text_{mid}", message_text(message))
        if message.role == "tool":
            put(f"msg_tool_id_{mid}", message.tool_call_id)


# --- changes ------------------------------------------------------------------------------


def _commit_messages(dumped: list[dict], ids: list[str], source: str) -> bool:
    request = request_state.get_request()
    body = request.to_wire()
    body["messages"] = dumped
    try:
        new = ChatRequest.from_wire(body)
    except ValidationError as error:
        request_state.set_error(source, "; ".join(describe_error(error)))
        return False
    request_state.set_error(source, None)
    st.session_state[IDS] = ids
    request_state.commit(new, source="form")
    return True


def _dumped() -> list[dict]:
    return list(request_state.get_request().to_wire()["messages"])


def _with_text(message: dict, text: str) -> dict:
    message = dict(message)
    content = message.get("content")
    if isinstance(content, list) and len(content) == 1:
        message["content"] = [{**content[0], "text": text}]
    elif text == "" and message.get("role") == "assistant" and (
            message.get("tool_calls") or message.get("function_call")):
        message.pop("content", None)
    else:
        message["content"] = text
    return message


def _locate(mid: str) -> tuple[list[str], list[dict], int] | None:
    """Copies of the ids and the messages, and where message `mid` is now; None when it is
    gone (a stale widget of an older view)."""
    ids = list(st.session_state.get(IDS) or [])
    return (ids, _dumped(), ids.index(mid)) if mid in ids else None


def _edit(mid: str, field: str, edit: Callable[[dict, Any], dict]) -> bool:
    """The on_change of message `mid`'s widget "msg_<field>_<mid>": the message becomes
    edit(message, widget value). False when nothing was committed."""
    key = f"msg_{field}_{mid}"
    found = _locate(mid)
    if found is None or widget_sync.stale(key):
        return False
    ids, msgs, i = found
    msgs[i] = edit(dict(msgs[i]), st.session_state[key])
    return _commit_messages(msgs, ids, f"msg_{mid}")


def _on_text(mid: str) -> None:
    _edit(mid, "text", _with_text)


def _on_tool_id(mid: str) -> None:
    _edit(mid, "tool_id", lambda message, tool_call_id: {**message, "tool_call_id": tool_call_id})


def _on_role(mid: str) -> None:
    if _edit(mid, "role", lambda message, role: _with_role(message, role, mid)):
        _resync_system()


def _with_role(message: dict, role: str, mid: str) -> dict:
    message = dict(message, role=role)
    if role != "tool":
        message.pop("tool_call_id", None)
    else:
        message.setdefault("tool_call_id", "")
        widget_sync.write(f"msg_tool_id_{mid}", message["tool_call_id"])
    if role != "assistant":
        for name in ("tool_calls", "function_call", "refusal"):
            message.pop(name, None)
    if message.get("content") is None:
        message["content"] = ""
    return message


def _on_system() -> None:
    if widget_sync.stale(SYSTEM_KEY):
        return
    text = st.session_state[SYSTEM_KEY]
    ids = list(st.session_state[IDS])
    msgs = _dumped()
    request = request_state.get_request()
    if _has_system(request):
        if text:
            msgs[0] = _with_text(msgs[0], text)
        else:
            del msgs[0], ids[0]
    elif text:
        msgs.insert(0, {"role": "system", "content": text})
        ids.insert(0, _new_id())
    _commit_messages(msgs, ids, "msg_system")


def _on_move(mid: str, step: int) -> None:
    found = _locate(mid)
    if found is None:
        return
    ids, msgs, i = found
    j = i + step
    if not 0 <= j < len(ids):
        return
    ids[i], ids[j] = ids[j], ids[i]
    msgs[i], msgs[j] = msgs[j], msgs[i]
    if _commit_messages(msgs, ids, f"msg_{mid}"):
        _resync_system()


def _on_delete(mid: str) -> None:
    found = _locate(mid)
    if found is None:
        return
    ids, msgs, i = found
    if len(msgs) <= 1:
        request_state.set_error(f"msg_{mid}", "A request needs at least one message.")
        return
    del ids[i], msgs[i]
    if _commit_messages(msgs, ids, f"msg_{mid}"):
        request_state.set_error(f"msg_{mid}", None)
        _resync_system()


def _on_add() -> None:
    ids = list(st.session_state[IDS])
    msgs = _dumped()
    last = msgs[-1]["role"] if msgs else "assistant"
    role = "assistant" if last == "user" else "user"
    mid = _new_id()
    widget_sync.write(f"msg_role_{mid}", role)
    widget_sync.write(f"msg_text_{mid}", "")
    _commit_messages([*msgs, {"role": role, "content": ""}], [*ids, mid], "msg_add")


def _resync_system() -> None:
    """Moving or deleting can change which message is the system prompt shown on top."""
    request = request_state.get_request()
    widget_sync.write(SYSTEM_KEY, message_text(request.messages[0]) if _has_system(request) else "")


# --- drawing --------------------------------------------------------------------------------


def render() -> None:
    request = request_state.get_request()
    sync_from_request(request, only_missing=not request_state.needs_sync("messages"))
    ids: list[str] = st.session_state[IDS]
    st.text_area(
        "System prompt",
        key=SYSTEM_KEY,
        height=80,
        on_change=_on_system,
        placeholder="You are a helpful assistant.",
        help="Sent as the first message, with role system. Leave empty to send none.",
    )
    request_state.show_error("msg_system")
    start = 1 if _has_system(request) else 0
    for i in range(start, len(request.messages)):
        _draw_message(request, i, ids[i], first=i == start)
    st.button("Add message", key="msg_add", on_click=_on_add, icon=":material/add:", type="tertiary")
    request_state.show_error("msg_add")


def _draw_message(request: ChatRequest, i: int, mid: str, first: bool) -> None:
    message = request.messages[i]
    editable = _editable(message)
    with st.container(border=True, key=f"msg_box_{mid}"):
        row = st.container(horizontal=True, vertical_alignment="center", gap="small")
        roles = EDIT_ROLES if message.role in EDIT_ROLES else [*EDIT_ROLES, message.role]
        row.selectbox("Role", roles, key=f"msg_role_{mid}", on_change=_on_role, args=(mid,),
                      label_visibility="collapsed", width=150, format_func=str.capitalize)
        row.space("stretch")
        row.button("", key=f"msg_up_{mid}", icon=":material/arrow_upward:", help="Move up", type="tertiary",
                   on_click=_on_move, args=(mid, -1), disabled=first)
        row.button("", key=f"msg_down_{mid}", icon=":material/arrow_downward:", help="Move down", type="tertiary",
                   on_click=_on_move, args=(mid, 1), disabled=i == len(request.messages) - 1)
        row.button("", key=f"msg_del_{mid}", icon=":material/delete:", help="Delete this message", type="tertiary",
                   on_click=_on_delete, args=(mid,), disabled=len(request.messages) <= 1)
        if message.role == "tool":
            st.text_input("tool_call_id", key=f"msg_tool_id_{mid}", on_change=_on_tool_id, args=(mid,),
                          help="The id of the tool call this message answers.")
        placeholder = {"user": "Type a user message…",
                       "assistant": "An example answer (few-shot), or leave for the model…"}
        # Nothing that feeds the widget's identity may depend on the message's position: a
        # renumbering (the first system prompt committed, a move, a delete) must not make the
        # box a new widget and drop what is being typed in it. The key is the message's id;
        # the label is the same for every message (Streamlit versions that hash the label with
        # the key would otherwise see a new widget when "Message 1" becomes "Message 2").
        st.text_area(
            "Message text",
            key=f"msg_text_{mid}",
            on_change=_on_text,
            args=(mid,),
            height=100 if message.role == "user" else 80,
            label_visibility="collapsed",
            placeholder=placeholder.get(message.role, "Message text"),
            disabled=not editable,
        )
        notes = []
        if not editable:
            notes.append(f"{len(message.content)} content parts: edit them in the JSON view.")
        if getattr(message, "tool_calls", None):
            notes.append(f"{len(message.tool_calls)} tool call(s): edit them in the JSON view.")
        if notes:
            st.caption(" ".join(notes))
        request_state.show_error(f"msg_{mid}")


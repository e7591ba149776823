"""The message editor every page uses: a system prompt, then the conversation; add, delete, move
up and down, change role, edit text. Assistant turns are editable, for few-shot prompts.

A page hands it a `Conversation`: where its messages (wire dicts) are read from and committed
to, and where an edit that was refused is reported. Each message has a stable id (kept per
scope, parallel to the messages), and its widgets' keys are built from that id, never from its
position: a renumbering (the first system prompt committed, a move, a delete) must not make a
box a new widget and drop what is being typed in it.

When the messages change under the editor (a preset, a past run, the other view of the request)
it gives every message a new id, so the widgets are new and no stale browser value can undo the
change; its own edits keep the ids. Content one text box cannot show (several parts, images,
audio) is shown read-only and kept untouched.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from playground import json_errors
from playground.client.schema import ChatRequest
from playground.ui.common import widget_sync

ROLES = ["user", "assistant", "system", "developer", "tool"]
PLACEHOLDERS = {"user": "Type a user message…", "assistant": "An example answer (few-shot), or leave for the model…"}
SYSTEM_PLACEHOLDER = "None: type one to send it first, with role system"


@dataclass(frozen=True)
class Conversation:
    """scope: the prefix of every key the editor makes (one per conversation on screen);
    read(): the stored messages; commit(messages, source): store edited messages, or report why
    not under `source` and return False; show_error(source): draw that report."""

    scope: str
    read: Callable[[], list[dict[str, Any]]]
    commit: Callable[[list[dict[str, Any]], str], bool]
    show_error: Callable[[str], None] = lambda source: None
    rerun: Callable[[], None] | None = None  # the page runs the conversation (branches: Regenerate...)
    # Drawn in each message's header row (branches.controls: Regenerate, ‹ 1 of 2 ›), given
    # (conversation, row, messages, index, id, disabled); a hook, as branches builds on this module.
    header: Callable[..., None] | None = None


def _ids_key(c: Conversation) -> str:
    return f"_{c.scope}_ids"


def _shown_key(c: Conversation) -> str:
    return f"_{c.scope}_shown"


def system_key(c: Conversation) -> str:
    return f"{c.scope}_system"


def field_key(c: Conversation, field: str, mid: str) -> str:
    return f"{c.scope}_{field}_{mid}"


def new_id() -> str:
    return uuid.uuid4().hex[:8]


def shown_ids(c: Conversation) -> list[str]:
    """The ids of the messages as drawn, parallel to c.read() (stale when their lengths differ)."""
    return list(st.session_state.get(_ids_key(c)) or [])


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def _editable(message: dict[str, Any]) -> bool:
    """True when the content is one string (or one text part): one text box shows all of it."""
    content = message.get("content")
    if content is None or isinstance(content, str):
        return True
    return len(content) == 1 and set(content[0]) <= {"type", "text"} and content[0].get("type") == "text"


def _has_system(messages: list[dict[str, Any]]) -> bool:
    return bool(messages) and messages[0].get("role") == "system" and _editable(messages[0])


def _sync(c: Conversation, messages: list[dict[str, Any]]) -> list[str]:
    """Draw the messages into their widgets; new ids when they changed under the editor."""
    ids = st.session_state.get(_ids_key(c))
    full = st.session_state.get(_shown_key(c)) != messages or not isinstance(ids, list) or len(ids) != len(messages)
    if full:
        ids = [new_id() for _ in messages]
        st.session_state[_ids_key(c)] = ids
        st.session_state[_shown_key(c)] = [dict(m) for m in messages]

    def put(key: str, value: Any) -> None:
        if full or not widget_sync.has(key):
            widget_sync.write(key, value)

    put(system_key(c), _text(messages[0]) if _has_system(messages) else "")
    for mid, message in zip(ids, messages):
        put(field_key(c, "role", mid), message.get("role"))
        put(field_key(c, "text", mid), _text(message))
        if message.get("role") == "tool":
            put(field_key(c, "tool_id", mid), message.get("tool_call_id") or "")
        if message.get("tool_calls"):
            put(field_key(c, "calls", mid), _calls_text(message))
    return ids


def _calls_text(message: dict[str, Any]) -> str:
    """An assistant turn's tool calls as the JSON its box shows (an arguments string stays a string:
    it is what the model wrote, and what the server is sent back)."""
    return json.dumps(message.get("tool_calls") or [], indent=2, ensure_ascii=False)


def _calls_error_key(c: Conversation, mid: str) -> str:
    return f"_{c.scope}_calls_error_{mid}"


def current(c: Conversation) -> list[dict[str, Any]]:
    """The messages as the editor shows them now (its widgets' values over the stored messages):
    for a callback that may run before the widgets' own (Run all)."""
    messages, ids = c.read(), st.session_state.get(_ids_key(c)) or []
    if len(ids) != len(messages):
        return messages
    out = []
    for mid, message in zip(ids, messages):
        message = dict(message)
        role = widget_sync.value(field_key(c, "role", mid))
        if role:
            message["role"] = role
        text = widget_sync.value(field_key(c, "text", mid))
        if text is not None and _editable(message):
            message = _with_text(message, text)
        out.append(message)
    return out


# --- changes ------------------------------------------------------------------------------


def commit(c: Conversation, messages: list[dict[str, Any]], ids: list[str], source: str) -> bool:
    """Store edited messages with their ids (a message keeps its widgets; a new id gets new ones)."""
    if not c.commit(messages, source):
        return False
    st.session_state[_ids_key(c)] = ids
    st.session_state[_shown_key(c)] = c.read()  # as stored (a commit may normalise the messages)
    return True


def _with_text(message: dict[str, Any], text: str) -> dict[str, Any]:
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


def _with_role(c: Conversation, message: dict[str, Any], role: str, mid: str) -> dict[str, Any]:
    message = dict(message, role=role)
    if role != "tool":
        message.pop("tool_call_id", None)
    else:
        message.setdefault("tool_call_id", "")
        widget_sync.write(field_key(c, "tool_id", mid), message["tool_call_id"])
    if role != "assistant":
        for name in ("tool_calls", "function_call", "refusal"):
            message.pop(name, None)
    if message.get("content") is None:
        message["content"] = ""
    return message


def _locate(c: Conversation, mid: str) -> tuple[list[str], list[dict[str, Any]], int] | None:
    """Copies of the ids and the messages, and where message `mid` is now; None when it is gone
    (a widget of an older view)."""
    ids = list(st.session_state.get(_ids_key(c)) or [])
    messages = [dict(m) for m in c.read()]
    return (ids, messages, ids.index(mid)) if mid in ids and len(ids) == len(messages) else None


def _on_edit(c: Conversation, mid: str, field: str) -> None:
    found = _locate(c, mid)
    if found is None:
        return
    ids, messages, i = found
    value = widget_sync.value(field_key(c, field, mid))
    if field == "calls":
        calls, broken = json_errors.parse(value or "[]")
        if broken is not None:  # kept out of the request, said under the box (the line, a caret)
            st.session_state[_calls_error_key(c, mid)] = broken
            return
        st.session_state.pop(_calls_error_key(c, mid), None)
        messages[i] = {k: v for k, v in messages[i].items() if k != "tool_calls"} | (
            {"tool_calls": calls} if calls else {})
    elif field == "text":
        messages[i] = _with_text(messages[i], value or "")
    elif field == "tool_id":
        messages[i] = {**messages[i], "tool_call_id": value or ""}
    else:
        messages[i] = _with_role(c, messages[i], value, mid)
    if commit(c, messages, ids, f"{c.scope}_{mid}") and field == "role":
        _resync_system(c)


def _on_system(c: Conversation) -> None:
    text = widget_sync.value(system_key(c)) or ""
    ids = list(st.session_state.get(_ids_key(c)) or [])
    messages = [dict(m) for m in c.read()]
    if _has_system(messages):
        if text:
            messages[0] = _with_text(messages[0], text)
        else:
            del messages[0], ids[0]
    elif text:
        messages.insert(0, {"role": "system", "content": text})
        ids.insert(0, new_id())
    commit(c, messages, ids, f"{c.scope}_system")


def _on_move(c: Conversation, mid: str, step: int) -> None:
    found = _locate(c, mid)
    if found is None:
        return
    ids, messages, i = found
    j = i + step
    if 0 <= j < len(ids):
        ids[i], ids[j] = ids[j], ids[i]
        messages[i], messages[j] = messages[j], messages[i]
        if commit(c, messages, ids, f"{c.scope}_{mid}"):
            _resync_system(c)


def _on_delete(c: Conversation, mid: str) -> None:
    found = _locate(c, mid)
    if found is None or len(found[1]) <= 1:  # the button is disabled then; a stale click does nothing
        return
    ids, messages, i = found
    del ids[i], messages[i]
    if commit(c, messages, ids, f"{c.scope}_{mid}"):
        _resync_system(c)


def _on_add(c: Conversation) -> None:
    ids, messages = list(st.session_state.get(_ids_key(c)) or []), [dict(m) for m in c.read()]
    last = messages[-1]["role"] if messages else "assistant"
    role = "assistant" if last == "user" else "user"
    mid = new_id()
    widget_sync.write(field_key(c, "role", mid), role)
    widget_sync.write(field_key(c, "text", mid), "")
    commit(c, [*messages, {"role": role, "content": ""}], [*ids, mid], f"{c.scope}_add")


def _resync_system(c: Conversation) -> None:
    """Moving, deleting or a role change can change which message is the system prompt on top."""
    messages = c.read()
    widget_sync.write(system_key(c), _text(messages[0]) if _has_system(messages) else "")


# --- drawing --------------------------------------------------------------------------------


def render(c: Conversation, disabled: bool = False) -> None:
    messages = c.read()
    ids = _sync(c, messages)
    st.text_area(
        "System prompt",
        key=widget_sync.key(system_key(c)),
        height=80,
        on_change=_on_system,
        args=(c,),
        placeholder=SYSTEM_PLACEHOLDER,
        help="Sent as the first message, with role system. Leave empty to send none.",
        disabled=disabled,
    )
    c.show_error(f"{c.scope}_system")
    start = 1 if _has_system(messages) else 0
    for i in range(start, len(messages)):
        _draw_message(c, messages, i, ids[i], first=i == start, disabled=disabled)
    st.button("Add message", key=f"{c.scope}_add", on_click=_on_add, args=(c,), icon=":material/add:",
              type="tertiary", disabled=disabled)
    c.show_error(f"{c.scope}_add")


def _draw_message(c: Conversation, messages: list[dict[str, Any]], i: int, mid: str, first: bool,
                  disabled: bool) -> None:
    message = messages[i]
    role = message.get("role")
    with st.container(border=True, key=f"{c.scope}_box_{mid}"):
        row = st.container(horizontal=True, vertical_alignment="center", gap="small")
        roles = ROLES if role in ROLES else [*ROLES, role]
        row.selectbox("Role", roles, key=widget_sync.key(field_key(c, "role", mid)), on_change=_on_edit,
                      args=(c, mid, "role"), label_visibility="collapsed", width=150, format_func=str.capitalize,
                      disabled=disabled)
        if c.header is not None:
            c.header(c, row, messages, i, mid, disabled)
        row.space("stretch")
        row.button("", key=f"{c.scope}_up_{mid}", icon=":material/arrow_upward:", help="Move up", type="tertiary",
                   on_click=_on_move, args=(c, mid, -1), disabled=disabled or first)
        row.button("", key=f"{c.scope}_down_{mid}", icon=":material/arrow_downward:", help="Move down",
                   type="tertiary", on_click=_on_move, args=(c, mid, 1), disabled=disabled or i == len(messages) - 1)
        row.button("", key=f"{c.scope}_del_{mid}", icon=":material/delete:", help="Delete this message",
                   type="tertiary", on_click=_on_delete, args=(c, mid), disabled=disabled or len(messages) <= 1)
        if role == "tool":
            st.text_input("tool_call_id", key=widget_sync.key(field_key(c, "tool_id", mid)), on_change=_on_edit,
                          args=(c, mid, "tool_id"), help="The id of the tool call this message answers.",
                          disabled=disabled)
        # The label is the same for every message: Streamlit hashes it into the widget's identity,
        # and "Message 1" becoming "Message 2" would make the box a new widget.
        editable = _editable(message)
        st.text_area(
            "Message text",
            key=widget_sync.key(field_key(c, "text", mid)),
            on_change=_on_edit,
            args=(c, mid, "text"),
            height=100 if role == "user" else 80,
            label_visibility="collapsed",
            placeholder=PLACEHOLDERS.get(role, "Message text"),
            disabled=disabled or not editable,
        )
        if not editable:
            st.caption(f"{len(message['content'])} content parts: edit them in the Playground's JSON view.")
        if message.get("tool_calls"):  # the calls this turn made; each tool message below answers one
            st.text_area("Tool calls", key=widget_sync.key(field_key(c, "calls", mid)), on_change=_on_edit,
                         args=(c, mid, "calls"), height=120, disabled=disabled,
                         help="The calls this answer made, as JSON: id, type and function (name, and the "
                              "arguments as a JSON string). A tool message answers a call by its id.")
            if broken := st.session_state.get(_calls_error_key(c, mid)):
                st.error(f"Tool calls: {broken.headline}", icon=":material/data_object:")
                st.code(broken.excerpt, language=None)
        c.show_error(f"{c.scope}_{mid}")


def has_user_text(messages: list[dict[str, Any]]) -> bool:
    return any(m.get("role") == "user" and _text(m).strip() for m in messages)


def request_messages(request: ChatRequest) -> list[dict[str, Any]]:
    return list(request.to_wire()["messages"])

"""Compare's conversations: the shared one (every linked pane sends it) and a pane's own (when
it is unlinked), each a list of wire message dicts in session state, and their small editor.

A list lives under `messages_key(scope)` (scope "shared" or the pane's number). Replacing it
(`set_messages`) bumps its version, which gives the editor fresh widget keys: a value written
from code never lands in a widget the browser still shows, so no stale echo can undo it.
`current(scope)` reads the editor's widgets over the stored list, so a callback (Run all) sees
text typed just before the click even when no page run has copied it into the list yet.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.ui.compare import state
from playground.ui.playground import state as playground_state

SHARED = "shared"
EDIT_ROLES = ["user", "assistant", "system", "developer"]
DEFAULT_PROMPT = "Write a haiku about comparing things."


def messages_key(scope: str) -> str:
    return "cmp.shared" if scope == SHARED else f"cmp.{scope}.messages"


def _version(scope: str) -> int:
    return st.session_state.get(f"cmp.v.{scope}", 0)


def _widget(scope: str, j: int, field: str) -> str:
    return f"cmp.m.{scope}.{_version(scope)}.{j}.{field}"


def set_messages(scope: str, messages: list[dict[str, Any]]) -> None:
    """Replace a message list and give its editor fresh widgets."""
    st.session_state[messages_key(scope)] = [dict(m) for m in messages]
    st.session_state[f"cmp.v.{scope}"] = _version(scope) + 1


def stored(scope: str) -> list[dict[str, Any]]:
    return st.session_state.get(messages_key(scope), [])


def current(scope: str) -> list[dict[str, Any]]:
    """The list as its editor shows it now (widget values over the stored messages)."""
    out = []
    for j, message in enumerate(stored(scope)):
        message = dict(message)
        role = st.session_state.get(_widget(scope, j, "role"))
        if role:
            message["role"] = role
        text = st.session_state.get(_widget(scope, j, "text"))
        if text is not None and (message.get("content") is None or isinstance(message.get("content"), str)):
            message["content"] = text
        out.append(message)
    return out


def playground_messages() -> list[dict[str, Any]]:
    """The Playground's working conversation (a starter prompt when there is none)."""
    request = playground_state.current_request()
    if request is not None:
        return [message.model_dump(mode="json", exclude_none=True) for message in request.messages]
    return [{"role": "user", "content": DEFAULT_PROMPT}]


def init_shared() -> None:
    if messages_key(SHARED) not in st.session_state:
        set_messages(SHARED, playground_messages())


def reload_shared() -> None:
    set_messages(SHARED, playground_messages())


def has_user_text(messages: list[dict[str, Any]]) -> bool:
    return any(m.get("role") == "user" and isinstance(m.get("content"), str) and m["content"].strip()
               for m in messages)


def messages_editor(scope: str, disabled: bool = False) -> None:
    """Role and text per message; add and delete. Content that is not one text (several parts,
    tool calls) is kept as it is and shown read-only."""
    messages: list[dict[str, Any]] = stored(scope)
    for j, message in enumerate(messages):
        role_key, text_key = _widget(scope, j, "role"), _widget(scope, j, "text")
        role_col, text_col, delete_col = st.columns([2, 8, 1], vertical_alignment="top")
        roles = EDIT_ROLES if message.get("role") in EDIT_ROLES else [message.get("role"), *EDIT_ROLES]
        st.session_state.setdefault(role_key, message.get("role", "user"))
        message["role"] = role_col.selectbox("Role", roles, key=role_key, label_visibility="collapsed",
                                             disabled=disabled)
        content = message.get("content")
        if content is None or isinstance(content, str):
            st.session_state.setdefault(text_key, content or "")
            message["content"] = text_col.text_area("Text", key=text_key, label_visibility="collapsed",
                                                    height=90, disabled=disabled, placeholder="Message text")
        else:
            text_col.caption("Content with several parts: kept as it is (edit it in the Playground's JSON view).")
        delete_col.button(":material/delete:", key=_widget(scope, j, "del"), help="Delete this message",
                          disabled=disabled, on_click=_delete_message, args=(scope, j))
    st.button("Add message", key=f"cmp.m.{scope}.{_version(scope)}.add", on_click=_add_message, args=(scope,),
              disabled=disabled, icon=":material/add:")


def _delete_message(scope: str, j: int) -> None:
    messages = current(scope)
    del messages[j]
    set_messages(scope, messages)


def _add_message(scope: str) -> None:
    messages = current(scope)
    last = messages[-1]["role"] if messages else "assistant"
    messages.append({"role": "assistant" if last == "user" else "user", "content": ""})
    set_messages(scope, messages)


def shared_conversation() -> None:
    busy = state.running()
    with st.expander("Shared conversation", expanded=not has_user_text(stored(SHARED))):
        st.caption("Every linked pane sends these messages. Unlink a pane to give it its own.")
        messages_editor(SHARED, disabled=busy)
        st.button("Reload from the Playground", key="cmp.reload_shared", on_click=reload_shared, disabled=busy,
                  help="Replace the shared conversation with the Playground's current messages.")

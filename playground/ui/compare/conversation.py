"""Compare's conversations: the shared one (every linked pane sends it) and a pane's own (when
it is unlinked), each a list of wire message dicts in session state, edited with the common
message editor (playground.ui.common.message_editor).

A list lives under `messages_key(scope)` (scope "shared" or the pane's number). Replacing it
from code (`set_messages`) makes the editor give its messages new widgets, so no stale browser
value can undo it. `current(scope)` reads the editor's widgets over the stored list, so a
callback (Run all) sees text typed just before the click even when that text's own callback
has not run yet.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import streamlit as st

from playground.ui.common import message_editor
from playground.ui.compare import state
from playground.ui.playground import state as playground_state

SHARED = "shared"
DEFAULT_PROMPT = "Write a haiku about comparing things."


def messages_key(scope: str) -> str:
    return "cmp.shared" if scope == SHARED else f"cmp.{scope}.messages"


def set_messages(scope: str, messages: list[dict[str, Any]]) -> None:
    """Replace a message list (its editor redraws its widgets from it)."""
    st.session_state[messages_key(scope)] = [dict(m) for m in messages]


def stored(scope: str) -> list[dict[str, Any]]:
    return st.session_state.get(messages_key(scope), [])


@cache
def editor(scope: str) -> message_editor.Conversation:
    def commit(messages: list[dict[str, Any]], _source: str) -> bool:
        set_messages(scope, messages)
        return True

    return message_editor.Conversation(f"cmp.m.{scope}", lambda: stored(scope), commit)


def current(scope: str) -> list[dict[str, Any]]:
    """The list as its editor shows it now (widget values over the stored messages)."""
    return message_editor.current(editor(scope))


def playground_messages() -> list[dict[str, Any]]:
    """The Playground's working conversation as Run would send it (its {{variables}} filled in;
    the placeholders while a value is missing), or a starter prompt when there is none."""
    request = playground_state.filled_request() or playground_state.current_request()
    if request is not None:
        return message_editor.request_messages(request)
    return [{"role": "user", "content": DEFAULT_PROMPT}]


def init_shared() -> None:
    if messages_key(SHARED) not in st.session_state:
        set_messages(SHARED, playground_messages())


def reload_shared() -> None:
    set_messages(SHARED, playground_messages())


has_user_text = message_editor.has_user_text


def messages_editor(scope: str, disabled: bool = False) -> None:
    message_editor.render(editor(scope), disabled=disabled)


def shared_conversation() -> None:
    busy = state.running()
    with st.expander("Shared conversation", expanded=not has_user_text(stored(SHARED))):
        st.caption("Every linked pane sends these messages. Unlink a pane to give it its own.")
        messages_editor(SHARED, disabled=busy)
        st.button("Reload from the Playground", key="cmp.reload_shared", on_click=reload_shared, disabled=busy,
                  help="Replace the shared conversation with the Playground's current messages.")

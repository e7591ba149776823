"""Compare's shared conversation: every linked pane sends it. A wire message list kept by
playground.ui.compare.state (SHARED) and edited with the common message editor. An unlinked
pane's own messages are its request editor's (playground.ui.compare.state.pane_editor).

`current()` reads the editor's widgets over the stored list, so a callback (Run all) sees text
typed just before the click even when that text's own callback has not run yet.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.client.run import Run
from playground.ui.common import branches, message_editor
from playground.ui.compare import state
from playground.ui.playground import state as playground_state

DEFAULT_PROMPT = "Write a haiku about comparing things."


def _commit(messages: list[dict[str, Any]], _source: str) -> bool:
    state.set_shared_messages(messages)
    return True


# Regenerate and Edit and rerun from here (common branches) run the shared conversation with Run all.
EDITOR = message_editor.Conversation("cmp.m.shared", lambda: state.shared_messages() or [], _commit,
                                     rerun=state.request_run_all, header=branches.controls)


def pane_conversation(i: int) -> message_editor.Conversation:
    """The conversation pane i sends: the shared one while linked, else its own."""
    return EDITOR if state.pane_value(i, "linked", True) else state.pane_editor(i).conversation()


def add_answer(i: int, run: Run) -> None:
    """A pane's Add to conversation: its answer joins the conversation it sent, a new user message below."""
    message = branches.answer_message(run.choices[0]) if run.choices else None
    if message is not None and not state.added(run.id):
        branches.add_answer(pane_conversation(i), message)
        state.mark_added(run.id)


def current() -> list[dict[str, Any]]:
    """The shared conversation as its editor shows it now (widget values over the stored list)."""
    return message_editor.current(EDITOR)


def playground_messages() -> list[dict[str, Any]]:
    """The Playground's working conversation as Run would send it (its {{variables}} filled in;
    the placeholders while a value is missing), or a starter prompt when there is none."""
    request = playground_state.filled_request() or playground_state.current_request()
    if request is not None:
        return message_editor.request_messages(request)
    return [{"role": "user", "content": DEFAULT_PROMPT}]


def init_shared() -> None:
    if state.shared_messages() is None:
        state.set_shared_messages(playground_messages())


def reload_shared() -> None:
    state.set_shared_messages(playground_messages())


def shared_conversation() -> None:
    busy = state.running()
    with st.expander("Shared conversation", expanded=not message_editor.has_user_text(state.shared_messages() or [])):
        st.caption("Every linked pane sends these messages. Unlink a pane to give it its own.")
        message_editor.render(EDITOR, disabled=busy)
        st.button("Reload from the Playground", key="cmp.reload_shared", on_click=reload_shared, disabled=busy,
                  help="Replace the shared conversation with the Playground's current messages.")

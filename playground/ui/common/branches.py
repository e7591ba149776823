"""Keeping a conversation going, in any message editor whose page can run it (the Playground's,
Compare's shared one): "Add to conversation" under an answer, "Regenerate" on an assistant
message, "Edit and rerun from here" on an earlier one, and the old answers one click away
("‹ 1 of 2 ›"), as ChatGPT keeps them.

A rerun from position k cuts the conversation to its first k messages and asks the page to run
it (the Conversation's `rerun`: the page's Run button, so the run streams, stops and is saved
as any other). What was cut is kept as a branch: the tail from k on, filed under the id of the
message that stood at k. The answer, when it comes, starts the new tail, and the branch is filed
under its id, so the switcher on it pages between the tails (each shown tail gets new ids: new
widgets, as a kept id would keep the browser's old text). Switching saves the tail shown (edits
included) and puts the other one back. Branches live per editor scope and are forgotten when the messages are
replaced from outside (a preset: the ids change).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.client.run import ChoiceResult
from playground.ui.common import message_editor

REGENERATE, RERUN_FROM_HERE, ADD = "Regenerate", "Edit and rerun from here", "Add to conversation"


def _branches(c: message_editor.Conversation) -> dict[str, dict[str, Any]]:
    """mid -> {"tails": [messages...], "shown": index}"""
    return st.session_state.setdefault(f"_{c.scope}_branches", {})


def _pending_key(c: message_editor.Conversation) -> str:
    return f"_{c.scope}_branch_pending"


def pending(c: message_editor.Conversation) -> bool:
    """A rerun cut the conversation and its answer has not been added yet."""
    return _pending_key(c) in st.session_state


def answer_message(choice: ChoiceResult) -> dict[str, Any] | None:
    """The assistant message a finished choice adds to the conversation; None for one that
    called tools (its calls need results first: the tool-call view's Send results and continue)."""
    if choice.tool_calls:
        return None
    return {"role": "assistant", "content": choice.text}


# --- callbacks ----------------------------------------------------------------------------


def rerun_from(c: message_editor.Conversation, k: int) -> None:
    """Cut the conversation to its first k messages, keep the rest as a branch, and run."""
    ids, messages = message_editor.shown_ids(c), [dict(m) for m in message_editor.current(c)]
    if not 0 < k <= len(messages) or len(ids) != len(messages) or c.rerun is None:
        return  # a click from an older view of the messages
    tail = messages[k:]
    if tail:
        mid = ids[k]
        branch = _branches(c).setdefault(mid, {"tails": [tail], "shown": 0})
        branch["tails"][branch["shown"]] = tail
        branch["tails"].append([])
        branch["shown"] = len(branch["tails"]) - 1
    else:
        mid = message_editor.new_id()
    if message_editor.commit(c, messages[:k], ids[:k], f"{c.scope}_rerun"):
        st.session_state[_pending_key(c)] = mid
        c.rerun()


def add_answer(c: message_editor.Conversation, message: dict[str, Any]) -> None:
    """Append an answer and a new empty user message below it (the pending branch's, if a rerun
    is waiting for it)."""
    ids, messages = message_editor.shown_ids(c), [dict(m) for m in c.read()]
    if len(ids) != len(messages):
        ids = [message_editor.new_id() for _ in messages]
    tail = [message, {"role": "user", "content": ""}]
    mid = _rekey(c, st.session_state.pop(_pending_key(c), None))
    branch = _branches(c).get(mid)
    if branch is not None:
        branch["tails"][branch["shown"]] = tail
    message_editor.commit(c, [*messages, *tail], [*ids, mid, message_editor.new_id()], f"{c.scope}_add")


def _rekey(c: message_editor.Conversation, mid: str | None) -> str:
    """A new id for the message that starts a branch's tail, the branch filed under it: new
    widgets, so the browser shows the new text (a kept id would keep the old box's value)."""
    new = message_editor.new_id()
    if mid in _branches(c):
        _branches(c)[new] = _branches(c).pop(mid)
    return new


def give_up(c: message_editor.Conversation) -> None:
    """The rerun brought no answer (an error, a stop before any text): the cut tail comes back."""
    mid = st.session_state.pop(_pending_key(c), None)
    branch = _branches(c).get(mid or "")
    if branch is None:
        return
    branch["tails"].pop(branch["shown"])
    branch["shown"] = len(branch["tails"]) - 1
    _show_tail(c, mid, branch)


def settle(c: message_editor.Conversation) -> None:
    """The rerun's answer goes in some other way (tool calls): the conversation stays cut."""
    st.session_state.pop(_pending_key(c), None)


def switch(c: message_editor.Conversation, mid: str, step: int) -> None:
    branch = _branches(c).get(mid)
    ids = message_editor.shown_ids(c)
    if branch is None or mid not in ids:
        return
    k = ids.index(mid)
    branch["tails"][branch["shown"]] = [dict(m) for m in message_editor.current(c)[k:]]
    branch["shown"] = (branch["shown"] + step) % len(branch["tails"])
    _show_tail(c, mid, branch)


def _show_tail(c: message_editor.Conversation, mid: str, branch: dict[str, Any]) -> None:
    ids, messages = message_editor.shown_ids(c), [dict(m) for m in c.read()]
    k = ids.index(mid) if mid in ids else len(messages)
    tail = branch["tails"][branch["shown"]]
    new_ids = [_rekey(c, mid), *(message_editor.new_id() for _ in tail[1:])]
    message_editor.commit(c, [*messages[:k], *tail], [*ids[:k], *new_ids], f"{c.scope}_branch")


# --- drawing (in a message's header row) ---------------------------------------------------


def controls(c: message_editor.Conversation, row: Any, messages: list[dict[str, Any]], i: int, mid: str,
             disabled: bool) -> None:
    """The switcher of the branch that starts at message i, and its rerun button."""
    branch = _branches(c).get(mid)
    if branch is not None and len(branch["tails"]) > 1:
        row.button("", key=f"{c.scope}_prev_{mid}", icon=":material/chevron_left:", type="tertiary",
                   help="The previous answer from here", on_click=switch, args=(c, mid, -1), disabled=disabled)
        row.caption(f"{branch['shown'] + 1} of {len(branch['tails'])}")
        row.button("", key=f"{c.scope}_next_{mid}", icon=":material/chevron_right:", type="tertiary",
                   help="The next answer from here", on_click=switch, args=(c, mid, 1), disabled=disabled)
    if c.rerun is None:
        return
    if messages[i].get("role") == "assistant":
        row.button(REGENERATE, key=f"{c.scope}_regen_{mid}", icon=":material/refresh:", type="tertiary",
                   help="Run the conversation up to this answer again; this answer stays one click away.",
                   on_click=rerun_from, args=(c, i), disabled=disabled)
    elif i < len(messages) - 1:
        row.button(RERUN_FROM_HERE, key=f"{c.scope}_rerun_{mid}", icon=":material/replay:", type="tertiary",
                   help="Run the conversation up to this message (edit it first); what follows stays one "
                        "click away.", on_click=rerun_from, args=(c, i + 1), disabled=disabled)

"""Where a Compare pane's setup comes from: the shared setup (the Playground's request), a preset,
a past run picked in the pane or sent from History. `set_pane` writes a setup into the pane's
session state; playground.ui.compare.panes draws and reads it.

Pane i keeps under "cmp.{i}.": "base" (the wire body without messages: every field the widgets
do not show), one key per widget in WIDGETS, "source" (where the setup came from) and "preset".
The widgets are written with widget_sync.write and drawn with `widget_key`: a value loaded
from code gets a fresh widget, so a browser still showing the old one cannot undo it (see
playground/ui/common/widget_sync.py). Read them with `value(i, name)`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.analysis import compare_tables
from playground.client.run import Run
from playground.presets import MissingVariableError, PresetStore, fill_variables
from playground.ui.common import widget_sync
from playground.ui.compare import conversation, state
from playground.ui.playground import state as playground_state

PARAMS = ("temperature", "top_p", "max_tokens", "seed", "logprobs", "top_logprobs")
WIDGETS = ("endpoint", "model", *PARAMS, "include", "linked")  # the pane widgets code writes to


def key(i: int, name: str) -> str:
    return f"cmp.{i}.{name}"


def widget_key(i: int, name: str) -> str:
    """The key to draw pane i's widget `name` (one of WIDGETS) with now."""
    return widget_sync.key(key(i, name))


def value(i: int, name: str, default: Any = None) -> Any:
    """The value of pane i's widget `name` (one of WIDGETS)."""
    return widget_sync.value(key(i, name), default)


def set_pane(i: int, body: dict[str, Any], *, messages: list[dict[str, Any]] | None, source: str,
             endpoint: str | None = None, preset: str | None = None, result: Run | None = None,
             include: bool = True) -> None:
    """Load a setup into pane i (its widgets are redrawn from it). messages=None links the pane
    to the shared conversation."""
    st.session_state[key(i, "base")] = {name: value for name, value in body.items() if name != "messages"}
    values = {**compare_tables.values_from_body(body), "linked": messages is None, "include": include}
    if endpoint is not None:
        values["endpoint"] = endpoint
    for name, value in values.items():
        widget_sync.write(key(i, name), value)
    conversation.set_messages(str(i), messages if messages is not None else [])
    st.session_state[key(i, "source")] = source
    st.session_state[key(i, "preset")] = preset
    if result is not None:
        state.results()[i] = result
    else:
        state.results().pop(i, None)


# --- the shared setup -------------------------------------------------------------------------


def base_body() -> dict[str, Any]:
    """The Playground's request without its messages (a short default without one)."""
    request = playground_state.current_request()
    body = request.to_wire() if request is not None else {"max_completion_tokens": 256}
    body.pop("messages", None)
    return body


def reset_pane(i: int) -> None:
    """The shared setup: the Playground's request (its model the sidebar's), the sidebar's endpoint."""
    set_pane(i, {**base_body(), "model": state.default_model()}, messages=None, source="Shared setup",
             endpoint=state.default_endpoint_name())


def ensure_pane(i: int) -> None:
    if key(i, "base") not in st.session_state:
        reset_pane(i)


# --- a preset ---------------------------------------------------------------------------------


def preset_names() -> list[str]:
    return PresetStore().names()


def missing_values_message(name: str, error: MissingVariableError) -> str:
    listed = " and ".join(", ".join(f"{{{{{n}}}}}" for n in error.names).rsplit(", ", 1))
    values, them = ("a value", "it") if len(error.names) == 1 else ("values", "them")
    return (f"Preset {name!r} needs {values} for {listed} (no default is set): load it in the Playground, "
            f"fill {them} in there, then press Reload from the Playground in the shared conversation here.")


def load_preset_into(i: int) -> None:
    name = st.session_state.get(key(i, "preset_pick"))
    try:
        preset = PresetStore().load(name)
        request = fill_variables(preset.request, preset.defaults())
    except MissingVariableError as error:
        state.error(missing_values_message(name, error))
        return
    except ValueError as error:  # PresetStoreError, PresetFileError: gone, renamed or broken since listed
        state.error(f"Could not load preset {name!r}: {error}")
        return
    body = request.to_wire()
    set_pane(i, body, messages=body["messages"], source=f"Preset: {preset.name}", preset=preset.name)


# --- a past run -------------------------------------------------------------------------------


def recent_runs(limit: int = 30) -> dict[str, str]:
    """The newest runs in the store, id -> label, for the panes' "Past run" pickers."""
    summaries = state.runs_store().list(limit=limit)
    return {s.id: f"{s.started_at:%Y-%m-%d %H:%M} · {s.model} · {(s.text_preview or '')[:40]}" for s in summaries}


def load_run_into(i: int, run_id: str | None = None, share: bool = False) -> bool:
    """Show a stored run in pane i with its setup (left out of Run all, so it stays as it is).
    share: its conversation becomes the shared one (the pane linked to it), so that Run all
    sends the other panes what this run was asked."""
    run_id = run_id or st.session_state.get(key(i, "run_pick"))
    run = state.runs_store().get(run_id) if run_id else None
    if run is None:
        state.error(f"Run {run_id} is no longer in the history.")
        return False
    body = run.request.to_wire()
    named = state.endpoints()
    endpoint = run.endpoint if run.endpoint in named else state.default_endpoint_name()
    if share:
        conversation.set_messages(conversation.SHARED, body["messages"])
    set_pane(i, body, messages=None if share else body["messages"],
             source=f"Past run {run.id[:8]} ({run.started_at:%Y-%m-%d %H:%M})",
             endpoint=endpoint, preset=run.preset, result=run, include=False)
    if run.endpoint not in named:
        state.note(f"Pane {i + 1}: endpoint {run.endpoint!r} of the past run is not configured now; "
                   f"a rerun goes to {endpoint!r}.")
    return True


def take_incoming() -> None:
    """Load runs sent from History: into panes without a result first, adding panes up to 4. The
    first one's conversation becomes the shared one: Run all compares the other panes on it."""
    run_ids = st.session_state.pop(state.INCOMING, None)
    if not run_ids or state.running():
        return
    free = [i for i in range(state.pane_count()) if i not in state.results()]
    for n, run_id in enumerate(run_ids[:state.MAX_PANES]):
        if not free and state.pane_count() < state.MAX_PANES:
            st.session_state[state.PANES] += 1
            free.append(state.pane_count() - 1)
        target = free.pop(0) if free else state.MAX_PANES - 1
        load_run_into(target, run_id, share=n == 0)


# --- the picker (inside a pane's setup) -------------------------------------------------------


def source_picker(i: int, recent: dict[str, str]) -> None:
    names = preset_names()
    if names:
        st.selectbox("Preset", names, key=key(i, "preset_pick"))
        st.button("Load preset", key=key(i, "load_preset"), on_click=load_preset_into, args=(i,))
    else:
        st.caption("No presets found.")
    if recent:
        st.selectbox("Past run", list(recent), format_func=recent.get, key=key(i, "run_pick"))
        st.button("Load past run", key=key(i, "load_run"), on_click=load_run_into, args=(i,))
    else:
        st.caption("No past runs yet.")
    st.button("Reset to the shared setup", key=key(i, "reset"), on_click=reset_pane, args=(i,))

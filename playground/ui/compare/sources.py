"""Where a Compare pane's setup comes from: the shared setup (the Playground's request), a preset,
a past run picked in the pane or sent from History. Each is loaded with state.set_pane (the
pane's request editor and widgets redraw from it); playground.ui.compare.panes draws and reads it.
"""

from __future__ import annotations

import streamlit as st

from playground.client.schema import ChatRequest
from playground.presets import MissingVariableError, PresetStore, fill_variables
from playground.ui.compare import conversation, state
from playground.ui.playground import state as playground_state

DEFAULT_MAX_TOKENS = 256  # a pane made before the Playground has a request


def key(i: int, name: str) -> str:
    return state.pane_key(i, name)


# --- the shared setup -------------------------------------------------------------------------


def shared_setup() -> ChatRequest:
    """The Playground's request (a short default without one), on the sidebar's model, with the
    shared conversation."""
    request = playground_state.current_request()
    body = request.to_wire() if request is not None else {"max_completion_tokens": DEFAULT_MAX_TOKENS}
    body.update(model=state.default_model(), messages=conversation.current())
    return ChatRequest.from_wire(body)


def reset_pane(i: int) -> None:
    """The shared setup: the Playground's request (its model the sidebar's), the sidebar's endpoint."""
    state.set_pane(i, shared_setup(), source="Shared setup", linked=True, endpoint=state.default_endpoint_name())


def ensure_pane(i: int) -> None:
    if state.pane_editor(i).request() is None:
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
    state.set_pane(i, request, source=f"Preset: {preset.name}", linked=False, preset=preset.name)


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
    named = state.endpoints()
    endpoint = run.endpoint if run.endpoint in named else state.default_endpoint_name()
    if share:
        state.set_shared_messages(run.request.to_wire()["messages"])
    state.set_pane(i, run.request, source=f"Past run {run.id[:8]} ({run.started_at:%Y-%m-%d %H:%M})",
                   linked=share, endpoint=endpoint, preset=run.preset, result=run, include=False)
    if run.endpoint not in named:
        state.note(f"Pane {i + 1}: endpoint {run.endpoint!r} of the past run is not configured now; "
                   f"a rerun goes to {endpoint!r}.")
    return True


def take_incoming() -> None:
    """Load runs sent from History: into panes without a result first, adding panes up to 4. The
    first one's conversation becomes the shared one: Run all compares the other panes on it."""
    run_ids = state.take_incoming()
    if not run_ids or state.running():
        return
    free = [i for i in range(state.pane_count()) if i not in state.results()]
    for n, run_id in enumerate(run_ids[:state.MAX_PANES]):
        if not free and state.pane_count() < state.MAX_PANES:
            free.append(state.add_pane())
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

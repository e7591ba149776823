"""Preset widgets for the Playground page: share-link loading and the Save/Load preset bar.

Contract (pages/playground.py calls both near the top of the page):
- load_share_link(): reads ?preset=TOKEN, makes the preset's request the working request (state.load)
  (and opens the variables form when the preset has variables); a bad token shows an error, loads nothing.
- preset_bar(): "Save as preset" and "Load preset" with the variables form; loads it (state.load).
Buttons act in on_click callbacks, so the whole page run that follows sees the new request.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from playground.presets import (
    MissingVariableError,
    Preset,
    PresetFileError,
    PresetStore,
    SecretFoundError,
    ShareLinkError,
    Variable,
    fill_variables,
    from_share_token,
    variables_in,
)
from playground.presets.store import PresetStoreError
from playground.textsafe import escape_markdown
from playground.ui import sidebar
from playground.ui.playground import state

PENDING_KEY = "preset_pending"  # dict of a Preset waiting for its variables form
LOADED_KEY = "preset_loaded"  # {"name", "hash"} of the preset last loaded from the store
MESSAGE_KEY = "preset_message"  # (level, text) shown once by preset_bar
LINK_KEY = "preset_link_token"  # the share token already loaded in this session
VARIABLES_KEY = "preset_variables"  # declared variables (defaults, descriptions) of the last preset loaded


def store() -> PresetStore:
    return PresetStore()


def _say(level: str, text: str) -> None:
    st.session_state[MESSAGE_KEY] = (level, text)


def apply_preset(preset: Preset, source: str) -> None:
    """Put the preset's request in the session; open the variables form when it has variables.

    Call it from a button callback, or in the page run before preset_bar() draws its widgets."""
    state.load(preset.request)
    st.session_state[VARIABLES_KEY] = [v.model_dump() for v in preset.variables]
    _set_widget("preset_save_name", preset.name)
    _set_widget("preset_save_description", preset.description)
    _set_widget("preset_save_tags", ", ".join(preset.tags))
    defaults = preset.defaults()
    for var, default in defaults.items():
        _set_widget(f"preset_var_{var}", default or "")
    if defaults:
        st.session_state[PENDING_KEY] = preset.to_dict()
        _say("info", f"Loaded “{escape_markdown(preset.name)}” {source}. Fill in its variables below.")
    else:
        st.session_state.pop(PENDING_KEY, None)
        _say("success", f"Loaded “{escape_markdown(preset.name)}” {source}.")


def _set_widget(key: str, value: Any) -> None:
    try:
        st.session_state[key] = value
    except StreamlitAPIException:  # the widget is already drawn in this run: keep what it shows
        pass


def pending_variables() -> list[str]:
    """Variables of a loaded preset still waiting for the form: Run should wait for them."""
    pending = st.session_state.get(PENDING_KEY)
    request = state.current_request()
    if not pending or request is None:
        return []
    return variables_in(request)


def load_share_link() -> Preset | None:
    """Load the preset of ?preset=TOKEN once per token; show a clear error for a bad token."""
    token = st.query_params.get("preset")
    if not token:
        return None
    if st.session_state.get(LINK_KEY) == token:
        return None
    try:
        preset = from_share_token(token)
    except ShareLinkError as exc:
        st.error(f"The shared preset could not be loaded: {escape_markdown(str(exc))}")
        return None
    st.session_state[LINK_KEY] = token
    st.session_state.pop(LOADED_KEY, None)
    apply_preset(preset, "from the share link")
    return preset


# --- callbacks --------------------------------------------------------------------------------


def _on_save() -> None:
    request = state.current_request()
    name = st.session_state.get("preset_save_name", "").strip()
    if request is None:
        return _say("error", "There is no valid request to save yet.")
    if not name:
        return _say("error", "Give the preset a name.")
    tags = [t for t in st.session_state.get("preset_save_tags", "").split(",") if t.strip()]
    loaded = st.session_state.get(LOADED_KEY) or {}
    used = set(variables_in(request))
    declared = [Variable.model_validate(v) for v in st.session_state.get(VARIABLES_KEY) or [] if v["name"] in used]
    try:
        preset = Preset.new(name, request, st.session_state.get("preset_save_description", ""), tags,
                            endpoint_kind=_endpoint_kind(), variables=declared)
        store_ = store()
        same = loaded.get("name") and store_.path_for(loaded["name"]) == store_.path_for(name)
        if same and st.session_state.get("preset_save_overwrite"):
            digest = store_.save(preset, expected_hash=loaded["hash"])
        else:
            digest = store_.save(preset, overwrite=bool(st.session_state.get("preset_save_overwrite")))
    except (SecretFoundError, PresetStoreError, PresetFileError, ValueError) as exc:
        return _say("error", escape_markdown(str(exc)))
    st.session_state[LOADED_KEY] = {"name": preset.name, "hash": digest}
    _say("success", f"Saved preset “{escape_markdown(preset.name)}”.")


def open_preset(name: str, source: str) -> str | None:
    """Load preset `name` into the session (remembering the hash of exactly the version read,
    so a later overwrite can tell whether the file changed); the error to show, or None."""
    try:
        preset, digest = store().load_with_hash(name)
    except ValueError as exc:  # PresetStoreError, PresetFileError
        return escape_markdown(str(exc))
    st.session_state[LOADED_KEY] = {"name": preset.name, "hash": digest}
    apply_preset(preset, source)
    return None


def _on_load() -> None:
    name = st.session_state.get("preset_load_name")
    if not name:
        return _say("error", "Choose a preset to load.")
    error = open_preset(name, "from the library")
    if error:
        _say("error", error)


def _on_fill() -> None:
    pending = st.session_state.get(PENDING_KEY)
    if not pending:
        return
    preset = Preset.model_validate(pending)
    defaults = preset.defaults()
    values = {}
    for var, default in defaults.items():
        typed = st.session_state.get(f"preset_var_{var}", "")
        values[var] = typed if typed != "" else default
    try:
        filled = fill_variables(preset.request, values)
    except MissingVariableError as exc:
        return _say("error", escape_markdown(str(exc)))
    state.load(filled)
    st.session_state.pop(PENDING_KEY, None)
    _say("success", f"Filled the variables of “{escape_markdown(preset.name)}” into the request.")


def _endpoint_kind() -> str | None:
    kind = sidebar.current_endpoint().kind
    return kind if kind in ("sgp", "openai", "local", "custom") else None


# --- the bar ----------------------------------------------------------------------------------


def variables_form() -> None:
    pending = st.session_state.get(PENDING_KEY)
    if not pending:
        return
    try:
        preset = Preset.model_validate(pending)
    except ValueError:
        st.session_state.pop(PENDING_KEY, None)
        return
    described = {v.name: v for v in preset.variables}
    with st.container(border=True):
        st.markdown(f"**Variables of {_plain(preset.name)}**")
        for var, default in preset.defaults().items():
            key = f"preset_var_{var}"
            if key not in st.session_state:
                st.session_state[key] = default or ""
            help_text = described[var].description if var in described and described[var].description else None
            label = escape_markdown(f"{{{{{var}}}}}") + ("" if default is not None else " (required)")
            help_text = escape_markdown(help_text) if help_text else None
            st.text_area(label, key=key, help=help_text, height=68)
        fill, later = st.columns([1, 3])
        fill.button("Fill in variables", key="preset_fill", on_click=_on_fill, type="primary")
        later.button("Keep the {{placeholders}} for now", key="preset_fill_later",
                     on_click=lambda: st.session_state.pop(PENDING_KEY, None))


def preset_bar() -> None:
    """Save the current request as a preset, or load one (with its variables form)."""
    message = st.session_state.pop(MESSAGE_KEY, None)
    if message:
        getattr(st, message[0])(message[1])
    variables_form()
    left, right = st.columns(2)
    with left.expander("Save as preset"):
        st.text_input("Name", key="preset_save_name")
        st.text_input("Description", key="preset_save_description")
        st.text_input("Tags (comma separated)", key="preset_save_tags")
        st.checkbox("Overwrite if it exists", key="preset_save_overwrite",
                    help="Replaces the file, unless it changed on disk since you loaded it.")
        request = state.current_request()
        if request is not None and variables_in(request):
            st.caption("Variables in the prompt: " + ", ".join(f"`{{{{{v}}}}}`" for v in variables_in(request)))
        st.button("Save preset", key="preset_save", on_click=_on_save)
    with right.expander("Load preset"):
        try:
            names = store().names()
        except OSError as exc:
            names = []
            st.error(f"Cannot read the presets folder: {escape_markdown(str(exc))}")
        if st.session_state.get("preset_load_name") not in names:
            st.session_state.pop("preset_load_name", None)
        st.selectbox("Preset", names, key="preset_load_name", index=None, placeholder="Choose a preset")
        st.button("Load preset", key="preset_load", on_click=_on_load, disabled=not names)


def _plain(text: Any) -> str:
    return escape_markdown(str(text))

"""Preset widgets for the Playground page: share-link loading and the Save/Load preset bar.

Contract (the Playground page calls both near the top of the page):
- load_share_link(): reads ?preset=TOKEN and loads the preset (state.load_preset; its variables
  form opens when it has variables); a bad token shows an error, loads nothing.
- preset_bar(): "Save as preset" and "Load preset" with the variables form.
Buttons act in on_click callbacks, so the whole page run that follows sees the new request. What
is loaded, pending and said lives in playground.ui.playground.state.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

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
from playground.ui.common import widget_sync
from playground.ui.playground import state


def load_share_link() -> None:
    """Load the preset of ?preset=TOKEN once per token; show a clear error for a bad token."""
    token = st.query_params.get(state.SHARE_PARAM)
    if not token or not state.share_token_is_new(token):
        return
    try:
        preset = from_share_token(token)
    except ShareLinkError as exc:
        st.error(f"The shared preset could not be loaded: {escape_markdown(str(exc))}")
        return
    state.load_preset(preset, "from the share link")  # no file hash: saving never overwrites a file unasked


def pending_variables() -> list[str]:
    """Variables of a loaded preset still waiting for the form: Run should wait for them."""
    request = state.current_request()
    if state.pending_preset() is None or request is None:
        return []
    return variables_in(request)


# --- callbacks --------------------------------------------------------------------------------


def _on_save() -> None:
    request = state.current_request()
    name = (widget_sync.value("preset_save_name") or "").strip()
    if request is None:
        return state.say("error", "There is no valid request to save yet.")
    if not name:
        return state.say("error", "Give the preset a name.")
    tags = [t for t in (widget_sync.value("preset_save_tags") or "").split(",") if t.strip()]
    loaded = state.loaded_preset()
    used = set(variables_in(request))
    declared = [Variable.model_validate(v) for v in state.declared_variables() if v["name"] in used]
    overwrite = bool(st.session_state.get("preset_save_overwrite"))
    try:
        preset = Preset.new(name, request, widget_sync.value("preset_save_description") or "", tags,
                            endpoint_kind=_endpoint_kind(), variables=declared)
        store = PresetStore()
        same = loaded.get("name") and loaded.get("hash") and store.path_for(loaded["name"]) == store.path_for(name)
        if same and overwrite:
            digest = store.save(preset, expected_hash=loaded["hash"])
        else:
            digest = store.save(preset, overwrite=overwrite)
    except (SecretFoundError, PresetStoreError, PresetFileError, ValueError) as exc:
        return state.say("error", escape_markdown(str(exc)))
    state.remember_preset_file(preset, digest)
    state.say("success", f"Saved preset “{escape_markdown(preset.name)}”.")


def _on_load() -> None:
    name = st.session_state.get("preset_load_name")
    if not name:
        return state.say("error", "Choose a preset to load.")
    error = state.open_preset(name, "from the library")
    if error:
        state.say("error", error)


def _on_fill() -> None:
    preset = state.pending_preset()
    if preset is None:
        return
    values = {}
    for var, default in preset.defaults().items():
        typed = widget_sync.value(_variable_key(var)) or ""
        values[var] = typed if typed != "" else default
    try:
        filled = fill_variables(preset.request, values)
    except MissingVariableError as exc:
        return state.say("error", escape_markdown(str(exc)))
    state.load(filled)
    state.close_variables_form()
    state.say("success", f"Filled the variables of “{escape_markdown(preset.name)}” into the request.")


def _variable_key(var: str) -> str:
    return f"preset_var_{var}"


def _endpoint_kind() -> str | None:
    kind = sidebar.current_endpoint().kind
    return kind if kind in ("sgp", "openai", "local", "custom") else None


# --- the bar ----------------------------------------------------------------------------------


def _fill_forms() -> None:
    """When another preset was loaded (or saved) since the forms were last filled: the save form
    takes its name, description and tags, the variables form its defaults."""
    loaded, pending = state.loaded_preset(), state.pending_preset()
    if not state.preset_forms_need_filling((loaded.get("name"), loaded.get("hash"),
                                            pending.to_dict() if pending else None)):
        return
    if loaded:
        widget_sync.write("preset_save_name", loaded["name"])
        widget_sync.write("preset_save_description", loaded.get("description") or "")
        widget_sync.write("preset_save_tags", ", ".join(loaded.get("tags") or []))
    for var, default in (pending.defaults() if pending else {}).items():
        widget_sync.write(_variable_key(var), default or "")


def variables_form() -> None:
    preset = state.pending_preset()
    if preset is None:
        return
    described = {v.name: v for v in preset.variables}
    with st.container(border=True):
        st.markdown(f"**Variables of {_plain(preset.name)}**")
        for var, default in preset.defaults().items():
            help_text = described[var].description if var in described and described[var].description else None
            # The bare name: a label is also the field's accessible name, where markdown escapes
            # (\{\{topic\}\}) would be read out; variable names are letters, digits and _.
            label = var + ("" if default is not None else " (required)")
            help_text = escape_markdown(help_text) if help_text else None
            st.text_area(label, key=widget_sync.key(_variable_key(var)), help=help_text, height=68)
        fill, later = st.columns([1, 3])
        fill.button("Fill in variables", key="preset_fill", on_click=_on_fill, type="primary")
        later.button("Keep the {{placeholders}} for now", key="preset_fill_later",
                     on_click=state.close_variables_form)


def preset_bar() -> None:
    """Save the current request as a preset, or load one (with its variables form)."""
    message = state.take_message()
    if message:
        getattr(st, message[0])(message[1])
    _fill_forms()
    variables_form()
    left, right = st.columns(2)
    with left.expander("Save as preset"):
        st.text_input("Name", key=widget_sync.key("preset_save_name"))
        st.text_input("Description", key=widget_sync.key("preset_save_description"))
        st.text_input("Tags (comma separated)", key=widget_sync.key("preset_save_tags"))
        st.checkbox("Overwrite if it exists", key="preset_save_overwrite",
                    help="Replaces the file, unless it changed on disk since you loaded it.")
        request = state.current_request()
        if request is not None and variables_in(request):
            st.caption("Variables in the prompt: " + ", ".join(f"`{{{{{v}}}}}`" for v in variables_in(request)))
        st.button("Save preset", key="preset_save", on_click=_on_save)
    with right.expander("Load preset"):
        try:
            names = PresetStore().names()
        except OSError as exc:
            names = []
            st.error(f"Cannot read the presets folder: {escape_markdown(str(exc))}")
        if st.session_state.get("preset_load_name") not in names:
            st.session_state.pop("preset_load_name", None)
        st.selectbox("Preset", names, key="preset_load_name", index=None, placeholder="Choose a preset")
        st.button("Load preset", key="preset_load", on_click=_on_load, disabled=not names)


def _plain(text: Any) -> str:
    return escape_markdown(str(text))

"""Preset widgets for the Playground page: the Save/Load preset bar and the Variables panel.

Contract (the Playground page calls the first near the top of the page; a share link,
?preset=TOKEN, is loaded by state.prepare before the sidebar is drawn):
- preset_bar(): "Save as preset" (the request as a template, `{{variables}}` and all) and
  "Load preset".
- variables_panel(): while the request has `{{variables}}` (a preset's, or typed by hand), one
  field per variable holding the value Run fills in; the request keeps its placeholders.
Buttons and fields act in callbacks, so the whole page run that follows sees the change. What is
loaded, the variables' values and what is said live in playground.ui.playground.state.
"""

from __future__ import annotations

import streamlit as st

from playground.presets import (
    Preset,
    PresetFileError,
    PresetStore,
    SecretFoundError,
    Variable,
    variables_in,
)
from playground.presets.store import PresetStoreError
from playground.textsafe import escape_markdown
from playground.ui import sidebar
from playground.ui.common import notices, widget_sync
from playground.ui.common.user import current_user
from playground.ui.playground import state

LOAD_NAME = "preset_load_name"  # the Load preset picker (widget_sync: a preset gone since is unpicked)


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
        offered = {tool.function.name for tool in request.tools or []}  # answers to tools still offered
        preset = Preset.new(name, request, widget_sync.value("preset_save_description") or "", tags,
                            endpoint_kind=_endpoint_kind(), variables=declared,
                            tool_results={k: v for k, v in state.tool_results().items() if k in offered})
        store = PresetStore(user=current_user())
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
    name = widget_sync.value(LOAD_NAME)
    if not name:
        return state.say("error", "Choose a preset to load.")
    error = state.open_preset(name, "from the library")
    if error:
        state.say("error", error)


def _on_variable(name: str) -> None:
    state.set_variable(name, widget_sync.value(variable_key(name)) or "")


def variable_key(name: str) -> str:
    """The base key of variable `name`'s field (widget_sync versions it)."""
    return f"variable_{name}"


def _endpoint_kind() -> str | None:
    kind = sidebar.current_endpoint().kind
    return kind if kind in ("sgp", "openai", "local", "custom") else None


# --- the bar ----------------------------------------------------------------------------------


def _fill_forms() -> None:
    """When another preset was loaded (or saved) since the form was last filled: the save form
    takes its name, description and tags."""
    loaded = state.loaded_preset()
    if not state.preset_forms_need_filling((loaded.get("name"), loaded.get("hash"))):
        return
    if loaded:
        widget_sync.write("preset_save_name", loaded["name"])
        widget_sync.write("preset_save_description", loaded.get("description") or "")
        widget_sync.write("preset_save_tags", ", ".join(loaded.get("tags") or []))


def variables_panel() -> None:
    """The request's `{{variables}}`, one field each, while it has any: the value Run fills in
    (a preset's default prefilled; an empty field sends the default, and a variable without
    one must be given a value before Run)."""
    variables = state.variables()
    if not variables:
        return
    values = state.variable_values()
    st.markdown("#### Variables")
    st.caption("The prompt keeps its {{placeholders}}: Run sends these values in their place "
               "(see the JSON tab's Request as sent).")
    for var in variables:
        base = variable_key(var.name)
        widget_sync.write(base, values.get(var.name, var.default or ""))  # a preset just loaded, a page switch
        required = var.default is None
        # The bare name: a label is also the field's accessible name, where markdown escapes
        # (\{\{topic\}\}) would be read out; variable names are letters, digits and _.
        st.text_area(var.name + (" (required)" if required else ""), key=widget_sync.key(base), height=68,
                     on_change=_on_variable, args=(var.name,),
                     help=escape_markdown(var.description) if var.description else None,
                     placeholder="A value is needed to run" if required else f"Empty: the default, {var.default}")


def preset_bar() -> None:
    """Save the current request as a preset, or load one."""
    notices.show(state.NOTICES)
    _fill_forms()
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
        widget_sync.keep_valid(LOAD_NAME, [None, *names], None)  # a preset gone since: none chosen
        st.selectbox("Preset", names, key=widget_sync.key(LOAD_NAME), placeholder="Choose a preset")
        st.button("Load preset", key="preset_load", on_click=_on_load, disabled=not names)

"""The Experiments page's variants: 1 to 4 columns, each a request to send every case with. A
variant starts from a source (the page's preset, another preset, or the Playground's request)
and edits it in its own request editor (every field of the API, the messages, the JSON view):
a field left alone keeps the source's value, and the label names what the variant changed.
What a variant remembers is playground.ui.experiments.state."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from playground.client.schema import REMOVED, ChatRequest
from playground.experiments import Variant
from playground.experiments.model import MAX_REPEATS
from playground.presets import Preset, variables_in
from playground.ui.common import widget_sync
from playground.ui.experiments import state

LABEL_VALUE_CHARS = 24  # a changed value longer than this is named, not shown, in the label


def variants_section(preset: Preset, presets: dict[str, Preset], busy: bool) -> tuple[list[Variant], list[str]]:
    """The variants as the columns show them, and what stops any of them running."""
    st.subheader("Variants")
    left, right = st.columns(2)
    count = left.number_input("Variants", state.MIN_VARIANTS, state.MAX_VARIANTS, step=1, key=state.VARIANTS,
                              disabled=busy, persist_state=state.KEEP)
    right.number_input("Repeats per cell", 1, MAX_REPEATS, step=1, key=state.REPEATS, disabled=busy,
                       persist_state=state.KEEP)
    state.follow_page_preset(preset.name)
    names = list(state.endpoints())
    sources = state.variant_sources(preset, list(presets.values()))
    variants, problems = [], []
    for i, column in enumerate(st.columns(int(count))):
        with column:
            variant, found = _variant(i, preset, presets, sources, names, busy)
        variants.append(variant)
        problems.extend(f"Variant {i + 1}: {problem}" for problem in found)
    return variants, problems


def _variant(i: int, preset: Preset, presets: dict[str, Preset], sources: list[str], names: list[str],
             busy: bool) -> tuple[Variant, list[str]]:
    source_key, endpoint_key = state.variant_key(i, "source"), state.variant_key(i, "endpoint")
    widget_sync.keep_valid(source_key, sources, preset.name)
    widget_sync.keep_valid(endpoint_key, names, state.default_endpoint_name())
    st.markdown(f"**Variant {i + 1}**")
    st.selectbox("Prompt from", sources, key=widget_sync.key(source_key), disabled=busy, persist_state=state.KEEP,
                 help="A preset (its messages and parameters), or the Playground's working request; each case "
                      "fills the {{variables}} it has. Change anything below: the rest stays the source's.")
    source = widget_sync.value(source_key)
    base = variant_base(source, preset, presets)
    editor = state.variant_editor(i)
    st.selectbox("Endpoint", names, key=widget_sync.key(endpoint_key), disabled=busy, persist_state=state.KEEP,
                 on_change=editor.follow_endpoint)
    request, changes = state.variant_request(i, source, base.request)
    changed = _changed_names(changes, base.request)
    st.caption("Changes: " + ", ".join(changed) if changed else "Sends the source's request as it is.")
    with st.expander("Edit this variant's request", expanded=False):
        messages, parameters, as_json = st.tabs(["Messages", "Parameters", "JSON"])
        with messages:
            editor.messages(disabled=busy)
        with parameters:
            editor.parameters(disabled=busy)
        with as_json:
            editor.json(disabled=busy)
    if source == state.PLAYGROUND_SOURCE and not set(variables_in(request)) & set(state.variables(preset)):
        st.caption("This request has none of the preset's {{variables}}: every case sends it as it is.")
    endpoint = widget_sync.value(endpoint_key)
    label = _label(source, preset.name, request, endpoint, _changed_names(changes, base.request))
    variant = base.model_copy(update={"request": request, "label": label, "endpoint": endpoint})
    return variant, editor.blockers()


def variant_base(source: str, preset: Preset, presets: dict[str, Preset]) -> Variant:
    """The variant a source gives before this column's changes (the Playground's request takes
    the page preset's variable defaults)."""
    if source == state.PLAYGROUND_SOURCE:
        request = state.playground_request()
        if request is not None:
            variant = Variant.from_request(request, label="Playground")
            return variant.model_copy(update={"defaults": preset.defaults()})
    return Variant.from_preset(presets[source])


def _changed_names(changes: dict[str, Any], source: ChatRequest) -> list[str]:
    """What a variant changed from its source's request, for its caption and label: fields by
    name (with a short value), the system prompt or the messages."""
    named = []
    for field, value in changes.items():
        if field == "model":
            continue  # the label shows the model
        if field == "messages":
            named.append("system prompt" if _others(value) == _others(source.to_wire()["messages"]) else "messages")
        elif value is REMOVED:
            named.append(f"no {field}")
        else:
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            named.append(f"{field}={shown}" if len(shown) <= LABEL_VALUE_CHARS else field)
    return named


def _others(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("role") not in ("system", "developer")]


def _label(source: str, page_preset: str, request: ChatRequest, endpoint: str | None, changed: list[str]) -> str:
    prefix = "" if source == page_preset else ("Playground · " if source == state.PLAYGROUND_SOURCE
                                               else f"{source} · ")
    return prefix + f"{request.model} @ {endpoint}" + (f" ({', '.join(changed)})" if changed else "")

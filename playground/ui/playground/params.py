"""The parameter form: a widget for every field of the seed request, grouped as issue 4
lists them, with ranges from playground.client.schema.RANGES and a one-line help each. An empty
widget means "not sent".

What the form holds (fields, groups, widget values) is in playground.ui.playground.param_fields; the
way back from the widgets to the request (`sync_from_request`, the on_change callbacks) is
in playground.ui.playground.param_sync. This module draws.
"""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from playground.ui.common import widget_sync
from playground.ui.playground import state as request_state
from playground.ui.playground.param_fields import AUDIO_FORMATS, GROUPS, TRI, UNSET_LABEL, Field
from playground.ui.playground.param_sync import (
    on_audio,
    on_extra,
    on_field,
    on_function_call,
    on_prediction,
    on_response_format,
    on_stream_options,
    on_tool_choice,
    sync_from_request,
)

__all__ = ["render", "sync_from_request"]

_SHORT_KINDS = ("float", "int", "tri", "choice")  # drawn two to a row


def _fmt_unset(value: Any) -> str:
    if value is None:
        return UNSET_LABEL
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _draw(f: Field) -> None:
    label = f.label or f.name
    common = dict(key=widget_sync.key(f.key), help=f.help, on_change=on_field, args=(f.name,))
    # No min_value/max_value on purpose: with bounds, the browser never sends an out-of-range
    # value (it shows the field red and keeps the last valid one), so the form would show one
    # request and send another. Unbounded, the value typed reaches on_field, which reports it
    # under the field and keeps Run disabled until it is fixed. value=None (the widget's
    # default; its value comes from the session state) lets the user clear it: "not set".
    if f.kind == "float":
        st.number_input(label, value=None, step=f.step, format="%.2f", placeholder=UNSET_LABEL, **common)
    elif f.kind == "int":
        st.number_input(label, value=None, step=1, placeholder=UNSET_LABEL, **common)
    elif f.kind == "tri":
        st.selectbox(label, options=TRI, format_func=_fmt_unset, placeholder=UNSET_LABEL, **common)
    elif f.kind == "choice":
        st.selectbox(label, options=[None, *f.options], format_func=_fmt_unset, placeholder=UNSET_LABEL, **common)
    elif f.kind == "multi":
        st.multiselect(label, options=list(f.options), placeholder=UNSET_LABEL, **common)
    elif f.kind in ("stop", "json"):
        st.text_area(label, height=68 if f.kind == "stop" else 100, placeholder=UNSET_LABEL, **common)
    request_state.show_error(f.key)


def _group(title: str, expanded: bool, extra: Callable[[], None] | None = None, after: bool = True) -> None:
    # A folded group's widgets are not built: the browser redraws every element on the page with
    # each streamed chunk, so fewer elements put tokens on screen sooner. Opening it reruns.
    with st.expander(title, expanded=expanded, key=request_state.group_key(title), on_change="rerun") as group:
        if not group.open:
            return
        if extra is not None and not after:
            extra()
        small = [f for f in GROUPS[title] if f.kind in _SHORT_KINDS and len(f.name) <= 17]
        for i in range(0, len(small), 2):
            for column, f in zip(st.columns(2), small[i:i + 2]):
                with column:
                    _draw(f)
        for f in GROUPS[title]:
            if f not in small:
                _draw(f)
        if extra is not None and after:
            extra()


def _tri_select(label: str, key: str, on_change: Callable[[str], None], help: str, options: list = TRI) -> None:
    """A selectbox whose first option, None, reads "not set"; its callback gets the key."""
    st.selectbox(label, options=options, key=widget_sync.key(key), format_func=_fmt_unset, placeholder=UNSET_LABEL,
                 on_change=on_change, args=(key,), help=help)


def _output_extras() -> None:
    _tri_select("response_format", "p_response_format_type", on_response_format,
                "Plain text, any JSON object, or JSON that follows a schema.",
                options=[None, "text", "json_object", "json_schema"])
    if widget_sync.value("p_response_format_type") == "json_schema":
        st.text_input("Schema name", key=widget_sync.key("p_response_format_name"), on_change=on_response_format,
                      args=("p_response_format_name",), help="A short name for the schema (letters, digits, _ and -).")
        st.text_area("JSON schema", key=widget_sync.key("p_response_format_schema"), height=160,
                     on_change=on_response_format, args=("p_response_format_schema",),
                     help="The JSON Schema the answer must follow.", placeholder='{"type": "object", "properties": {}}')
        _tri_select("strict", "p_response_format_strict", on_response_format,
                    "Follow the schema exactly (servers that support it).")
    request_state.show_error("p_response_format")
    c1, c2 = st.columns(2)
    with c1:
        st.text_input("audio voice", key=widget_sync.key("p_audio_voice"), on_change=on_audio, args=("p_audio_voice",),
                      placeholder=UNSET_LABEL, help="Voice for audio output, e.g. alloy.")
    with c2:
        _tri_select("audio format", "p_audio_format", on_audio, "Encoding of the audio output.",
                    options=[None, *AUDIO_FORMATS])
    request_state.show_error("p_audio")
    st.text_area("prediction", key=widget_sync.key("p_prediction"), height=68, on_change=on_prediction,
                 args=("p_prediction",), placeholder=UNSET_LABEL,
                 help="Predicted output (e.g. a file being edited) to speed up generation.")
    request_state.show_error("p_prediction")


def _tools_extras() -> None:
    _named_choice_widgets("tool_choice", ["none", "auto", "required"], on_tool_choice, "tool_choice function",
                          "Whether the model may, must, or must not call a tool; or which one.")
    _named_choice_widgets("function_call", ["none", "auto"], on_function_call, "function_call name",
                          "Deprecated twin of tool_choice, for functions.")


def _named_choice_widgets(field: str, keywords: list[str], on_change: Callable[[str], None], name_label: str,
                          help: str) -> None:
    """A keyword, or "function" and then the function's name."""
    key = f"p_{field}"
    _tri_select(field, key, on_change, help, options=[None, *keywords, "function"])
    if widget_sync.value(key) == "function":
        st.text_input(name_label, key=widget_sync.key(f"{key}_name"), on_change=on_change, args=(f"{key}_name",),
                      help="The name of the function the model must call.")
    request_state.show_error(key)


def _advanced_extras() -> None:
    _tri_select("stream_options.include_usage", "p_stream_include_usage", on_stream_options,
                "Send token usage in a last chunk of the stream.")
    request_state.show_error("p_stream_options")
    st.text_area("Extra fields", key=widget_sync.key("p_extra"), height=100, on_change=on_extra, args=("p_extra",),
                 placeholder='{"min_p": 0.05}',
                 help="Fields this app does not know, sent unchanged, as a JSON object (vLLM's min_p, ...).")
    request_state.show_error("p_extra")


def render() -> None:
    """The grouped parameter form. Needs request_state.ensure() to have run first."""
    request = request_state.get_request()
    sync_from_request(request, only_missing=not request_state.needs_sync("params"))
    _group("Sampling", True)
    _group("Length and stop", True)
    _group("Penalties", bool(request.frequency_penalty or request.presence_penalty or request.logit_bias))
    _group("Logprobs", bool(request.logprobs))
    _group("Output", bool(request.response_format or request.modalities or request.audio or request.prediction),
           extra=_output_extras, after=False)
    _group("Tools", bool(request.tools or request.functions or request.tool_choice), extra=_tools_extras)
    _group("Advanced", bool(request.extra_fields or request.reasoning_effort or request.metadata),
           extra=_advanced_extras)

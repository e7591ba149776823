"""An editor's parameter form: a widget for every field of the seed request, grouped as issue 4
lists them, with ranges from playground.client.schema.RANGES and a one-line help each. An empty
widget means "not sent".

What the form holds (fields, groups, widget values) is playground.ui.common.request_fields; the
way back from the widgets to the request (the on_change callbacks) is request_sync. This module
draws, for one RequestEditor: every key is the editor's.
"""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from playground.client.token_limit import TOKEN_LIMIT_FIELDS
from playground.textsafe import escape_markdown
from playground.ui.common import tools_editor, widget_sync
from playground.ui.common.request_fields import AUDIO_FORMATS, GROUPS, TRI, UNSET_LABEL, Field
from playground.ui.common.request_sync import (
    FORM_VIEW,
    RequestEditor,
    follow_token_limit_field,
    on_audio,
    on_extra,
    on_field,
    on_function_call,
    on_model,
    on_prediction,
    on_response_format,
    on_stream_options,
    on_tool_choice,
    sync_from_request,
)

__all__ = ["render"]

_SHORT_KINDS = ("float", "int", "tri", "choice")  # drawn two to a row


def _fmt_unset(value: Any) -> str:
    if value is None:
        return UNSET_LABEL
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


class _Form:
    """The widgets of one editor's form (its keys, its callbacks, whether it is disabled)."""

    def __init__(self, editor: RequestEditor, disabled: bool, limit_field: str | None = None,
                 endpoint_name: str = "") -> None:
        self.editor = editor
        self.disabled = disabled
        self.limit_field = limit_field  # the token limit field the endpoint reads (None: not known)
        self.endpoint_name = endpoint_name

    def shown(self, f: Field) -> bool:
        """Every field, except the token limit field the endpoint does not read while it is unset
        (issue 22: one limit box, named for the field that is sent)."""
        if self.limit_field is None or f.name not in TOKEN_LIMIT_FIELDS or f.name == self.limit_field:
            return True
        return getattr(self.editor.get(), f.name) is not None

    def limit_note(self) -> None:
        if self.limit_field is not None:
            st.caption(f"The token limit is sent as `{self.limit_field}`: the field "
                       f"{escape_markdown(self.endpoint_name)} reads (its token_limit_field).")

    def key(self, base: str) -> str:
        return widget_sync.key(self.editor.key(base))

    def value(self, base: str) -> Any:
        return widget_sync.value(self.editor.key(base))

    def field(self, f: Field) -> None:
        label = f.label or f.name
        common = dict(key=self.key(f.key), help=f.help, on_change=on_field, args=(self.editor, f.name),
                      disabled=self.disabled)
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
        self.editor.show_error(f.key)

    def group(self, title: str, expanded: bool, extra: Callable[[], None] | None = None, after: bool = True) -> None:
        # A folded group's widgets are not built: the browser redraws every element on the page
        # with each streamed chunk, so fewer elements put tokens on screen sooner. Opening it reruns.
        with st.expander(title, expanded=expanded, key=self.editor.group_key(title), on_change="rerun") as group:
            if not group.open:
                return
            if extra is not None and not after:
                extra()
            fields = [f for f in GROUPS[title] if self.shown(f)]
            small = [f for f in fields if f.kind in _SHORT_KINDS and len(f.name) <= 17]
            for i in range(0, len(small), 2):
                for column, f in zip(st.columns(2), small[i:i + 2]):
                    with column:
                        self.field(f)
            for f in fields:
                if f not in small:
                    self.field(f)
            if any(f.name in TOKEN_LIMIT_FIELDS for f in fields):
                self.limit_note()
            if extra is not None and after:
                extra()

    def tri_select(self, label: str, base: str, on_change: Callable[..., None], help: str,
                   options: list = TRI) -> None:
        """A selectbox whose first option, None, reads "not set"."""
        st.selectbox(label, options=options, key=self.key(base), format_func=_fmt_unset, placeholder=UNSET_LABEL,
                     on_change=on_change, args=(self.editor,), help=help, disabled=self.disabled)

    def text(self, widget: Callable[..., Any], label: str, base: str, on_change: Callable[..., None],
             **options: Any) -> None:
        widget(label, key=self.key(base), on_change=on_change, args=(self.editor,), disabled=self.disabled, **options)

    def output_extras(self) -> None:
        self.tri_select("response_format", "p_response_format_type", on_response_format,
                        "Plain text, any JSON object, or JSON that follows a schema.",
                        options=[None, "text", "json_object", "json_schema"])
        if self.value("p_response_format_type") == "json_schema":
            self.text(st.text_input, "Schema name", "p_response_format_name", on_response_format,
                      help="A short name for the schema (letters, digits, _ and -).")
            self.text(st.text_area, "JSON schema", "p_response_format_schema", on_response_format, height=160,
                      help="The JSON Schema the answer must follow.",
                      placeholder='{"type": "object", "properties": {}}')
            self.tri_select("strict", "p_response_format_strict", on_response_format,
                            "Follow the schema exactly (servers that support it).")
        self.editor.show_error("p_response_format")
        c1, c2 = st.columns(2)
        with c1:
            self.text(st.text_input, "audio voice", "p_audio_voice", on_audio, placeholder=UNSET_LABEL,
                      help="Voice for audio output, e.g. alloy.")
        with c2:
            self.tri_select("audio format", "p_audio_format", on_audio, "Encoding of the audio output.",
                            options=[None, *AUDIO_FORMATS])
        self.editor.show_error("p_audio")
        self.text(st.text_area, "prediction", "p_prediction", on_prediction, height=68, placeholder=UNSET_LABEL,
                  help="Predicted output (e.g. a file being edited) to speed up generation.")
        self.editor.show_error("p_prediction")

    def tools_extras(self) -> None:
        tools_editor.render(self.editor, disabled=self.disabled)
        self.named_choice("tool_choice", ["none", "auto", "required"], on_tool_choice, "tool_choice function",
                          "Whether the model may, must, or must not call a tool; or which one.")
        self.named_choice("function_call", ["none", "auto"], on_function_call, "function_call name",
                          "Deprecated twin of tool_choice, for functions.")

    def named_choice(self, field: str, keywords: list[str], on_change: Callable[..., None], name_label: str,
                     help: str) -> None:
        """A keyword, or "function" and then the function's name."""
        base = f"p_{field}"
        self.tri_select(field, base, on_change, help, options=[None, *keywords, "function"])
        if self.value(base) == "function":
            self.text(st.text_input, name_label, f"{base}_name", on_change,
                      help="The name of the function the model must call.")
        self.editor.show_error(base)

    def advanced_extras(self) -> None:
        self.tri_select("stream_options.include_usage", "p_stream_include_usage", on_stream_options,
                        "Send token usage in a last chunk of the stream.")
        self.editor.show_error("p_stream_options")
        self.text(st.text_area, "Extra fields", "p_extra", on_extra, height=100, placeholder='{"min_p": 0.05}',
                  help="Fields this app does not know, sent unchanged, as a JSON object (vLLM's min_p, ...).")
        self.editor.show_error("p_extra")


def render(editor: RequestEditor, disabled: bool = False) -> None:
    """The grouped parameter form of `editor`'s request."""
    endpoint = follow_token_limit_field(editor)
    request = editor.get()
    sync_from_request(editor, request, only_missing=not editor.needs_sync(FORM_VIEW))
    form = _Form(editor, disabled, endpoint.token_limit_field if endpoint is not None else None,
                 endpoint.name if endpoint is not None else "")
    if editor.show_model:
        form.text(st.text_input, "Model", "p_model", on_model, help="The model this request asks for.")
        editor.show_error("p_model")
    opened = editor.open_groups
    form.group("Sampling", opened)
    form.group("Length and stop", opened)
    form.group("Penalties", opened and bool(request.frequency_penalty or request.presence_penalty
                                            or request.logit_bias))
    form.group("Logprobs", opened and bool(request.logprobs))
    form.group("Output", opened and bool(request.response_format or request.modalities or request.audio
                                         or request.prediction), extra=form.output_extras, after=False)
    form.group("Tools", opened and bool(request.tools or request.functions or request.tool_choice),
               extra=form.tools_extras, after=False)
    form.group("Advanced", opened and bool(request.extra_fields or request.reasoning_effort or request.metadata),
               extra=form.advanced_extras)

"""The parameter form: a widget for every field of the seed request, grouped, with ranges
from playground.schema.RANGES and a one-line help each. An empty widget means "not sent".

Every widget has the key "p_<name>"; its value is drawn from the request by
`sync_from_request` and written back, validated, by its on_change callback. A value that
does not validate is reported under the field and the request keeps its last valid value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import streamlit as st
from pydantic import ValidationError

from playground.schema import RANGES, ChatRequest, describe_error
from playground.ui import request_state, widget_sync

UNSET_LABEL = "not set"
TRI = [None, True, False]


@dataclass(frozen=True)
class Field:
    name: str  # widget key suffix; usually the wire field
    kind: str  # float | int | tri | choice | json | text | stop | multi
    help: str
    label: str | None = None
    options: tuple = ()
    step: float | None = None
    min: float | None = None
    max: float | None = None
    json_type: type | None = None  # for kind "json": dict or list

    @property
    def key(self) -> str:
        return f"p_{self.name}"


def _rng(name: str) -> tuple[float, float]:
    return RANGES[name]


# The groups, exactly as issue 4 lists them. Compound fields (response_format, tool_choice,
# function_call, audio, prediction, stream_options, extra fields) have their own widgets below.
GROUPS: dict[str, list[Field]] = {
    "Sampling": [
        Field("temperature", "float", "Randomness: 0 is nearly greedy, higher is more varied.", step=0.05,
              min=_rng("temperature")[0], max=_rng("temperature")[1]),
        Field("top_p", "float", "Nucleus sampling: keep the smallest set of tokens whose probability adds up to this.",
              step=0.05, min=_rng("top_p")[0], max=_rng("top_p")[1]),
        Field("top_k", "int", "Sample only from the k most likely tokens (-1 or 0: no limit). Not every server takes it.",
              min=-1),
        Field("seed", "int", "Same seed and request should give the same answer (best effort on most servers)."),
        Field("n", "int", "How many answers to generate for the one prompt.", min=1, max=128),
    ],
    "Length and stop": [
        Field("max_completion_tokens", "int", "Upper bound on generated tokens (the newer name).", min=1),
        Field("max_tokens", "int", "Upper bound on generated tokens (the older name; some servers want this one).",
              min=1),
        Field("stop", "stop", "Up to 4 sequences that end the answer, one per line (write \\n for a newline)."),
    ],
    "Penalties": [
        Field("frequency_penalty", "float", "Lower the odds of tokens in proportion to how often they appeared.",
              step=0.1, min=_rng("frequency_penalty")[0], max=_rng("frequency_penalty")[1]),
        Field("presence_penalty", "float", "Lower the odds of any token that already appeared.", step=0.1,
              min=_rng("presence_penalty")[0], max=_rng("presence_penalty")[1]),
        Field("logit_bias", "json", 'Token id -> bias from -100 to 100, as JSON: {"50256": -100}.', json_type=dict),
    ],
    "Logprobs": [
        Field("logprobs", "tri", "Return the log probability of every generated token."),
        Field("top_logprobs", "int", "Also return the k most likely alternatives at each position (0 to 20; needs logprobs).",
              min=_rng("top_logprobs")[0], max=_rng("top_logprobs")[1]),
    ],
    "Output": [
        Field("modalities", "multi", "Output types to generate: text, and audio on models that speak.",
              options=("text", "audio")),
    ],
    "Tools": [
        Field("tools", "json", "Function tools the model may call (at most 128), as a JSON list.", json_type=list),
        Field("parallel_tool_calls", "tri", "Allow several tool calls in one answer."),
        Field("functions", "json", "Deprecated function definitions, as a JSON list.", json_type=list),
    ],
    "Advanced": [
        Field("reasoning_effort", "choice", "How hard a reasoning model thinks before it answers.",
              options=("low", "medium", "high")),
        Field("metadata", "json", "Tags stored with the completion, as a JSON object of strings.", json_type=dict),
        Field("store", "tri", "Ask the server to store this completion."),
        Field("stream", "tri", "Stream tokens as they are generated (the Playground shows them live)."),
    ],
}

ALL_FIELDS = [f for fields in GROUPS.values() for f in fields]
BY_NAME = {f.name: f for f in ALL_FIELDS}

# Compound widgets: key -> default widget value when the request does not set it.
COMPOUND_KEYS = [
    "p_response_format_type", "p_response_format_name", "p_response_format_schema", "p_response_format_strict",
    "p_audio_voice", "p_audio_format", "p_prediction",
    "p_tool_choice", "p_tool_choice_name", "p_function_call", "p_function_call_name",
    "p_stream_include_usage", "p_extra",
]
AUDIO_FORMATS = ("wav", "mp3", "flac", "opus", "pcm16", "aac")


# --- drawing the request into the widgets ---------------------------------------------------


def _json_text(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


def _encode_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def _decode_line(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def widget_values(request: ChatRequest) -> dict[str, Any]:
    """The value of every form widget for this request."""
    body = request.to_wire()
    values: dict[str, Any] = {}
    for f in ALL_FIELDS:
        value = body.get(f.name)
        if f.kind == "json":
            values[f.key] = _json_text(value)
        elif f.kind == "stop":
            items = [value] if isinstance(value, str) else (value or [])
            values[f.key] = "\n".join(_encode_line(s) for s in items)
        elif f.kind == "multi":
            values[f.key] = list(value or [])
        elif f.kind == "float":
            values[f.key] = float(value) if value is not None else None
        else:
            values[f.key] = value
    rf = body.get("response_format") or {}
    schema = rf.get("json_schema") or {}
    values["p_response_format_type"] = rf.get("type")
    values["p_response_format_name"] = schema.get("name", "")
    values["p_response_format_schema"] = _json_text(schema.get("schema"))
    values["p_response_format_strict"] = schema.get("strict")
    audio = body.get("audio") or {}
    values["p_audio_voice"] = audio.get("voice", "")
    values["p_audio_format"] = audio.get("format")
    prediction = body.get("prediction") or {}
    content = prediction.get("content")
    values["p_prediction"] = content if isinstance(content, str) else _json_text(content) if content else ""
    choice = body.get("tool_choice")
    values["p_tool_choice"] = "function" if isinstance(choice, dict) else choice
    values["p_tool_choice_name"] = ((choice or {}).get("function") or {}).get("name", "") if isinstance(choice, dict) else ""
    call = body.get("function_call")
    values["p_function_call"] = "function" if isinstance(call, dict) else call
    values["p_function_call_name"] = call.get("name", "") if isinstance(call, dict) else ""
    values["p_stream_include_usage"] = (body.get("stream_options") or {}).get("include_usage")
    values["p_extra"] = _json_text(request.extra_fields) if request.extra_fields else ""
    return values


def sync_from_request(request: ChatRequest, only_missing: bool = False) -> None:
    for key, value in widget_values(request).items():
        if not only_missing or key not in st.session_state:
            widget_sync.write(key, value)


# --- writing widget changes back ------------------------------------------------------------


def _write(key: str, source: str, change: Callable[[dict[str, Any]], None], resync: bool = False) -> None:
    """What every on_change callback here does: ignore the browser echoing the old value of
    widget `key` (see widget_sync), apply `change` to the wire body and commit, or report
    why not under `source`. With `resync`, redraw the form from the result (for a widget
    that changes others)."""
    if widget_sync.stale(key):
        return
    request = request_state.get_request()
    body = request.to_wire()
    try:
        change(body)
        new = ChatRequest.from_wire(body)
    except ValidationError as error:
        request_state.set_error(source, "; ".join(describe_error(error)))
        return
    except ValueError as error:
        request_state.set_error(source, f"{source.removeprefix('p_')}: {error}")
        return
    request_state.set_error(source, None)
    request_state.commit(new, source="form")
    if resync:
        sync_from_request(request_state.get_request())


Change = Callable[[dict[str, Any], Any], None]  # change(wire body, st.session_state)


def _writes(source: str, resync: bool = False) -> Callable[[Change], Callable[[str], None]]:
    """Decorator for the compound fields: `change(body, state)` becomes the on_change
    callback (args=(widget key,)) of every widget that edits `source`."""

    def wrap(change: Change) -> Callable[[str], None]:
        def callback(key: str) -> None:
            _write(key, source, lambda body: change(body, st.session_state), resync)

        return callback

    return wrap


def _set(body: dict[str, Any], name: str, value: Any) -> None:
    if value is None or value == [] or value == "":
        body.pop(name, None)
    else:
        body[name] = value


def _parse_json(text: str, name: str, json_type: type | None) -> Any:
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    if json_type is not None and not isinstance(value, json_type):
        raise ValueError(f"must be a JSON {'object' if json_type is dict else 'list'}")
    return value


def _on_field(name: str) -> None:
    f = BY_NAME[name]

    def change(body: dict[str, Any]) -> None:
        raw = st.session_state[f.key]
        if f.kind == "json":
            value = _parse_json(raw, name, f.json_type)
        elif f.kind == "stop":
            lines = [_decode_line(line) for line in (raw or "").split("\n") if line != ""]
            value = lines[0] if len(lines) == 1 else (lines or None)
        elif f.kind == "int":
            value = int(raw) if raw is not None else None
        else:
            value = raw
        _set(body, name, value)
        if name == "logprobs" and not value:
            # top_logprobs without logprobs is invalid: clearing logprobs clears it too.
            if body.get("top_logprobs"):
                body.pop("top_logprobs")
        if name == "top_logprobs" and value and not body.get("logprobs"):
            body["logprobs"] = True

    _write(f.key, f.key, change, resync=name in ("logprobs", "top_logprobs"))


@_writes("p_response_format", resync=True)
def _on_response_format(body: dict[str, Any], s: Any) -> None:
    kind = s["p_response_format_type"]
    if kind is None:
        body.pop("response_format", None)
        return
    rf = dict(body.get("response_format") or {})
    rf["type"] = kind
    if kind == "json_schema":
        js = dict(rf.get("json_schema") or {})
        js["name"] = s["p_response_format_name"] or js.get("name") or "answer"
        schema = _parse_json(s["p_response_format_schema"], "response_format.json_schema.schema", dict)
        _set(js, "schema", schema)
        _set(js, "strict", s["p_response_format_strict"])
        rf["json_schema"] = js
    else:
        rf.pop("json_schema", None)
    body["response_format"] = rf


@_writes("p_audio")
def _on_audio(body: dict[str, Any], s: Any) -> None:
    voice, fmt = (s["p_audio_voice"] or "").strip(), s["p_audio_format"]
    if not voice and fmt is None:
        body.pop("audio", None)
        return
    audio = dict(body.get("audio") or {})
    audio.update({"voice": voice, "format": fmt})
    if not voice or fmt is None:
        raise ValueError("audio needs both a voice and a format")
    body["audio"] = audio


@_writes("p_prediction")
def _on_prediction(body: dict[str, Any], s: Any) -> None:
    text = s["p_prediction"]
    if not text:
        body.pop("prediction", None)
    else:
        body["prediction"] = {**(body.get("prediction") or {}), "type": "content", "content": text}


def _set_named_choice(body: dict[str, Any], field: str, choice: Any, name: str | None, tool_style: bool) -> None:
    """tool_choice / function_call: a keyword, or "function" with the function's name."""
    if choice == "function":
        name = (name or "").strip()
        if not name:
            raise ValueError("type the function's name")
        body[field] = {"type": "function", "function": {"name": name}} if tool_style else {"name": name}
    else:
        _set(body, field, choice)


@_writes("p_tool_choice")
def _on_tool_choice(body: dict[str, Any], s: Any) -> None:
    _set_named_choice(body, "tool_choice", s["p_tool_choice"], s.get("p_tool_choice_name"), tool_style=True)


@_writes("p_function_call")
def _on_function_call(body: dict[str, Any], s: Any) -> None:
    _set_named_choice(body, "function_call", s["p_function_call"], s.get("p_function_call_name"), tool_style=False)


@_writes("p_stream_options")
def _on_stream_options(body: dict[str, Any], s: Any) -> None:
    options = dict(body.get("stream_options") or {})
    _set(options, "include_usage", s["p_stream_include_usage"])
    _set(body, "stream_options", options or None)


@_writes("p_extra")
def _on_extra(body: dict[str, Any], s: Any) -> None:
    extra = _parse_json(s["p_extra"], "extra", dict) or {}
    known = set(ChatRequest.model_fields)
    clash = sorted(set(extra) & known)
    if clash:
        known_ones = f"{clash[0]} is a known field" if len(clash) == 1 else f"{', '.join(clash)} are known fields"
        raise ValueError(f"{known_ones}: set it in its own widget above")
    for name in list(body):
        if name not in known:
            body.pop(name)
    body.update(extra)


# --- widgets --------------------------------------------------------------------------------


def _fmt_unset(value: Any) -> str:
    if value is None:
        return UNSET_LABEL
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _widget(draw: Callable[..., Any], label: str, key: str, **options: Any) -> None:
    draw(label, key=key, **options)


def _draw(f: Field) -> None:
    label = f.label or f.name
    common = dict(help=f.help, on_change=_on_field, args=(f.name,))
    if f.kind == "float":
        _widget(st.number_input, label, f.key, min_value=f.min, max_value=f.max, step=f.step, format="%.2f",
                placeholder=UNSET_LABEL, **common)
    elif f.kind == "int":
        _widget(st.number_input, label, f.key, min_value=None if f.min is None else int(f.min),
                max_value=None if f.max is None else int(f.max), step=1, placeholder=UNSET_LABEL, **common)
    elif f.kind == "tri":
        _widget(st.selectbox, label, f.key, options=TRI, format_func=_fmt_unset, placeholder=UNSET_LABEL, **common)
    elif f.kind == "choice":
        _widget(st.selectbox, label, f.key, options=[None, *f.options], format_func=_fmt_unset,
                placeholder=UNSET_LABEL, **common)
    elif f.kind == "multi":
        _widget(st.multiselect, label, f.key, options=list(f.options), placeholder=UNSET_LABEL, **common)
    elif f.kind in ("stop", "json"):
        _widget(st.text_area, label, f.key, height=68 if f.kind == "stop" else 100, placeholder=UNSET_LABEL, **common)
    _show_error(f.key)


def _show_error(source: str) -> None:
    message = request_state.errors().get(source)
    if message:
        st.error(_escape(message), icon=":material/error:")


def _escape(text: str) -> str:
    from playground.textsafe import escape_markdown

    return escape_markdown(text)


def _group(title: str, expanded: bool, extra: Callable[[], None] | None = None, after: bool = True) -> None:
    with st.expander(title, expanded=expanded):
        if extra is not None and not after:
            extra()
        small = [f for f in GROUPS[title] if f.kind in ("float", "int", "tri", "choice") and len(f.name) <= 17]
        for i in range(0, len(small), 2):
            for column, f in zip(st.columns(2), small[i:i + 2]):
                with column:
                    _draw(f)
        for f in GROUPS[title]:
            if f not in small:
                _draw(f)
        if extra is not None and after:
            extra()


def _output_extras() -> None:
    rf = dict(on_change=_on_response_format)
    _widget(st.selectbox, "response_format", "p_response_format_type",
            options=[None, "text", "json_object", "json_schema"], format_func=_fmt_unset, placeholder=UNSET_LABEL,
            args=("p_response_format_type",), help="Plain text, any JSON object, or JSON that follows a schema.", **rf)
    if st.session_state.get("p_response_format_type") == "json_schema":
        _widget(st.text_input, "Schema name", "p_response_format_name", args=("p_response_format_name",),
                help="A short name for the schema (letters, digits, _ and -).", **rf)
        _widget(st.text_area, "JSON schema", "p_response_format_schema", height=160,
                args=("p_response_format_schema",), help="The JSON Schema the answer must follow.",
                placeholder='{"type": "object", "properties": {}}', **rf)
        _widget(st.selectbox, "strict", "p_response_format_strict", options=TRI, format_func=_fmt_unset,
                placeholder=UNSET_LABEL, args=("p_response_format_strict",),
                help="Follow the schema exactly (servers that support it).", **rf)
    _show_error("p_response_format")
    c1, c2 = st.columns(2)
    with c1:
        _widget(st.text_input, "audio voice", "p_audio_voice", on_change=_on_audio, args=("p_audio_voice",),
                placeholder=UNSET_LABEL, help="Voice for audio output, e.g. alloy.")
    with c2:
        _widget(st.selectbox, "audio format", "p_audio_format", options=[None, *AUDIO_FORMATS],
                format_func=_fmt_unset, placeholder=UNSET_LABEL, on_change=_on_audio, args=("p_audio_format",),
                help="Encoding of the audio output.")
    _show_error("p_audio")
    _widget(st.text_area, "prediction", "p_prediction", height=68, on_change=_on_prediction, args=("p_prediction",),
            placeholder=UNSET_LABEL, help="Predicted output (e.g. a file being edited) to speed up generation.")
    _show_error("p_prediction")


def _tools_extras() -> None:
    _named_choice_widgets("tool_choice", ["none", "auto", "required"], _on_tool_choice, "tool_choice function",
                          "Whether the model may, must, or must not call a tool; or which one.")
    _named_choice_widgets("function_call", ["none", "auto"], _on_function_call, "function_call name",
                          "Deprecated twin of tool_choice, for functions.")


def _named_choice_widgets(field: str, keywords: list[str], on_change: Callable[[str], None], name_label: str,
                          help: str) -> None:
    """A keyword, or "function" and then the function's name."""
    key = f"p_{field}"
    _widget(st.selectbox, field, key, options=[None, *keywords, "function"], format_func=_fmt_unset,
            placeholder=UNSET_LABEL, on_change=on_change, args=(key,), help=help)
    if st.session_state.get(key) == "function":
        _widget(st.text_input, name_label, f"{key}_name", on_change=on_change, args=(f"{key}_name",),
                help="The name of the function the model must call.")
    _show_error(key)


def _advanced_extras() -> None:
    _widget(st.selectbox, "stream_options.include_usage", "p_stream_include_usage", options=TRI,
            format_func=_fmt_unset, placeholder=UNSET_LABEL, on_change=_on_stream_options,
            args=("p_stream_include_usage",), help="Send token usage in a last chunk of the stream.")
    _show_error("p_stream_options")
    _widget(st.text_area, "Extra fields", "p_extra", height=100, on_change=_on_extra, args=("p_extra",), placeholder='{"min_p": 0.05}',
            help="Fields this app does not know, sent unchanged, as a JSON object (vLLM's min_p, ...).")
    _show_error("p_extra")


def render() -> None:
    """The grouped parameter form. Needs request_state.ensure() to have run first."""
    request = request_state.get_request()
    _group("Sampling", True)
    _group("Length and stop", True)
    _group("Penalties", bool(request.frequency_penalty or request.presence_penalty or request.logit_bias))
    _group("Logprobs", bool(request.logprobs))
    _group("Output", bool(request.response_format or request.modalities or request.audio or request.prediction),
           extra=_output_extras, after=False)
    _group("Tools", bool(request.tools or request.functions or request.tool_choice), extra=_tools_extras)
    _group("Advanced", bool(request.extra_fields or request.reasoning_effort or request.metadata), extra=_advanced_extras)

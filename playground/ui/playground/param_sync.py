"""Between the parameter form and st.session_state["request"]: `sync_from_request` draws the
request into the widgets, and the on_change callbacks here write a widget's change back,
validated. A value that does not validate is reported under its widget (by source key) and
the request keeps its last valid value.
"""

from __future__ import annotations

from typing import Any, Callable

from pydantic import ValidationError

from playground.client.schema import ChatRequest, describe_error
from playground.ui.common import widget_sync
from playground.ui.playground import state as request_state
from playground.ui.playground.param_fields import BY_NAME, decode_line, parse_json, widget_values


def sync_from_request(request: ChatRequest, only_missing: bool = False) -> None:
    for key, value in widget_values(request).items():
        if not only_missing or not widget_sync.has(key):
            widget_sync.write(key, value)


def _write(key: str, source: str, change: Callable[[dict[str, Any]], None], resync: bool = False) -> None:
    """What every on_change callback here does: apply `change` to the wire body and commit, or
    report why not under `source`. With `resync`, redraw the form from the result (for a widget
    that changes others)."""
    body = request_state.get_request().to_wire()
    try:
        change(body)
        new = ChatRequest.from_wire(body)
    except ValidationError as error:
        request_state.set_error(source, "; ".join(describe_error(error)))
        return
    except ValueError as error:
        name, text = source.removeprefix("p_"), str(error)
        request_state.set_error(source, text if text.startswith(f"{name} ") else f"{name}: {text}")
        return
    request_state.set_error(source, None)
    request_state.commit(new, source="form")
    if resync:
        sync_from_request(new)


Change = Callable[[dict[str, Any], Any], None]  # change(wire body, the widgets' values by base key)


def _writes(source: str, resync: bool = False) -> Callable[[Change], Callable[[str], None]]:
    """Decorator for the compound fields: `change(body, state)` becomes the on_change
    callback (args=(widget key,)) of every widget that edits `source`."""

    def wrap(change: Change) -> Callable[[str], None]:
        def callback(key: str) -> None:
            _write(key, source, lambda body: change(body, widget_sync.Values()), resync)

        return callback

    return wrap


def _set(body: dict[str, Any], name: str, value: Any) -> None:
    if value is None or value == [] or value == "":
        body.pop(name, None)
    else:
        body[name] = value


def on_field(name: str) -> None:
    """The on_change of the widget of a simple field (param_fields.GROUPS)."""
    f = BY_NAME[name]

    def change(body: dict[str, Any]) -> None:
        raw = widget_sync.value(f.key)
        if f.kind == "json":
            value = parse_json(raw, f.json_type)
        elif f.kind == "stop":
            lines = [decode_line(line) for line in (raw or "").split("\n") if line != ""]
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
def on_response_format(body: dict[str, Any], s: Any) -> None:
    kind = s["p_response_format_type"]
    if kind is None:
        body.pop("response_format", None)
        return
    rf = dict(body.get("response_format") or {})
    rf["type"] = kind
    if kind == "json_schema":
        js = dict(rf.get("json_schema") or {})
        js["name"] = s["p_response_format_name"] or js.get("name") or "answer"
        _set(js, "schema", parse_json(s["p_response_format_schema"], dict))
        _set(js, "strict", s["p_response_format_strict"])
        rf["json_schema"] = js
    else:
        rf.pop("json_schema", None)
    body["response_format"] = rf


@_writes("p_audio")
def on_audio(body: dict[str, Any], s: Any) -> None:
    voice, fmt = (s["p_audio_voice"] or "").strip(), s["p_audio_format"]
    if not voice and fmt is None:
        body.pop("audio", None)
        return
    if not voice or fmt is None:
        raise ValueError("audio needs both a voice and a format")
    body["audio"] = {**(body.get("audio") or {}), "voice": voice, "format": fmt}


@_writes("p_prediction")
def on_prediction(body: dict[str, Any], s: Any) -> None:
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
def on_tool_choice(body: dict[str, Any], s: Any) -> None:
    _set_named_choice(body, "tool_choice", s["p_tool_choice"], s.get("p_tool_choice_name"), tool_style=True)


@_writes("p_function_call")
def on_function_call(body: dict[str, Any], s: Any) -> None:
    _set_named_choice(body, "function_call", s["p_function_call"], s.get("p_function_call_name"), tool_style=False)


@_writes("p_stream_options")
def on_stream_options(body: dict[str, Any], s: Any) -> None:
    options = dict(body.get("stream_options") or {})
    _set(options, "include_usage", s["p_stream_include_usage"])
    _set(body, "stream_options", options or None)


@_writes("p_extra")
def on_extra(body: dict[str, Any], s: Any) -> None:
    extra = parse_json(s["p_extra"], dict) or {}
    known = set(ChatRequest.model_fields)
    clash = sorted(set(extra) & known)
    if clash:
        known_ones = f"{clash[0]} is a known field" if len(clash) == 1 else f"{', '.join(clash)} are known fields"
        raise ValueError(f"{known_ones}: set it in its own widget above")
    for name in list(body):
        if name not in known:
            body.pop(name)
    body.update(extra)

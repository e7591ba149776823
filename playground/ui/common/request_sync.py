"""Between an editor's parameter form and its request: `sync_from_request` draws the request
into the widgets, and the on_change callbacks here write a widget's change back, validated. A
value that does not validate is reported under its widget (by its base key) and the request
keeps its last valid value. Every callback gets the editor it belongs to as its first argument.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from pydantic import ValidationError

from playground.client.endpoint import Endpoint
from playground.client.schema import ChatRequest, describe_error
from playground.ui.common import widget_sync
from playground.ui.common.request_fields import BY_NAME, decode_line, parse_json, widget_values

FORM_VIEW, JSON_VIEW = "params", "json"  # the two views that sync (the message editor tells a change by itself)


class RequestEditor(Protocol):
    """What the form and the JSON view use of playground.ui.common.request_editor.RequestEditor
    (named here so that they need not import it: the editor imports them)."""

    open_groups: bool
    on_json_commit: Callable[[ChatRequest], None] | None
    show_model: bool
    endpoint: Callable[[], Endpoint | None] | None

    def key(self, base: str) -> str: ...
    def get(self) -> ChatRequest: ...
    def load(self, request: ChatRequest) -> None: ...
    def commit(self, request: ChatRequest, source: str) -> None: ...
    def needs_sync(self, view: str) -> bool: ...
    def errors(self) -> dict[str, str]: ...
    def set_error(self, source: str, message: str | None) -> None: ...
    def show_error(self, source: str) -> None: ...
    def group_key(self, title: str) -> str: ...


def endpoint_of(editor: RequestEditor) -> Endpoint | None:
    return editor.endpoint() if editor.endpoint is not None else None


def follow_token_limit_field(editor: RequestEditor) -> Endpoint | None:
    """Before a view draws (issue 22): a token limit set in the field the editor's endpoint does
    not read moves to the one it reads (a preset made for SGP, opened on the sandbox; an endpoint
    changed), so every view shows the body that is sent. Returns the endpoint."""
    endpoint = endpoint_of(editor)
    if endpoint is not None:
        request = editor.get()
        moved = endpoint.prepare(request)  # the limit in the endpoint's field, as the client sends it
        if moved is not request:
            editor.load(moved)
    return endpoint


def sync_from_request(editor: RequestEditor, request: ChatRequest, only_missing: bool = False) -> None:
    values = widget_values(request)
    if editor.show_model:
        values["p_model"] = request.model
    for base, value in values.items():
        if not only_missing or not widget_sync.has(editor.key(base)):
            widget_sync.write(editor.key(base), value)


class Values:
    """An editor's widget values by base key, for callbacks that read several (`values["p_x"]`)."""

    def __init__(self, editor: RequestEditor) -> None:
        self._editor = editor

    def __getitem__(self, base: str) -> Any:
        return widget_sync.value(self._editor.key(base))

    def get(self, base: str, default: Any = None) -> Any:
        return widget_sync.value(self._editor.key(base), default)


def _write(editor: RequestEditor, source: str, change: Callable[[dict[str, Any]], None], resync: bool = False) -> None:
    """What every on_change callback here does: apply `change` to the wire body and commit, or
    report why not under `source`. With `resync`, redraw the form from the result (for a widget
    that changes others)."""
    body = editor.get().to_wire()
    try:
        change(body)
        new = ChatRequest.from_wire(body)
    except ValidationError as error:
        editor.set_error(source, "; ".join(describe_error(error)))
        return
    except ValueError as error:
        name, text = source.removeprefix("p_"), str(error)
        editor.set_error(source, text if text.startswith(f"{name} ") else f"{name}: {text}")
        return
    editor.set_error(source, None)
    editor.commit(new, source="form")
    if resync:
        sync_from_request(editor, new)


Change = Callable[[dict[str, Any], Values], None]  # change(wire body, the widgets' values by base key)


def _writes(source: str, resync: bool = False) -> Callable[[Change], Callable[[RequestEditor], None]]:
    """Decorator for the compound fields: `change(body, values)` becomes the on_change
    callback (args=(editor,)) of every widget that edits `source`."""

    def wrap(change: Change) -> Callable[[RequestEditor], None]:
        def callback(editor: RequestEditor) -> None:
            _write(editor, source, lambda body: change(body, Values(editor)), resync)

        return callback

    return wrap


def _set(body: dict[str, Any], name: str, value: Any) -> None:
    if value is None or value == [] or value == "":
        body.pop(name, None)
    else:
        body[name] = value


def on_field(editor: RequestEditor, name: str) -> None:
    """The on_change of the widget of a simple field (request_fields.GROUPS)."""
    f = BY_NAME[name]

    def change(body: dict[str, Any]) -> None:
        raw = widget_sync.value(editor.key(f.key))
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

    _write(editor, f.key, change, resync=name in ("logprobs", "top_logprobs"))


@_writes("p_model")
def on_model(body: dict[str, Any], s: Values) -> None:
    model = (s["p_model"] or "").strip()
    if not model:
        raise ValueError("type the model's name (vendor/model on SGP)")
    body["model"] = model


@_writes("p_response_format", resync=True)
def on_response_format(body: dict[str, Any], s: Values) -> None:
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
def on_audio(body: dict[str, Any], s: Values) -> None:
    voice, fmt = (s["p_audio_voice"] or "").strip(), s["p_audio_format"]
    if not voice and fmt is None:
        body.pop("audio", None)
        return
    if not voice or fmt is None:
        raise ValueError("audio needs both a voice and a format")
    body["audio"] = {**(body.get("audio") or {}), "voice": voice, "format": fmt}


@_writes("p_prediction")
def on_prediction(body: dict[str, Any], s: Values) -> None:
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
def on_tool_choice(body: dict[str, Any], s: Values) -> None:
    _set_named_choice(body, "tool_choice", s["p_tool_choice"], s.get("p_tool_choice_name"), tool_style=True)


@_writes("p_function_call")
def on_function_call(body: dict[str, Any], s: Values) -> None:
    _set_named_choice(body, "function_call", s["p_function_call"], s.get("p_function_call_name"), tool_style=False)


@_writes("p_stream_options")
def on_stream_options(body: dict[str, Any], s: Values) -> None:
    options = dict(body.get("stream_options") or {})
    _set(options, "include_usage", s["p_stream_include_usage"])
    _set(body, "stream_options", options or None)


@_writes("p_extra")
def on_extra(body: dict[str, Any], s: Values) -> None:
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

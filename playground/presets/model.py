"""Presets: a named, tagged ChatRequest with template variables, stored as canonical JSON.

A preset file is the unit teams share: committed in presets/, sent as a file, or packed into a
share link. Each path refuses secrets and reports a bad file in plain words. The folder store
is playground.presets.store and the link codec playground.presets.sharelink; the package
(playground.presets) re-exports all three.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from playground.client.schema import ChatRequest, describe_error
from playground.presets.sharelink import MAX_TOKEN_CHARS, ShareLinkError, ShareLinkTooLarge, decode_token, encode_token
from playground.secrets_check import SecretFoundError, check_no_secrets

SCHEMA_VERSION = 1
MAX_FILE_BYTES = 1_000_000
VARIABLE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

__all__ = [
    "SCHEMA_VERSION", "MAX_FILE_BYTES", "MAX_TOKEN_CHARS", "Preset", "Variable", "EndpointHint", "Check",
    "CHECK_KINDS",
    "PresetFileError", "MissingVariableError", "SecretFoundError", "ShareLinkError", "ShareLinkTooLarge",
    "preset_to_json", "preset_from_json", "parse_preset_bytes", "variables_in", "fill_variables", "read_variables",
    "to_share_token", "from_share_token", "schema_text", "write_schema",
]


class EndpointHint(BaseModel):
    """Which kind of endpoint and model the preset was made for. Never a key or an account id."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sgp", "openai", "local", "custom"] | None = None
    model: str | None = None


class Variable(BaseModel):
    """A `{{name}}` placeholder in message text; default None means the user must give a value."""

    model_config = ConfigDict(extra="forbid")

    name: str
    default: str | None = None
    description: str = ""

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"variable name {value!r} must be letters, digits and _ (not starting with a digit)")
        return value


CheckKind = Literal["equals", "contains", "not_contains", "regex", "json_valid", "json_schema", "tool_called",
                    "max_latency_s", "max_completion_tokens", "max_cost", "min_confidence", "max_perplexity",
                    "starts_with", "not_regex", "contains_any", "contains_all", "contains_json", "json_path",
                    "finish_reason", "similar", "python", "rubric"]
CHECK_KINDS: tuple[str, ...] = CheckKind.__args__  # type: ignore[attr-defined]
_TEXT_KINDS = ("equals", "contains", "not_contains", "regex", "starts_with", "not_regex", "finish_reason", "similar",
               "python")
_LIST_KINDS = ("contains_any", "contains_all")
_LIMIT_KINDS = ("max_latency_s", "max_completion_tokens", "max_cost", "min_confidence", "max_perplexity")


class Check(BaseModel):
    """One test an experiment applies to every answer (playground.experiments.checks runs it).

    Text kinds compare the answer with `value`, whose `{{variables}}` come from the case
    (`{{expected}}`: the case's expected answer, the default for equals, contains and regex).
    Limit kinds compare a number with `limit`. min_confidence reads logprobs: the first answer
    token's probability, or with `labels` the probability mass of the tokens that begin the
    answered label. json_schema uses `schema`, else the request's response_format schema;
    tool_called wants a call of `tool` (any tool when unset) with arguments valid for it.
    contains_any/contains_all look for each of `values`; contains_json finds the first JSON value
    in the answer (`schema` optional); json_path reads `path` in it and compares with `value` (or
    matches the regex `matches`); similar scores the answer against `value` (difflib ratio);
    python calls `value` ("file.py:function", in the preset's folder); rubric asks a grader model
    (`grader` endpoint, `model`) to rate the answer against the prompt in `value`.
    Any check: `weight` in the trial's score (the weighted mean of its checks' scores), and
    `threshold`: the score at which a scored check (similar, python, rubric) passes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kind: CheckKind
    value: str | None = None
    ignore_case: bool = False
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    tool: str | None = None
    limit: float | None = None
    labels: list[str] | None = None
    values: list[str] | None = None  # contains_any / contains_all
    path: str | None = None  # json_path: $.a.b[0]
    matches: str | None = None  # json_path: a regex instead of value
    weight: float = Field(default=1.0, ge=0)
    threshold: float | None = Field(default=None, ge=0, le=1)
    grader: str | None = None  # rubric: the grader's endpoint (None: --grader, else the variant's own)
    model: str | None = None  # rubric: the grader's model (None: --grader-model, else the variant's); similar: an
    # embedding model (cosine similarity where the endpoint serves embeddings; difflib's ratio where it does not)

    @model_validator(mode="after")
    def _fields_for_kind(self) -> "Check":
        kind = self.kind
        if kind == "not_contains" and not self.value:
            raise ValueError("a not_contains check needs a value (the text that must not appear)")
        if kind == "regex" and self.value and not VARIABLE_RE.search(self.value):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"regex {self.value!r} does not compile: {exc}") from None
        if kind in _LIMIT_KINDS:
            if self.limit is None:
                raise ValueError(f"a {kind} check needs a limit")
            if self.limit < 0 or (kind == "min_confidence" and self.limit > 1):
                raise ValueError(f"the limit of {kind} must be " + ("in 0..1" if kind == "min_confidence" else ">= 0"))
        if self.labels is not None and (kind != "min_confidence" or not [x for x in self.labels if x.strip()]):
            raise ValueError("labels belong to a min_confidence check and need at least one non-blank label")
        if kind in _LIST_KINDS and not [x for x in self.values or [] if x.strip()]:
            raise ValueError(f"a {kind} check needs values (a list of texts)")
        if self.values is not None and kind not in _LIST_KINDS:
            raise ValueError("values belong to a contains_any or contains_all check")
        if kind == "json_path" and not (self.path or "").strip():
            raise ValueError("a json_path check needs a path, such as $.answer or $.items[0].name")
        if (self.path is not None or self.matches is not None) and kind != "json_path":
            raise ValueError("path and matches belong to a json_path check")
        if kind in ("not_regex", "finish_reason", "python", "rubric") and not self.value:
            what = {"not_regex": "the pattern that must not match", "finish_reason": "the finish reason, e.g. stop",
                    "python": "file.py:function", "rubric": "the grader's prompt"}[kind]
            raise ValueError(f"a {kind} check needs a value ({what})")
        if kind == "python" and not re.fullmatch(r"[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*", self.value or ""):
            raise ValueError(f"a python check's value is file.py:function, not {self.value!r}")
        if self.grader is not None and kind != "rubric":
            raise ValueError("grader and model belong to a rubric check")
        if self.model is not None and kind not in ("rubric", "similar"):
            raise ValueError("grader and model belong to a rubric check (model also to similar: its embedding model)")
        for pattern in ((self.value if kind == "not_regex" else None), self.matches):
            if pattern and not VARIABLE_RE.search(pattern):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"regex {pattern!r} does not compile: {exc}") from None
        return self

    def to_dict(self) -> dict[str, Any]:
        """Only what is set, as written in a preset file."""
        return {"kind": self.kind, **self.model_dump(by_alias=True, exclude_defaults=True)}

    @property
    def label(self) -> str:
        """A short name for tables: the kind and its argument."""
        if self.kind in _TEXT_KINDS:
            return f"{self.kind} {self.value or '{{expected}}'}" + (f" >= {self.threshold:g}" if self.threshold else "")
        if self.kind in _LIST_KINDS:
            return f"{self.kind} {' | '.join(self.values or [])}"
        if self.kind == "json_path":
            return f"json_path {self.path} " + (f"~ /{self.matches}/" if self.matches else f"== {self.value}")
        if self.kind == "rubric":
            text = " ".join((self.value or "").split())
            return "rubric " + (text if len(text) <= 40 else text[:39] + "\u2026")
        if self.kind in _LIMIT_KINDS:
            return f"{self.kind} {self.limit:g}" + (f" over {'/'.join(self.labels)}" if self.labels else "")
        if self.kind == "tool_called":
            return f"tool_called {self.tool or '(any)'}"
        return self.kind


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(json_schema_extra={"const": 1})
    name: str = Field(min_length=1, max_length=120)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    endpoint: EndpointHint | None = None
    variables: list[Variable] = Field(default_factory=list)
    request: ChatRequest
    checks: list[Check] = Field(default_factory=list)  # optional: files without it stay valid
    pass_threshold: float | None = Field(default=None, ge=0, le=1)  # None: every check must pass
    tool_results: dict[str, Any] = Field(
        default_factory=dict,
        description="Answers to the request's tool calls, per tool name: a fixed JSON value, or a template "
                    "whose strings may hold {{arguments.NAME}} (a path into the call's arguments, with an "
                    "optional default: {{arguments.unit|celsius}}) or {{arguments}}. The Playground pre-fills "
                    "the result boxes with them and runs Auto-continue on them (playground.tools).")

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"unknown schema_version {value} (this Playground reads version {SCHEMA_VERSION})")
        return value

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name must not be blank")
        return value

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, value: list[str]) -> list[str]:
        seen: list[str] = []
        for tag in (t.strip() for t in value):
            if tag and tag not in seen:
                seen.append(tag)
        return seen

    @model_validator(mode="after")
    def _tool_results_fit(self) -> "Preset":
        from playground.tools import template_problems  # playground.tools imports the client only

        names = [tool.function.name for tool in self.request.tools or []]
        for name, template in self.tool_results.items():
            if name not in names:
                raise ValueError(f"tool_results answers {name!r}, which is not one of the request's tools "
                                 f"({', '.join(names) or 'it has none'})")
            problems = template_problems(template)
            if problems:
                raise ValueError(f"tool_results for {name!r}: {'; '.join(problems)}")
        return self

    @classmethod
    def new(cls, name: str, request: ChatRequest, description: str = "", tags: list[str] | None = None,
            endpoint_kind: str | None = None, variables: list[Variable] | None = None,
            tool_results: dict[str, Any] | None = None) -> "Preset":
        """A preset of `request`, declaring every `{{var}}` its messages use (no defaults)."""
        declared = {v.name: v for v in variables or []}
        for var in variables_in(request):
            declared.setdefault(var, Variable(name=var))
        hint = EndpointHint(kind=endpoint_kind, model=request.model)
        return cls(schema_version=SCHEMA_VERSION, name=name, description=description, tags=tags or [],
                   endpoint=hint, variables=list(declared.values()), request=request, tool_results=tool_results or {})

    def to_dict(self) -> dict[str, Any]:
        """The canonical structure: fixed key order, request as sent on the wire."""
        wire = self.request.to_wire()
        known = [k for k in ChatRequest.model_fields if k in wire]
        request = {k: wire[k] for k in known} | {k: wire[k] for k in sorted(wire) if k not in known}
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "description": self.description,
            "tags": list(self.tags),
            "endpoint": self.endpoint.model_dump() if self.endpoint else None,
            "variables": [v.model_dump() for v in self.variables],
            "request": request,
        } | ({"checks": [check.to_dict() for check in self.checks]} if self.checks else {}) | (
            {"pass_threshold": self.pass_threshold} if self.pass_threshold is not None else {}) | (
            {"tool_results": self.tool_results} if self.tool_results else {})

    def defaults(self) -> dict[str, str | None]:
        values: dict[str, str | None] = {v.name: v.default for v in self.variables}
        for var in variables_in(self.request):
            values.setdefault(var, None)
        return values


class PresetFileError(ValueError):
    """A preset file (or dict) that cannot be used, with the reason in plain words."""

    def __init__(self, source: str, reason: str):
        self.source, self.reason = source, reason
        super().__init__(f"{source}: {reason}" if source else reason)


class MissingVariableError(ValueError):
    def __init__(self, names: list[str]):
        self.names = names
        listed = ", ".join(f"{{{{{n}}}}}" for n in names)
        super().__init__(f"Fill in a value for {listed} before sending: the prompt uses "
                         f"{'it' if len(names) == 1 else 'them'} and no default is set.")


# --- canonical JSON ---------------------------------------------------------------------------


def preset_to_json(preset: Preset) -> str:
    """Canonical text: fixed key order, 2-space indent, UTF-8 kept readable, trailing newline."""
    return json.dumps(preset.to_dict(), indent=2, ensure_ascii=False) + "\n"


def preset_from_dict(data: Any, source: str = "") -> Preset:
    """Validate a parsed structure: secrets, schema_version, then every field."""
    if not isinstance(data, dict):
        raise PresetFileError(source, f"expected a JSON object with the preset's fields, got {type(data).__name__}")
    try:
        check_no_secrets(data)
    except SecretFoundError as exc:
        raise PresetFileError(source, str(exc)) from exc
    if "schema_version" not in data:
        raise PresetFileError(source, "missing field 'schema_version' (is this a Playground preset file?)")
    version = data["schema_version"]
    if version != SCHEMA_VERSION:
        raise PresetFileError(source, f"unknown schema_version {version!r} (this Playground reads version "
                                      f"{SCHEMA_VERSION}); it was made by another version of the app")
    try:
        return Preset.model_validate(data)
    except ValidationError as exc:
        raise PresetFileError(source, "; ".join(_describe(exc))) from exc


def _describe(exc: ValidationError) -> list[str]:
    lines = []
    for error, line in zip(exc.errors(), describe_error(exc)):
        if error["type"] == "missing":
            line = "missing field '" + ".".join(str(p) for p in error["loc"]) + "'"
        lines.append(line)
    return lines


def preset_from_json(text: str, source: str = "") -> Preset:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise PresetFileError(source, f"the JSON ends too early (truncated file?): {exc.msg} ({where})") from exc
        raise PresetFileError(source, f"not valid JSON: {exc.msg} ({where})") from exc
    return preset_from_dict(data, source)


def parse_preset_bytes(data: bytes, source: str = "") -> Preset:
    """An uploaded or read file's bytes as a Preset, or PresetFileError with the reason."""
    if len(data) > MAX_FILE_BYTES:
        raise PresetFileError(source, f"the file is over 1 MB ({len(data):,} bytes); a preset is a few KB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PresetFileError(source, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start}); "
                                      "a preset file is UTF-8 JSON") from exc
    return preset_from_json(text.removeprefix("\ufeff"), source)


# --- variables --------------------------------------------------------------------------------


def variables_in(request: ChatRequest) -> list[str]:
    """The `{{name}}` variables in the request's message text, in order of first use."""
    names: list[str] = []
    for message in request.messages:
        for text in _texts(message.content if hasattr(message, "content") else None):
            for name in VARIABLE_RE.findall(text):
                if name not in names:
                    names.append(name)
    return names


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part.text for part in content if getattr(part, "text", None)]
    return []


def fill_variables(request: ChatRequest, values: Mapping[str, str | None]) -> ChatRequest:
    """A copy of `request` with every `{{name}}` replaced; MissingVariableError when one has no value."""
    missing = [n for n in variables_in(request) if values.get(n) is None]
    if missing:
        raise MissingVariableError(missing)

    def sub(text: str) -> str:
        return VARIABLE_RE.sub(lambda m: str(values[m.group(1)]), text)

    wire = request.to_wire()
    for message in wire["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = sub(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    part["text"] = sub(part["text"])
    return ChatRequest.from_wire(wire)


def _template_pattern(template: str) -> re.Pattern[str]:
    """`template` as a regex: its text literal, each `{{name}}` a group (a name used twice must
    match the same text twice)."""
    parts, seen, at = [], set(), 0
    for match in VARIABLE_RE.finditer(template):
        parts.append(re.escape(template[at:match.start()]))
        name = match.group(1)
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.*?)")
        seen.add(name)
        at = match.end()
    parts.append(re.escape(template[at:]))
    return re.compile("".join(parts), re.DOTALL)


def read_variables(template: ChatRequest, filled: ChatRequest) -> dict[str, str] | None:
    """The values that turn `template`'s messages into `filled`'s (fill_variables backwards), or
    None when `filled` was not made from it: a past run's variables, read from its messages."""
    if len(template.messages) != len(filled.messages):
        return None
    values: dict[str, str] = {}
    for ours, theirs in zip(template.messages, filled.messages):
        if ours.role != theirs.role:
            return None
        mine = _texts(ours.content if hasattr(ours, "content") else None)
        sent = _texts(theirs.content if hasattr(theirs, "content") else None)
        if len(mine) != len(sent):
            return None
        for text, other in zip(mine, sent):
            found = _template_pattern(text).fullmatch(other)
            if found is None:
                return None
            for name, value in found.groupdict().items():
                if values.setdefault(name, value) != value:
                    return None  # the same variable filled two ways in two messages
    return values


# --- share links ------------------------------------------------------------------------------


def to_share_token(preset: Preset) -> str:
    """A URL-safe token of the preset; ShareLinkTooLarge over 8 KB, SecretFoundError on a secret."""
    data = preset.to_dict()
    check_no_secrets(data)
    return encode_token(json.dumps(data, separators=(",", ":"), ensure_ascii=False))


def from_share_token(token: str) -> Preset:
    """The preset in a token; ShareLinkError (garbled, tampered, too big, bad content) loads nothing."""
    text = decode_token(token)
    try:
        return preset_from_json(text, "")
    except PresetFileError as exc:
        raise ShareLinkError(f"This share link does not hold a usable preset: {exc.reason}") from exc


# --- JSON Schema of the file format -----------------------------------------------------------


def schema_text() -> str:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "title": "Playground preset", **Preset.model_json_schema(by_alias=True)}
    schema["title"] = "Playground preset"
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path | str | None = None) -> Path:
    """Write presets/preset.schema.json (python -m playground.presets.model regenerates it)."""
    target = Path(path) if path else Path(__file__).resolve().parents[2] / "presets" / "preset.schema.json"
    target.write_text(schema_text(), encoding="utf-8")
    return target


if __name__ == "__main__":
    print(write_schema())

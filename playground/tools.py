"""Tool calls and their answers, outside any page: does a call's arguments validate against its
tool's schema (`check_call`), what a preset's `tool_results` answers a call with
(`fill_result`, `result_for`), and the messages that carry the calls and their results back to
the model (`continuation`). The Playground's call view, its `Send results and continue` and
`Auto-continue`, and the experiments' tool_called check all use these.

A `tool_results` entry is a fixed JSON value or a template over the call's arguments: every
string in it may hold `{{arguments.city}}` (a path into the arguments: `{{arguments.place.name}}`,
`{{arguments.items.0}}`), `{{arguments}}` (all of them), and a default after a bar for an
argument the model left out (`{{arguments.unit|celsius}}`). A string that is one placeholder
and nothing else takes the argument's own JSON value (a number stays a number); inside text the
value is written in (strings as they are, anything else as JSON).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from playground import json_errors
from playground.client.schema import Tool, ToolCall
from playground.json_schema import schema_problem

DEFAULT_ROUNDS = 5  # Auto-continue's limit: answers in a row that may end in tool calls
PLACEHOLDER_RE = re.compile(r"\{\{\s*arguments((?:\.[^.|}\s]+)*)\s*(?:\|([^}]*))?\}\}")
_ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_MISSING = object()


# --- checking a call ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CallCheck:
    """One call as the model made it, and what is wrong with it. `arguments` is the parsed JSON
    (None when it does not parse); `problem` says why the call does not fit (None: it does), and
    `fault` what kind of misfit: "json" (the arguments do not parse), "tool" (the request offers
    no such tool) or "schema" (`problem` is then the schema's first complaint, "$.unit: ...");
    `schema` is False when the request offers the tool without a parameters schema."""

    call: ToolCall
    arguments: Any
    problem: str | None = None
    fault: str | None = None
    schema: bool = True

    @property
    def name(self) -> str:
        return self.call.function.name

    @property
    def valid(self) -> bool:
        return self.problem is None

    @property
    def pretty(self) -> str:
        """The arguments for reading: indented JSON, or the text as it came when it is not JSON."""
        if self.arguments is None and self.call.function.arguments.strip() not in ("", "null"):
            return self.call.function.arguments
        return json.dumps(self.arguments if self.arguments is not None else {}, indent=2, ensure_ascii=False)


def find_tool(name: str, tools: Iterable[Tool] | None) -> Tool | None:
    return next((tool for tool in tools or () if tool.function.name == name), None)


def parse_arguments(text: str) -> tuple[Any, str | None]:
    """A call's arguments string as JSON ("" reads as {}), or None and why not."""
    if not text.strip():
        return {}, None
    value, broken = json_errors.parse(text)
    return (value, None) if broken is None else (None, f"the arguments are not JSON: {broken.headline}")


def check_call(call: ToolCall, tools: Iterable[Tool] | None) -> CallCheck:
    """Whether `call` names a tool of the request and its arguments follow that tool's schema."""
    arguments, problem = parse_arguments(call.function.arguments)
    if problem is not None:
        return CallCheck(call, None, problem, "json")
    tool = find_tool(call.function.name, tools)
    if tool is None:
        offered = ", ".join(t.function.name for t in tools or ()) or "none"
        return CallCheck(call, arguments, f"the request offers no tool named {call.function.name!r} "
                                          f"(its tools: {offered})", "tool")
    schema = tool.function.parameters
    if not schema:
        return CallCheck(call, arguments, schema=False)
    try:
        problem = schema_problem(arguments, schema)
    except Exception as error:  # noqa: BLE001 - jsonschema's errors for a broken schema vary by keyword
        problem = f"the tool's schema cannot be used: {error}"
    return CallCheck(call, arguments, problem, "schema" if problem else None)


# --- answering a call from a preset's tool_results -------------------------------------------


class ToolResultError(ValueError):
    """A tool_results template that cannot be filled for a call, with the reason."""


def template_problems(template: Any) -> list[str]:
    """The `{{...}}` of a tool_results entry that are not argument placeholders (a typo such as
    `{{argument.city}}` would otherwise be sent to the model as it is)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            for match in _ANY_PLACEHOLDER.finditer(value):
                if not PLACEHOLDER_RE.fullmatch(match.group(0)):
                    found.append(f"{match.group(0)} is not a placeholder (write {{{{arguments.NAME}}}})")
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(template)
    return found


def _lookup(arguments: Any, path: str) -> Any:
    value = arguments
    for step in [s for s in path.split(".") if s]:
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return _MISSING
    return value


def _value(match: re.Match[str], arguments: Any) -> Any:
    path, default = match.group(1), match.group(2)
    value = _lookup(arguments, path)
    if value is _MISSING:
        if default is None:
            raise ToolResultError(f"{match.group(0)}: the call has no argument {path.lstrip('.')!r} "
                                  "(give a default after a bar: {{arguments.NAME|default}})")
        return default.strip()
    return value


def _fill(template: Any, arguments: Any) -> Any:
    if isinstance(template, str):
        whole = PLACEHOLDER_RE.fullmatch(template.strip())
        if whole is not None:
            return _value(whole, arguments)

        def text(match: re.Match[str]) -> str:
            value = _value(match, arguments)
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

        return PLACEHOLDER_RE.sub(text, template)
    if isinstance(template, dict):
        return {key: _fill(value, arguments) for key, value in template.items()}
    if isinstance(template, list):
        return [_fill(value, arguments) for value in template]
    return template


def fill_result(template: Any, arguments: Any) -> str:
    """The content of the tool message that answers a call: `template` with the call's
    `arguments` filled in; a string as it is, any other value as JSON. ToolResultError when a
    placeholder names an argument the call lacks and gives no default."""
    value = _fill(template, arguments if arguments is not None else {})
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def result_for(call: ToolCall, tool_results: Mapping[str, Any]) -> str | None:
    """The preset's answer to `call`, or None when it has no entry for that tool.
    ToolResultError when the arguments are not JSON or the template cannot be filled."""
    if call.function.name not in tool_results:
        return None
    arguments, problem = parse_arguments(call.function.arguments)
    if problem is not None:
        raise ToolResultError(problem)
    return fill_result(tool_results[call.function.name], arguments)


# --- carrying the answers back ----------------------------------------------------------------


def continuation(calls: list[ToolCall], results: list[str], text: str = "") -> list[dict[str, Any]]:
    """The messages to append to the conversation: the assistant's turn with its calls (and the
    text it wrote beside them, if any), then one `tool` message per call, in the calls' order."""
    if len(calls) != len(results):
        raise ValueError(f"{len(calls)} tool calls but {len(results)} results")
    assistant: dict[str, Any] = {"role": "assistant"}
    if text:
        assistant["content"] = text
    assistant["tool_calls"] = [call.model_dump(mode="json", exclude_none=True) for call in calls]
    answers = [{"role": "tool", "tool_call_id": call.id, "content": result} for call, result in zip(calls, results)]
    return [assistant, *answers]



def forces_a_call(tool_choice: Any) -> bool:
    """True for "required" or a named function: the model must call a tool on every turn."""
    return tool_choice == "required" or isinstance(tool_choice, dict)


def continued(body: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A request's wire body carried on with `messages` (continuation's). A tool_choice that forces
    a call becomes "none": the forced call is made and answered, and kept as it was it would force
    another after every answer, so the model could never reply in text (a small model given "auto"
    calls again too: the sandbox's does). "auto" stays "auto": the model may call more tools,
    round after round (Auto-continue's loop)."""
    body = {**body, "messages": [*body.get("messages", []), *messages]}
    if forces_a_call(body.get("tool_choice")):
        body["tool_choice"] = "none"
    return body

"""Tool definitions as a user writes them: starting templates, one function from its parts
(name, description, a parameters schema typed as JSON), and tool lists pasted from elsewhere
(OpenAI's chat `tools`, its older `functions`, its Responses API's flat tools, Anthropic's
`input_schema` tools, or a whole request body holding one of those). The tools editor
(playground.ui.common.tools_editor) draws them; no presentation here.

Every function comes out as the wire's {"type": "function", "function": {name, description?,
parameters?, strict?}}. A broken JSON text is reported where it breaks (playground.json_errors:
line, column and the line with a caret); a schema that is not a JSON Schema by the schema's own
metaschema (playground.json_schema.schema_error).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from playground import json_errors
from playground.json_schema import schema_error

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI accepts as a function name

TEMPLATES: dict[str, dict[str, Any]] = {
    "get_weather": {"name": "get_weather", "description": "The current weather in a city.", "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city's name, e.g. Lisbon"},
                       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"], "additionalProperties": False}},
    "search": {"name": "search", "description": "Search the web and return the top results.", "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to search for"},
                       "max_results": {"type": "integer", "minimum": 1, "maximum": 10}},
        "required": ["query"], "additionalProperties": False}},
    "calculator": {"name": "calculator", "description": "Evaluate an arithmetic expression.", "parameters": {
        "type": "object", "properties": {"expression": {"type": "string", "description": "e.g. (2 + 3) * 4"}},
        "required": ["expression"], "additionalProperties": False}},
    "lookup_order": {"name": "lookup_order", "description": "Find an order by its id.", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string", "pattern": "^[A-Z0-9-]+$"}},
        "required": ["order_id"], "additionalProperties": False}},
    "blank": {"name": "my_function", "description": "", "parameters": {
        "type": "object", "properties": {}, "required": [], "additionalProperties": False}},
}


class ToolSpecError(ValueError):
    """A tool definition or list that cannot be used, with where and why."""


def from_template(template: str, taken: set[str]) -> dict[str, Any]:
    """A new function tool from TEMPLATES[template], renamed name_2, name_3... when `taken`."""
    function = copy.deepcopy(TEMPLATES[template])
    base, n = function["name"], 2
    while function["name"] in taken:
        function["name"], n = f"{base}_{n}", n + 1
    return {"type": "function", "function": function}


def check_name(name: str) -> str | None:
    if not name:
        return "a function needs a name"
    if not NAME_RE.match(name):
        return f"{name!r}: a function name is 1 to 64 letters, digits, _ or - (no spaces)"
    return None


def parse_parameters(text: str) -> dict[str, Any] | None:
    """The parameters box's text as a JSON Schema (None when empty). ToolSpecError with the
    place a JSON text breaks (line, column, the line and a caret) or the schema's first fault."""
    if not text.strip():
        return None
    value, broken = json_errors.parse(text)
    if broken is not None:
        raise ToolSpecError(str(broken))
    problem = schema_error(value)
    if problem is not None:
        raise ToolSpecError(f"Not a valid JSON Schema: {problem}")
    return value


def _function(item: Any, where: str) -> dict[str, Any]:
    """One function definition from any of the shapes import_tools takes."""
    if not isinstance(item, dict):
        raise ToolSpecError(f"{where}: expected a tool object, got {type(item).__name__}")
    kind = item.get("type", "function")
    if kind != "function":
        raise ToolSpecError(f"{where}: only function tools can be imported, not type {kind!r}")
    if isinstance(item.get("function"), dict):  # chat completions: {"type": "function", "function": {...}}
        function = dict(item["function"])
    else:  # functions / Responses API / Anthropic: the definition itself
        function = {k: v for k, v in item.items() if k != "type"}
        if "input_schema" in function and "parameters" not in function:
            function["parameters"] = function.pop("input_schema")
    problem = check_name(function.get("name") or "")
    if problem:
        raise ToolSpecError(f"{where}: {problem}")
    if "parameters" in function:
        problem = schema_error(function["parameters"])
        if problem:
            raise ToolSpecError(f"{where} ({function['name']}): parameters is not a valid JSON Schema: {problem}")
    return {"type": "function", "function": function}


def import_tools(text: str) -> list[dict[str, Any]]:
    """Function tools from pasted JSON: a list of tools or functions, one tool, or an object
    with a "tools" or "functions" list (a whole request body). ToolSpecError says what is wrong."""
    data, broken = json_errors.parse(text)
    if broken is not None:
        raise ToolSpecError(str(broken))
    if isinstance(data, dict) and isinstance(data.get("tools") or data.get("functions"), list):
        data = data.get("tools") or data.get("functions")
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ToolSpecError("the list is empty: nothing to import")
    tools = [_function(item, f"item {n + 1}" if isinstance(data, list) else "the tool") for n, item in enumerate(items)]
    names = [tool["function"]["name"] for tool in tools]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ToolSpecError(f"{', '.join(twice)} defined more than once")
    return tools


def merge(current: list[dict[str, Any]], imported: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """`current` with `imported` added; a function of the same name is replaced in its place.
    Returns the list and the names replaced."""
    merged, replaced = [dict(tool) for tool in current], []
    for tool in imported:
        name = tool["function"]["name"]
        at = next((i for i, old in enumerate(merged) if (old.get("function") or {}).get("name") == name), None)
        if at is None:
            merged.append(tool)
        else:
            merged[at] = tool
            replaced.append(name)
    return merged, replaced

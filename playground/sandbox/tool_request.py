"""A request's tools, tool_choice and parallel_tool_calls, checked and turned into what the model
needs: the grammar a call must follow and the lines the prompt gets (tool_calls.py's format).

Refused with a 400 naming the field: a tool type other than function, a name OpenAI would refuse,
two tools of one name, a schema keyword the grammar cannot enforce, tool_choice required or a
named function without tools (or naming a function not among them), and response_format beside
tools the model may call (one grammar at a time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playground.client.schema import ChatRequest, NamedToolChoice
from playground.sandbox.grammars import SchemaError, ToolSpec, check_grammar, check_parameters, tool_call_grammar
from playground.sandbox.tool_calls import tools_text

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # OpenAI's rule for a function's name
NO_PARAMETERS = {"type": "object", "properties": {}}


class ToolRequestError(ValueError):
    """A request's tools the sandbox cannot honour; the message starts with the field."""


@dataclass
class ToolPlan:
    grammar: str
    prompt_text: str  # the lines the system message ends with
    auto: bool  # text or a call: the model chooses


def tool_plan(request: ChatRequest, vocab) -> ToolPlan | None:
    """The tools the model may call for this request, or None (no tools, or tool_choice none)."""
    choice = request.tool_choice
    tools = request.tools or []
    if not tools:
        if choice is not None and choice not in ("none", "auto"):
            raise ToolRequestError("tool_choice: a tool choice other than none or auto needs tools")
        return None
    specs, functions = [], []
    for i, tool in enumerate(tools):
        if tool.type != "function":
            raise ToolRequestError(f"tools[{i}].type: {tool.type!r} tools are not available in the local sandbox; "
                                   "it takes function tools only")
        name = tool.function.name
        if not NAME.match(name):
            raise ToolRequestError(f"tools[{i}].function.name: {name!r} must be 1 to 64 letters, digits, _ or -")
        if name in (spec.name for spec in specs):
            raise ToolRequestError(f"tools[{i}].function.name: two tools are named {name!r}")
        parameters = tool.function.parameters if tool.function.parameters is not None else NO_PARAMETERS
        specs.append(ToolSpec(name, parameters, f"tools[{i}].function.parameters"))
        functions.append(tool.function.model_dump(exclude_none=True))
    if choice == "none":
        return None
    if request.response_format is not None and request.response_format.type != "text":
        raise ToolRequestError("response_format: the local sandbox cannot follow a response format and tools at once "
                               "(set tool_choice to none, or leave response_format out)")
    named = choice.function.name if isinstance(choice, NamedToolChoice) else None
    if named is not None and named not in (spec.name for spec in specs):
        raise ToolRequestError(f"tool_choice.function.name: no tool is named {named!r}")
    parallel = request.parallel_tool_calls is not False and named is None
    auto = choice in (None, "auto")
    try:
        for spec in specs:  # every schema is checked, the ones a named choice leaves out of the grammar too
            check_parameters(spec)
        grammar = tool_call_grammar([s for s in specs if named in (None, s.name)], parallel, allow_text=auto)
        check_grammar(vocab, grammar)
    except SchemaError as error:
        raise ToolRequestError(str(error)) from None
    except ValueError as error:  # llama.cpp would not parse it
        raise ToolRequestError(f"tools: {error}") from None
    text = tools_text(functions, "auto" if auto else "required", named, parallel)
    return ToolPlan(grammar=grammar, prompt_text=text, auto=auto)

"""playground.tools: checking a call against its tool, filling a preset's tool_results, and the
messages that carry calls and results back to the model."""

from __future__ import annotations

import json
import re

import pytest

from playground.client.schema import ChatRequest, Tool, ToolCall
from playground.tools import (
    ToolResultError,
    check_call,
    continuation,
    fill_result,
    result_for,
    template_problems,
)

WEATHER = Tool.model_validate({"type": "function", "function": {
    "name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city"], "additionalProperties": False}}})
BARE = Tool.model_validate({"type": "function", "function": {"name": "now"}})


def call(name: str, arguments: str, id: str = "call_1") -> ToolCall:
    return ToolCall(id=id, function={"name": name, "arguments": arguments})


def test_a_call_that_fits_its_schema():
    checked = check_call(call("get_weather", '{"city": "Oslo", "unit": "celsius"}'), [WEATHER, BARE])
    assert checked.valid and checked.fault is None and checked.schema
    assert checked.arguments == {"city": "Oslo", "unit": "celsius"}
    assert checked.pretty == '{\n  "city": "Oslo",\n  "unit": "celsius"\n}'


@pytest.mark.parametrize("arguments, fault, problem", [
    ('{"unit": "celsius"}', "schema", "$: 'city' is a required property"),
    ('{"city": "Oslo", "unit": "kelvin"}', "schema", "$.unit: 'kelvin' is not one of ['celsius', 'fahrenheit']"),
    ('{"city": 3}', "schema", "$.city: 3 is not of type 'string'"),
    ('{"city": "Oslo", "when": "now"}', "schema", "Additional properties are not allowed"),
    ('{"city": "Os', "json",
     "the arguments are not JSON: Invalid JSON at line 1, column 10: Unterminated string starting at"),
])
def test_a_call_that_does_not_fit_says_why(arguments, fault, problem):
    checked = check_call(call("get_weather", arguments), [WEATHER])
    assert not checked.valid and checked.fault == fault
    assert problem in checked.problem


def test_text_that_is_not_json_is_shown_as_it_came():
    checked = check_call(call("get_weather", "city=Oslo"), [WEATHER])
    assert checked.pretty == "city=Oslo" and checked.arguments is None


def test_a_tool_the_request_does_not_offer():
    checked = check_call(call("get_time", "{}"), [WEATHER, BARE])
    assert checked.fault == "tool"
    assert checked.problem == "the request offers no tool named 'get_time' (its tools: get_weather, now)"


def test_a_tool_without_a_schema_takes_any_arguments_and_says_so():
    checked = check_call(call("now", ""), [BARE])
    assert checked.valid and not checked.schema and checked.arguments == {}


def test_a_broken_schema_is_reported_not_raised():
    broken = Tool.model_validate({"type": "function", "function": {"name": "f", "parameters": {"type": "strin"}}})
    checked = check_call(call("f", "{}"), [broken])
    assert checked.fault == "schema" and "schema cannot be used" in checked.problem


# --- tool_results ------------------------------------------------------------------------------


def test_a_fixed_result_is_sent_as_json():
    fixed = {"temperature_c": 21, "sky": "clear"}
    assert fill_result(fixed, {"city": "Oslo"}) == '{"temperature_c": 21, "sky": "clear"}'
    assert fill_result("sunny", {}) == "sunny"


def test_a_template_over_the_arguments():
    template = {"city": "{{arguments.city}}", "report": "Sunny in {{ arguments.city }}, 21 {{arguments.unit|celsius}}",
                "asked": "{{arguments}}", "days": "{{arguments.days}}", "first": "{{arguments.places.0.name}}"}
    arguments = {"city": "Zürich", "days": 3, "places": [{"name": "Bern"}]}
    filled = json.loads(fill_result(template, arguments))
    assert filled == {"city": "Zürich", "report": "Sunny in Zürich, 21 celsius", "asked": arguments,
                      "days": 3, "first": "Bern"}  # a lone placeholder keeps the argument's JSON type


def test_a_placeholder_for_a_missing_argument_names_it():
    with pytest.raises(ToolResultError, match="the call has no argument 'unit'"):
        fill_result({"unit": "{{arguments.unit}}"}, {"city": "Oslo"})


def test_result_for_a_call():
    results = {"get_weather": {"city": "{{arguments.city}}", "temperature_c": 21}}
    assert result_for(call("get_weather", '{"city": "Oslo"}'), results) == '{"city": "Oslo", "temperature_c": 21}'
    assert result_for(call("now", "{}"), results) is None  # no entry: the user answers it
    with pytest.raises(ToolResultError, match="not JSON"):
        result_for(call("get_weather", "{city"), results)


def test_template_problems_catch_a_typo():
    assert template_problems({"a": ["{{argument.city}}", "{{arguments.city}}"], "b": 1}) == [
        "{{argument.city}} is not a placeholder (write {{arguments.NAME}})"]
    assert template_problems("{{arguments}} and {{arguments.x|y}}") == []


# --- continuing -------------------------------------------------------------------------------


def test_continuation_messages_are_a_valid_request():
    calls = [call("get_weather", '{"city": "Oslo"}', "call_a"), call("now", "", "call_b")]
    messages = continuation(calls, ['{"temperature_c": 21}', "12:00"])
    assert messages == [
        {"role": "assistant", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temperature_c": 21}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
    ]
    request = ChatRequest.from_wire({"model": "m", "messages": [{"role": "user", "content": "Weather?"}, *messages]})
    assert request.to_wire()["messages"][1:] == messages
    with_text = continuation(calls[:1], ["x"], text="Let me look.")
    assert with_text[0]["content"] == "Let me look."
    with pytest.raises(ValueError, match="2 tool calls but 1 results"):
        continuation(calls, ["x"])


# --- the preset field ---------------------------------------------------------------------------


def weather_preset(tool_results) -> dict:
    return {"schema_version": 1, "name": "Weather", "request": {
        "model": "m", "messages": [{"role": "user", "content": "Weather in {{city}}?"}],
        "tools": [WEATHER.model_dump(mode="json", exclude_none=True)]}, "tool_results": tool_results}


def test_a_preset_keeps_its_tool_results_through_a_file():
    from playground.presets import preset_from_json, preset_to_json
    from playground.presets.model import preset_from_dict

    results = {"get_weather": {"city": "{{arguments.city}}", "temperature_c": 21}}
    preset = preset_from_dict(weather_preset(results))
    text = preset_to_json(preset)
    assert json.loads(text)["tool_results"] == results
    assert preset_from_json(text).tool_results == results
    assert "tool_results" not in json.loads(preset_to_json(preset.model_copy(update={"tool_results": {}})))


@pytest.mark.parametrize("results, reason", [
    ({"get_time": "12:00"}, "tool_results answers 'get_time', which is not one of the request's tools (get_weather)"),
    ({"get_weather": {"city": "{{argument.city}}"}},
     "tool_results for 'get_weather': {{argument.city}} is not a placeholder (write {{arguments.NAME}})"),
])
def test_a_preset_with_tool_results_that_cannot_work_is_refused(results, reason):
    from playground.presets import PresetFileError
    from playground.presets.model import preset_from_dict

    with pytest.raises(PresetFileError, match=re.escape(reason)):
        preset_from_dict(weather_preset(results), "weather.json")


@pytest.mark.parametrize("choice, after", [
    ("required", "none"), ({"type": "function", "function": {"name": "get_weather"}}, "none"),
    ("auto", "auto"), ("none", "none"), (None, None)])
def test_a_continuation_no_longer_forces_a_call(choice, after):
    from playground.tools import continued

    body = {"model": "m", "messages": [{"role": "user", "content": "Weather?"}]}
    if choice is not None:
        body["tool_choice"] = choice
    turns = continuation([call("get_weather", '{"city": "Oslo"}')], ["21 C"])
    out = continued(body, turns)
    assert out["messages"] == [*body["messages"], *turns] and out.get("tool_choice") == after
    assert body["messages"] == [{"role": "user", "content": "Weather?"}]  # the caller's body is left as it was

"""The shipped weather-tool-call preset and its cases run on the local model by default, and
Experiments' tool_called check passes on every case: the preset names get_weather in tool_choice,
and the sandbox's grammar holds the call's arguments to the tool's schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.experiments import Experiment, ExperimentRunner, load_cases
from playground.experiments.cases import cases_path
from playground.presets import PresetStore
from playground.sandbox.model import MODEL_ID

pytestmark = pytest.mark.sandbox

SHIPPED = Path(__file__).resolve().parents[1] / "presets"


def test_the_weather_preset_calls_get_weather_on_every_case(sandbox) -> None:
    preset = PresetStore(SHIPPED).load("Weather tool call")
    assert preset.endpoint.kind == "local" and preset.request.model == preset.endpoint.model == MODEL_ID
    assert preset.request.tool_choice.function.name == "get_weather"
    cases = load_cases(cases_path(SHIPPED / "weather-tool-call.json"), list(preset.defaults())).cases
    assert len(cases) >= 5

    runner = ExperimentRunner(Experiment.from_preset(preset, cases), [sandbox.endpoint], save=False).start()
    result = runner.wait(timeout=600)
    assert result is not None and result.status == "finished" and runner.errors == []
    assert len(result.trials) == len(cases)
    for trial in result.trials:
        city = cases[trial.case].values["city"]
        tool = next(check for check in trial.checks if check.label == "tool_called get_weather")
        assert tool.passed is True, (city, tool.reason)
        assert tool.reason.startswith("called get_weather(") and '"city"' in tool.reason
        assert trial.finish_reason == "tool_calls" and trial.answer == ""


def test_its_tool_results_carry_the_loop_to_a_text_answer(sandbox) -> None:
    from playground.client.client import ChatClient
    from playground.client.schema import ChatRequest
    from playground.presets import fill_variables
    from playground.tools import continuation, continued, result_for

    preset = PresetStore(SHIPPED).load("Weather tool call")
    request = fill_variables(preset.request, {"city": "Lisbon"})
    with ChatClient(sandbox.endpoint) as client:
        first = client.run(request)
        assert first.error is None and first.finish_reason == "tool_calls"
        calls = first.choices[0].tool_calls
        results = [result_for(call, preset.tool_results) for call in calls]
        assert all(results) and '"city": "Lisbon"' in results[0]
        body = continued(request.to_wire(), continuation(calls, results))
        second = client.run(ChatRequest.from_wire(body))
    assert second.error is None and second.choices[0].tool_calls == []
    assert second.finish_reason == "stop" and "18" in second.text and "Lisbon" in second.text

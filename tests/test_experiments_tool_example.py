"""The shipped tool-calling example (presets/weather-tool-call.json and its cases) works: run
through the real experiment engine, and through the CLI, against a loopback server that streams
tool-call chunks as OpenAI does. The scripted endpoint can also answer with no call or with bad
arguments, which the local model's grammar never lets through; tests/test_sandbox_tool_preset.py
runs the preset on the local model."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from playground.client.endpoint import LOCAL_MODEL
from playground.experiments import Case, Experiment, ExperimentRunner, cases_to_csv, load_cases
from playground.experiments.cases import cases_path
from playground.experiments.cli import main
from playground.presets import Preset, PresetStore, preset_to_json
from tests.scripted_server import Reply, ScriptedServer

SHIPPED = Path(__file__).resolve().parents[1] / "presets"
PRESET_PATH = SHIPPED / "weather-tool-call.json"


def shipped() -> tuple[Preset, list[Case]]:
    preset = PresetStore(SHIPPED).load("Weather tool call")
    imported = load_cases(cases_path(PRESET_PATH), list(preset.defaults()))
    assert imported.problems == []
    return preset, imported.cases


class WeatherServer(ScriptedServer):
    """Answers by the city in the prompt (one of `cities`): a streamed get_weather call with
    valid arguments, except for the cities in `plain` (a text answer, no call) and `bad_args`
    (a call whose arguments hold a property the tool's schema does not allow)."""

    def __init__(self, cities: list[str], plain: tuple[str, ...] = (), bad_args: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.cities, self.plain, self.bad_args = cities, plain, bad_args
        self.respond = lambda received: self.reply_for(received.json)

    def reply_for(self, body: dict) -> Reply:
        prompt = body["messages"][-1]["content"]
        city = next(c for c in self.cities if c in prompt)
        if city in self.plain:
            return Reply.stream_text(["It is usually ", "mild there."])
        extra = {"country": "somewhere"} if city in self.bad_args else {"unit": "celsius"}
        args = json.dumps({"city": city, **extra}, ensure_ascii=False)
        pieces = [args[n:n + 7] for n in range(0, len(args), 7)]  # arguments arrive in pieces, as OpenAI streams them
        return Reply.stream_tool_call("get_weather", pieces, call_id=f"call_{len(self.requests)}")


@pytest.fixture
def weather():
    servers: list[WeatherServer] = []

    def make(cities: list[str], **scripted: Any) -> WeatherServer:
        servers.append(WeatherServer(cities, **scripted))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_the_shipped_preset_is_a_tool_calling_example() -> None:
    preset, cases = shipped()
    assert PRESET_PATH.read_text(encoding="utf-8") == preset_to_json(preset)
    assert cases_path(PRESET_PATH).read_text(encoding="utf-8") == cases_to_csv(cases)
    assert preset.endpoint.kind == "local" and preset.request.model == preset.endpoint.model == LOCAL_MODEL
    assert [t.function.name for t in preset.request.tools] == ["get_weather"]
    assert preset.request.tool_choice.function.name == "get_weather"
    assert [(c.kind, c.tool) for c in preset.checks][0] == ("tool_called", "get_weather")
    assert preset.defaults() == {"city": "Lisbon"} and len(cases) >= 5
    assert "--endpoint" in preset.description and "local model" in preset.description


def test_the_engine_grades_each_city(weather) -> None:
    preset, cases = shipped()
    plain, bad = cases[-2].values["city"], cases[-1].values["city"]
    server = weather([c.values["city"] for c in cases], plain=(plain,), bad_args=(bad,))
    experiment = Experiment.from_preset(preset, cases)
    runner = ExperimentRunner(experiment, [server.endpoint()], save=False).start()
    result = runner.wait(timeout=20)
    assert result is not None and result.status == "finished" and runner.errors == []

    sent = [r.json for r in server.requests]
    assert len(sent) == len(cases)
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert all(body["tools"] == preset.request.to_wire()["tools"] and body["tool_choice"] == named for body in sent)
    assert all(body["stream"] is True and body["model"] == LOCAL_MODEL for body in sent)

    trials = {cases[t.case].values["city"]: t for t in result.trials}
    assert len(trials) == len(cases)
    for case in cases[:-2]:
        trial = trials[case.values["city"]]
        assert trial.status == "pass", trial.reason
        tool = trial.checks[0]
        assert tool.label == "tool_called get_weather" and tool.passed is True
        assert tool.reason.startswith('called get_weather({"city": ') and case.values["city"] in tool.reason
        assert trial.reason == "" and trial.answer == ""

    no_call = trials[plain]
    assert no_call.status == "fail" and no_call.answer == "It is usually mild there."
    assert no_call.checks[0].passed is False
    assert no_call.checks[0].reason == "no tool call (answer 'It is usually mild there.')"
    assert no_call.reason == f"tool_called get_weather: {no_call.checks[0].reason}"
    assert no_call.checks[1].passed is True  # the latency limit is met: only the call is missing

    invalid = trials[bad]
    assert invalid.status == "fail" and invalid.checks[0].passed is False
    assert invalid.checks[0].reason == ("get_weather arguments: $: Additional properties are not allowed "
                                        "('country' was unexpected)")
    for trial in (no_call, invalid):
        assert "\n" not in trial.reason


def test_an_argument_outside_the_enum_is_named(weather) -> None:
    preset, _ = shipped()
    server = weather(["Oslo"])
    server.reply_for = lambda body: Reply.stream_tool_call("get_weather", ['{"city": "Oslo", ', '"unit": "kelvin"}'])
    runner = ExperimentRunner(Experiment.from_preset(preset, [Case(values={"city": "Oslo"})]), [server.endpoint()],
                              save=False).start()
    result = runner.wait(timeout=20)
    (trial,) = result.trials
    assert trial.status == "fail"
    assert trial.checks[0].reason == "get_weather arguments: $.unit: 'kelvin' is not one of ['celsius', 'fahrenheit']"


def test_the_cli_runs_the_shipped_file(weather, tmp_path: Path) -> None:
    _, cases = shipped()
    plain = cases[-2].values["city"]
    server = weather([c.values["city"] for c in cases], plain=(plain,))
    secrets = {"endpoints": {"scripted": {"base_url": server.base_url}}}
    environ = {"PLAYGROUND_DATA_DIR": str(tmp_path / "data")}

    def cli(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        code = main(["run", str(PRESET_PATH), "--endpoint", "scripted", *args], out=out, environ=environ,
                    secrets=secrets)
        return code, out.getvalue()

    code, text = cli()  # the shipped cases, beside the preset
    assert code == 1, text
    assert f"{len(cases)} cases x 1 variants x 1 repeats = {len(cases)} trials; {len(cases)} done" in text
    assert "Checks: tool_called get_weather, max_latency_s 10" in text
    assert f"{len(cases) - 1}/{len(cases)}" in text
    assert "Failures (1):" in text
    failure = next(line for line in text.splitlines() if line.strip().startswith("FAIL"))
    assert f"case {len(cases) - 1} (city={plain}), variant 1" in failure
    assert "tool_called get_weather: no tool call (answer 'It is usually mild there.')" in failure

    passing = tmp_path / "passing.cases.csv"
    passing.write_text(cases_to_csv(cases[:-2]), encoding="utf-8")
    code, text = cli("--cases", str(passing), "--no-save")
    assert code == 0, text
    assert f"{len(cases) - 2}/{len(cases) - 2}" in text and "100.0%" in text and "Failures" not in text

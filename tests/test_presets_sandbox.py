"""The shipped presets work, for real, on the local model (SmolLM2-135M in the sandbox)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from playground.client.client import ChatClient
from playground.presets import Preset, fill_variables, parse_preset_bytes

pytestmark = pytest.mark.sandbox

SHIPPED = Path(__file__).resolve().parents[1] / "presets"


def shipped() -> list[Preset]:
    return [parse_preset_bytes(p.read_bytes(), p.name) for p in sorted(SHIPPED.glob("*.json"))
            if p.name != "preset.schema.json"]


def run(sandbox, preset: Preset, **values: str):
    defaults = {name: value for name, value in preset.defaults().items()}
    request = fill_variables(preset.request, {**defaults, **values})
    with ChatClient(sandbox.endpoint) as client:
        result = client.run(request, preset=preset.name)
    assert result.error is None, result.error
    assert not result.partial
    return result


def made_for_the_sandbox(preset: Preset) -> bool:
    return preset.endpoint is None or preset.endpoint.kind in (None, "local")


@pytest.mark.parametrize("preset", [p for p in shipped() if made_for_the_sandbox(p)], ids=lambda p: p.name)
def test_every_shipped_preset_runs(sandbox, preset: Preset) -> None:
    result = run(sandbox, preset, topic="photosynthesis")
    assert result.text.strip() or result.choices[0].tool_calls  # the weather preset's answer is a call
    assert result.usage is not None and result.usage.completion_tokens > 0


def test_every_shipped_preset_is_made_for_the_sandbox() -> None:
    # They run on the local model by default (the weather preset's tool call too, since issue 23).
    assert [p.name for p in shipped() if not made_for_the_sandbox(p)] == []


def by_feature(check) -> Preset:
    return next(p for p in shipped() if check(p.request))


def test_json_extraction_follows_its_schema(sandbox) -> None:
    preset = by_feature(lambda r: r.response_format is not None and r.response_format.type == "json_schema")
    data = json.loads(run(sandbox, preset).text)
    schema = preset.request.response_format.json_schema.schema_
    assert set(schema["required"]) <= set(data)
    assert isinstance(data["age"], int) and data["age"] == 34 and "Madrid" in data["city"]


def test_the_classifier_is_read_through_its_label_logprobs(sandbox) -> None:
    preset = by_feature(lambda r: bool(r.logprobs) and r.top_logprobs)
    result = run(sandbox, preset)
    first = result.choices[0].logprobs[0]
    top = {alt.token.strip(): math.exp(alt.logprob) for alt in first.top_logprobs}
    assert len(first.top_logprobs) == preset.request.top_logprobs
    assert {"good", "bad"} <= set(top)
    assert top["bad"] > top["good"]  # the shipped review is a bad one


def test_the_seeded_creative_preset_repeats(sandbox) -> None:
    preset = by_feature(lambda r: r.seed is not None and (r.temperature or 0) >= 0.8)
    assert run(sandbox, preset).text == run(sandbox, preset).text


def test_the_few_shot_preset_answers_in_the_taught_format(sandbox) -> None:
    preset = by_feature(lambda r: sum(m.role == "assistant" for m in r.messages) >= 2 and not r.logprobs)
    assert run(sandbox, preset).text.strip() == "Rome"

"""The grammar never yields arguments that fail the tool's schema: a property-based test over
generated schemas (objects, enums, arrays, nested objects, required fields, string lengths,
nullable types), each answered by the model in the sandbox, sampled (not greedy) so that the
answers wander. Every call that ends is validated with jsonschema; the run must see complete
calls, or it would prove nothing."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.client.endpoint import LOCAL_MODEL
from playground.sandbox.grammars import SchemaError, check_schema

pytestmark = pytest.mark.sandbox

NAMES = st.sampled_from(["city", "n", "tags", "ok", "when", "id", "unit", "items", "note", "size"])
SCALARS = st.one_of(
    st.just({"type": "string"}),
    st.just({"type": "integer"}),
    st.just({"type": "number"}),
    st.just({"type": "boolean"}),
    st.just({"type": ["string", "null"]}),
    st.lists(st.one_of(st.sampled_from(["red", "green", "São Paulo", 'a "quote"']), st.integers(-5, 5)),
             min_size=1, max_size=4, unique=True).map(lambda values: {"enum": values}),
    st.tuples(st.integers(0, 3), st.integers(0, 4)).map(
        lambda b: {"type": "string", "minLength": b[0], "maxLength": b[0] + b[1]}),
)


def objects(children):
    def build(draw_props: dict, required: list[bool], closed: bool) -> dict:
        names = list(draw_props)
        schema = {"type": "object", "properties": draw_props,
                  "required": [name for name, keep in zip(names, required) if keep]}
        if closed:
            schema["additionalProperties"] = False
        return schema

    return st.builds(build, st.dictionaries(NAMES, children, min_size=1, max_size=3),
                     st.lists(st.booleans(), min_size=3, max_size=3), st.booleans())


def arrays(children):
    return st.tuples(children, st.integers(0, 2), st.integers(0, 2)).map(
        lambda t: {"type": "array", "items": t[0], "minItems": t[1], "maxItems": t[1] + t[2]})


SCHEMAS = st.recursive(SCALARS, lambda children: st.one_of(objects(children), arrays(children)), max_leaves=5)
PARAMETERS = objects(SCHEMAS)
def test_generated_schemas_are_ones_the_grammar_enforces() -> None:
    # The strategy must stay inside what the sandbox accepts, or the property below tests refusals.
    @given(PARAMETERS)
    @settings(max_examples=200, deadline=None)
    def accepted(schema: dict) -> None:
        try:
            check_schema(schema, "parameters")
        except SchemaError as error:  # pragma: no cover - a failure message
            pytest.fail(f"{error}: {json.dumps(schema)}")

    accepted()


@pytest.mark.timeout(900)  # a safety net on a shared 2-core machine: 8 examples of 2 sampled answers each
def test_the_arguments_always_fit_the_schema(sandbox) -> None:
    seen = {"complete": 0, "cut": 0}

    @given(parameters=PARAMETERS, seed=st.integers(0, 2**31))
    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def fits(parameters: dict, seed: int) -> None:
        tool = {"type": "function", "function": {"name": "act", "description": "Do it.", "parameters": parameters}}
        body = {"model": LOCAL_MODEL, "messages": [{"role": "user", "content": "Fill in an example call."}],
                "tools": [tool], "tool_choice": "required", "parallel_tool_calls": False, "n": 2, "seed": seed,
                "temperature": 1.0, "top_k": 20, "max_tokens": 64}
        reply = httpx.post(f"{sandbox.base_url}/v1/chat/completions", json=body, timeout=300)
        assert reply.status_code == 200, reply.text
        for choice in reply.json()["choices"]:
            calls = choice["message"]["tool_calls"]
            assert calls and all(c["function"]["name"] == "act" for c in calls)
            if choice["finish_reason"] == "length":  # cut short: the last call's arguments are unfinished
                seen["cut"] += 1
                calls = calls[:-1]
            else:
                assert choice["finish_reason"] == "tool_calls"
                seen["complete"] += 1
            for made in calls:
                jsonschema.validate(json.loads(made["function"]["arguments"]), parameters)

    fits()
    # Most answers must have ended, or the property proved little.
    assert seen["complete"] >= seen["cut"] and seen["complete"] >= 8, seen

"""Wire models: strict ranges on requests, unknown fields kept, lenient responses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from playground.client.schema import (
    RANGES,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    ToolMessage,
    Usage,
    UserMessage,
    describe_error,
    message_text,
)

USER = [{"role": "user", "content": "hi"}]


def request(**fields: Any) -> ChatRequest:
    return ChatRequest.from_wire({"model": "openai/gpt-4o", "messages": USER, **fields})


def rejected(**fields: Any) -> str:
    """The readable error for a request that must fail: every line of describe_error joined."""
    with pytest.raises(ValidationError) as caught:
        request(**fields)
    return " | ".join(describe_error(caught.value))


# --- ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RANGES))
def test_each_range_is_enforced_and_named(name: str) -> None:
    low, high = RANGES[name]
    extra = {"logprobs": True} if name == "top_logprobs" else {}
    request(**{name: low}, **extra)
    request(**{name: high}, **extra)
    for bad in (low - 1, high + 1) if name in ("top_logprobs", "prompt_logprobs", "n") else (low - 0.01, high + 0.01):
        message = rejected(**{name: bad}, **extra)
        assert name in message
        assert f"between {low:g} and {high:g}" in message


def test_range_message_reads_well() -> None:
    assert rejected(temperature=3) == "temperature must be between 0 and 2, got 3.0"


def test_logit_bias_values_and_keys() -> None:
    assert request(logit_bias={"50256": -100, "11": 100}).to_wire()["logit_bias"] == {"50256": -100, "11": 100}
    message = rejected(logit_bias={"50256": -101})
    assert "logit_bias" in message and "-100 and 100" in message
    assert "logit_bias" in rejected(logit_bias={"hello": 5})


def test_top_logprobs_needs_logprobs() -> None:
    message = rejected(top_logprobs=5)
    assert "top_logprobs" in message and "logprobs" in message
    assert "top_logprobs" in rejected(top_logprobs=5, logprobs=False)
    assert request(top_logprobs=5, logprobs=True).top_logprobs == 5
    request(top_logprobs=0)  # zero asks for nothing: allowed alone


def test_stop_is_a_string_or_at_most_four() -> None:
    assert request(stop="\n").stop == "\n"
    assert request(stop=["a", "b", "c", "d"]).stop == ["a", "b", "c", "d"]
    message = rejected(stop=["a", "b", "c", "d", "e"])
    assert "stop" in message and "4" in message


def tool(i: int) -> dict:
    return {"type": "function", "function": {"name": f"f{i}", "parameters": {"type": "object", "properties": {}}}}


def test_at_most_128_tools() -> None:
    assert len(request(tools=[tool(i) for i in range(128)]).tools) == 128
    message = rejected(tools=[tool(i) for i in range(129)])
    assert "tools" in message and "128" in message


@pytest.mark.parametrize("choice", ["none", "auto", "required", {"type": "function", "function": {"name": "f0"}}])
def test_tool_choice_forms(choice: Any) -> None:
    assert request(tools=[tool(0)], tool_choice=choice).to_wire()["tool_choice"] == choice


@pytest.mark.parametrize("choice", [
    "sometimes", {"type": "function"}, {"type": "retrieval", "function": {"name": "f"}},
])
def test_bad_tool_choice(choice: Any) -> None:
    assert "tool_choice" in rejected(tool_choice=choice)


def test_other_enumerations_and_minimums() -> None:
    assert "n" in rejected(n=0)
    assert "max_tokens" in rejected(max_tokens=0)
    message = rejected(reasoning_effort="extreme")
    assert "reasoning_effort" in message and "low" in message
    assert request(reasoning_effort="high").reasoning_effort == "high"
    assert "response_format" in rejected(response_format={"type": "json_schema"})
    assert "model" in rejected(model="")


def test_every_error_is_listed() -> None:
    with pytest.raises(ValidationError) as caught:
        request(temperature=9, top_p=2)
    lines = describe_error(caught.value)
    assert len(lines) == 2 and "temperature" in lines[0] and "top_p" in lines[1]


def test_nested_field_names_survive_in_errors() -> None:
    # "function" is also a message role; it must not be dropped from tool_choice.function.
    assert "tool_choice.function" in rejected(tool_choice={"type": "function"})
    assert "messages.0.tool_call_id" in rejected(messages=[{"role": "tool", "content": "x"}])


# --- messages -------------------------------------------------------------------------


def test_every_role() -> None:
    req = request(messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use tools."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is "},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            {"type": "text", "text": "this?"},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\": 1}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        {"role": "assistant", "content": "A cat.", "refusal": None},
    ])
    kinds = [type(m).__name__ for m in req.messages]
    assert kinds == ["SystemMessage", "DeveloperMessage", "UserMessage", "AssistantMessage", "ToolMessage",
                     "AssistantMessage"]
    assert message_text(req.messages[2]) == "What is this?"
    assert message_text(req.messages[3]) == ""
    wire = req.to_wire()
    assert wire["messages"][2]["content"][1] == {"type": "image_url",
                                                 "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
    assert wire["messages"][3] == {"role": "assistant", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\": 1}"}}]}
    assert wire["messages"][4] == {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}


def test_bad_messages() -> None:
    assert "assistant message needs content or tool_calls" in rejected(messages=[{"role": "assistant"}])
    assert "messages" in rejected(messages=[{"role": "robot", "content": "x"}])
    assert "messages" in rejected(messages=[])
    assert "content" in rejected(messages=[{"role": "user"}])
    assert "type" in rejected(messages=[{"role": "user", "content": [{"text": "no type"}]}])


def test_message_models_build_from_python() -> None:
    req = ChatRequest(model="m", messages=[UserMessage(content="a"), AssistantMessage(content="b"),
                                           ToolMessage(content="c", tool_call_id="t")])
    assert [m["role"] for m in req.to_wire()["messages"]] == ["user", "assistant", "tool"]


# --- unknown fields and to_wire ---------------------------------------------------------


def test_to_wire_leaves_out_unset_fields() -> None:
    assert request().to_wire() == {"model": "openai/gpt-4o", "messages": USER}
    assert request(temperature=None, seed=None).to_wire() == {"model": "openai/gpt-4o", "messages": USER}


def test_unknown_fields_are_sent_unchanged() -> None:
    extras = {"min_p": 0.05, "repetition_penalty": 1.1, "chat_template_kwargs": {"enable_thinking": False},
              "guided_json": None, "top_a": [1, {"b": None}]}
    req = request(temperature=0.5, **extras)
    assert req.extra_fields == extras
    wire = req.to_wire()
    for key, value in extras.items():
        assert wire[key] == value
    assert wire["temperature"] == 0.5


def test_unknown_fields_inside_messages_and_tools_are_kept() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
                 "weight": None}]
    tools = [{"type": "function", "function": {"name": "f", "x-hint": 1}, "cache": None}]
    wire = request(messages=messages, tools=tools).to_wire()
    assert wire["messages"] == messages
    assert wire["tools"] == tools


def test_response_format_schema_alias() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True}}
    assert request(response_format=fmt).to_wire()["response_format"] == fmt


# --- responses ------------------------------------------------------------------------


def test_completion_tolerates_missing_and_extra_fields() -> None:
    assert ChatCompletion.model_validate({}).choices == []
    completion = ChatCompletion.model_validate({
        "id": "x", "choices": [{"message": {"content": "hi", "reasoning_content": "hmm"}, "stop_reason": 7}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4,
                  "completion_tokens_details": {"reasoning_tokens": 0}, "cost": 0.01},
        "kv_transfer_params": None, "prompt_logprobs": None,
    })
    choice = completion.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant" and choice.message.content == "hi"
    assert choice.message.model_extra == {"reasoning_content": "hmm"}
    assert completion.usage.completion_tokens_details == {"reasoning_tokens": 0}


def test_usage_defaults() -> None:
    assert Usage.model_validate({"prompt_tokens": 2}).total_tokens == 0


def test_chunk_tolerates_missing_and_extra_fields() -> None:
    chunk = ChatCompletionChunk.model_validate_json(
        '{"choices": [{"delta": {"content": "a", "reasoning": null}, "logprobs": {"content": ['
        '{"token": "a", "logprob": -0.1, "bytes": null, "top_logprobs": [{"token": "a", "logprob": -0.1}]},'
        '{"token": "b", "logprob": -9999}]}, "matched_stop": null}], "usage": null, "obfuscation": "xyz"}'
    )
    choice = chunk.choices[0]
    assert choice.index == 0 and choice.delta.content == "a" and choice.finish_reason is None
    tokens = choice.logprobs.content
    assert tokens[0].top_logprobs[0].bytes is None
    assert tokens[1].top_logprobs == [] and tokens[1].logprob == -9999
    assert ChatCompletionChunk.model_validate_json('{"choices": [{"index": 1}]}').choices[0].delta.content is None


def test_chunk_tool_call_delta_without_id() -> None:
    chunk = ChatCompletionChunk.model_validate(
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a"}}]}}]})
    call = chunk.choices[0].delta.tool_calls[0]
    assert call.id is None and call.function.name is None and call.function.arguments == "{\"a"


# --- property: ChatRequest -> JSON -> ChatRequest is the identity --------------------------

KNOWN = set(ChatRequest.model_fields)
json_scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
extra_keys = st.text(min_size=1, max_size=12).filter(lambda k: k not in KNOWN)
extras = st.dictionaries(extra_keys, json_values, max_size=3)
names = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8)
text = st.text(max_size=20)


def with_extras(base: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
    nested_extras = st.dictionaries(st.sampled_from(["x_hint", "cache_control", "weight"]), json_values, max_size=2)
    return st.tuples(base, nested_extras).map(lambda pair: {**pair[1], **pair[0]})


text_part = with_extras(st.fixed_dictionaries({"type": st.just("text"), "text": text}))
content = text | st.lists(text_part, min_size=1, max_size=3)
tool_call = st.fixed_dictionaries({"id": names, "type": st.just("function"),
                                   "function": st.fixed_dictionaries({"name": names, "arguments": text})})
message = with_extras(st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "developer", "user"]), "content": content},
                          optional={"name": names}),
    st.fixed_dictionaries({"role": st.just("assistant"), "content": content | st.none(),
                           "tool_calls": st.lists(tool_call, min_size=1, max_size=2)}),
    st.fixed_dictionaries({"role": st.just("assistant"), "content": content}),
    st.fixed_dictionaries({"role": st.just("tool"), "content": text, "tool_call_id": names}),
))
tools = st.lists(with_extras(st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
    {"name": names}, optional={"description": text, "parameters": st.dictionaries(names, json_values, max_size=2),
                               "strict": st.booleans()})})), max_size=3)


def in_range(name: str) -> st.SearchStrategy[float]:
    low, high = RANGES[name]
    return st.floats(low, high, allow_nan=False)


optional_fields = {
    "temperature": in_range("temperature"),
    "top_p": in_range("top_p"),
    "frequency_penalty": in_range("frequency_penalty"),
    "presence_penalty": in_range("presence_penalty"),
    "logit_bias": st.dictionaries(st.integers(0, 200_000).map(str), st.floats(-100, 100, allow_nan=False), max_size=3),
    "max_tokens": st.integers(1, 100_000),
    "max_completion_tokens": st.integers(1, 100_000),
    "n": st.integers(1, 8),
    "seed": st.integers(-2**63, 2**63 - 1),
    "stop": text | st.lists(text, max_size=4),
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
    "store": st.booleans(),
    "metadata": st.dictionaries(names, text, max_size=2),
    "reasoning_effort": st.sampled_from(["low", "medium", "high"]),
    "tools": tools,
    "tool_choice": st.sampled_from(["none", "auto", "required"]) | st.builds(
        lambda n: {"type": "function", "function": {"name": n}}, names),
    "parallel_tool_calls": st.booleans(),
    "response_format": st.sampled_from([
        {"type": "text"},
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": True}},
    ]),
    "top_k": st.integers(-1, 100),
    "modalities": st.lists(st.sampled_from(["text", "audio"]), max_size=2),
}
logprob_fields = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"logprobs": st.booleans()}),
    st.fixed_dictionaries({"logprobs": st.just(True), "top_logprobs": st.integers(0, 20)}),
)
bodies = st.tuples(
    st.fixed_dictionaries({"model": names, "messages": st.lists(message, min_size=1, max_size=4)},
                          optional=optional_fields),
    logprob_fields,
    extras,
).map(lambda parts: {**parts[2], **parts[1], **parts[0]})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_request_json_request_is_identity(body: dict) -> None:
    req = ChatRequest.from_wire(body)
    wire = req.to_wire()
    back = ChatRequest.from_wire(json.loads(json.dumps(wire)))
    assert back == req
    assert back.to_wire() == wire
    for key in body.keys() - KNOWN:  # extra fields: sent exactly as given, null included
        assert wire[key] == body[key]
    for sent, given_message in zip(wire["messages"], body["messages"]):
        for key in ("x_hint", "cache_control", "weight"):
            if key in given_message:
                assert sent[key] == given_message[key]


def test_a_requests_changes_from_another_and_back() -> None:
    from playground.client.schema import REMOVED

    base = ChatRequest.from_wire({"model": "m/a", "temperature": 0.5, "seed": 1, "min_p": 0.1,
                                  "messages": [{"role": "user", "content": "hi"}]})
    two = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]
    edited = ChatRequest.from_wire({"model": "m/a", "seed": 1, "max_tokens": 32, "min_p": 0.2, "messages": two})
    changes = edited.changes_from(base)
    assert changes == {"messages": two, "max_tokens": 32, "min_p": 0.2, "temperature": REMOVED}
    assert base.with_changes(changes).to_wire() == edited.to_wire()
    assert edited.changes_from(edited) == {}
    # carried onto another base: what the changes do not name stays that base's
    other = ChatRequest.from_wire({"model": "m/b", "temperature": 0.9, "top_p": 0.5,
                                   "messages": [{"role": "user", "content": "yo"}]})
    moved = other.with_changes(changes).to_wire()
    assert moved["model"] == "m/b" and moved["top_p"] == 0.5 and "temperature" not in moved
    assert moved["max_tokens"] == 32 and moved["messages"][0]["content"] == "S"

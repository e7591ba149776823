"""Tool calls on the sandbox, through the official openai and scale-gp SDKs: required, named and
auto, plain and streamed, and the results sent back for a text answer. Refusals name the field."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest
from scale_gp import SGPClient

from playground.client.endpoint import LOCAL_MODEL

pytestmark = pytest.mark.sandbox

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "the city's name"},
                   "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The current weather in a city.",
                                            "parameters": WEATHER_PARAMETERS}}
TIME = {"type": "function", "function": {"name": "get_time", "description": "The local time in a city.",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather in Lisbon?"}]
# One earlier round (a call, its result, the answer): with it the small model calls under auto
# by itself, and answers in text once the result is there.
FEW_SHOT = [
    {"role": "system", "content": "You answer questions about the weather. Never guess it: call get_weather."},
    {"role": "user", "content": "What is the weather in Rome?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21, "sky": "clear"}'},
    {"role": "assistant", "content": "It is 21 degrees and clear in Rome."},
]
RESULT = '{"temperature": 18, "sky": "cloudy"}'


@pytest.fixture(scope="module")
def client(sandbox):
    with openai.OpenAI(base_url=f"{sandbox.base_url}/v4/beta", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def v1(sandbox):
    with openai.OpenAI(base_url=f"{sandbox.base_url}/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def sgp(sandbox):
    with SGPClient(base_url=sandbox.base_url, api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def call(client, messages=ASK, tools=(WEATHER,), **fields):
    fields = {"temperature": 0, "max_tokens": 60, **fields}
    return client.chat.completions.create(model=LOCAL_MODEL, messages=messages, tools=list(tools), **fields)


def valid_arguments(arguments: str, schema: dict = WEATHER_PARAMETERS) -> dict:
    data = json.loads(arguments)
    jsonschema.validate(data, schema)
    return data


def streamed_calls(chunks) -> tuple[dict[int, dict], list[str | None]]:
    """The calls a stream's deltas build (by index), and every finish_reason it sent."""
    calls: dict[int, dict] = {}
    finishes = []
    for chunk in chunks:
        for choice in chunk.choices:
            finishes.append(choice.finish_reason)
            for delta in choice.delta.tool_calls or []:
                if delta.index not in calls:  # OpenAI's first delta of a call: id, type, name, arguments ""
                    assert delta.id.startswith("call_") and delta.type == "function" and delta.function.name
                    assert delta.function.arguments == ""
                    calls[delta.index] = {"id": delta.id, "name": delta.function.name, "arguments": "", "pieces": 0}
                else:
                    assert delta.id is None and delta.function.name is None
                    calls[delta.index]["arguments"] += delta.function.arguments
                    calls[delta.index]["pieces"] += 1
    return calls, finishes


def test_required_gives_a_call_whose_arguments_fit_the_schema(client):
    reply = call(client, tool_choice="required", logprobs=True)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (made,) = choice.message.tool_calls
    assert made.id.startswith("call_") and made.type == "function" and made.function.name == "get_weather"
    assert valid_arguments(made.function.arguments)["city"] == "Lisbon"
    assert reply.usage.completion_tokens == len(choice.logprobs.content) > 5
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    written = "".join(entry.token for entry in choice.logprobs.content)  # the tokens are the call as written
    assert json.loads(written) == {"name": "get_weather", "arguments": json.loads(made.function.arguments)}


def test_a_streamed_call_arrives_as_openai_streams_it(v1, client):
    plain = call(client, tool_choice="required").choices[0].message.tool_calls[0]
    chunks = list(call(v1, tool_choice="required", stream=True, stream_options={"include_usage": True},
                       logprobs=True))
    calls, finishes = streamed_calls(chunks)
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["arguments"] == plain.function.arguments
    assert calls[0]["pieces"] > 2  # the arguments come in pieces, token by token
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content is None
    assert [f for f in finishes if f] == ["tool_calls"]
    assert all(c.choices[0].delta.content is None for c in chunks if c.choices)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == sum(
        len(c.choices[0].logprobs.content) for c in chunks if c.choices and c.choices[0].logprobs)


def test_a_named_function_is_the_one_called(client):
    reply = call(client, tools=(WEATHER, TIME), tool_choice={"type": "function", "function": {"name": "get_time"}})
    (made,) = reply.choices[0].message.tool_calls
    assert made.function.name == "get_time"
    assert valid_arguments(made.function.arguments, TIME["function"]["parameters"])["city"] == "Lisbon"


def test_no_parallel_calls_means_one_call(client):
    reply = call(client, tool_choice="required", parallel_tool_calls=False, max_tokens=120)
    assert len(reply.choices[0].message.tool_calls) == 1
    assert reply.choices[0].finish_reason == "tool_calls"


def test_auto_reports_a_call_or_text_whichever_the_model_wrote(client):
    called = call(client, messages=[*FEW_SHOT, *ASK], tool_choice="auto")
    assert called.choices[0].finish_reason == "tool_calls"
    assert valid_arguments(called.choices[0].message.tool_calls[0].function.arguments) == {"city": "Lisbon"}
    text = call(client, messages=[{"role": "user", "content": "Say hello in one short sentence."}], tool_choice="auto")
    assert text.choices[0].message.tool_calls is None
    assert text.choices[0].message.content.strip() and text.choices[0].finish_reason in ("stop", "length")
    # tool_choice none: no call, whatever the conversation holds
    none = call(client, messages=[*FEW_SHOT, *ASK], tool_choice="none")
    assert none.choices[0].message.tool_calls is None and none.choices[0].finish_reason == "stop"


def test_results_sent_back_get_a_text_answer(client, v1):
    first = call(client, messages=[*FEW_SHOT, *ASK])  # tool_choice left out: auto, as OpenAI's default
    made = first.choices[0].message.tool_calls[0]
    follow = [*FEW_SHOT, *ASK, first.choices[0].message.model_dump(exclude_none=True),
              {"role": "tool", "tool_call_id": made.id, "content": RESULT}]
    answer = call(client, messages=follow)
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].finish_reason == "stop"
    assert "18" in answer.choices[0].message.content and "Lisbon" in answer.choices[0].message.content
    streamed = list(call(v1, messages=follow, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == answer.choices[0].message.content
    assert [c.choices[0].finish_reason for c in streamed][-1] == "stop"


def test_the_sgp_sdk_calls_and_carries_on(sgp):
    def create(**fields):
        return sgp.beta.chat.completions.create(model=LOCAL_MODEL, tools=[WEATHER], temperature=0, max_tokens=60,
                                                **fields)

    reply = create(messages=ASK, tool_choice="required")
    made = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls" and made.function.name == "get_weather"
    assert valid_arguments(made.function.arguments)["city"] == "Lisbon"

    # SGP's SDK streams until the connection closes; the call's deltas come as OpenAI's
    chunks = list(create(messages=ASK, tool_choice={"type": "function", "function": {"name": "get_weather"}},
                         stream=True))
    calls, finishes = streamed_calls(chunks)
    assert calls[0]["arguments"] == made.function.arguments and [f for f in finishes if f] == ["tool_calls"]

    auto = create(messages=[*FEW_SHOT, *ASK], tool_choice="auto")
    asked = auto.choices[0].message.tool_calls[0]
    follow = [*FEW_SHOT, *ASK,
              {"role": "assistant", "content": None, "tool_calls": [
                  {"id": asked.id, "type": "function",
                   "function": {"name": asked.function.name, "arguments": asked.function.arguments}}]},
              {"role": "tool", "tool_call_id": asked.id, "content": RESULT}]
    answer = create(messages=follow, tool_choice="auto")
    assert answer.choices[0].finish_reason == "stop" and "18" in answer.choices[0].message.content


@pytest.mark.parametrize(("fields", "detail"), [
    ({"tools": [{"type": "code_interpreter", "function": {"name": "x"}}]},
     "tools[0].type: 'code_interpreter' tools are not available in the local sandbox"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}}}]},
     "tools[0].function.parameters.properties.n: the local sandbox's grammar cannot enforce 'minimum'"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}}}]},
     "tools[0].function.parameters.properties.a: the local sandbox's grammar cannot enforce 'oneOf'"),
    ({"tools": [WEATHER, {"type": "function", "function": {"name": "g", "parameters": {
        "type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"},
                                                  "uniqueItems": True}}}}}]},
     "tools[1].function.parameters.properties.tags: the local sandbox's grammar cannot enforce 'uniqueItems'"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "string", "format": "email"}}}}}]},
     "tools[0].function.parameters.properties.a.format: the local sandbox's grammar cannot enforce format 'email'"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}}}]},
     "tools[0].function.parameters.required: 'b' is required but not among the properties"),
    ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name: 'bad name'"),
    ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name: two tools are named 'get_weather'"),
    ({"tool_choice": "required"}, "tool_choice: a tool choice other than none or auto needs tools"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice.function.name: no tool is named 'nope'"),
    ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "response_format: the local sandbox cannot"),
    ({"messages": [*ASK, {"role": "tool", "tool_call_id": "call_x", "content": "{}"}]},
     "messages[1].tool_call_id: no earlier assistant message has a tool call with id 'call_x'"),
])
def test_what_the_grammar_cannot_honour_is_a_400_naming_the_field(client, fields, detail):
    body = {"model": LOCAL_MODEL, "messages": ASK, "max_tokens": 4, **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**body)
    assert caught.value.status_code == 400
    assert caught.value.body["detail"].startswith(detail), caught.value.body["detail"]

"""The official openai SDK against the sandbox, pointed at /v4/beta as at SGP."""

from __future__ import annotations

import json

import openai
import pytest

from playground.client.endpoint import LOCAL_MODEL

pytestmark = pytest.mark.sandbox

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
NO_END = {"2": -100}  # ban <|im_end|>: the reply runs to max_tokens


@pytest.fixture(scope="module")
def client(sandbox):
    with openai.OpenAI(base_url=f"{sandbox.base_url}/v4/beta", api_key="unused", max_retries=0, timeout=60) as c:
        yield c


def test_plain_completion(client):
    reply = client.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=12, temperature=0,
                                           logit_bias=NO_END)
    choice = reply.choices[0]
    assert reply.object == "chat.completion"
    assert reply.model == LOCAL_MODEL
    assert choice.message.role == "assistant"
    assert choice.message.content.strip()
    assert choice.finish_reason == "length"  # no end token allowed: it ran to max_tokens
    assert reply.usage.prompt_tokens > 5
    assert reply.usage.completion_tokens == 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_bare_model_name_is_accepted(client):
    reply = client.chat.completions.create(model="smollm2-135m-instruct", messages=HELLO, max_tokens=4)
    assert reply.choices[0].message.content is not None


def test_stream_matches_plain_and_counts_usage(client):
    kwargs = dict(model=LOCAL_MODEL, messages=HELLO, max_tokens=16, temperature=0)
    plain = client.chat.completions.create(**kwargs).choices[0].message.content
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_logprobs_have_exactly_k_alternatives_most_likely_first(client):
    reply = client.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=10, temperature=0,
                                           logprobs=True, top_logprobs=3, logit_bias=NO_END)
    choice = reply.choices[0]
    content = choice.logprobs.content
    assert len(content) == reply.usage.completion_tokens == 10
    assert "".join(entry.token for entry in content) == choice.message.content
    for entry in content:
        assert len(entry.top_logprobs) == 3
        values = [alt.logprob for alt in entry.top_logprobs]
        assert values == sorted(values, reverse=True)
        assert all(v <= 0 for v in values)
        assert entry.top_logprobs[0].token == entry.token  # greedy: the most likely token was drawn
        assert entry.logprob == pytest.approx(values[0])
        assert bytes(entry.bytes).decode() == entry.token


def test_logprobs_with_twenty_alternatives_and_with_none(client):
    many = client.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=3, logprobs=True,
                                          top_logprobs=20, seed=3)
    assert all(len(entry.top_logprobs) == 20 for entry in many.choices[0].logprobs.content)
    none = client.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=3, logprobs=True, seed=3)
    assert all(entry.top_logprobs == [] for entry in none.choices[0].logprobs.content)
    assert client.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=3).choices[0].logprobs is None


def test_same_seed_same_text(client):
    def sample(seed):
        return client.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=8, temperature=1.0,
                                              seed=seed).choices[0].message.content

    first = sample(1234)
    assert sample(1234) == first
    assert len({first, sample(1), sample(2)}) > 1  # seeds do matter


def test_stop_sequence_cuts_before_it(client):
    kwargs = dict(model=LOCAL_MODEL, messages=HELLO, max_tokens=12, temperature=0, logit_bias=NO_END)
    full = client.chat.completions.create(**kwargs).choices[0].message.content
    words = full.split(" ")
    assert len(words) > 3, full
    stop = " " + words[2]
    cut = client.chat.completions.create(**kwargs, stop=[stop, "@@never@@"])
    assert cut.choices[0].message.content == full[: full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(**kwargs, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == full[: full.index(stop)]


def test_n_choices(client):
    reply = client.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=4, n=2, seed=5,
                                           logit_bias=NO_END)
    assert [c.index for c in reply.choices] == [0, 1]
    assert all(c.message.content and c.finish_reason == "length" for c in reply.choices)
    assert reply.usage.completion_tokens == 8

    chunks = list(client.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=4, n=2, seed=5,
                                                 logit_bias=NO_END, stream=True))
    texts = {0: "", 1: ""}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == {0: reply.choices[0].message.content, 1: reply.choices[1].message.content}


def test_json_schema_output_parses(client):
    schema = {"type": "object", "properties": {"color": {"type": "string", "enum": ["red", "green", "blue"]}},
              "required": ["color"], "additionalProperties": False}
    reply = client.chat.completions.create(
        model=LOCAL_MODEL, max_tokens=40, temperature=0,
        messages=[{"role": "user", "content": "Pick a colour and answer in JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "pick", "schema": schema}},
    )
    assert reply.choices[0].finish_reason == "stop"
    assert json.loads(reply.choices[0].message.content)["color"] in ("red", "green", "blue")


def test_max_completion_tokens_is_honoured(client):
    reply = client.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_completion_tokens=5,
                                           logit_bias=NO_END)
    assert reply.usage.completion_tokens == 5
    assert reply.choices[0].finish_reason == "length"


def test_deprecated_functions_are_refused_naming_the_field(client):
    # tools are honoured (tests/test_sandbox_tools.py); the deprecated functions are not
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, functions=[
            {"name": "lookup", "parameters": {"type": "object"}}])
    assert caught.value.status_code == 400
    assert caught.value.body["detail"].startswith("functions:")


def test_unknown_model_is_404_listing_the_models(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    detail = caught.value.body["detail"]
    assert "openai/gpt-4o" in detail and LOCAL_MODEL in detail


def test_out_of_range_value_is_422(client):
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, temperature=3)
    [error] = caught.value.body["detail"]
    assert error["loc"] == ["body", "temperature"] and "between 0 and 2" in error["msg"]


def test_key_is_required_when_the_server_has_one(sandbox_with_key):
    base = f"{sandbox_with_key.base_url}/v4/beta"
    with openai.OpenAI(base_url=base, api_key="wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=2)
    key = sandbox_with_key.api_key
    with openai.OpenAI(base_url=base, api_key="unused", default_headers={"x-api-key": key}, max_retries=0) as right:
        assert right.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=2).choices
    with openai.OpenAI(base_url=f"{sandbox_with_key.base_url}/v1", api_key=key, max_retries=0) as bearer:
        assert bearer.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=2).choices
        assert [m.id for m in bearer.models.list()] == [LOCAL_MODEL]


def test_v1_path_streams_to_done(sandbox):
    kwargs = dict(model=LOCAL_MODEL, messages=HELLO, max_tokens=4, temperature=0, logit_bias=NO_END)
    with openai.OpenAI(base_url=f"{sandbox.base_url}/v1", api_key="unused", max_retries=0) as v1:
        chunks = list(v1.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
        plain = v1.chat.completions.create(**kwargs).choices[0].message.content
    assert chunks[-1].usage.completion_tokens == 4
    assert plain.strip() and "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain

"""The official scale-gp SDK against the sandbox: it must take the sandbox for SGP."""

from __future__ import annotations

import pytest
from scale_gp import SGPClient
from scale_gp._exceptions import AuthenticationError, BadRequestError, NotFoundError

from playground.client.endpoint import LOCAL_MODEL

pytestmark = pytest.mark.sandbox

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]


@pytest.fixture(scope="module")
def sgp(sandbox):
    client = SGPClient(base_url=sandbox.base_url, api_key="unused", max_retries=0, timeout=60)
    yield client
    client.close()


def test_plain_completion(sgp):
    reply = sgp.beta.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=12, temperature=0)
    assert reply.choices[0].message.content.strip()
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.object == "chat.completion" and 0 < reply.usage.completion_tokens <= 12


def test_streamed_completion_ends_by_close_and_matches_plain(sgp):
    kwargs = dict(model=LOCAL_MODEL, messages=HELLO, max_tokens=12, temperature=0)
    plain = sgp.beta.chat.completions.create(**kwargs).choices[0].message.content
    # SGP's SDK parses every event as JSON: a [DONE] line would make it raise.
    chunks = list(sgp.beta.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_logprobs_and_seed(sgp):
    def sample():
        return sgp.beta.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=8, seed=99,
                                                logprobs=True, top_logprobs=2)

    first, second = sample(), sample()
    assert first.choices[0].message.content == second.choices[0].message.content
    content = first.choices[0].logprobs.content
    assert content and all(len(entry.top_logprobs) == 2 for entry in content)


def test_errors_arrive_as_sgp_errors(sgp):
    with pytest.raises(NotFoundError):
        sgp.beta.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    with pytest.raises(BadRequestError) as caught:
        sgp.beta.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, reasoning_effort="high")
    assert caught.value.body["detail"].startswith("reasoning_effort:")


def test_key_required(sandbox_with_key):
    with SGPClient(base_url=sandbox_with_key.base_url, api_key="wrong", max_retries=0) as wrong:
        with pytest.raises(AuthenticationError):
            wrong.beta.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=2)
    with SGPClient(base_url=sandbox_with_key.base_url, api_key=sandbox_with_key.api_key, max_retries=0) as right:
        assert right.beta.chat.completions.create(model=LOCAL_MODEL, messages=HELLO, max_tokens=2).choices

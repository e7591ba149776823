"""The project's own ChatClient against the sandbox on all three paths; one request at a time;
a client that goes away mid-stream frees the model at once."""

from __future__ import annotations

import threading

import httpx
import pytest

from playground.client.client import ChatClient
from playground.client.endpoint import LOCAL_MODEL, Endpoint
from playground.client.errors import AuthenticationError, BadRequestError, NotFoundError
from playground.client.schema import ChatRequest
from tests.support import health, wait_for

pytestmark = pytest.mark.sandbox

NO_END = {"2": -100}


def request(**fields) -> ChatRequest:
    body = {"model": LOCAL_MODEL, "messages": [{"role": "user", "content": "Tell me about the sea."}],
            "max_tokens": 8, **fields}
    return ChatRequest.model_validate(body)


def endpoints(sandbox) -> dict[str, Endpoint]:
    return {
        "v4": sandbox.endpoint,
        "v5": Endpoint(name="v5", base_url=sandbox.base_url, chat_path="/v5/chat/completions", kind="local"),
        "v1": Endpoint.openai_compatible(sandbox.base_url + "/v1"),
    }


@pytest.mark.parametrize("path", ["v4", "v5", "v1"])
def test_run_streamed_and_plain_on_every_path(sandbox, path):
    endpoint = endpoints(sandbox)[path]
    with ChatClient(endpoint) as client:
        streamed = client.run(request(stream=True, stream_options={"include_usage": True}, temperature=0,
                                      logprobs=True, top_logprobs=2, logit_bias=NO_END))
        plain = client.complete(request(temperature=0, logit_bias=NO_END))
    assert streamed.error is None, streamed.error
    assert not streamed.partial
    assert streamed.text == plain.choices[0].message.content
    assert streamed.finish_reason == "length" == plain.choices[0].finish_reason
    assert streamed.usage.completion_tokens == 8 == plain.usage.completion_tokens
    assert len(streamed.choices[0].logprobs) == 8
    assert streamed.ttft_s is not None and streamed.ttft_s < streamed.total_s


@pytest.mark.parametrize("path", ["v4", "v1"])
def test_list_models(sandbox, path):
    with ChatClient(endpoints(sandbox)[path]) as client:
        assert client.list_models() == [LOCAL_MODEL]


def test_errors_as_api_errors(sandbox):
    with ChatClient(sandbox.endpoint, max_retries=0) as client:
        with pytest.raises(NotFoundError, match="gpt-4o"):
            client.complete(request(model="openai/gpt-4o"))
        with pytest.raises(BadRequestError, match="modalities"):
            client.complete(request(modalities=["text", "audio"]))
        long_prompt = request(messages=[{"role": "user", "content": "sea " * 2500}])
        with pytest.raises(BadRequestError, match=r"(\d+) tokens.*2048") as caught:
            client.complete(long_prompt)
        assert caught.value.status_code == 400
        run = client.run(request(top_k=-1, n=9, stream=True))
        assert run.error.kind == "BadRequestError" and run.error.status_code == 422 and "n" in run.error.message


def test_key_on_every_path(sandbox_with_key):
    key = sandbox_with_key.api_key
    good = [
        Endpoint.local(sandbox_with_key.port, api_key=key),
        Endpoint.openai_compatible(sandbox_with_key.base_url + "/v1", api_key=key),
    ]
    for endpoint in good:
        with ChatClient(endpoint) as client:
            assert client.complete(request(max_tokens=2)).choices
    for endpoint in (Endpoint.local(sandbox_with_key.port), Endpoint.local(sandbox_with_key.port, api_key="nope")):
        with ChatClient(endpoint) as client:
            with pytest.raises(AuthenticationError) as caught:
                client.complete(request(max_tokens=2))
            assert caught.value.status_code == 401
            with pytest.raises(AuthenticationError):
                client.list_models()
    assert httpx.get(sandbox_with_key.base_url + "/healthz").status_code == 200  # health needs no key


def test_requests_wait_their_turn_and_do_not_interleave(sandbox):
    seeded = request(seed=11, temperature=1.0, max_tokens=8, logit_bias=NO_END, stream=True)
    with ChatClient(sandbox.endpoint) as client:
        alone = client.run(seeded).text
    results: list[str] = []

    def worker() -> None:
        with ChatClient(sandbox.endpoint) as client:
            results.append(client.run(seeded).text)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [alone] * 3


def test_disconnect_mid_stream_stops_generation_at_once(sandbox):
    """A 1500-token stream dropped after a few chunks: the server stops within a few tokens
    and the next request does not wait behind it (the whole stream would take 15 s or more)."""
    endless = request(max_tokens=1500, logit_bias=NO_END, stream=True)
    quick = request(max_tokens=4, temperature=0)
    with ChatClient(sandbox.endpoint) as client:
        before = health(sandbox)["tokens_generated"]
        stream = client.stream(endless)
        for count, _chunk in enumerate(stream, 1):
            if count == 5:
                break
        stream.close()
        wait_for(lambda: not health(sandbox)["busy"], 60, "the model to be free")
        generated = health(sandbox)["tokens_generated"] - before
        reply = client.complete(quick)
    # counted in tokens, not seconds: it stopped within a few tokens of the client leaving
    assert generated <= 5 + 5, f"{generated} tokens generated for a client that read 5"
    assert reply.choices[0].message.content


def test_cancel_through_run_frees_the_model(sandbox):
    """Stop after three chunks of a 1500-token stream (15 s or more): the model is free at once."""
    cancel = threading.Event()
    seen = []

    def on_chunk(recorder) -> None:
        seen.append(recorder.chunk_count)
        if len(seen) == 3:
            cancel.set()

    with ChatClient(sandbox.endpoint) as client:
        before = health(sandbox)["tokens_generated"]
        run = client.run(request(max_tokens=1500, logit_bias=NO_END, stream=True), on_chunk=on_chunk, cancel=cancel)
        wait_for(lambda: not health(sandbox)["busy"], 60, "the model to be free")
        generated = health(sandbox)["tokens_generated"] - before
        assert client.complete(request(max_tokens=2)).choices
    assert seen == [1, 2, 3]  # one call per chunk, and none after the one that stopped it
    assert run.cancelled and run.partial and run.text
    assert generated <= 3 + 5, f"{generated} tokens generated for a run stopped after 3"  # of the 1,500 asked

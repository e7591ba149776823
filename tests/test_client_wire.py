"""ChatClient against a scripted server on a real loopback socket: every wire case of issue 2."""

from __future__ import annotations

import json
import logging
import socket
import threading
from typing import Any

import httpx
import pytest

from playground.client.client import ChatClient
from playground.client.endpoint import Endpoint
from playground.client.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    ServerError,
    StreamError,
)
from playground.client.run import Run
from playground.client.schema import ChatCompletionChunk, ChatRequest, FunctionCall, ToolCall
from tests.scripted_server import Raw, Reply, ScriptedServer, make_chunk
from tests.support import stays_false, wait_for

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-3f9a7c1e5b2d"
TOKENS = ["Hel", "lo", ",", " wor", "ld", "!"]


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest.from_wire({"model": "scripted/model", "messages": [{"role": "user", "content": "hi"}], **fields})


def streaming(**fields: Any) -> ChatRequest:
    return chat(stream=True, stream_options={"include_usage": True}, **fields)


def completion_body(content: str = "Hello!", **extra: Any) -> dict:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "scripted/model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        **extra,
    }


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def client(server: ScriptedServer):
    with ChatClient(server.endpoint(api_key=KEY), max_retries=0) as chat_client:
        yield chat_client


@pytest.fixture(params=["plain", "on_chunk"])
def run_with(request: pytest.FixtureRequest):
    """client.run with and without an on_chunk callback. `chunks`: how many chunk events the
    server sends before the stream ends (or fails): the callback must see each exactly once,
    after it was recorded."""
    def run(client: ChatClient, chat_request: ChatRequest, *, chunks: int, **options: Any) -> Run:
        if request.param == "on_chunk":
            seen: list[int] = []
            result = client.run(chat_request, on_chunk=lambda recorder: seen.append(recorder.chunk_count), **options)
            assert seen == list(range(1, chunks + 1))
            return result
        return client.run(chat_request, **options)
    return run


def retrying_client(server: ScriptedServer, retries: int = 2) -> ChatClient:
    return ChatClient(server.endpoint(api_key=KEY), max_retries=retries, backoff_s=0.01, max_backoff_s=0.05)


# --- happy paths ----------------------------------------------------------------------


def test_non_streamed_reply(server: ScriptedServer, client: ChatClient) -> None:
    server.add(Reply.json(200, completion_body(system_fingerprint="fp_1", service_tier="default")))
    completion = client.complete(chat(temperature=0.2, min_p=0.1))
    assert completion.choices[0].message.content == "Hello!"
    assert completion.usage.total_tokens == 12 and completion.system_fingerprint == "fp_1"
    sent = server.requests[0]
    assert sent.method == "POST" and sent.path == "/v4/beta/chat/completions"
    assert sent.json == {"model": "scripted/model", "messages": [{"role": "user", "content": "hi"}],
                         "temperature": 0.2, "min_p": 0.1}
    assert sent.headers["content-type"] == "application/json"


def test_non_streamed_run(server: ScriptedServer, client: ChatClient) -> None:
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = completion_body("Hi there")
    body["choices"][0]["logprobs"] = {"content": [
        {"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []},
        {"token": " there", "logprob": -0.25, "bytes": None},
    ]}
    body["choices"].append({"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [tool_call]},
                            "finish_reason": "tool_calls"})
    server.add(Reply.json(200, body))
    run = client.run(chat(n=2, logprobs=True), preset="greeting")
    assert run.error is None and not run.partial and not run.cancelled
    assert run.text == "Hi there" and run.finish_reason == "stop"
    assert [t.token for t in run.choices[0].logprobs] == ["Hi", " there"]
    assert run.choices[1].tool_calls == [ToolCall.model_validate(tool_call)]
    assert run.usage.completion_tokens == 3 and run.completion_tokens == 3
    assert run.endpoint == "Scripted" and run.preset == "greeting" and run.response_id == "chatcmpl-1"
    assert run.total_s is not None and run.total_s > 0
    assert "stream" not in server.requests[0].json


def test_stream_ending_with_done(server: ScriptedServer, client: ChatClient) -> None:
    server.add(Reply.stream_text(TOKENS, done=True))
    chunks = list(client.stream(chat()))
    assert all(isinstance(chunk, ChatCompletionChunk) for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello, world!"
    assert chunks[-1].usage.completion_tokens == len(TOKENS)
    sent = server.requests[0]
    assert sent.json["stream"] is True and sent.headers["accept"] == "text/event-stream"


def test_nothing_after_done_is_read(server: ScriptedServer, client: ChatClient) -> None:
    server.add(Reply.sse([make_chunk("a"), "data: [DONE]", "data: this is not json"], done=False))
    assert [c.choices[0].delta.content for c in client.stream(chat())] == ["a"]


@pytest.mark.parametrize("end", ["chunked", "close"], ids=["chunked-end", "connection-close"])
def test_stream_ending_by_close(server: ScriptedServer, client: ChatClient, end: str, run_with) -> None:
    server.add(Reply.stream_text(TOKENS, done=False, end=end))
    run = run_with(client, streaming(), chunks=len(TOKENS) + 3)  # role, tokens, finish, usage
    assert run.error is None and not run.partial
    assert run.text == "Hello, world!" and run.finish_reason == "stop"
    assert run.usage.completion_tokens == len(TOKENS)


def test_stream_run_records_everything(server: ScriptedServer, client: ChatClient) -> None:
    server.add(Reply.stream_text(TOKENS, delay_s=0.01))
    seen: list[str] = []
    run = client.run(streaming(), on_chunk=lambda recorder: seen.append(recorder.snapshot_text()))
    assert run.text == "Hello, world!" and run.finish_reason == "stop"
    assert seen[-1] == "Hello, world!" and "Hel" in seen
    assert run.response_id == "chatcmpl-scripted" and run.response_model == "scripted/model"
    assert len(run.chunks) == len(TOKENS) + 3  # role chunk + tokens + finish chunk + usage chunk ([DONE] not kept)
    assert json.loads(run.chunks[1].data)["choices"][0]["delta"]["content"] == "Hel"
    times = [record.t for record in run.chunks]
    assert times == sorted(times)
    assert 0 < run.ttft_s <= run.total_s
    assert run.tokens_per_s is not None and run.tokens_per_s > 0
    # A Run serialises (the run store and export files rely on it).
    assert Run.model_validate_json(run.model_dump_json()) == run


def test_on_start_gets_the_recorder_before_the_request_goes_out(server: ScriptedServer, client: ChatClient) -> None:
    server.add(Reply.stream_text(TOKENS))
    started: list[tuple[Any, int]] = []
    run = client.run(streaming(), on_start=lambda recorder: started.append((recorder, len(server.requests))))
    [(recorder, requests_then)] = started
    assert requests_then == 0
    assert recorder.run is run and recorder.snapshot_text() == "Hello, world!"


def test_include_usage_final_chunk(server: ScriptedServer, client: ChatClient, run_with) -> None:
    usage = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13,
             "completion_tokens_details": {"reasoning_tokens": 0}}
    server.add(Reply.sse([
        make_chunk("", role="assistant") | {"usage": None},
        make_chunk("Hi") | {"usage": None},
        make_chunk("!", finish_reason="stop") | {"usage": None},
        make_chunk(choices=[], usage=usage),
    ]))
    run = run_with(client, streaming(), chunks=4)
    assert run.text == "Hi!" and len(run.choices) == 1
    assert run.usage.prompt_tokens == 11 and run.usage.total_tokens == 13
    assert run.usage.completion_tokens_details == {"reasoning_tokens": 0}
    assert run.completion_tokens == 2
    assert server.requests[0].json["stream_options"] == {"include_usage": True}


def test_n2_interleaved(server: ScriptedServer, client: ChatClient, run_with) -> None:
    server.add(Reply.sse([
        make_chunk("", index=0, role="assistant"), make_chunk("", index=1, role="assistant"),
        make_chunk("Red", index=1), make_chunk("Blue", index=0),
        make_chunk(" sky", index=0), make_chunk(" rose", index=1),
        make_chunk(index=1, finish_reason="length"), make_chunk(".", index=0),
        make_chunk(index=0, finish_reason="stop"),
    ]))
    run = run_with(client, streaming(n=2), chunks=9)
    assert [choice.index for choice in run.choices] == [0, 1]
    assert [choice.text for choice in run.choices] == ["Blue sky.", "Red rose"]
    assert [choice.finish_reason for choice in run.choices] == ["stop", "length"]
    assert run.content_deltas == 5


def test_tool_call_deltas_are_assembled(server: ScriptedServer, client: ChatClient, run_with) -> None:
    def call(index: int, **fields: Any) -> list[dict]:
        return [{"index": index, **fields}]

    server.add(Reply.sse([
        make_chunk(role="assistant", tool_calls=call(0, id="call_a", type="function",
                                                     function={"name": "get_weather", "arguments": ""})),
        make_chunk(tool_calls=call(0, function={"arguments": "{\"city\": "})),
        make_chunk(tool_calls=call(0, function={"arguments": "\"Paris\"}"})),
        make_chunk(tool_calls=call(1, id="call_b", type="function", function={"name": "get_", "arguments": "{"})),
        make_chunk(tool_calls=call(1, function={"name": "time", "arguments": "}"})),
        make_chunk(finish_reason="tool_calls"),
    ]))
    run = run_with(client, streaming(tools=[{"type": "function", "function": {"name": "get_weather"}}]), chunks=6)
    assert run.error is None and run.text == "" and run.finish_reason == "tool_calls"
    assert run.choices[0].tool_calls == [
        ToolCall(id="call_a", type="function",
                 function=FunctionCall(name="get_weather", arguments='{"city": "Paris"}')),
        ToolCall(id="call_b", type="function", function=FunctionCall(name="get_time", arguments="{}")),
    ]
    assert run.ttft_s is not None


def test_per_chunk_logprobs_are_concatenated(server: ScriptedServer, client: ChatClient, run_with) -> None:
    def lp(token: str, logprob: float, *alternatives: tuple[str, float]) -> dict:
        top = [{"token": t, "logprob": p, "bytes": list(t.encode())} for t, p in alternatives]
        return {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": top}

    server.add(Reply.sse([
        make_chunk("", role="assistant"),
        make_chunk("The", logprobs=[lp("The", -0.1, ("The", -0.1), ("A", -2.5))]),
        make_chunk(" cat sat", logprobs=[lp(" cat", -1.2, (" cat", -1.2), (" dog", -1.4)), lp(" sat", -0.3)]),
        make_chunk(".", logprobs=[lp(".", -9999)], finish_reason="stop"),
    ], done=False))
    run = run_with(client, streaming(logprobs=True, top_logprobs=2), chunks=4)
    tokens = run.choices[0].logprobs
    assert [t.token for t in tokens] == ["The", " cat", " sat", "."]
    assert [t.logprob for t in tokens] == [-0.1, -1.2, -0.3, -9999]
    assert [a.token for a in tokens[1].top_logprobs] == [" cat", " dog"]
    assert tokens[0].bytes == [84, 104, 101]
    assert run.usage is None and run.completion_tokens == 4  # counted from logprobs without usage


def test_crlf_keepalives_multiline_data_and_split_writes(server: ScriptedServer, client: ChatClient, run_with) -> None:
    first = json.dumps(make_chunk("Hi", role="assistant"), indent=1).replace("\n", "\ndata: ")
    server.add(Reply.sse([
        ": keep-alive",
        "data: " + first,  # one JSON object over several data lines
        ": ping",
        Raw(b'data: {"choices": [{"delta": {"content": " th'),  # an event split over two writes
        Raw(b'ere"}}]}\r\n\r\n'),
        make_chunk("!", finish_reason="stop"),
    ], delay_s=0.005, newline="\r\n"))
    run = run_with(client, streaming(), chunks=3)  # comments are no chunks; a split event is one
    assert run.error is None
    assert run.text == "Hi there!" and run.finish_reason == "stop"


@pytest.mark.parametrize("newline", ["\r", "\r\n"], ids=["CR", "CRLF"])
def test_other_line_ends_through_the_client(server: ScriptedServer, client: ChatClient, newline: str) -> None:
    server.add(Reply.stream_text(TOKENS, newline=newline))
    assert client.run(streaming()).text == "Hello, world!"


def test_last_event_without_blank_line_before_close(server: ScriptedServer, client: ChatClient, run_with) -> None:
    last = json.dumps(make_chunk("!", finish_reason="stop")).encode()
    server.add(Reply.sse([make_chunk("Hi"), Raw(b"data: " + last)], done=False, end="close"))
    run = run_with(client, streaming(), chunks=2)
    assert run.error is None and run.text == "Hi!" and run.finish_reason == "stop"


def test_pings_and_empty_events_are_skipped(server: ScriptedServer, client: ChatClient, run_with) -> None:
    server.add(Reply.sse(["event: ping", make_chunk("a"), "data:", "event: ping\ndata: ", make_chunk("b")]))
    run = run_with(client, streaming(), chunks=2)  # pings and empty data are no chunks
    assert run.error is None and run.text == "ab"


def test_json_answer_to_a_stream_request(server: ScriptedServer, client: ChatClient, run_with) -> None:
    """A server that ignores stream=true and sends the whole completion still gives a Run."""
    body = completion_body("All at once.")
    body["choices"][0]["logprobs"] = {"content": [{"token": "All", "logprob": -0.5}]}
    body["choices"].append({"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        "finish_reason": "tool_calls"})
    server.add(Reply.json(200, body))
    run = run_with(client, streaming(n=2), chunks=1)  # the whole completion as one chunk
    assert run.error is None and not run.partial
    assert run.text == "All at once." and run.finish_reason == "stop" and run.usage.total_tokens == 12
    assert [t.token for t in run.choices[0].logprobs] == ["All"]
    assert run.choices[1].tool_calls == [ToolCall(id="call_1", function=FunctionCall(name="f", arguments="{}"))]
    server.add(Reply.json(200, body))
    chunks = list(client.stream(chat()))
    assert len(chunks) == 1 and chunks[0].choices[0].delta.content == "All at once."


def test_html_answer_to_a_stream_request_is_an_error(server: ScriptedServer, client: ChatClient) -> None:
    page = "<!doctype html><html><title>Sign in</title></html>"
    server.add(Reply.raw(200, page, content_type="text/html"))
    run = client.run(streaming())
    assert run.error.kind == "StreamError"
    assert "not an event stream (text/html)" in run.error.message and "Sign in" in run.error.message


def test_redirect_is_reported_not_followed(server: ScriptedServer, client: ChatClient) -> None:
    server.default = Reply.raw(307, "", headers={"Location": "https://api.example.com/v4/beta/chat/completions"})
    with pytest.raises(APIError, match="redirects to https://api.example.com") as caught:
        client.complete(chat())
    assert caught.value.status_code == 307
    assert client.run(streaming()).error.status_code == 307
    assert len(server.requests) == 2


# --- errors before the stream ----------------------------------------------------------

STATUS_CLASSES = {400: BadRequestError, 401: AuthenticationError, 403: AuthenticationError, 404: NotFoundError,
                  409: ConflictError, 422: BadRequestError, 429: RateLimitError, 500: ServerError, 503: ServerError}
DETAIL_LIST = [
    {"loc": ["body", "temperature"], "msg": "Input should be less than or equal to 2", "type": "less_than_equal"},
    {"loc": ["body", "messages", 0, "content"], "msg": "Field required", "type": "missing"},
]
BODY_SHAPES = {
    "detail-str": ({"detail": "Model openai/gpt-9 is not available for account acct_1"},
                   ["Model openai/gpt-9 is not available for account acct_1"]),
    "detail-list": ({"detail": DETAIL_LIST},
                    ["temperature: Input should be less than or equal to 2", "messages.0.content: Field required"]),
    "openai-error": ({"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota",
                                "param": None, "code": "insufficient_quota"}},
                     ["You exceeded your current quota.", "insufficient_quota"]),
}


@pytest.mark.parametrize("shape", sorted(BODY_SHAPES))
@pytest.mark.parametrize("status", sorted(STATUS_CLASSES))
def test_error_status_and_body_shape(server: ScriptedServer, client: ChatClient, status: int, shape: str) -> None:
    body, words = BODY_SHAPES[shape]
    server.default = Reply.error(status, body)
    with pytest.raises(APIError) as caught:
        client.complete(chat())
    error = caught.value
    assert type(error) is STATUS_CLASSES[status]
    assert error.status_code == status and error.body == body
    for phrase in words:
        assert phrase in error.message
    # The same through run(), streamed: no exception, the error recorded in the server's words.
    run = client.run(streaming())
    assert run.error is not None and run.error.kind == STATUS_CLASSES[status].__name__
    assert run.error.status_code == status and all(phrase in run.error.message for phrase in words)
    assert not run.partial and run.text == ""
    assert len(server.requests) == 2  # max_retries=0: nothing retried


def test_raw_non_json_error_body(server: ScriptedServer, client: ChatClient) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1>upstream connect error</body></html>"
    server.add(Reply.error(502, page))
    with pytest.raises(ServerError) as caught:
        client.complete(chat())
    assert caught.value.status_code == 502 and caught.value.message == page
    server.add(Reply.error(418, ""))
    with pytest.raises(APIError) as caught:
        client.complete(chat())
    assert caught.value.status_code == 418 and caught.value.message == "I'm a Teapot"  # empty body: the reason phrase


def test_429_with_retry_after_then_success(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="playground.client.client")
    server.add(Reply.error(429, {"error": {"message": "Rate limit reached", "type": "requests"}},
                           headers={"Retry-After": "0.4"}))
    server.add(Reply.stream_text(TOKENS))
    with retrying_client(server) as client:
        run = client.run(streaming())
    assert run.error is None and run.text == "Hello, world!"
    assert len(server.requests) == 2
    # the wait the client chose is Retry-After's, not its 10-50 ms backoff, and it did wait it
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying")] == [
        f"retrying POST {server.base_url}/v4/beta/chat/completions in 0.40s after RateLimitError"]
    assert server.requests[1].at - server.requests[0].at >= 0.4


def test_retry_after_ms_and_connection_errors_are_retried(server: ScriptedServer) -> None:
    server.add(Reply.error(503, {"detail": "warming up"}, headers={"retry-after-ms": "150"}))
    server.add(Reply.drop_connection())
    server.add(Reply.json(200, completion_body()))
    with retrying_client(server) as client:
        assert client.complete(chat()).choices[0].message.content == "Hello!"
    assert len(server.requests) == 3
    assert server.requests[1].at - server.requests[0].at >= 0.15


def test_every_5xx_is_retried_and_a_negative_retry_after_waits_nothing(server: ScriptedServer) -> None:
    server.add(Reply.error(529, {"error": {"message": "Overloaded", "type": "overloaded_error"}},
                           headers={"retry-after-ms": "-500"}))
    server.add(Reply.error(501, {"detail": "not yet"}, headers={"Retry-After": "-3"}))
    server.add(Reply.json(200, completion_body()))
    with retrying_client(server) as client:
        assert client.complete(chat()).choices[0].message.content == "Hello!"
    assert len(server.requests) == 3


def test_retries_exhausted(server: ScriptedServer) -> None:
    server.default = Reply.error(503, {"detail": "Service temporarily overloaded"})
    with retrying_client(server, retries=2) as client:
        with pytest.raises(ServerError, match="Service temporarily overloaded"):
            client.complete(chat())
        assert len(server.requests) == 3  # the first try and two retries
        run = client.run(streaming())
    assert run.error.kind == "ServerError" and run.error.status_code == 503 and not run.partial
    assert len(server.requests) == 6


def test_non_retryable_statuses_are_not_retried(server: ScriptedServer) -> None:
    server.default = Reply.error(400, {"detail": "bad"})
    with retrying_client(server) as client, pytest.raises(BadRequestError):
        client.complete(chat())
    assert len(server.requests) == 1


def test_no_retry_once_a_stream_yielded_a_chunk(server: ScriptedServer, run_with) -> None:
    server.add(Reply.stream_text(TOKENS, delay_s=0.01, cut_after=3))
    server.add(Reply.stream_text(["never", "sent"]))
    with retrying_client(server) as client:
        run = run_with(client, streaming(), chunks=3)
    assert run.error is not None and run.error.kind == "StreamError"
    assert run.partial and run.text == "Hello"
    assert len(server.requests) == 1 and server.pending == 1


def test_connection_refused(server: ScriptedServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the socket closes
    with ChatClient(Endpoint.local(port), max_retries=0) as client:
        with pytest.raises(APIConnectionError) as caught:
            client.complete(chat())
        assert caught.value.status_code is None and str(port) in caught.value.message
        run = client.run(streaming())
    assert run.error.kind == "APIConnectionError" and not run.partial


@pytest.mark.parametrize("cut", ["rst", "fin"])
def test_connection_cut_inside_a_plain_body(server: ScriptedServer, client: ChatClient, cut: str) -> None:
    reply = Reply.json(200, completion_body())
    reply.cut_after, reply.cut, reply.delay_s = 40, cut, 0.02  # 40 bytes of the body, then the cut
    server.default = reply
    with pytest.raises(APIConnectionError, match="connection lost reading the answer"):
        client.complete(chat())
    run = client.run(chat())  # run() never raises: the error is recorded
    assert run.error.kind == "APIConnectionError" and not run.partial
    with pytest.raises(APIConnectionError):
        client.list_models()
    assert len(server.requests) == 3


def test_timeout_before_the_answer(server: ScriptedServer) -> None:
    # A 0.3 s timeout against a server that would answer after 30 s: it ends at ~0.3 s.
    server.add(Reply.stream_text(TOKENS, head_delay_s=30))
    endpoint = server.endpoint(timeout=httpx.Timeout(0.3))
    with ChatClient(endpoint, max_retries=0) as client:
        run = client.run(streaming())
    assert server.requests[0].answered_at is None  # it gave up before the server's 30 s were over
    assert run.error.kind == "APITimeoutError" and not run.partial
    slow = Reply.json(200, completion_body())
    slow.head_delay_s = 30
    server.add(slow)
    with ChatClient(endpoint, max_retries=0) as client, pytest.raises(APITimeoutError) as caught:
        client.complete(chat())
    assert caught.value.status_code is None and "timed out" in caught.value.message


# --- errors during the stream ----------------------------------------------------------


@pytest.mark.parametrize("cut", ["rst", "fin"])
def test_connection_cut_mid_stream_keeps_partial_text(
    server: ScriptedServer, client: ChatClient, cut: str, run_with
) -> None:
    server.add(Reply.stream_text(TOKENS, delay_s=0.01, cut_after=4, cut=cut))
    run = run_with(client, streaming(), chunks=4)
    assert run.partial and not run.cancelled
    assert run.text == "Hello,"  # role chunk + 3 tokens arrived before the cut
    assert run.error.kind == "StreamError" and "connection" in run.error.message
    assert run.total_s is not None and len(run.chunks) == 4


def test_connection_cut_mid_stream_raises_from_stream(server: ScriptedServer, client: ChatClient) -> None:
    server.add(Reply.stream_text(TOKENS, delay_s=0.01, cut_after=2))
    got = []
    with pytest.raises(StreamError):
        for chunk in client.stream(chat()):
            got.append(chunk)
    assert len(got) == 2


def test_silent_server_times_out_mid_stream(server: ScriptedServer) -> None:
    server.add(Reply.sse([make_chunk("Hi"), make_chunk(" there")], done=False, hold_open=True))
    with ChatClient(server.endpoint(timeout=httpx.Timeout(5.0, read=0.3)), max_retries=0) as client:
        run = client.run(streaming())
    assert run.partial and run.text == "Hi there"
    assert run.error.kind == "APITimeoutError"


@pytest.mark.parametrize("bad", [
    'data: {"choices": [{"delta": {"content": "x"',
    "data: this is not json",
    'data: {"choices": "not a list"}',
])
def test_malformed_data_line(server: ScriptedServer, client: ChatClient, bad: str, run_with) -> None:
    server.add(Reply.sse([make_chunk("Hel"), make_chunk("lo"), bad, make_chunk("never seen")]))
    run = run_with(client, streaming(), chunks=2)  # the bad data is recorded, but is no chunk
    assert run.partial and run.text == "Hello"
    assert run.error.kind == "StreamError" and "malformed" in run.error.message
    assert run.error.message.count(bad[6:16]) == 1  # the offending data is quoted (shortened)
    server.add(Reply.sse([make_chunk("Hel"), bad]))
    stream = client.stream(chat())
    assert next(stream).choices[0].delta.content == "Hel"
    with pytest.raises(StreamError, match="malformed"):
        next(stream)
    assert stream.response.is_closed


def test_error_event_mid_stream(server: ScriptedServer, client: ChatClient, run_with) -> None:
    error = {"error": {"message": "The model is overloaded, try again later", "type": "overloaded_error"}}
    server.add(Reply.sse([make_chunk("Par"), make_chunk("tial"), "event: error\ndata: " + json.dumps(error),
                          make_chunk("never seen")]))
    run = run_with(client, streaming(), chunks=2)
    assert run.partial and run.text == "Partial"
    assert run.error.kind == "StreamError"
    assert "The model is overloaded, try again later" in run.error.message


def test_error_event_with_plain_text(server: ScriptedServer, client: ChatClient) -> None:
    server.add(Reply.sse([make_chunk("a"), "event: error\ndata: upstream went away"]))
    run = client.run(streaming())
    assert run.error.kind == "StreamError" and run.error.message == "upstream went away" and run.text == "a"


def test_error_object_in_data_mid_stream(server: ScriptedServer, client: ChatClient) -> None:
    error = {"error": {"message": "This model's maximum context length is 8192 tokens", "code": "context_length"}}
    server.add(Reply.sse([make_chunk("So"), error, make_chunk("never seen")]))
    with pytest.raises(StreamError) as caught:
        for _ in client.stream(chat()):
            pass
    assert "maximum context length is 8192 tokens" in caught.value.message


# --- cancel and early stop --------------------------------------------------------------


def cancel_after_chunks(count: int, delay_s: float, cancel: threading.Event):
    """An on_chunk callback that, after `count` chunks, sets `cancel` from another thread `delay_s` later
    (so the client is blocked in a read when it happens)."""
    def on_chunk(recorder) -> None:
        if recorder.chunk_count == count:
            cancel_later(delay_s, cancel)

    return on_chunk


def sse_bytes(*chunks: dict) -> Raw:
    """Several events in one write: they arrive together, and the reply's delay comes after them."""
    return Raw(b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in chunks))


HELLO = sse_bytes(make_chunk("", role="assistant"), make_chunk("Hel"), make_chunk("lo"))


@pytest.mark.parametrize("silent", [False, True], ids=["slow-stream", "silent-server"])
def test_cancel_mid_stream_closes_the_connection_at_once(server: ScriptedServer, client: ChatClient,
                                                         silent: bool) -> None:
    # Three events in one write, then either 2 s until the next one or nothing at all: the client
    # waits in a read that only the cancel can end before then.
    if silent:
        server.add(Reply.sse([HELLO], done=False, hold_open=True))
    else:
        server.add(Reply.sse([HELLO, make_chunk(", wor"), make_chunk("ld")], delay_s=2.0))
    cancel = threading.Event()
    run = client.run(streaming(), on_chunk=cancel_after_chunks(3, 0.05, cancel), cancel=cancel)
    received = server.requests[0]
    assert received.events_sent == 1  # it returned before the server's next write (or ever, when silent)
    assert received.wait_closed(5.0), "the server never saw the connection close"
    assert received.events_sent == 1 and not received.finished  # and the server saw it gone before that
    assert run.cancelled and run.partial and run.error is None
    assert run.text == "Hello"
    assert run.total_s is not None


def cancel_later(delay_s: float, cancel: threading.Event | None = None) -> threading.Event:
    """`cancel` (a new Event by default), set from a timer thread `delay_s` from now."""
    cancel = cancel if cancel is not None else threading.Event()
    timer = threading.Timer(delay_s, cancel.set)
    timer.daemon = True
    timer.start()
    return cancel


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
def test_cancel_while_waiting_for_the_first_byte(server: ScriptedServer, client: ChatClient, stream: bool) -> None:
    slow = Reply.stream_text(TOKENS * 3, delay_s=0.05) if stream else Reply.json(200, completion_body())
    slow.head_delay_s = 2.0
    server.add(slow)
    cancel = cancel_later(0.1)
    run = client.run(chat(stream=stream), cancel=cancel)
    assert server.requests[0].answered_at is None  # Stop answers at once, not 1.9 s later when the server does
    assert run.cancelled and run.partial and run.error is None and run.text == ""
    if stream:  # the abandoned stream is closed as soon as its answer comes: the server stops
        assert server.requests[0].wait_closed(5.0) and not server.requests[0].finished
    server.add(Reply.stream_text(["still", " fine"]))
    assert client.run(streaming()).text == "still fine"


def test_cancel_during_a_retry_wait(server: ScriptedServer) -> None:
    server.add(Reply.error(429, {"detail": "slow down"}, headers={"Retry-After": "1.5"}))
    server.add(Reply.stream_text(TOKENS))
    cancel = threading.Event()

    def stop_in_the_wait() -> None:
        wait_for(lambda: server.requests and server.requests[0].finished, 10, "the 429 to be sent")
        cancel.set()

    threading.Thread(target=stop_in_the_wait, daemon=True).start()
    with retrying_client(server) as client:
        run = client.run(streaming(), cancel=cancel)
        assert len(server.requests) == 1  # it returned inside the wait, before the retry was due
        assert run.cancelled and run.error is None
        # past the time the retry was due (with the client still open): it never went out
        assert stays_false(lambda: len(server.requests) > 1, 2.5)


def test_cancel_set_before_the_run_starts(server: ScriptedServer, client: ChatClient) -> None:
    server.add(Reply.stream_text(TOKENS, delay_s=0.5))  # 4.5 s if it were sent
    cancel = threading.Event()
    cancel.set()
    run = client.run(streaming(), cancel=cancel)
    assert run.cancelled and run.partial and run.error is None
    assert server.requests == []  # nothing was sent


def test_cancel_in_on_chunk_stops_after_that_chunk(server: ScriptedServer, client: ChatClient) -> None:
    server.add(Reply.stream_text(TOKENS, delay_s=0.02))
    cancel = threading.Event()

    def on_chunk(recorder) -> None:
        if recorder.snapshot_text() == "Hello":
            cancel.set()

    run = client.run(streaming(), on_chunk=on_chunk, cancel=cancel)
    assert run.cancelled and run.text == "Hello"
    assert server.requests[0].wait_closed(1.0)


def test_early_break_from_stream_closes_the_response(server: ScriptedServer, client: ChatClient) -> None:
    server.add(Reply.stream_text(TOKENS * 10, delay_s=0.05))  # 3 s to the end, unless closed
    for number, _chunk in enumerate(client.stream(chat())):
        if number == 2:
            sent_at_break = server.requests[0].events_sent
            break
    received = server.requests[0]
    assert received.wait_closed(5.0)
    # closed at the break: the server, writing every 50 ms, got at most one more event out
    assert received.events_sent <= sent_at_break + 1 and not received.finished


def test_closing_a_stream_closes_the_response(server: ScriptedServer, client: ChatClient) -> None:
    server.add(Reply.stream_text(TOKENS * 10, delay_s=0.05))  # 3 s to the end, unless closed
    with client.stream(chat()) as stream:
        first = next(stream)
        assert first.choices[0].delta.role == "assistant"
    assert stream.response.is_closed
    assert server.requests[0].wait_closed(1.0) and not server.requests[0].finished
    # The client still works after an early close.
    server.add(Reply.stream_text(["ok"]))
    assert client.run(streaming()).text == "ok"


# --- models and headers ---------------------------------------------------------------


def test_list_models_sgp_shape(server: ScriptedServer) -> None:
    server.route("/v5/chat/completions/models", Reply.json(200, {"object": "list", "items": [
        {"model_name": "gpt-4o", "model_type": "chat_completion", "model_vendor": "openai",
         "model_availability": "available"},
        {"model_name": "local/smollm2-135m-instruct", "model_vendor": "local"},
        {"model_name": "bare-name"},
    ]}))
    with ChatClient(Endpoint.sgp(api_key=KEY, account_id="acct_42", base_url=server.base_url)) as client:
        assert client.list_models() == ["openai/gpt-4o", "local/smollm2-135m-instruct", "bare-name"]
    sent = server.requests[0]
    assert (sent.method, sent.path) == ("GET", "/v5/chat/completions/models")
    assert sent.headers["x-api-key"] == KEY and sent.headers["x-selected-account-id"] == "acct_42"


def test_list_models_openai_shape(server: ScriptedServer) -> None:
    server.route("/v1/models", Reply.json(200, {"object": "list", "data": [
        {"id": "gpt-4o-mini", "object": "model", "owned_by": "openai"}, {"id": "o3", "object": "model"}]}))
    with ChatClient(Endpoint.openai_compatible(server.base_url + "/v1", api_key=KEY)) as client:
        assert client.list_models() == ["gpt-4o-mini", "o3"]
    assert server.requests[0].path == "/v1/models"
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_list_models_error_is_an_api_error(server: ScriptedServer, client: ChatClient) -> None:
    server.default = Reply.error(401, {"detail": "Invalid API key"})
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        client.list_models()


def test_sgp_headers(server: ScriptedServer) -> None:
    server.default = Reply.json(200, completion_body())
    endpoint = Endpoint.sgp(api_key=KEY, account_id="acct_42", base_url=server.base_url)
    with ChatClient(endpoint) as client:
        client.complete(chat())
    sent = server.requests[0]
    assert sent.path == "/v4/beta/chat/completions"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["x-selected-account-id"] == "acct_42"
    assert "authorization" not in sent.headers


def test_sgp_headers_without_account(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SGP_ACCOUNT_ID", raising=False)
    server.default = Reply.json(200, completion_body())
    with ChatClient(Endpoint.sgp(api_key=KEY, base_url=server.base_url)) as client:
        client.complete(chat())
    assert "x-selected-account-id" not in server.requests[0].headers


def test_bearer_and_extra_headers(server: ScriptedServer) -> None:
    server.default = Reply.json(200, completion_body())
    endpoint = server.endpoint(path="/v1/chat/completions", auth="bearer", api_key=KEY,
                               headers={"X-Title": "playground"})
    with ChatClient(endpoint) as client:
        client.complete(chat())
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["x-title"] == "playground"
    assert "x-api-key" not in sent.headers


def test_no_key_no_auth_header(server: ScriptedServer) -> None:
    server.default = Reply.json(200, completion_body())
    with ChatClient(Endpoint.local(server.port)) as client:
        client.complete(chat())
    assert not {"x-api-key", "authorization", "x-selected-account-id"} & set(server.requests[0].headers)


def test_key_never_in_repr_or_logs(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = server.endpoint(api_key=KEY, account_id="acct_42")
    server.add(Reply.error(429, {"detail": "slow down"}, headers={"Retry-After": "0"}))
    server.add(Reply.stream_text(TOKENS))
    server.add(Reply.error(401, {"detail": "Invalid API key"}))
    server.route("/v5/chat/completions/models", Reply.json(200, {"items": [{"model_name": "m"}]}))
    with ChatClient(endpoint, backoff_s=0.01) as client:
        texts = [repr(endpoint), str(endpoint), repr(client), str(client)]
        run = client.run(streaming())
        failed = client.run(streaming())
        client.list_models()
    assert run.text == "Hello, world!" and failed.error.kind == "AuthenticationError"
    texts += [run.model_dump_json(), failed.model_dump_json(), repr(run), repr(failed.error)]
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert any("retry" in record.getMessage() for record in caplog.records)
    for text in texts + [caplog.text]:
        assert KEY not in text
    assert server.requests[0].headers["x-api-key"] == KEY  # it was sent, only never shown

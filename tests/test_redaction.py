"""A key in an endpoint's base URL query string (?api_key=...) is sent where the server looks
for it, and redacted from error messages, run records, log lines, reprs and generated code."""

from __future__ import annotations

import logging
import socket

import pytest

from playground.client.client import ChatClient
from playground.client.endpoint import Endpoint
from playground.client.schema import ChatRequest
from playground.codegen import curl_snippet, httpx_snippet, openai_snippet
from playground.secrets_check import redact_url_secrets
from tests.scripted_server import Reply, ScriptedServer

QUERY_KEY = "pgtest-query-key-7d2a41"


def _request() -> ChatRequest:
    return ChatRequest(model="scripted/model", messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize(("text", "expected"), [
    ("could not reach http://h:8/v1/chat/completions?api_key=abc&x=1: refused",
     "could not reach http://h:8/v1/chat/completions?api_key=***&x=1: refused"),
    ("https://u:pw@h/v1?key=abc#frag", "https://***@h/v1?key=***#frag"),
    ("https://h/v1?api-version=2024-06-01&sig=abc", "https://h/v1?api-version=2024-06-01&sig=***"),
    ("temperature=0.7 and model=a", "temperature=0.7 and model=a"),
])
def test_redact_url_secrets(text: str, expected: str) -> None:
    assert redact_url_secrets(text) == expected


def test_the_query_of_a_base_url_follows_the_path() -> None:
    endpoint = Endpoint.openai_compatible(f"http://127.0.0.1:9/v1?api_key={QUERY_KEY}")
    assert endpoint.chat_url == f"http://127.0.0.1:9/v1/chat/completions?api_key={QUERY_KEY}"
    assert endpoint.models_url == f"http://127.0.0.1:9/v1/models?api_key={QUERY_KEY}"
    assert QUERY_KEY not in repr(endpoint) and QUERY_KEY not in repr(ChatClient(endpoint))


def test_the_server_gets_the_query_key_and_its_echo_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with ScriptedServer() as server:
        echo = f"no model here (you asked {server.base_url}/v1/chat/completions?api_key={QUERY_KEY})"
        server.add(Reply.error(404, {"detail": echo}))
        endpoint = Endpoint.openai_compatible(f"{server.base_url}/v1?api_key={QUERY_KEY}")
        with ChatClient(endpoint, max_retries=0) as client:
            run = client.run(_request())
    assert server.requests[0].path == f"/v1/chat/completions?api_key={QUERY_KEY}"
    assert run.error is not None and run.error.status_code == 404
    assert run.error.message == echo.replace(QUERY_KEY, "***")
    assert QUERY_KEY not in run.model_dump_json()
    assert "HTTP Request: POST" in caplog.text and "api_key=***" in caplog.text  # httpx's own line
    assert QUERY_KEY not in caplog.text


def test_a_connection_error_and_its_retry_log_line_leave_the_key_out(caplog: pytest.LogCaptureFixture) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]  # nothing listens once the block ends
    endpoint = Endpoint.openai_compatible(f"http://127.0.0.1:{port}/v1?api_key={QUERY_KEY}")
    caplog.set_level(logging.DEBUG)
    with ChatClient(endpoint, max_retries=1, backoff_s=0.01) as client:
        run = client.run(_request())
    assert run.error is not None and run.error.kind == "APIConnectionError"
    assert f"127.0.0.1:{port}/v1/chat/completions?api_key=***" in run.error.message
    assert QUERY_KEY not in run.error.message
    assert "retrying" in caplog.text  # the retry was logged, without the key
    assert QUERY_KEY not in caplog.text


def test_generated_code_leaves_the_query_key_out() -> None:
    endpoint = Endpoint.openai_compatible(f"http://127.0.0.1:9/v1?api_key={QUERY_KEY}", api_key=None)
    for snippet in (curl_snippet, httpx_snippet, openai_snippet):
        code = snippet(endpoint, _request())
        assert QUERY_KEY not in code, snippet.__name__
        assert "api_key=***" in code and "put yours where *** is" in code, snippet.__name__

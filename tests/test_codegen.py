"""Generated code sends the exact request: each snippet is run for real (bash + curl, python +
httpx, python + openai SDK) against the scripted server on loopback, which records what came."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from playground.client.endpoint import Endpoint
from playground.client.schema import ChatRequest
from playground.codegen import OPENAI_SDK_FIELDS, curl_snippet, httpx_snippet, openai_snippet
from playground.secrets_check import SecretFoundError
from tests.browser_support import in_ci
from tests.scripted_server import Received, Reply, ScriptedServer

SGP_KEY = "sk-sgp-DO-NOT-PRINT-0123456789"
OPENAI_KEY = "sk-openai-DO-NOT-PRINT-9876543210"
HEADER_SECRET = "tok-header-DO-NOT-PRINT"
ENV_KEY = "env-key-value-42"
ENV_ACCOUNT = "acct-from-env"

COMPLETION = {
    "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello from the test server"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5},
}
CHUNKS = [
    {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hello "}, "finish_reason": None}]},
    {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
     "choices": [{"index": 0, "delta": {"content": "streamed"}, "finish_reason": "stop"}]},
]


@pytest.fixture(scope="module")
def server():
    with ScriptedServer() as scripted:
        yield scripted


def answer(server: ScriptedServer, stream: bool) -> None:
    """Queue the test server's one answer to the snippet: a stream of CHUNKS, or COMPLETION."""
    server.add(Reply.sse(CHUNKS) if stream else Reply.json(200, COMPLETION))


@pytest.fixture
def needs_curl() -> None:
    """curl on PATH (the snippets call it by name). `make test` and .ci/run install it
    (scripts/ensure-system-deps.sh); when it is missing anyway, a local run skips with the
    reason, but under CI it fails: there a skip would hide that the curl snippets never ran."""
    if shutil.which("curl") is None:
        reason = "curl is not installed (scripts/ensure-system-deps.sh installs it)"
        if in_ci():
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)


@pytest.fixture
def received(server: ScriptedServer) -> list[Received]:
    """What the test server received during this test."""
    server.requests.clear()
    return server.requests


def sgp_endpoint(base_url: str) -> Endpoint:
    return Endpoint(name="SGP test", base_url=base_url, auth="x-api-key", api_key=SGP_KEY, account_id="acct-secret-id",
                    headers={"X-Team": "blue's team", "X-Auth-Token": HEADER_SECRET, "X-Echo": f"k={SGP_KEY}"},
                    kind="sgp")


def bearer_endpoint(base_url: str) -> Endpoint:
    return Endpoint.openai_compatible(base_url + "/v1", api_key=OPENAI_KEY)


def nasty_request(stream: bool = False) -> ChatRequest:
    return ChatRequest.from_wire({
        "model": "openai/gpt-4o",
        "messages": [
            {"role": "system", "content": "It's \"quoted\" $HOME `id` $(whoami) \\ back\\slash"},
            {"role": "user", "content": "line one\nline two\ttab 'single' caf\u00e9 \u65e5\u672c \U0001f600 EOF\nJSON"},
        ],
        "temperature": 0.7,
        "top_p": 1,
        "logprobs": True,
        "top_logprobs": 5,
        "max_tokens": 32,
        "stop": ["\n\n", "END"],
        "logit_bias": {"50256": -100},
        "metadata": {"team": "playground"},
        "stream": stream,
        "top_k": 40,
        "min_p": 0.05,
        "chat_template_kwargs": {"enable_thinking": False, "nested": [1, 2.5, None, "x"]},
    })


def env_for_snippets() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_ACCOUNT_ID"))}
    env.update(SGP_API_KEY=ENV_KEY, OPENAI_API_KEY=ENV_KEY, SGP_ACCOUNT_ID=ENV_ACCOUNT,
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(proxy, None)
    return env


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env_for_snippets(), capture_output=True, text=True,
                          timeout=60)


# --- no keys --------------------------------------------------------------------------


@pytest.mark.parametrize("make", [curl_snippet, httpx_snippet, openai_snippet])
@pytest.mark.parametrize("endpoint_of", [sgp_endpoint, bearer_endpoint])
def test_snippets_never_contain_a_key(make, endpoint_of):
    endpoint = endpoint_of("http://127.0.0.1:9")
    text = make(endpoint, nasty_request())
    for secret in (SGP_KEY, OPENAI_KEY, HEADER_SECRET, "acct-secret-id"):
        assert secret not in text
    assert ("SGP_API_KEY" if endpoint.auth == "x-api-key" else "OPENAI_API_KEY") in text
    if endpoint.account_id:
        assert "SGP_ACCOUNT_ID" in text
    if endpoint.headers:
        assert "X-Auth-Token" in text and "left out" in text  # said, not silently dropped


@pytest.mark.parametrize("make", [curl_snippet, httpx_snippet, openai_snippet])
@pytest.mark.parametrize(("extra", "field"), [
    ({"api_key": "typed-in-by-mistake"}, "api_key"),
    ({"extra_headers": {"Authorization": "Bearer typed-in-by-mistake"}}, "extra_headers.Authorization"),
])
def test_a_key_typed_into_the_request_gives_no_code(make, extra, field):
    request = ChatRequest(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}], **extra)
    with pytest.raises(SecretFoundError) as caught:
        make(sgp_endpoint("http://127.0.0.1:9"), request)
    assert caught.value.findings == [f"field '{field}'"]
    assert str(caught.value).startswith(f"Refused: this request carries a secret (field '{field}').")
    assert "typed-in-by-mistake" not in str(caught.value)


# --- curl ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_curl_snippet_sends_the_exact_request(needs_curl, server, received, stream):
    endpoint, request = sgp_endpoint(server.base_url), nasty_request(stream)
    answer(server, stream)
    result = subprocess.run(["bash", "-c", curl_snippet(endpoint, request)], env=env_for_snippets(),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert len(received) == 1
    got = received[0]
    assert got.path == "/v4/beta/chat/completions"
    sent = endpoint.prepare(request).to_wire()  # the token limit in the endpoint's field, as ChatClient sends it
    assert got.json == sent
    assert got.body.decode() == json.dumps(sent, indent=2, ensure_ascii=False)
    assert got.headers["x-api-key"] == ENV_KEY
    assert got.headers["x-selected-account-id"] == ENV_ACCOUNT
    assert got.headers["x-team"] == "blue's team"
    assert "x-auth-token" not in got.headers and "x-echo" not in got.headers
    assert got.headers["content-type"] == "application/json"
    assert ("streamed" in result.stdout) == stream


def test_curl_snippet_bearer(needs_curl, server, received):
    request, endpoint = nasty_request(), bearer_endpoint(server.base_url)
    answer(server, stream=False)
    result = subprocess.run(["bash", "-c", curl_snippet(endpoint, request)],
                            env=env_for_snippets(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    [got] = received
    assert got.path == "/v1/chat/completions"
    assert got.headers["authorization"] == f"Bearer {ENV_KEY}"
    assert "x-api-key" not in got.headers
    assert got.json == endpoint.prepare(request).to_wire()


def test_local_endpoint_sends_no_key():
    text = curl_snippet(Endpoint.local(8765), nasty_request())
    assert "API_KEY" not in text and "x-api-key" not in text
    assert "http://127.0.0.1:8765/v4/beta/chat/completions" in text


# --- Python ----------------------------------------------------------------------------


@pytest.mark.parametrize("make", [httpx_snippet, openai_snippet])
@pytest.mark.parametrize("stream", [False, True])
def test_python_snippets_compile(make, stream):
    compile(make(sgp_endpoint("http://127.0.0.1:9"), nasty_request(stream)), "<snippet>", "exec")
    compile(make(bearer_endpoint("http://127.0.0.1:9"), nasty_request(stream)), "<snippet>", "exec")


@pytest.mark.parametrize("stream", [False, True])
def test_httpx_snippet_sends_the_exact_request(server, received, stream):
    request, endpoint = nasty_request(stream), sgp_endpoint(server.base_url)
    answer(server, stream)
    result = run_python(httpx_snippet(endpoint, request))
    assert result.returncode == 0, result.stderr
    [got] = received
    assert got.json == endpoint.prepare(request).to_wire()
    assert got.headers["x-api-key"] == ENV_KEY and got.headers["x-selected-account-id"] == ENV_ACCOUNT
    assert got.headers["x-team"] == "blue's team" and "x-auth-token" not in got.headers
    expected = "hello streamed" if stream else "hello from the test server"
    assert expected in result.stdout


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("endpoint_of", [sgp_endpoint, bearer_endpoint])
def test_openai_snippet_sends_the_exact_request(server, received, stream, endpoint_of):
    # no importorskip: the dev extra installs openai, and a skip would hide a broken install
    endpoint, request = endpoint_of(server.base_url), nasty_request(stream)
    answer(server, stream)
    result = run_python(openai_snippet(endpoint, request))
    assert result.returncode == 0, result.stderr
    [got] = received
    assert got.path == ("/v4/beta/chat/completions" if endpoint.kind == "sgp" else "/v1/chat/completions")
    assert got.json == endpoint.prepare(request).to_wire()  # top_k, min_p, chat_template_kwargs via extra_body
    if endpoint.auth == "x-api-key":
        assert got.headers["x-api-key"] == ENV_KEY
        assert got.headers["x-selected-account-id"] == ENV_ACCOUNT
    else:
        assert got.headers["authorization"] == f"Bearer {ENV_KEY}"
    assert ("hello streamed" if stream else "hello from the test server") in result.stdout


def test_openai_field_list_matches_the_installed_sdk():
    from openai.resources.chat import completions  # the dev extra installs it: a failure, not a skip
    params = set(inspect.signature(completions.Completions.create).parameters)
    assert OPENAI_SDK_FIELDS <= params
    snippet = openai_snippet(sgp_endpoint("http://127.0.0.1:9"), nasty_request())
    extra = snippet[snippet.index("extra_body="):]
    assert '"top_k": 40' in extra and '"min_p": 0.05' in extra and '"chat_template_kwargs"' in extra
    assert 'base_url="http://127.0.0.1:9/v4/beta"' in snippet


@pytest.mark.parametrize("endpoint_of", [sgp_endpoint, bearer_endpoint])
def test_openai_snippet_keeps_a_safe_header_that_mentions_authorization(endpoint_of):
    base = endpoint_of("http://127.0.0.1:9")
    endpoint = replace(base, headers={**base.headers, "X-Note": "no Authorization here"})
    text = openai_snippet(endpoint, nasty_request())
    assert '"X-Note": "no Authorization here",' in text
    assert "Bearer" not in text  # the SDK sends its api_key as the Bearer header itself

"""Issue 22, any server's token limit: each endpoint names the field its server reads the limit
from (token_limit_field), the client sends the limit in it, Get code shows the same, and a run
that went past the limit asked for says the server ignored it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from playground import codegen
from playground.client.client import ChatClient
from playground.client.endpoint import Endpoint
from playground.client.schema import REMOVED, ChatRequest
from playground.client.token_limit import IgnoredLimit, changes_in_field, ignored_limit, with_token_limit_field
from playground.settings import configured_endpoints
from tests.scripted_server import Reply, ScriptedServer

pytestmark = pytest.mark.timeout(60)


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest.from_wire({"model": "scripted/model", "messages": [{"role": "user", "content": "hi"}],
                                  **fields})


def completion(completion_tokens: int = 3) -> dict:
    return {"id": "c1", "object": "chat.completion", "created": 1, "model": "scripted/model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": completion_tokens,
                      "total_tokens": 5 + completion_tokens}}


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        scripted.default = Reply.json(200, completion())
        yield scripted


def test_defaults_per_kind_of_server():
    assert Endpoint.sgp(api_key="k").token_limit_field == "max_completion_tokens"
    assert Endpoint.openai_compatible("https://api.openai.com/v1").token_limit_field == "max_completion_tokens"
    assert Endpoint.openai_compatible("http://127.0.0.1:8000/v1").token_limit_field == "max_tokens"
    assert Endpoint.openai_compatible("https://openrouter.ai/api/v1").token_limit_field == "max_tokens"
    assert Endpoint.local(8765).token_limit_field == "max_tokens"
    chosen = Endpoint.openai_compatible("https://api.openai.com/v1", token_limit_field="max_tokens")
    assert chosen.token_limit_field == "max_tokens"
    with pytest.raises(ValueError, match="token_limit_field must be one of"):
        Endpoint(name="x", base_url="http://x", token_limit_field="max_new_tokens")  # type: ignore[arg-type]


def test_the_key_in_an_endpoints_table():
    secrets = {"endpoints": {
        "llama": {"base_url": "http://box:8000/v1", "auth": "bearer"},
        "openai": {"base_url": "https://api.openai.com/v1", "auth": "bearer"},
        "sgp-like": {"base_url": "https://sgp.example"},
        "told": {"base_url": "http://box:8000/v1", "auth": "bearer", "token_limit_field": "max_completion_tokens"},
        "wrong": {"base_url": "http://box:8000/v1", "token_limit_field": "max_length"},
    }}
    problems: list[str] = []
    named = {e.name: e for e in configured_endpoints(secrets, {}, None, problems)}
    assert {name: e.token_limit_field for name, e in named.items()} == {
        "llama": "max_tokens", "openai": "max_completion_tokens", "sgp-like": "max_completion_tokens",
        "told": "max_completion_tokens"}
    assert problems == ["[endpoints.wrong]: token_limit_field must be 'max_completion_tokens' or 'max_tokens', "
                        "got 'max_length'"]


def test_the_limit_moves_to_the_endpoints_field_unless_both_are_set():
    one = chat(max_completion_tokens=7, temperature=0.5)
    moved = with_token_limit_field(one, "max_tokens")
    assert moved.to_wire() == {**{k: v for k, v in one.to_wire().items() if k != "max_completion_tokens"},
                               "max_tokens": 7}
    assert with_token_limit_field(moved, "max_completion_tokens").to_wire() == one.to_wire()
    both = chat(max_completion_tokens=7, max_tokens=9)
    assert with_token_limit_field(both, "max_tokens") is both
    none = chat()
    assert with_token_limit_field(none, "max_tokens") is none


def test_an_edited_limit_moves_with_the_request_to_another_field():
    assert changes_in_field({"max_tokens": 10, "seed": 1}, "max_completion_tokens") == {
        "max_completion_tokens": 10, "seed": 1}
    assert changes_in_field({"max_tokens": REMOVED}, "max_completion_tokens") == {"max_completion_tokens": REMOVED}
    both = {"max_tokens": 10, "max_completion_tokens": 20}  # both edited: as typed
    assert changes_in_field(both, "max_tokens") is both
    assert changes_in_field({"max_tokens": 10}, "max_tokens") == {"max_tokens": 10}


@pytest.mark.parametrize("stream", [False, True])
def test_a_custom_server_receives_max_tokens_and_sgp_max_completion_tokens(server: ScriptedServer, stream: bool):
    custom = Endpoint.openai_compatible(f"{server.base_url}/v1", name="Custom (OpenAI-compatible)")
    sgp = Endpoint.sgp(api_key="k", base_url=server.base_url)
    if stream:
        server.default = Reply.stream_text(["Hi"])
    request = chat(max_completion_tokens=12, stream=stream)
    for endpoint in (custom, sgp):
        with ChatClient(endpoint, max_retries=0) as client:
            run = client.run(request)
        assert run.error is None, run.error
    to_custom, to_sgp = (r.json for r in server.requests)
    assert (to_custom.get("max_tokens"), "max_completion_tokens" in to_custom) == (12, False)
    assert (to_sgp.get("max_completion_tokens"), "max_tokens" in to_sgp) == (12, False)
    # the run records the request as sent (History shows what the server was asked)
    assert run.request.max_completion_tokens == 12 and run.request.max_tokens is None


def test_complete_sends_the_endpoints_field_too(server: ScriptedServer):
    with ChatClient(Endpoint.local(server.port), max_retries=0) as client:
        client.complete(chat(max_tokens=4))
        client.complete(chat(max_completion_tokens=4))
    assert [r.json.get("max_tokens") for r in server.requests] == [4, 4]
    assert not any("max_completion_tokens" in r.json for r in server.requests)


def test_get_code_shows_the_field_that_is_sent():
    request = chat(max_completion_tokens=33)
    local, sgp = Endpoint.local(8765), Endpoint.sgp(api_key="k")
    for make in (codegen.curl_snippet, codegen.httpx_snippet, codegen.openai_snippet):
        on_local, on_sgp = make(local, request), make(sgp, request)
        assert "max_tokens" in on_local and "max_completion_tokens" not in on_local, make.__name__
        assert "max_completion_tokens" in on_sgp and "max_tokens" not in on_sgp, make.__name__


def test_a_run_past_its_limit_is_reported_as_ignored(server: ScriptedServer):
    """The server below generated 40 tokens for a limit of 8: its reply says so in its usage."""
    server.default = Reply.json(200, completion(completion_tokens=40))
    with ChatClient(Endpoint.local(server.port), max_retries=0) as client:
        over = client.run(chat(max_completion_tokens=8))
        kept = client.run(chat(max_completion_tokens=40))
        unlimited = client.run(chat())
    assert ignored_limit(over) == IgnoredLimit(field="max_tokens", limit=8, choices=1, generated=40)
    assert ignored_limit(kept) is None and ignored_limit(unlimited) is None
    # the limit holds per choice: two choices of 20 tokens keep to a limit of 20
    two = over.model_copy(update={"choices": over.choices * 2,
                                  "request": chat(max_tokens=20, n=2)})
    assert ignored_limit(two) is None
    assert ignored_limit(two.model_copy(update={"request": chat(max_tokens=19, n=2)})).allowed == 38
    # without usage, streamed deltas are no token count: nothing is claimed
    no_usage = over.model_copy(update={"usage": None, "content_deltas": 40})
    assert no_usage.completion_tokens == 40 and ignored_limit(no_usage) is None


# --- the pages (AppTest) --------------------------------------------------------------------


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    """A scripted server standing in for the local sandbox (apptest_support.sandbox_stand_in)."""
    from tests.apptest_support import sandbox_stand_in

    with sandbox_stand_in(tmp_path, monkeypatch, models=[("scripted-model", "scripted")]) as scripted:
        yield scripted


def _playground_run(at, limit: int) -> None:
    """Type a user message and the limit (in the JSON view, as a user can on any endpoint), then Run."""
    from tests.apptest_support import widget

    body = json.loads(widget(at.text_area, "request_json").value)
    body["messages"] = [{"role": "user", "content": "Count to twenty."}]
    body.pop("max_tokens", None)
    body["max_completion_tokens"] = limit
    widget(at.text_area, "request_json").set_value(json.dumps(body)).run()
    at.button(key="run").click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_the_playground_reports_a_server_that_ignored_the_limit(stand_in: ScriptedServer):
    from tests.apptest_support import whole_app

    stand_in.default = Reply.stream_text([f" {n}" for n in range(1, 13)])  # 12 tokens, whatever the limit
    at = whole_app()
    at.run()
    _playground_run(at, 4)
    sent = [r.json for r in stand_in.requests if r.path.endswith("/chat/completions")][-1]
    assert sent["max_tokens"] == 4 and "max_completion_tokens" not in sent  # the sandbox's field
    warnings = [str(w.value) for w in at.warning if "ignored the token limit" in str(w.value)]
    assert warnings == ["**The server ignored the token limit**: the request asked for at most 4 tokens in "
                        "`max_tokens`, and it generated 12. It may read `max_completion_tokens` instead: set the "
                        "endpoint's token_limit_field to `max_completion_tokens` (in its [endpoints] table, or in "
                        "the Custom endpoint's form)."]
    _playground_run(at, 12)  # a server that kept to the limit: no warning
    assert not [w for w in at.warning if "ignored the token limit" in str(w.value)]


def _run(at, text: str = "Count to three.") -> None:
    from tests.apptest_support import widget

    keys = [w.key for w in at.text_area if w.key and w.key.startswith("msg_text_")]
    widget(at.text_area, keys[-1]).set_value(text).run()
    at.button(key="run").click().run()
    assert not at.exception, [e.value for e in at.exception]


def _limit_boxes(at) -> dict[str, int | None]:
    return {w.key.split("@")[0]: w.value for w in at.number_input
            if w.key and w.key.split("@")[0] in ("p_max_tokens", "p_max_completion_tokens")}


def _snippets(at) -> list[str]:
    """Get code's three snippets (built while their tab is open)."""
    at.session_state["playground_tabs"] = "Get code"
    at.run()
    snippets = [c.value for c in at.code if "http://127.0.0.1" in c.value]
    assert len(snippets) == 3, snippets
    return snippets


def test_the_form_json_view_and_get_code_show_the_field_sent(stand_in: ScriptedServer, monkeypatch):
    """SGP (here the scripted server, reached through SGP_BASE_URL) receives max_completion_tokens;
    the sandbox, after a switch in the sidebar, max_tokens: the form's one limit box, its note,
    the JSON view and Get code follow the endpoint."""
    from tests.apptest_support import open_groups, whole_app, widget

    monkeypatch.setenv("SGP_API_KEY", "sgp-test-key")
    monkeypatch.setenv("SGP_BASE_URL", stand_in.base_url)
    stand_in.default = Reply.stream_text(["One", " two", " three"])
    at = whole_app()
    open_groups(at)
    at.run()
    assert at.session_state["endpoint_name"] == "SGP"
    assert _limit_boxes(at) == {"p_max_completion_tokens": 256}
    notes = [c.value for c in at.caption if "token limit is sent as" in c.value]
    assert notes == ["The token limit is sent as `max_completion_tokens`: the field SGP reads (its "
                     "token_limit_field)."]
    assert json.loads(widget(at.text_area, "request_json").value)["max_completion_tokens"] == 256
    for snippet in _snippets(at):
        assert ('"max_completion_tokens": 256' in snippet or "max_completion_tokens=256" in snippet), snippet
        assert "max_tokens" not in snippet
    _run(at)
    sent = [r for r in stand_in.requests if r.path == "/v4/beta/chat/completions"][-1].json
    assert sent["max_completion_tokens"] == 256 and "max_tokens" not in sent
    assert sent == json.loads(widget(at.text_area, "request_json").value)  # the JSON view is the body sent

    widget(at.selectbox, "_sb_endpoint").set_value("Local sandbox").run()
    assert _limit_boxes(at) == {"p_max_tokens": 256}
    assert [c.value for c in at.caption if "token limit is sent as" in c.value] == [
        "The token limit is sent as `max_tokens`: the field Local sandbox reads (its token_limit_field)."]
    body = json.loads(widget(at.text_area, "request_json").value)
    assert body["max_tokens"] == 256 and "max_completion_tokens" not in body
    for snippet in _snippets(at):
        assert ('"max_tokens": 256' in snippet or "max_tokens=256" in snippet), snippet
        assert "max_completion_tokens" not in snippet
    # a request that sets both (typed in the JSON view) shows and sends both, as typed
    widget(at.text_area, "request_json").set_value(json.dumps(dict(body, max_completion_tokens=50))).run()
    assert _limit_boxes(at) == {"p_max_tokens": 256, "p_max_completion_tokens": 50}


def test_a_custom_server_gets_max_tokens_unless_told_otherwise(stand_in: ScriptedServer):
    """The Custom endpoint's form: the usual field for its URL (max_tokens for anything but
    api.openai.com), or the one chosen; the scripted server receives the field shown."""
    from tests.apptest_support import whole_app, widget

    stand_in.default = Reply.stream_text(["One"])
    at = whole_app()
    at.run()
    widget(at.selectbox, "_sb_endpoint").set_value("Custom (OpenAI-compatible)").run()
    widget(at.text_input, "custom_base_url").set_value(f"{stand_in.base_url}/v1").run()
    choice = at.selectbox(key="custom_token_limit_field")
    assert choice.value is None and choice.format_func(None) == "max_tokens (default)"
    assert [c.value for c in at.sidebar.caption if "token limit is sent as" in c.value] == [
        "The token limit is sent as `max_tokens`."]
    _run(at)
    sent = [r for r in stand_in.requests if r.path == "/v1/chat/completions"][-1].json
    assert sent["max_tokens"] == 256 and "max_completion_tokens" not in sent

    at.selectbox(key="custom_token_limit_field").set_value("max_completion_tokens").run()
    _run(at, "Again.")
    sent = [r for r in stand_in.requests if r.path == "/v1/chat/completions"][-1].json
    assert sent["max_completion_tokens"] == 256 and "max_tokens" not in sent

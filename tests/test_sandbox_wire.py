"""The sandbox's wire, byte for byte where it matters: how streams end on each path, error
bodies in FastAPI's shape, model lists, and the parameters the model honours."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from playground.client.endpoint import LOCAL_MODEL
from tests.support import health, wait_for

pytestmark = pytest.mark.sandbox

HELLO = [{"role": "user", "content": "Say hello."}]
NO_END = {"2": -100}
MAX_JSON_TOKENS = 96  # room for the grammar to close the object: at 24 a probe was cut ("length")


def body(**fields) -> dict:
    return {"model": LOCAL_MODEL, "messages": HELLO, "max_tokens": 6, **fields}


def post(sandbox, path: str, payload, **kwargs) -> httpx.Response:
    return httpx.post(sandbox.base_url + path, json=payload, timeout=60, **kwargs)


def sse_lines(response: httpx.Response) -> list[str]:
    return [line for line in response.text.split("\n") if line]


def test_sgp_paths_end_streams_by_closing_and_v1_with_done(sandbox):
    for path in ("/v4/beta/chat/completions", "/v5/chat/completions"):
        response = post(sandbox, path, body(stream=True))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = sse_lines(response)
        assert "[DONE]" not in response.text
        assert all(line.startswith("data: {") for line in lines)
        for line in lines:
            json.loads(line[6:])  # SGP's SDK parses every event as JSON
    response = post(sandbox, "/v1/chat/completions", body(stream=True))
    assert response.text.endswith("data: [DONE]\n\n")
    assert response.text.count("[DONE]") == 1


def test_include_usage_adds_a_last_chunk_without_choices(sandbox):
    lines = sse_lines(post(sandbox, "/v4/beta/chat/completions",
                           body(stream=True, stream_options={"include_usage": True}, logit_bias=NO_END)))
    chunks = [json.loads(line[6:]) for line in lines]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 6
    assert all("usage" not in chunk for chunk in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


def test_validation_errors_are_fastapi_422(sandbox):
    cases = {
        "temperature": body(temperature=2.5),
        "top_p": body(top_p=1.5),
        "n": body(n=9),
        "top_logprobs": body(logprobs=True, top_logprobs=21),
        "max_tokens": body(max_tokens=0),
        "stop": body(stop=["a", "b", "c", "d", "e"]),
    }
    for field, payload in cases.items():
        response = post(sandbox, "/v4/beta/chat/completions", payload)
        assert response.status_code == 422, (field, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, list) and detail[0]["loc"][:2] == ["body", field], (field, detail)
        assert detail[0]["msg"] and detail[0]["type"]
    bad_json = httpx.post(sandbox.base_url + "/v4/beta/chat/completions", content=b"{nope", timeout=10,
                          headers={"content-type": "application/json"})
    assert bad_json.status_code == 422 and bad_json.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("field,value", [
    ("tool_choice", "required"),
    ("functions", [{"name": "f"}]),
    ("audio", {"voice": "alloy", "format": "wav"}),
    ("modalities", ["text", "audio"]),
    ("prediction", {"type": "content", "content": "x"}),
    ("reasoning_effort", "low"),
    ("store", True),
    ("chat_template_kwargs", {"enable_thinking": False}),
])
def test_fields_the_model_cannot_honour_are_400_naming_them(sandbox, field, value):
    response = post(sandbox, "/v4/beta/chat/completions", body(**{field: value}))
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")


def test_messages_the_model_cannot_read_are_400(sandbox):
    image = [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                          {"type": "image_url", "image_url": {"url": "data:,"}}]}]
    response = post(sandbox, "/v4/beta/chat/completions", body(messages=image))
    assert response.status_code == 400 and response.json()["detail"].startswith("messages[0].content[1].type")
    tool = [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "c1", "content": "42"}]
    response = post(sandbox, "/v4/beta/chat/completions", body(messages=tool))
    assert response.status_code == 400 and response.json()["detail"].startswith("messages[1].tool_call_id")


def test_text_parts_developer_and_assistant_turns_are_read(sandbox):
    messages = [
        {"role": "developer", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye."},
    ]
    response = post(sandbox, "/v4/beta/chat/completions", body(messages=messages))
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["prompt_tokens"] > 20


def test_unknown_model_404_and_long_prompt_400(sandbox):
    response = post(sandbox, "/v4/beta/chat/completions", body(model="meta/llama-3"))
    assert response.status_code == 404
    assert "meta/llama-3" in response.json()["detail"] and LOCAL_MODEL in response.json()["detail"]
    response = post(sandbox, "/v4/beta/chat/completions", body(messages=[{"role": "user", "content": "word " * 3000}]))
    assert response.status_code == 400
    detail = response.json()["detail"]
    numbers = [int(word) for word in detail.replace(",", " ").split() if word.isdigit()]
    assert 2048 in numbers and any(n > 2048 for n in numbers), detail


def test_model_lists_in_both_shapes(sandbox):
    sgp = httpx.get(sandbox.base_url + "/v5/chat/completions/models").json()
    assert sgp["items"] == [{"model_name": "smollm2-135m-instruct", "model_vendor": "local",
                             "model_type": "chat_completion", "model_availability": "available"}]
    openai_style = httpx.get(sandbox.base_url + "/v1/models").json()
    assert openai_style["object"] == "list" and [m["id"] for m in openai_style["data"]] == [LOCAL_MODEL]


def test_logit_bias_steers_the_draw(sandbox):
    forced = post(sandbox, "/v4/beta/chat/completions", body(logit_bias={"1000": 100}, logprobs=True)).json()
    tokens = [entry["token"] for entry in forced["choices"][0]["logprobs"]["content"]]
    assert len(tokens) == 6 and len(set(tokens)) == 1
    assert forced["choices"][0]["message"]["content"] == tokens[0] * 6


def test_penalties_change_a_greedy_reply(sandbox):
    plain = post(sandbox, "/v4/beta/chat/completions", body(max_tokens=24, temperature=0, logit_bias=NO_END)).json()
    penalised = post(sandbox, "/v4/beta/chat/completions",
                     body(max_tokens=24, temperature=0, logit_bias=NO_END, frequency_penalty=2.0,
                          presence_penalty=2.0)).json()
    assert plain["choices"][0]["message"]["content"] != penalised["choices"][0]["message"]["content"]


def test_top_p_near_zero_is_greedy(sandbox):
    greedy = post(sandbox, "/v4/beta/chat/completions", body(max_tokens=6, temperature=0)).json()
    narrow = post(sandbox, "/v4/beta/chat/completions", body(max_tokens=6, temperature=1.5, top_p=0.0001,
                                                             seed=8)).json()
    assert narrow["choices"][0]["message"]["content"] == greedy["choices"][0]["message"]["content"]


def test_json_object_response_format(sandbox):
    reply = post(sandbox, "/v4/beta/chat/completions", body(
        max_tokens=MAX_JSON_TOKENS, temperature=0, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Give me a JSON object with a name."}])).json()
    text = reply["choices"][0]["message"]["content"]
    assert reply["choices"][0]["finish_reason"] == "stop", text  # the grammar closed the object itself
    assert isinstance(json.loads(text), dict)


def test_bad_json_schema_is_400(sandbox):
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "$ref": "#/nowhere"}}}
    response = post(sandbox, "/v4/beta/chat/completions", body(response_format=fmt))
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("response_format.json_schema.schema")


def test_plain_request_abandoned_by_its_client_frees_the_model(sandbox):
    payload = json.dumps(body(max_tokens=1500, logit_bias=NO_END)).encode()
    before = health(sandbox)["tokens_generated"]
    with socket.create_connection(("127.0.0.1", sandbox.port)) as sock:
        sock.sendall(b"POST /v4/beta/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
        wait_for(lambda: health(sandbox)["busy"], 30, "the request to start")
    wait_for(lambda: not health(sandbox)["busy"], 60, "the model to be free again")
    # Counted in tokens, not seconds: dropped before its next step, the request made a handful of
    # the 1,500 tokens it asked for (a client-side stopwatch would measure this machine's load).
    assert health(sandbox)["tokens_generated"] - before < 100

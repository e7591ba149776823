"""The Playground page through Streamlit's AppTest: form and JSON as two views of one request,
errors that name the line or the field, and runs against real loopback servers (a scripted
server for exact replies, the sandbox for a real model).

The app's "Local sandbox" is pointed at the server under test with PLAYGROUND_SANDBOX_PORT:
the launcher reuses whatever answers /healthz there, as it does for a sandbox already running.
"""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.client.schema import ChatRequest
from playground.codegen import curl_snippet, httpx_snippet, openai_snippet
from playground.presets import Preset, PresetStore, Variable, read_variables
from playground.presets.sharelink import decode_token
from playground.runs.store import RunStore
from playground.settings import configured_endpoints
from tests.apptest_support import open_app, sandbox_stand_in, whole_app, widget
from tests.scripted_server import Reply, ScriptedServer, make_chunk
from tests.support import chat_requests, wait_for

MODEL = "scripted/scripted-model"


@pytest.fixture
def server(monkeypatch, tmp_path):
    with sandbox_stand_in(tmp_path, monkeypatch, models=[("scripted-model", "scripted")]) as scripted:
        scripted.default = Reply.stream_text(["Hello", ",", " world"])
        yield scripted


def new_app() -> AppTest:
    """The whole app, sidebar included, as `streamlit run app.py` runs it (apptest_support)."""
    return whole_app()


def request_of(at: AppTest) -> ChatRequest:
    return at.session_state["request"]


def message_keys(at: AppTest) -> list[str]:
    return [w.key for w in at.text_area if w.key and w.key.startswith("msg_text_")]


def type_user_message(at: AppTest, text: str) -> None:
    widget(at.text_area, message_keys(at)[-1]).set_value(text).run()


def json_body(at: AppTest) -> dict:
    return json.loads(widget(at.text_area, "request_json").value)


def shown(elements) -> list[str]:
    """The texts of these elements as the reader sees them: markdown escapes removed."""
    return [re.sub(r"\\(.)", r"\1", str(e.value)) for e in elements]


def errors_text(at: AppTest) -> str:
    """Every error on the page, markdown escapes removed."""
    return "\n".join(shown(at.error))


KEPT = "\n\nThe last valid request is kept; Run is disabled until this is fixed."


# --- form and JSON --------------------------------------------------------------------------

UNKNOWN = {"min_p": 0.05, "chat_template_kwargs": {"enable_thinking": False}}


def fill_every_field(at: AppTest) -> None:
    """Set every seed field through its form widget (and a few messages)."""
    widget(at.text_area, "msg_system").set_value("Be brief.").run()
    type_user_message(at, "Hi")
    at.button(key="msg_add").click().run()
    widget(at.text_area, message_keys(at)[-1]).set_value("Hello! How can I help?").run()
    numbers = {"p_temperature": 0.8, "p_top_p": 0.9, "p_top_k": 40, "p_seed": 7, "p_n": 2,
               "p_max_tokens": 120, "p_frequency_penalty": 0.5,
               "p_presence_penalty": -0.5}
    for key, value in numbers.items():
        widget(at.number_input, key).set_value(value).run()
    widget(at.text_area, "p_stop").set_value("END\n\\n\\n").run()
    widget(at.text_area, "p_logit_bias").set_value('{"42": -100}').run()
    widget(at.selectbox, "p_logprobs").set_value(True).run()
    widget(at.number_input, "p_top_logprobs").set_value(5).run()
    widget(at.number_input, "p_prompt_logprobs").set_value(2).run()
    widget(at.selectbox, "p_response_format_type").set_value("json_schema").run()
    widget(at.text_input, "p_response_format_name").set_value("person").run()
    widget(at.text_area, "p_response_format_schema").set_value('{"type": "object"}').run()
    widget(at.selectbox, "p_response_format_strict").set_value(True).run()
    widget(at.multiselect, "p_modalities").set_value(["text"]).run()
    widget(at.text_input, "p_audio_voice").set_value("alloy").run()
    widget(at.selectbox, "p_audio_format").set_value("wav").run()
    widget(at.text_area, "p_prediction").set_value("predicted text").run()
    widget(at.text_area, "p_tools_import").set_value(  # the tools editor's import box
        '[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]').run()
    at.button(key="p_tools_import_go").click().run()
    widget(at.selectbox, "p_tool_choice").set_value("function").run()
    widget(at.text_input, "p_tool_choice_name").set_value("lookup").run()
    widget(at.selectbox, "p_parallel_tool_calls").set_value(False).run()
    widget(at.text_area, "p_functions").set_value('[{"name": "legacy"}]').run()
    widget(at.selectbox, "p_function_call").set_value("auto").run()
    widget(at.selectbox, "p_reasoning_effort").set_value("low").run()
    widget(at.text_area, "p_metadata").set_value('{"team": "eval"}').run()
    widget(at.selectbox, "p_store").set_value(True).run()
    widget(at.selectbox, "p_stream").set_value(True).run()
    widget(at.selectbox, "p_stream_include_usage").set_value(False).run()
    widget(at.text_area, "p_extra").set_value(json.dumps(UNKNOWN)).run()


EXPECTED = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
    ],
    "model": MODEL,
    "temperature": 0.8, "top_p": 0.9, "top_k": 40, "seed": 7, "n": 2,
    "max_tokens": 120, "stop": ["END", "\n\n"],  # (the sandbox's token limit field: test_token_limit)
    "frequency_penalty": 0.5, "presence_penalty": -0.5, "logit_bias": {"42": -100},
    "logprobs": True, "top_logprobs": 5, "prompt_logprobs": 2,
    "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": {"type": "object"},
                                                               "strict": True}},
    "modalities": ["text"], "audio": {"voice": "alloy", "format": "wav"},
    "prediction": {"type": "content", "content": "predicted text"},
    "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
    "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    "parallel_tool_calls": False, "functions": [{"name": "legacy"}], "function_call": "auto",
    "reasoning_effort": "low", "metadata": {"team": "eval"}, "store": True, "stream": True,
    "stream_options": {"include_usage": False},
    **UNKNOWN,
}


def test_form_to_json_to_form_keeps_every_field(server):
    at = open_app()
    fill_every_field(at)
    assert not at.exception
    assert errors_text(at) == ""
    # form -> JSON: every field, the unknown ones included, exactly
    assert json_body(at) == EXPECTED
    assert request_of(at).to_wire() == EXPECTED

    # JSON -> form: edit the JSON, every widget follows, unknown fields are kept
    edited = dict(EXPECTED, temperature=1.1, seed=99, stop="###", repetition_penalty=1.2)
    edited["messages"] = [*EXPECTED["messages"], {"role": "user", "content": "And again?"}]
    widget(at.text_area, "request_json").set_value(json.dumps(edited)).run()
    assert errors_text(at) == ""
    assert request_of(at).to_wire() == edited
    assert widget(at.number_input, "p_temperature").value == pytest.approx(1.1)
    assert widget(at.number_input, "p_seed").value == 99
    assert widget(at.text_area, "p_stop").value == "###"
    assert widget(at.number_input, "p_top_k").value == 40
    assert widget(at.selectbox, "p_response_format_type").value == "json_schema"
    assert json.loads(widget(at.text_area, "p_response_format_schema").value) == {"type": "object"}
    assert widget(at.text_input, "p_tool_choice_name").value == "lookup"
    assert json.loads(widget(at.text_area, "p_extra").value) == {**UNKNOWN, "repetition_penalty": 1.2}
    assert widget(at.text_area, "msg_system").value == "Be brief."
    assert [widget(at.text_area, k).value for k in message_keys(at)] == ["Hi", "Hello! How can I help?", "And again?"]

    # form again: one widget changed, everything else (unknown fields too) untouched
    widget(at.number_input, "p_top_p").set_value(0.5).run()
    assert json_body(at) == dict(edited, top_p=0.5)


def test_a_new_request_starts_at_temperature_0_7(server):
    at = open_app()
    assert widget(at.number_input, "p_temperature").value == pytest.approx(0.7)
    assert widget(at.number_input, "p_max_tokens").value == 256  # the sandbox reads max_tokens (issue 22)
    type_user_message(at, "Hi")
    at.button(key="run").click().run()
    sent = chat_requests(server)[-1].json
    assert sent["temperature"] == 0.7 and sent["max_tokens"] == 256


def test_unset_fields_are_not_sent(server):
    at = open_app()
    type_user_message(at, "Hi")
    widget(at.number_input, "p_temperature").set_value(0.3).run()
    assert json_body(at)["temperature"] == 0.3
    body = json_body(at)
    del body["temperature"]
    widget(at.text_area, "request_json").set_value(json.dumps(body)).run()
    assert widget(at.number_input, "p_temperature").value is None  # shown as "not set"
    at.button(key="run").click().run()
    sent = chat_requests(server)[-1].json
    # (logprobs: the default request on the local sandbox asks for them)
    assert set(sent) == {"messages", "model", "max_tokens", "stream", "stream_options", "logprobs",
                         "top_logprobs"}


def test_bad_json_shows_line_and_keeps_last_valid_request(server):
    at = open_app()
    type_user_message(at, "Hi")
    before = request_of(at)
    widget(at.text_area, "request_json").set_value('{\n  "model": "x",\n  "messages": [\n}').run()
    assert errors_text(at) == "Invalid JSON at line 4, column 1: Expecting value" + KEPT
    assert request_of(at) == before
    assert at.button(key="run").disabled
    # the form still shows the last valid request
    assert widget(at.text_area, message_keys(at)[-1]).value == "Hi"
    # fixing it enables Run again
    widget(at.text_area, "request_json").set_value(json.dumps(before.to_wire())).run()
    assert errors_text(at) == ""
    assert not at.button(key="run").disabled


def test_out_of_range_value_names_the_field(server):
    at = open_app()
    type_user_message(at, "Hi")
    widget(at.number_input, "p_temperature").set_value(0.5).run()
    body = json_body(at)
    widget(at.text_area, "request_json").set_value(json.dumps(dict(body, temperature=3))).run()
    assert errors_text(at) == "temperature must be between 0 and 2, got 3.0" + KEPT
    assert request_of(at).temperature == 0.5
    assert widget(at.number_input, "p_temperature").value == 0.5
    assert at.button(key="run").disabled

    widget(at.text_area, "request_json").set_value(json.dumps(body)).run()
    widget(at.text_area, "p_logit_bias").set_value('{"42": 500}').run()
    assert errors_text(at) == "logit_bias[42] must be between -100 and 100, got 500"
    assert request_of(at).logit_bias is None
    assert at.button(key="run").disabled


# Every numeric field of the form, an out-of-range value for it, and the error shown under it.
OUT_OF_RANGE = [
    ("temperature", 5.0, "temperature must be between 0 and 2, got 5"),
    ("top_p", 1.5, "top_p must be between 0 and 1, got 1.5"),
    ("top_k", -2, "top_k must be at least -1, got -2"),
    ("n", 0, "n must be between 1 and 128, got 0"),
    ("n", 129, "n must be between 1 and 128, got 129"),
    # (no max_completion_tokens box on the sandbox, whose token limit field is max_tokens: the
    # SGP test in test_token_limit.py has that box)
    ("max_tokens", -5, "max_tokens must be at least 1, got -5"),
    ("frequency_penalty", 2.5, "frequency_penalty must be between -2 and 2, got 2.5"),
    ("presence_penalty", -3.0, "presence_penalty must be between -2 and 2, got -3"),
    ("top_logprobs", 21, "top_logprobs must be between 0 and 20, got 21"),
    ("prompt_logprobs", 21, "prompt_logprobs must be between 0 and 20, got 21"),
]


@pytest.mark.parametrize("name, bad, message", OUT_OF_RANGE, ids=[f"{n}={v}" for n, v, _ in OUT_OF_RANGE])
def test_out_of_range_form_value_blocks_run_until_fixed(server, name, bad, message):
    """What the form shows is what is sent: the widgets have no min/max (the browser would keep
    the last valid value and send it), so the value typed is refused under its field and Run
    stays disabled until it is fixed; the fixed value is the one sent."""
    at = open_app()
    type_user_message(at, "Hi")
    key = f"p_{name}"
    before = getattr(request_of(at), name)
    widget(at.number_input, key).set_value(bad).run()
    assert not at.exception, [e.value for e in at.exception]
    assert message in errors_text(at)
    assert widget(at.number_input, key).value == bad  # the field still shows what was typed
    assert getattr(request_of(at), name) == before
    assert at.button(key="run").disabled
    assert f"Fix {name.replace('_', ' ')} first: {message}" in "\n".join(shown(at.caption) + shown(at.warning)
                                                                      + shown(at.markdown) + shown(at.error))

    good = {"temperature": 0.9, "top_p": 0.5, "top_k": 5, "n": 1, "max_completion_tokens": 20, "max_tokens": 20,
            "frequency_penalty": 0.5, "presence_penalty": -0.5, "top_logprobs": 3, "prompt_logprobs": 1}[name]
    widget(at.number_input, key).set_value(good).run()
    assert message not in errors_text(at)
    assert not at.button(key="run").disabled
    at.button(key="run").click().run()
    sent = chat_requests(server)[-1].json
    assert sent[name] == good
    if name == "top_logprobs":
        assert sent["logprobs"] is True


def test_message_boxes_keep_their_identity_when_they_renumber(server):
    """The first system prompt renumbers the boxes ("Message 1" becomes "Message 2"): the
    user's box must stay the same widget (same id), or text typed in it that moment is lost."""
    at = open_app()
    key = message_keys(at)[-1]
    before = widget(at.text_area, key)
    widget(at.text_area, "msg_system").set_value("Be brief.").run()
    after = widget(at.text_area, key)
    assert after.id == before.id and after.label == before.label
    widget(at.text_area, "msg_system").set_value("").run()
    assert widget(at.text_area, key).id == before.id


def test_request_replaced_from_outside_redraws_the_form_and_the_sidebar(server, tmp_path):
    """A preset loaded (as a share link or History's Load into Playground do: state.load) replaces
    the request: the form, the JSON view and the sidebar's model show it on that very run."""
    at = open_app()
    type_user_message(at, "old text")
    other = Preset.new("Other model", ChatRequest.from_wire({
        "model": "vendor/other-model", "temperature": 0.4, "messages": [
            {"role": "system", "content": "Be kind."}, {"role": "user", "content": "new text"}]}))
    PresetStore(tmp_path / "presets").save(other)
    at.run()  # the bar lists the file
    widget(at.selectbox, "preset_load_name").select(other.name)
    at.button(key="preset_load").click().run()  # one run: no second one to bring the sidebar along
    assert not at.exception
    assert widget(at.number_input, "p_temperature").value == pytest.approx(0.4)
    assert widget(at.text_area, "msg_system").value == "Be kind."
    assert [widget(at.text_area, k).value for k in message_keys(at)] == ["new text"]
    assert json_body(at)["model"] == "vendor/other-model"
    assert at.session_state["model"] == "vendor/other-model"
    assert widget(at.selectbox, "_sb_model").value == "vendor/other-model"


def test_a_loaded_preset_does_not_wear_the_last_answer(server, tmp_path):
    """The answer under Run after a preset is loaded is the previous request's: folded and
    labelled so, until the preset's own run replaces it."""
    at = open_app()
    type_user_message(at, "Say hello")
    at.button(key="run").click().run()
    assert at.session_state["last_run"].text == "Hello, world"
    assert [e.label for e in at.expander if "Previous answer" in e.label] == []
    PresetStore(tmp_path / "presets").save(Preset.new("Greeter", ChatRequest.from_wire({
        "model": MODEL, "messages": [{"role": "user", "content": "Greet me"}]})))
    at.run()
    widget(at.selectbox, "preset_load_name").select("Greeter")
    at.button(key="preset_load").click().run()
    assert [e.label for e in at.expander if "Previous answer" in e.label] == [
        "Previous answer, from the request before “Greeter” was loaded"]
    at.button(key="run").click().run()
    assert chat_requests(server)[-1].json["messages"] == [{"role": "user", "content": "Greet me"}]
    assert [e.label for e in at.expander if "Previous answer" in e.label] == []


def test_a_preset_for_an_endpoint_not_configured_here_runs_on_this_one(server, tmp_path, monkeypatch):
    """An SGP preset without an SGP key: loaded with the current endpoint's model (not a 404 from
    the sandbox), and the page says so."""
    monkeypatch.delenv("SGP_API_KEY", raising=False)
    at = open_app()
    PresetStore(tmp_path / "presets").save(Preset.new("Made for SGP", ChatRequest.from_wire({
        "model": "openai/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}),
        endpoint_kind="sgp"))
    at.run()
    widget(at.selectbox, "preset_load_name").select("Made for SGP")
    at.button(key="preset_load").click().run()
    assert not at.exception
    assert json_body(at)["model"] == MODEL and at.session_state["model"] == MODEL
    warning = " ".join(shown(at.warning))
    assert "“Made for SGP” was made for the Scale GenAI Platform (model openai/gpt-4o-mini), and none is " \
           "configured here" in warning.replace("`", "")
    at.button(key="run").click().run()
    assert chat_requests(server)[-1].json["model"] == MODEL
    assert at.session_state["last_run"].text == "Hello, world"


# --- messages ---------------------------------------------------------------------------------


def test_messages_editor_add_move_role_delete(server):
    at = open_app()
    type_user_message(at, "first")
    at.button(key="msg_add").click().run()  # an assistant turn: few-shot
    widget(at.text_area, message_keys(at)[-1]).set_value("an example answer").run()
    at.button(key="msg_add").click().run()
    widget(at.text_area, message_keys(at)[-1]).set_value("second").run()
    roles = lambda: [(m.role, m.content) for m in request_of(at).messages]  # noqa: E731
    assert roles() == [("user", "first"), ("assistant", "an example answer"), ("user", "second")]

    last = message_keys(at)[-1].removeprefix("msg_text_")
    at.button(key=f"msg_up_{last}").click().run()
    assert roles() == [("user", "first"), ("user", "second"), ("assistant", "an example answer")]
    assert [widget(at.text_area, k).value for k in message_keys(at)] == ["first", "second", "an example answer"]

    widget(at.selectbox, f"msg_role_{last}").set_value("developer").run()
    assert roles()[1] == ("developer", "second")

    first = message_keys(at)[0].removeprefix("msg_text_")
    at.button(key=f"msg_del_{first}").click().run()
    assert roles() == [("developer", "second"), ("assistant", "an example answer")]

    widget(at.text_area, "msg_system").set_value("You are terse.").run()
    assert roles()[0] == ("system", "You are terse.")
    assert json_body(at)["messages"][0] == {"role": "system", "content": "You are terse."}
    widget(at.text_area, "msg_system").set_value("").run()
    assert roles()[0] == ("developer", "second")


def test_content_parts_and_tool_calls_survive_form_edits(server):
    at = open_app()
    body = json_body(at)
    parts = [{"type": "text", "text": "What is in this picture?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    body["messages"] = [{"role": "user", "content": parts},
                        {"role": "assistant", "tool_calls": [call]},
                        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
                        {"role": "user", "content": "Thanks", "name": "ann"}]
    widget(at.text_area, "request_json").set_value(json.dumps(body)).run()
    assert errors_text(at) == ""
    keys = message_keys(at)
    assert widget(at.text_area, keys[0]).disabled  # two parts: edited in the JSON view only
    notes = [text for text in shown(at.caption) if text.endswith("edit them in the Playground's JSON view.")]
    assert notes == ["2 content parts: edit them in the Playground's JSON view."]
    calls = widget(at.text_area, "msg_calls_" + keys[1].removeprefix("msg_text_"))  # the calls, as editable JSON
    assert json.loads(calls.value) == [call]
    assert widget(at.text_input, "msg_tool_id_" + keys[2].removeprefix("msg_text_")).value == "call_1"
    # a form edit elsewhere leaves all of it as it was
    widget(at.text_area, keys[3]).set_value("Thanks a lot").run()
    widget(at.number_input, "p_seed").set_value(3).run()
    expected = [*body["messages"][:3], {"role": "user", "content": "Thanks a lot", "name": "ann"}]
    assert json_body(at)["messages"] == expected


# --- running ----------------------------------------------------------------------------------


def test_run_against_scripted_server_shows_text_and_usage(server, tmp_path):
    at = open_app()
    type_user_message(at, "Say hello")
    at.button(key="run").click().run()
    assert not at.exception
    run = at.session_state["last_run"]
    assert run.text == "Hello, world" and run.error is None and not run.partial
    html = "\n".join(h.proto.body for h in at.html)
    assert "Hello, world" in html
    assert 'data-label="Prompt tokens"' in html and ">5</div>" in html
    assert 'data-label="Completion tokens"' in html and ">3</div>" in html
    assert ">stop</div>" in html
    sent = chat_requests(server)[-1]
    assert sent.path == "/v4/beta/chat/completions"
    assert sent.json["model"] == MODEL
    assert sent.json["messages"] == [{"role": "user", "content": "Say hello"}]
    # saved in the history, without any key
    stored = RunStore(tmp_path / "data" / "runs.sqlite3").list()
    assert [s.id for s in stored] == [run.id]
    # the request is still there to edit and run again
    assert widget(at.text_area, message_keys(at)[-1]).value == "Say hello"
    assert not at.button(key="run").disabled


def test_run_with_no_message_says_why_and_sends_nothing(server):
    at = open_app()
    assert not at.button(key="run").disabled  # enabled, so Ctrl+Enter in the box can commit and run
    at.button(key="run").click().run()
    assert shown(at.warning) == ["Write a user message first."]
    assert chat_requests(server) == []
    assert "last_run" not in at.session_state


def test_server_error_shows_status_and_servers_words(server, tmp_path):
    server.add(Reply.error(422, {"detail": [{"loc": ["body", "temperature"], "msg": "must be at most 2",
                                             "type": "value_error"}]}))
    at = open_app()
    type_user_message(at, "Hi")
    at.button(key="run").click().run()
    assert errors_text(at) == "**422 BadRequestError**: temperature: must be at most 2"
    assert widget(at.text_area, message_keys(at)[-1]).value == "Hi"
    stored = RunStore(tmp_path / "data" / "runs.sqlite3").list()
    assert [s.error_kind for s in stored] == ["BadRequestError"]


def _logprob_stream(tokens: list[tuple[str, float]]) -> Reply:
    events = [make_chunk("", role="assistant")]
    for token, logprob in tokens:
        top = [{"token": token, "logprob": logprob}, {"token": " other", "logprob": logprob - 2.0}]
        events.append(make_chunk(token, logprobs=[{"token": token, "logprob": logprob, "top_logprobs": top}]))
    events.append(make_chunk(finish_reason="stop"))
    events.append(make_chunk(choices=[], usage={"prompt_tokens": 4, "completion_tokens": len(tokens),
                                                "total_tokens": 4 + len(tokens)}))
    return Reply.sse(events)


def heatmaps(at) -> list[dict]:
    """The data of every token heatmap on the page (playground.ui.common.token_heatmap's component)."""
    return [json.loads(e.proto.json) for e in at.get("bidi_component")
            if e.proto.component_name == "playground_token_heatmap"]


def test_logprobs_heatmap_inspector_table_and_escaping(server):
    server.add(_logprob_stream([("<script>alert(1)</script>", -0.1), (" **bold**", -2.3), (" end", -0.01)]))
    at = open_app()
    type_user_message(at, "Hi")
    widget(at.selectbox, "p_logprobs").set_value(True).run()
    widget(at.number_input, "p_top_logprobs").set_value(2).run()
    at.button(key="run").click().run()
    assert not at.exception
    html = "\n".join(h.proto.body for h in at.html)
    assert "<script>" not in html and "&#60;script&#62;" in html  # escaped, never markup
    assert "Perplexity" in html
    assert "#1  '␣**bold**'  (10.0%)" in unescape(html)  # the Least likely stat names the least likely token
    # the heatmap gets the tokens as data (its JavaScript sets them as text): each token, its
    # probability and its alternatives; the inspector is part of it (no select box any more)
    [heatmap] = heatmaps(at)
    assert [cell[0] for cell in heatmap["cells"]] == ["<script>alert(1)</script>", " **bold**", " end"]
    assert [round(token["p"], 3) for token in heatmap["tokens"]] == [0.905, 0.1, 0.99]
    assert heatmap["tokens"][1]["a"][1][:2] == [" other", -4.3] and heatmap["threshold"] == 0.3
    assert not [s for s in at.selectbox if s.key and s.key.endswith("_inspect")]
    # every token in the table (spaces shown as ␣), with its bytes: built when asked for
    assert not at.dataframe
    at.toggle(key="last_c0_table_on").set_value(True).run()
    [tokens] = at.dataframe
    assert tokens.value["token"].tolist() == ["<script>alert(1)</script>", "␣**bold**", "␣end"]
    assert tokens.value["bytes"].tolist()[2] == "20 65 6e 64"


def test_n_choices_in_tabs(server):
    events = [make_chunk("", role="assistant", index=0), make_chunk("", role="assistant", index=1),
              make_chunk("Alpha", index=0), make_chunk("Beta", index=1),
              make_chunk(finish_reason="stop", index=0), make_chunk(finish_reason="length", index=1)]
    server.add(Reply.sse(events))
    at = open_app()
    type_user_message(at, "Hi")
    widget(at.number_input, "p_n").set_value(2).run()
    at.button(key="run").click().run()
    assert [t.label for t in at.tabs][-2:] == ["Choice 1", "Choice 2"]
    html = "\n".join(h.proto.body for h in at.html)
    assert "Alpha" in html and "Beta" in html
    assert "stop (choice 1), length (choice 2)" in unescape(html)  # which choice stopped why


# --- keeping a conversation going ------------------------------------------------------------


def buttons(at: AppTest, start: str) -> list:
    return [b for b in at.button if b.key and b.key.startswith(start)]


def conversation(at: AppTest) -> list[tuple[str, str]]:
    return [(m["role"], m.get("content") or "") for m in request_of(at).to_wire()["messages"]]


def test_add_to_conversation_then_the_next_turn_carries_the_exchange(server):
    at = open_app()
    type_user_message(at, "Say hello")
    at.button(key="run").click().run()
    at.button(key="add_to_conversation").click().run()
    assert not at.exception
    assert conversation(at) == [("user", "Say hello"), ("assistant", "Hello, world"), ("user", "")]
    assert not buttons(at, "add_to_conversation")  # it is in the conversation now
    type_user_message(at, "Once more")
    at.button(key="run").click().run()
    assert chat_requests(server)[-1].json["messages"] == [
        {"role": "user", "content": "Say hello"}, {"role": "assistant", "content": "Hello, world"},
        {"role": "user", "content": "Once more"}]


def test_regenerate_keeps_the_old_answer_one_click_away(server):
    at = open_app()
    type_user_message(at, "Say hello")
    at.button(key="run").click().run()
    at.button(key="add_to_conversation").click().run()
    server.add(Reply.stream_text(["Hi", " there"]))
    buttons(at, "msg_regen_")[0].click().run()
    assert not at.exception
    assert chat_requests(server)[-1].json["messages"] == [{"role": "user", "content": "Say hello"}]
    assert conversation(at) == [("user", "Say hello"), ("assistant", "Hi there"), ("user", "")]
    assert [widget(at.text_area, k).value for k in message_keys(at)] == ["Say hello", "Hi there", ""]
    assert "2 of 2" in [c.value for c in at.caption]
    buttons(at, "msg_prev_")[0].click().run()
    assert conversation(at) == [("user", "Say hello"), ("assistant", "Hello, world"), ("user", "")]
    assert "1 of 2" in [c.value for c in at.caption]
    # the editor's boxes show the branch, and an edit there is kept when switching back and forth
    assert [widget(at.text_area, k).value for k in message_keys(at)] == ["Say hello", "Hello, world", ""]
    widget(at.text_area, message_keys(at)[1]).set_value("Hello, world!").run()
    buttons(at, "msg_next_")[0].click().run()
    buttons(at, "msg_next_")[0].click().run()
    assert conversation(at)[1] == ("assistant", "Hello, world!")


def test_edit_and_rerun_from_an_earlier_message(server):
    at = open_app()
    type_user_message(at, "Say hello")
    at.button(key="run").click().run()
    at.button(key="add_to_conversation").click().run()
    type_user_message(at, "And now?")
    first = message_keys(at)[0]
    widget(at.text_area, first).set_value("Say goodbye")  # typed, then the button clicked at once
    server.add(Reply.stream_text(["Bye"]))
    buttons(at, "msg_rerun_")[0].click().run()
    assert chat_requests(server)[-1].json["messages"] == [{"role": "user", "content": "Say goodbye"}]
    assert conversation(at) == [("user", "Say goodbye"), ("assistant", "Bye"), ("user", "")]
    buttons(at, "msg_prev_")[0].click().run()  # the old continuation, the edit above kept
    assert conversation(at) == [("user", "Say goodbye"), ("assistant", "Hello, world"), ("user", "And now?")]


def test_a_failed_regenerate_gives_the_conversation_back(server):
    at = open_app()
    type_user_message(at, "Say hello")
    at.button(key="run").click().run()
    at.button(key="add_to_conversation").click().run()
    server.add(Reply.json(400, {"error": {"message": "context too long"}}))  # not retried
    buttons(at, "msg_regen_")[0].click().run()
    assert at.session_state["last_run"].error is not None
    assert conversation(at) == [("user", "Say hello"), ("assistant", "Hello, world"), ("user", "")]
    assert not buttons(at, "msg_prev_")  # no empty branch left behind


# --- endpoints and code ---------------------------------------------------------------------


def test_secrets_endpoint_custom_entry_and_get_code(server, monkeypatch):
    with ScriptedServer() as other:
        other.route("/v1/models", Reply.json(200, {"data": [{"id": "other-model"}]}))
        other.default = Reply.stream_text(["from", " secrets"])
        at = new_app()
        secrets = {"endpoints": {"Team vLLM": {"base_url": other.base_url + "/v1", "auth": "bearer",
                                               "api_key": "sk-team-secret-0123456789abcdef"}}}
        at.secrets["endpoints"] = secrets["endpoints"]
        at.run()
        picker = widget(at.selectbox, "_sb_endpoint")
        assert picker.options == ["Local sandbox", "Team vLLM", "Custom (OpenAI-compatible)"]
        assert picker.value == "Local sandbox"
        picker.set_value("Team vLLM").run()
        assert at.session_state["model"] == "other-model"
        type_user_message(at, "Hi")
        at.button(key="run").click().run()
        assert at.session_state["last_run"].text == "from secrets"
        assert other.requests[-1].headers["authorization"] == "Bearer sk-team-secret-0123456789abcdef"
        # Get code: the three snippets of the request just run, for the chosen endpoint
        assert not at.code  # built only while their tab is open
        at.session_state["playground_tabs"] = "Get code"
        at.run()
        [team] = configured_endpoints(secrets, {}, None)
        request = request_of(at)
        snippets = [make(team, request) for make in (curl_snippet, httpx_snippet, openai_snippet)]
        assert [c.value for c in at.code] == [text.rstrip("\n") for text in snippets]  # st.code drops the last newline
        assert "OPENAI_API_KEY" in at.code[0].value and "sk-team-secret" not in "\n".join(c.value for c in at.code)

        # the custom entry: URL and key typed in; a server that cannot list models gives free text
        widget(at.selectbox, "_sb_endpoint").set_value("Custom (OpenAI-compatible)").run()
        widget(at.text_input, "custom_base_url").set_value("http://127.0.0.1:9/v1").run()
        assert widget(at.text_input, "_sb_model").value == "other-model"  # free text, holding the last model
        failures = [text for text in shown(at.caption) if text.startswith("Could not list models")]
        assert len(failures) == 1 and re.fullmatch(
            r"Could not list models: could not reach http://127\.0\.0\.1:9/v1/models: .+\. Type a model id\.",
            failures[0]), failures


# --- variables ----------------------------------------------------------------------------------

TEMPLATE = Preset.new("Explain for an audience", ChatRequest.from_wire({
    "model": MODEL, "max_completion_tokens": 40, "stream": True, "messages": [
        {"role": "system", "content": "Answer in a {{tone}} tone."},
        {"role": "user", "content": "Explain {{topic}} to {{audience}}."}]}), variables=[
    Variable(name="tone", default="cheerful"), Variable(name="topic", description="What to explain"),
    Variable(name="audience", default="a 10 year old")])


def load_template(at: AppTest, tmp_path: Path) -> None:
    """Save TEMPLATE to the presets folder and load it with the Load preset bar."""
    PresetStore(tmp_path / "presets").save(TEMPLATE, overwrite=True)
    at.run()  # the bar lists the file
    widget(at.selectbox, "preset_load_name").select(TEMPLATE.name)
    at.button(key="preset_load").click().run()
    assert not at.exception, [e.value for e in at.exception]


def variable(at: AppTest, name: str):
    return widget(at.text_area, f"variable_{name}")


def editor_texts(at: AppTest) -> list[str]:
    return [widget(at.text_area, "msg_system").value, *(widget(at.text_area, k).value for k in message_keys(at))]


def run_note(at: AppTest) -> str:
    return "\n".join(shown(at.caption))


def test_a_preset_keeps_its_placeholders_and_run_sends_the_values(server, tmp_path):
    at = open_app()
    load_template(at, tmp_path)
    # the editor and the JSON view keep the template; the panel holds the values, defaults prefilled
    assert editor_texts(at) == ["Answer in a {{tone}} tone.", "Explain {{topic}} to {{audience}}."]
    assert json_body(at)["messages"] == TEMPLATE.request.to_wire()["messages"]
    assert [variable(at, n).value for n in ("tone", "topic", "audience")] == ["cheerful", "", "a 10 year old"]
    assert [variable(at, n).label for n in ("tone", "topic", "audience")] == ["tone", "topic (required)", "audience"]
    # topic has no default: Run waits for it, saying so
    assert at.button(key="run").disabled
    assert "Fill in a value for {{topic}} before sending" in run_note(at)

    variable(at, "topic").input("tides").run()
    variable(at, "tone").input("grumpy").run()
    assert not at.button(key="run").disabled
    at.button(key="run").click().run()
    assert not at.exception
    sent = chat_requests(server)[-1].json["messages"]
    assert sent == [{"role": "system", "content": "Answer in a grumpy tone."},
                    {"role": "user", "content": "Explain tides to a 10 year old."}]
    # the Run records what was sent and the preset it came from; the values can be read back
    run = at.session_state["last_run"]
    assert run.preset == TEMPLATE.name and run.request.to_wire()["messages"] == sent
    stored = RunStore(tmp_path / "data" / "runs.sqlite3").list()
    assert [(s.id, s.preset) for s in stored] == [(run.id, TEMPLATE.name)]
    assert read_variables(TEMPLATE.request, run.request) == {"tone": "grumpy", "topic": "tides",
                                                            "audience": "a 10 year old"}
    # the working request is still the template, ready for another set of values
    assert editor_texts(at) == ["Answer in a {{tone}} tone.", "Explain {{topic}} to {{audience}}."]
    assert request_of(at).to_wire()["messages"] == TEMPLATE.request.to_wire()["messages"]
    variable(at, "audience").input("a sailor").run()
    at.button(key="run").click().run()
    assert chat_requests(server)[-1].json["messages"][1]["content"] == "Explain tides to a sailor."


def test_a_required_value_cleared_disables_run_and_sends_nothing(server, tmp_path):
    at = open_app()
    load_template(at, tmp_path)
    variable(at, "topic").input("tides").run()
    assert not at.button(key="run").disabled
    # the value cleared and Run clicked in one go: the click left before the page could disable Run
    variable(at, "topic").input("")
    at.button(key="run").click().run()
    assert at.button(key="run").disabled
    assert "Fill in a value for {{topic}} before sending" in run_note(at)
    assert chat_requests(server) == [] and "last_run" not in at.session_state
    # an empty field of a variable with a default sends the default
    variable(at, "topic").input("tides").run()
    variable(at, "audience").input("").run()
    at.button(key="run").click().run()
    assert chat_requests(server)[-1].json["messages"][1]["content"] == "Explain tides to a 10 year old."
    # loading the preset again starts from its defaults
    at.button(key="preset_load").click().run()
    assert [variable(at, n).value for n in ("tone", "topic", "audience")] == ["cheerful", "", "a 10 year old"]


def test_editing_the_template_keeps_the_values(server, tmp_path):
    at = open_app()
    load_template(at, tmp_path)
    variable(at, "topic").input("tides").run()
    widget(at.text_area, message_keys(at)[-1]).set_value("Describe {{topic}} for {{audience}}, briefly.").run()
    assert variable(at, "topic").value == "tides"
    at.button(key="run").click().run()
    assert chat_requests(server)[-1].json["messages"][1]["content"] == "Describe tides for a 10 year old, briefly."
    # the JSON view edits the template too
    body = json_body(at)
    body["messages"][0]["content"] = "Be {{tone}}."
    widget(at.text_area, "request_json").set_value(json.dumps(body)).run()
    at.button(key="run").click().run()
    assert chat_requests(server)[-1].json["messages"][0] == {"role": "system", "content": "Be cheerful."}


def test_save_as_preset_after_filling_keeps_the_placeholders(server, tmp_path):
    at = open_app()
    load_template(at, tmp_path)
    variable(at, "topic").input("tides").run()
    variable(at, "tone").input("grumpy").run()
    widget(at.text_input, "preset_save_name").input("My explainer")
    at.button(key="preset_save").click().run()
    assert any("Saved preset" in text for text in shown(at.success))
    saved = PresetStore(tmp_path / "presets").load("My explainer")
    assert saved.request.to_wire()["messages"] == TEMPLATE.request.to_wire()["messages"]
    assert saved.variables == TEMPLATE.variables  # the declared defaults, not the values typed
    # the draft in the address keeps the template too
    assert json.loads(decode_token(at.query_params["draft"]))["messages"] == TEMPLATE.request.to_wire()["messages"]


def test_request_as_sent_and_get_code_show_the_filled_request(server, tmp_path):
    at = open_app()
    load_template(at, tmp_path)
    at.session_state["playground_tabs"] = "JSON"
    at.run()
    [as_sent] = [e for e in at.expander if e.label == "Request as sent (variables filled in)"]
    assert "Fill in a value for {{topic}}" in "\n".join(shown(as_sent.info))
    variable(at, "topic").input("tides").run()
    [as_sent] = [e for e in at.expander if e.label == "Request as sent (variables filled in)"]
    filled = json.loads(as_sent.code[0].value)
    assert filled["messages"][1]["content"] == "Explain tides to a 10 year old."
    assert json_body(at)["messages"][1]["content"] == "Explain {{topic}} to {{audience}}."
    at.session_state["playground_tabs"] = "Get code"
    at.run()
    assert len(at.code) == 3 and all("Explain tides to a 10 year old." in c.value for c in at.code)
    assert "{{topic}}" not in "\n".join(c.value for c in at.code)


def test_variables_typed_by_hand_get_a_field(server):
    at = open_app()
    type_user_message(at, "Write a haiku about {{subject}}.")
    assert variable(at, "subject").label == "subject (required)" and variable(at, "subject").value == ""
    assert at.button(key="run").disabled
    variable(at, "subject").input("rain").run()
    at.button(key="run").click().run()
    assert chat_requests(server)[-1].json["messages"] == [{"role": "user", "content": "Write a haiku about rain."}]
    assert at.session_state["last_run"].preset is None
    assert [widget(at.text_area, k).value for k in message_keys(at)] == ["Write a haiku about {{subject}}."]
    # the placeholder gone, the field goes too
    type_user_message(at, "Write a haiku.")
    assert not [w for w in at.text_area if (w.key or "").startswith("variable_")]


def _sandbox_asked(server: ScriptedServer) -> bool:
    """Did the app look for (or start) the sandbox? The launcher asks /healthz first."""
    return any(r.path == "/healthz" for r in server.requests)


def test_the_sandbox_starts_only_when_it_is_the_chosen_endpoint(server, monkeypatch):
    # SGP configured: it is the default, and the sandbox is listed but left alone
    monkeypatch.setenv("SGP_API_KEY", "sgp-test-key-0123456789")
    monkeypatch.setenv("SGP_BASE_URL", server.base_url)  # its model list comes from the scripted server
    at = open_app()
    picker = widget(at.selectbox, "_sb_endpoint")
    assert picker.value == "SGP" and picker.options == ["Local sandbox", "SGP", "Custom (OpenAI-compatible)"]
    type_user_message(at, "Hi")
    at.button(key="run").click().run()
    assert chat_requests(server)[-1].headers["x-api-key"] == "sgp-test-key-0123456789"
    assert "logprobs" not in chat_requests(server)[-1].json  # some servers refuse them: not by default
    assert not _sandbox_asked(server)
    assert not any("Running on" in m.value for m in at.sidebar.markdown)

    # choosing it starts it (here: finds the stand-in on $PLAYGROUND_SANDBOX_PORT) and shows its state
    widget(at.selectbox, "_sb_endpoint").set_value("Local sandbox").run()
    assert not at.exception
    assert _sandbox_asked(server)
    assert any(f"Running on 127.0.0.1:{server.port}" in m.value for m in at.sidebar.markdown)


@pytest.mark.sandbox
def test_the_page_draws_while_the_sandbox_starts_and_run_enables_itself(monkeypatch, tmp_path):
    """A fresh app process on the local model: the builder is usable at once, Run waits for the
    model (saying so) and enables itself when the sandbox answers; the first request asks for
    logprobs, so the first run shows the token heatmap."""
    from playground.sandbox import launcher
    from playground.ui import sidebar

    sidebar.restart_sandbox()  # a fresh app process: no sandbox known yet
    monkeypatch.setenv("PLAYGROUND_SANDBOX_PORT", str(launcher.free_port()))  # no sandbox there yet
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SGP_API_KEY", raising=False)
    try:
        at = open_app()
        assert launcher.current().state == "starting"  # drawn before it answered
        type_user_message(at, "Name a colour.")
        assert at.button(key="run").disabled
        shown = [str(e.value) for e in [*at.caption, *at.markdown, *at.info, *at.sidebar.markdown]]
        assert any("Starting the local model" in text for text in shown), shown
        # each at.run() is what the sidebar's polling fragment does in a browser
        wait_for(lambda: not at.run().button(key="run").disabled, 120, "Run to enable itself")
        assert launcher.current().state == "running"
        assert request_of(at).logprobs is True and request_of(at).top_logprobs == 5
    finally:
        sidebar.restart_sandbox()  # stops the sandbox this test started


@pytest.mark.sandbox
def test_run_against_the_real_sandbox(sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYGROUND_SANDBOX_PORT", str(sandbox.port))
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SGP_API_KEY", raising=False)
    at = open_app()
    assert at.session_state["model"] == "local/smollm2-135m-instruct"
    type_user_message(at, "Name a colour.")
    widget(at.number_input, "p_max_tokens").set_value(8).run()
    widget(at.number_input, "p_seed").set_value(1).run()
    widget(at.selectbox, "p_logprobs").set_value(True).run()
    widget(at.number_input, "p_top_logprobs").set_value(3).run()
    at.button(key="run").click().run()
    assert not at.exception
    run = at.session_state["last_run"]
    assert run.error is None, run.error
    # the model's words are not known in advance, but how they add up is: one logprob per
    # completion token, and the tokens spell the text
    tokens = run.choices[0].logprobs
    assert 0 < run.usage.completion_tokens <= 8 and len(tokens) == run.usage.completion_tokens
    assert "".join(t.token for t in tokens) == run.text
    html = "\n".join(h.proto.body for h in at.html)
    assert len(heatmaps(at)) == 1 and f">{run.usage.completion_tokens}</div>" in html
    assert [len(t.top_logprobs) for t in tokens] == [3] * len(tokens)


def test_heatmap_legend_and_least_likely_name_what_they_show():
    """A token with no probability is drawn grey (the component adds the grey key then)."""
    import math

    from playground.client.schema import TokenLogprob
    from playground.ui.common import token_heatmap

    sure = [TokenLogprob(token="Hi", logprob=-0.01), TokenLogprob(token=" there", logprob=-2.3)]
    assert [cell[1] for cell in token_heatmap.heatmap_data(sure, "a")["cells"]] == [math.exp(-0.01), math.exp(-2.3)]
    unknown = [*sure, TokenLogprob(token="!", logprob=-9999.0)]
    assert token_heatmap.heatmap_data(unknown, "b")["cells"][2][1] is None  # drawn grey, with its key

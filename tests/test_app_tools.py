"""Tool calls in the Playground through Streamlit's AppTest, against a scripted server posing as
the sandbox: the call view (name, arguments, whether they fit the schema, escaped), result
boxes, `Send results and continue`, a preset's tool_results and `Auto-continue`."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from playground.client.schema import ChatRequest
from playground.presets import Preset, PresetStore
from tests.apptest_support import open_app, sandbox_stand_in, whole_app, widget
from tests.scripted_server import Reply, make_chunk
from tests.support import chat_requests

MODEL = "scripted/scripted-model"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city"], "additionalProperties": False}}}


@pytest.fixture
def server(monkeypatch, tmp_path):
    with sandbox_stand_in(tmp_path, monkeypatch, models=[("scripted-model", "scripted")]) as scripted:
        scripted.default = Reply.stream_text(["It is 21 degrees and sunny in Oslo."])
        yield scripted


def shown(elements) -> list[str]:
    return [re.sub(r"\\(.)", r"\1", str(e.value)).replace("&lt;", "<").replace("&gt;", ">") for e in elements]


def message_keys(at: AppTest) -> list[str]:
    return [w.key for w in at.text_area if w.key and w.key.startswith("msg_text_")]


def load_request(at: AppTest, body: dict) -> None:
    widget(at.text_area, "request_json").set_value(json.dumps(body)).run()
    assert not at.exception


def weather_request(**more) -> dict:
    return {"model": MODEL, "stream": True, "tools": [WEATHER], "tool_choice": "required",
            "messages": [{"role": "user", "content": "Weather in Oslo?"}], **more}


def calls_reply(*calls: tuple[str, str, str]) -> Reply:
    """A stream that ends in these (id, name, arguments) calls."""
    events = [make_chunk("", role="assistant")]
    for index, (call_id, name, arguments) in enumerate(calls):
        events.append(make_chunk(tool_calls=[{"index": index, "id": call_id, "type": "function",
                                              "function": {"name": name, "arguments": ""}}]))
        events.append(make_chunk(tool_calls=[{"index": index, "function": {"arguments": arguments}}]))
    events.append(make_chunk(finish_reason="tool_calls"))
    return Reply.sse(events)


def result_boxes(at: AppTest) -> list:
    return [w for w in at.text_area if (w.key or "").split("@")[0].rsplit("_result_", 1)[0].endswith("_c0")
            and "_result_" in (w.key or "")]


def test_calls_show_name_arguments_and_whether_they_fit(server):
    server.add(calls_reply(("call_a", "get_weather", '{"city": "Oslo", "unit": "celsius"}'),
                           ("call_b", "get_weather", '{"city": "<b>Bergen</b>", "unit": "kelvin"}'),
                           ("call_c", "launch_rocket", "{}")))
    at = open_app()
    load_request(at, weather_request())
    at.button(key="run").click().run()
    assert not at.exception
    assert "**Tool calls** (3)" in [m.value for m in at.markdown]
    code = [c.value for c in at.code]
    assert '{\n  "city": "Oslo",\n  "unit": "celsius"\n}' in code
    assert '{\n  "city": "<b>Bergen</b>",\n  "unit": "kelvin"\n}' in code  # st.code: literal text, never markup
    assert "✓" not in " ".join(code)
    captions = shown(at.caption)
    assert ":material/check_circle: Arguments fit the tool's schema." in captions
    errors = shown(at.error)
    assert errors == ["Arguments do not fit the tool's schema: $.unit: 'kelvin' is not one of "
                      "['celsius', 'fahrenheit']",
                      "Not a tool of this request: the request offers no tool named 'launch_rocket' "
                      "(its tools: get_weather)"]
    # one result box per call, empty (no preset tool_results), and the button to send them
    assert [box.value for box in result_boxes(at)] == ["", "", ""]
    assert [b.label for b in at.button if b.label == "Send results and continue"] == ["Send results and continue"]
    assert [b.label for b in at.button if b.label == "Auto-continue"] == []  # no tool_results to run it with


def test_an_assistant_turns_tool_calls_are_edited_as_json(server):
    call = {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    at = open_app()
    load_request(at, weather_request(messages=[{"role": "user", "content": "Weather in Oslo?"},
                                               {"role": "assistant", "tool_calls": [call]},
                                               {"role": "tool", "tool_call_id": "call_a", "content": "21 C"}]))
    box = next(w for w in at.text_area if (w.key or "").startswith("msg_calls_"))
    assert json.loads(box.value) == [call]
    box.set_value('[{"id": "call_a", "type": "function",\n "function": {"name": "get_weather" "arguments": "{}"}}]')
    at.run()
    assert "Tool calls: Invalid JSON at line 2, column 37: Expecting ',' delimiter" in shown(at.error)
    assert ' |  "function": {"name": "get_weather" "arguments": "{}"}}]\n  |' in "\n".join(c.value for c in at.code)
    assert at.session_state["request"].to_wire()["messages"][1]["tool_calls"] == [call]  # the last valid kept
    edited = {**call, "function": {"name": "get_weather", "arguments": '{"city": "Bergen"}'}}
    box = next(w for w in at.text_area if (w.key or "").startswith("msg_calls_"))
    box.set_value(json.dumps([edited])).run()
    assert not at.error
    assert at.session_state["request"].to_wire()["messages"][1]["tool_calls"] == [edited]


def test_send_results_and_continue_appends_the_exchange_and_runs_again(server):
    server.add(calls_reply(("call_a", "get_weather", '{"city": "Oslo"}')))
    server.add(Reply.stream_text(["It is 21 degrees and sunny in Oslo."]))
    at = open_app()
    load_request(at, weather_request())
    at.button(key="run").click().run()
    send = next(b for b in at.button if b.label == "Send results and continue")
    send.click().run()  # no result yet: says so and sends nothing
    assert "Write a result for every call first" in " ".join(shown(at.warning))
    assert len(chat_requests(server)) == 1
    result_boxes(at)[0].set_value('{"temperature_c": 21, "sky": "sunny"}').run()
    next(b for b in at.button if b.label == "Send results and continue").click().run()
    assert not at.exception
    # the server got the assistant's calls and one tool message per call
    sent = chat_requests(server)[-1].json["messages"]
    assert sent == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "tool_calls": [{"id": "call_a", "type": "function",
                                              "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temperature_c": 21, "sky": "sunny"}'},
    ]
    # tool_choice forced the first call; kept, it would force one after every answer
    assert [r.json["tool_choice"] for r in chat_requests(server)] == ["required", "none"]
    assert at.session_state["request"].tool_choice == "none"  # the form shows what was sent
    # the final answer, and the whole exchange in the messages editor (editable like any turn)
    assert at.session_state["last_run"].text == "It is 21 degrees and sunny in Oslo."
    assert at.session_state["request"].to_wire()["messages"] == sent
    texts = [widget(at.text_area, k).value for k in message_keys(at)]
    assert texts == ["Weather in Oslo?", "", '{"temperature_c": 21, "sky": "sunny"}']
    calls_box = [w for w in at.text_area if (w.key or "").startswith("msg_calls_")]
    assert len(calls_box) == 1 and json.loads(calls_box[0].value)[0]["function"]["name"] == "get_weather"


# --- a preset's tool_results and Auto-continue ----------------------------------------------

PRESET_RESULTS = {"get_weather": {"city": "{{arguments.city}}", "temperature_c": 21,
                                  "unit": "{{arguments.unit|celsius}}"}}


def load_preset(at: AppTest, tmp_path, tool_results=PRESET_RESULTS) -> None:
    request = ChatRequest.from_wire(weather_request(tool_choice="auto"))  # the model may call again each round
    PresetStore(tmp_path / "presets").save(Preset.new("Weather loop", request, tool_results=tool_results))
    at.run()
    widget(at.selectbox, "preset_load_name").select("Weather loop")
    at.button(key="preset_load").click().run()
    assert not at.exception


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, [b.label for b in at.button]
    return found[0]


def notes(at: AppTest) -> list[str]:
    return shown(at.warning) + shown(at.success)


def test_tool_results_fill_the_boxes_and_auto_continue_runs_to_the_answer(server, tmp_path):
    server.add(calls_reply(("call_1", "get_weather", '{"city": "Oslo"}'),
                           ("call_2", "get_weather", '{"city": "Bergen", "unit": "fahrenheit"}')))
    server.add(calls_reply(("call_3", "get_weather", '{"city": "Tromsø"}')))
    server.add(Reply.stream_text(["Oslo and Bergen are mild, Tromsø too."]))
    at = open_app()
    load_preset(at, tmp_path)
    at.button(key="run").click().run()
    # the boxes hold the preset's answers, the arguments filled in (a default where one was left out)
    assert [json.loads(box.value) for box in result_boxes(at)] == [
        {"city": "Oslo", "temperature_c": 21, "unit": "celsius"},
        {"city": "Bergen", "temperature_c": 21, "unit": "fahrenheit"}]
    button(at, "Auto-continue").click().run()
    assert not at.exception
    requests = chat_requests(server)
    assert len(requests) == 3
    final = requests[-1].json["messages"]
    assert [m["role"] for m in final] == ["user", "assistant", "tool", "tool", "assistant", "tool"]
    assert [m.get("tool_call_id") for m in final if m["role"] == "tool"] == ["call_1", "call_2", "call_3"]
    assert json.loads(final[-1]["content"]) == {"city": "Tromsø", "temperature_c": 21, "unit": "celsius"}
    assert at.session_state["last_run"].text == "Oslo and Bergen are mild, Tromsø too."
    assert at.session_state["request"].to_wire()["messages"] == final  # the whole exchange, in the editor
    assert notes(at) == ["Auto-continue: the model answered after 2 rounds of tool calls."]
    assert {r.json["tool_choice"] for r in requests} == {"auto"}
    assert not at.button(key="run").disabled


def test_auto_continue_stops_at_its_limit_and_says_so(server, tmp_path):
    server.respond = lambda received: calls_reply((f"call_{len(server.requests)}", "get_weather", '{"city": "Oslo"}'))
    at = open_app()
    load_preset(at, tmp_path)
    at.button(key="run").click().run()
    rounds = next(w for w in at.number_input if (w.key or "").endswith("_rounds"))
    assert rounds.value == 5  # the default limit
    rounds.set_value(2).run()
    button(at, "Auto-continue").click().run()
    assert not at.exception
    assert len(chat_requests(server)) == 3  # the first run, then two rounds
    assert notes(at) == ["Auto-continue stopped at its limit of 2 rounds: the model called tools again. Answer "
                         "these calls and press Send results and continue, or press Auto-continue for more rounds."]
    # the calls of the last run wait for an answer, pre-filled: the user can carry on by hand
    assert [json.loads(box.value)["city"] for box in result_boxes(at)] == ["Oslo"]
    assert not button(at, "Send results and continue").disabled


def test_auto_continue_stops_at_a_call_the_preset_cannot_answer(server, tmp_path):
    clock = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    server.add(calls_reply(("call_1", "get_weather", '{"city": "Oslo"}')))
    server.add(calls_reply(("call_2", "get_time", "{}")))
    at = open_app()
    PresetStore(tmp_path / "presets").save(Preset.new("Two tools", ChatRequest.from_wire(
        weather_request(tools=[WEATHER, clock])), tool_results=PRESET_RESULTS))
    at.run()
    widget(at.selectbox, "preset_load_name").select("Two tools")
    at.button(key="preset_load").click().run()
    at.button(key="run").click().run()
    button(at, "Auto-continue").click().run()
    assert len(chat_requests(server)) == 2
    assert notes(at) == ["Auto-continue stopped after 1 round: the preset's tool_results has no answer for "
                         "get_time. Write its result below and press Send results and continue."]
    assert [box.value for box in result_boxes(at)] == [""]


def test_history_shows_a_runs_calls_as_the_playground_does_without_result_boxes(server):
    """History draws runs with the common run view: the same call cards (arguments, whether they
    fit), and no result boxes: only the Playground carries a conversation on."""
    from playground.client.run import ChoiceResult, Run
    from playground.runs.store import RunStore
    from playground.settings import runs_db_path

    run = Run(request=ChatRequest.from_wire(weather_request()), endpoint="Local sandbox", choices=[ChoiceResult(
        finish_reason="tool_calls", tool_calls=[{"id": "call_a", "function": {"name": "get_weather",
                                                                                "arguments": '{"city": 7}'}}])])
    RunStore(runs_db_path()).save(run)
    at = whole_app().switch_page("pages/history.py")
    at.run()
    widget(at.selectbox, "hist.pick").set_value(run.id).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "**Tool calls** (1)" in [m.value for m in at.markdown]
    assert '{\n  "city": 7\n}' in [c.value for c in at.code]
    assert "Arguments do not fit the tool's schema: $.city: 7 is not of type 'string'" in shown(at.error)
    assert not result_boxes(at) and not [b for b in at.button if b.label == "Send results and continue"]


def test_saving_a_loaded_preset_keeps_its_tool_results(server, tmp_path):
    at = open_app()
    load_preset(at, tmp_path)
    widget(at.text_input, "preset_save_name").input("Weather loop, my copy")
    at.button(key="preset_save").click().run()
    assert not at.exception
    saved = PresetStore(tmp_path / "presets").load("Weather loop, my copy")
    assert saved.tool_results == PRESET_RESULTS

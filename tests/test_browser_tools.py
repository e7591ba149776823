"""Browser: tool calls in the Playground, in headless Chromium against `streamlit run app.py`.

A newcomer's path: define a weather tool from the tools editor's template, make the model call
it (tool_choice required), read the call, type its result, `Send results and continue`, and
read the final answer with the whole exchange in the messages editor. The app's local sandbox is
a ScriptedServer here (exact replies: the conftest `server`)."""

from __future__ import annotations

import json

import pytest

from tests.browser_support import (
    RUN_BUTTON,
    USER_BOX,
    answers,
    choose,
    put_preset,
    run_prompt,
    screenshot,
    wait_answer,
    wait_idle,
)
from tests.scripted_server import Reply
from tests.support import chat_requests

pytestmark = pytest.mark.browser

SEND = "Send results and continue"


def define_weather_tool(page) -> None:
    """Parameters > Tools: add get_weather from its template, and make the model call a tool."""
    from playwright.sync_api import expect

    page.get_by_text("Tools", exact=True).first.click()  # open the group
    add = page.get_by_role("button", name="Add function")
    add.wait_for()
    add.click()  # the first template is get_weather
    expect(page.locator(".st-key-p_tool0_card input[aria-label='Name']")).to_have_value("get_weather")
    wait_idle(page)
    tool_choice = page.get_by_role("combobox", name="tool_choice")
    choose(page, tool_choice, "required")
    wait_idle(page)
    expect(tool_choice).to_have_value("required")  # a pick lost to a rerun would send "auto"


def test_a_weather_tool_call_answered_and_continued(page, server):
    from playwright.sync_api import expect

    define_weather_tool(page)
    server.add(Reply.stream_tool_call("get_weather", ['{"city": ', '"Oslo"}'], call_id="call_oslo"))
    server.add(Reply.stream_text(["It is 21 °C", " and sunny in Oslo."]))
    run_prompt(page, "What is the weather in Oslo?")
    call = page.locator("[class*='st-key-last_c0_call_0']")
    call.wait_for()
    expect(call).to_contain_text("get_weather")
    expect(call).to_contain_text('"city": "Oslo"')
    expect(call).to_contain_text("Arguments fit the tool's schema.")
    first = chat_requests(server)[-1].json
    assert first["tool_choice"] == "required" and first["tools"][0]["function"]["name"] == "get_weather"
    screenshot(page, "tools-call.png", full_page=True)

    result = page.get_by_role("textbox", name="Result")
    result.fill('{"temperature_c": 21, "sky": "sunny"}')
    result.press("Tab")
    page.get_by_role("button", name=SEND).click()
    wait_answer(page, "a[0].includes('sunny in Oslo')")
    wait_idle(page)
    assert answers(page)[0] == "It is 21 °C and sunny in Oslo."
    sent = chat_requests(server)[-1].json
    assert sent["messages"] == [
        {"role": "user", "content": "What is the weather in Oslo?"},
        {"role": "assistant", "tool_calls": [{"id": "call_oslo", "type": "function",
                                              "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_oslo", "content": '{"temperature_c": 21, "sky": "sunny"}'},
    ]
    assert sent["tool_choice"] == "none"  # required again would force another call
    # the whole exchange in the messages editor, editable: the user turn, the calls, the result
    boxes = page.locator("textarea[aria-label='Message text']")
    expect(boxes).to_have_count(3)
    assert boxes.nth(0).input_value() == "What is the weather in Oslo?"
    assert boxes.nth(2).input_value() == '{"temperature_c": 21, "sky": "sunny"}'
    calls = json.loads(page.get_by_role("textbox", name="Tool calls").input_value())
    assert calls[0]["id"] == "call_oslo" and calls[0]["function"]["name"] == "get_weather"
    assert page.get_by_role("textbox", name="tool_call_id").input_value() == "call_oslo"
    screenshot(page, "tools-continued.png", full_page=True)


def test_a_schema_typo_is_named_where_it_is(page, server):
    from playwright.sync_api import expect

    page.locator(USER_BOX).first.wait_for()
    define_weather_tool(page)
    schema = page.get_by_role("textbox", name="Parameters (JSON Schema)")
    schema.fill('{\n  "type": "object",\n  "properties": {"city": {"type": "string"}}\n  "required": ["city"]\n}')
    schema.press("Tab")
    card = page.locator(".st-key-p_tool0_card")
    expect(card.get_by_text("Invalid JSON at line 4, column 3: Expecting ',' delimiter")).to_be_visible()
    expect(page.get_by_text("Fix function 1 first: Invalid JSON at line 4")).to_be_visible()  # Run says why
    expect(page.get_by_text('4 |   "required": ["city"]')).to_be_visible()
    screenshot(page, "tools-schema-error.png", full_page=True)


def test_stop_generating_ends_auto_continue_and_keeps_the_partial_answer(page, server, app_dir):
    """A preset's tool_results answer the first call; the round after streams slowly, and Stop
    generating ends the loop there: the partial text stays, the note says why, nothing more is sent."""
    from playwright.sync_api import expect

    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    put_preset(app_dir, {"schema_version": 1, "name": "Weather loop",
                         "request": {"model": "scripted/scripted-model", "stream": True, "tools": [weather],
                                     "tool_choice": "auto",
                                     "messages": [{"role": "user", "content": "Weather in Oslo?"}]},
                         "tool_results": {"get_weather": {"city": "{{arguments.city}}", "temperature_c": 21}}})
    server.add(Reply.stream_tool_call("get_weather", ['{"city": ', '"Oslo"}'], call_id="call_oslo"))
    server.add(Reply.stream_text([f"w{n:02d} " for n in range(60)], delay_s=0.1))  # six seconds, unless stopped
    page.reload()  # the page was drawn before the preset was written: a new page lists it
    page.locator(USER_BOX).first.wait_for()
    page.locator("summary").filter(has_text="Load preset").click()  # the expander
    wait_idle(page)
    choose(page, page.get_by_role("combobox", name="Preset"), "Weather loop")
    page.locator(".st-key-preset_load button").click()
    expect(page.get_by_text("Loaded “Weather loop”")).to_be_visible()
    wait_idle(page)
    page.locator(RUN_BUTTON).click()
    box = page.get_by_role("textbox", name="Result")
    expect(box).to_have_value('{"city": "Oslo", "temperature_c": 21}')  # pre-filled from tool_results
    wait_idle(page)
    before = len(chat_requests(server))
    page.get_by_role("button", name="Auto-continue").click()
    wait_answer(page, "a[0].includes('w03')")
    page.get_by_role("button", name="Stop generating").click()
    expect(page.get_by_text("Auto-continue stopped after 1 round: you stopped the run.")).to_be_visible()
    wait_idle(page)
    text = answers(page)[0].strip()
    assert text.startswith("w00 w01 w02 w03") and "w59" not in text
    assert len(chat_requests(server)) == before + 1  # the one round, stopped: no other run started
    sent = chat_requests(server)[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    expect(page.locator(RUN_BUTTON)).to_be_enabled()
    expect(page.get_by_role("button", name="Stop generating")).to_have_count(0)
    screenshot(page, "tools-auto-continue-stopped.png", full_page=True)

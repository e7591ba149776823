"""Browser: tool calls end to end on the real local model (the sandbox's grammar holds a forced
call to the tool's schema), in headless Chromium against `streamlit run app.py`.

A newcomer defines a weather tool, runs with tool_choice required, fills the result, continues
and reads the final answer and the whole conversation; the shipped weather-tool-call preset runs
its Auto-continue loop on its tool_results. What the app sent is read from its run history."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from playground.runs.store import RunStore
from tests.browser_support import (
    REPO,
    answers,
    choose,
    run_prompt,
    screenshot,
    streamlit_app,
    wait_answer,
    wait_idle,
)
from tests.test_browser_tools import SEND, define_weather_tool

pytestmark = pytest.mark.browser

PRESET = REPO / "presets" / "weather-tool-call.json"
RESULT = '{"city": "Lisbon", "temperature_c": 21, "sky": "sunny"}'


@pytest.fixture(scope="module")
def app_url(sandbox, app_dir):
    """The app, its "Local sandbox" the real one (the conftest `sandbox`)."""
    shutil.copytree(REPO / "presets", app_dir / "presets", dirs_exist_ok=True)  # the shipped presets
    with streamlit_app(app_dir, env={"PLAYGROUND_SANDBOX_PORT": str(sandbox.port)}) as base:
        yield base


def last_runs(app_dir, n: int) -> list:
    """The app's last n runs, oldest first, from its run history."""
    store = RunStore(app_dir / "data" / "runs.sqlite3")
    return [store.get(summary.id) for summary in store.list()[:n]][::-1]


def test_a_weather_tool_on_the_local_model(page, app_dir):
    from playwright.sync_api import expect

    define_weather_tool(page)
    run_prompt(page, "What is the weather in Lisbon right now?")
    call = page.locator("[class*='st-key-last_c0_call_0']")
    try:
        call.wait_for(timeout=120_000)
    except Exception:
        screenshot(page, "tools-local-call-failure.png", full_page=True)
        sent = last_runs(app_dir, 1)
        raise AssertionError(f"no tool call shown; the last run saved: "
                             f"{[(r.request.tool_choice, r.text[:80], r.error) for r in sent]}") from None
    expect(call).to_contain_text("get_weather")
    expect(call).to_contain_text("Arguments fit the tool's schema.")  # the grammar's doing
    wait_idle(page)
    screenshot(page, "tools-local-call.png", full_page=True)
    # A sampled model may call the tool more than once (parallel calls are allowed): answer each.
    results = page.get_by_role("textbox", name="Result")
    calls = results.count()
    assert calls >= 1
    for i in range(calls):
        results.nth(i).fill(RESULT)
        results.nth(i).press("Tab")
    page.get_by_role("button", name=SEND).click()
    page.get_by_text("Finish reason").first.wait_for()
    wait_answer(page, "a[0].trim().length > 0")
    wait_idle(page)
    answer = answers(page)[0].strip()
    assert answer
    first, second = last_runs(app_dir, 2)
    assert first.choices[0].finish_reason == "tool_calls"
    call_ids = [call.id for call in first.choices[0].tool_calls]
    assert len(call_ids) == calls
    assert json.loads(first.choices[0].tool_calls[0].function.arguments)["city"]
    sent = second.request.to_wire()["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant"] + ["tool"] * calls
    assert [c["id"] for c in sent[1]["tool_calls"]] == call_ids
    assert [m["tool_call_id"] for m in sent[2:]] == call_ids
    assert second.text.strip() == answer and second.choices[0].finish_reason in ("stop", "length")
    # the whole conversation, in the messages editor
    boxes = page.locator("textarea[aria-label='Message text']")
    expect(boxes).to_have_count(2 + calls)
    assert [boxes.nth(2 + i).input_value() for i in range(calls)] == [RESULT] * calls
    calls_box = page.get_by_role("textbox", name="Tool calls")
    expect(calls_box).to_have_value(re.compile(re.escape(call_ids[0])))  # its value comes with the editor's redraw
    assert [c["id"] for c in json.loads(calls_box.input_value())] == call_ids
    screenshot(page, "tools-local-answer.png", full_page=True)


def test_the_shipped_weather_preset_runs_its_auto_continue_loop(page, app_dir):
    from playwright.sync_api import expect

    preset = json.loads(PRESET.read_text())
    assert preset["tool_results"]["get_weather"]  # it ships with answers for its tool
    main = page.get_by_test_id("stMain")
    main.get_by_text("Load preset", exact=True).first.click()  # the expander
    wait_idle(page)
    choose(page, main.get_by_role("combobox", name="Preset"), preset["name"])
    page.locator(".st-key-preset_load button").click()
    expect(page.get_by_text(f"Loaded “{preset['name']}”")).to_be_visible()
    wait_idle(page)
    page.locator(".st-key-run button >> visible=true").click()
    call = page.locator("[class*='st-key-last_c0_call_0']")
    call.wait_for(timeout=120_000)
    wait_idle(page)
    boxes = page.get_by_role("textbox", name="Result")  # one per call: a sampled model may make several
    calls = last_runs(app_dir, 1)[0].choices[0].tool_calls
    expect(boxes).to_have_count(len(calls))
    for i, call in enumerate(calls):  # pre-filled from tool_results, the city the model asked for
        assert json.loads(boxes.nth(i).input_value())["city"] == json.loads(call.function.arguments)["city"]
    page.get_by_role("button", name="Auto-continue").click()
    expect(page.get_by_text("Auto-continue: the model answered after 1 round of tool calls.")).to_be_visible(
        timeout=120_000)
    wait_idle(page)
    assert answers(page)[0].strip()
    screenshot(page, "tools-local-auto-continue.png", full_page=True)

"""Browser: keeping a conversation going on the Playground (issue 22), and what a loaded preset
does to the answer under Run, in headless Chromium against `streamlit run app.py` whose local
sandbox is a ScriptedServer.
"""

from __future__ import annotations

import pytest

from tests.browser_support import USER_BOX, choose, put_preset, run_prompt, screenshot, wait_answer, wait_idle
from tests.scripted_server import Reply
from tests.support import chat_requests, wait_for

pytestmark = pytest.mark.browser

BOXES_JS = ("[...document.querySelectorAll('.stTextArea textarea')]"
            ".filter(t => t.id && t.closest('[class*=\"st-key-msg_box_\"]')).map(t => t.value)")


def message_boxes(page) -> list[str]:
    """The text of every message box of the conversation, top to bottom (the system prompt left out)."""
    return page.evaluate(f"() => {BOXES_JS}")


def wait_boxes(page, expected: list[str]) -> None:
    try:
        page.wait_for_function(f"(want) => JSON.stringify({BOXES_JS}) === JSON.stringify(want)", arg=expected)
    except Exception:
        screenshot(page, "conversation-failure.png", full_page=True)
        raise


def test_add_to_conversation_two_turns_then_regenerate_and_page_back(page, server):
    from playwright.sync_api import expect

    server.add(Reply.stream_text(["Paris", "."], delay_s=0.02))
    run_prompt(page, "Capital of France?")
    wait_answer(page, "a[0].includes('Paris.')")
    page.get_by_role("button", name="Add to conversation").click()
    wait_boxes(page, ["Capital of France?", "Paris.", ""])
    expect(page.get_by_role("button", name="Add to conversation")).to_have_count(0)

    # the second turn: typed in the new user box, sent with the whole exchange
    server.add(Reply.stream_text(["Rome", "."], delay_s=0.02))
    box = page.locator(USER_BOX).last
    box.fill("And of Italy?")
    box.press("Tab")
    wait_idle(page)
    page.locator(".st-key-run button >> visible=true").click()
    wait_answer(page, "a[0].includes('Rome.')")
    page.get_by_role("button", name="Add to conversation").click()
    wait_boxes(page, ["Capital of France?", "Paris.", "And of Italy?", "Rome.", ""])
    assert chat_requests(server)[-1].json["messages"] == [
        {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"}]

    # Regenerate the first answer: the conversation up to it is sent, the new answer takes its place
    server.add(Reply.stream_text(["It is Paris", "."], delay_s=0.02))
    page.get_by_role("button", name="Regenerate").first.click()
    wait_boxes(page, ["Capital of France?", "It is Paris.", ""])
    assert chat_requests(server)[-1].json["messages"] == [{"role": "user", "content": "Capital of France?"}]
    page.get_by_text("2 of 2").wait_for()
    screenshot(page, "conversation-regenerated.png", full_page=True)
    # ... and the old answer, with the turn that followed it, is one click away
    page.locator("[class*='st-key-msg_prev_'] button").first.click()
    wait_boxes(page, ["Capital of France?", "Paris.", "And of Italy?", "Rome.", ""])
    page.get_by_text("1 of 2").wait_for()


def test_a_loaded_preset_folds_the_previous_answer(page, server, app_dir):
    put_preset(app_dir, {"schema_version": 1, "name": "Haiku maker",
                         "request": {"model": "scripted/scripted-model", "stream": True,
                                     "messages": [{"role": "user", "content": "A haiku, please"}]}})
    server.add(Reply.stream_text(["An old answer"], delay_s=0.02))
    run_prompt(page, "Anything")
    wait_answer(page, "a[0].includes('An old answer')")
    page.locator("summary").filter(has_text="Load preset").click()  # the expander
    wait_idle(page)
    choose(page, page.get_by_role("combobox", name="Preset"), "Haiku maker")
    wait_idle(page)
    page.locator(".st-key-preset_load button").click()
    page.get_by_text("Previous answer, from the request before “Haiku maker” was loaded").wait_for()
    wait_idle(page)
    # folded: the old text is not on screen as the loaded preset's answer
    wait_for(lambda: page.evaluate("() => [...document.querySelectorAll('.pg-answer')]"
                                   ".filter(e => e.checkVisibility()).length") == 0, 10, "the old answer folded")
    screenshot(page, "preset-previous-answer.png", full_page=True)

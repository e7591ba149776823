"""Browser (issue 22): the JSON view keeps what you typed. Broken JSON typed into the JSON tab,
then a parameter changed in the form: the text is still there, word for word, with its error
(the line and a caret under the column) and a note that it is not applied; fixed, it applies
on top of the form's change and Run sends both."""

from __future__ import annotations

import json

import pytest

from tests.browser_support import RUN_BUTTON, screenshot, wait_idle
from tests.support import chat_requests, wait_for

pytestmark = pytest.mark.browser

BROKEN = ('{\n  "model": "scripted/scripted-model",\n  "temperature": 0.3\n'
          '  "messages": [{"role": "user", "content": "Hi"}]\n}')
JSON_BOX = "[class*='st-key-request_json'] textarea"  # its key is versioned (widget_sync)


def test_a_form_edit_does_not_throw_away_broken_json(page, server):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="JSON").click()
    box = page.locator(JSON_BOX)
    box.fill(BROKEN)
    box.press("Tab")  # apply: refused, with the line and a caret under the column
    error = page.get_by_test_id("stAlertContentError").get_by_text("Invalid JSON at line 4, column 3")
    expect(error).to_contain_text("Invalid JSON at line 4, column 3: Expecting ',' delimiter")
    expect(page.locator("[data-testid='stCode']", has_text="4 |")).to_contain_text(
        '4 |   "messages": [{"role": "user", "content": "Hi"}]')
    expect(page.locator(RUN_BUTTON)).to_be_disabled()

    top_p = page.locator(".st-key-p_top_p input").first
    top_p.fill("0.5")
    top_p.press("Tab")
    expect(page.get_by_text("Not applied: the request changed since")).to_be_visible()
    wait_idle(page)
    assert box.input_value() == BROKEN  # nothing typed is lost
    expect(error).to_be_visible()
    screenshot(page, "json-draft-kept.png", full_page=True)

    box.fill(BROKEN.replace("0.3\n", "0.3,\n"))
    box.press("Tab")
    expect(page.get_by_text("Not applied")).to_have_count(0)
    expect(page.locator(RUN_BUTTON)).to_be_enabled()
    shown = json.loads(box.input_value())
    assert (shown["temperature"], shown["top_p"]) == (0.3, 0.5)  # the draft's edit on top of the form's
    before = len(chat_requests(server))
    page.locator(RUN_BUTTON).click()
    wait_for(lambda: len(chat_requests(server)) > before, 30, "the request to reach the server")
    sent = chat_requests(server)[-1].json
    assert (sent["temperature"], sent["top_p"], sent["messages"]) == (0.3, 0.5, [{"role": "user", "content": "Hi"}])

"""Browser: "Continue with this token" on a server that refuses continue_final_message. The first
press runs the endpoint's probe; its refusal is said in the server's own words above the answer,
nothing else is sent, the page stays on the Playground, and the inspector then shows the reason
where the button was, for every token, without asking the server again."""

from __future__ import annotations

import pytest

from tests.browser_support import PAGE_TIMEOUT_MS, run_prompt, screenshot, wait_idle
from tests.scripted_server import Reply
from tests.support import chat_requests
from tests.test_browser_branch import japanese_stream

pytestmark = pytest.mark.browser
CONTINUE = "Continue with this token"
REFUSAL = "continue_final_message is not supported by this server"


def test_a_refused_probe_is_said_and_the_button_gives_way_to_the_reason(page, server):
    from playwright.sync_api import expect

    server.add(japanese_stream())
    run_prompt(page, "What is sakura?")
    cells = page.locator(".pg-heatmap .pg-token")
    expect(cells).to_have_count(4, timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    cells.nth(3).click()  # " pink", with alternatives
    inspector = page.locator(".pg-inspector").first
    buttons = inspector.get_by_role("button", name=CONTINUE)
    expect(buttons.first).to_be_visible()  # offered: nothing is known of the server yet
    server.add(Reply.error(400, {"error": {"message": REFUSAL, "type": "invalid_request_error"}}))
    before = len(chat_requests(server))
    inspector.locator("tr").filter(has_text="red").get_by_role("button", name=CONTINUE).click()
    why = "Not offered: Local sandbox refused continue_final_message (400: " + REFUSAL  # its own words
    expect(page.get_by_test_id("stAlert").filter(has_text=why)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    assert len(chat_requests(server)) == before + 1  # the probe only: no branch was asked for
    assert chat_requests(server)[-1].json["continue_final_message"] is True
    expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible()
    # the inspector, on any token, shows the reason where the button was
    cells = page.locator(".pg-heatmap .pg-token")
    cells.nth(2).click()
    inspector = page.locator(".pg-inspector").first
    expect(inspector).to_contain_text(why)
    expect(inspector.get_by_role("button", name=CONTINUE)).to_have_count(0)
    screenshot(page, "branch-refused.png", full_page=True)
    assert len(chat_requests(server)) == before + 1  # remembered: not asked again

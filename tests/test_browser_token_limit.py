"""Browser (issue 22): any server's token limit. The sandbox (here a scripted stand-in that ignores
every limit) receives max_tokens, the field the form names, and the answer says the server
ignored the limit; a Custom endpoint pointed at the same server receives max_tokens by default
and max_completion_tokens once its form says so."""

from __future__ import annotations

import pytest

from tests.browser_support import RUN_BUTTON, USER_BOX, choose, run_prompt, screenshot, wait_idle
from tests.scripted_server import Reply
from tests.support import chat_requests, wait_for

pytestmark = pytest.mark.browser

TWELVE = [f" {n}" for n in range(1, 13)]


def _sent(server, before: int) -> dict:
    wait_for(lambda: len(chat_requests(server)) > before, 30, "the request to reach the server")
    return chat_requests(server)[-1].json


def test_the_field_sent_and_an_ignored_limit(page, server):
    from playwright.sync_api import expect

    server.default = Reply.stream_text(TWELVE)  # 12 tokens whatever the request asks
    server.route("/v1/models", Reply.json(200, {"object": "list", "data": [{"id": "scripted/scripted-model"}]}))
    expect(page.get_by_text("The token limit is sent as max_tokens: the field Local sandbox reads")).to_be_visible()
    limit = page.locator(".st-key-p_max_tokens input").first
    limit.fill("4")
    limit.press("Tab")
    wait_idle(page)
    before = len(chat_requests(server))
    run_prompt(page, "Count to twelve.")
    sent = _sent(server, before)
    assert sent["max_tokens"] == 4 and "max_completion_tokens" not in sent
    warning = page.get_by_text("The server ignored the token limit")
    expect(warning).to_be_visible()
    expect(page.get_by_test_id("stAlertContentWarning").filter(has=warning)).to_contain_text(
        "asked for at most 4 tokens in max_tokens, and it generated 12")
    screenshot(page, "token-limit-ignored.png", full_page=True)

    sidebar = page.get_by_test_id("stSidebar")
    choose(page, sidebar.get_by_role("combobox").first, "Custom (OpenAI-compatible)")
    url = sidebar.get_by_role("textbox", name="Base URL")
    url.fill(f"{server.base_url}/v1")
    url.press("Tab")
    expect(sidebar.get_by_text("The token limit is sent as max_tokens.")).to_be_visible()
    wait_idle(page)
    before = len(chat_requests(server))
    page.locator(RUN_BUTTON).click()
    sent = _sent(server, before)
    assert chat_requests(server)[-1].path == "/v1/chat/completions"
    assert sent["max_tokens"] == 4 and "max_completion_tokens" not in sent

    choose(page, sidebar.get_by_role("combobox", name="Token limit field"), "max_completion_tokens")
    expect(sidebar.get_by_text("The token limit is sent as max_completion_tokens.")).to_be_visible()
    expect(page.get_by_text("The token limit is sent as max_completion_tokens: the field Custom")).to_be_visible()
    wait_idle(page)
    assert page.locator(USER_BOX).first.input_value() == "Count to twelve."
    before = len(chat_requests(server))
    page.locator(RUN_BUTTON).click()
    sent = _sent(server, before)
    assert sent["max_completion_tokens"] == 4 and "max_tokens" not in sent
    screenshot(page, "token-limit-custom.png", full_page=True)

"""Browser: an Experiments variant is its source's request with the variant's own changes, made
in the same request editor the Playground draws (issue 20). Against a scripted endpoint posing as
the local sandbox (tests/conftest.py's module app)."""

from __future__ import annotations

import re

import pytest

from tests.browser_support import open_page, put_preset, screenshot, wait_idle
from tests.scripted_server import Reply
from tests.support import chat_requests, wait_for

pytestmark = pytest.mark.browser

PRESET = {
    "schema_version": 1,
    "name": "Name a thing",
    "variables": [{"name": "thing", "default": "tree"}],
    "request": {"model": "scripted/scripted-model", "stream": True,
                "messages": [{"role": "user", "content": "Name a {{thing}}."}]},
    "checks": [{"kind": "contains", "value": "{{expected}}"}],
}
CASES = "thing,expected,note\ntree,oak,\nfish,cod,\n"


def test_a_variant_sends_its_system_prompt_and_max_tokens_and_the_other_does_not(browser, app_url, app_dir, server):
    from playwright.sync_api import expect

    put_preset(app_dir, PRESET, CASES)
    server.default = Reply.stream_text(["oak"])
    with open_page(browser, f"{app_url}/experiments", "Experiments", viewport=(1440, 1400)) as page:
        try:
            if page.get_by_role("combobox", name="Preset").input_value() != "Name a thing":
                page.get_by_role("combobox", name="Preset").click()
                page.get_by_role("option", name="Name a thing").click()
            wait_idle(page)
            variants = page.get_by_role("spinbutton", name="Variants")
            variants.fill("2")
            variants.press("Tab")
            expect(page.get_by_text("2 case(s) × 2 variant(s) × 1 repeat(s) = 4 request(s).")).to_be_visible()
            # variant 2: a system prompt in its messages, max_tokens in its Length and stop group
            page.get_by_text("Edit this variant's request").nth(1).click()
            system = page.locator(".st-key-exp-v1-msg_system textarea")
            system.fill("Answer in one word.")
            system.press("Tab")
            wait_idle(page)
            page.get_by_role("tab", name="Parameters").filter(visible=True).click()
            page.get_by_text("Length and stop", exact=True).filter(visible=True).click()
            max_tokens = page.locator(".st-key-exp-v1-p_max_tokens input")
            max_tokens.fill("32")
            max_tokens.press("Tab")
            expect(page.get_by_text("Changes: system prompt, max_tokens=32")).to_be_visible()
            before = len(chat_requests(server))
            page.get_by_role("button", name="Run experiment").click()
            expect(page.get_by_text(re.compile(r"^Finished: 4 of 4 request\(s\)"))).to_be_visible(timeout=30_000)
            screenshot(page, "experiments-variant-changes.png", full_page=True)
        except Exception:
            screenshot(page, "experiments-variants-failure.png", full_page=True)
            raise
    wait_for(lambda: len(chat_requests(server)) == before + 4, 10, "the four cells' requests")
    sent = [r.json for r in chat_requests(server)[before:]]
    changed = [body for body in sent if body.get("max_tokens") == 32]
    plain = [body for body in sent if "max_tokens" not in body]
    assert len(changed) == len(plain) == 2
    assert all(body["messages"][0] == {"role": "system", "content": "Answer in one word."} for body in changed)
    assert sorted(body["messages"][1]["content"] for body in changed) == ["Name a fish.", "Name a tree."]
    assert all([m["role"] for m in body["messages"]] == ["user"] for body in plain)  # variant 1: the preset's

"""Browser: two Compare panes stream at the same time from a slow scripted server, and
`Stop generating` stops both and keeps their partial text.

`streamlit run app.py` runs as a subprocess. PLAYGROUND_SANDBOX_PORT points the app's "Local
sandbox" at a ScriptedServer in this process (it answers /healthz and the model list like the
sandbox does), so both panes stream 40 tokens at 50 ms each from it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_support import ANSWERS_JS, USER_BOX, chromium, screenshot, scripted_sandbox, streamlit_app, wait_idle
from tests.scripted_server import Reply
from tests.support import chat_requests, wait_for

TOKENS = [f"w{i:02d} " for i in range(40)]
FULL = "".join(TOKENS).strip()



@pytest.fixture
def app(tmp_path: Path):
    with scripted_sandbox(model="scripted/model", vendor=None) as server:
        server.default = Reply.stream_text(TOKENS, delay_s=0.05)
        with streamlit_app(tmp_path, server) as base:
            yield base, server


@pytest.mark.browser
def test_two_panes_fill_at_once_and_stop_keeps_partial_text(app) -> None:
    from playwright.sync_api import expect

    base, server = app
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # A deep link as the fresh server's first request: app.py still runs (its sidebar).
        page.goto(f"{base}/compare")
        expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible(timeout=60_000)
        expect(page.get_by_role("heading", name="Endpoint")).to_be_visible(timeout=30_000)
        # Write the user message in the shared conversation (open it when it is folded).
        message = page.locator(USER_BOX).last
        expect(page.get_by_text("Shared conversation", exact=True)).to_be_visible(timeout=30_000)
        if not message.is_visible():
            page.get_by_text("Shared conversation", exact=True).click()
        message.fill("Count from w00 to w39.")
        message.press("Tab")
        run_all = page.get_by_role("button", name="Run all")
        expect(run_all).to_be_enabled(timeout=60_000)
        run_all.click()

        # Sample both panes' text while they stream: both must grow before either finishes.
        # both panes part-way at the same moment, then both further on: they stream at once
        both_partial = page.wait_for_function(
            f"(full) => {{ const t = {ANSWERS_JS}.map(x => x.trim()).slice(0, 2); "
            "return t.length === 2 && t.every(x => x && x !== full) ? t : null; }", arg=FULL).json_value()
        screenshot(page, "compare-streaming.png", full_page=True)
        page.wait_for_function(
            f"([full, then]) => {{ const t = {ANSWERS_JS}.map(x => x.trim()).slice(0, 2); "
            "return t.length === 2 && (t.every((x, i) => x.length > then[i].length) || t.every(x => x === full)); }",
            arg=[FULL, both_partial])

        # When both finish, the summary table appears and both answers are complete.
        expect(page.get_by_text("Differences from the baseline").or_(page.get_by_text("Baseline"))).to_be_visible(
            timeout=30_000)
        page.wait_for_function(f"(full) => {ANSWERS_JS}.filter(t => t.trim() === full).length >= 2", arg=FULL,
                               timeout=30_000)
        screenshot(page, "compare-done.png", full_page=True)

        # Run again and stop part-way: both keep their partial text, marked as stopped.
        page.get_by_role("button", name="Run all").click()
        expect(page.get_by_role("button", name="Stop generating")).to_be_visible(timeout=15_000)
        page.wait_for_function(
            f"(full) => {{ const t = {ANSWERS_JS}.map(x => x.trim()); "
            "const old = [...document.querySelectorAll('summary')].filter(e => e.checkVisibility() && "
            "e.innerText.trim().endsWith('Details')); "  # nothing of the finished runs is left on screen
            "return t.length === 2 && old.length === 0 && t.every(x => x.length > 12 && x !== full); }", arg=FULL,
            timeout=30_000)
        page.get_by_role("button", name="Stop generating").click()
        stopped = page.get_by_text("Stopped by you").filter(visible=True)
        expect(stopped.first).to_be_visible(timeout=15_000)
        expect(stopped).to_have_count(2)
        page.wait_for_function(  # the live views are gone
            f"() => {{ const t = {ANSWERS_JS}; return t.length === 2 && !t.some(x => x.includes('▌')); }}",
            timeout=15_000)
        texts = [t.strip() for t in page.evaluate(ANSWERS_JS)]
        assert all(t and FULL.startswith(t) and t != FULL for t in texts), texts
        screenshot(page, "compare-stopped.png", full_page=True)

        page.get_by_role("link", name="History", exact=True).click()
        expect(page.get_by_text("Runs 1-4 of 4")).to_be_visible(timeout=30_000)
        screenshot(page, "history.png", full_page=True)
    streamed = [r for r in server.requests if r.path == "/v4/beta/chat/completions"]
    assert len(streamed) == 4


@pytest.mark.browser
def test_a_pane_sends_every_field_its_own_editor_sets(app) -> None:
    """Pane 2 sets frequency_penalty and a stop string in its own request editor (the whole
    form, as the Playground's): Run all sends them in pane 2's request and not in pane 1's, and
    pane 2 says so above its setup."""
    from playwright.sync_api import expect

    base, server = app
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 1600})
        page.goto(f"{base}/compare")
        expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible(timeout=90_000)
        wait_idle(page)
        page.get_by_text("Setup").nth(1).click()  # pane 2's
        for group in ("Penalties", "Length and stop"):
            wait_idle(page)
            page.get_by_text(group, exact=True).nth(1).click()
        penalty = page.locator(".st-key-cmp-1-p_frequency_penalty input")
        penalty.fill("1.5")
        penalty.press("Tab")
        stop = page.locator(".st-key-cmp-1-p_stop textarea")
        stop.fill("END")
        stop.press("Tab")
        # (the limit in max_tokens, the field the sandbox reads: issue 22)
        expect(page.get_by_text("Also sends: frequency_penalty, max_tokens, stop")).to_be_visible()
        before = len(chat_requests(server))
        page.get_by_role("button", name="Run all").click()
        wait_for(lambda: len(chat_requests(server)) == before + 2, 30, "both panes' requests")
        sent = sorted((r.json for r in chat_requests(server)[before:]), key=lambda body: "stop" in body)
        assert ("frequency_penalty" in sent[0], "stop" in sent[0]) == (False, False)  # pane 1's
        assert (sent[1]["frequency_penalty"], sent[1]["stop"]) == (1.5, "END")  # pane 2's
        assert sent[0]["messages"] == sent[1]["messages"]  # both on the shared conversation
        screenshot(page, "compare-pane-fields.png", full_page=True)

"""Browser: the Playground page in headless Chromium against `streamlit run app.py`.

The app's "Local sandbox" is pointed at a ScriptedServer in this process with
PLAYGROUND_SANDBOX_PORT (it answers /healthz and the model list as the sandbox does), so the
replies are exact and their pace is known: streamed text, a Stop mid-stream, and an answer
full of HTML that must show as text and run nothing.
"""

from __future__ import annotations

import pytest

from playground.runs.store import RunStore
from tests.browser_support import USER_BOX, answers, run_prompt, screenshot, settle, wait_answer
from tests.scripted_server import Reply
from tests.support import chat_requests, wait_for

pytestmark = pytest.mark.browser

STATS_JS = "Object.fromEntries([...document.querySelectorAll('.pg-stat')].map(e => [e.dataset.label, e.innerText]))"


def test_type_run_see_streamed_text_and_usage(page, server):
    tokens = [f"word{i} " for i in range(12)]
    server.add(Reply.stream_text(tokens, delay_s=0.08))
    run_prompt(page, "Count for me")
    # mid-stream: Stop generating is offered and part of the text is already there
    page.get_by_role("button", name="Stop generating").wait_for()
    wait_answer(page, "a[0].includes('word2') && !a[0].includes('word11')")
    # the end: the whole text and its usage
    page.get_by_text("Prompt tokens").wait_for()
    wait_answer(page, "a[0].includes('word11')")
    assert answers(page)[0].strip() == "".join(tokens).strip()
    stats = page.evaluate(STATS_JS)
    assert stats["Prompt tokens"] == "5" and stats["Completion tokens"] == "12" and stats["Total tokens"] == "17"
    assert stats["Finish reason"] == "stop"
    assert page.get_by_role("button", name="Stop generating").count() == 0
    sent = chat_requests(server)[-1].json
    assert sent["messages"] == [{"role": "user", "content": "Count for me"}] and sent["stream"] is True
    screenshot(page, "playground-run.png")


def test_html_in_the_answer_is_shown_as_text_and_runs_nothing(page, server):
    evil = ['<img src=x onerror="window.__pwned_img=1">', " and ", "<script>window.__pwned_script=1</script>",
            " [link](javascript:window.__pwned_link=1) **bold**"]
    server.add(Reply.stream_text(evil, delay_s=0.02))
    run_prompt(page, "Say something dangerous")
    page.get_by_text("Prompt tokens").wait_for()
    wait_answer(page, "a[0].includes('bold')")
    assert answers(page)[0].strip() == "".join(evil)
    page.get_by_text('<img src=x onerror="window.__pwned_img=1">').first.wait_for()
    settle(page)  # any injected handler has had its chance to fire
    pwned = page.evaluate("() => [window.__pwned_img, window.__pwned_script, window.__pwned_link]")
    assert pwned == [None, None, None]
    assert page.locator(".pg-answer img, .pg-answer script, .pg-answer a").count() == 0


def test_ctrl_enter_in_the_message_box_runs(page, server):
    server.add(Reply.stream_text(["Shortcut", " works"]))
    box = page.locator(USER_BOX).first
    box.click()
    box.type("Via the keyboard")
    box.press("Control+Enter")  # commits the text and runs, in one go
    page.get_by_text("Prompt tokens").wait_for()
    wait_answer(page, "a[0].includes('Shortcut works')")
    sent = chat_requests(server)[-1].json
    assert sent["messages"] == [{"role": "user", "content": "Via the keyboard"}]


def test_stop_generating_mid_stream_while_silent_and_before_the_first_byte(page, server, app_dir):
    """Three runs on one page, each stopped at a different point: what came stays, the
    connection closes, and the page is usable again for the next run."""
    from playwright.sync_api import expect

    # 1. mid-stream: the partial text stays and the server sees the connection close
    tokens = [f"t{i:02d} " for i in range(60)]
    server.add(Reply.stream_text(tokens, delay_s=0.1))
    run_prompt(page, "Go slowly")
    wait_answer(page, "a[0].includes('t03')")
    page.get_by_role("button", name="Stop generating").click()
    page.get_by_text("Stopped by you").wait_for()
    text = answers(page)[0].strip()
    assert text.startswith("t00 t01 t02 t03") and "t59" not in text
    assert page.evaluate(STATS_JS)["Finish reason"] == "cancelled"
    received = chat_requests(server)[-1]
    assert received.wait_closed(5) and not received.finished
    page.get_by_role("button", name="Run").wait_for()
    screenshot(page, "playground-stopped.png")

    # 2. two tokens, then the server holds the connection open and sends nothing more
    server.add(Reply.stream_text(["still ", "here"], done=False, include_usage=False, hold_open=True))
    run_prompt(page, "Then go quiet")
    wait_answer(page, "a[0].includes('still here')")
    expect(page.get_by_text("Stopped by you")).to_have_count(0)  # the run before is gone
    quiet = chat_requests(server)[-1]
    page.get_by_role("button", name="Stop generating").click()
    page.get_by_text("Stopped by you").wait_for()  # a server that never speaks again: only Stop ends it
    assert quiet.wait_closed(5) and not quiet.finished
    assert answers(page)[0].strip() == "still here"

    # 3. the server takes 8 s to send even its status line: Stop must not wait for it
    before = len(chat_requests(server))
    server.add(Reply.stream_text(["too", " late"], head_delay_s=8))
    run_prompt(page, "Take your time")
    stop = page.get_by_role("button", name="Stop generating")
    stop.wait_for()
    # the stopped run before is gone at once, so the "Stopped by you" awaited below is this run's
    expect(page.get_by_text("Stopped by you")).to_have_count(0)
    wait_for(lambda: len(chat_requests(server)) > before, 10, "the request to reach the server")
    slow = chat_requests(server)[-1]
    stop.click()
    page.get_by_text("Stopped by you").wait_for()
    assert slow.answered_at is None  # the page said so before the server had even sent its status line
    assert page.evaluate(STATS_JS)["Finish reason"] == "cancelled"
    assert not any("late" in answer for answer in answers(page))
    assert page.get_by_role("button", name="Stop generating").count() == 0
    assert page.locator(".st-key-run button >> visible=true").is_enabled()
    # recorded in the history: stopped, partial, with no text
    latest = RunStore(app_dir / "data" / "runs.sqlite3").list(limit=1)[0]
    assert latest.partial and latest.text_preview == "" and latest.error_kind is None

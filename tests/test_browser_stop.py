"""Browser: `Stop generating` works the same on every page that streams through the one run slot
(playground/ui/common/run_slot.py): the Playground and Compare have theirs in their own modules
(test_browser_playground, test_browser_live, test_browser_compare); here, History's rerun and the
Experiments matrix. The
stream stops at once, what came is kept and said, and the server sees the connection close."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from playground.client.run import ChoiceResult, Run
from playground.client.schema import ChatRequest
from playground.runs.store import RunStore
from tests.browser_support import ANSWERS_JS, open_page, put_preset, screenshot, wait_answer, wait_idle
from tests.scripted_server import Reply
from tests.support import chat_requests, wait_for

pytestmark = pytest.mark.browser

TOKENS = [f"t{i:02d} " for i in range(60)]  # 0.1 s apart: a 6 s answer


def test_stop_a_history_rerun_keeps_what_came_and_says_so(browser, server, app_url, app_dir):
    from playwright.sync_api import expect

    store = RunStore(app_dir / "data" / "runs.sqlite3")
    past = Run(endpoint="Local sandbox", started_at=datetime.now(timezone.utc),
               request=ChatRequest(model="scripted/scripted-model", stream=True,
                                   messages=[{"role": "user", "content": "Count to sixty."}]),
               choices=[ChoiceResult(text="t00 t01", finish_reason="stop")])
    store.save(past)
    server.add(Reply.stream_text(TOKENS, delay_s=0.1))
    with open_page(browser, f"{app_url}/history", "History") as page:
        try:
            page.get_by_role("combobox", name="Open a run").click()
            page.get_by_role("option").filter(has_text="t00 t01").first.click()
            wait_idle(page)
            before = len(chat_requests(server))
            page.get_by_role("button", name="Rerun").click()
            wait_answer(page, "a[0].includes('t03') && !a[0].includes('t59')", "history-stop-failure.png")
            page.get_by_role("button", name="Stop generating").click()
            expect(page.get_by_text("Rerun stopped: what came is saved and shown below.")).to_be_visible()
            expect(page.get_by_text("Stopped by you")).to_be_visible()
            shown = " ".join(page.evaluate(ANSWERS_JS))
            assert "t00 t01 t02 t03" in shown and "t59" not in shown
            screenshot(page, "history-stopped.png", full_page=True)
        except Exception:
            screenshot(page, "history-stop-failure.png", full_page=True)
            raise
    received = chat_requests(server)[before]
    assert received.wait_closed(5) and not received.finished
    runs = store.list(limit=2)
    stopped = store.get(runs[0].id)
    assert stopped.id != past.id and stopped.cancelled and stopped.partial
    assert stopped.text.startswith("t00 t01 t02 t03") and "t59" not in stopped.text


STOP_PRESET = {
    "schema_version": 1,
    "name": "Count slowly",
    "variables": [{"name": "n", "default": "1"}],
    "request": {"model": "scripted/scripted-model", "stream": True,
                "messages": [{"role": "user", "content": "Count from {{n}}."}]},
    "checks": [{"kind": "contains", "value": "t00"}],
}


def test_stop_an_experiment_keeps_the_finished_cells_and_says_it_stopped(browser, server, app_url, app_dir):
    """Three cases one at a time (the scripted sandbox serves one at once): the first answer comes
    whole, the second streams when Stop is pressed; the matrix keeps the first cell's pass, marks
    the second stopped, never sends the third, and says the run stopped."""
    from playwright.sync_api import expect

    put_preset(app_dir, STOP_PRESET, "n,expected,note\n1,,\n2,,\n3,,\n")
    server.route("/healthz", Reply.json(200, {"status": "ok", "parallel": 1}))  # a sandbox of one sequence
    server.add(Reply.stream_text(["t00 ", "t01"]))
    server.add(Reply.stream_text(TOKENS, delay_s=0.1))
    before = len(chat_requests(server))
    with open_page(browser, f"{app_url}/experiments", "Experiments") as page:
        try:
            preset = page.get_by_role("combobox", name="Preset")
            if preset.input_value() != "Count slowly":
                preset.click()
                page.get_by_role("option", name="Count slowly").click()
            wait_idle(page)
            page.get_by_role("spinbutton", name="Variants").fill("1")
            page.get_by_role("button", name="Run experiment").click()
            wait_for(lambda: len(chat_requests(server)) == before + 2 and chat_requests(server)[-1].events_sent >= 3,
                     30, "the second cell to be streaming")
            page.get_by_role("button", name="Stop").click()
            expect(page.get_by_text(re.compile(r"^Stopped: 2 of 3 request\(s\)"))).to_be_visible()
            screenshot(page, "experiments-stopped.png", full_page=True)
        except Exception:
            screenshot(page, "experiments-stop-failure.png", full_page=True)
            raise
    streaming = chat_requests(server)[before + 1]
    assert streaming.wait_closed(5) and not streaming.finished
    assert len(chat_requests(server)) == before + 2  # the third case was never sent

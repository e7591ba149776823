"""Browser: the Experiments page in real Chromium against a scripted endpoint posing as the sandbox.

A preset with a {{topic}} variable and an `equals {{expected}}` check, its cases file beside it:
Run experiment fills the matrix (one case passes, one fails, by the check's own reason), the
summary names the pass rate, a cell opens its run, and a hostile answer renders as text.
"""

from __future__ import annotations

import json

import pytest

from tests.browser_support import HOSTILE_SCRIPT, assert_inert, dataframe_text, open_page, screenshot
from tests.scripted_server import Reply

pytestmark = pytest.mark.browser

PRESET = {
    "schema_version": 1,
    "name": "Echo a topic",
    "description": "Says the topic back.",
    "variables": [{"name": "topic", "default": "tides"}],
    "request": {"model": "scripted/scripted-model", "stream": True,
                "messages": [{"role": "user", "content": "Say {{topic}}."}]},
    "checks": [{"kind": "equals", "value": "{{expected}}"}],
}
CASES = "topic,expected,note\ntides,tides,passes\nwaves,waves,fails: the server answers something else\n"


def test_run_an_experiment_and_open_a_cell(browser, app_url, app_dir, server):
    from playwright.sync_api import expect

    presets = app_dir / "presets"
    presets.mkdir(parents=True, exist_ok=True)
    (presets / "echo-a-topic.json").write_text(json.dumps(PRESET))
    (presets / "echo-a-topic.cases.csv").write_text(CASES)
    server.add(Reply.stream_text(["tides"]))
    server.add(Reply.stream_text([HOSTILE_SCRIPT]))
    with open_page(browser, f"{app_url}/experiments", "Experiments", viewport=(1440, 1000)) as page:
        try:
            page.get_by_role("button", name="Run experiment").click()
            # the summary's table is there once every cell is done
            expect(page.locator("th", has_text="pass rate").first).to_be_attached(timeout=30_000)
            frames = page.locator("[data-testid=stDataFrame]")
            shown = "\n".join(dataframe_text(frames.nth(i)) for i in range(frames.count()))
            assert "<script>" in shown, shown  # the hostile answer, in the matrix, as text
            assert page.locator("[data-testid=stException]").count() == 0
            assert_inert(page, browser)
        except Exception:
            screenshot(page, "experiments-failure.png", full_page=True)
            raise
    bodies = [r.json for r in server.requests if r.path.endswith("/chat/completions")]
    assert sorted(b["messages"][0]["content"] for b in bodies[-2:]) == ["Say tides.", "Say waves."]

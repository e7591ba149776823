"""Browser: rough edges a demanding user hit (issue 13), in real Chromium at 1440x900.

- History says how each run ended (ok, failed, partial, stopped), what it was asked, its tokens
  and latency; what a run never had is an empty cell.
- "Send to Compare" brings the run's conversation along: Run all compares at once, with no red
  warning before anything was tried.
- Compare's summary and baseline tables show every column (completion tokens and latency
  included) without scrolling sideways beside the sidebar at 1440 px.
- Repeat counts the server's tokens and gives no determinism verdict without a seed.

One app process (tests/conftest.py's `server` posing as the sandbox, `app_url`) serves the module.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from playground.client.run import ChoiceResult, Run, RunError
from playground.client.schema import ChatRequest, Usage
from playground.runs.store import RunStore
from tests.browser_support import choose, dataframe_text, open_page, screenshot, wait_idle
from tests.scripted_server import Reply

pytestmark = pytest.mark.browser

VIEWPORT = (1440, 900)
CHAT_PATH = "/v4/beta/chat/completions"
ANSWER = ["Red", " is", " warm", "."]  # 4 tokens by the server's count, 7 words and spaces
# How a st.dataframe sits: its grid's scroller (wider content than box means a sideways scroll)
# and the element's box in the window.
MEASURE_JS = """el => { const s = el.querySelector('.dvn-scroller'); const r = el.getBoundingClientRect();
    return {scroll: s.scrollWidth, client: s.clientWidth, right: r.right}; }"""


@pytest.fixture(scope="module", autouse=True)
def answers(server):
    server.default = Reply.stream_text(ANSWER)


def stored_run(n: int, prompt: str, **fields) -> Run:
    return Run(**{"endpoint": "Local sandbox", "started_at": datetime.now(timezone.utc) - timedelta(minutes=n),
                  "request": ChatRequest(model="scripted/model", messages=[{"role": "user", "content": prompt}]),
                  "ttft_s": 0.05, "total_s": 0.25, **fields})


def fits(table, *headers: str) -> str:
    """The table's text, once it is sure every column shows without a sideways scroll."""
    text = dataframe_text(table)
    header = text.splitlines()[0].split("\t")
    assert all(name in header for name in headers), header
    box = table.evaluate(MEASURE_JS)
    assert box["scroll"] <= box["client"] and box["right"] <= VIEWPORT[0], box
    return text


def test_history_says_how_each_run_ended_and_leaves_unknowns_empty(browser, app_url, app_dir):
    ok = stored_run(1, "Which colour is warm?", choices=[ChoiceResult(text="Red.", finish_reason="stop")],
                    usage=Usage(prompt_tokens=5, completion_tokens=2, total_tokens=7))
    failed = stored_run(2, "Ask the wrong model", error=RunError(kind="not_found", message="no such model",
                                                                 status_code=404), total_s=None, ttft_s=None)
    stopped = stored_run(3, "Count to a hundred", choices=[ChoiceResult(text="1 2 3")], cancelled=True, partial=True)
    cut = stored_run(4, "Tell a long story", choices=[ChoiceResult(text="Once upon")], partial=True)
    RunStore(app_dir / "data" / "runs.sqlite3").save_many([ok, failed, stopped, cut])
    with open_page(browser, f"{app_url}/history", "History", viewport=VIEWPORT) as page:
        page.get_by_text("Runs 1-4 of 4").wait_for()
        table = page.get_by_test_id("stDataFrame").first
        try:
            text = fits(table, "status", "prompt", "answer", "tokens", "latency (s)")
            rows = {row.split("\t")[3]: row.split("\t") for row in text.splitlines()[1:]}
            warm = rows["Which colour is warm?"]
            assert [warm[1], *warm[4:7]] == ["ok", "Red.", "7", "0.25"]
            assert rows["Ask the wrong model"][1] == "failed"
            assert rows["Ask the wrong model"][4] == "error 404: no such model"  # not a blank row
            assert rows["Ask the wrong model"][5:7] == ["", ""]  # no tokens, no latency: empty cells
            assert rows["Count to a hundred"][1] == "stopped" and rows["Tell a long story"][1] == "partial"
            assert "None" not in text
        except Exception:
            screenshot(page, "rough-history-failure.png")
            raise
        screenshot(page, "rough-history.png")


def test_send_to_compare_then_run_all_and_the_tables_fit_at_1440(browser, server, app_url, app_dir):
    from playwright.sync_api import expect

    past = stored_run(0, "Name a warm colour.", choices=[ChoiceResult(text="Orange.", finish_reason="stop")],
                      usage=Usage(prompt_tokens=5, completion_tokens=2, total_tokens=7))
    RunStore(app_dir / "data" / "runs.sqlite3").save(past)
    with open_page(browser, f"{app_url}/history", "History", viewport=VIEWPORT) as page:
        try:
            choose(page, page.get_by_test_id("stSelectbox").filter(has_text="Open a run"),
                   page.get_by_role("option").filter(has_text="Orange."))
            page.get_by_role("button", name="Send to Compare").click()
            expect(page.get_by_text(f"Past run {past.id[:8]}")).to_be_visible()
            # nothing tried yet: no warning, red or otherwise
            expect(page.get_by_text("Write a user message first")).to_have_count(0)
            sent_before = len([r for r in server.requests if r.path == CHAT_PATH])
            page.get_by_role("button", name="Run all").click()
            expect(page.get_by_text("Every run was asked: Name a warm colour.")).to_be_visible()
            wait_idle(page)
            # the one note left is the token diff's hint (neither run has logprobs): no error, no warning.
            # It is drawn below the runs, so it can come after the page first looks idle: wait for it.
            expect(page.get_by_test_id("stAlert").filter(has_text="The token diff needs logprobs")).to_be_visible()
            wait_idle(page)
            alerts = page.get_by_test_id("stAlert").all_inner_texts()
            assert [text.startswith("The token diff needs logprobs") for text in alerts] == [True], alerts
            sent = [r.json for r in server.requests if r.path == CHAT_PATH][sent_before:]
            assert [body["messages"] for body in sent] == [[{"role": "user", "content": "Name a warm colour."}]]

            summary = page.get_by_test_id("stDataFrame").filter(visible=True).first
            summary.scroll_into_view_if_needed()
            text = fits(summary, "run", "status", "completion tokens", "latency (s)", "TTFT (s)", "tokens/s")
            assert len(text.splitlines()) == 3 and "\tok\t2\t0.25\t" in text and "\tok\t4\t" in text

            choose(page, page.get_by_role("combobox", name="Baseline"),
                   page.get_by_role("option").filter(has_text="Pane 1"))
            expect(page.get_by_text("Differences from the baseline")).to_be_visible()
            deltas = page.get_by_test_id("stDataFrame").filter(visible=True).nth(1)
            fits(deltas, "Δ completion tokens", "Δ latency (s)", "diverges at")
            screenshot(page, "rough-compare-tables.png")

            # Repeat, without a seed: the server's token counts, and no determinism verdict
            page.locator(".st-key-cmp-repeat_go button").click()
            metric = page.get_by_test_id("stMetric").filter(has_text="Deterministic")
            expect(metric).to_contain_text("n/a")
            samples = page.get_by_test_id("stDataFrame").filter(visible=True).last
            samples.scroll_into_view_if_needed()
            rows = [row.split("\t") for row in dataframe_text(samples).splitlines()]
            column = rows[0].index("completion tokens")
            assert {row[column] for row in rows[1:]} == {"4"}, rows
            assert "tokens" not in rows[0] and "forks from sample 1 at (word)" in rows[0]
        except Exception:
            screenshot(page, "rough-compare-failure.png")
            raise
        screenshot(page, "rough-repeat.png")

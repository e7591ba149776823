"""Browser: History at the second hour (issue 22) in headless Chromium: rows ticked in the table
become a cases file; feedback given to a run is there after a reload and found by search."""

from __future__ import annotations

import pytest

from playground.client.schema import ChatRequest
from playground.experiments.cases import parse_cases
from playground.presets import Preset, PresetStore, fill_variables
from playground.runs.store import RunStore
from tests.browser_support import open_page, screenshot, settle, wait_idle
from tests.support import run_of, wait_for

pytestmark = pytest.mark.browser

TEMPLATE = ChatRequest.from_wire({"model": "m", "messages": [{"role": "user", "content": "Capital of {{country}}?"}]})


@pytest.fixture(scope="module")
def runs(app_dir):
    """Two runs of the Capitals preset and, newest, one of no preset: the table lists the latter,
    then Peru, then France."""
    PresetStore(app_dir / "presets").save(Preset.new("Capitals", TEMPLATE))
    made = []
    for country, answer in (("France", "Paris"), ("Peru", "Lima")):
        run = run_of(answer, prompt="x", preset="Capitals")
        run.request = fill_variables(TEMPLATE, {"country": country})
        made.append(run)
    store = RunStore(app_dir / "data" / "runs.sqlite3")
    store.save(run_of("no preset here", prompt="hello"), source="playground")
    for run in made:
        store.save(run, source="playground")
    return store


def tick_row(page, row: int) -> None:
    """Tick row `row` (0: the first) of the History table: its check box in the row-marker column."""
    grid = page.get_by_test_id("stDataFrame").first
    box = grid.bounding_box()
    header, height = 36, 35  # the grid's header and row heights in px (Streamlit's defaults)
    page.mouse.click(box["x"] + 12, box["y"] + header + height * row + height / 2)
    wait_idle(page)


def test_ticked_rows_become_a_cases_file(browser, app_url, runs):
    with open_page(browser, app_url + "/history", "History") as page:
        page.get_by_text("Tick rows to make a cases file").wait_for()
        tick_row(page, 1)
        tick_row(page, 2)
        page.get_by_text("2 run(s) selected → capitals.cases.csv.").wait_for()
        page.get_by_text("Run ").first.wait_for()  # the row ticked last is opened
        screenshot(page, "history-cases.png", full_page=True)
        with page.expect_download() as download:
            page.get_by_role("button", name="Make a cases file").click()
        data = open(download.value.path(), "rb").read()
        cases = parse_cases(data, "capitals.cases.csv", ["country"]).cases
        assert sorted((c.values["country"], c.expected) for c in cases) == [("France", "Paris"), ("Peru", "Lima")]
        tick_row(page, 0)  # a run of no preset joins: no file, and why
        page.get_by_text("select runs of the same preset").wait_for()


def test_feedback_stays_after_a_reload_and_is_searched(browser, app_url, runs):
    newest = runs.list()[0]
    with open_page(browser, app_url + "/history", "History") as page:
        page.get_by_role("combobox", name="Open a run").click()
        page.get_by_role("option").filter(has_text=newest.text_preview).first.click()
        page.locator("summary").filter(has_text="Feedback").click()
        settle(page)
        screenshot(page, "history-feedback.png", full_page=True)
        page.get_by_role("radio", name="4 out of 5 stars").click()
        page.get_by_label("Comment").fill("Spot on, and short")
        page.get_by_label("Tags (comma separated)").fill("geography, short")
        page.get_by_label("Tags (comma separated)").press("Tab")
        wait_idle(page)
        page.get_by_role("button", name="Save feedback").click()
        page.get_by_text("Feedback saved.").wait_for()
        wait_for(lambda: runs.summary(newest.id).comment == "Spot on, and short", 10, "the feedback saved")
        saved = runs.summary(newest.id)
        assert (saved.score, saved.tags) == (4, "geography, short")
        page.get_by_role("textbox", name="Search").fill("spot on")
        page.get_by_role("textbox", name="Search").press("Enter")
        wait_idle(page)
        wait_for(lambda: page.get_by_text("Runs 1-1 of 1").count() == 1, 10, "one run found by its comment")

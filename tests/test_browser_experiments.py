"""Browser: the Experiments page in real Chromium, against a scripted endpoint posing as the sandbox
and on the real local model.

A preset with a {{topic}} variable and an `equals {{expected}}` check, its cases file beside it:
Run experiment fills the matrix (one case passes, one fails, by the check's own reason), the
summary names the pass rate, a cell opens its run, and a hostile answer renders as text.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.browser_support import (
    HOSTILE_SCRIPT,
    assert_inert,
    choose,
    dataframe_text,
    expect_texts,
    open_page,
    put_preset,
    screenshot,
    streamlit_app,
    wait_idle,
)
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

    put_preset(app_dir, PRESET, CASES)
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


ROW_PX = 35  # Streamlit's data editor: the header and each row are 35 px high
MARKER_PX = 40  # a dynamic editor's row-marker column (its checkboxes) is narrower than this


def select_cell(page, editor, column: int) -> None:
    """Select the first row's cell of `column` (0: the first) of a st.data_editor, as a user does:
    click the row's first cell, arrow across. The grid draws on a canvas; its accessible table
    says which cell is selected."""
    from playwright.sync_api import expect

    wait_idle(page)  # a click on an element the page is redrawing can be lost
    editor.scroll_into_view_if_needed()
    canvas = editor.locator("canvas").first.bounding_box()
    selected = editor.locator("canvas table td[aria-selected=true]")
    first = (canvas["x"] + MARKER_PX + 20, canvas["y"] + ROW_PX * 1.5)
    page.mouse.click(*first)
    try:
        expect(selected).to_have_attribute("id", "glide-cell-1-0", timeout=2_000)
    except AssertionError:  # a grid left with a selection takes the first click to drop it
        page.mouse.click(*first)
        expect(selected).to_have_attribute("id", "glide-cell-1-0")
    for _ in range(column):
        page.keyboard.press("ArrowRight")
    expect(selected).to_have_attribute("id", f"glide-cell-{column + 1}-0")


def edit_cell(page, editor, column: int, text: str) -> None:
    """Type `text` into the first row's cell of `column`: Enter opens the cell's editor, Enter commits."""
    from playwright.sync_api import expect

    cell = editor.locator(f"canvas table td#glide-cell-{column + 1}-0")
    for attempt in range(3):
        select_cell(page, editor, column)
        page.keyboard.press("Enter")
        box = page.locator("textarea.gdg-input").first
        expect(box).to_be_visible()
        box.press("ControlOrMeta+a")
        box.press_sequentially(text) if text else box.press("Backspace")
        expect(box).to_have_value(text)
        box.press("Enter")
        expect(box).to_have_count(0)
        try:
            expect(cell).to_have_text(text, timeout=5_000)
            break
        except AssertionError:
            # The grid (glide-data-grid, wider than the window since the checks gained columns)
            # now and then drops an overlay editor's commit as it scrolls the cell into view: the
            # user types it again. What the app does with an edit is checked after each call.
            if attempt == 2:
                raise
    wait_idle(page)


def test_a_check_edited_in_its_table_grades_the_run_and_is_saved(browser, app_url, app_dir, server):
    """The checks table driven as a user drives it: a bad row blocks Run, a good edit grades the
    next run and Save checks writes it into the preset file."""
    from playwright.sync_api import expect

    presets = put_preset(app_dir, PRESET, CASES)
    with open_page(browser, f"{app_url}/experiments", "Experiments", viewport=(1440, 1200)) as page:
        try:
            wait_idle(page)
            checks = page.locator("[data-testid=stDataFrame]").filter(has_text="ignore case").first
            assert dataframe_text(checks).splitlines()[1].split("\t")[:2] == ["equals", "{{expected}}"]
            edit_cell(page, checks, 3, "a, b")  # labels on an equals check: not a valid check
            row_error = "Row 1: labels belong to a min_confidence check and need at least one non-blank label"
            expect(page.get_by_text(row_error)).to_be_visible()
            sent = len(chat_requests(server))
            page.get_by_role("button", name="Run experiment").click()
            expect(page.get_by_text(re.compile("^Fix the checks first"))).to_be_visible()
            assert len(chat_requests(server)) == sent  # nothing was sent

            edit_cell(page, checks, 3, "")
            expect(page.get_by_text(row_error)).to_have_count(0)
            edit_cell(page, checks, 1, "tides")  # every answer must now be "tides"
            server.add(Reply.stream_text(["tides"]))
            server.add(Reply.stream_text(["tides"]))
            page.get_by_role("button", name="Run experiment").click()
            expect(page.locator("th", has_text="pass rate").first).to_be_attached(timeout=30_000)
            wait_idle(page)
            matrix = page.locator("[data-testid=stDataFrame]").filter(has_text="1. scripted/").first
            rows = [row.split("\t") for row in dataframe_text(matrix).splitlines()[1:]]
            # by the preset's own check the second case (expected "waves") would fail; a mark for the change
            # since an earlier run (🟢 fixed) may come before the cell's own
            marks = [(row[1], next((c for c in row[-1] if c in "✅❌"), "")) for row in rows]
            assert marks == [("topic=tides", "✅"), ("topic=waves", "✅")], rows

            page.get_by_role("button", name="Save checks").click()
            expect(page.get_by_text("Saved 1 check(s) to echo-a-topic.json.")).to_be_visible()
            assert json.loads((presets / "echo-a-topic.json").read_text())["checks"] == [
                {"kind": "equals", "value": "tides"}]
            assert page.locator("[data-testid=stException]").count() == 0
        except Exception:
            screenshot(page, "experiments-checks-failure.png", full_page=True)
            raise


SENTIMENT = {
    "schema_version": 1,
    "name": "Mini sentiment",
    "description": "good or bad, read through the label logprobs.",
    "variables": [{"name": "review", "default": "Lovely."}],
    "request": {"model": "local/smollm2-135m-instruct", "temperature": 0, "max_completion_tokens": 2,
                "logprobs": True, "top_logprobs": 5, "stream": True,
                "messages": [{"role": "system", "content": "Answer with one word: good or bad."},
                             {"role": "user", "content": "Review: {{review}}\nIs this review good or bad?"}]},
    "checks": [{"kind": "min_confidence", "limit": 0.01, "labels": ["good", "bad"]}],
}
IMPORTED = ("review,expected,note\n"
            "\"I loved it, wonderful.\",good,\n"
            "\"Awful, broken on arrival.\",bad,\n"
            f"\"{HOSTILE_SCRIPT.replace(chr(34), chr(34) * 2)} was fine\",good,hostile text in a case\n")


@pytest.fixture(scope="module")
def local_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("experiments-local")
    (folder / "presets").mkdir()
    (folder / "presets" / "mini-sentiment.json").write_text(json.dumps(SENTIMENT))
    return folder


@pytest.fixture(scope="module")
def local_app(local_dir, sandbox):
    """The app on the real local model (the session's sandbox); its data in local_dir/data."""
    with streamlit_app(local_dir, sandbox) as base:
        yield base


def test_import_cases_run_two_variants_on_the_local_model_and_see_a_cells_heatmap(browser, local_app,
                                                                                 local_dir) -> None:
    from playwright.sync_api import expect

    with open_page(browser, f"{local_app}/experiments", "Experiments", viewport=(1440, 1400)) as page:
        try:
            page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(
                files=[{"name": "reviews.csv", "mimeType": "text/csv", "buffer": IMPORTED.encode()}])
            expect(page.get_by_text("Imported 3 case(s) from reviews.csv.")).to_be_visible()
            expect(page.get_by_text("3 case(s) × 1 variant(s)")).to_be_visible()
            variants = page.get_by_role("spinbutton", name="Variants")
            variants.fill("2")
            variants.press("Tab")
            expect(page.get_by_text("3 case(s) × 2 variant(s) × 1 repeat(s) = 6 request(s).")).to_be_visible()
            # variant 2 changes its temperature in its own request editor (its Sampling group)
            page.get_by_text("Edit this variant's request").nth(1).click()
            page.get_by_role("tab", name="Parameters").filter(visible=True).click()  # variant 1's is folded away
            page.get_by_text("Sampling", exact=True).filter(visible=True).click()
            temperature = page.locator(".st-key-exp-v1-p_temperature input")
            temperature.fill("1")
            temperature.press("Tab")
            wait_idle(page)
            page.get_by_role("button", name="Run experiment").click()
            expect(page.get_by_text(re.compile(r"^Finished: 6 of 6 request\(s\)"))).to_be_visible(timeout=60_000)
            wait_idle(page)
            matrix_frame = page.locator("[data-testid=stDataFrame]").filter(has_text="2. local/").first
            expect(matrix_frame).to_be_attached()
            matrix = dataframe_text(matrix_frame)
            header, *rows = [row.split("\t") for row in matrix.splitlines()]
            assert len(rows) == 3 and any(h.startswith("2. ") and "temperature=1" in h for h in header), matrix
            marks = [cell[:1] for row in rows for cell in row[-2:]]
            assert len(marks) == 6 and all(mark in ("✅", "❌") for mark in marks), matrix  # every cell graded
            # a cell's run: the Playground's run view with its token heatmap
            case = page.get_by_role("combobox", name="Case", exact=True)
            choose(page, case, page.get_by_role("option").filter(has_text="Case 2").first)
            expect(case).to_have_value(re.compile(r"^Case 2"))
            expect(page.locator(".pg-heatmap").first).to_be_visible()
            tokens = cell_run(local_dir, case=1, variant=0).choices[0].logprobs  # the picked cell's stored run
            spans = page.locator(".pg-heatmap span[data-pos]")
            assert len(tokens) >= 1
            expect_texts(spans, [t.token.replace("\n", "\u21b5") or "\u200b" for t in tokens])
            assert page.locator("[data-testid=stException]").count() == 0
            assert_inert(page, browser)  # the case text with a <script> in it ran nothing
        except Exception:
            screenshot(page, "experiments-local-failure.png", full_page=True)
            raise


def chat_requests(server) -> list:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def cell_run(folder, case: int, variant: int):
    """The Run of one cell of the app's latest experiment run, from its run store."""
    from playground.experiments import ExperimentStore

    store = ExperimentStore(folder / "data" / "runs.sqlite3")
    result = store.get(store.list(limit=1)[0].id)
    trial = next(t for t in result.trials if (t.case, t.variant) == (case, variant))
    return store.runs.get(trial.run_id)


GRADED = {
    "schema_version": 1,
    "name": "Capital, graded",
    "description": "A rubric check: the model under test answers, a grader rates the answer from 1 to 5.",
    "variables": [{"name": "country", "default": "France"}],
    "request": {"model": "scripted/scripted-model", "stream": True,
                "messages": [{"role": "user", "content": "The capital of {{country}}?"}]},
    "checks": [{"kind": "rubric", "value": "Is the answer the capital of {{country}}?"}],
}


def test_a_rubric_checks_cell_shows_the_graders_score_and_confidence(browser, app_url, app_dir, server):
    """The grader (the scripted endpoint, asked with the grader's system prompt) puts 0.7 on "4",
    0.2 on "5" and 0.1 on "2": rating 4.0, score 0.75, 90% sure of a pass. The matrix's cell and the
    cell's checks table show both."""
    import math

    from playwright.sync_api import expect

    from playground.experiments.grader import SYSTEM
    from tests.scripted_server import token_logprob

    put_preset(app_dir, GRADED, "country,expected,note\nFrance,Paris,\n")
    grade = [token_logprob("4", math.log(0.7), [("4", math.log(0.7)), ("5", math.log(0.2)), ("2", math.log(0.1))])]

    def respond(received):
        if received.json["messages"][0]["content"] == SYSTEM:
            return Reply.stream_text(["4"], logprobs=grade)
        return Reply.stream_text(["Paris"])

    server.respond = respond
    with open_page(browser, f"{app_url}/experiments", "Experiments", viewport=(1440, 1400)) as page:
        try:
            if page.get_by_role("combobox", name="Preset").input_value() != GRADED["name"]:
                page.get_by_role("combobox", name="Preset").click()
                page.get_by_role("option", name=GRADED["name"]).click()
            wait_idle(page)
            page.get_by_role("button", name="Run experiment").click()
            expect(page.locator("th", has_text="pass rate").first).to_be_attached(timeout=30_000)
            wait_idle(page)
            matrix = page.locator("[data-testid=stDataFrame]").filter(has_text="1. scripted/").first
            row = dataframe_text(matrix).splitlines()[1].split("\t")
            assert row[-1].startswith("✅ Paris · score 0.75 · grader 90% sure"), row
            checks = page.locator("[data-testid=stDataFrame]").filter(has_text="grader confidence").first
            expect(checks).to_be_attached()
            cells = dataframe_text(checks).splitlines()[1].split("\t")
            assert cells[:5] == ["✅", "rubric Is the answer the capital of {{country}…", "0.75", "90%", "1"], cells
            assert cells[5] == "score 0.75 >= 0.50 (rating 4.00/5 from logprobs, 90% sure)", cells
            assert page.locator("[data-testid=stException]").count() == 0
        except Exception:
            screenshot(page, "experiments-rubric-failure.png", full_page=True)
            raise
        finally:
            server.respond = None
    graded = [r.json for r in server.requests if r.path.endswith("/chat/completions")
              and r.json["messages"][0]["content"] == SYSTEM]
    assert graded and graded[-1]["logprobs"] is True and "Paris" in graded[-1]["messages"][1]["content"]

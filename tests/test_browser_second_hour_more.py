"""Browser proof of the rest of issue 22's "Experiments and History at the second hour" bullets,
and of Compare's "Also sends:" line for a setting carried over from the Playground: each test
does what the user does in headless Chromium against one `streamlit run app.py` (the conftest's
module-scoped app, its Local sandbox a scripted server) and asserts what the page shows and what
the server received.

- Experiments: the "Compare against" picker lists the earlier runs of the experiment (cases,
  date, id) and the comparison follows the run picked;
- Experiments: a cell's latency runs from its request's send, its wait for a free slot is the
  summary's "mean queued (s)";
- Experiments: calibration's sentence says what "right" means against the pass rate;
- History: the "Came from" filter; an experiment's cells hidden, then listed under their run;
- Compare: each pane says it also sends the Playground's response_format, and sends it.
"""

from __future__ import annotations

import math
import re
import time

import pytest

from playground.client.run import ChoiceResult, Run
from playground.client.schema import ChatRequest
from playground.runs.store import RunStore
from tests.browser_support import (
    choose,
    dataframe_text,
    open_page,
    put_preset,
    run_prompt,
    screenshot,
    streamlit_app,
    wait_answer,
    wait_idle,
)
from tests.scripted_server import Reply, token_logprob
from tests.support import chat_requests
from tests.test_browser_second_hour import experiments_page, load_preset_in_playground, sent

pytestmark = pytest.mark.browser

SCRIPTED_MODEL = "scripted/scripted-model"


def preset(name: str, prompt: str, variable: str, checks: list[dict], **request) -> dict:
    return {"schema_version": 1, "name": name, "variables": [{"name": variable, "default": "x"}],
            "request": {"model": SCRIPTED_MODEL, "stream": True, "messages": [{"role": "user", "content": prompt}],
                        **request},
            "checks": checks}


EQUALS = {"kind": "equals", "value": "{{expected}}", "ignore_case": True}
BASELINES = preset("Baseline picks", "Is the {{fruit}} ripe?", "fruit", [EQUALS])
QUEUED = preset("Queued cells", "Count {{n}}.", "n", [{"kind": "contains", "value": "{{expected}}"}])
CALIBRATED = preset("Calibrated labels", "Classify: {{text}}", "text",
                    [EQUALS, {"kind": "min_confidence", "limit": 0.8}], logprobs=True, top_logprobs=2)
GROUPED = preset("Grouped cells", "Grouped question {{n}}?", "n", [{"kind": "contains", "value": "{{expected}}"}])
SCHEMA = {"type": "json_schema", "json_schema": {"name": "cat", "strict": True, "schema": {
    "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
    "additionalProperties": False}}}
TWINS = preset("Twin runs", "Twin question {{n}}?", "n", [{"kind": "contains", "value": "{{expected}}"}])
STRUCTURED = {"schema_version": 1, "name": "Structured reply",
              "request": {"model": SCRIPTED_MODEL, "stream": True, "response_format": SCHEMA,
                          "messages": [{"role": "user", "content": "Name a cat, as JSON."}]}}
PRESETS = [(BASELINES, "fruit,expected,note\napple,yes,\npear,yes,\n"),
           (QUEUED, "n,expected,note\none,ok,\ntwo,ok,\nthree,ok,\nfour,ok,\n"),
           # alpha, gamma: right at 90%; beta: right at 60% (fails the 0.8 floor); delta: wrong at 90%
           (CALIBRATED, "text,expected,note\nalpha,positive,\nbeta,positive,\ngamma,positive,\ndelta,positive,\n"),
           (GROUPED, "n,expected,note\none,answer,\ntwo,answer,\n"),
           (TWINS, "n,expected,note\none,answer,\n"), (STRUCTURED, None)]


@pytest.fixture(scope="module")
def app_url(server, app_dir):
    for each, cases in PRESETS:  # before the app starts: every page lists them from its first run
        put_preset(app_dir, each, cases)
    with streamlit_app(app_dir, server) as base:
        yield base


WIDE = (1920, 1600)  # Experiments' summary table shows all its columns (the grid draws only those in view)
HEALTHY = Reply.json(200, {"status": "ok"})


@pytest.fixture(autouse=True)
def plain_answers(server):
    """Every test starts from a server that answers anything at once, and leaves it so."""
    server.default = Reply.stream_text(["Fine", "."])
    server.respond = None
    yield
    server.respond = None
    server.route("/healthz", HEALTHY)


def user_text(received) -> str:
    return received.json["messages"][-1]["content"]


def table(page, header: str, until: str | re.Pattern | None = None) -> list[dict[str, str]]:
    """The first st.dataframe with a column named `header`, as a list of {column: cell} rows;
    once a cell reads `until` (the whole text, or a pattern) when given: a table redrawn after a
    pick can still hold the rows before it a moment."""
    from playwright.sync_api import expect

    named = page.locator("th", has_text=re.compile(rf"^{re.escape(header)}$"))
    frame = page.get_by_test_id("stDataFrame").filter(has=named).first
    expect(frame).to_be_attached()
    if until is not None:
        wanted = until if isinstance(until, re.Pattern) else re.compile(rf"^{re.escape(until)}$")
        expect(frame.locator("canvas table td").filter(has_text=wanted).first).to_be_attached()
    wait_idle(page)
    rows = [row.split("\t") for row in dataframe_text(frame).splitlines()]
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def run_once(page, server, cells: int, previous: str | None = None) -> str:
    """Press Run experiment; once its `cells` requests were sent and the result (a run other than
    `previous`) shows, the new run's short id."""
    from playwright.sync_api import expect

    before = len(chat_requests(server))
    page.get_by_role("button", name="Run experiment").click()
    sent(server, before, cells, f"the experiment's {cells} requests")
    other = rf"(?!{previous})" if previous else ""
    caption = page.get_by_text(re.compile(rf"^Finished: {cells} of {cells} request\(s\) · run {other}\S{{8}} of "))
    expect(caption).to_be_visible(timeout=30_000)
    wait_idle(page)
    return re.search(r"· run (\S{8}) of", caption.inner_text()).group(1)


def options_of(page, combobox) -> list[str]:
    """The names of a st.selectbox's options, as its open list shows them (closed again after).
    A rerun that redraws the box as it is clicked closes its list: opened again, as choose() does."""
    for attempt in range(3):
        combobox.scroll_into_view_if_needed()  # (a list opened by a click that scrolls closes again)
        combobox.click()
        try:
            page.get_by_role("option").first.wait_for(timeout=5_000)
            break
        except Exception:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
            wait_idle(page)
    names = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    wait_idle(page)
    return names


def sidebar_page(page, name: str) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebar").get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    wait_idle(page)


# --- Experiments ------------------------------------------------------------------------------


def test_compare_against_lists_the_earlier_runs_and_the_comparison_follows_the_pick(browser, app_url, server):
    """Three runs of one experiment (apple, pear: yes yes; then no no; then yes no). The third is
    compared with the second first (1 fix); "Compare against" lists both earlier runs with their
    case counts, dates and ids; picking the first makes the caption name it, with 1 regression."""
    from playwright.sync_api import expect

    answers = {}
    server.respond = lambda received: Reply.stream_text(
        [answers["apple" if "apple" in user_text(received) else "pear"]])
    with open_page(browser, f"{app_url}/experiments", "Experiments", viewport=WIDE) as page:
        try:
            experiments_page(page, BASELINES["name"])
            answers.update(apple="yes", pear="yes")
            first = run_once(page, server, 2)
            answers.update(apple="no", pear="no")
            second = run_once(page, server, 2, previous=first)
            answers.update(apple="yes", pear="no")
            third = run_once(page, server, 2, previous=second)
            assert len({first, second, third}) == 3
            caption = page.get_by_text(re.compile(r"^Run \S{8} of \d{4}-\d\d-\d\d \d\d:\d\d UTC: "))
            expect(caption).to_contain_text(f"Run {second} of ")  # the newest finished run, first
            expect(caption).to_contain_text("0 regression(s), 1 fix(es)")

            picker = page.get_by_role("combobox", name="Compare against")
            listed = options_of(page, picker)
            assert len(listed) == 2, listed
            for label, run in zip(listed, (second, first)):  # newest first, each with its cases and date
                assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC · finished · 2 case\(s\), 2 of 2 cell\(s\) done, "
                                    rf"\d passed · {run}", label), listed
            assert [label.split(" · ")[-1] for label in listed] == [second, first]
            assert "2 passed" in listed[1] and "0 passed" in listed[0]
            choose(page, picker, page.get_by_role("option").filter(has_text=first))
            expect(caption).to_contain_text(f"Run {first} of ")
            expect(caption).to_contain_text("1 regression(s), 0 fix(es), 1 changed answer(s) over 2 matched cell(s)")
            # the table of changes and the matrix's mark follow the run picked
            changes = table(page, "before", until="fruit=pear")
            assert [(row["change"], row["case"], row["before"], row["after"]) for row in changes] == [
                ("🔴 regressed", "fruit=pear", "yes", "no")], changes
            matrix = table(page, "#", until=re.compile(r"^🔴 ❌ no"))
            pear = next(row for row in matrix if row["case"] == "fruit=pear")
            assert pear[next(name for name in pear if name.startswith("1. "))].startswith("🔴 ❌"), matrix
            caption.scroll_into_view_if_needed()
            screenshot(page, "second-hour-more-compare-against.png", full_page=True)
        except Exception:
            screenshot(page, "second-hour-more-compare-against-failure.png", full_page=True)
            raise


def test_cell_latency_runs_from_the_send_and_the_queue_is_shown_apart(browser, app_url, server):
    """A sandbox that serves one request at a time, each answer 0.7 s: the four cells are sent one
    after another (the last waits about 2.1 s for its slot). Each cell's latency, and the mean and
    p95 latency, stay near the 0.7 s answer; the wait is the summary's "mean queued (s)"."""
    delay, slack = 0.7, 0.05  # (a timer may wake a hair early)
    server.route("/healthz", Reply.json(200, {"status": "ok", "parallel": 1}))  # one slot: cells queue
    server.respond = lambda received: Reply.stream_text(["ok"], head_delay_s=delay)
    with open_page(browser, f"{app_url}/experiments", "Experiments", viewport=WIDE) as page:
        try:
            experiments_page(page, QUEUED["name"])
            before = len(chat_requests(server))
            run_once(page, server, 4)
            arrived = [received.at for received in chat_requests(server)[before:]]
            assert all(b - a >= delay - slack for a, b in zip(arrived, arrived[1:])), arrived  # one at a time
            [summary] = table(page, "mean queued (s)")
            latency, p95, queued = (float(summary[name]) for name in
                                    ("mean latency (s)", "p95 latency (s)", "mean queued (s)"))
            # from the send: about `delay` each (from the run's start it would be 0.7, 1.4, 2.1, 2.8 s)
            assert delay - slack <= latency < 2 * delay and delay - slack <= p95 < 2 * delay, summary
            assert queued >= delay, summary  # 0, 0.7, 1.4, 2.1 s of waiting: 1.05 s on average
            matrix = table(page, "#")
            cells = [row[next(name for name in row if name.startswith("1. "))] for row in matrix]
            seconds = [float(re.search(r" · (\d+\.\d\d)s", cell).group(1)) for cell in cells]
            assert len(seconds) == 4 and all(delay - slack <= s < 2 * delay for s in seconds), cells
            page.get_by_text("Per variant").scroll_into_view_if_needed()
            screenshot(page, "second-hour-more-queued.png", full_page=True)
        except Exception:
            screenshot(page, "second-hour-more-queued-failure.png", full_page=True)
            raise


def sure(word: str, probability: float) -> Reply:
    other = "negative" if word == "positive" else "positive"
    return Reply.stream_text([word], logprobs=[token_logprob(word, math.log(probability), [
        (word, math.log(probability)), (other, math.log(1 - probability))])])


CALIBRATION_ANSWERS = {"alpha": ("positive", 0.9), "beta": ("positive", 0.6), "gamma": ("positive", 0.9),
                       "delta": ("negative", 0.9)}


def test_calibration_says_how_right_relates_to_the_pass_rate(browser, app_url, server):
    """Three of four answers are right by the label check, but one of them fails the confidence
    floor: the calibration sentence says right is 75%, and that the pass rate of these answers is
    50% because a pass also needs the other checks; the summary's pass rate is that 50%."""
    from playwright.sync_api import expect

    server.respond = lambda received: sure(*CALIBRATION_ANSWERS[user_text(received).split(": ")[1]])
    with open_page(browser, f"{app_url}/experiments", "Experiments", viewport=WIDE) as page:
        try:
            experiments_page(page, CALIBRATED["name"])
            run_once(page, server, 4)
            expect(page.get_by_text("Calibration", exact=True)).to_be_visible()
            sentence = page.get_by_text(re.compile(r"^When this model says \d+%"))
            expect(sentence).to_contain_text("right 75%;")
            expect(sentence).to_contain_text(
                "Right means the label check (equals {{expected}}) passed; the pass rate of these answers is 50%, "
                "as a pass also needs the other checks (a confidence floor, a format...).")
            [summary] = table(page, "pass rate")
            assert (summary["passed"], summary["failed"], summary["pass rate"]) == ("2", "2", "0.5"), summary
            sentence.scroll_into_view_if_needed()
            screenshot(page, "second-hour-more-calibration.png")
        except Exception:
            screenshot(page, "second-hour-more-calibration-failure.png", full_page=True)
            raise


# --- History ----------------------------------------------------------------------------------------


def stored(prompt: str, answer: str) -> Run:
    return Run(endpoint="Local sandbox", request=ChatRequest(model=SCRIPTED_MODEL, messages=[
        {"role": "user", "content": prompt}]), choices=[ChoiceResult(text=answer, finish_reason="stop")],
        ttft_s=0.05, total_s=0.2)


def search(page, words: str) -> None:
    box = page.get_by_role("textbox", name="Search")
    box.fill(words)
    box.press("Enter")
    wait_idle(page)


def listed_prompts(page, until: str) -> list[str]:
    return sorted(row["prompt"] for row in table(page, "prompt", until=until))


def test_history_filters_by_where_a_run_came_from(browser, app_url, app_dir, server):
    """A run made in the Playground, and runs another page or the CLI saved (compare, repeat, cli,
    an experiment cell): "Came from" offers each source; picking one lists only its runs. The
    experiment cell is hidden until its source is asked for."""
    from playwright.sync_api import expect

    store = RunStore(app_dir / "data" / "runs.sqlite3")
    for source in ("compare", "repeat", "cli", "experiment"):
        store.save(stored(f"Came-from probe {source}", f"saved by {source}"), source=source)
    server.respond = lambda received: Reply.stream_text(["From", " the", " Playground."])
    with open_page(browser, app_url, "Playground") as page:
        try:
            run_prompt(page, "Came-from probe playground")
            wait_answer(page, "a[0].includes('From the Playground.')")
            wait_idle(page)
            sidebar_page(page, "History")
            search(page, "probe")
            expect(page.get_by_text("Runs 1-4 of 4")).to_be_visible()  # the experiment cell hidden
            assert listed_prompts(page, "Came-from probe cli") == [
                f"Came-from probe {s}" for s in ("cli", "compare", "playground", "repeat")]
            came_from = page.get_by_role("combobox", name="Came from")
            assert options_of(page, came_from) == ["(any)", "CLI", "Compare", "Experiment", "Playground", "Repeat"]
            for source in ("cli", "experiment", "repeat", "playground"):
                label = {"cli": "CLI"}.get(source, source.capitalize())  # named as the pages are
                choose(page, came_from, label)
                expect(came_from).to_have_value(label)
                expect(page.get_by_text("Runs 1-1 of 1")).to_be_visible()
                assert listed_prompts(page, f"Came-from probe {source}") == [f"Came-from probe {source}"]
                if source == "experiment":
                    screenshot(page, "second-hour-more-came-from.png", full_page=True)
            [row] = table(page, "prompt")
            assert row["answer"] == "From the Playground."  # the run made here, not a seeded one
            choose(page, came_from, "(any)")
            expect(page.get_by_text("Runs 1-4 of 4")).to_be_visible()
        except Exception:
            screenshot(page, "second-hour-more-came-from-failure.png", full_page=True)
            raise


def test_history_hides_experiment_cells_until_their_run_is_picked(browser, app_url, server):
    """An experiment run: History lists none of its cells by default; "Experiment cells" offers
    its run (its name, date and cell count), and picking it lists exactly that run's two cells."""
    from playwright.sync_api import expect

    server.respond = lambda received: Reply.stream_text(["grouped answer"])
    with open_page(browser, f"{app_url}/experiments", "Experiments") as page:
        try:
            experiments_page(page, GROUPED["name"])
            run_once(page, server, 2)
            sidebar_page(page, "History")
            cells = page.get_by_role("combobox", name="Experiment cells")
            expect(cells).to_have_value("Hidden (choose an experiment run to list its cells)")
            search(page, "Grouped question")
            expect(page.get_by_text("No runs match.")).to_be_visible()  # off by default
            search(page, "")
            expect(page.get_by_text("No runs match.")).not_to_be_visible()
            [label] = [name for name in options_of(page, cells) if name.startswith("Grouped cells · ")]
            assert re.fullmatch(r"Grouped cells · \d{4}-\d\d-\d\d \d\d:\d\d · 2 cell\(s\) · \S{8}", label), label
            choose(page, cells, label)
            expect(cells).to_have_value(label)
            expect(page.get_by_text("Runs 1-2 of 2")).to_be_visible()
            rows = table(page, "prompt", until="Grouped question one?")
            assert sorted((row["prompt"], row["answer"], row["preset"]) for row in rows) == [
                ("Grouped question one?", "grouped answer", "Grouped cells"),
                ("Grouped question two?", "grouped answer", "Grouped cells")], rows
            screenshot(page, "second-hour-more-experiment-cells.png", full_page=True)
            choose(page, cells, "Hidden (choose an experiment run to list its cells)")
            search(page, "Grouped question")
            expect(page.get_by_text("No runs match.")).to_be_visible()  # hidden again
        except Exception:
            screenshot(page, "second-hour-more-experiment-cells-failure.png", full_page=True)
            raise


def test_history_lists_the_cells_of_each_of_two_runs_made_in_one_minute(browser, app_url, server):
    """An experiment run twice in the same minute (a third time when the first two fell on either
    side of a minute): each run is offered, and picking each lists that run's own answers (their
    labels once were the same, and either pick listed the older run's cells)."""
    from playwright.sync_api import expect

    answer = {}
    server.respond = lambda received: Reply.stream_text([answer["text"]])
    with open_page(browser, f"{app_url}/experiments", "Experiments") as page:
        try:
            experiments_page(page, TWINS["name"])
            made, previous = [], None  # per run, the UTC minutes before its click and after its result
            for n in range(1, 5):
                answer["text"] = f"twin answer {n}"
                before = time.gmtime()[:5]
                previous = run_once(page, server, 1, previous=previous)
                made.append({before, time.gmtime()[:5]})
                if n >= 2 and len(made[-1] | made[-2]) == 1:  # both started in the same minute
                    break
            sidebar_page(page, "History")
            cells = page.get_by_role("combobox", name="Experiment cells")
            twins = [name for name in options_of(page, cells) if name.startswith(f"{TWINS['name']} · ")]
            assert len(twins) == len(made), twins
            for n, label in enumerate(twins[:2]):  # the two newest runs, newest first
                choose(page, cells, label)
                expect(cells).to_have_value(label)
                # the run's own answer, waited for: the table before the pick also reads "Runs 1-1 of 1"
                [row] = table(page, "prompt", until=f"twin answer {len(made) - n}")
                assert row["answer"] == f"twin answer {len(made) - n}", (twins, label, row)
            screenshot(page, "second-hour-more-twin-runs.png", full_page=True)
        except Exception:
            screenshot(page, "second-hour-more-twin-runs-failure.png", full_page=True)
            raise


# --- Compare --------------------------------------------------------------------------------------


def test_compare_panes_say_they_also_send_the_playgrounds_response_format(page, server):
    """The Playground loads a preset with a json_schema response_format; on Compare each pane's
    line at its top (above its Setup) names response_format, and Run all sends it from both."""
    from playwright.sync_api import expect

    server.respond = lambda received: Reply.stream_text(['{"name": ', '"Tom"}'])
    try:
        load_preset_in_playground(page, STRUCTURED["name"])
        sidebar_page(page, "Compare")
        also = page.get_by_text(re.compile(r"^Also sends: "))
        expect(also).to_have_count(2)
        for i in range(2):
            expect(also.nth(i)).to_contain_text(re.compile(r"\bresponse_format\b"))
            heading = page.get_by_role("heading", name=f"Pane {i + 1}", exact=True).bounding_box()
            line = also.nth(i).bounding_box()
            setup = page.locator("summary").filter(has_text="Setup").nth(i).bounding_box()
            assert heading["y"] < line["y"] < setup["y"], (heading, line, setup)  # at the pane's top
        wait_idle(page)
        screenshot(page, "second-hour-more-also-sends.png")
        before = len(chat_requests(server))
        page.get_by_role("button", name="Run all").click()
        bodies = sent(server, before, 2, "both panes' requests")
        assert [body["response_format"] for body in bodies] == [SCHEMA, SCHEMA]
        expect(page.get_by_text('{"name": "Tom"}').first).to_be_visible()
        expect(also).to_have_count(2)  # still said beside the answers
    except Exception:
        screenshot(page, "second-hour-more-also-sends-failure.png", full_page=True)
        raise

"""Two app processes on one PostgreSQL, as two replicas of a team's Playground: `streamlit run
app.py` twice, each with its own data and presets folders (nothing shared on disk), both with
PLAYGROUND_DATABASE_URL naming one database on the session's PostgreSQL. Driven in headless
Chromium: a run made in one shows in the other's History, a preset saved in one opens in the
other, and both save runs at the same moment with nothing lost (counted in the database)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from playground.client.schema import ChatRequest
from playground.db.engine import dispose
from playground.presets import Preset
from playground.runs.store import RunStore
from tests.browser_support import (
    USER_BOX,
    choose,
    open_page,
    put_preset,
    run_prompt,
    screenshot,
    scripted_sandbox,
    streamlit_app,
    wait_answer,
    wait_idle,
)
from tests.postgres_support import postgres  # noqa: F401 (fixture)
from tests.scripted_server import Reply
from tests.support import wait_for

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class Team:
    url: str  # the database both replicas use
    sandbox: object  # the ScriptedServer both replicas' "Local sandbox" is
    a: str  # replica A's base URL
    b: str
    a_dir: Path
    b_dir: Path


@pytest.fixture(scope="module")
def team(tmp_path_factory, postgres):  # noqa: F811
    url = postgres.new_database()
    RunStore(url)  # migrated once here: the replicas find it ready (their own race: test_store_concurrency.py)
    folder = tmp_path_factory.mktemp("team")
    environment = {"PLAYGROUND_DATABASE_URL": url}
    try:
        with scripted_sandbox() as sandbox, \
                streamlit_app(folder / "a", sandbox, env=environment) as a, \
                streamlit_app(folder / "b", sandbox, env=environment) as b:
            yield Team(url, sandbox, a, b, folder / "a", folder / "b")
    finally:
        dispose(url)


def test_a_run_made_in_one_replica_shows_in_the_others_history(team: Team, browser) -> None:

    team.sandbox.add(Reply.stream_text(["Made ", "on ", "replica A."], delay_s=0.02))
    with open_page(browser, team.a, "Playground") as page:
        page.locator(USER_BOX).first.wait_for()
        run_prompt(page, "Which replica answers?")
        wait_answer(page, "a[0].includes('replica A.')")
    store = RunStore(team.url)
    wait_for(lambda: store.count(search="Which replica answers"), 30, "the run saved (as its stream ended)")
    assert [s.text_preview for s in store.list(search="Which replica answers")] == ["Made on replica A."]
    with open_page(browser, f"{team.b}/history", "History") as page:
        try:
            choose(page, page.get_by_test_id("stSelectbox").filter(has_text="Open a run"),
                   page.get_by_role("option").filter(has_text="Made on replica A."))
            wait_answer(page, "a.some(t => t.includes('Made on replica A.'))")  # the opened run's answer
            wait_idle(page)
            screenshot(page, "team-history-on-b.png", full_page=True)
        except Exception:
            screenshot(page, "team-history-on-b-failure.png", full_page=True)
            raise


def test_a_preset_saved_in_one_replica_opens_in_the_other(team: Team, browser) -> None:
    from playwright.sync_api import expect

    library = Preset.new("Lighthouse keeper", ChatRequest.from_wire({
        "model": "scripted/scripted-model", "temperature": 0.35,
        "messages": [{"role": "user", "content": "Describe the lamp in one line."}]}))
    put_preset(team.a_dir, library.to_dict())  # in replica A's library folder only
    copy = "Lighthouse keeper (copy)"
    with open_page(browser, f"{team.a}/presets", "Presets") as page:
        try:
            choose(page, page.get_by_test_id("stMain").get_by_role("combobox", name="Preset"), library.name)
            expect(page.get_by_role("heading", name=library.name, exact=True)).to_be_visible()
            page.get_by_role("button", name="Duplicate").click()  # saved by A: into the team database
            expect(page.get_by_text(f"Duplicated as “{copy}”.")).to_be_visible()
        except Exception:
            screenshot(page, "team-presets-on-a-failure.png", full_page=True)
            raise
    assert not (team.b_dir / "presets" / "lighthouse-keeper-copy.json").exists()
    with open_page(browser, f"{team.b}/presets", "Presets") as page:
        try:
            choose(page, page.get_by_test_id("stMain").get_by_role("combobox", name="Preset"), copy)
            expect(page.get_by_role("heading", name=copy, exact=True)).to_be_visible()
            expect(page.get_by_text("Stored in the team database.")).to_be_visible()
            wait_idle(page)
            screenshot(page, "team-presets-on-b.png", full_page=True)
            page.get_by_role("button", name="Open in Playground").click()
            expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible()
            expect(page.get_by_text(f"Loaded “{copy}” from the Presets page.")).to_be_visible()
            page.wait_for_function("() => [...document.querySelectorAll('textarea')]"
                                   ".some(t => t.value === 'Describe the lamp in one line.')")
            expect(page.locator(".st-key-p_temperature input")).to_have_value("0.35")
        except Exception:
            screenshot(page, "team-presets-on-b-failure.png", full_page=True)
            raise


def test_both_replicas_save_runs_at_the_same_moment(team: Team, browser) -> None:
    store = RunStore(team.url)
    before = store.count()
    for _ in range(2):  # slow enough that the two runs overlap, and both save as they end
        team.sandbox.add(Reply.stream_text([f"tick {k} " for k in range(10)], delay_s=0.05))
    with open_page(browser, team.a, "Playground") as page_a, open_page(browser, team.b, "Playground") as page_b:
        for page in (page_a, page_b):
            page.locator(USER_BOX).first.wait_for()
        run_prompt(page_a, "Run at once on A")
        run_prompt(page_b, "Run at once on B")
        wait_answer(page_a, "a[0].includes('tick 9')")
        wait_answer(page_b, "a[0].includes('tick 9')")
    # each run is saved as its stream ends, in its replica's worker thread (the text shows as it streams)
    wait_for(lambda: store.count() >= before + 2, 30, "both runs saved")
    assert store.count() == before + 2
    assert store.count(search="Run at once on A") == 1 and store.count(search="Run at once on B") == 1
    assert {s.source for s in store.list(search="Run at once on")} == {"playground"}

"""AppTest of the History page (through app.py: shell, sidebar, navigation): runs stored through
RunStore in a temporary PLAYGROUND_DATA_DIR; reruns go to a ScriptedServer on loopback."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import playground.ui.history.page  # noqa: F401  (import the package before pages/ lands on sys.path)
from playground.client.run import ChunkRecord, Run, RunError
from playground.client.schema import ChatRequest
from playground.runs.store import RunStore
from playground.settings import runs_db_path
from tests.apptest_support import app_test, capture_downloads, sandbox_stand_in, send_stale, texts, widget, widget_value
from tests.scripted_server import Reply, ScriptedServer
from tests.support import run_of

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def history_run(n: int, *, endpoint: str = "A", model: str = "scripted/model", preset: str | None = None,
                text: str | None = None, started: datetime | None = None, error: bool = False) -> Run:
    """Run number n: "question n", answered "answer number n" (one token), n minutes before NOW."""
    answer = text if text is not None else f"answer number {n}"
    return run_of(
        [] if error else [(answer, -0.2)], model=model, prompt=f"question {n}", usage=None if error else (4, 3),
        error=RunError(kind="not_found", message="no such model", status_code=404) if error else None,
        request_fields={"temperature": 0.5, "stream": True}, endpoint=endpoint, preset=preset,
        started_at=started or NOW - timedelta(minutes=n), ttft_s=0.05, total_s=0.2,
        chunks=[ChunkRecord(t=0.05, data='{"choices":[{"delta":{"content":"x"}}]}'), ChunkRecord(t=0.2, data="{}")],
    )


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with sandbox_stand_in(tmp_path, monkeypatch) as scripted:
        yield scripted


@pytest.fixture
def store(server: ScriptedServer) -> RunStore:
    return RunStore(runs_db_path())


def page(server: ScriptedServer) -> AppTest:
    at = app_test("history.py")
    at.secrets["endpoints"] = {"A": {"base_url": server.base_url, "chat_path": "/a/chat"}}
    at.session_state["endpoint_name"] = "A"
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["History"]
    return at


def listed(at: AppTest):
    return next(df.value for df in at.dataframe if "answer" in df.value.columns)


def open_run(at: AppTest, run_id: str) -> None:
    widget(at.selectbox, "hist.pick").set_value(run_id).run()
    assert not at.exception, at.exception


# --- tests ---------------------------------------------------------------------------------


def test_newest_first_and_paged(server: ScriptedServer, store: RunStore) -> None:
    store.save_many(history_run(n) for n in range(60))
    at = page(server)
    assert any("Runs 1-25 of 60" in c for c in texts(at.caption))
    first = listed(at)
    assert len(first) == 25
    assert first["answer"].tolist()[:3] == ["answer number 0", "answer number 1", "answer number 2"]
    at.button(key="hist.older").click().run()
    assert any("Runs 26-50 of 60" in c for c in texts(at.caption))
    assert listed(at)["answer"].tolist()[0] == "answer number 25"
    at.button(key="hist.older").click().run()
    assert any("Runs 51-60 of 60" in c for c in texts(at.caption))
    assert at.button(key="hist.older").disabled
    at.button(key="hist.newer").click().run()
    assert listed(at)["answer"].tolist()[0] == "answer number 25"


def test_the_list_says_how_each_run_ended_what_was_asked_its_tokens_and_latency(server: ScriptedServer,
                                                                                store: RunStore) -> None:
    ok, failed = history_run(1), history_run(2, error=True)
    stopped, cut = history_run(3, text="half an"), history_run(4)
    stopped.cancelled = stopped.partial = True
    stopped.usage = None  # stopped before the server's usage came
    cut.partial = True
    ok.request.messages.append(ok.request.messages[0].model_copy(update={"content": "and a\nfollow-up?"}))
    store.save_many([ok, failed, stopped, cut])
    at = page(server)
    table = listed(at).set_index("id")
    assert list(table.columns)[:7] == ["started (UTC)", "status", "model", "prompt", "answer", "tokens", "latency (s)"]
    assert [table.loc[r.id, "status"] for r in (ok, failed, stopped, cut)] == ["ok", "failed", "stopped", "partial"]
    assert table.loc[ok.id, "prompt"] == "and a follow-up?"  # the last user message, on one line
    assert table.loc[failed.id, "prompt"] == "question 2"
    assert table.loc[failed.id, "answer"] == "error 404: no such model"  # not a blank row
    assert table.loc[stopped.id, "answer"] == "half an"
    assert table.loc[ok.id, "tokens"] == 7 and str(table["tokens"].dtype) == "Int64"
    assert table.loc[ok.id, "latency (s)"] == 0.2
    # unknown numbers are left unknown and drawn empty (the table's placeholder), never "None"
    assert pd.isna(table.loc[failed.id, "tokens"]) and pd.isna(table.loc[stopped.id, "tokens"])
    assert table.loc[ok.id, "preset"] == ""
    shown = next(df for df in at.dataframe if "answer" in df.value.columns)
    assert shown.proto.HasField("placeholder") and shown.proto.placeholder == ""


def test_filters_and_search(server: ScriptedServer, store: RunStore) -> None:
    store.save_many([
        history_run(1, endpoint="A", model="m/one", text="the quick brown fox"),
        history_run(2, endpoint="B", model="m/two", preset="Poem", text="a slow green turtle"),
        history_run(3, endpoint="B", model="m/one", text="quick silver", started=NOW - timedelta(days=3)),
    ])
    at = page(server)
    assert widget(at.selectbox, "hist.model").options == ["(any)", "m/one", "m/two"]
    widget(at.selectbox, "hist.model").select("m/one").run()
    assert sorted(listed(at)["answer"]) == ["quick silver", "the quick brown fox"]
    widget(at.selectbox, "hist.endpoint").select("B").run()
    assert listed(at)["answer"].tolist() == ["quick silver"]
    widget(at.selectbox, "hist.endpoint").select("(any)")
    widget(at.selectbox, "hist.model").select("(any)").run()
    widget(at.selectbox, "hist.preset").select("Poem").run()
    assert listed(at)["answer"].tolist() == ["a slow green turtle"]
    widget(at.selectbox, "hist.preset").select("(any)").run()
    widget(at.text_input, "hist.search").input("QUICK").run()
    assert sorted(listed(at)["answer"]) == ["quick silver", "the quick brown fox"]
    widget(at.text_input, "hist.search").input("question 2").run()  # the prompt is searched too
    assert listed(at)["answer"].tolist() == ["a slow green turtle"]
    widget(at.text_input, "hist.search").input("").run()
    at.date_input(key="hist.since").set_value((NOW - timedelta(days=1)).date()).run()
    assert sorted(listed(at)["answer"]) == ["a slow green turtle", "the quick brown fox"]
    at.date_input(key="hist.since").set_value(None)
    at.date_input(key="hist.until").set_value((NOW - timedelta(days=2)).date()).run()
    assert listed(at)["answer"].tolist() == ["quick silver"]
    widget(at.text_input, "hist.search").input("nothing like this").run()
    assert any("No runs match" in c for c in texts(at.caption))


def test_open_shows_the_run_escaped_and_exports_the_run_json(server: ScriptedServer, store: RunStore,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    served = capture_downloads(monkeypatch)
    run = history_run(1, text="<img src=x onerror=alert(1)> **bold**")
    store.save(run)
    at = page(server)
    open_run(at, run.id)
    html = " ".join(str(h.proto.body) for h in at.get("html"))
    assert "<img" not in html and "&#60;img src" in html  # shown as text, never as an element
    assert re.search(r"Total tokens.{0,400}?>7<", html, re.S), "the run's usage is shown"
    exported = [s for s in served if s[2] == f"run-{run.id}.json"]
    assert exported, [s[2] for s in served]
    data = json.loads(exported[-1][0])
    assert data["id"] == run.id and data["request"]["messages"][0]["content"] == "question 1"
    assert data["choices"][0]["text"] == run.text and data["usage"]["total_tokens"] == 7
    assert data["ttft_s"] == 0.05 and data["chunks"][1] == {"t": 0.2, "data": "{}"}
    assert Run.model_validate(data) == run  # lossless


def test_delete_asks_first(server: ScriptedServer, store: RunStore) -> None:
    keep, gone = history_run(1), history_run(2)
    store.save_many([keep, gone])
    at = page(server)
    open_run(at, gone.id)
    at.button(key="hist.delete").click().run()
    assert store.get(gone.id) == gone  # not yet: a confirmation first
    assert any("for good" in w for w in texts(at.warning))
    at.button(key="hist.delete_no").click().run()
    assert store.get(gone.id) == gone and not any("for good" in w for w in texts(at.warning))
    at.button(key="hist.delete").click().run()
    at.button(key="hist.delete_yes").click().run()
    assert not at.exception, at.exception
    assert store.get(gone.id) is None and store.get(keep.id) == keep
    assert listed(at)["id"].tolist() == [keep.id]


def test_rerun_sends_the_same_request_and_saves_a_new_run(server: ScriptedServer, store: RunStore) -> None:
    server.route("/a/chat", Reply.stream_text(["fresh", " answer"], delay_s=0.02))
    old = history_run(1)
    store.save(old)
    at = page(server)
    open_run(at, old.id)
    shown_before = widget(at.selectbox, "hist.pick")
    at.button(key="hist.rerun").click().run()
    assert not at.exception, at.exception
    sent = [r.json for r in server.requests if r.path == "/a/chat"]
    assert len(sent) == 1
    assert sent[0]["messages"] == [{"role": "user", "content": "question 1"}] and sent[0]["temperature"] == 0.5
    assert store.count() == 2
    newest = store.list(limit=1)[0]
    assert newest.text_preview == "fresh answer" and newest.id != old.id
    assert at.session_state["hist.open"] == newest.id
    assert any("Rerun finished" in i for i in texts(at.info))
    # A browser that has not drawn the new run's name in the picker yet sends the old one back
    # with its next interaction: the new run stays open.
    send_stale(at, (shown_before, old.id))
    assert at.session_state["hist.open"] == newest.id and widget(at.selectbox, "hist.pick").value == newest.id
    assert store.get(newest.id).text in " ".join(str(h.proto.body) for h in at.get("html"))


def test_send_to_compare_and_load_into_playground(server: ScriptedServer, store: RunStore) -> None:
    run = history_run(1, endpoint="A", model="m/old")
    store.save(run)
    at = page(server)
    open_run(at, run.id)
    at.button(key="hist.to_compare").click().run()
    assert not at.exception, at.exception
    assert any(t.value == "Compare" for t in at.title)
    assert widget_value(at, "cmp.0.p_model") == "m/old"
    assert at.session_state["cmp.results"][0].id == run.id

    at.switch_page("pages/history.py").run()
    open_run(at, run.id)
    at.session_state["preset_loaded"] = {"name": "Some preset", "hash": None}  # loaded earlier this session
    at.button(key="hist.to_playground").click().run()
    assert not at.exception, at.exception
    assert any(t.value == "Playground" for t in at.title)
    request = at.session_state["request"]
    assert request.model == "m/old" and request.messages[0].content == "question 1"
    assert "question 1" in [t.value for t in at.text_area]
    # the preset loaded before is forgotten: the next run is not filed under its name
    assert "preset_loaded" not in at.session_state or not at.session_state["preset_loaded"]


def test_send_to_compare_brings_the_conversation_so_run_all_compares_at_once(server: ScriptedServer,
                                                                             store: RunStore) -> None:
    server.route("/a/chat", Reply.stream_text(["a", " fresh", " answer"]))
    run = history_run(1, endpoint="A", model="m/old")
    store.save(run)
    at = app_test("history.py")
    at.secrets["endpoints"] = {"A": {"base_url": server.base_url, "chat_path": "/a/chat"}}
    at.session_state["endpoint_name"] = "A"
    at.session_state["model"] = "m/new"
    # The Playground's own conversation is empty (as after opening it): the run's must come along.
    at.session_state["request"] = ChatRequest(model="m/new", messages=[{"role": "user", "content": ""}])
    at.run()
    open_run(at, run.id)
    at.button(key="hist.to_compare").click().run()
    assert not at.exception, at.exception
    assert any(t.value == "Compare" for t in at.title)
    assert not any("Write a user message first" in c for c in texts(at.caption))
    at.switch_page("pages/compare.py").run()  # AppTest's next runs stay on the page it was told of
    at.button(key="cmp.run_all").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    sent = [r.json for r in server.requests if r.path == "/a/chat"]
    assert [body["messages"] for body in sent] == [[{"role": "user", "content": "question 1"}]]
    assert sent[0]["model"] == "m/new"
    assert at.session_state["cmp.batch"] is None, "the page came back before the stream finished"
    results = at.session_state["cmp.results"]
    assert results[0].id == run.id and results[1].text == "a fresh answer", results


def test_ten_thousand_runs_read_a_page_at_a_time(server: ScriptedServer, store: RunStore) -> None:
    # How long it takes is bench/history_page.py's to measure; here: what is read and shown.
    store.save_many(history_run(n, model=f"m/{n % 7}", endpoint=("A", "B")[n % 2]) for n in range(10_000))
    at = page(server)
    assert any("Runs 1-25 of 1,000+ · page 1" == c for c in texts(at.caption))  # the pager counts this far
    assert len(listed(at)) == 25  # one page is read, not the whole table
    widget(at.selectbox, "hist.model").select("m/3")
    widget(at.text_input, "hist.search").input("number 99").run()
    expected = [n for n in range(10_000) if n % 7 == 3 and "number 99" in f"answer number {n}"]
    assert any(f"of {len(expected)} " in c for c in texts(at.caption))
    assert listed(at)["answer"].tolist() == [f"answer number {n}" for n in expected[:25]]  # newest first


# --- the second hour: where runs came from, experiment cells, feedback, cases from runs --------


def test_came_from_filter_and_experiment_cells_hidden_until_their_run_is_chosen(server: ScriptedServer,
                                                                                 store: RunStore) -> None:
    from playground.experiments import Case, Experiment, ExperimentResult, ExperimentStore, Variant
    from playground.experiments.model import Trial
    from playground.presets import Preset

    store.save(history_run(1, text="typed by hand"), source="playground")
    store.save(history_run(2, text="side by side"), source="compare")
    cells = [history_run(n, text=f"cell {n}") for n in (3, 4)]
    store.save_many(cells, source="experiment")
    preset = Preset.new("Colours", ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}]))
    experiment = Experiment.from_preset(preset, [Case(), Case()], [Variant.from_preset(preset)])
    result = ExperimentResult(experiment=experiment)
    result.trials = [Trial(case=n, variant=0, repeat=0, status="pass", run_id=run.id) for n, run in enumerate(cells)]
    ExperimentStore(store).save(result)

    at = page(server)
    assert sorted(listed(at)["answer"]) == ["side by side", "typed by hand"]  # the cells are not in the way
    # shown named as the pages are; the values picked stay the sources
    assert widget(at.selectbox, "hist.source").options == ["(any)", "Compare", "Experiment", "Playground"]
    widget(at.selectbox, "hist.source").select("compare").run()
    assert listed(at)["answer"].tolist() == ["side by side"]
    widget(at.selectbox, "hist.source").select("(any)").run()
    at.selectbox(key="hist.cells").select(result.id).run()
    assert not at.exception, at.exception
    assert sorted(listed(at)["answer"]) == ["cell 3", "cell 4"]


def test_feedback_is_saved_shown_again_and_searchable(server: ScriptedServer, store: RunStore) -> None:
    store.save_many([history_run(1, text="a fine answer"), history_run(2, text="another one")])
    run_id = store.list()[0].id
    at = page(server)
    open_run(at, run_id)
    st_key = lambda name: f"hist.feedback.{name}"  # noqa: E731
    widget(at.feedback, st_key("score")).set_value(3).run()  # the fourth star
    widget(at.text_area, st_key("comment")).input("Too formal for the help desk").run()
    widget(at.text_input, st_key("tags")).input("tone, help desk, tone").run()
    at.button(key="hist.save_feedback").click().run()
    assert not at.exception, at.exception
    saved = store.summary(run_id)
    assert (saved.score, saved.comment, saved.tags) == (4, "Too formal for the help desk", "tone, help desk")
    widget(at.text_input, "hist.search").input("help desk").run()
    assert listed(at)["answer"].tolist() == ["a fine answer"]
    fresh = page(server)  # another session opens it: the feedback is in its boxes
    open_run(fresh, run_id)
    assert widget_value(fresh, st_key("comment")) == "Too formal for the help desk"
    assert widget_value(fresh, st_key("score")) == 3


def test_selected_runs_of_a_preset_become_a_cases_file(server: ScriptedServer, store: RunStore, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from playground.experiments.cases import parse_cases
    from playground.presets import Preset, PresetStore, fill_variables

    template = ChatRequest.from_wire({"model": "m",
                                      "messages": [{"role": "user", "content": "Capital of {{country}}?"}]})
    PresetStore().save(Preset.new("Capitals", template))
    runs = []
    for country, answer in (("France", "Paris"), ("Peru", "Lima")):
        run = run_of(answer, prompt="x", preset="Capitals")
        run.request = fill_variables(template, {"country": country})
        runs.append(run)
    store.save_many([*runs, history_run(9)])
    served = capture_downloads(monkeypatch)
    at = page(server)
    assert any("Tick rows to make a cases file" in c for c in texts(at.caption))
    at.session_state["hist.selected"] = [run.id for run in runs]  # the rows ticked in the table
    at.run()
    assert not at.exception, at.exception
    data, mimetype, name = [s for s in served if s[2] == "capitals.cases.csv"][-1]
    cases = parse_cases(data, name, ["country"]).cases
    assert sorted((c.values["country"], c.expected) for c in cases) == [("France", "Paris"), ("Peru", "Lima")]
    at.session_state["hist.selected"] = [runs[0].id, store.list()[-1].id]  # a run of no preset among them
    at.run()
    assert any("select runs of the same preset" in c for c in texts(at.caption))

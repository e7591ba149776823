"""AppTest of the Experiments page (through app.py: shell, sidebar, navigation) against a scripted
loopback server.

Two endpoints ([endpoints.A] and [endpoints.B] in the test's secrets) point at one ScriptedServer
on two paths, so each variant's answer is fixed however the requests interleave. The preset and
its cases file are written to a temporary PLAYGROUND_PRESETS_DIR; runs and experiment results go
to a temporary PLAYGROUND_DATA_DIR.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import playground.ui.experiments.page  # noqa: F401  (import the package before pages/ lands on sys.path)
from playground.experiments import ExperimentStore
from playground.settings import runs_db_path
from playground.ui import shell
from playground.ui.experiments import state as exp_state
from tests.apptest_support import (
    app_test,
    capture_downloads,
    frame,
    listing_endpoint,
    open_groups,
    sandbox_stand_in,
    texts,
    widget,
    widget_value,
)
from tests.scripted_server import Reply, ScriptedServer, token_logprob

PATH_A, PATH_B = "/a/v4/beta/chat/completions", "/b/v4/beta/chat/completions"
PRESET = {
    "schema_version": 1,
    "name": "Colour of a thing",
    "description": "Name the colour of a thing.",
    "variables": [{"name": "thing", "default": "the sky"}],
    "request": {"model": "scripted/model", "messages": [{"role": "user", "content": "Colour of {{thing}}?"}],
                "stream": True, "stream_options": {"include_usage": True}},
    "checks": [{"kind": "contains", "value": "{{expected}}", "ignore_case": True}],
}
CASES = "thing,expected,note\nan apple,red,fruit\nthe sea,blue,\n"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with sandbox_stand_in(tmp_path, monkeypatch) as scripted:
        presets = tmp_path / "presets"
        (presets / "colour-of-a-thing.json").write_text(json.dumps(PRESET), encoding="utf-8")
        (presets / "colour-of-a-thing.cases.csv").write_text(CASES, encoding="utf-8")
        yield scripted


def app(server: ScriptedServer) -> AppTest:
    at = app_test("experiments.py")
    at.secrets["endpoints"] = {
        "A": {"base_url": server.base_url, "chat_path": PATH_A, "auth": "x-api-key"},
        "B": {"base_url": server.base_url, "chat_path": PATH_B, "auth": "x-api-key"},
    }
    at.session_state["endpoint_name"] = "A"
    at.session_state["model"] = "scripted/model"
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Experiments"]
    return at


def two_variants(at: AppTest) -> None:
    at.number_input(key=exp_state.VARIANTS).set_value(2).run()
    widget(at.selectbox, "exp.v0.endpoint").select("A")
    widget(at.selectbox, "exp.v1.endpoint").select("B")
    widget(at.text_input, "exp.v1.p_model").input("scripted/other")
    at.run()
    assert not at.exception, at.exception


def run_experiment(at: AppTest) -> None:
    at.button(key="exp.run").click().run()
    deadline = time.monotonic() + 15
    while exp_state.running_in(at.session_state) is not None:
        assert time.monotonic() < deadline, "the experiment did not finish"
        at.run()
    assert not at.exception, at.exception


def test_the_page_shows_the_presets_cases(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    downloads = capture_downloads(monkeypatch)
    at = app(server)
    titles = [title for _, title, _ in shell.PAGES]
    assert titles.index("Experiments") == titles.index("Compare") + 1
    editor = frame(at, "thing")  # the cases editor (AppTest lists data editors as dataframes)
    assert list(editor.columns) == ["thing", "expected", "note"]
    assert list(editor["thing"]) == ["an apple", "the sea"]
    checks = frame(at, "kind")  # the preset's checks, in their own editor
    assert list(checks["kind"]) == ["contains"] and list(checks["value"]) == ["{{expected}}"]
    csv = next(d for d in downloads if (d.filename or "").endswith(".csv"))
    assert csv.data.decode().splitlines()[0] == "thing,expected,note"
    jsonl = next(d for d in downloads if (d.filename or "").endswith(".jsonl"))
    assert json.loads(jsonl.data.decode().splitlines()[1])["thing"] == "the sea"


def test_run_fills_the_matrix_and_the_summary(server: ScriptedServer) -> None:
    server.route(PATH_A, Reply.stream_text(["Red", "."], delay_s=0.01))
    server.route(PATH_B, Reply.stream_text(["Blue", "."], delay_s=0.01))
    at = app(server)
    two_variants(at)
    run_experiment(at)

    bodies = [r.json for r in server.requests if r.path in (PATH_A, PATH_B)]
    assert len(bodies) == 4
    assert {b["model"] for b in bodies} == {"scripted/model", "scripted/other"}
    assert {b["messages"][0]["content"] for b in bodies} == {"Colour of an apple?", "Colour of the sea?"}

    matrix = frame(at, "case")
    assert list(matrix["expected"]) == ["red", "blue"]
    a, b = matrix.columns[3], matrix.columns[4]
    assert a.startswith("1. scripted/model @ A") and b.startswith("2. scripted/other @ B")
    assert matrix[a][0].startswith("✅ Red.") and matrix[a][1].startswith("❌ Red.")
    assert matrix[b][0].startswith("❌ Blue.") and matrix[b][1].startswith("✅ Blue.")

    summary = frame(at, "pass rate")
    assert list(summary["pass rate"]) == [0.5, 0.5]
    assert list(summary["tokens"]) == [14, 14]  # 5 prompt + 2 completion tokens, twice

    at.checkbox(key=exp_state.ONLY_FAILURES).check().run()
    assert len(frame(at, "case")) == 2  # each row has a failure

    # a cell opens its run (the Playground's run view)
    variant = widget(at.selectbox, exp_state.CELL_VARIANT)  # case 1 is picked: its cell in variant B
    assert len(widget(at.selectbox, exp_state.CELL_CASE).options) == 2 and len(variant.options) == 2
    variant.select(variant.options[1]).run()
    assert not at.exception, at.exception
    checks = frame(at, "grader confidence")  # the cell's checks, one row each
    assert [(row["check"], row["reason"]) for row in checks.to_dict("records")] == [
        ("contains {{expected}}", "'red' not found in 'Blue.'")] and checks[""][0] == "❌"

    # the same experiment again: compared with the run before, nothing regressed
    run_experiment(at)
    assert any("0 regression(s), 0 fix(es)" in t for t in texts(at.caption))
    stored = ExperimentStore(runs_db_path()).list("colour-of-a-thing")
    assert len(stored) == 2 and all(s.done == 4 for s in stored)

    # a third run: compared with the newest earlier one first, and any earlier one can be picked
    server.route(PATH_B, Reply.stream_text(["Red", "."], delay_s=0.01))  # B now right on case 1, wrong on 2
    run_experiment(at)
    first, second = reversed(ExperimentStore(runs_db_path()).list("colour-of-a-thing")[1:])
    picker = widget(at.selectbox, exp_state.BASELINE_PICK)
    assert picker.value == second.id and picker.options[1].startswith(f"{first.started_at:%Y-%m-%d %H:%M} UTC · "
                                                                      "finished · 2 case(s), 4 of 4 cell(s) done, ")
    compared = [t for t in texts(at.caption) if t.startswith("Run ") and " regression(s), " in t]
    assert len(compared) == 1 and compared[0].startswith(f"Run {second.id[:8]} of ")
    assert "1 regression(s), 1 fix(es)" in compared[0]
    picker.select(first.id).run()
    assert not at.exception, at.exception
    assert any(t.startswith(f"Run {first.id[:8]} of ") and "1 regression(s), 1 fix(es)" in t for t in texts(at.caption))


def test_stop_keeps_the_finished_cells(server: ScriptedServer) -> None:
    server.route(PATH_A, Reply.stream_text(["Red"]))
    server.route(PATH_B, Reply.stream_text(["Blue"], done=False, hold_open=True))  # never ends
    at = app(server)
    two_variants(at)
    stopped = threading.Event()

    def stop_when_a_is_done() -> None:  # Stop's own callback, from outside the run the page is blocked in
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not stopped.is_set():
            current = exp_state.running_in(at.session_state)  # what the page started, from its state
            if current is not None and current.runner.progress().done >= 2:
                current.runner.stop()
                stopped.set()
            stopped.wait(0.02)

    stopper = threading.Thread(target=stop_when_a_is_done, daemon=True)
    stopper.start()
    run_experiment(at)
    stopper.join(timeout=5)
    assert stopped.is_set()

    assert any(t.startswith("Stopped: 4 of 4") for t in texts(at.caption)), texts(at.caption)
    matrix = frame(at, "case")
    a, b = matrix.columns[3], matrix.columns[4]
    assert matrix[a][0].startswith("✅ Red") and matrix[a][1].startswith("❌ Red")
    assert all(text.startswith("…") for text in matrix[b]), list(matrix[b])  # cut off: shown, not counted


def test_import_keeps_good_rows_and_lists_bad_ones(server: ScriptedServer) -> None:
    at = app(server)
    data = b'{"thing": "grass", "expected": "green"}\nnot json\n{"colour": "x"}\n{"values": {"thing": "snow"}}\n'
    at.file_uploader(key=exp_state.UPLOAD).set_value([("more.jsonl", data, "application/jsonl")]).run()
    assert not at.exception, at.exception
    assert list(frame(at, "thing")["thing"]) == ["grass", "snow"]
    problems = [t for t in texts(at.markdown) if "line 2" in t]
    assert problems and "line 3" in problems[0] and "unknown variable 'colour'" in problems[0], texts(at.markdown)


def test_add_from_history_turns_a_past_runs_variables_into_a_case(server: ScriptedServer) -> None:
    from playground.client.run import Run
    from playground.client.schema import ChatRequest
    from playground.presets import Preset, fill_variables

    template = Preset.model_validate(PRESET).request
    runs = ExperimentStore(runs_db_path()).runs
    runs.save(Run(request=fill_variables(template, {"thing": "a lemon"}), preset="Colour of a thing"))
    other = ChatRequest.from_wire({"model": "scripted/model", "messages": [{"role": "user", "content": "Hi"}]})
    runs.save(Run(request=other, preset="Colour of a thing"))  # not made from the preset's messages: left out
    at = app(server)
    picker = widget(at.selectbox, exp_state.HISTORY_RUN)
    assert len(picker.options) == 1 and "thing=a lemon" in picker.options[0]
    at.button(key=exp_state.W_ADD_FROM_HISTORY).click().run()
    assert not at.exception, at.exception
    cases = frame(at, "thing")
    assert list(cases["thing"]) == ["an apple", "the sea", "a lemon"]
    assert cases["note"][2].startswith("from run ")
    assert at.button(key=exp_state.W_ADD_FROM_HISTORY).disabled  # already in the table


def test_a_variant_can_be_the_playgrounds_request(server: ScriptedServer) -> None:
    from playground.client.schema import ChatRequest
    from playground.ui.playground import state as playground_state

    server.route(PATH_A, Reply.stream_text(["Red", "."], delay_s=0.01))
    server.route(PATH_B, Reply.stream_text(["Blue", "."], delay_s=0.01))
    at = app(server)
    at.session_state[playground_state.REQUEST] = ChatRequest.from_wire(
        {"model": "scripted/tuned", "temperature": 0.2,
         "messages": [{"role": "system", "content": "One word."}, {"role": "user", "content": "Shade of {{thing}}?"}]})
    two_variants(at)
    source = widget(at.selectbox, "exp.v1.source")
    assert source.options == ["Colour of a thing", "Playground request"]
    source.select("Playground request").run()
    assert widget_value(at, "exp.v1.p_model") == "scripted/tuned"  # the model box follows the source
    run_experiment(at)
    sent_b = [r.json for r in server.requests if r.path == PATH_B]
    assert sorted(b["messages"][1]["content"] for b in sent_b) == ["Shade of an apple?", "Shade of the sea?"]
    assert {b["model"] for b in sent_b} == {"scripted/tuned"} and {b["temperature"] for b in sent_b} == {0.2}
    assert frame(at, "case").columns[4].startswith("2. Playground · scripted/tuned @ B")


def use_checks(tmp_path: Path, checks: list[dict], cases: str = CASES) -> None:
    """The preset's file with other checks (and cases), before the page reads it."""
    presets = tmp_path / "presets"
    (presets / "colour-of-a-thing.json").write_text(json.dumps({**PRESET, "checks": checks}), encoding="utf-8")
    (presets / "colour-of-a-thing.cases.csv").write_text(cases, encoding="utf-8")


LABEL_CHECK = {"kind": "equals", "value": "{{expected}}", "ignore_case": True}


def sure_of(word: str) -> Reply:
    return Reply.stream_text([word], logprobs=[token_logprob(word, math.log(0.9), [
        (word, math.log(0.9)), ("Blue", math.log(0.05))])])


def test_calibration_shows_the_reliability_chart_and_the_confident_mistakes(server: ScriptedServer,
                                                                          tmp_path: Path) -> None:
    import pyarrow

    use_checks(tmp_path, [LABEL_CHECK])
    server.route(PATH_A, sure_of("Red"))
    at = app(server)
    run_experiment(at)
    # right on the apple, wrong on the sea (by the equals check, as the matrix says), both at 90%
    matrix = frame(at, "case")
    assert [cell[:1] for cell in matrix[matrix.columns[3]]] == ["✅", "❌"]
    assert any("When this model says 90%, it is right 50% of the time" in m.value.replace("\\", "")
               for m in at.markdown)
    chart = at.get("vega_lite_chart")
    assert len(chart) == 1
    spec = json.loads(chart[0].proto.spec)
    assert {layer["mark"]["type"] for layer in spec["layer"]} == {"rect", "text", "line"}
    values = pyarrow.ipc.open_stream(chart[0].proto.data.data).read_pandas().to_dict("records")  # the bins
    assert [(v["from"], v["answers"], v["share correct"]) for v in values] == [(0.9, 2, 0.5)]
    mistakes = next(df.value for df in at.dataframe
                    if list(df.value.columns) == ["case", "variant", "answer", "expected", "confidence"])
    assert list(mistakes["expected"]) == ["blue"] and mistakes["confidence"][0] == pytest.approx(0.9)


def test_calibration_needs_a_label_check_and_says_only_no_right_answers(server: ScriptedServer,
                                                                       tmp_path: Path) -> None:
    server.route(PATH_A, sure_of("Red"))
    at = app(server)  # the preset's check is contains {{expected}}: it does not define right and wrong
    run_experiment(at)
    assert "Calibration" not in texts(at.markdown) and len(at.get("vega_lite_chart")) == 0

    use_checks(tmp_path, [LABEL_CHECK])
    server.route(PATH_A, sure_of("Green"))  # never right
    at = app(server)
    run_experiment(at)
    shown = texts(at.markdown)
    assert shown[shown.index("**Calibration**") + 1] == "no right answers"
    assert len(at.get("vega_lite_chart")) == 0 and not [m for m in at.metric if "calibration" in m.label]


def test_an_answer_no_check_applied_to_is_counted_unchecked(server: ScriptedServer, tmp_path: Path) -> None:
    use_checks(tmp_path, PRESET["checks"], cases="thing,expected,note\nan apple,red,\nthe sea,,no expected\n")
    server.route(PATH_A, Reply.stream_text(["Red"]))
    at = app(server)
    run_experiment(at)
    matrix = frame(at, "case")
    assert [cell[:1] for cell in matrix[matrix.columns[3]]] == ["✅", "❔"]
    summary = frame(at, "pass rate")
    assert (list(summary["passed"]), list(summary["unchecked"]), list(summary["pass rate"])) == ([1], [1], [0.5])
    assert [w.value for w in at.warning] == ["1 answer(s) unchecked: no check applied to them (a blank expected "
                                             "value, no price for max_cost). They are not passes."]


def test_a_check_naming_no_cases_variable_is_refused_before_any_request(server: ScriptedServer,
                                                                        tmp_path: Path) -> None:
    use_checks(tmp_path, [{"kind": "equals", "value": "{{expeted}}"}])
    at = app(server)
    at.button(key="exp.run").click().run()
    assert not at.exception, at.exception
    assert [e.value.replace("\\", "") for e in at.error] == [
        "check 'equals {{expeted}}' names {{expeted}}, which no case has (the cases have expected, thing)"]
    assert exp_state.running_in(at.session_state) is None and not [r for r in server.requests if r.path == PATH_A]


def test_an_imported_file_without_a_column_the_checks_read_is_refused(server: ScriptedServer) -> None:
    at = app(server)
    data = b"thing,note\ngrass,no expected column\n"
    at.file_uploader(key=exp_state.UPLOAD).set_value([("more.csv", data, "text/csv")]).run()
    assert not at.exception, at.exception
    assert list(frame(at, "thing")["thing"]) == ["an apple", "the sea"]  # the table as it was
    assert [t for t in texts(at.markdown) if "more.csv" in t] == [
        "- more.csv: no column 'expected', which a check reads as {{expected}} (the header has thing, note)"]


def test_a_variant_on_the_pages_preset_follows_it_when_the_preset_changes(server: ScriptedServer,
                                                                           tmp_path: Path) -> None:
    """Pick another preset in the Preset box and run: the server gets that preset's prompt, not the
    one picked before (issue 22's first bug: every case was sent the old prompt)."""
    other = {**PRESET, "name": "Shape of a thing", "request": {
        **PRESET["request"], "messages": [{"role": "system", "content": "Answer with one shape."},
                                          {"role": "user", "content": "Shape of {{thing}}?"}]}}
    (tmp_path / "presets" / "shape-of-a-thing.json").write_text(json.dumps(other), encoding="utf-8")
    (tmp_path / "presets" / "shape-of-a-thing.cases.csv").write_text("thing,expected\na wheel,round\n")
    server.route(PATH_A, Reply.stream_text(["Round", "."]))
    at = app(server)
    at.selectbox(key=exp_state.PRESET).select("Colour of a thing").run()
    at.selectbox(key=exp_state.PRESET).select("Shape of a thing").run()
    assert not at.exception, at.exception
    assert widget_value(at, "exp.v0.source") == "Shape of a thing"
    run_experiment(at)
    bodies = [r.json for r in server.requests if r.path == PATH_A]
    assert [b["messages"] for b in bodies] == [[{"role": "system", "content": "Answer with one shape."},
                                                {"role": "user", "content": "Shape of a wheel?"}]]


def _variant_limits(at: AppTest, i: int) -> dict[str, int | None]:
    """Variant i's token-limit boxes by field."""
    prefix = exp_state.variant_key(i, "")
    return {w.key.split("@")[0][len(prefix):]: w.value for w in at.number_input
            if w.key and w.key.split("@")[0] in (prefix + "p_max_tokens", prefix + "p_max_completion_tokens")}


def test_a_variants_token_limit_is_in_the_field_its_endpoint_reads(server: ScriptedServer, tmp_path: Path) -> None:
    """Issue 22 on Experiments: B reads max_completion_tokens (SGP's), A max_tokens (its
    token_limit_field). Each variant's form shows one limit box, in its endpoint's field, and its caption
    names no change; an edited limit follows the variant to another endpoint."""
    preset = dict(PRESET, request=dict(PRESET["request"], max_completion_tokens=64))
    (tmp_path / "presets" / "colour-of-a-thing.json").write_text(json.dumps(preset), encoding="utf-8")
    server.route(PATH_A, Reply.stream_text(["Red"]))
    server.route(PATH_B, Reply.stream_text(["Blue"]))
    at = app_test("experiments.py")
    at.secrets["endpoints"] = {
        "A": {"base_url": server.base_url, "chat_path": PATH_A, "auth": "x-api-key", "token_limit_field": "max_tokens"},
        "B": {"base_url": server.base_url, "chat_path": PATH_B, "auth": "x-api-key"},  # SGP's path: SGP's field
    }
    at.session_state["endpoint_name"] = "A"
    for i in range(2):
        open_groups(at, exp_state.variant_key(i, ""))
    at.run()
    assert not at.exception, at.exception
    two_variants(at)
    assert _variant_limits(at, 0) == {"p_max_tokens": 64}
    assert _variant_limits(at, 1) == {"p_max_completion_tokens": 64}
    captions = texts(at.caption)
    assert captions.count("Sends the source's request as it is.") == 2  # a model is named in the label, not here
    assert not [c for c in captions if c.startswith("Changes:")], captions
    assert [c for c in captions if c.startswith("The token limit is sent as")] == [
        "The token limit is sent as `max_tokens`: the field A reads (its token_limit_field).",
        "The token limit is sent as `max_completion_tokens`: the field B reads (its token_limit_field)."]
    run_experiment(at)
    sent = {(r.path, r.json.get("max_tokens"), r.json.get("max_completion_tokens")) for r in server.requests
            if r.path in (PATH_A, PATH_B)}
    assert sent == {(PATH_A, 64, None), (PATH_B, None, 64)}

    # variant 1's limit edited on A, then the variant moved to B: the edit goes with it
    widget(at.number_input, exp_state.variant_key(0, "p_max_tokens")).set_value(10).run()
    assert "Changes: max_tokens=10" in texts(at.caption)
    widget(at.selectbox, exp_state.variant_key(0, "endpoint")).select("B").run()
    assert not at.exception, at.exception
    assert _variant_limits(at, 0) == {"p_max_completion_tokens": 10}
    assert "Changes: max_completion_tokens=10" in texts(at.caption)
    before = len(server.requests)
    run_experiment(at)
    sent = [(r.json.get("max_tokens"), r.json.get("max_completion_tokens")) for r in server.requests[before:]
            if r.path == PATH_B and r.json["model"] == "scripted/model"]
    assert sent == [(None, 10), (None, 10)]


def test_a_variants_model_follows_its_endpoint(server: ScriptedServer) -> None:
    """As a Compare pane's (issue 22): C lists its models, A none."""
    at = app(server)
    listing_endpoint(at, server, ["Red"])
    model = exp_state.variant_key(0, "p_model")
    assert widget_value(at, model) == "scripted/model"
    widget(at.selectbox, exp_state.variant_key(0, "endpoint")).select("C").run()
    assert not at.exception, at.exception
    assert widget_value(at, model) == "c-first"  # the old server's model is not C's
    widget(at.text_input, model).input("c-second").run()
    widget(at.selectbox, exp_state.variant_key(0, "endpoint")).select("A").run()
    assert widget_value(at, model) == "c-second"  # A lists nothing: kept
    widget(at.selectbox, exp_state.variant_key(0, "endpoint")).select("C").run()
    assert widget_value(at, model) == "c-second"  # C lists it: the same name
    run_experiment(at)
    bodies = [r.json for r in server.requests if r.path == "/c/v1/chat/completions"]
    assert [b["model"] for b in bodies] == ["c-second", "c-second"]  # both cases, on C

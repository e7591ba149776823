"""The experiment engine: cases files, every check kind, runs against real loopback servers
(concurrency, Stop, errors), the stored results and the figures recomputed from stored Runs."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest

from playground.client.endpoint import Endpoint
from playground.client.run import Run
from playground.client.schema import ChatCompletion, ChatRequest
from playground.db import SCHEMA_VERSION
from playground.experiments import (
    DEFAULT_CONCURRENCY,
    Case,
    Experiment,
    ExperimentRunner,
    ExperimentStore,
    Variant,
    calibration,
    cases_to_csv,
    cases_to_jsonl,
    cells,
    check_run,
    compare,
    grade,
    parse_cases,
    run_experiment,
    summarize,
)
from playground.experiments.cases import MAX_CASES, CasesFileError
from playground.presets import Check, Preset, PresetFileError, parse_preset_bytes, preset_to_json
from playground.presets.model import preset_from_dict
from playground.runs.store import RunStore
from tests.scripted_server import Reply, ScriptedServer, token_logprob

SHIPPED = Path(__file__).resolve().parents[1] / "presets"


# --- a loopback model whose answer depends on the prompt -----------------------------------------


def completion(reply: dict) -> dict:
    """A chat.completion from an answer dict: {"text", "logprobs"?, "tool_calls"?, "finish_reason"?}."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("text", "")}
    if reply.get("tool_calls"):
        message["tool_calls"] = reply["tool_calls"]
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": reply.get("finish_reason", "stop")}
    if reply.get("logprobs") is not None:
        choice["logprobs"] = {"content": reply["logprobs"]}
    tokens = len(reply.get("logprobs") or [1])
    return {"id": "cmpl", "object": "chat.completion", "created": 1, "model": "scripted/model", "choices": [choice],
            "usage": {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}}


def reply_of(answer: dict) -> Reply:
    """The ScriptedServer reply for an answer dict ("status": an error with "text" as its detail;
    "delay": seconds before the answer, during which the server notices a client hanging up)."""
    status = answer.get("status", 200)
    reply = (Reply.json(200, completion(answer)) if status == 200 else
             Reply.json(status, {"detail": answer.get("text", "scripted failure")}))
    reply.head_delay_s = answer.get("delay", 0.0)
    return reply


def modelled(answer: Callable[[dict], dict], server: ScriptedServer | None = None) -> ScriptedServer:
    """A ScriptedServer whose every chat completion is `answer(request body)`."""
    server = server or ScriptedServer()
    server.respond = lambda received: reply_of(answer(received.json))
    return server


def bodies(server: ScriptedServer) -> list[dict]:
    """The chat requests the server was sent (not the launcher's /healthz)."""
    return [r.json for r in server.requests if r.method == "POST"]


def last_user(body: dict) -> str:
    return body["messages"][-1]["content"]


@pytest.fixture
def model_server():
    servers: list[ScriptedServer] = []

    def make(answer: Callable[[dict], dict]) -> ScriptedServer:
        servers.append(modelled(answer))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def classifier_preset(checks: list[dict] | None = None) -> Preset:
    return preset_from_dict({
        "schema_version": 1, "name": "Tiny classifier",
        "variables": [{"name": "review"}],
        "request": {"model": "scripted/model", "messages": [{"role": "user", "content": "{{review}}"}],
                    "logprobs": True, "top_logprobs": 3, "max_completion_tokens": 1},
        "checks": checks if checks is not None else [
            {"kind": "equals", "ignore_case": True},
            {"kind": "min_confidence", "limit": 0.7, "labels": ["good", "bad"]}],
    })


def label_answer(body: dict) -> dict:
    """'good' when the review says so, with a confidence written in the review ("p=0.9")."""
    text = last_user(body)
    label = "good" if "good" in text else "bad"
    other = "bad" if label == "good" else "good"
    p = float(text.split("p=")[1].split()[0]) if "p=" in text else 0.9
    lp = [token_logprob(label, math.log(p), [(label, math.log(p)), (other, math.log(max(1 - p, 1e-6)))])]
    return {"text": label, "logprobs": lp, "delay": float(text.split("delay=")[1].split()[0]) if "delay=" in text
            else 0.0}


def run_from(text: str = "", *, logprobs: list[dict] | None = None, request: dict | None = None,
             tool_calls: list[dict] | None = None, total_s: float = 0.5, usage: dict | None = None) -> Run:
    """A Run as ChatClient records it from a completion (the recorder, not a hand-built Run)."""
    from playground.client.run import RunRecorder

    body = request or {"model": "scripted/model", "messages": [{"role": "user", "content": "hi"}]}
    recorder = RunRecorder(ChatRequest.from_wire(body), endpoint="Model")
    data = completion({"text": text, "logprobs": logprobs, "tool_calls": tool_calls})
    if usage is not None:
        data["usage"] = usage
    recorder.add_completion(ChatCompletion.model_validate(data))
    run = recorder.finish()
    run.total_s = total_s
    return run


# --- the preset file format -----------------------------------------------------------------------


def test_checks_are_optional_and_round_trip_in_the_preset_file() -> None:
    old = json.loads((SHIPPED / "creative-seeded-poem.json").read_text(encoding="utf-8"))
    assert "checks" not in old and parse_preset_bytes(json.dumps(old).encode()).checks == []
    preset = classifier_preset()
    text = preset_to_json(preset)
    assert json.loads(text)["checks"][1] == {"kind": "min_confidence", "limit": 0.7, "labels": ["good", "bad"]}
    assert parse_preset_bytes(text.encode()) == preset
    schema = {"kind": "json_schema", "schema": {"type": "object"}}
    assert preset_from_dict({**json.loads(text), "checks": [schema]}).checks[0].to_dict() == schema


@pytest.mark.parametrize("check, words", [
    ({"kind": "max_cost"}, "needs a limit"),
    ({"kind": "min_confidence", "limit": 1.5}, "0..1"),
    ({"kind": "not_contains"}, "needs a value"),
    ({"kind": "regex", "value": "("}, "does not compile"),
    ({"kind": "equals", "labels": ["a"]}, "labels belong"),
    ({"kind": "sounds_good"}, "kind"),
])
def test_a_bad_check_is_refused_in_plain_words(check: dict, words: str) -> None:
    data = json.loads(preset_to_json(classifier_preset([])))
    with pytest.raises(PresetFileError, match=words):
        preset_from_dict({**data, "checks": [check]})


# --- cases files ----------------------------------------------------------------------------------


def test_csv_import_keeps_good_rows_and_names_each_bad_one() -> None:
    data = ("review,expected,note\n"
            "great stuff,good,\n"
            "\"two\nlines\",bad,multi-line\n"
            "too,many,fields,here\n"
            ",good,empty review\n"
            "\n"
            "fine,good,last\n").encode()
    imported = parse_cases(data, "cases.csv", variables=["review"])
    assert [c.values["review"] for c in imported.cases] == ["great stuff", "two\nlines", "fine"]
    assert imported.cases[1].note == "multi-line" and imported.cases[0].note is None
    assert imported.problems == [(5, "4 fields, the header has 3"), (6, "no value for {{review}}")]
    assert imported.messages[0] == "line 5: 4 fields, the header has 3"


def test_jsonl_import_reports_lines_and_reasons() -> None:
    lines = ['{"review": "nice", "expected": "good"}', "", "{not json", '["a list"]',
             '{"values": {"review": "meh"}, "note": "nested form"}', '{"review": {"deep": 1}}',
             '{"review": 5, "expected": "good"}', '{"topic": "x"}']
    imported = parse_cases("\n".join(lines).encode(), "cases.jsonl", variables=["review"])
    assert [c.values for c in imported.cases] == [{"review": "nice"}, {"review": "meh"}, {"review": "5"}]
    reasons = dict(imported.problems)
    assert sorted(reasons) == [3, 4, 6, 8]
    assert reasons[3].startswith("not valid JSON") and "object" in reasons[4]
    assert "not text" in reasons[6] and "unknown variable 'topic'" in reasons[8]


def test_import_limits_and_whole_file_errors() -> None:
    rows = "review,expected\n" + "".join(f"r{n},good\n" for n in range(MAX_CASES + 5))
    imported = parse_cases(rows.encode(), "big.csv", ["review"])
    assert len(imported.cases) == MAX_CASES and imported.problems[0][0] == MAX_CASES + 2
    assert "limit" in imported.problems[0][1]
    for data, words in ((b"review,review\nx,y\n", "twice"), (b"re view,expected\n", "not a variable name"),
                        (b"\xff\xfe", "not UTF-8"), (b"topic,expected\nx,y\n", "no column for review")):
        with pytest.raises(CasesFileError, match=words):
            parse_cases(data, "bad.csv", ["review"])


def test_export_to_csv_and_jsonl_reads_back() -> None:
    cases = [Case(values={"review": 'says "hi", then\nleaves'}, expected="good", note="odd"),
             Case(values={"review": "plain"})]
    assert parse_cases(cases_to_csv(cases).encode(), "x.csv", ["review"]).cases == cases
    assert parse_cases(cases_to_jsonl(cases).encode(), "x.jsonl", ["review"]).cases == cases
    assert cases_to_csv(cases).splitlines()[0] == "review,expected,note"


# --- each check kind, passing and failing -----------------------------------------------------------


def one(kind: str, run: Run, case: Case | None = None, prices=None, **fields: Any):
    return check_run(Check(kind=kind, **fields), run, case or Case(), prices)


def test_text_checks() -> None:
    run = run_from(" Good. ")
    case = Case(values={"who": "Ann"}, expected="good.")
    assert one("equals", run, case, ignore_case=True).passed
    result = one("equals", run, case)
    assert not result.passed and result.reason == "answer 'Good.' != 'good.'"
    assert one("contains", run, value="Goo").passed and not one("contains", run, value="bad").passed
    assert one("not_contains", run, value="bad").passed and not one("not_contains", run, value="Good").passed
    assert one("regex", run, value=r"^\s*good\.\s*$", ignore_case=True).passed
    assert not one("regex", run, value=r"^bad").passed
    assert one("regex", run, case, value="^ {{expected}}", ignore_case=True).passed  # expected escaped: "." literal
    assert one("equals", run, Case()).passed is None  # no expected value: not applicable
    assert "no expected" in one("equals", run, Case()).reason


def test_json_checks() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    assert one("json_valid", run_from('{"age": 3}')).passed
    assert not one("json_valid", run_from("{age: 3")).passed
    assert one("json_schema", run_from('{"age": 3}'), schema=schema).passed
    bad = one("json_schema", run_from('{"age": "three"}'), schema=schema)
    assert not bad.passed and bad.reason == "$.age: 'three' is not of type 'integer'"
    request = {"model": "m", "messages": [{"role": "user", "content": "x"}],
               "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}}
    assert one("json_schema", run_from('{"age": 1}', request=request)).passed  # the request's schema
    assert "required" in one("json_schema", run_from("{}", request=request)).reason
    unschemed = one("json_schema", run_from("{}"))
    assert unschemed.passed is False and "no schema" in unschemed.reason


def test_tool_called() -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    request = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools}

    def call(name: str, arguments: str) -> Run:
        return run_from("", request=request, tool_calls=[
            {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}])

    ok = one("tool_called", call("weather", '{"city": "Oslo"}'), tool="weather")
    assert ok.passed and ok.reason == 'called weather({"city": "Oslo"})'
    assert "$: 'city' is a required property" in one("tool_called", call("weather", "{}"), tool="weather").reason
    assert "not JSON" in one("tool_called", call("weather", "{city"), tool="weather").reason
    assert one("tool_called", call("clock", "{}"), tool="weather").reason == "called clock, not weather"
    assert "no tool call" in one("tool_called", run_from("sunny", request=request), tool="weather").reason


def test_limit_checks() -> None:
    run = run_from("four words in total", total_s=1.25,
                   usage={"prompt_tokens": 1000, "completion_tokens": 4, "total_tokens": 1004})
    assert one("max_latency_s", run, limit=2).passed
    slow = one("max_latency_s", run, limit=1)
    assert not slow.passed and slow.reason == "latency 1.25 > 1.00"
    assert one("max_completion_tokens", run, limit=4).passed and not one("max_completion_tokens", run, limit=3).passed
    prices = {"scripted/model": (1.0, 2.0)}  # dollars per million tokens: 1000*1 + 4*2 = 1008 per million
    assert one("max_cost", run, prices=prices, limit=0.002).passed
    costly = one("max_cost", run, prices=prices, limit=0.001)
    assert not costly.passed and "0.001008 > 0.001000" in costly.reason
    assert one("max_cost", run, limit=0.001).passed is None  # no price: not checked, said why


def test_logprob_checks() -> None:
    sure = [token_logprob("bad", math.log(0.41), [("bad", math.log(0.41)), ("Bad", math.log(0.2)),
                                                  ("good", math.log(0.3))])]
    run = run_from("bad", logprobs=sure)
    low = one("min_confidence", run, limit=0.7)
    assert not low.passed and low.reason == "confidence 0.41 < 0.70"
    labelled = one("min_confidence", run, limit=0.6, labels=["good", "bad"])  # "bad" + "Bad": 0.61
    assert labelled.passed and labelled.reason == "confidence 0.61 >= 0.60"
    assert "none of good, bad" in one("min_confidence", run_from("meh", logprobs=sure), limit=0.5,
                                      labels=["good", "bad"]).reason
    blind = one("min_confidence", run_from("bad"), limit=0.5)
    assert blind.passed is False and "no logprobs" in blind.reason
    tokens = [token_logprob("a", math.log(0.5)), token_logprob("b", math.log(0.5))]
    assert one("max_perplexity", run_from("ab", logprobs=tokens), limit=2.5).passed
    perplexed = one("max_perplexity", run_from("ab", logprobs=tokens), limit=1.5)
    assert not perplexed.passed and perplexed.reason == "perplexity 2.00 > 1.50"
    unread = one("max_perplexity", run_from("ab"), limit=3)
    assert unread.passed is False and "no logprobs" in unread.reason


def test_a_leading_space_token_is_not_the_answer() -> None:
    tokens = [token_logprob(" ", math.log(0.99)), token_logprob("good", math.log(0.6))]
    trial = grade(run_from(" good", logprobs=tokens), Case(expected="good"), [Check(kind="equals")])
    assert trial.confidence == pytest.approx(0.6) and trial.correct is True and trial.status == "pass"


# --- running against real loopback servers ------------------------------------------------------------


def sized_experiment(n_cases: int, variants: int = 1, repeats: int = 1, preset: Preset | None = None,
                     review: Callable[[int], str] = lambda n: f"case {n} good") -> Experiment:
    preset = preset or classifier_preset()
    cases = [Case(values={"review": review(n)}, expected="good") for n in range(n_cases)]
    chosen = [Variant.from_preset(preset, params={"temperature": v / 10}) for v in range(variants)]
    return Experiment.from_preset(preset, cases, chosen, repeats=repeats)


def test_the_concurrency_bound_is_what_the_server_sees(model_server, tmp_path: Path) -> None:
    first = model_server(lambda body: {**label_answer(body), "delay": 0.05})
    second = model_server(lambda body: {**label_answer(body), "delay": 0.05})
    preset = classifier_preset()
    experiment = Experiment.from_preset(preset, [Case(values={"review": f"r{n} good"}) for n in range(12)], [
        Variant.from_preset(preset, endpoint="A"), Variant.from_preset(preset, endpoint="B", model="other/model")])
    progress = []
    result = run_experiment(experiment, [first.endpoint(name="A"), second.endpoint(name="B")],
                            concurrency={"A": 3, "B": 2}, store=ExperimentStore(tmp_path / "runs.sqlite3"),
                            on_trial=lambda trial, p: progress.append(p))
    assert (first.max_in_flight, second.max_in_flight) == (3, 2)
    assert len(bodies(first)) == len(bodies(second)) == 12
    assert {b["model"] for b in bodies(second)} == {"other/model"}
    assert sorted(p.done for p in progress) == list(range(1, 25)) and progress[-1].total == 24
    assert max(p.tokens for p in progress) == 24 * 11 and result.status == "finished"
    assert all(t.passed for t in result.trials)


def test_latency_counts_from_the_send_and_the_wait_for_a_slot_is_apart(model_server, tmp_path: Path) -> None:
    # One at a time: each cell is sent when the one before has ended, so its wait is at least the
    # wait and the latency of the one before; a latency that counted the wait would break that.
    server = model_server(lambda body: {**label_answer(body), "delay": 0.1})
    result = run_experiment(sized_experiment(4), [server.endpoint()], concurrency=1,
                            store=ExperimentStore(tmp_path / "runs.sqlite3"))
    sent = sorted(result.trials, key=lambda t: t.queued_s)
    assert [t.queued_s is not None and t.latency_s is not None for t in sent] == [True] * 4
    for before, after in zip(sent, sent[1:]):
        assert after.queued_s >= before.queued_s + before.latency_s - 0.005, (before, after)
    assert summarize(result)[0].mean_queued_s == pytest.approx(sum(t.queued_s for t in sent) / 4)


def test_on_the_local_sandbox_as_many_run_at_once_as_it_generates_at_once(model_server) -> None:
    server = model_server(lambda body: {**label_answer(body), "delay": 0.05})
    server.route("/healthz", Reply.json(200, {"status": "ok", "parallel": 2}))  # a sandbox started with --parallel 2
    local = Endpoint.local(server.port)
    run_experiment(sized_experiment(8), [local], save=False)
    assert server.max_in_flight == 2 and len(bodies(server)) == 8
    server.route("/healthz", Reply.json(200, {"status": "ok", "parallel": 6}))
    server.max_in_flight = 0
    run_experiment(sized_experiment(8), [local], save=False)
    assert server.max_in_flight == 6
    other = server.endpoint(name="Not the sandbox")  # another endpoint: the default, whatever /healthz says
    server.max_in_flight = 0
    run_experiment(sized_experiment(8), [other], save=False)
    assert server.max_in_flight == DEFAULT_CONCURRENCY


def test_stop_mid_run_keeps_the_finished_trials(model_server, tmp_path: Path) -> None:
    slow_arrived = threading.Event()

    def answer(body: dict) -> dict:
        if "fast" in last_user(body):
            return label_answer(body)
        slow_arrived.set()
        return {**label_answer(body), "delay": 60}  # answered only if Stop failed to cut it off

    server = model_server(answer)
    experiment = sized_experiment(8, review=lambda n: f"r{n} good {'fast' if n < 3 else 'slow'}")
    store = ExperimentStore(tmp_path / "runs.sqlite3")
    three_done = threading.Event()
    runner = ExperimentRunner(experiment, [server.endpoint()], concurrency=1, store=store,
                              on_trial=lambda trial, p: three_done.set() if p.done == 3 else None)
    runner.start()
    assert three_done.wait(10) and slow_arrived.wait(10)  # the fourth (slow) request is in flight
    runner.stop()
    result = runner.wait(10)
    assert result is not None, "Stop did not end the request in flight"
    assert not server.requests[-1].finished  # the run ended while the server still held its answer back
    assert [t.status for t in result.trials] == ["pass", "pass", "pass", "stopped"]
    assert result.status == "stopped" and len(bodies(server)) == 4
    stored = store.get(result.id)
    assert stored.status == "stopped" and [t.status for t in stored.trials] == ["pass", "pass", "pass", "stopped"]
    assert summarize(stored)[0].trials == 3  # the stopped trial is shown, not counted


def test_an_error_mid_matrix_is_an_error_cell(model_server, tmp_path: Path) -> None:
    def answer(body: dict) -> dict:
        if "case 2 " in last_user(body):
            return {"status": 422, "text": "review too spicy"}
        return label_answer(body)

    server = model_server(answer)
    experiment = sized_experiment(5, review=lambda n: f"case {n} good")
    experiment.cases.append(Case(values={}))  # a missing variable: an error cell too, no request
    result = run_experiment(experiment, [server.endpoint()], store=ExperimentStore(tmp_path / "r.sqlite3"))
    by_case = {t.case: t for t in result.trials}
    assert by_case[2].status == "error" and by_case[2].error == "HTTP 422 BadRequestError: review too spicy"
    assert by_case[5].status == "error" and "{{review}}" in by_case[5].error and by_case[5].run_id is None
    assert [by_case[n].status for n in (0, 1, 3, 4)] == ["pass"] * 4
    assert len(bodies(server)) == 5
    row = summarize(result)[0]
    assert (row.passed, row.errors, row.trials, row.pass_rate) == (4, 2, 6, pytest.approx(4 / 6))


def test_no_star_when_every_variant_failed(model_server, tmp_path: Path) -> None:
    # Every review is "bad" against expected "good": both variants at 0%, neither the best.
    server = model_server(label_answer)
    experiment = sized_experiment(3, variants=2, review=lambda n: f"case {n} bad")
    result = run_experiment(experiment, [server.endpoint()], store=ExperimentStore(tmp_path / "r.sqlite3"))
    rows = summarize(result)
    assert [(r.failed, r.pass_rate) for r in rows] == [(3, 0.0), (3, 0.0)]
    assert [r.best for r in rows] == [False, False]


def test_repeats_give_a_pass_rate_and_distinct_answers(model_server, tmp_path: Path) -> None:
    count = {"n": 0}
    lock = threading.Lock()

    def answer(body: dict) -> dict:
        with lock:
            count["n"] += 1
            n = count["n"]
        return label_answer({"messages": [{"content": "good" if n % 3 else "bad"}]})

    server = model_server(answer)
    result = run_experiment(sized_experiment(1, repeats=6), [server.endpoint()], concurrency=1, save=False)
    cell = cells(result)[(0, 0)]
    assert cell.pass_rate == pytest.approx(4 / 6) and cell.status == "fail"
    assert [(g.text, g.count) for g in cell.answers] == [("good", 4), ("bad", 2)]


# --- stored results, the figures recomputed from the stored Runs --------------------------------------


def test_figures_recomputed_from_the_stored_runs(model_server, tmp_path: Path) -> None:
    # Confidence written into each review; every third answer is wrong ("bad" for a good case).
    def review(n: int) -> str:
        return f"case {n} {'bad' if n % 3 == 0 else 'good'} p={0.55 + (n % 9) * 0.05:.2f}"

    server = model_server(label_answer)
    experiment = sized_experiment(27, variants=2, review=review)
    store = ExperimentStore(tmp_path / "runs.sqlite3")
    result = run_experiment(experiment, [server.endpoint()], store=store, prices={"scripted/model": (1.0, 1.0)})
    stored = store.get(result.id)
    assert stored.trials == sorted(result.trials, key=lambda t: (t.case, t.variant, t.repeat))
    runs = RunStore(store.path)
    again = []
    for trial in stored.trials:
        run = runs.get(trial.run_id)
        assert run is not None and store.experiment_of(run.id) == result.id and run.preset == "Tiny classifier"
        again.append(grade(run, experiment.cases[trial.case], experiment.checks, case_index=trial.case,
                           variant=trial.variant, repeat=trial.repeat, prices={"scripted/model": (1.0, 1.0)}))
    assert again == [replace(t, queued_s=None) for t in stored.trials]  # the wait is the run's, not the grade's
    # Pass rates by hand: a trial passes when its label is right and its confidence >= 0.7.
    expected_pass = sum(1 for n in range(27) if n % 3 and 0.55 + (n % 9) * 0.05 >= 0.7 - 1e-9)
    rows = summarize(stored)
    assert [r.passed for r in rows] == [expected_pass, expected_pass] and sum(r.best for r in rows) == 1
    assert rows[0].cost == pytest.approx(27 * 11 / 1e6)
    # Calibration bins by hand from the confidences written into the reviews.
    figures = calibration(stored, variant=0)
    confs = [0.55 + (n % 9) * 0.05 for n in range(27)]
    right = [n % 3 != 0 for n in range(27)]
    for b in figures.bins:
        members = [n for n in range(27) if b.low <= confs[n] < b.high + (1e-9 if b.high == 1 else 0)]
        assert b.count == len(members)
        if members:
            assert b.share_correct == pytest.approx(sum(right[n] for n in members) / len(members))
            assert b.mean_confidence == pytest.approx(sum(confs[n] for n in members) / len(members))
    ece = sum(abs(sum(right[n] - confs[n] for n in range(27) if b.low <= confs[n] < b.high + 1e-9 * (b.high == 1)))
              for b in figures.bins) / 27
    assert figures.ece == pytest.approx(ece)
    assert [t.case for t in figures.confident_mistakes] == [n for n in sorted(range(27), key=lambda n: -confs[n])
                                                            if not right[n] and confs[n] > 0.8]
    assert figures.sentence.startswith("When this model says ") and "% of the time" in figures.sentence
    # right (18 of 27) is the label check alone; a pass also needs confidence >= 0.7
    assert figures.accuracy == pytest.approx(18 / 27) and figures.pass_rate == pytest.approx(expected_pass / 27)
    assert figures.sentence.endswith(f"Right means the label check (equals {{{{expected}}}}) passed; the pass rate "
                                     f"of these answers is {expected_pass / 27:.0%}, as a pass also needs the other "
                                     "checks (a confidence floor, a format...).")


def test_comparison_with_an_earlier_run(model_server, tmp_path: Path) -> None:
    flip = {"on": False}

    def answer(body: dict) -> dict:
        text = last_user(body)
        if flip["on"] and "case 1 " in text:
            text = text.replace("good", "bad")
        if flip["on"] and "case 2 " in text:
            text = text.replace("bad", "good")
        return label_answer({"messages": [{"content": text}]})

    server = model_server(answer)
    store = ExperimentStore(tmp_path / "runs.sqlite3")
    experiment = sized_experiment(4, review=lambda n: f"case {n} {'bad' if n == 2 else 'good'}")
    before = run_experiment(experiment, [server.endpoint()], store=store)
    flip["on"] = True
    reordered = experiment.model_copy(update={"cases": list(reversed(experiment.cases))})
    after = run_experiment(reordered, [server.endpoint()], store=store)
    diff = compare(store.get(before.id), store.get(after.id))
    assert diff.matched_cells == 4 and diff.regressed
    assert [(reordered.cases[c.case].values["review"], c.before, c.after) for c in diff.regressions] == [
        ("case 1 good", "pass", "fail")]
    assert [(reordered.cases[c.case].values["review"], c.before_answer, c.after_answer) for c in diff.fixes] == [
        ("case 2 bad", "bad", "good")]
    assert len(diff.changed_answers) == 2 and diff.variants[0].pass_rate == 0.0
    assert diff.status_of(2, 0) == "regressed" and diff.status_of(1, 0) == "fixed"  # rows of the reversed run
    assert [s.id for s in store.list(experiment.id)] == [after.id, before.id]
    assert store.latest(experiment.id, before=after.id).id == before.id


def test_a_version_1_run_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE runs (id TEXT PRIMARY KEY, started_at REAL NOT NULL, endpoint TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '', preset TEXT, text TEXT NOT NULL DEFAULT '',
            prompt TEXT NOT NULL DEFAULT '', error_kind TEXT, partial INTEGER NOT NULL DEFAULT 0,
            total_tokens INTEGER, total_s REAL, data TEXT NOT NULL);
        PRAGMA user_version = 1;""")
    old_run = run_from("kept")
    conn.execute("INSERT INTO runs (id, started_at, data) VALUES (?, ?, ?)",
                 (old_run.id, 1.0, old_run.model_dump_json()))
    conn.commit()
    conn.close()
    store = ExperimentStore(path)
    assert store.runs.get(old_run.id).text == "kept"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "experiment_runs", "experiment_trials"} <= tables
    assert store.list() == []


def test_results_file_round_trip(model_server) -> None:
    server = model_server(label_answer)
    result = run_experiment(sized_experiment(3, variants=2), [server.endpoint()], save=False)
    again = type(result).from_jsonl(result.to_jsonl())
    assert again.trials == sorted(result.trials, key=lambda t: (t.case, t.variant, t.repeat))
    assert again.experiment == result.experiment and again.id == result.id
    with pytest.raises(ValueError, match="line 1"):
        type(result).from_jsonl('{"nope": 1}\n')


def test_shipped_examples_have_cases_and_checks() -> None:
    from playground.experiments import load_cases
    from playground.experiments.cases import cases_path

    for name, count, kind in (("sentiment-classifier-via-logprobs", 20, "min_confidence"),
                              ("json-extraction-with-a-schema", 10, "json_schema")):
        preset = parse_preset_bytes((SHIPPED / f"{name}.json").read_bytes())
        imported = load_cases(cases_path(SHIPPED / f"{name}.json"), list(preset.defaults()))
        assert imported.problems == [] and len(imported.cases) == count
        assert all(case.expected for case in imported.cases)
        assert any(check.kind == kind for check in preset.checks)
    sentiment = parse_preset_bytes((SHIPPED / "sentiment-classifier-via-logprobs.json").read_bytes())
    assert next(c for c in sentiment.checks if c.kind == "min_confidence").labels == ["good", "bad"]


# --- one short run on the real local model ---------------------------------------------------------------


@pytest.mark.sandbox
def test_the_sentiment_example_on_the_local_model(sandbox, tmp_path: Path) -> None:
    from playground.experiments import load_cases
    from playground.experiments.cases import cases_path

    path = SHIPPED / "sentiment-classifier-via-logprobs.json"
    preset = parse_preset_bytes(path.read_bytes())
    cases = load_cases(cases_path(path), ["review"]).cases[:3]
    store = ExperimentStore(tmp_path / "runs.sqlite3")
    result = run_experiment(Experiment.from_preset(preset, cases), [sandbox.endpoint], store=store)
    assert len(result.trials) == 3 and all(t.status in ("pass", "fail") for t in result.trials)
    for trial in result.trials:
        run = store.runs.get(trial.run_id)
        masses = {alt.token.strip(): math.exp(alt.logprob) for alt in run.choices[0].logprobs[0].top_logprobs}
        assert trial.answer.strip() in ("good", "bad") and trial.confidence is not None
        assert trial.confidence >= masses.get(trial.answer.strip(), 0.0) - 1e-9  # the label's mass holds its token
        assert trial.correct == (trial.answer.strip() == cases[trial.case].expected)


def test_scripted_server_streams_are_graded_too(tmp_path: Path) -> None:
    """A streamed answer (SSE, through the scripted server) is graded like a plain one."""
    with ScriptedServer() as server:
        lp = [token_logprob("good", math.log(0.8), [("good", math.log(0.8)), ("bad", math.log(0.1))])]
        server.default = Reply.stream_text(["good"], logprobs=lp)
        preset = classifier_preset()
        streamed = Variant.from_preset(preset, params={"stream": True})
        experiment = Experiment.from_preset(preset, [Case(values={"review": "x"}, expected="good")], [streamed])
        result = run_experiment(experiment, [server.endpoint()], save=False)
    trial = result.trials[0]
    assert trial.status == "pass" and trial.confidence == pytest.approx(0.8) and trial.completion_tokens == 1


def test_a_past_runs_variables_become_a_case() -> None:
    from playground.experiments import case_from_run
    from playground.presets import fill_variables

    template = ChatRequest.from_wire({"model": "m", "messages": [
        {"role": "system", "content": "Be {{tone}}."}, {"role": "user", "content": "Explain {{topic}}, {{tone}}ly."}]})
    sent = fill_variables(template, {"tone": "kind", "topic": "tides\nand moons"})
    assert case_from_run(template, sent) == Case(values={"tone": "kind", "topic": "tides\nand moons"})
    other = ChatRequest.from_wire({"model": "m", "messages": [{"role": "user", "content": "hello"}]})
    assert case_from_run(template, other) is None

"""Checks as rich as the suites people already have (issue 21): the new kinds, passing and failing;
several accepted answers; a case's own checks (CSV columns, JSONL lists); weight, threshold and
pass_threshold; python checks run from the preset's folder only. Rubric checks graded from a
scripted grader's logprobs are in test_experiments_grader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground.experiments import Case, Experiment, ExperimentError, check_run, grade, parse_cases, run_experiment
from playground.experiments.cases import cases_to_csv, cases_to_jsonl
from playground.experiments.checks import GradeContext
from playground.experiments.checks_json import first_json
from playground.experiments.validation import problems
from playground.presets import Check
from tests.test_experiments import classifier_preset, last_user, modelled, run_from

# --- the kinds, each passing and failing --------------------------------------------------------

CASE = Case(values={"review": "a fine day"}, expected="Paris")


@pytest.mark.parametrize("check, answer, passed, reason", [
    ({"kind": "starts_with"}, "  Paris is the capital", True, "starts with 'Paris'"),
    ({"kind": "starts_with"}, "The capital is Paris", False, "does not start with 'Paris'"),
    ({"kind": "starts_with", "value": "the", "ignore_case": True}, "The capital", True, "starts with"),
    ({"kind": "not_regex", "value": r"\d"}, "no digits here", True, "does not match"),
    ({"kind": "not_regex", "value": r"\d+"}, "call 911", False, "/\\d+/ matches '911'"),
    ({"kind": "contains_any", "values": ["Rome", "{{expected}}"]}, "It is Paris.", True, "'Paris' found"),
    ({"kind": "contains_any", "values": ["Rome", "Oslo"]}, "It is Paris.", False, "none of 'Rome', 'Oslo'"),
    ({"kind": "contains_all", "values": ["paris", "FRANCE"], "ignore_case": True}, "Paris, France", True,
     "all 2 found"),
    ({"kind": "contains_all", "values": ["Paris", "France"]}, "Paris, Texas", False,
     "'France' not found in 'Paris, Texas' (1 of 2 found)"),
    ({"kind": "contains_json"}, 'Sure! Here it is: {"city": "Paris"} hope it helps', True, "JSON dict at character"),
    ({"kind": "contains_json"}, 'Here:\n```json\n{"city": "Paris"}\n```\n', True, "JSON dict in a code fence"),
    ({"kind": "contains_json"}, "no json {here", False, "no JSON value in"),
    ({"kind": "contains_json", "schema": {"type": "object", "required": ["age"]}}, 'x {"city": "Paris"}', False,
     "'age' is a required property"),
    ({"kind": "json_path", "path": "$.city", "value": "{{expected}}"}, '{"city": "Paris"}', True,
     "$.city = 'Paris' == 'Paris'"),
    ({"kind": "json_path", "path": "$.items[1].n", "value": "2"}, 'ok ```json\n{"items": [{"n": 1}, {"n": 2}]}\n```',
     True, "== '2'"),
    ({"kind": "json_path", "path": "$.city", "value": "Paris"}, '{"city": "Lyon"}', False, "'Lyon' != 'Paris'"),
    ({"kind": "json_path", "path": "$.town"}, '{"city": "Lyon"}', False, "$.town is not in the answer's JSON"),
    ({"kind": "json_path", "path": "$.zip", "matches": r"^\d{5}$"}, '{"zip": "75001"}', True, "matches"),
    ({"kind": "json_path", "path": "$.zip", "matches": r"^\d{5}$"}, '{"zip": "7500"}', False, "does not match"),
    ({"kind": "finish_reason", "value": "stop"}, "x", True, "finish_reason 'stop' == 'stop'"),
    ({"kind": "similar"}, "Paris.", True, "similarity 0.91 >= 0.80"),
    ({"kind": "similar", "threshold": 0.95}, "Paris.", False, "similarity 0.91 < 0.95"),
    ({"kind": "similar", "value": "the capital of France"}, "Berlin", False, "< 0.80"),
])
def test_each_new_kind_passes_and_fails_with_its_reason(check, answer, passed, reason):
    result = check_run(Check.model_validate(check), run_from(answer), CASE)
    assert result.passed is passed, result
    assert reason in result.reason, result.reason


def test_finish_reason_fails_on_a_cut_answer_and_similar_scores_its_ratio():
    cut = run_from("Par")
    cut.choices[0].finish_reason = "length"
    result = check_run(Check(kind="finish_reason", value="stop"), cut, CASE)
    assert (result.passed, result.reason) == (False, "finish_reason 'length' != 'stop'")
    similar = check_run(Check(kind="similar"), run_from("Paris."), CASE)
    assert similar.score == pytest.approx(10 / 11)  # difflib: 2 * 5 matching / 11 characters


def test_first_json_prefers_the_whole_answer_then_a_fence_then_the_first_value():
    assert first_json('[1, 2]') == ([1, 2], "in the whole answer")
    assert first_json('see {"a": 1} and ```json\n{"b": 2}\n```') == ({"b": 2}, "in a code fence")
    assert first_json('x {bad} then [3]') == ([3], "at character 13")
    assert first_json("nothing") is None


@pytest.mark.parametrize("check, problem", [
    ({"kind": "contains_any"}, "a contains_any check needs values"),
    ({"kind": "json_path", "value": "x"}, "a json_path check needs a path"),
    ({"kind": "not_regex", "value": "("}, "does not compile"),
    ({"kind": "python", "value": "checks.py"}, "a python check's value is file.py:function"),
    ({"kind": "rubric"}, "a rubric check needs a value"),
    ({"kind": "contains", "value": "x", "grader": "Local"}, "grader and model belong to a rubric check"),
    ({"kind": "contains", "value": "x", "weight": -1}, "greater than or equal to 0"),
])
def test_a_malformed_new_check_is_refused_by_the_preset_format(check, problem):
    with pytest.raises(ValueError) as refused:
        Check.model_validate(check)
    assert problem in str(refused.value)


def test_a_typo_in_a_new_kinds_template_is_refused_at_load():
    checks = [{"kind": "contains_any", "values": ["x", "{{expeted}}"]},
              {"kind": "json_path", "path": "$.a", "matches": "{{revew}}"},
              {"kind": "rubric", "value": "Is {{answer}} about {{topik}}?"}]
    experiment = Experiment.from_preset(classifier_preset(checks), [Case(values={"review": "r"}, expected="e")])
    found = problems(experiment)
    assert [p.split(" names ")[1].split(",")[0] for p in found] == ["{{expeted}}", "{{revew}}", "{{topik}}"], found


# --- several accepted answers -----------------------------------------------------------------------


def test_a_case_accepts_any_of_its_answers_from_csv_and_jsonl():
    csv = 'review,expected,any_of,note\nr1,"[""good"", ""fine""]",,\nr2,good,"[""ok""]",\nr3,"[1, 2]",,\n'
    read = parse_cases(csv.encode(), "cases.csv", ["review"])
    assert read.problems == []
    assert [(c.expected, c.any_of) for c in read.cases] == [("good", ["fine"]), ("good", ["ok"]), ("[1, 2]", [])]
    jsonl = '{"review": "r1", "expected": ["good", "fine"]}\n{"review": "r2", "expected": "good", "any_of": ["ok"]}\n'
    assert [c.accepted for c in parse_cases(jsonl.encode(), "c.jsonl", ["review"]).cases] == [
        ["good", "fine"], ["good", "ok"]]
    bad = parse_cases(b'{"review": "r", "expected": ["good", {"x": 1}]}\n', "c.jsonl", ["review"])
    assert bad.messages == ["line 1: expected is list, not a list of texts"]
    case = read.cases[0]
    equals = Check(kind="equals")
    assert check_run(equals, run_from("fine"), case).passed is True
    missed = check_run(equals, run_from("meh"), case)
    assert (missed.passed, missed.reason) == (False, "none of 2 accepted answers: answer 'meh' != 'good'")
    assert check_run(Check(kind="similar"), run_from("fine."), case).passed is True
    again = parse_cases(cases_to_csv(read.cases).encode(), "again.csv", ["review"]).cases
    assert [c.accepted for c in again] == [c.accepted for c in read.cases]


# --- a case's own checks ----------------------------------------------------------------------------


def test_a_cases_own_checks_come_from_csv_columns_and_jsonl_lists():
    csv = "review,expected,icontains,not_regex\nr1,good,GOOD,\nr2,bad,,\\d\n"
    read = parse_cases(csv.encode(), "cases.csv", ["review"])
    assert read.problems == []
    assert [[c.to_dict() for c in case.checks] for case in read.cases] == [
        [{"kind": "contains", "value": "GOOD", "ignore_case": True}], [{"kind": "not_regex", "value": "\\d"}]]
    jsonl = ('{"review": "r1", "checks": [{"kind": "starts_with", "value": "go"}]}\n'
             '{"review": "r2", "checks": [{"kind": "starts_with"}, {"kind": "nope"}]}\n')
    read = parse_cases(jsonl.encode(), "c.jsonl", ["review"])
    assert [c.checks[0].kind for c in read.cases] == ["starts_with"]
    assert read.messages[0].startswith("line 2: check 2: kind: Input should be"), read.messages
    assert parse_cases(cases_to_jsonl(read.cases).encode(), "c.jsonl", ["review"]).cases == read.cases


def test_the_presets_checks_grade_every_case_and_a_cases_own_checks_only_it():
    cases = [Case(values={"review": "good p=0.9"}, expected="good", checks=[Check(kind="starts_with", value="bad")]),
             Case(values={"review": "good p=0.9"}, expected="good")]
    experiment = Experiment.from_preset(classifier_preset([{"kind": "equals"}]), cases)
    with modelled(label_answer_only) as server:
        result = run_experiment(experiment, [server.endpoint()], save=False, concurrency=1)
    by_case = {t.case: t for t in result.trials}
    assert [c.label for c in by_case[0].checks] == ["equals {{expected}}", "starts_with bad"]
    assert by_case[0].status == "fail" and "does not start with 'bad'" in by_case[0].reason
    assert [c.label for c in by_case[1].checks] == ["equals {{expected}}"] and by_case[1].status == "pass"


def label_answer_only(body: dict) -> dict:
    return {"text": "good" if "good" in last_user(body) else "bad"}


# --- weight, threshold, pass_threshold --------------------------------------------------------------


def test_a_trials_score_is_the_weighted_mean_and_pass_threshold_decides():
    checks = [Check(kind="contains", value="Paris", weight=3), Check(kind="contains", value="France"),
              Check(kind="similar", value="Paris, France", weight=0)]
    run = run_from("Paris")
    every = grade(run, CASE, checks)
    assert every.status == "fail" and every.score == pytest.approx(0.75)  # weight 0: shown, not counted
    assert [c.weight for c in every.checks] == [3, 1, 0]
    assert grade(run, CASE, checks, pass_threshold=0.75).status == "pass"
    assert grade(run, CASE, checks, pass_threshold=0.8).status == "fail"
    scored = grade(run_from("Paris."), CASE, [Check(kind="similar", threshold=0.5), Check(kind="equals")])
    assert scored.score == pytest.approx((10 / 11 + 0) / 2) and scored.status == "fail"


def test_pass_threshold_travels_from_the_preset_to_the_run():
    preset = classifier_preset([{"kind": "contains", "value": "good"}, {"kind": "contains", "value": "great"}])
    preset = preset.model_copy(update={"pass_threshold": 0.5})
    assert json.loads(json.dumps(preset.to_dict()))["pass_threshold"] == 0.5
    experiment = Experiment.from_preset(preset, [Case(values={"review": "good"})])
    with modelled(label_answer_only) as server:
        result = run_experiment(experiment, [server.endpoint()], save=False)
    assert [(t.status, t.score) for t in result.trials] == [("pass", 0.5)]


# --- python checks ----------------------------------------------------------------------------------

CODE = '''
def is_short(answer, context):
    return len(answer) <= int(context["vars"].get("limit", "5"))

def closeness(answer, context):
    return 0.25 if context["expected"] not in answer else 1.0

def why(answer, context):
    return (answer.isupper(), f"{answer!r} is {'' if answer.isupper() else 'not '}upper case")

def broken(answer, context):
    raise RuntimeError("boom")

def odd(answer, context):
    return "yes"
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "checks.py").write_text(CODE)
    return tmp_path


@pytest.mark.parametrize("spec, answer, passed, reason", [
    ("checks.py:is_short", "Paris", True, "checks.py:is_short returned True"),
    ("checks.py:is_short", "Paris, France", False, "checks.py:is_short returned False"),
    ("checks.py:closeness", "Rome", False, "score 0.25 < 0.50"),
    ("checks.py:closeness", "Paris!", True, "score 1.00 >= 0.50"),
    ("checks.py:why", "PARIS", True, "'PARIS' is upper case"),
    ("checks.py:why", "Paris", False, "'Paris' is not upper case"),
    ("checks.py:broken", "x", False, "checks.py:broken raised RuntimeError: boom"),
    ("checks.py:odd", "x", False, "returned 'yes', not a bool"),
])
def test_a_python_check_runs_the_teams_function(folder, spec, answer, passed, reason):
    result = check_run(Check(kind="python", value=spec), run_from(answer), CASE,
                       context=GradeContext(folder=str(folder)))
    assert (result.passed, reason in result.reason) == (passed, True), result


def test_a_python_check_outside_the_presets_folder_is_refused_at_load(folder, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "evil.py").write_text("def f(answer, context):\n    return True\n")
    cases = [Case(values={"review": "r"}, expected="e")]
    for spec, problem in [(f"{elsewhere}/evil.py:f", "is outside the preset's folder"),
                          (f"../{elsewhere.name}/evil.py:f", "is outside the preset's folder"),
                          ("missing.py:f", "no file"), ("checks.py:nope", "checks.py has no function nope")]:
        experiment = Experiment.from_preset(classifier_preset([{"kind": "python", "value": spec}]), cases)
        experiment = experiment.model_copy(update={"folder": str(folder)})
        found = problems(experiment)
        assert len(found) == 1 and problem in found[0], found
        with pytest.raises(ExperimentError):
            run_experiment(experiment, [], save=False)
    homeless = Experiment.from_preset(classifier_preset([{"kind": "python", "value": "checks.py:is_short"}]), cases)
    assert "this experiment has none" in problems(homeless)[0]
    fine = homeless.model_copy(update={"folder": str(folder)})
    assert problems(fine) == []


# --- similar on embeddings, where the endpoint serves them -----------------------------------------


def test_similar_uses_the_endpoints_embeddings_and_falls_back_to_difflib_where_there_are_none():
    from tests.scripted_server import Reply

    vectors = {"Paris.": [1.0, 0.0], "Paris": [0.6, 0.8]}  # cosine 0.6

    def embeddings(received):
        body = received.json
        return Reply.json(200, {"object": "list", "data": [
            {"index": n, "embedding": vectors[text]} for n, text in enumerate(body["input"])]})

    preset = classifier_preset([{"kind": "similar", "model": "embed/small", "threshold": 0.5}])
    experiment = Experiment.from_preset(preset, [Case(values={"review": "r"}, expected="Paris")])
    with modelled(lambda body: {"text": "Paris."}) as server:
        chat = server.respond
        server.respond = lambda r: embeddings(r) if r.path.endswith("/embeddings") else chat(r)
        result = run_experiment(experiment, [server.endpoint()], save=False)
        (check,) = result.trials[0].checks
        assert (check.passed, check.score) == (True, pytest.approx(0.6))
        assert check.reason == "cosine similarity (embed/small) 0.60 >= 0.50 to 'Paris'"
        sent = [r.json for r in server.requests if r.path.endswith("/embeddings")]
        assert sent == [{"model": "embed/small", "input": ["Paris.", "Paris"]}]
    with modelled(lambda body: {"text": "Paris."}) as server:  # an endpoint without embeddings
        chat = server.respond
        server.respond = lambda r: Reply.json(404, {"detail": "Not Found"}) if r.path.endswith("/embeddings") \
            else chat(r)
        result = run_experiment(experiment, [server.endpoint()], save=False)
        (check,) = result.trials[0].checks
        assert check.score == pytest.approx(10 / 11)
        assert check.reason == ("similarity 0.91 >= 0.50 to 'Paris' (embeddings not served (HTTP 404): "
                                "difflib's ratio)")

"""Never green on what was not checked (issue 21): what an experiment is refused for before any
request, the unchecked verdict, a failure that says the answer was cut, a baseline compared like
with like, calibration on the checks' own verdict. The CLI's exit codes for these are in
test_experiments_cli."""

from __future__ import annotations

import json
import math

import pytest

from playground.experiments import (
    Case,
    Experiment,
    ExperimentError,
    ExperimentResult,
    ExperimentRunner,
    Variant,
    calibration,
    cells,
    compare,
    grade,
    matching_cells,
    parse_cases,
    run_experiment,
    summarize,
    unchecked,
)
from playground.experiments.cases import CasesFileError
from playground.experiments.validation import problems, unsupported_syntax
from playground.presets import Check
from playground.presets.model import preset_from_dict
from tests.scripted_server import token_logprob
from tests.test_experiments import classifier_preset, label_answer, modelled, run_from

# --- refused before any request ---------------------------------------------------------------


def experiment(checks: list[dict], cases: list[Case] | None = None, request: dict | None = None) -> Experiment:
    preset = classifier_preset(checks)
    if request is not None:
        preset = preset_from_dict({**json.loads(preset.model_dump_json(by_alias=True)),
                                   "request": {**preset.request.to_wire(), **request}})
    return Experiment.from_preset(preset, cases or [Case(values={"review": "good"}, expected="good")])


@pytest.mark.parametrize("check, problem", [
    ({"kind": "equals", "value": "{{expeted}}"},
     "check 'equals {{expeted}}' names {{expeted}}, which no case has (the cases have expected, review)"),
    ({"kind": "contains", "value": "a {{revew}}"}, "check 'contains a {{revew}}' names {{revew}}, which no case has"),
    ({"kind": "not_contains", "value": "{{nope}}"}, "check 'not_contains {{nope}}' names {{nope}}, which no case has"),
    ({"kind": "regex", "value": "^{{x}}$"}, "check 'regex ^{{x}}$' names {{x}}, which no case has"),
    ({"kind": "contains", "value": "{{ review | lower }}"},
     "check 'contains {{ review | lower }}': '{{ review | lower }}' is not supported (only {{name}} is filled in)"),
    ({"kind": "equals", "value": "{% if review %}good{% endif %}"},
     "check 'equals {% if review %}good{% endif %}': '{% if review %}' is not supported"),
    ({"kind": "json_schema"}, "check 'json_schema' has no schema: give one in the check, or a json_schema "
                              "response_format to variant 'Tiny classifier'"),
])
def test_a_check_that_cannot_check_is_refused_naming_why(check: dict, problem: str) -> None:
    found = problems(experiment([check]))
    assert len(found) == 1 and found[0].startswith(problem), found
    with pytest.raises(ExperimentError) as refused:  # the runner refuses it before anything starts
        ExperimentRunner(experiment([check]), [], save=False)
    assert refused.value.problems == found


@pytest.mark.parametrize("check", [
    {"kind": "equals", "value": "{{ expected }}"},  # spaces inside the braces are the same variable
    {"kind": "contains", "value": '{"a": {"b": "{{review}}"}}'},  # JSON's own braces are text
    {"kind": "regex", "value": r"^\d{2}}?"},
    {"kind": "equals"},  # {{expected}} by default
    {"kind": "json_schema", "schema": {"type": "object"}},
    {"kind": "max_latency_s", "limit": 1},
])
def test_a_check_that_can_check_is_not_refused(check: dict) -> None:
    assert problems(experiment([check])) == []


def test_a_json_schema_check_may_use_each_variants_response_format() -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert problems(experiment([{"kind": "json_schema"}], request={"response_format": rf})) == []


def test_template_syntax_in_the_prompt_is_refused_not_sent() -> None:
    found = problems(experiment([], request={"messages": [{"role": "user", "content": "{{ review | upper }}"}]}))
    assert found == ["variant 'Tiny classifier': '{{ review | upper }}' in its messages is not supported (only "
                     "{{name}} is filled in; it would reach the model as written)"]
    assert unsupported_syntax("plain {{ name }} and {{other}}") is None


def test_a_cases_file_without_a_column_a_check_reads_is_refused() -> None:
    with pytest.raises(CasesFileError, match="no column 'expected', which a check reads as {{expected}}"):
        parse_cases(b"review,note\ngreat,\n", "c.csv", ["review"], required=["expected"])
    blank = parse_cases(b"review,expected\ngreat,\n", "c.csv", ["review"], required=["expected"])
    assert blank.problems == [] and blank.cases == [Case(values={"review": "great"})]  # a blank cell: unchecked later
    rows = parse_cases(b'{"review": "a", "expected": "good"}\n{"review": "b"}\n{"review": "c", "expected": ""}\n',
                       "c.jsonl", ["review"], required=["expected"])
    assert [(c.values["review"], c.expected) for c in rows.cases] == [("a", "good"), ("b", None), ("c", None)]
    with pytest.raises(CasesFileError, match="c.jsonl: no row has 'expected', which a check reads as {{expected}}"):
        parse_cases(b'{"review": "a"}\n{"values": {"review": "b"}}\n', "c.jsonl", ["review"], required=["expected"])


# --- unchecked is not passed ----------------------------------------------------------------------


def test_a_trial_no_check_applied_to_is_unchecked() -> None:
    equals, cost = Check(kind="equals"), Check(kind="max_cost", limit=1.0)
    blank = grade(run_from("good"), Case(), [equals, cost])  # no expected value, no price
    assert blank.status == "unchecked" and not blank.passed and blank.failures == []
    assert blank.reason == ("equals {{expected}}: not checked: the case has no expected value; max_cost 1: not "
                            "checked: no price for scripted/model (add it to [prices])")
    some = grade(run_from("good"), Case(), [equals, Check(kind="max_completion_tokens", limit=5)])
    assert some.status == "pass"  # one check applied, and passed
    failed = grade(run_from("good"), Case(expected="bad"), [equals, cost])
    assert failed.status == "fail"
    assert grade(run_from("good"), Case(), []).status == "pass"  # no checks at all: only errors fail (said so)


def test_a_check_reads_the_variables_a_case_leaves_to_the_defaults() -> None:
    preset = preset_from_dict({"schema_version": 1, "name": "Echo", "variables": [{"name": "word", "default": "hi"}],
                               "request": {"model": "m", "messages": [{"role": "user", "content": "{{word}}"}]}})
    variant = Variant.from_preset(preset)
    run = run_from("hi")
    assert grade(run, variant.case_for(Case()), [Check(kind="equals", value="{{word}}")]).status == "pass"
    bare = grade(run, Case(), [Check(kind="equals", value="{{word}}")])
    assert bare.status == "unchecked" and "the case has no value for {{word}}" in bare.reason


def test_unchecked_trials_are_counted_apart_and_not_as_passes() -> None:
    cases = [Case(values={"review": "good one"}, expected="good"), Case(values={"review": "good two"})]
    with modelled(label_answer) as server:
        result = run_experiment(experiment([{"kind": "equals"}], cases), [server.endpoint()], save=False)
    row = summarize(result)[0]
    assert (row.passed, row.failed, row.unchecked, row.trials, row.pass_rate) == (1, 0, 1, 2, 0.5)
    assert [t.case for t in unchecked(result)] == [1]
    assert cells(result)[(1, 0)].status == "unchecked"


# --- a failure says why the answer ended --------------------------------------------------------------


@pytest.mark.parametrize("request_fields, finish, prefix", [
    ({"max_completion_tokens": 5}, "length", "cut at max_completion_tokens: "),
    ({"max_tokens": 5}, "length", "cut at max_tokens: "),
    ({}, "length", "cut at the server's length limit: "),
    ({}, "content_filter", "cut by the content filter: "),
    ({"max_completion_tokens": 5}, "stop", ""),
])
def test_a_failure_says_the_answer_was_cut(request_fields: dict, finish: str, prefix: str) -> None:
    from playground.client.run import RunRecorder
    from playground.client.schema import ChatCompletion, ChatRequest
    from tests.test_experiments import completion

    request = {"model": "m", "messages": [{"role": "user", "content": "x"}], **request_fields}
    recorder = RunRecorder(ChatRequest.from_wire(request), endpoint="Model")
    recorder.add_completion(ChatCompletion.model_validate(completion({"text": '{"a": ', "finish_reason": finish})))
    trial = grade(recorder.finish(), Case(), [Check(kind="json_valid"), Check(kind="max_latency_s", limit=100)])
    assert trial.status == "fail" and trial.finish_reason == finish
    assert trial.checks[0].passed is False and trial.checks[1].passed is True
    assert trial.reason == f"json_valid: {prefix}not JSON: Expecting value: line 1 column 7 (char 6)"


def test_the_results_file_records_finish_reason_and_the_filled_request() -> None:
    with modelled(label_answer) as server:
        result = run_experiment(experiment([{"kind": "equals"}]), [server.endpoint()], save=False)
    header, line = result.to_jsonl().splitlines()
    trial = json.loads(line)
    assert trial["finish_reason"] == "stop"
    assert trial["request"]["messages"] == [{"role": "user", "content": "good"}]
    assert ExperimentResult.from_jsonl(result.to_jsonl()).trials == result.trials


# --- a baseline compared like with like -----------------------------------------------------------------


def test_new_cells_are_listed_and_a_failing_one_fails_the_comparison() -> None:
    old = experiment([{"kind": "equals"}], [Case(values={"review": "good a"}, expected="good")])
    grown = old.model_copy(update={"cases": [*old.cases, Case(values={"review": "bad b"}, expected="good"),
                                             Case(values={"review": "good c"}, expected="good")]})
    with modelled(label_answer) as server:
        before = run_experiment(old, [server.endpoint()], save=False)
        after = run_experiment(grown, [server.endpoint()], save=False)
    diff = compare(before, after)
    assert diff.matched_cells == 1 and diff.regressions == [] and diff.new_cases == 2
    assert [(c.case, c.before, c.after) for c in diff.new_cells] == [(1, "new", "fail"), (2, "new", "pass")]
    assert [c.case for c in diff.new_failures] == [1] and diff.failing and not diff.regressed
    assert diff.status_of(1, 0) == "new"
    assert matching_cells(before, grown) == 1
    elsewhere = old.model_copy(update={"cases": [Case(values={"review": "other"}, expected="good")]})
    assert matching_cells(before, elsewhere) == 0


# --- calibration on the checks' own verdict ---------------------------------------------------------------


def sure(label: str, p: float) -> list[dict]:
    other = "bad" if label.strip(".").lower() == "good" else "good"
    return [token_logprob(label, math.log(p), [(label, math.log(p)), (other, math.log(1 - p))])]


def test_calibration_needs_a_label_check_and_uses_its_verdict() -> None:
    labels = ["good", "bad"]
    right = grade(run_from("good", logprobs=sure("good", 0.9)), Case(expected="good"),
                  [Check(kind="equals"), Check(kind="min_confidence", limit=0.5, labels=labels)])
    # "Good." is not equal to "good" (case and stop count for this check): the table says fail, and so
    # does calibration, where a looser second reading of the label would have called it right
    strict = grade(run_from("Good.", logprobs=sure("Good.", 0.8)), Case(expected="good"), [Check(kind="equals")],
                   case_index=1)
    assert (right.status, right.correct) == ("pass", True) and (strict.status, strict.correct) == ("fail", False)
    figures = calibration([right, strict])
    assert figures.count == 2 and figures.accuracy == 0.5
    unlabelled = grade(run_from("good", logprobs=sure("good", 0.9)), Case(expected="good"),
                       [Check(kind="contains", value="{{expected}}")])
    assert unlabelled.correct is None and calibration([unlabelled]) is None
    result = ExperimentResult(experiment=experiment([{"kind": "contains", "value": "{{expected}}"}]),
                              trials=[unlabelled])
    assert calibration(result) is None  # no check defines right and wrong: nothing is drawn


def test_a_prompt_never_right_gets_no_right_answers_and_nothing_more() -> None:
    wrong = [grade(run_from("bad", logprobs=sure("bad", p)), Case(expected="good"), [Check(kind="equals")],
                   case_index=n) for n, p in enumerate((0.6, 0.95))]
    figures = calibration(wrong)
    assert figures.never_right and figures.sentence == "no right answers"


def test_every_shipped_preset_loads_with_its_cases_and_is_not_refused() -> None:
    from pathlib import Path

    from playground.experiments import load_cases
    from playground.experiments.cases import cases_path
    from playground.experiments.cli import build_experiment
    from playground.experiments.validation import check_names
    from playground.presets import parse_preset_bytes

    shipped = sorted(p for p in (Path(__file__).resolve().parents[1] / "presets").glob("*.json")
                     if p.name != "preset.schema.json")
    assert len(shipped) == 6
    for path in shipped:
        preset = parse_preset_bytes(path.read_bytes(), path.name)
        cases = [Case(values={k: v for k, v in preset.defaults().items() if v is not None})]
        if cases_path(path).exists():
            imported = load_cases(cases_path(path), list(preset.defaults()), required=check_names(preset.checks))
            assert imported.problems == [], path.name
            cases = imported.cases
        assert problems(build_experiment(preset, cases, [], 1)) == [], path.name

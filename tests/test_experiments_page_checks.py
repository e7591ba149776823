"""What the Experiments page draws of issue 21's checks, from its tables (pandas, no Streamlit
run): a case's own checks and accepted answers kept through the cases editor, the matrix's
"own checks" column and scored cells, the flaky cases, one trial's checks with the grader's
score and confidence, and the checks editor's new fields. The rubric cell in a real browser is in
test_browser_experiments."""

from __future__ import annotations

import pandas as pd

from playground.experiments import Case, CheckResult, Experiment, ExperimentResult, Trial
from playground.presets import Check
from playground.ui.experiments import checks_form, tables
from tests.test_experiments import classifier_preset

OWN = [Check(kind="contains", value="ok", ignore_case=True), Check(kind="rubric", value="Polite?", threshold=0.6)]


def test_the_cases_editor_keeps_a_cases_own_checks_and_accepted_answers():
    cases = [Case(values={"review": "r1"}, expected="good", any_of=["fine"], checks=OWN),
             Case(values={"review": "r2"}, expected="[1, 2]")]
    frame = tables.cases_frame(cases, ["review"])
    assert list(frame.columns) == ["review", "expected", "note", "checks"]
    assert list(frame["expected"]) == ['["good", "fine"]', "[1, 2]"]
    assert tables.frame_cases(pd.DataFrame(frame), ["review"]) == cases
    assert list(tables.cases_frame(cases[1:], ["review"]).columns) == ["review", "expected", "note"]


def result_of(trials: list[Trial], cases: list[Case], repeats: int = 1) -> ExperimentResult:
    experiment = Experiment.from_preset(classifier_preset([{"kind": "equals"}]), cases, repeats=repeats)
    return ExperimentResult(experiment=experiment, trials=trials, status="finished")


def test_the_matrix_names_a_cases_own_checks_and_shows_a_scored_cell():
    rubric = CheckResult("rubric Polite?", True, "score 0.80 >= 0.60", score=0.8, confidence=0.93)
    trials = [Trial(case=0, variant=0, repeat=0, status="pass", answer="ok", checks=(rubric,), score=0.8),
              Trial(case=1, variant=0, repeat=0, status="pass", answer="good")]
    result = result_of(trials, [Case(values={"review": "a"}, checks=OWN), Case(values={"review": "b"})])
    matrix = tables.matrix_frame(result)
    assert list(matrix["own checks"]) == ["contains ok, rubric Polite?", ""]
    assert matrix.iloc[0, -1] == "✅ ok · score 0.80 · grader 93% sure"
    assert matrix.iloc[1, -1] == "✅ good"
    checks = tables.checks_frame(trials[0])
    assert checks.to_dict("records") == [{"": "✅", "check": "rubric Polite?", "score": "0.80",
                                          "grader confidence": "93%", "weight": "1",
                                          "reason": "score 0.80 >= 0.60"}]


def test_flaky_cases_are_listed_with_k_of_n():
    def trial(case, repeat, status, answer):
        return Trial(case=case, variant=0, repeat=repeat, status=status, answer=answer)

    trials = [trial(0, 0, "pass", "good"), trial(0, 1, "fail", "bad"), trial(0, 2, "pass", "good"),
              trial(1, 0, "pass", "good"), trial(1, 1, "pass", "good"), trial(1, 2, "pass", "good")]
    result = result_of(trials, [Case(values={"review": "a"}), Case(values={"review": "b"})], repeats=3)
    flaky = tables.flaky_frame(result)
    assert flaky.to_dict("records") == [{"case": "1. review=a", "variant": "1. Tiny classifier",
                                         "passed": "2 of 3", "answers": "'good' ×2; 'bad' ×1"}]


def test_the_checks_editor_carries_the_new_fields():
    checks = [Check(kind="contains_any", values=["a, b", "c"], weight=2), Check(kind="json_path", path="$.x",
                                                                               matches="^y"),
              Check(kind="rubric", value="Good?", threshold=0.7, grader="Judge", model="judge/m"),
              Check(kind="contains_all", values=["a", "b"])]
    frame = checks_form.checks_frame(checks)
    assert list(frame["values"]) == ['["a, b", "c"]', "", "", "a, b"]
    back, problems = checks_form.frame_checks(frame)
    assert problems == [] and back == checks
    frame.loc[0, "values"] = "[broken"
    assert checks_form.frame_checks(frame)[1][0].startswith("Row 1: values is not a JSON list")

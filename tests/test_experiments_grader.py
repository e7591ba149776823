"""Model-graded `rubric` checks (issue 21): the grade is the probability-weighted rating over the
grader's rating tokens (G-Eval), read from a scripted grader's logprobs and checked here by hand;
the grader's confidence is the mass on its verdict's side; without logprobs the written rating is
used; the grader's endpoint and model come from the check, else --grader, else the variant's."""

from __future__ import annotations

import math

import pytest

from playground.experiments import Case, Experiment, ExperimentError, run_experiment
from playground.experiments.grader import SYSTEM
from tests.scripted_server import Reply, ScriptedServer, token_logprob
from tests.test_experiments import classifier_preset, reply_of

RUBRIC = "Does the answer name the capital of {{review}}? The right answer is {{expected}}."
# the grader's distribution over its first token: ratings 4, 5, 3, 2 and a non-rating token
GRADER_PROBS = [("4", 0.55), ("5", 0.25), ("3", 0.1), ("2", 0.05), ("Sure", 0.05)]


def grader_logprobs(probs=GRADER_PROBS) -> list[dict]:
    (first, p), *_ = probs
    return [token_logprob(first, math.log(p), [(token, math.log(q)) for token, q in probs])]


def scripted(grader_reply, answer: str = "Paris") -> ScriptedServer:
    """One server playing both parts: the model under test answers `answer`; a request whose
    system message is the grader's gets `grader_reply` (a fresh Reply each time)."""
    server = ScriptedServer()

    def respond(received):
        body = received.json
        if body["messages"][0]["content"] == SYSTEM:
            return grader_reply()
        return reply_of({"text": answer})

    server.respond = respond
    return server


def rubric_experiment(check: dict | None = None) -> Experiment:
    preset = classifier_preset([{"kind": "rubric", "value": RUBRIC, **(check or {})}])
    return Experiment.from_preset(preset, [Case(values={"review": "France"}, expected="Paris")])


def grader_bodies(server: ScriptedServer) -> list[dict]:
    return [r.json for r in server.requests if r.method == "POST" and r.json["messages"][0]["content"] == SYSTEM]


def test_the_grade_is_the_probability_weighted_rating_from_the_graders_logprobs():
    with scripted(lambda: Reply.stream_text(["4"], logprobs=grader_logprobs())) as server:
        result = run_experiment(rubric_experiment(), [server.endpoint()], save=False, grader_model="judge/model")
    (trial,) = result.trials
    (check,) = trial.checks
    mass = 0.55 + 0.25 + 0.1 + 0.05  # "Sure" is no rating: left out
    rating = (4 * 0.55 + 5 * 0.25 + 3 * 0.1 + 2 * 0.05) / mass
    assert check.score == pytest.approx((rating - 1) / 4)
    assert check.confidence == pytest.approx((0.55 + 0.25 + 0.1) / mass)  # ratings 3-5 pass at 0.5
    assert check.passed is True and trial.status == "pass" and trial.score == pytest.approx(check.score)
    assert check.reason == f"score {(rating - 1) / 4:.2f} >= 0.50 (rating {rating:.2f}/5 from logprobs, 95% sure)"
    (sent,) = grader_bodies(server)
    assert sent["model"] == "judge/model" and sent["logprobs"] is True and sent["top_logprobs"] >= 5
    prompt = sent["messages"][1]["content"]
    assert prompt.startswith("Does the answer name the capital of France? The right answer is Paris.")
    assert prompt.endswith("The answer to grade:\nParis\n\nRating (1-5):")


def test_a_low_weighted_rating_fails_at_the_checks_threshold():
    low = [("2", 0.5), ("1", 0.3), ("4", 0.2)]
    with scripted(lambda: Reply.stream_text(["2"], logprobs=grader_logprobs(low))) as server:
        result = run_experiment(rubric_experiment({"threshold": 0.4}), [server.endpoint()], save=False)
    (check,) = result.trials[0].checks
    assert check.score == pytest.approx((2 * 0.5 + 1 * 0.3 + 4 * 0.2 - 1) / 4)  # 0.275
    assert check.confidence == pytest.approx(0.8)  # ratings 1 and 2 are under 0.4
    assert check.passed is False and result.trials[0].status == "fail"
    assert "score 0.28 < 0.40" in check.reason


def test_without_logprobs_the_written_rating_is_used_and_no_confidence_is_claimed():
    with scripted(lambda: Reply.stream_text(["Rating: ", "2"])) as server:
        result = run_experiment(rubric_experiment(), [server.endpoint()], save=False)
    (check,) = result.trials[0].checks
    assert (check.score, check.confidence, check.passed) == (0.25, None, False)
    assert check.reason == "score 0.25 < 0.50 (rating 2/5 as written (no logprobs))"


def test_a_grader_that_gives_no_rating_or_an_error_fails_the_check():
    with scripted(lambda: Reply.stream_text(["I", " cannot"])) as server:
        result = run_experiment(rubric_experiment(), [server.endpoint()], save=False)
    assert result.trials[0].checks[0].reason == "the grader answered 'I cannot', not a rating 1-5"
    with scripted(lambda: Reply.json(400, {"detail": "grader down"})) as server:
        result = run_experiment(rubric_experiment(), [server.endpoint()], save=False)
    check = result.trials[0].checks[0]
    assert check.passed is False and check.reason.startswith("grader error:") and "grader down" in check.reason


def test_the_grader_endpoint_named_in_the_check_or_by_grader_is_the_one_asked():
    with scripted(lambda: Reply.json(400, {"detail": "not me"})) as model, \
            scripted(lambda: Reply.stream_text(["5"], logprobs=grader_logprobs([("5", 1.0)]))) as judge:
        endpoints = {"Model": model.endpoint(name="Model"), "Judge": judge.endpoint(name="Judge")}
        named = rubric_experiment({"grader": "Judge", "model": "judge/big"})
        result = run_experiment(named, endpoints, default_endpoint="Model", save=False)
        assert result.trials[0].checks[0].score == 1.0 and grader_bodies(model) == []
        assert [b["model"] for b in grader_bodies(judge)] == ["judge/big"]
        result = run_experiment(rubric_experiment(), endpoints, default_endpoint="Model", save=False, grader="Judge")
        assert result.trials[0].status == "pass" and len(grader_bodies(judge)) == 2
        with pytest.raises(ExperimentError, match="no grader endpoint named 'Nobody'"):
            run_experiment(rubric_experiment({"grader": "Nobody"}), endpoints, save=False)


def test_a_rubric_naming_a_variable_the_case_lacks_is_refused_and_answer_is_known():
    from playground.experiments.validation import problems

    assert problems(rubric_experiment()) == []
    typo = Experiment.from_preset(classifier_preset([{"kind": "rubric", "value": "{{answer}} vs {{expectd}}"}]),
                                  [Case(values={"review": "France"}, expected="Paris")])
    assert "names {{expectd}}" in problems(typo)[0]


@pytest.mark.sandbox
def test_the_local_model_grades_a_rubric_from_its_own_logprobs(sandbox, tmp_path):
    """The local model as the grader (a weak one: the README says so): a real grader request with
    logprobs, read into a score in 0..1 and a confidence, beside the text checks it answered to.
    With temperature 0 the same answer is graded the same on a second run."""
    from playground.presets.model import preset_from_dict

    preset = preset_from_dict({
        "schema_version": 1, "name": "Capital", "variables": [{"name": "country"}],
        "request": {"model": "local/smollm2-135m-instruct", "temperature": 0, "seed": 1, "max_completion_tokens": 8,
                    "messages": [{"role": "user", "content": "What is the capital of {{country}}? One word."}]},
        "checks": [{"kind": "rubric", "value": "Is the answer the capital of {{country}}, {{expected}}?", "weight": 0},
                   {"kind": "contains", "ignore_case": True}, {"kind": "not_regex", "value": "[0-9]"},
                   {"kind": "finish_reason", "value": "stop"}]})
    cases = [Case(values={"country": "France"}, expected="Paris"),
             Case(values={"country": "Italy"}, expected="Paris", any_of=["Madrid"])]  # a wrong expected: fails
    experiment = Experiment.from_preset(preset, cases)
    first = run_experiment(experiment, [sandbox.endpoint], save=False)
    again = run_experiment(experiment, [sandbox.endpoint], save=False)
    for trial in first.trials:
        rubric = trial.checks[0]
        assert trial.status != "error" and rubric.score is not None and 0 <= rubric.score <= 1, trial
        assert rubric.confidence is not None and 0.5 <= rubric.confidence <= 1, rubric
        assert "from logprobs" in rubric.reason
    by_case = {t.case: t for t in first.trials}
    assert "Paris" in by_case[0].answer and by_case[0].status == "pass", by_case[0]
    assert by_case[1].status == "fail" and "none of 2 accepted answers" in by_case[1].reason, by_case[1]
    assert [t.checks[0].score for t in sorted(again.trials, key=lambda t: t.case)] == pytest.approx(
        [t.checks[0].score for t in sorted(first.trials, key=lambda t: t.case)], abs=1e-6)

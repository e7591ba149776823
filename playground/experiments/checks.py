"""Grading one answer: every check kind, each giving pass or fail and why in one line, and the
trial's verdict (every check passed, or its weighted score at the preset's pass_threshold).

The kinds live by what they read: checks_text (the text), checks_json (its structure),
checks_code (the team's python functions), grader (a grader model's rubric); the limits and
logprob checks are here.

`grade(run, case, checks, prices)` is the only entry: the runner calls it as each answer comes,
and a test (or a page reloading an old run) calls it again on the stored Runs to get the same
Trial. The check model itself (playground.presets.Check) lives in the preset file format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from playground.client.run import Run
from playground.client.schema import TokenLogprob
from playground.experiments import checks_json
from playground.experiments.checks_code import python_check
from playground.experiments.checks_text import q, text_check
from playground.experiments.embeddings import Embed
from playground.experiments.grader import Ask, rubric_check
from playground.experiments.model import Case, CheckResult, Trial, TrialStatus, shorten
from playground.presets import Check
from playground.presets.model import VARIABLE_RE
from playground.settings import Prices, cost_of

# --- confidence from logprobs -------------------------------------------------------------


def known(logprob: float) -> bool:
    """False for the 'outside the top 20' sentinel (-9999), -inf and NaN (as analysis.logprobs.known,
    without importing numpy and pandas for it)."""
    return logprob > -9999 and logprob != math.inf


def answer_position(tokens: Sequence[TokenLogprob]) -> int | None:
    """The first token with visible text (a leading space or newline token is not the answer)."""
    for n, token in enumerate(tokens):
        if token.token.strip():
            return n
    return None


def label_of(text: str, labels: Sequence[str]) -> str | None:
    """The label `text` is (case-insensitive, surrounding space and a final full stop ignored):
    the longest label it starts with, so "bad." and "Bad" are "bad"."""
    clean = text.strip().casefold().rstrip(".!")
    matches = [label for label in labels if label.strip() and clean.startswith(label.strip().casefold())]
    return max(matches, key=len) if matches else None


def label_masses(tokens: Sequence[TokenLogprob], labels: Sequence[str]) -> dict[str, float] | None:
    """Per label, the probability of the answer's first token being one that begins the label:
    the sum over the distinct top_logprobs tokens (and the sampled one) whose text, stripped,
    starts the label. None without logprobs."""
    at = answer_position(tokens)
    if at is None:
        return None
    first = tokens[at]
    seen: dict[str, float] = {}
    for alt in (*first.top_logprobs, first):
        if alt.token not in seen and known(alt.logprob):
            seen[alt.token] = math.exp(min(alt.logprob, 0.0))
    masses = {}
    for label in labels:
        target = label.strip().casefold()
        masses[label] = sum(p for token, p in seen.items()
                            if (t := token.strip().casefold()) and target.startswith(t))
    return masses


def confidence(run: Run, labels: Sequence[str] | None = None) -> float | None:
    """The probability the model gave its answer: the first answer token's, or with `labels`
    the mass of the answered label's first tokens (0 when the answer is none of the labels).
    None without logprobs."""
    tokens = run.choices[0].logprobs if run.choices else []
    if not tokens:
        return None
    if labels:
        masses = label_masses(tokens, labels)
        answered = label_of(run.text, labels)
        return None if masses is None else (masses[answered] if answered else 0.0)
    at = answer_position(tokens)
    if at is None or not known(tokens[at].logprob):
        return 0.0 if at is not None else None
    return math.exp(min(tokens[at].logprob, 0.0))


# --- the kinds --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GradeContext:
    """What some checks need beyond the answer: prices (max_cost), the experiment's folder (python
    checks' files) and a way to ask the grader (rubric)."""

    prices: Prices | None = None
    folder: str | None = None
    ask: Ask | None = None
    embed: Embed | None = None  # similar checks with an embedding model


def _limit(check: Check, value: float | None, what: str, fmt: str, unknown: str,
           at_most: bool = True) -> CheckResult:
    limit = check.limit or 0.0
    if value is None:
        return CheckResult(check.label, None if check.kind == "max_cost" else False, unknown)
    ok = value <= limit if at_most else value >= limit
    sign = ("<=" if ok else ">") if at_most else (">=" if ok else "<")
    return CheckResult(check.label, ok, f"{what} {value:{fmt}} {sign} {limit:{fmt}}")


_TEXT = ("equals", "contains", "not_contains", "regex", "starts_with", "not_regex", "contains_any", "contains_all",
         "finish_reason", "similar")
_STRUCTURE = {"json_valid": checks_json.json_valid, "json_schema": checks_json.json_schema,
              "contains_json": checks_json.contains_json, "json_path": checks_json.json_path,
              "tool_called": checks_json.tool_called}


def _grader(check: Check, run: Run, case: Case, context: GradeContext) -> CheckResult:
    kind = check.kind
    if kind in _TEXT:
        return text_check(check, run, case, context.embed)
    if kind in _STRUCTURE:
        return _STRUCTURE[kind](check, run, case)
    if kind == "python":
        return python_check(check, run, case, context.folder)
    if kind == "rubric":
        return rubric_check(check, run, case, context.ask)
    if kind == "max_latency_s":
        return _limit(check, run.total_s, "latency", ".2f", "no timing recorded")
    if kind == "max_completion_tokens":
        return _limit(check, float(run.completion_tokens), "completion tokens", ".0f", "no token count")
    if kind == "max_cost":
        return _limit(check, cost_of(run, context.prices or {}), "cost $", ".6f",
                      f"not checked: no price for {run.request.model} (add it to [prices])")
    tokens = run.choices[0].logprobs if run.choices else []
    if kind == "min_confidence":
        if not tokens:
            return CheckResult(check.label, False, "no logprobs: set logprobs (and top_logprobs for labels)")
        if check.labels and label_of(run.text, check.labels) is None:
            return CheckResult(check.label, False, f"answer {q(run.text)} is none of {', '.join(check.labels)}")
        return _limit(check, confidence(run, check.labels), "confidence", ".2f", "no answer token", at_most=False)
    if kind == "max_perplexity":
        if not tokens:
            return CheckResult(check.label, False, "no logprobs: set logprobs to read perplexity")
        from playground.analysis.logprobs import perplexity  # numpy and pandas: only when a check reads them

        return _limit(check, perplexity(tokens), "perplexity", ".2f", "no token with a known logprob")
    raise ValueError(f"unknown check kind {kind!r}")  # the Check model allows no other


def check_run(check: Check, run: Run, case: Case, prices: Prices | None = None,
              context: GradeContext | None = None) -> CheckResult:
    """One check on one answer, its weight recorded with it."""
    result = _grader(check, run, case, context or GradeContext(prices=prices))
    return replace(result, weight=check.weight) if check.weight != 1.0 else result


def label_check(checks: Sequence[Check]) -> int | None:
    """The index of the check that defines right and wrong: the first `equals` on exactly
    `{{expected}}` (calibration reads its verdict); None when there is none."""
    for n, check in enumerate(checks):
        whole = VARIABLE_RE.fullmatch((check.value or "{{expected}}").strip())
        if check.kind == "equals" and whole is not None and whole.group(1) == "expected":
            return n
    return None


_CUT = {"length": None, "content_filter": "cut by the content filter"}  # finish reasons that cut an answer short


def _ended(run: Run) -> str | None:
    """Why the answer was cut short, for a failure's reason ("cut at max_completion_tokens");
    None when it ended as answers do (stop, tool_calls) or the server did not say."""
    finish = run.finish_reason
    if finish not in _CUT:
        return None
    if finish == "length":
        request = run.request
        limit = ("max_completion_tokens" if request.max_completion_tokens is not None else
                 "max_tokens" if request.max_tokens is not None else "the server's length limit")
        return f"cut at {limit}"
    return _CUT[finish]


def confidence_labels(checks: Sequence[Check]) -> list[str] | None:
    """The labels of the experiment's first min_confidence check that has them: confidence and
    correctness (for calibration) are read over those labels."""
    return next((list(c.labels) for c in checks if c.kind == "min_confidence" and c.labels), None)


def score_of(results: Sequence[CheckResult]) -> float | None:
    """The weighted mean of the applicable checks' scores (a pass is 1, a fail 0, a scored check its
    score); None when no check with a weight applied."""
    counted = [(r.value, r.weight) for r in results if r.value is not None and r.weight > 0]
    total = sum(weight for _, weight in counted)
    return sum(value * weight for value, weight in counted) / total if total else None


def verdict(results: Sequence[CheckResult], pass_threshold: float | None) -> tuple[TrialStatus, float | None]:
    """unchecked when every check was not applicable; else with a pass_threshold, pass when the
    score reaches it; without one, pass when no check (of weight above 0) failed."""
    score = score_of(results)
    if results and all(r.passed is None for r in results):
        return "unchecked", None
    if pass_threshold is not None:
        if score is None:
            return "pass", None
        return ("pass" if score >= pass_threshold - 1e-9 else "fail"), score
    failed = any(r.passed is False and r.weight > 0 for r in results)
    return ("fail" if failed else "pass"), score


def grade(run: Run, case: Case, checks: Sequence[Check], *, case_index: int = 0, variant: int = 0,
          repeat: int = 0, prices: Prices | None = None, labels: Sequence[str] | None = None,
          pass_threshold: float | None = None, context: GradeContext | None = None) -> Trial:
    """The Trial for one answer: an error (no checks run), stopped, unchecked (every check was
    not applicable to it), fail (a check failed, or the score is under `pass_threshold`; its
    reason says when the answer was cut short) or pass. `score`: the weighted mean of the checks'
    scores. `correct` is the label check's verdict (label_check), for calibration."""
    context = context or GradeContext(prices=prices)
    prices = context.prices if prices is None else prices
    usage = run.usage
    cost = cost_of(run, prices or {})
    common = dict(case=case_index, variant=variant, repeat=repeat, run_id=run.id, answer=run.text,
                  latency_s=run.total_s, prompt_tokens=usage.prompt_tokens if usage else 0,
                  completion_tokens=run.completion_tokens, cost=cost, finish_reason=run.finish_reason)
    if run.cancelled:
        return Trial(status="stopped", error="stopped before the answer was complete", **common)
    if run.error is not None:
        message = f"{run.error.kind}: {shorten(run.error.message, 160)}"
        if run.error.status_code:
            message = f"HTTP {run.error.status_code} {message}"
        return Trial(status="error", error=message, **common)
    labels = list(labels) if labels is not None else confidence_labels(checks)
    results = tuple(check_run(check, run, case, prices, context) for check in checks)
    ended = _ended(run)
    if ended is not None:
        results = tuple(replace(r, reason=f"{ended}: {r.reason}") if r.passed is False else r for r in results)
    status, score = verdict(results, pass_threshold)
    label = label_check(checks)
    return Trial(status=status, checks=results, confidence=confidence(run, labels), score=score,
                 correct=results[label].passed if label is not None else None, **common)

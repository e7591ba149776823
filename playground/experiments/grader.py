"""The `rubric` check: a grader model rates the answer from 1 to 5 against the check's prompt.

The grader's prompt is the check's value with `{{answer}}`, `{{expected}}` and the case's
variables filled in (the answer is appended when the prompt does not place it), then "Rating
(1-5):". The grade is read as G-Eval reads it: from the grader's logprobs at its first answer token, the probability-
weighted mean over the rating tokens 1..5, normalised to a score in 0..1 ((rating - 1) / 4). The
check passes at its threshold (0.5 by default: a rating of 3). The grader's confidence is the
probability it gave the verdict's side of the threshold (the rating tokens' mass on that side,
over their whole mass). Without logprobs, the rating it wrote is used and no confidence is given.

A small model is a weak grader (the local one included): it is here for tests and a first
look, not a verdict to trust.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from playground.client.run import Run
from playground.client.schema import ChatRequest, TokenLogprob
from playground.experiments.checks_text import fill, q
from playground.experiments.model import Case, CheckResult, shorten
from playground.presets import Check
from playground.presets.model import VARIABLE_RE

RATINGS = ("1", "2", "3", "4", "5")
RUBRIC_THRESHOLD = 0.5
TOP_LOGPROBS = 20  # the most servers give: a small grader puts its ratings below its top few tokens
SYSTEM = ("You grade an answer against a rubric. Reply with one digit from 1 (does not meet the rubric at all) "
          "to 5 (fully meets it), and nothing else.")

# (check, grader request) -> the grader's Run. The engine gives one per trial: it knows the
# endpoints, the --grader default and the variant's own endpoint and model.
Ask = Callable[[Check, ChatRequest], Run]


@dataclass(frozen=True)
class Grade:
    score: float  # 0..1
    rating: float  # 1..5 (the probability-weighted mean, or the rating written)
    confidence: float | None  # the probability of the verdict's side; None without logprobs
    masses: dict[str, float] | None  # per rating token, its probability (None without logprobs)


def grader_request(check: Check, run: Run, case: Case, model: str) -> tuple[ChatRequest | None, str]:
    """The request sent to the grader, or None and why not (a variable the case has no value for)."""
    template = check.value or ""
    if "answer" not in VARIABLE_RE.findall(template):
        template += "\n\nThe answer to grade:\n{{answer}}"
    template += "\n\nRating (1-5):"  # the grader's next token is the rating (where it follows instructions)
    values = case.model_copy(update={"values": {**case.values, "answer": run.text}})
    prompt, why = fill(template, values)
    if prompt is None:
        return None, why
    wire = {"model": model, "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
            "temperature": 0, "max_completion_tokens": 3, "logprobs": True, "top_logprobs": TOP_LOGPROBS,
            "stream": True}
    return ChatRequest.from_wire(wire), ""


def rating_masses(tokens: Sequence[TokenLogprob]) -> dict[str, float] | None:
    """Per rating token, the probability the grader gave it at its first visible token (from the
    top_logprobs and the sampled token; distinct token texts only). None without such a token."""
    first = next((t for t in tokens if t.token.strip()), None)
    if first is None:
        return None
    seen: dict[str, float] = {}
    for alt in (*first.top_logprobs, first):
        if alt.token not in seen and alt.logprob > -9999:
            seen[alt.token] = math.exp(min(alt.logprob, 0.0))
    masses = {r: 0.0 for r in RATINGS}
    for token, p in seen.items():
        if token.strip() in masses:
            masses[token.strip()] += p
    return masses


def grade_of(grader_run: Run, threshold: float = RUBRIC_THRESHOLD) -> Grade | None:
    """The grade in the grader's answer: from its logprobs when it has them, else the digit it wrote."""
    tokens = grader_run.choices[0].logprobs if grader_run.choices else []
    masses = rating_masses(tokens) if tokens else None
    if masses is not None and sum(masses.values()) > 0:
        total = sum(masses.values())
        rating = sum(int(r) * p for r, p in masses.items()) / total
        score = _score(rating)
        side = score >= threshold
        confidence = sum(p for r, p in masses.items() if (_score(int(r)) >= threshold) == side) / total
        return Grade(score, rating, confidence, masses)
    written = re.search(r"[1-5]", grader_run.text)
    if written is None:
        return None
    rating = int(written.group(0))
    return Grade(_score(rating), rating, None, None)


def _score(rating: float) -> float:
    return (rating - 1) / (len(RATINGS) - 1)


def rubric_check(check: Check, run: Run, case: Case, ask: Ask | None) -> CheckResult:
    threshold = check.threshold if check.threshold is not None else RUBRIC_THRESHOLD
    if ask is None:
        return CheckResult(check.label, False, "no grader: a rubric check needs an endpoint to ask (--grader)")
    request, why = grader_request(check, run, case, check.model or run.request.model)
    if request is None:
        return CheckResult(check.label, None, f"not checked: {why}")
    grader_run = ask(check, request)
    if grader_run.cancelled:
        return CheckResult(check.label, None, "not checked: stopped before the grader answered")
    if grader_run.error is not None:
        return CheckResult(check.label, False, f"grader error: {grader_run.error.kind}: "
                                               f"{shorten(grader_run.error.message, 100)}")
    grade = grade_of(grader_run, threshold)
    if grade is None:
        return CheckResult(check.label, False, f"the grader answered {q(grader_run.text)}, not a rating 1-5")
    ok = grade.score >= threshold
    how = (f"rating {grade.rating:.2f}/5 from logprobs, {grade.confidence:.0%} sure" if grade.confidence is not None
           else f"rating {grade.rating:g}/5 as written (no logprobs)")
    return CheckResult(check.label, ok, f"score {grade.score:.2f} {'>=' if ok else '<'} {threshold:.2f} ({how})",
                       score=grade.score, confidence=grade.confidence)

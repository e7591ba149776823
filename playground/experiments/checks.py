"""Grading one answer: every check kind, each giving pass or fail and why in one line.

`grade(run, case, checks, prices)` is the only entry: the runner calls it as each answer comes,
and a test (or a page reloading an old run) calls it again on the stored Runs to get the same
Trial. The check model itself (playground.presets.Check) lives in the preset file format.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any, Callable, Sequence

from playground.analysis.logprobs import known, perplexity
from playground.client.run import Run
from playground.client.schema import TokenLogprob
from playground.experiments.model import Case, CheckResult, Trial, TrialStatus, shorten
from playground.presets import Check
from playground.presets.model import VARIABLE_RE
from playground.settings import Prices, cost_of

# --- confidence from logprobs -------------------------------------------------------------


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


def _fill(template: str, case: Case, escape: Callable[[str], str] = str) -> tuple[str | None, str]:
    """The check's value with `{{expected}}` and the case's variables put in, or None and why
    not ("the case has no expected value") when the case has no value for one of them."""
    values = {**case.values, **({"expected": case.expected} if case.expected is not None else {})}
    missing = [name for name in VARIABLE_RE.findall(template) if name not in values]
    if missing:
        return None, ("the case has no expected value" if missing[0] == "expected"
                      else f"the case has no value for {{{{{missing[0]}}}}}")
    return VARIABLE_RE.sub(lambda m: escape(values[m.group(1)]), template), ""


def _q(text: str, limit: int = 40) -> str:
    return repr(shorten(text, limit))


def _text_check(check: Check, run: Run, case: Case) -> CheckResult:
    template = check.value or "{{expected}}"
    escape = re.escape if check.kind == "regex" else str
    value, why = _fill(template, case, escape)
    if value is None:
        return CheckResult(check.label, None, f"not checked: {why}")
    answer = run.text
    fold = str.casefold if check.ignore_case else (lambda s: s)
    if check.kind == "equals":
        ok = fold(answer.strip()) == fold(value.strip())
        return CheckResult(check.label, ok, f"answer {_q(answer)} {'==' if ok else '!='} {_q(value)}")
    if check.kind in ("contains", "not_contains"):
        found = fold(value) in fold(answer)
        ok = found if check.kind == "contains" else not found
        return CheckResult(check.label, ok, f"{_q(value)} {'found' if found else 'not found'} in {_q(answer)}")
    try:
        pattern = _regex(value, check.ignore_case)
    except re.error as exc:
        return CheckResult(check.label, False, f"pattern {_q(value)} does not compile: {exc}")
    match = pattern.search(answer)
    if match:
        return CheckResult(check.label, True, f"/{shorten(value, 30)}/ matches {_q(match.group(0))}")
    return CheckResult(check.label, False, f"/{shorten(value, 30)}/ does not match {_q(answer)}")


@lru_cache(maxsize=256)
def _regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)


def _json_valid(check: Check, run: Run, case: Case) -> CheckResult:
    try:
        data = json.loads(run.text)
    except ValueError as exc:
        return CheckResult(check.label, False, f"not JSON: {exc}")
    return CheckResult(check.label, True, f"valid JSON ({type(data).__name__})")


def _json_schema(check: Check, run: Run, case: Case) -> CheckResult:
    schema = check.schema_
    if schema is None:
        rf = run.request.response_format
        schema = rf.json_schema.schema_ if rf is not None and rf.json_schema is not None else None
    if schema is None:
        return CheckResult(check.label, False, "no schema: give one in the check or set a json_schema response_format")
    try:
        data = json.loads(run.text)
    except ValueError as exc:
        return CheckResult(check.label, False, f"not JSON: {exc}")
    problem = schema_problem(data, schema)
    return CheckResult(check.label, problem is None, problem or "matches the schema")


def schema_problem(data: Any, schema: dict[str, Any]) -> str | None:
    """The first way `data` breaks `schema` ("$.age: 'x' is not of type 'integer'"), or None."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{where}: {shorten(error.message, 80)}"


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    import jsonschema  # a dependency of Streamlit's (altair); imported only when a check needs it

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


def _tool_called(check: Check, run: Run, case: Case) -> CheckResult:
    calls = run.choices[0].tool_calls if run.choices else []
    if not calls:
        return CheckResult(check.label, False, f"no tool call (answer {_q(run.text)})")
    call = next((c for c in calls if check.tool is None or c.function.name == check.tool), None)
    if call is None:
        names = ", ".join(c.function.name for c in calls)
        return CheckResult(check.label, False, f"called {names}, not {check.tool}")
    name, arguments = call.function.name, call.function.arguments or "{}"
    try:
        data = json.loads(arguments)
    except ValueError as exc:
        return CheckResult(check.label, False, f"{name}: arguments are not JSON ({exc}): {_q(arguments)}")
    tool = next((t for t in run.request.tools or [] if t.function.name == name), None)
    if tool is None:
        return CheckResult(check.label, False, f"called {name}, which the request does not offer")
    problem = schema_problem(data, tool.function.parameters) if tool.function.parameters else None
    if problem:
        return CheckResult(check.label, False, f"{name} arguments: {problem}")
    return CheckResult(check.label, True, f"called {name}({shorten(arguments, 50)})")


def _limit(check: Check, value: float | None, what: str, fmt: str, unknown: str,
           at_most: bool = True) -> CheckResult:
    limit = check.limit or 0.0
    if value is None:
        return CheckResult(check.label, None if check.kind == "max_cost" else False, unknown)
    ok = value <= limit if at_most else value >= limit
    sign = ("<=" if ok else ">") if at_most else (">=" if ok else "<")
    return CheckResult(check.label, ok, f"{what} {value:{fmt}} {sign} {limit:{fmt}}")


def _grader(check: Check, run: Run, case: Case, prices: Prices | None) -> CheckResult:
    kind = check.kind
    if kind in ("equals", "contains", "not_contains", "regex"):
        return _text_check(check, run, case)
    if kind == "json_valid":
        return _json_valid(check, run, case)
    if kind == "json_schema":
        return _json_schema(check, run, case)
    if kind == "tool_called":
        return _tool_called(check, run, case)
    if kind == "max_latency_s":
        return _limit(check, run.total_s, "latency", ".2f", "no timing recorded")
    if kind == "max_completion_tokens":
        return _limit(check, float(run.completion_tokens), "completion tokens", ".0f", "no token count")
    if kind == "max_cost":
        return _limit(check, cost_of(run, prices or {}), "cost $", ".6f",
                      f"not checked: no price for {run.request.model} (add it to [prices])")
    tokens = run.choices[0].logprobs if run.choices else []
    if kind == "min_confidence":
        if not tokens:
            return CheckResult(check.label, False, "no logprobs: set logprobs (and top_logprobs for labels)")
        if check.labels and label_of(run.text, check.labels) is None:
            return CheckResult(check.label, False, f"answer {_q(run.text)} is none of {', '.join(check.labels)}")
        return _limit(check, confidence(run, check.labels), "confidence", ".2f", "no answer token", at_most=False)
    if kind == "max_perplexity":
        if not tokens:
            return CheckResult(check.label, False, "no logprobs: set logprobs to read perplexity")
        return _limit(check, perplexity(tokens), "perplexity", ".2f", "no token with a known logprob")
    raise ValueError(f"unknown check kind {kind!r}")  # the Check model allows no other


def check_run(check: Check, run: Run, case: Case, prices: Prices | None = None) -> CheckResult:
    """One check on one answer."""
    return _grader(check, run, case, prices)


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


def grade(run: Run, case: Case, checks: Sequence[Check], *, case_index: int = 0, variant: int = 0,
          repeat: int = 0, prices: Prices | None = None, labels: Sequence[str] | None = None) -> Trial:
    """The Trial for one answer: an error (no checks run), stopped, unchecked (every check was
    not applicable to it), fail (a check failed; its reason says when the answer was cut short)
    or pass. `correct` is the label check's verdict (label_check), for calibration."""
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
    results = tuple(check_run(check, run, case, prices) for check in checks)
    ended = _ended(run)
    if ended is not None:
        results = tuple(CheckResult(r.label, r.passed, f"{ended}: {r.reason}") if r.passed is False else r
                        for r in results)
    status: TrialStatus = ("fail" if any(r.passed is False for r in results) else
                           "unchecked" if results and all(r.passed is None for r in results) else "pass")
    label = label_check(checks)
    return Trial(status=status, checks=results, confidence=confidence(run, labels),
                 correct=results[label].passed if label is not None else None, **common)

"""Checks on the answer's text: equals, contains, not_contains, regex, starts_with, not_regex,
contains_any, contains_all, finish_reason and similar (difflib's ratio against a reference).

A check's value is a template: `{{expected}}` and the case's variables are filled in (`fill`).
When the case accepts several answers (`expected` as a list, or `any_of`), a check that reads
`{{expected}}` passes when it passes for any of them.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import Callable

from playground.client.run import Run
from playground.experiments.embeddings import Embed, cosine
from playground.experiments.model import Case, CheckResult, shorten
from playground.presets import Check
from playground.presets.model import VARIABLE_RE

SIMILAR_THRESHOLD = 0.8  # a similar check's default threshold


def fill(template: str, case: Case, escape: Callable[[str], str] = str) -> tuple[str | None, str]:
    """The check's value with `{{expected}}` and the case's variables put in, or None and why
    not ("the case has no expected value") when the case has no value for one of them."""
    values = {**case.values, **({"expected": case.expected} if case.expected is not None else {})}
    missing = [name for name in VARIABLE_RE.findall(template) if name not in values]
    if missing:
        return None, ("the case has no expected value" if missing[0] == "expected"
                      else f"the case has no value for {{{{{missing[0]}}}}}")
    return VARIABLE_RE.sub(lambda m: escape(values[m.group(1)]), template), ""


def q(text: str, limit: int = 40) -> str:
    return repr(shorten(text, limit))


@lru_cache(maxsize=256)
def regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)


def reads_expected(check: Check) -> bool:
    templates = [check.value or ("{{expected}}" if check.kind in DEFAULT_EXPECTED else "")] + list(check.values or [])
    return any("expected" in VARIABLE_RE.findall(t) for t in templates)


DEFAULT_EXPECTED = ("equals", "contains", "regex", "starts_with", "similar")  # value defaults to {{expected}}


def text_check(check: Check, run: Run, case: Case, embed: Embed | None = None) -> CheckResult:
    """One text check; over each accepted answer when the case has several and the check reads
    `{{expected}}` (the first that passes, else the first's failure, naming how many were tried)."""
    accepted = case.accepted
    if len(accepted) < 2 or not reads_expected(check):
        return _one(check, run, case, embed)
    results = [_one(check, run, case.model_copy(update={"expected": answer, "any_of": []}), embed)
               for answer in accepted]
    passing = [r for r in results if r.passed]
    if passing:
        return max(passing, key=lambda r: r.score if r.score is not None else 1.0)
    if check.kind in ("not_contains", "not_regex"):
        return results[0]
    best = max(results, key=lambda r: r.score if r.score is not None else 0.0)
    return CheckResult(best.label, best.passed, f"none of {len(accepted)} accepted answers: {best.reason}",
                       best.score, best.weight)


def _one(check: Check, run: Run, case: Case, embed: Embed | None = None) -> CheckResult:
    kind = check.kind
    answer = run.text
    fold = str.casefold if check.ignore_case else (lambda s: s)
    if kind in ("contains_any", "contains_all"):
        return _contains_list(check, answer, case, fold)
    template = check.value or "{{expected}}"
    escape = re.escape if kind in ("regex", "not_regex") else str
    value, why = fill(template, case, escape)
    if value is None:
        return CheckResult(check.label, None, f"not checked: {why}")
    if kind == "equals":
        ok = fold(answer.strip()) == fold(value.strip())
        return CheckResult(check.label, ok, f"answer {q(answer)} {'==' if ok else '!='} {q(value)}")
    if kind in ("contains", "not_contains"):
        found = fold(value) in fold(answer)
        ok = found if kind == "contains" else not found
        return CheckResult(check.label, ok, f"{q(value)} {'found' if found else 'not found'} in {q(answer)}")
    if kind == "starts_with":
        ok = fold(answer.lstrip()).startswith(fold(value.strip()))
        starts = "starts" if ok else "does not start"
        return CheckResult(check.label, ok, f"answer {q(answer)} {starts} with {q(value)}")
    if kind == "finish_reason":
        finish = run.finish_reason
        ok = finish == value.strip()
        return CheckResult(check.label, ok, f"finish_reason {finish!r} {'==' if ok else '!='} {value.strip()!r}")
    if kind == "similar":
        return _similar(check, answer, value, fold, embed)
    try:
        pattern = regex(value, check.ignore_case)
    except re.error as exc:
        return CheckResult(check.label, False, f"pattern {q(value)} does not compile: {exc}")
    match = pattern.search(answer)
    if kind == "not_regex":
        if match:
            return CheckResult(check.label, False, f"/{shorten(value, 30)}/ matches {q(match.group(0))}")
        return CheckResult(check.label, True, f"/{shorten(value, 30)}/ does not match {q(answer)}")
    if match:
        return CheckResult(check.label, True, f"/{shorten(value, 30)}/ matches {q(match.group(0))}")
    return CheckResult(check.label, False, f"/{shorten(value, 30)}/ does not match {q(answer)}")


def _contains_list(check: Check, answer: str, case: Case, fold: Callable[[str], str]) -> CheckResult:
    texts = []
    for template in check.values or []:
        value, why = fill(template, case)
        if value is None:
            return CheckResult(check.label, None, f"not checked: {why}")
        texts.append(value)
    found = [text for text in texts if fold(text) in fold(answer)]
    missing = [text for text in texts if text not in found]
    if check.kind == "contains_any":
        if found:
            return CheckResult(check.label, True, f"{q(found[0])} found in {q(answer)}")
        return CheckResult(check.label, False, f"none of {', '.join(q(t, 20) for t in texts)} in {q(answer)}")
    if missing:
        return CheckResult(check.label, False, f"{q(missing[0])} not found in {q(answer)} "
                                               f"({len(found)} of {len(texts)} found)")
    return CheckResult(check.label, True, f"all {len(texts)} found")


def similarity(answer: str, reference: str) -> float:
    """difflib's ratio of the two texts (surrounding space ignored): 1.0 the same, 0.0 nothing in common."""
    return difflib.SequenceMatcher(None, answer.strip(), reference.strip(), autojunk=False).ratio()


def _similar(check: Check, answer: str, reference: str, fold: Callable[[str], str],
             embed: Embed | None = None) -> CheckResult:
    """Cosine similarity of the two texts' embeddings when the check names an embedding model and
    the endpoint serves it; difflib's ratio otherwise (the reason says which, and why not embeddings)."""
    threshold = check.threshold if check.threshold is not None else SIMILAR_THRESHOLD
    how, note = "similarity", ""
    ratio: float | None = None
    if check.model:
        vectors, why = embed(check.model, [answer, reference]) if embed is not None else (None, "no endpoint")
        if vectors is not None:
            ratio, how = cosine(vectors[0], vectors[1]), f"cosine similarity ({check.model})"
        else:
            note = f" ({why}: difflib's ratio)"
    if ratio is None:
        ratio = similarity(fold(answer), fold(reference))
    ok = ratio >= threshold
    return CheckResult(check.label, ok, f"{how} {ratio:.2f} {'>=' if ok else '<'} {threshold:.2f} "
                                        f"to {q(reference)}{note}", score=ratio)

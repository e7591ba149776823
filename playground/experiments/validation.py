"""What an experiment is refused for before any request is sent: a check naming a variable no
case has (a typo such as `{{expeted}}` would otherwise be "not applicable" on every case and go
green), template syntax the engine does not fill (`{{ x | upper }}` would reach the model as
literal text), a json_schema check with no schema to check against, and a cases file without a
column that a check reads.

ExperimentRunner calls `validate` when it is built, so the CLI (exit 2) and the page (an error
under Run) refuse the same things; both read cases files with `columns_read` as required columns.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

from playground.client.schema import message_text
from playground.experiments.checks_code import CheckCodeError, load
from playground.experiments.model import Experiment, Variant
from playground.presets import Check
from playground.presets.model import VARIABLE_RE

TEMPLATE_KINDS = ("equals", "contains", "not_contains", "regex", "starts_with", "not_regex", "similar",
                  "finish_reason")  # the checks whose value is a template ({{expected}} by default for some)
EXPECTED = "expected"  # the case's expected answer, as a check reads it
_OPENING = re.compile(r"\{\{|\{%")  # where a template construct starts (jinja's `{{` and `{%`)


class ExperimentError(ValueError):
    """The experiment cannot be run as given; `problems` lists every reason, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def template_of(check: Check) -> str | None:
    """The check's template (its value, `{{expected}}` by default), or None for a kind without one."""
    if check.kind not in TEMPLATE_KINDS:
        return None
    return check.value or "{{" + EXPECTED + "}}"


def templates_of(check: Check) -> list[str]:
    """Every template the check fills: its value (or `{{expected}}`), contains_any/all's values,
    json_path's value and pattern, a rubric's prompt (whose `{{answer}}` is the answer itself)."""
    if check.kind in TEMPLATE_KINDS:
        return [check.value or "{{" + EXPECTED + "}}"]
    if check.kind in ("contains_any", "contains_all"):
        return list(check.values or [])
    if check.kind == "json_path":
        return [text for text in (check.value, check.matches) if text]
    if check.kind == "rubric":
        return [(check.value or "").replace("{{answer}}", "")]
    return []


def names_in(template: str) -> list[str]:
    """The `{{variables}}` a template fills, in order of first use."""
    return list(dict.fromkeys(VARIABLE_RE.findall(template)))


def unsupported_syntax(text: str) -> str | None:
    """The first `{{ ... }}` or `{% ... %}` in `text` that is not a plain `{{name}}` (a filter, an
    expression, a tag), as written; None when there is none."""
    for match in _OPENING.finditer(text):
        if match.group(0) == "{{" and VARIABLE_RE.match(text, match.start()):
            continue
        end = text.find("}}" if match.group(0) == "{{" else "%}", match.end())
        return text[match.start(): end + 2 if end >= 0 else match.start() + 30]
    return None


def check_names(checks: Iterable[Check]) -> list[str]:
    """Every variable the checks' templates read (`expected` included)."""
    names: list[str] = []
    for check in checks:
        for template in templates_of(check):
            names += [name for name in names_in(template) if name not in names]
    return names


def _message_texts(variant: Variant) -> list[str]:
    return [message_text(message) for message in variant.request.messages]


def _has_response_schema(variant: Variant) -> bool:
    rf = variant.request.response_format
    return rf is not None and rf.json_schema is not None and rf.json_schema.schema_ is not None


def problems(experiment: Experiment) -> list[str]:
    """Every reason `experiment` cannot be run, in plain words (none: it can)."""
    found: list[str] = []
    known = {EXPECTED}
    for variant in experiment.variants:
        known |= set(variant.defaults) | {name for text in _message_texts(variant) for name in names_in(text)}
    for case in experiment.cases:
        known |= set(case.values)
    own = [(f"case {n}'s check", check) for n, case in enumerate(experiment.cases, 1) for check in case.checks]
    for where, check in [("check", check) for check in experiment.checks] + own:
        for template in templates_of(check):
            odd = unsupported_syntax(template)
            if odd is not None:
                found.append(f"{where} {check.label!r}: {odd!r} is not supported (only {{{{name}}}} is filled in)")
                break
            unknown = [name for name in names_in(template) if name not in known]
            if unknown:
                found.append(f"{where} {check.label!r} names {{{{{unknown[0]}}}}}, which no case has "
                             f"(the cases have {', '.join(sorted(known))})")
                break
        if check.kind == "python":
            try:
                load(check.value or "", experiment.folder)
            except CheckCodeError as error:
                found.append(str(error))
        if check.kind == "json_schema" and check.schema_ is None:
            bare = [variant.label for variant in experiment.variants if not _has_response_schema(variant)]
            if bare:
                found.append(f"check {check.label!r} has no schema: give one in the check, or a json_schema "
                             f"response_format to variant {bare[0]!r}")
    for variant in experiment.variants:
        for text in _message_texts(variant):
            odd = unsupported_syntax(text)
            if odd is not None:
                found.append(f"variant {variant.label!r}: {odd!r} in its messages is not supported "
                             "(only {{name}} is filled in; it would reach the model as written)")
                break
    return found


def validate(experiment: Experiment) -> Experiment:
    """`experiment` itself, or ExperimentError with every problem."""
    found = problems(experiment)
    if found:
        raise ExperimentError(found)
    return experiment


def columns_read(checks: Iterable[Check], defaults: Mapping[str, str | None]) -> list[str]:
    """The columns a cases file must have for `checks`: `expected`, and each prompt variable they
    read that has no default (`defaults`: the preset's). A name that is neither is a typo, which
    `problems` refuses."""
    return [name for name in check_names(checks) if name == EXPECTED or (name in defaults and defaults[name] is None)]

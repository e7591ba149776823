"""Checks on the answer's structure: json_valid, json_schema, contains_json (the first JSON value
in prose or a code fence), json_path (a value inside the parsed answer), tool_called."""

from __future__ import annotations

import json
import re
from typing import Any

from playground.client.run import Run
from playground.experiments.checks_text import fill, q, regex
from playground.experiments.model import Case, CheckResult, shorten
from playground.json_schema import schema_problem
from playground.presets import Check
from playground.tools import check_call

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|jsonc)?[ \t]*\n(.*?)```", re.DOTALL)
_STEP = re.compile(r"""\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[\s*'([^']*)'\s*\]""")
_MISSING = object()


def first_json(text: str) -> tuple[Any, str] | None:
    """The first JSON value in `text` and where it was ("in the whole answer", "in a code fence", "at
    character 12"): the whole text if it parses, else a ```json fence, else the first `{` or `[`
    from which a JSON value reads. None when there is none."""
    try:
        return json.loads(text), "in the whole answer"
    except ValueError:
        pass
    for fence in _FENCE.finditer(text):
        try:
            return json.loads(fence.group(1)), "in a code fence"
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        return value, f"at character {match.start()}"
    return None


def read_path(data: Any, path: str) -> Any:
    """The value at `path` ($.a.b[0], a.b, $["a b"]) in `data`; _MISSING when it is not there.
    ValueError when the path cannot be read."""
    rest = path.strip()
    rest = rest[1:] if rest.startswith("$") else rest
    if rest and not rest.startswith((".", "[")):
        rest = "." + rest
    position, current = 0, data
    while position < len(rest):
        step = _STEP.match(rest, position)
        if step is None:
            raise ValueError(f"cannot read the path {path!r} at {rest[position:]!r}")
        position = step.end()
        key, index, quoted, single = step.groups()
        if index is not None:
            if not isinstance(current, list) or int(index) >= len(current):
                return _MISSING
            current = current[int(index)]
            continue
        name = key if key is not None else (json.loads(f'"{quoted}"') if quoted is not None else single)
        if not isinstance(current, dict) or name not in current:
            return _MISSING
        current = current[name]
    return current


def json_valid(check: Check, run: Run, case: Case) -> CheckResult:
    try:
        data = json.loads(run.text)
    except ValueError as exc:
        return CheckResult(check.label, False, f"not JSON: {exc}")
    return CheckResult(check.label, True, f"valid JSON ({type(data).__name__})")


def json_schema(check: Check, run: Run, case: Case) -> CheckResult:
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


def contains_json(check: Check, run: Run, case: Case) -> CheckResult:
    found = first_json(run.text)
    if found is None:
        return CheckResult(check.label, False, f"no JSON value in {q(run.text)}")
    data, where = found
    if check.schema_ is not None:
        problem = schema_problem(data, check.schema_)
        if problem:
            return CheckResult(check.label, False, f"JSON {where}: {problem}")
    return CheckResult(check.label, True, f"JSON {type(data).__name__} {where}"
                       + (", matches the schema" if check.schema_ is not None else ""))


def json_path(check: Check, run: Run, case: Case) -> CheckResult:
    path = check.path or "$"
    found = first_json(run.text)
    if found is None:
        return CheckResult(check.label, False, f"no JSON value in {q(run.text)}")
    try:
        value = read_path(found[0], path)
    except ValueError as exc:
        return CheckResult(check.label, False, str(exc))
    if value is _MISSING:
        data = shorten(json.dumps(found[0], ensure_ascii=False), 40)
        return CheckResult(check.label, False, f"{path} is not in the answer's JSON ({data})")
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if check.matches is not None:
        pattern, why = fill(check.matches, case, re.escape)
        if pattern is None:
            return CheckResult(check.label, None, f"not checked: {why}")
        match = regex(pattern, check.ignore_case).search(shown)
        return CheckResult(check.label, match is not None,
                           f"{path} = {q(shown)} {'matches' if match else 'does not match'} /{shorten(pattern, 30)}/")
    if check.value is None:
        return CheckResult(check.label, True, f"{path} = {q(shown)}")
    wanted, why = fill(check.value, case)
    if wanted is None:
        return CheckResult(check.label, None, f"not checked: {why}")
    ok = _same(value, wanted, check.ignore_case)
    return CheckResult(check.label, ok, f"{path} = {q(shown)} {'==' if ok else '!='} {q(wanted)}")


def _same(value: Any, wanted: str, ignore_case: bool) -> bool:
    """A value read from JSON against the check's text: strings as text, others as JSON (`42`, `true`)."""
    if isinstance(value, str):
        return value.casefold() == wanted.casefold() if ignore_case else value == wanted
    try:
        return json.loads(wanted) == value
    except ValueError:
        return False


def tool_called(check: Check, run: Run, case: Case) -> CheckResult:
    calls = run.choices[0].tool_calls if run.choices else []
    if not calls:
        return CheckResult(check.label, False, f"no tool call (answer {q(run.text)})")
    call = next((c for c in calls if check.tool is None or c.function.name == check.tool), None)
    if call is None:
        names = ", ".join(c.function.name for c in calls)
        return CheckResult(check.label, False, f"called {names}, not {check.tool}")
    # the same judgement the Playground's call view shows (playground.tools.check_call)
    checked = check_call(call, run.request.tools)
    name, arguments = call.function.name, call.function.arguments or "{}"
    if checked.fault == "json":
        return CheckResult(check.label, False, f"{name}: {checked.problem}: {q(arguments)}")
    if checked.fault == "tool":
        return CheckResult(check.label, False, f"called {name}, which the request does not offer")
    if checked.fault == "schema":
        return CheckResult(check.label, False, f"{name} arguments: {checked.problem}")
    return CheckResult(check.label, True, f"called {name}({shorten(arguments, 50)})")

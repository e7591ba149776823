"""Cases on disk: `presets/NAME.cases.csv` beside the preset, imported from CSV or JSONL and
exported to both.

A CSV has a header row: one column per `{{variable}}`, plus `expected` and `note` (optional).
A JSONL file has one object per line, either flat ({"review": "...", "expected": "good"}) or
{"values": {...}, "expected": ..., "note": ...}. A case may accept several answers (`expected` as
a JSON list of texts, or `any_of`) and add checks of its own (JSONL: a `checks` list; CSV: a
column named after a kind, such as `contains`, `icontains` or `regex`, or a `checks` column
holding a JSON list); the preset's checks grade every case first. An import keeps every good row and names each
bad one by its line number and reason; at most MAX_CASES rows are read. `required`: the columns
the checks read (`expected` for `equals {{expected}}`): a file without one (a CSV header without
it, a JSONL file none of whose rows has it) is refused as a whole; a row that leaves it blank is
read (its checks say they did not apply).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from pydantic import ValidationError

from playground.client.schema import ChatRequest, describe_error, message_text
from playground.experiments.model import RESERVED_COLUMNS, Case
from playground.presets import Check
from playground.presets.model import VARIABLE_RE

MAX_CASES = 1000
# A CSV column named after a check kind adds that check to its row (its cell the check's value;
# the `i` form ignores case); contains_any/contains_all take a JSON list. `checks`: a JSON list
# of whole checks. `any_of`: more accepted answers (a JSON list), as `expected` written as a list.
_COLUMN_KINDS = ("equals", "contains", "not_contains", "regex", "starts_with", "not_regex", "contains_any",
                 "contains_all", "similar", "finish_reason", "rubric", "python")
_FOLDABLE = ("equals", "contains", "not_contains", "regex", "starts_with", "not_regex", "contains_any", "contains_all")
CHECK_COLUMNS: dict[str, tuple[str, bool]] = {kind: (kind, False) for kind in _COLUMN_KINDS} | {
    f"i{kind}": (kind, True) for kind in _FOLDABLE}
CASE_COLUMNS = ("any_of", "checks")  # read by the case, not prompt variables
MAX_BYTES = 5_000_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # as a preset Variable name


class CasesFileError(ValueError):
    """A cases file that cannot be read at all (not its rows: those are reported one by one)."""


@dataclass
class CaseImport:
    """What an import read: the good cases, and (line number, reason) for each bad row."""

    cases: list[Case] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def messages(self) -> list[str]:
        return [f"line {line}: {reason}" for line, reason in self.problems]


def cases_path(preset_path: str | Path) -> Path:
    """presets/NAME.cases.csv for presets/NAME.json."""
    path = Path(preset_path)
    return path.with_name(path.name.removesuffix(".json") + ".cases.csv")


def load_cases(path: str | Path, variables: Sequence[str] | None = None, required: Sequence[str] = ()) -> CaseImport:
    """Read a .csv or .jsonl file (by its suffix; anything else is read as CSV)."""
    path = Path(path)
    return parse_cases(path.read_bytes(), path.name, variables, required)


def save_cases(path: str | Path, cases: Sequence[Case]) -> Path:
    path = Path(path)
    path.write_text(cases_to_csv(cases), encoding="utf-8", newline="")
    return path


def parse_cases(data: bytes, filename: str = "cases.csv", variables: Sequence[str] | None = None,
                required: Sequence[str] = ()) -> CaseImport:
    """Cases from an uploaded or read file. `variables`: the preset's variables; a row that
    leaves one of them empty is reported (unless `variables` is None: then any column goes).
    CasesFileError when the file as a whole is unusable (too big, not UTF-8, a bad header)."""
    if len(data) > MAX_BYTES:
        raise CasesFileError(f"{filename}: the file is over {MAX_BYTES // 1_000_000} MB ({len(data):,} bytes)")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise CasesFileError(f"{filename}: not UTF-8 text (byte 0x{data[exc.start]:02x} at position "
                             f"{exc.start})") from None
    if filename.lower().endswith((".jsonl", ".ndjson", ".json")):
        return _parse_jsonl(text, filename, variables, required)
    return _parse_csv(text, filename, variables, required)


def _check_row(case: Case, variables: Sequence[str] | None) -> str | None:
    if variables is None:
        return None
    unknown = [name for name in case.values if name not in variables]
    if unknown:
        return f"unknown variable {unknown[0]!r} (the prompt uses {', '.join(variables) or 'none'})"
    return None


def _parse_csv(text: str, filename: str, variables: Sequence[str] | None, required: Sequence[str]) -> CaseImport:
    result = CaseImport()
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return result
    except csv.Error as exc:
        raise CasesFileError(f"{filename}: line 1: {exc}") from None
    header = [name.strip() for name in header]
    _check_header(header, filename)
    names = [name for name in header if not _not_variable(name)]
    if variables is not None:
        missing = [name for name in variables if name not in names]
        if missing and len(missing) == len(variables):
            raise CasesFileError(f"{filename}: no column for {', '.join(missing)} (the header has "
                                 f"{', '.join(header)})")
    unread = [name for name in required if name not in header]
    if unread:
        raise CasesFileError(f"{filename}: no column {unread[0]!r}, which a check reads as {{{{{unread[0]}}}}} "
                             f"(the header has {', '.join(header)})")
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.problems.append((line, str(exc)))
            continue
        if not row or all(not cell.strip() for cell in row):
            continue  # blank lines between rows are not cases
        if len(result.cases) >= MAX_CASES:
            result.problems.append((line, _over_limit()))
            break
        if len(row) != len(header):
            result.problems.append((line, f"{len(row)} fields, the header has {len(header)}"))
            continue
        fields = dict(zip(header, row))
        try:
            expected, any_of = accepted_from_cell(fields.get("expected") or "", fields.get("any_of") or "")
            checks = checks_from_cells(fields)
        except ValueError as error:
            result.problems.append((line, str(error)))
            continue
        case = Case(values={name: fields[name] for name in names}, expected=expected, any_of=any_of,
                    note=fields.get("note") or None, checks=checks)
        _add(result, line, case, variables)
    return result


def _not_variable(name: str) -> bool:
    return name in RESERVED_COLUMNS or name in CASE_COLUMNS or name in CHECK_COLUMNS


def accepted_from_cell(expected: str, any_of: str = "") -> tuple[str | None, list[str]]:
    """(expected, any_of) from a CSV row: `expected` written as a JSON list gives several accepted
    answers, as `any_of` does. ValueError when a list is not a list of texts."""
    answers: list[str] = []
    for name, text in (("expected", expected), ("any_of", any_of)):
        stripped = text.strip()
        if name == "expected" and not _list_of_strings(stripped):
            answers += [text] if text else []  # a JSON answer such as [1, 2] is one answer, as written
        elif stripped.startswith("["):
            answers += _texts(stripped, name)
        elif stripped:
            answers.append(text)
    answers = list(dict.fromkeys(answers))
    return (answers[0], answers[1:]) if answers else (None, [])


def _list_of_strings(text: str) -> bool:
    if not (text.startswith("[") and text.endswith("]")):
        return False
    try:
        items = json.loads(text)
    except ValueError:
        return False
    return isinstance(items, list) and bool(items) and all(isinstance(item, str) for item in items)


def _texts(text: str, name: str) -> list[str]:
    try:
        items = json.loads(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} looks like a list but is not JSON") from None
    found = [_scalar(item) for item in items] if isinstance(items, list) else [None]
    if any(item is None for item in found):
        raise ValueError(f"{name} must be a list of texts, not {text!r}")
    return [item for item in found if item is not None]


def checks_from_cells(fields: dict[str, str]) -> list[Check]:
    """A CSV row's own checks: one per non-blank cell of a kind's column, then its `checks` list."""
    checks: list[Any] = []
    for column, (kind, fold) in CHECK_COLUMNS.items():
        cell = fields.get(column) or ""
        if not cell.strip():
            continue
        data: dict[str, Any] = {"kind": kind, **({"ignore_case": True} if fold else {})}
        if kind in ("contains_any", "contains_all"):
            data["values"] = _texts(cell, column) if cell.strip().startswith("[") else [cell]
        else:
            data["value"] = cell
        checks.append(data)
    if (fields.get("checks") or "").strip():
        try:
            listed = json.loads(fields["checks"])
        except ValueError as error:
            raise ValueError(f"checks is not JSON ({error})") from None
        if not isinstance(listed, list):
            raise ValueError("checks must be a JSON list of checks")
        checks += listed
    return _checks(checks)


def _checks(items: list[Any]) -> list[Check]:
    out = []
    for number, item in enumerate(items, 1):
        try:
            out.append(Check.model_validate(item))
        except ValidationError as error:
            raise ValueError(f"check {number}: " + "; ".join(describe_error(error))) from None
    return out


def _check_header(header: list[str], filename: str) -> None:
    for name in header:
        if not name:
            raise CasesFileError(f"{filename}: line 1: a column without a name")
        if not _not_variable(name) and not _NAME.fullmatch(name):
            raise CasesFileError(f"{filename}: line 1: column {name!r} is not a variable name "
                                 "(letters, digits and _, not starting with a digit)")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise CasesFileError(f"{filename}: line 1: column {duplicates[0]!r} appears twice")


def _add(result: CaseImport, line: int, case: Case, variables: Sequence[str] | None) -> None:
    reason = _check_row(case, variables)
    if reason is None and variables is not None:
        empty = [name for name in variables if name in case.values and not case.values[name].strip()]
        if empty:
            reason = f"no value for {{{{{empty[0]}}}}}"
    if reason:
        result.problems.append((line, reason))
    else:
        result.cases.append(case)


def _over_limit() -> str:
    return f"over the {MAX_CASES:,}-case limit: this row and those after it were not read"


def _parse_jsonl(text: str, filename: str, variables: Sequence[str] | None, required: Sequence[str]) -> CaseImport:
    result = CaseImport()
    named: set[str] = set()  # the keys any row has: a JSONL file's columns
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        if len(result.cases) >= MAX_CASES:
            result.problems.append((line, _over_limit()))
            break
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            result.problems.append((line, f"not valid JSON: {exc.msg} (column {exc.colno})"))
            continue
        case, reason = _case_from_object(obj)
        if case is not None:
            named |= _keys(obj)
        if case is None:
            result.problems.append((line, reason))
        else:
            _add(result, line, case, variables)
    unread = [name for name in required if name not in named]
    if unread and (result.cases or result.problems):
        raise CasesFileError(f"{filename}: no row has {unread[0]!r}, which a check reads as {{{{{unread[0]}}}}}")
    return result


def _case_from_object(obj: Any) -> tuple[Case | None, str]:
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}"
    values = obj.get("values") if isinstance(obj.get("values"), dict) else {
        k: v for k, v in obj.items() if k not in RESERVED_COLUMNS and k not in CASE_COLUMNS}
    extra = [k for k in obj if k not in ("values", *RESERVED_COLUMNS, *CASE_COLUMNS)] if "values" in obj else []
    if extra:
        return None, f"unexpected field {extra[0]!r} next to 'values'"
    out: dict[str, str] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not _is_name(name):
            return None, f"{name!r} is not a variable name"
        text = _scalar(value)
        if text is None:
            return None, f"the value of {name!r} is {type(value).__name__}, not text"
        out[name] = text
    note = _scalar(obj.get("note"))
    if obj.get("note") is not None and note is None:
        return None, f"note is {type(obj['note']).__name__}, not text"
    answers: list[str] = []
    for name in ("expected", "any_of"):
        given = obj.get(name)
        items = given if isinstance(given, list) else ([] if given is None else [given])
        texts = [_scalar(item) for item in items]
        if any(text is None for text in texts):
            what = "a list of texts" if isinstance(given, list) else "text"
            return None, f"{name} is {type(given).__name__}, not {what}"
        answers += [text for text in texts if text]
    answers = list(dict.fromkeys(answers))
    checks = obj.get("checks")
    if checks is not None and not isinstance(checks, list):
        return None, "checks must be a list of checks"
    try:
        own = _checks(checks or [])
    except ValueError as error:
        return None, str(error)
    return Case(values=out, expected=answers[0] if answers else None, any_of=answers[1:], note=note or None,
                checks=own), ""


def _keys(obj: dict[str, Any]) -> set[str]:
    values = obj.get("values") if isinstance(obj.get("values"), dict) else {}
    return set(obj) | set(values)


def _is_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def _scalar(value: Any) -> str | None:
    """Text as it is; numbers and booleans as they are written in JSON; None for the rest."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return None


# --- export -----------------------------------------------------------------------------------


def _columns(cases: Iterable[Case]) -> list[str]:
    names: list[str] = []
    for case in cases:
        names += [name for name in case.values if name not in names]
    return names


def expected_cell(case: Case) -> str:
    """`expected` as a CSV cell: the text, or a JSON list when the case accepts several answers."""
    accepted = case.accepted
    return json.dumps(accepted, ensure_ascii=False) if len(accepted) > 1 else (case.expected or "")


def checks_cell(case: Case) -> str:
    """A case's own checks as a CSV cell (a JSON list; "" when it has none)."""
    return json.dumps([check.to_dict() for check in case.checks], ensure_ascii=False) if case.checks else ""


def cases_to_csv(cases: Sequence[Case]) -> str:
    """A header (the variables, then expected and note, and checks when a case has its own) and
    one row per case; "\\n" line ends."""
    names = _columns(cases)
    own = any(case.checks for case in cases)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*names, *RESERVED_COLUMNS, *(["checks"] if own else [])])
    for case in cases:
        writer.writerow([*(case.values.get(name, "") for name in names), expected_cell(case), case.note or "",
                         *([checks_cell(case)] if own else [])])
    return out.getvalue()


def cases_to_jsonl(cases: Sequence[Case]) -> str:
    """One flat object per line: the variables, then expected and note when set."""
    lines = []
    for case in cases:
        obj: dict[str, Any] = dict(case.values)
        if case.expected is not None:
            obj["expected"] = case.accepted if case.any_of else case.expected
        if case.note is not None:
            obj["note"] = case.note
        if case.checks:
            obj["checks"] = [check.to_dict() for check in case.checks]
        lines.append(json.dumps(obj, ensure_ascii=False))
    return "\n".join(lines) + ("\n" if lines else "")


# --- a case from a past run -------------------------------------------------------------------


def cases_from_runs(template: ChatRequest, runs: Sequence[tuple[ChatRequest, str]]) -> tuple[list[Case], int]:
    """Past runs as cases (History's selected runs, as Langfuse builds a dataset from traces):
    each run's variable values, and its answer as `expected`. `runs`: (request sent, answer).
    Also how many runs did not fit the template (their messages are not the preset's)."""
    cases, misfits = [], 0
    for request, answer in runs:
        case = case_from_run(template, request)
        if case is None:
            misfits += 1
        else:
            cases.append(Case(values=case.values, expected=answer))
    return cases, misfits


def case_from_run(template: ChatRequest, run_request: ChatRequest) -> Case | None:
    """The variable values that turn `template` (a preset's request) into `run_request` (what a
    past run sent): "Add from History". None when the messages do not line up with the template."""
    if len(template.messages) != len(run_request.messages):
        return None
    values: dict[str, str] = {}
    for mine, sent in zip(template.messages, run_request.messages):
        pattern_text, sent_text = message_text(mine), message_text(sent)
        names = VARIABLE_RE.findall(pattern_text)
        if not names:
            if pattern_text != sent_text:
                return None
            continue
        parts = VARIABLE_RE.split(pattern_text)  # literal, name, literal, name, ..., literal
        regex = "".join(re.escape(part) if n % 2 == 0 else
                        (f"(?P={part})" if part in parts[1:n:2] else f"(?P<{part}>.*?)")
                        for n, part in enumerate(parts))
        match = re.fullmatch(regex, sent_text, re.DOTALL)
        if match is None:
            return None
        for name, value in match.groupdict().items():
            if values.setdefault(name, value) != value:
                return None
    return Case(values=values)

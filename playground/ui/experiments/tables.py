"""The tables the Experiments page shows, as DataFrames (shown as plain text: nothing in them is
markup): the cases editor's frame and back, the matrix, the per-variant summary, the comparison
with the run before, the calibration bins. No Streamlit here; page.py draws them."""

from __future__ import annotations

import math

import pandas as pd

from playground.experiments import Calibration, Comparison, ExperimentResult, cells, summarize
from playground.experiments.cases import accepted_from_cell, checks_cell, checks_from_cells, expected_cell
from playground.experiments.model import RESERVED_COLUMNS, Case, shorten
from playground.experiments.summary import flaky

ANSWER_CHARS = 40
MARKS = {"pass": "✅", "fail": "❌", "error": "⚠️", "unchecked": "❔", "pending": "…"}
CHANGE_MARKS = {"regressed": "🔴 ", "fixed": "🟢 ", "new": "🆕 "}
NOT_PASSED = ("fail", "error", "unchecked")  # what "Only failures" keeps


# --- cases <-> the editor ---------------------------------------------------------------------


def cases_frame(cases: list[Case], variables: list[str]) -> pd.DataFrame:
    """The variables, expected (a JSON list when a case accepts several answers) and note, and a
    `checks` column (each case's own, as a JSON list) when a case has checks of its own."""
    own = any(case.checks for case in cases)
    columns = [*variables, *RESERVED_COLUMNS, *(["checks"] if own else [])]
    rows = [{**{name: case.values.get(name, "") for name in variables},
             "expected": expected_cell(case), "note": case.note or "", "checks": checks_cell(case)} for case in cases]
    return pd.DataFrame(rows, columns=columns, dtype="object").fillna("")


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def frame_cases(frame: pd.DataFrame, variables: list[str]) -> list[Case]:
    """The editor's rows as cases (blank rows left out; an empty value falls back to the
    preset's default when the case is run)."""
    cases = []
    for row in frame.to_dict("records"):
        texts = {name: _text(row.get(name)) for name in [*variables, *RESERVED_COLUMNS, "checks"]}
        if not any(value.strip() for value in texts.values()):
            continue
        try:
            expected, any_of = accepted_from_cell(texts["expected"])
        except ValueError:  # a list that is not one: the text as typed
            expected, any_of = texts["expected"] or None, []
        try:
            own = checks_from_cells({"checks": texts["checks"]})
        except ValueError:  # not a list of checks: the cell stays as typed in the editor, the case has none
            own = []
        cases.append(Case(values={name: texts[name] for name in variables if texts[name] != ""},
                          expected=expected, any_of=any_of, note=texts["note"] or None, checks=own))
    return cases


# --- one run ----------------------------------------------------------------------------------


def cell_text(cell, change: str | None = None) -> str:
    counted = cell.counted
    mark = MARKS.get(cell.status, "")
    if len(counted) > 1:
        mark += f" {sum(t.status == 'pass' for t in counted)}/{len(counted)}"
    if cell.status == "error":
        error = next((t.error for t in counted if t.error), "") or ""
        body = shorten(error, ANSWER_CHARS)
    else:
        body = shorten(cell.answer, ANSWER_CHARS) or "(empty)"
    latency = f" · {cell.latency_s:.2f}s" if cell.latency_s is not None else ""
    tokens = f" · {cell.tokens} tok" if cell.tokens else ""
    return f"{CHANGE_MARKS.get(change or '', '')}{mark} {body}{graded(cell)}{latency}{tokens}"


def graded(cell) -> str:
    """" · score 0.76 · grader 95% sure" for a cell whose checks scored it (similar, python, rubric):
    the mean over its repeats; "" otherwise."""
    scored = [c for t in cell.counted for c in t.checks if c.score is not None]
    if not scored:
        return ""
    scores = [t.score for t in cell.counted if t.score is not None]
    text = f" · score {sum(scores) / len(scores):.2f}" if scores else ""
    sure = [c.confidence for c in scored if c.confidence is not None]
    return text + (f" · grader {sum(sure) / len(sure):.0%} sure" if sure else "")


def matrix_frame(result: ExperimentResult, only_failures: bool = False,
                 comparison: Comparison | None = None) -> pd.DataFrame:
    """Rows: cases; columns: the case, its expected answer, then one per variant."""
    experiment = result.experiment
    found = cells(result)
    labels = variant_labels(result)
    own = any(case.checks for case in experiment.cases)
    rows = []
    for c, case in enumerate(experiment.cases):
        row_cells = [found.get((c, v)) for v in range(len(experiment.variants))]
        if only_failures and not any(cell is not None and cell.status in NOT_PASSED for cell in row_cells):
            continue
        row = {"#": c + 1, "case": case.label(60), "expected": expected_cell(case)}
        if own:
            row["own checks"] = ", ".join(check.label for check in case.checks)
        for v, cell in enumerate(row_cells):
            change = comparison.status_of(c, v) if comparison is not None else None
            row[labels[v]] = "" if cell is None else cell_text(cell, change)
        rows.append(row)
    return pd.DataFrame(rows, columns=["#", "case", "expected", *(["own checks"] if own else []), *labels])


def flaky_frame(result: ExperimentResult) -> pd.DataFrame:
    """Cells whose repeats disagree: some passed, some did not."""
    cases, labels = result.experiment.cases, variant_labels(result)
    rows = [{"case": f"{cell.case + 1}. {cases[cell.case].label(50)}", "variant": labels[cell.variant],
             "passed": f"{cell.passed} of {len(cell.counted)}", "answers": "; ".join(
                 f"{shorten(g.text, 20)!r} ×{g.count}" for g in cell.answers)}
            for cell in flaky(result)]
    return pd.DataFrame(rows, columns=["case", "variant", "passed", "answers"])


def checks_frame(trial) -> pd.DataFrame:
    """One trial's checks: the verdict, the check, its score and weight, the grader's confidence
    (rubric, from its logprobs) and the reason."""
    rows = [{"": MARKS["pass"] if c.passed else MARKS["unchecked"] if c.passed is None else MARKS["fail"],
             "check": c.label, "score": "" if c.score is None else f"{c.score:.2f}",
             "grader confidence": "" if c.confidence is None else f"{c.confidence:.0%}", "weight": f"{c.weight:g}",
             "reason": c.reason} for c in trial.checks]
    return pd.DataFrame(rows, columns=["", "check", "score", "grader confidence", "weight", "reason"])


def variant_labels(result: ExperimentResult) -> list[str]:
    """Column names: unique even when two variants are the same setup."""
    return [f"{n}. {variant.label}" for n, variant in enumerate(result.experiment.variants, 1)]


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def summary_frame(result: ExperimentResult) -> pd.DataFrame:
    rows = []
    for row in summarize(result):
        rows.append({"best": "★" if row.best else "", "variant": f"{row.variant + 1}. {row.label}",
                     "model": row.model, "endpoint": row.endpoint or "", "pass rate": row.pass_rate,
                     "passed": row.passed, "failed": row.failed, "errors": row.errors, "unchecked": row.unchecked,
                     "mean latency (s)": _seconds(row.mean_latency_s), "p95 latency (s)": _seconds(row.p95_latency_s),
                     "mean queued (s)": _seconds(row.mean_queued_s), "tokens": row.tokens, "cost ($)": row.cost})
    return pd.DataFrame(rows)


def deltas_frame(comparison: Comparison) -> pd.DataFrame:
    rows = [{"variant": f"{d.variant + 1}. {d.label}", "pass rate Δ": d.pass_rate,
             "mean latency Δ (s)": _seconds(d.mean_latency_s), "tokens Δ": d.tokens, "cost Δ ($)": d.cost}
            for d in comparison.variants]
    return pd.DataFrame(rows)


def changes_frame(comparison: Comparison) -> pd.DataFrame:
    rows = []
    for kind, changes in (("regressed", comparison.regressions), ("fixed", comparison.fixes)):
        for change in changes:
            rows.append({"change": CHANGE_MARKS[kind] + kind, "case": change.case_label,
                         "variant": change.variant + 1, "before": shorten(change.before_answer, ANSWER_CHARS),
                         "after": shorten(change.after_answer, ANSWER_CHARS)})
    return pd.DataFrame(rows, columns=["change", "case", "variant", "before", "after"])


def bins_frame(calibration: Calibration) -> pd.DataFrame:
    return pd.DataFrame([{"confidence": f"{b.low:.1f}–{b.high:.1f}", "answers": b.count,
                          "mean confidence": b.mean_confidence, "share correct": b.share_correct}
                         for b in calibration.bins])


def mistakes_frame(result: ExperimentResult, calibration: Calibration) -> pd.DataFrame:
    cases = result.experiment.cases
    rows = [{"case": cases[t.case].label(60), "variant": t.variant + 1, "answer": shorten(t.answer, ANSWER_CHARS),
             "expected": cases[t.case].expected or "", "confidence": t.confidence}
            for t in calibration.confident_mistakes]
    return pd.DataFrame(rows, columns=["case", "variant", "answer", "expected", "confidence"])

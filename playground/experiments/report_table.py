"""The CLI's table (--format table): the variants' figures, failures with their reasons, unchecked
answers, with repeats each case's k of n and the flaky ones, calibration, and the comparison
with a baseline. Plain text; the other formats are in report_formats."""

from __future__ import annotations

import sys
import time
from typing import Sequence, TextIO

from playground.experiments.calibration import calibration
from playground.experiments.compare import Comparison
from playground.experiments.model import Experiment, Trial, shorten
from playground.experiments.results import ExperimentResult
from playground.experiments.summary import cells, failures, flaky, summarize, unchecked

MAX_FAILURES_SHOWN = 30


def _table(rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if n in right else cell.ljust(w) for n, (cell, w) in enumerate(zip(row, widths)))
            .rstrip() for row in rows]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_report(result: ExperimentResult, out: TextIO, *, comparison: Comparison | None = None,
                 endpoint: str = "", errors: Sequence[str] = (), pass_at: int | None = None) -> None:
    experiment = result.experiment
    took = (result.finished_at or time.time()) - result.started_at
    print(f"Experiment {experiment.name!r} ({experiment.id}), run {result.id} on {endpoint or 'the default endpoint'}",
          file=out)
    print(f"{len(experiment.cases)} cases x {len(experiment.variants)} variants x {experiment.repeats} repeats = "
          f"{experiment.total} trials; {len(result.trials)} done in {took:.1f} s ({result.status})", file=out)
    checks = ", ".join(check.label for check in experiment.checks) or "none (only errors fail)"
    own = sum(len(case.checks) for case in experiment.cases)
    print(f"Checks: {checks}" + (f"; and {own} of the cases' own" if own else "")
          + (f"; a trial passes at a score of {experiment.pass_threshold:g}" if experiment.pass_threshold is not None
             else ""), file=out)
    rows = [["", "variant", "model", "passed", "rate", "unchecked", "mean s", "p95 s", "tokens", "cost $"]]
    for s in summarize(result):
        rows.append(["*" if s.best else "", shorten(s.label, 36), shorten(s.model, 36), f"{s.passed}/{s.trials}",
                     _num(s.pass_rate and s.pass_rate * 100, ".1f") + ("%" if s.pass_rate is not None else ""),
                     str(s.unchecked), _num(s.mean_latency_s, ".2f"), _num(s.p95_latency_s, ".2f"), str(s.tokens),
                     _num(s.cost, ".6f")])
    print("", *_table(rows, right={3, 4, 5, 6, 7, 8, 9}), sep="\n", file=out)
    print("(* best: highest pass rate, then cheapest, then fastest; unchecked: no check applied to the answer)",
          file=out)
    _print_trials("Failures", failures(result), experiment, out)
    if experiment.repeats > 1:
        _print_repeats(result, out, pass_at)
    _print_trials("Unchecked (no check applied; --allow-unchecked lets them pass)", unchecked(result), experiment, out)
    for index, variant in enumerate(experiment.variants):
        figures = calibration(result, variant=index)
        if figures is not None and figures.count >= 2:
            print(f"\nCalibration, {variant.label}: {figures.sentence}", file=out)
    if comparison is not None:
        _print_comparison(comparison, experiment, out)
    for error in errors:
        print(f"warning: {error}", file=sys.stderr)


def _print_trials(title: str, trials: Sequence[Trial], experiment: Experiment, out: TextIO) -> None:
    if not trials:
        return
    print(f"\n{title} ({len(trials)}):", file=out)
    for trial in trials[:MAX_FAILURES_SHOWN]:
        case = experiment.cases[trial.case]
        where = f"case {trial.case + 1} ({case.label(30)}), variant {trial.variant + 1}"
        if experiment.repeats > 1:
            where += f", repeat {trial.repeat + 1}"
        answer = "" if trial.status == "error" else f" answer {shorten(trial.answer, 30)!r}:"
        print(f"  {trial.status.upper()} {where}:{answer} {trial.reason}", file=out)
    if len(trials) > MAX_FAILURES_SHOWN:
        print(f"  ... and {len(trials) - MAX_FAILURES_SHOWN} more (--out FILE has them all)", file=out)


def _print_comparison(comparison: Comparison, experiment: Experiment, out: TextIO) -> None:
    print(f"\nAgainst run {comparison.baseline_id} ({comparison.matched_cells} cells matched): "
          f"{len(comparison.regressions)} pass -> fail, {len(comparison.fixes)} fail -> pass, "
          f"{len(comparison.changed_answers)} answers changed, {len(comparison.new_cells)} new cells "
          f"({len(comparison.new_failures)} failing)", file=out)
    for word, changes in (("REGRESSED", comparison.regressions), ("FIXED", comparison.fixes)):
        for c in changes[:MAX_FAILURES_SHOWN]:
            print(f"  {word} case {c.case + 1} ({c.case_label}), variant {c.variant + 1}: {c.before} -> {c.after} "
                  f"({shorten(c.before_answer, 25)!r} -> {shorten(c.after_answer, 25)!r})", file=out)
    for c in comparison.new_cells[:MAX_FAILURES_SHOWN]:
        print(f"  NEW case {c.case + 1} ({c.case_label}), variant {c.variant + 1}: {c.after} "
              f"({shorten(c.after_answer, 25)!r})", file=out)
    for d in comparison.variants:
        rate = _num(d.pass_rate and d.pass_rate * 100, "+.1f")
        print(f"  variant {d.variant + 1} ({shorten(d.label, 30)}): pass rate {rate} points, "
              f"mean latency {_num(d.mean_latency_s, '+.2f')} s, cost {_num(d.cost, '+.6f')} $", file=out)


def _print_repeats(result: ExperimentResult, out: TextIO, pass_at: int | None) -> None:
    """Each case's k of n passed per variant, the flaky ones marked, and the --pass-at rule."""
    experiment = result.experiment
    rule = f"a case passes when {pass_at} of its {experiment.repeats} repeats do" if pass_at else \
        "a case passes when every repeat does (--pass-at M relaxes it)"
    print(f"\nRepeats ({rule}):", file=out)
    for (case, variant), cell in sorted(cells(result).items()):
        if not cell.counted:
            continue
        verdict = "pass" if cell.passes_at(pass_at or len(cell.counted)) else "FAIL"
        mark = " (flaky)" if cell.flaky else ""
        print(f"  {verdict} case {case + 1} ({experiment.cases[case].label(30)}), variant {variant + 1}: "
              f"{cell.passed} of {len(cell.counted)} passed{mark}", file=out)
    shaky = flaky(result)
    if shaky:
        print(f"Flaky cases ({len(shaky)}): " + ", ".join(f"case {c.case + 1} variant {c.variant + 1} "
                                                          f"({c.passed}/{len(c.counted)})" for c in shaky), file=out)

"""One run of an experiment against an earlier one: which cells went from pass to fail (a
regression), from fail to pass, which answers changed, and each variant's change in pass rate,
latency, tokens and cost.

Cases are matched by their values (Case.key), not their row, so adding or reordering cases
still lines the runs up; variants by their position (column 1 against column 1). A cell the
earlier run did not have (a new case, a new variant) is listed as new; a new cell that fails is
a failure as a regression is (`failing`). `matching_cells` tells, before a run, whether an
earlier run has anything to compare with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from playground.experiments.model import Experiment
from playground.experiments.results import ExperimentResult
from playground.experiments.summary import Cell, VariantSummary, cells, summarize


@dataclass(frozen=True)
class CellChange:
    case: int  # the case's row in the current run
    variant: int
    case_label: str
    before: str  # cell status: pass | fail | error | unchecked; "new" for a cell the baseline did not have
    after: str
    before_answer: str
    after_answer: str
    before_pass_rate: float | None
    after_pass_rate: float | None


@dataclass(frozen=True)
class VariantDelta:
    variant: int
    label: str
    before: VariantSummary | None
    after: VariantSummary

    @staticmethod
    def _delta(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else b - a

    @property
    def pass_rate(self) -> float | None:
        return self._delta(self.before and self.before.pass_rate, self.after.pass_rate)

    @property
    def mean_latency_s(self) -> float | None:
        return self._delta(self.before and self.before.mean_latency_s, self.after.mean_latency_s)

    @property
    def tokens(self) -> int | None:
        return None if self.before is None else self.after.tokens - self.before.tokens

    @property
    def cost(self) -> float | None:
        return self._delta(self.before and self.before.cost, self.after.cost)


@dataclass
class Comparison:
    baseline_id: str
    current_id: str
    regressions: list[CellChange] = field(default_factory=list)  # pass -> fail or error
    fixes: list[CellChange] = field(default_factory=list)  # fail or error -> pass
    changed_answers: list[CellChange] = field(default_factory=list)  # the most frequent answer differs
    variants: list[VariantDelta] = field(default_factory=list)
    new_cells: list[CellChange] = field(default_factory=list)  # cells the baseline did not have
    matched_cells: int = 0
    new_cases: int = 0  # cases not in the baseline
    dropped_cases: int = 0  # baseline cases not in this run
    _marks_cache: dict[tuple[int, int], str] | None = field(default=None, repr=False, compare=False)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    @property
    def new_failures(self) -> list[CellChange]:
        """New cells that did not pass (fail or error): failures, as regressions are."""
        return [c for c in self.new_cells if c.after in ("fail", "error")]

    @property
    def failing(self) -> bool:
        """A cell regressed, or a new one failed: what makes a run against a baseline exit 1."""
        return bool(self.regressions or self.new_failures)

    def status_of(self, case: int, variant: int) -> str | None:
        """"regressed", "fixed", "new" or None for a cell of the current run (the matrix marks it)."""
        return self._marks().get((case, variant))

    def _marks(self) -> dict[tuple[int, int], str]:
        if self._marks_cache is None:
            marks = {(c.case, c.variant): "new" for c in self.new_cells}
            marks |= {(c.case, c.variant): "regressed" for c in self.regressions}
            self._marks_cache = marks | {(c.case, c.variant): "fixed" for c in self.fixes}
        return self._marks_cache


def compare(baseline: ExperimentResult, current: ExperimentResult) -> Comparison:
    out = Comparison(baseline_id=baseline.id, current_id=current.id)
    base_rows = {case.key: n for n, case in enumerate(baseline.experiment.cases)}
    current_keys = [case.key for case in current.experiment.cases]
    present = set(current_keys)
    out.new_cases = sum(1 for key in present if key not in base_rows)
    out.dropped_cases = sum(1 for key in base_rows if key not in present)
    before_cells, after_cells = cells(baseline), cells(current)
    cases = current.experiment.cases
    for (case, variant), after in sorted(after_cells.items()):
        base_row = base_rows.get(current_keys[case])
        before = before_cells.get((base_row, variant)) if base_row is not None else None
        if after.status == "pending":
            continue
        if before is None or before.status == "pending":
            out.new_cells.append(_change(cases[case].label(), None, after))
            continue
        out.matched_cells += 1
        regressed = before.status == "pass" and after.status != "pass"
        fixed = before.status != "pass" and after.status == "pass"
        changed = before.answer.strip() != after.answer.strip()
        if not (regressed or fixed or changed):
            continue
        change = _change(cases[case].label(), before, after)
        if regressed:
            out.regressions.append(change)
        elif fixed:
            out.fixes.append(change)
        if changed:
            out.changed_answers.append(change)
    before_rows = summarize(baseline)
    for row in summarize(current):
        match = before_rows[row.variant] if row.variant < len(before_rows) else None
        out.variants.append(VariantDelta(row.variant, row.label, match, row))
    return out


def _change(label: str, before: Cell | None, after: Cell) -> CellChange:
    return CellChange(case=after.case, variant=after.variant, case_label=label,
                      before=before.status if before else "new", after=after.status,
                      before_answer=before.answer if before else "", after_answer=after.answer,
                      before_pass_rate=before.pass_rate if before else None, after_pass_rate=after.pass_rate)


def matching_cells(baseline: ExperimentResult, experiment: Experiment) -> int:
    """How many of the baseline's finished cells `experiment` has too (the same case values, a
    variant in the same column): 0 means the baseline cannot be compared with it."""
    rows = {case.key for case in experiment.cases}
    keys = [case.key for case in baseline.experiment.cases]
    return sum(1 for (case, variant), cell in cells(baseline).items()
               if cell.status != "pending" and case < len(keys) and keys[case] in rows
               and variant < len(experiment.variants))

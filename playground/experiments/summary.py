"""Figures of one run: the matrix's cells (a case under a variant, over its repeats) and each
variant's pass rate, latency, tokens and cost, with the best variant marked.

Stopped trials (cut off by Stop) are shown but not counted; errors and unchecked trials (every
check was not applicable) count as not passing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from playground.experiments.model import Trial
from playground.experiments.results import ExperimentResult

if TYPE_CHECKING:
    from playground.analysis.repeat import AnswerGroup

CellStatus = str  # "pass" | "fail" | "error" | "unchecked" | "pending"


@dataclass(frozen=True)
class Cell:
    """A case under a variant, over its repeats (figures computed once, by `cells`)."""

    case: int
    variant: int
    trials: tuple[Trial, ...]  # every repeat finished so far, stopped ones included
    status: CellStatus  # pass: every repeat passed; error: none got an answer; unchecked: none failed, some were
    # not checked; fail otherwise; pending: none counted
    pass_rate: float | None
    answer: str  # the most frequent answer ("" when none came)

    @property
    def counted(self) -> list[Trial]:
        return [t for t in self.trials if t.status != "stopped"]

    @property
    def answers(self) -> list[AnswerGroup]:
        """Distinct answers with their counts, most frequent first."""
        from playground.analysis.repeat import group_answers  # pandas: not at the CLI's start

        return group_answers([t.answer for t in self.counted if t.status != "error"])

    @property
    def latency_s(self) -> float | None:
        values = [t.latency_s for t in self.counted if t.latency_s is not None]
        return sum(values) / len(values) if values else None

    @property
    def tokens(self) -> int:
        return sum(t.completion_tokens for t in self.counted)

    @property
    def passed(self) -> int:
        """Repeats that passed (k of n: n is len(counted))."""
        return sum(t.status == "pass" for t in self.counted)

    @property
    def flaky(self) -> bool:
        """Some repeats passed and some failed (or erred)."""
        counted = self.counted
        return 0 < self.passed and any(t.status in ("fail", "error") for t in counted)

    def passes_at(self, m: int) -> bool:
        """The --pass-at rule: at least m of its repeats passed (all of them when m is more)."""
        return self.passed >= min(m, len(self.counted)) if self.counted else False


def _cell(case: int, variant: int, trials: list[Trial]) -> Cell:
    if len(trials) > 1:
        trials.sort(key=lambda t: t.repeat)
    counted = [t for t in trials if t.status != "stopped"]
    passed = sum(t.status == "pass" for t in counted)
    if not counted:
        status = "pending"
    elif passed == len(counted):
        status = "pass"
    elif all(t.status == "error" for t in counted):
        status = "error"
    elif all(t.status in ("pass", "unchecked") for t in counted):
        status = "unchecked"
    else:
        status = "fail"
    answered = [t.answer for t in counted if t.status != "error"]
    if len(answered) == 1 or len(set(answered)) == 1:
        answer = answered[0]
    elif answered:
        from playground.analysis.repeat import group_answers  # pandas: not at the CLI's start

        answer = group_answers(answered)[0].text
    else:
        answer = ""
    return Cell(case, variant, tuple(trials), status, passed / len(counted) if counted else None, answer)


def cells(result: ExperimentResult | Sequence[Trial]) -> dict[tuple[int, int], Cell]:
    """(case, variant) -> Cell, for every cell with at least one finished trial."""
    trials = result.trials if isinstance(result, ExperimentResult) else result
    grouped: dict[tuple[int, int], list[Trial]] = {}
    for trial in trials:
        key = (trial.case, trial.variant)
        group = grouped.get(key)
        if group is None:
            grouped[key] = [trial]
        else:
            group.append(trial)
    return {key: _cell(key[0], key[1], group) for key, group in grouped.items()}


@dataclass(frozen=True)
class VariantSummary:
    variant: int
    label: str
    model: str
    endpoint: str | None
    trials: int  # counted (not stopped)
    passed: int
    failed: int
    errors: int
    pass_rate: float | None  # passed / trials: unchecked trials are not passes
    mean_latency_s: float | None  # from each request's send (Trial.latency_s)
    p95_latency_s: float | None
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    best: bool = False
    unchecked: int = 0  # answers no check applied to (a blank expected, no price for max_cost)
    mean_queued_s: float | None = None  # waiting for a free slot before the send (Trial.queued_s)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between the closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(result: ExperimentResult) -> list[VariantSummary]:
    """One row per variant. The best: highest pass rate, then lowest cost, then lowest mean
    latency (only when some variant passed something: a star on a 0% variant reads as a winner)."""
    by_variant: list[list[Trial]] = [[] for _ in result.experiment.variants]
    for trial in result.trials:
        if trial.status != "stopped" and trial.variant < len(by_variant):
            by_variant[trial.variant].append(trial)
    rows = []
    for index, (variant, trials) in enumerate(zip(result.experiment.variants, by_variant)):
        latencies = [t.latency_s for t in trials if t.latency_s is not None and t.status != "error"]
        costs = [t.cost for t in trials if t.cost is not None]
        queued = [t.queued_s for t in trials if t.queued_s is not None]
        passed = sum(t.status == "pass" for t in trials)
        rows.append(VariantSummary(
            variant=index, label=variant.label, model=variant.request.model, endpoint=variant.endpoint,
            trials=len(trials), passed=passed, failed=sum(t.status == "fail" for t in trials),
            errors=sum(t.status == "error" for t in trials), unchecked=sum(t.status == "unchecked" for t in trials),
            pass_rate=passed / len(trials) if trials else None,
            mean_latency_s=sum(latencies) / len(latencies) if latencies else None,
            p95_latency_s=percentile(latencies, 95), prompt_tokens=sum(t.prompt_tokens for t in trials),
            completion_tokens=sum(t.completion_tokens for t in trials), cost=sum(costs) if costs else None,
            mean_queued_s=sum(queued) / len(queued) if queued else None))
    ranked = [r for r in rows if r.pass_rate]
    if ranked:
        best = min(ranked, key=lambda r: (-(r.pass_rate or 0.0), r.cost if r.cost is not None else math.inf,
                                          r.mean_latency_s if r.mean_latency_s is not None else math.inf))
        rows[best.variant] = VariantSummary(**{**best.__dict__, "best": True})
    return rows


def failures(result: ExperimentResult) -> list[Trial]:
    """Every trial that did not pass (stopped ones left out), in matrix order."""
    return sorted((t for t in result.trials if t.status in ("fail", "error")),
                  key=lambda t: (t.case, t.variant, t.repeat))


def unchecked(result: ExperimentResult) -> list[Trial]:
    """Every trial no check applied to, in matrix order: not a pass (the CLI exits 1 on them)."""
    return sorted((t for t in result.trials if t.status == "unchecked"), key=lambda t: (t.case, t.variant, t.repeat))


def flaky(result: ExperimentResult) -> list[Cell]:
    """Cells whose repeats disagree (some passed, some did not), in matrix order."""
    return [cell for _, cell in sorted(cells(result).items()) if cell.flaky]


def failing_cells(result: ExperimentResult, pass_at: int) -> list[Cell]:
    """Cells that fail the --pass-at rule (fewer than `pass_at` of their repeats passed; error
    and unchecked repeats are not passes), in matrix order."""
    return [cell for _, cell in sorted(cells(result).items()) if cell.counted and not cell.passes_at(pass_at)]

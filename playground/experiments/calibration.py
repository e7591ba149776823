"""Can the model's confidence be trusted? Drawn only when the checks include a label check
(`equals {{expected}}`, checks.label_check): its verdict, the one the table shows, is what
right and wrong mean here. For the answers it judged that came with logprobs: confidence in 10
bins against the share that was right, the expected calibration error (the bins' gaps weighted
by their size), the wrong answers the model was surest of, and one plain sentence ("no right
answers" alone when none was right: the figures of a prompt that is never right say nothing).

Confidence is checks.confidence (the first answer token's probability, or the answered label's
probability mass over the experiment's min_confidence labels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from playground.experiments.checks import label_check
from playground.experiments.model import Trial
from playground.experiments.results import ExperimentResult

BINS = 10
SURE = 0.8  # "wrong with confidence above this" is listed


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    mean_confidence: float | None
    share_correct: float | None


@dataclass
class Calibration:
    bins: list[Bin]
    count: int  # answers counted
    ece: float  # expected calibration error, 0..1 (0: confidence is exactly the share right)
    accuracy: float
    mean_confidence: float
    confident_mistakes: list[Trial] = field(default_factory=list)  # wrong with confidence > SURE, surest first
    pass_rate: float = 0.0  # of the same answers: every check passed, not only the label check

    @property
    def never_right(self) -> bool:
        return self.accuracy == 0

    @property
    def sentence(self) -> str:
        """What the figures mean, in words, around the fullest bin (the most common confidence)."""
        if self.never_right:
            return "no right answers"
        fullest = max(self.bins, key=lambda b: (b.count, b.low))
        said = round((fullest.mean_confidence or 0.0) * 100)
        right = round((fullest.share_correct or 0.0) * 100)
        lean = ("overconfident" if self.mean_confidence > self.accuracy + 0.05 else
                "underconfident" if self.mean_confidence < self.accuracy - 0.05 else "about right")
        return (f"When this model says {said}%, it is right {right}% of the time "
                f"({fullest.count} of {self.count} answers are in that bin). Overall it is {lean}: "
                f"mean confidence {self.mean_confidence:.0%}, right {self.accuracy:.0%}; "
                f"expected calibration error {self.ece:.2f} (0 is perfect). {self.right_means}")

    @property
    def right_means(self) -> str:
        """How "right" here relates to the pass rate the matrix shows."""
        if abs(self.pass_rate - self.accuracy) < 0.005:
            return (f"Right means the label check (equals {{{{expected}}}}) passed; every right answer also passed "
                    f"its other checks, so the pass rate of these answers is the same {self.pass_rate:.0%}.")
        return (f"Right means the label check (equals {{{{expected}}}}) passed; the pass rate of these answers is "
                f"{self.pass_rate:.0%}, as a pass also needs the other checks (a confidence floor, a format...).")


def calibration(source: ExperimentResult | Sequence[Trial], variant: int | None = None,
                bins: int = BINS) -> Calibration | None:
    """None when the experiment has no label check, or no answer has both a confidence and the
    label check's verdict."""
    if isinstance(source, ExperimentResult) and label_check(source.experiment.checks) is None:
        return None
    trials = source.trials if isinstance(source, ExperimentResult) else source
    counts = [0] * bins
    sums = [0.0] * bins
    rights = [0] * bins
    mistakes = []
    passed = 0
    for trial in trials:
        conf, correct = trial.confidence, trial.correct
        if conf is None or correct is None or trial.status not in ("pass", "fail"):
            continue
        if variant is not None and trial.variant != variant:
            continue
        n = min(int(conf * bins), bins - 1) if conf > 0 else 0
        counts[n] += 1
        sums[n] += conf
        rights[n] += correct
        passed += trial.status == "pass"
        if not correct and conf > SURE:
            mistakes.append(trial)
    total = sum(counts)
    if not total:
        return None
    table = [Bin(low=n / bins, high=(n + 1) / bins, count=counts[n],
                 mean_confidence=sums[n] / counts[n] if counts[n] else None,
                 share_correct=rights[n] / counts[n] if counts[n] else None) for n in range(bins)]
    ece = sum(abs(rights[n] - sums[n]) for n in range(bins)) / total  # sum of count/N * |acc - conf|
    mistakes.sort(key=lambda t: (-(t.confidence or 0.0), t.case, t.variant, t.repeat))
    return Calibration(bins=table, count=total, ece=ece, accuracy=sum(rights) / total,
                       mean_confidence=sum(sums) / total, confident_mistakes=mistakes, pass_rate=passed / total)

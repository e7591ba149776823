"""What an experiment is (cases, variants, checks, repeats) and what running it gives (trials).

Experiment, Case and Variant are pydantic models: they are stored with every run of the
experiment and read back to compare runs. Trial and CheckResult are frozen dataclasses: an
experiment of 1,000 cases x 4 variants x 10 repeats has 40,000 trials, and the figures are
computed from them in one pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from playground.client.schema import ChatRequest
from playground.presets import Check, Preset, fill_variables, slugify

MAX_VARIANTS = 4
MAX_REPEATS = 10
RESERVED_COLUMNS = ("expected", "note")  # case columns that are not prompt variables

TrialStatus = Literal["pass", "fail", "error", "stopped", "unchecked"]  # unchecked: every check not applicable


class Case(BaseModel):
    """One row: a value for each of the prompt's `{{variables}}`, what the answer should be
    (`expected`, optional; checks read it as `{{expected}}`) and a note for people."""

    model_config = ConfigDict(extra="forbid")

    values: dict[str, str] = Field(default_factory=dict)
    expected: str | None = None
    note: str | None = None
    any_of: list[str] = Field(default_factory=list)  # more accepted answers: `{{expected}}` is any of them
    checks: list[Check] = Field(default_factory=list)  # this case's own checks, after the preset's

    @property
    def accepted(self) -> list[str]:
        """Every accepted answer: `expected`, then `any_of` (no repeats)."""
        return list(dict.fromkeys([*([self.expected] if self.expected is not None else []), *self.any_of]))

    @property
    def key(self) -> str:
        """Identifies the case across runs of an experiment (its values, not its row number,
        so that reordering or adding cases still lines earlier results up)."""
        return json.dumps(self.values, sort_keys=True, ensure_ascii=False)

    def label(self, limit: int = 40) -> str:
        text = ", ".join(f"{k}={v}" for k, v in self.values.items()) or "(no variables)"
        return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class Variant(BaseModel):
    """One column of the matrix: a request template (its `{{variables}}` filled from each case)
    sent to an endpoint (by name; None: the runner's default endpoint)."""

    model_config = ConfigDict(extra="forbid")

    label: str
    request: ChatRequest
    endpoint: str | None = None
    preset: str | None = None  # the preset it came from: recorded on every Run (History filters by it)
    defaults: dict[str, str | None] = Field(default_factory=dict)  # variable defaults (the preset's)

    @classmethod
    def from_preset(cls, preset: Preset, *, label: str | None = None, endpoint: str | None = None,
                    model: str | None = None, params: dict[str, Any] | None = None) -> "Variant":
        variant = cls(label=label or preset.name, request=preset.request, endpoint=endpoint, preset=preset.name,
                      defaults=preset.defaults())
        return variant.with_overrides(model=model, params=params, label=label)

    @classmethod
    def from_request(cls, request: ChatRequest, *, label: str | None = None, endpoint: str | None = None,
                     model: str | None = None, params: dict[str, Any] | None = None,
                     preset: str | None = None) -> "Variant":
        """The Playground's current request (or any other) as a variant."""
        variant = cls(label=label or request.model, request=request, endpoint=endpoint, preset=preset)
        return variant.with_overrides(model=model, params=params, label=label)

    def with_overrides(self, *, model: str | None = None, params: dict[str, Any] | None = None,
                       endpoint: str | None = None, label: str | None = None) -> "Variant":
        """A copy with another model, endpoint, or wire fields (`params`: temperature, seed, any
        field of the request body; None removes a field). The label names what changed unless given."""
        wire = self.request.to_wire()
        changes = []
        if model:
            wire["model"] = model
            changes.append(model)
        for name, value in (params or {}).items():
            if value is None:
                wire.pop(name, None)
            else:
                wire[name] = value
            changes.append(f"{name}={value}")
        new_label = label or (f"{self.label} ({', '.join(changes)})" if changes else self.label)
        return self.model_copy(update={"request": ChatRequest.from_wire(wire), "label": new_label,
                                       "endpoint": endpoint or self.endpoint})

    def request_for(self, case: Case) -> ChatRequest:
        """The request sent for `case`; MissingVariableError when a variable has no value."""
        return fill_variables(self.request, {**self.defaults, **case.values})

    def case_for(self, case: Case) -> Case:
        """`case` with the variables it leaves to this variant's defaults filled in: what its
        checks' `{{variables}}` read (the prompt was sent with the same values)."""
        filled = {name: value for name, value in self.defaults.items() if value is not None and name not in case.values}
        return case.model_copy(update={"values": {**case.values, **filled}}) if filled else case


class Experiment(BaseModel):
    """Every case x variant x repeat, each answer graded by every check.

    `id` is what runs of the same experiment share (default: the preset's file name), so a
    later run can be compared with an earlier one."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    cases: list[Case]
    variants: list[Variant]
    checks: list[Check] = Field(default_factory=list)
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS)
    pass_threshold: float | None = Field(default=None, ge=0, le=1)  # the score a trial passes at; None: all checks
    folder: str | None = None  # the preset's folder: where `python` checks' files are looked for (None: refused)

    @field_validator("variants")
    @classmethod
    def _one_to_four(cls, value: list[Variant]) -> list[Variant]:
        if not 1 <= len(value) <= MAX_VARIANTS:
            raise ValueError(f"an experiment has 1 to {MAX_VARIANTS} variants, not {len(value)}")
        return value

    @field_validator("cases")
    @classmethod
    def _some_cases(cls, value: list[Case]) -> list[Case]:
        if not value:
            raise ValueError("an experiment needs at least one case")
        return value

    @classmethod
    def from_preset(cls, preset: Preset, cases: list[Case], variants: list[Variant] | None = None,
                    *, repeats: int = 1, id: str | None = None) -> "Experiment":
        """The preset's checks over `cases`; variants default to the preset itself."""
        return cls(id=id or slugify(preset.name), name=preset.name, cases=cases,
                   variants=variants or [Variant.from_preset(preset)], checks=list(preset.checks), repeats=repeats,
                   pass_threshold=preset.pass_threshold)

    def checks_for(self, case: Case) -> list[Check]:
        """What grades `case`: the preset's checks (every case's), then the case's own."""
        return [*self.checks, *case.checks] if case.checks else self.checks

    @property
    def total(self) -> int:
        return len(self.cases) * len(self.variants) * self.repeats

    def cells(self) -> list[tuple[int, int, int]]:
        """(case, variant, repeat) in the order they are sent: case by case, so that a run
        stopped half-way has whole rows of the matrix rather than half of every row."""
        return [(c, v, r) for c in range(len(self.cases)) for v in range(len(self.variants))
                for r in range(self.repeats)]


@dataclass(frozen=True, slots=True)
class CheckResult:
    label: str
    passed: bool | None  # None: not applicable to this case (no expected value, no price)
    reason: str  # one line: "confidence 0.41 < 0.70"
    score: float | None = None  # 0..1 for a scored check (similar, python's float, rubric); None: pass = 1, fail = 0
    weight: float = 1.0  # its share of the trial's score
    confidence: float | None = None  # rubric: the grader's probability of its verdict (None: no logprobs)

    @property
    def mark(self) -> str:
        return "pass" if self.passed else ("n/a" if self.passed is None else "FAIL")

    @property
    def value(self) -> float | None:
        """What it adds to the trial's score: its score, else 1 for a pass and 0 for a fail."""
        if self.passed is None:
            return None
        return self.score if self.score is not None else (1.0 if self.passed else 0.0)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"label": self.label, "passed": self.passed, "reason": self.reason}
        if self.score is not None:
            data["score"] = self.score
        if self.weight != 1.0:
            data["weight"] = self.weight
        if self.confidence is not None:
            data["confidence"] = self.confidence
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CheckResult":
        return cls(data["label"], data["passed"], data["reason"], data.get("score"), data.get("weight", 1.0),
                   data.get("confidence"))


@dataclass(frozen=True, slots=True)
class Trial:
    """One repeat of one cell: its answer, how it was graded, what it cost."""

    case: int
    variant: int
    repeat: int
    status: TrialStatus
    answer: str = ""
    checks: tuple[CheckResult, ...] = ()
    run_id: str | None = None  # the Run in the run store
    error: str | None = None
    latency_s: float | None = None  # from the request's send to the answer's end
    queued_s: float | None = None  # from the run's start to the send: waiting for a free slot
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    confidence: float | None = None  # the probability the model gave its answer (see checks.confidence)
    correct: bool | None = None  # the label check's verdict (checks.label_check); None: no such check ran
    finish_reason: str | None = None  # why the answer ended, as the server said ("stop", "length", ...)
    score: float | None = None  # the weighted mean of its checks' scores (None: no check applied)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def failures(self) -> list[CheckResult]:
        return [check for check in self.checks if check.passed is False]

    @property
    def reason(self) -> str:
        """Why it did not pass, in one line ("" when it passed); for an unchecked trial, why
        no check applied."""
        if self.error:
            return self.error
        if self.status == "unchecked":
            return "; ".join(f"{c.label}: {c.reason}" for c in self.checks)
        return "; ".join(f"{c.label}: {c.reason}" for c in self.failures)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["checks"] = [c.to_dict() for c in self.checks]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Trial":
        checks = tuple(CheckResult.from_dict(c) for c in data.get("checks") or ())
        return cls(**{**{k: data[k] for k in cls.__slots__ if k in data}, "checks": checks})


_SPACE = re.compile(r"\s+")


def shorten(text: str, limit: int = 60) -> str:
    """One line of at most `limit` characters (for reasons and tables; not escaped)."""
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"

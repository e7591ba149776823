"""Runs of experiments in the run store's SQLite file (tables experiment_runs and
experiment_trials, created by RunStore's migration to version 2).

An ExperimentResult is one run: the experiment as it was run (its definition), when, how it
ended, and its trials. Every trial names its Run in the `runs` table, so the full answer (token
heatmap, logprobs, timings) is one `RunStore.get` away, and a trial can be graded again from it.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Literal

from playground.experiments.model import Experiment, Trial
from playground.presets import MissingVariableError
from playground.runs.store import RunStore

RunStatus = Literal["running", "finished", "stopped"]


@dataclass
class ExperimentResult:
    """One run of an experiment. `trials` holds those finished so far (a stopped run keeps them)."""

    experiment: Experiment
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    status: RunStatus = "running"
    trials: list[Trial] = field(default_factory=list)

    @property
    def started(self) -> datetime:
        return datetime.fromtimestamp(self.started_at, tz=timezone.utc)

    def trial_map(self) -> dict[tuple[int, int, int], Trial]:
        return {(t.case, t.variant, t.repeat): t for t in self.trials}

    def cell_trials(self, case: int, variant: int) -> list[Trial]:
        return sorted((t for t in self.trials if t.case == case and t.variant == variant), key=lambda t: t.repeat)

    # --- a file: what --out writes and --baseline reads ----------------------------------

    def to_jsonl(self) -> str:
        """A header line (the run and its experiment), then one line per trial, each with the
        request its case filled in (`request`, as sent; null when a variable had no value)."""
        header = {"experiment_run": self.id, "started_at": self.started_at, "finished_at": self.finished_at,
                  "status": self.status, "experiment": self.experiment.model_dump(mode="json", by_alias=True)}
        lines = [json.dumps(header, ensure_ascii=False)]
        lines += [json.dumps({**trial.to_dict(), "request": self.request_of(trial)}, ensure_ascii=False)
                  for trial in sorted(self.trials, key=_order)]
        return "\n".join(lines) + "\n"

    def request_of(self, trial: Trial) -> dict | None:
        """The request the trial's case filled in, on the wire (None: a variable had no value)."""
        try:
            variant = self.experiment.variants[trial.variant]
            return variant.request_for(self.experiment.cases[trial.case]).to_wire()
        except (IndexError, MissingVariableError):
            return None

    @classmethod
    def from_jsonl(cls, text: str) -> "ExperimentResult":
        """ValueError (with the line) when the text is not a results file."""
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise ValueError("empty results file")
        try:
            header = json.loads(lines[0])
            result = cls(experiment=Experiment.model_validate(header["experiment"]), id=header["experiment_run"],
                         started_at=header["started_at"], finished_at=header.get("finished_at"),
                         status=header.get("status", "finished"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line 1: not the header of an experiment results file ({exc})") from None
        for number, line in enumerate(lines[1:], 2):
            try:
                result.trials.append(Trial.from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"line {number}: not a trial ({exc})") from None
        return result


def _order(trial: Trial) -> tuple[int, int, int]:
    return (trial.case, trial.variant, trial.repeat)


@dataclass(frozen=True)
class ExperimentRunSummary:
    id: str
    experiment_id: str
    name: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    total: int
    done: int
    passed: int


class ExperimentStore:
    """Experiment runs beside the run history: the same SQLite file as a RunStore."""

    def __init__(self, path: str | Path | RunStore, timeout_s: float = 10.0) -> None:
        self.runs = path if isinstance(path, RunStore) else RunStore(path, timeout_s)  # migrates the file
        self.path = self.runs.path
        self._timeout = timeout_s

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._timeout)
        conn.execute("PRAGMA busy_timeout = %d" % int(self._timeout * 1000))
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def keep_open(self) -> sqlite3.Connection:
        """A connection to hold while many short writes happen (close it after). SQLite
        checkpoints the WAL, with an fsync, whenever the last connection to a file closes: the
        store's one-connection-per-call writes then cost ~20 ms each instead of ~1 ms."""
        conn = sqlite3.connect(self.path, timeout=self._timeout, check_same_thread=False)
        conn.execute("SELECT count(*) FROM experiment_runs WHERE id = ''").fetchone()  # opens the WAL: now it counts
        return conn

    # --- writing --------------------------------------------------------------------------

    def begin(self, result: ExperimentResult) -> None:
        """Record the run (status running) before its first trial."""
        definition = result.experiment.model_dump_json(by_alias=True)
        with closing(self._connect()) as conn, conn:
            conn.execute("INSERT OR REPLACE INTO experiment_runs (id, experiment_id, name, started_at, finished_at, "
                         "status, total, definition) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (result.id, result.experiment.id, result.experiment.name, result.started_at,
                          result.finished_at, result.status, result.experiment.total, definition))

    def add_trials(self, experiment_run: str, trials: Iterable[Trial]) -> None:
        rows = [(experiment_run, t.case, t.variant, t.repeat, t.run_id, t.status, json.dumps(t.to_dict()))
                for t in trials]
        with closing(self._connect()) as conn, conn:
            conn.executemany("INSERT OR REPLACE INTO experiment_trials (experiment_run, case_index, variant, repeat, "
                             "run_id, status, data) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def finish(self, result: ExperimentResult) -> None:
        with closing(self._connect()) as conn, conn:
            conn.execute("UPDATE experiment_runs SET finished_at = ?, status = ? WHERE id = ?",
                         (result.finished_at, result.status, result.id))

    def save(self, result: ExperimentResult) -> None:
        """The whole run at once (an imported results file, a test)."""
        self.begin(result)
        self.add_trials(result.id, result.trials)

    def delete(self, experiment_run: str) -> bool:
        """The run and its trials (its Runs stay in the history)."""
        with closing(self._connect()) as conn, conn:
            conn.execute("DELETE FROM experiment_trials WHERE experiment_run = ?", (experiment_run,))
            return conn.execute("DELETE FROM experiment_runs WHERE id = ?", (experiment_run,)).rowcount > 0

    # --- reading --------------------------------------------------------------------------

    def get(self, experiment_run: str) -> ExperimentResult | None:
        with closing(self._connect()) as conn:
            head = conn.execute("SELECT id, started_at, finished_at, status, definition FROM experiment_runs "
                                "WHERE id = ?", (experiment_run,)).fetchone()
            if head is None:
                return None
            rows = conn.execute("SELECT data FROM experiment_trials WHERE experiment_run = ? "
                                "ORDER BY case_index, variant, repeat", (experiment_run,)).fetchall()
        result = ExperimentResult(experiment=Experiment.model_validate_json(head[4]), id=head[0],
                                  started_at=head[1], finished_at=head[2], status=head[3])
        result.trials = [Trial.from_dict(json.loads(row[0])) for row in rows]
        return result

    def list(self, experiment_id: str | None = None, limit: int = 50) -> list[ExperimentRunSummary]:
        """Newest first; only runs of `experiment_id` when given."""
        where, params = ("WHERE r.experiment_id = ?", [experiment_id]) if experiment_id else ("", [])
        sql = ("SELECT r.id, r.experiment_id, r.name, r.started_at, r.finished_at, r.status, r.total, "
               "count(t.status), coalesce(sum(t.status = 'pass'), 0) FROM experiment_runs r "
               f"LEFT JOIN experiment_trials t ON t.experiment_run = r.id {where} "
               "GROUP BY r.id ORDER BY r.started_at DESC, r.id DESC LIMIT ?")
        with closing(self._connect()) as conn:
            rows = conn.execute(sql, [*params, int(limit)]).fetchall()
        return [ExperimentRunSummary(id=r[0], experiment_id=r[1], name=r[2], started_at=_utc(r[3]),
                                     finished_at=_utc(r[4]) if r[4] is not None else None, status=r[5],
                                     total=r[6], done=r[7], passed=r[8]) for r in rows]

    def latest(self, experiment_id: str, before: str | None = None) -> ExperimentResult | None:
        """The newest run of the experiment (other than `before`): the usual baseline."""
        for summary in self.list(experiment_id, limit=10):
            if summary.id != before:
                return self.get(summary.id)
        return None

    def experiment_of(self, run_id: str) -> str | None:
        """The experiment run a stored Run belongs to (None: it was not part of one)."""
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT experiment_run FROM experiment_trials WHERE run_id = ?", (run_id,)).fetchone()
        return row[0] if row else None


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)

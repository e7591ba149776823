"""Runs of experiments in the run store's database (tables experiment_runs and
experiment_trials, created by playground.db's migrations; SQLite or PostgreSQL).

An ExperimentResult is one run: the experiment as it was run (its definition), when, how it
ended, and its trials. Every trial names its Run in the `runs` table, so the full answer (token
heatmap, logprobs, timings) is one `RunStore.get` away, and a trial can be graded again from it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Literal

from sqlalchemy import Connection, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from playground.db.schema import experiment_runs as _heads
from playground.db.schema import experiment_trials as _trials
from playground.db.user import User
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
    user: User | None = None  # who ran it, when the app knows (its login)

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
    user_name: str | None = None
    user_email: str | None = None


class ExperimentStore:
    """Experiment runs beside the run history, in the same database as a RunStore: `target` is
    an SQLite file's path, a database URL, or the RunStore itself."""

    def __init__(self, target: str | Path | RunStore, timeout_s: float = 10.0) -> None:
        self.runs = target if isinstance(target, RunStore) else RunStore(target, timeout_s)  # migrates
        self.path = self.runs.path
        self._reader = self.runs.engine
        self._writer = self.runs.writer

    @property
    def where(self) -> str:
        return self.runs.where

    def keep_open(self) -> Connection:
        """A connection to hold while many short writes happen (close it after). SQLite
        checkpoints the WAL, with an fsync, whenever the last connection to a file closes: the
        store's one-connection-per-call writes then cost ~20 ms each instead of ~1 ms. (On
        PostgreSQL it holds one pooled connection: harmless.)"""
        conn = self._reader.connect()
        conn.execute(select(_heads.c.id).where(_heads.c.id == "")).all()  # opens the WAL: now it counts
        conn.rollback()
        return conn

    # --- writing --------------------------------------------------------------------------

    def begin(self, result: ExperimentResult) -> None:
        """Record the run (status running) before its first trial."""
        user = result.user or User()
        row = {"id": result.id, "experiment_id": result.experiment.id, "name": result.experiment.name,
               "started_at": result.started_at, "finished_at": result.finished_at, "status": result.status,
               "total": result.experiment.total, "definition": result.experiment.model_dump_json(by_alias=True),
               "user_name": user.name, "user_email": user.email}
        with self._writer.begin() as conn:
            conn.execute(_replace(conn, _heads, ["id"]), [row])

    def add_trials(self, experiment_run: str, trials: Iterable[Trial]) -> None:
        rows = [{"experiment_run": experiment_run, "case_index": t.case, "variant": t.variant, "repeat": t.repeat,
                 "run_id": t.run_id, "status": t.status, "data": json.dumps(t.to_dict())} for t in trials]
        if not rows:
            return
        with self._writer.begin() as conn:
            conn.execute(_replace(conn, _trials, ["experiment_run", "case_index", "variant", "repeat"]), rows)

    def finish(self, result: ExperimentResult) -> None:
        with self._writer.begin() as conn:
            conn.execute(_heads.update().where(_heads.c.id == result.id)
                         .values(finished_at=result.finished_at, status=result.status))

    def save(self, result: ExperimentResult) -> None:
        """The whole run at once (an imported results file, a test)."""
        self.begin(result)
        self.add_trials(result.id, result.trials)

    def delete(self, experiment_run: str) -> bool:
        """The run and its trials (its Runs stay in the history)."""
        with self._writer.begin() as conn:
            conn.execute(_trials.delete().where(_trials.c.experiment_run == experiment_run))
            return conn.execute(_heads.delete().where(_heads.c.id == experiment_run)).rowcount > 0

    # --- reading --------------------------------------------------------------------------

    def get(self, experiment_run: str) -> ExperimentResult | None:
        with self._reader.connect() as conn:
            head = conn.execute(select(_heads.c.id, _heads.c.started_at, _heads.c.finished_at, _heads.c.status,
                                       _heads.c.definition, _heads.c.user_name, _heads.c.user_email)
                                .where(_heads.c.id == experiment_run)).first()
            if head is None:
                return None
            rows = conn.execute(select(_trials.c.data).where(_trials.c.experiment_run == experiment_run)
                                .order_by(_trials.c.case_index, _trials.c.variant, _trials.c.repeat)).scalars().all()
        user = User(head[5], head[6]) if head[5] or head[6] else None
        result = ExperimentResult(experiment=Experiment.model_validate_json(head[4]), id=head[0],
                                  started_at=head[1], finished_at=head[2], status=head[3], user=user)
        result.trials = [Trial.from_dict(json.loads(data)) for data in rows]
        return result

    def list(self, experiment_id: str | None = None, limit: int = 50, *,
             user_email: str | None = None) -> list[ExperimentRunSummary]:
        """Newest first; only runs of `experiment_id` when given; only `user_email`'s ("mine") when given."""
        passed = func.coalesce(func.sum(case((_trials.c.status == "pass", 1), else_=0)), 0)
        query = (select(_heads.c.id, _heads.c.experiment_id, _heads.c.name, _heads.c.started_at,
                        _heads.c.finished_at, _heads.c.status, _heads.c.total, func.count(_trials.c.status), passed,
                        _heads.c.user_name, _heads.c.user_email)
                 .select_from(_heads.outerjoin(_trials, _trials.c.experiment_run == _heads.c.id))
                 .group_by(_heads.c.id).order_by(_heads.c.started_at.desc(), _heads.c.id.desc()).limit(int(limit)))
        if experiment_id:
            query = query.where(_heads.c.experiment_id == experiment_id)
        if user_email is not None:
            query = query.where(_heads.c.user_email == user_email)
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        return [ExperimentRunSummary(id=r[0], experiment_id=r[1], name=r[2], started_at=_utc(r[3]),
                                     finished_at=_utc(r[4]) if r[4] is not None else None, status=r[5],
                                     total=r[6], done=r[7], passed=r[8], user_name=r[9], user_email=r[10])
                for r in rows]

    def latest(self, experiment_id: str, before: str | None = None) -> ExperimentResult | None:
        """The newest run of the experiment (other than `before`): the usual baseline."""
        for summary in self.list(experiment_id, limit=10):
            if summary.id != before:
                return self.get(summary.id)
        return None

    def experiment_of(self, run_id: str) -> str | None:
        """The experiment run a stored Run belongs to (None: it was not part of one)."""
        with self._reader.connect() as conn:
            return conn.execute(select(_trials.c.experiment_run).where(_trials.c.run_id == run_id).limit(1)).scalar()


def _replace(conn: Connection, table, keys: list[str]):
    """INSERT, or UPDATE every other column of the row with these keys (both engines' upsert)."""
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    return insert.on_conflict_do_update(index_elements=keys, set_={
        column.name: insert.excluded[column.name] for column in table.c if column.name not in keys})


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)

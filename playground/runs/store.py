"""Run history in SQLite: every run stored whole (its JSON), plus indexed columns to filter,
search and page through thousands of runs without loading them.

One connection per call (cheap, and safe from any of Streamlit's script threads); WAL
journal so readers do not block the writer. Times are stored as UTC epoch seconds.
Runs never carry keys; `save` refuses a run whose request looks like it holds one.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from playground.client.endpoint import Endpoint
from playground.client.run import Run, one_line, status_word
from playground.client.schema import message_text
from playground.secrets_check import find_secrets
from playground.settings import runs_db_path

PREVIEW_CHARS = 200
_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id           TEXT PRIMARY KEY,
    started_at   REAL NOT NULL,
    endpoint     TEXT NOT NULL DEFAULT '',
    model        TEXT NOT NULL DEFAULT '',
    preset       TEXT,
    text         TEXT NOT NULL DEFAULT '',
    prompt       TEXT NOT NULL DEFAULT '',
    error_kind   TEXT,
    partial      INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER,
    total_s      REAL,
    data         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS runs_endpoint ON runs (endpoint, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_model ON runs (model, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_preset ON runs (preset, started_at DESC);
"""
# Version 2: runs of experiments (playground.experiments.results reads and writes them). Each
# trial row names its Run (runs.id): that is how a Run is tagged with its experiment.
_EXPERIMENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiment_runs (
    id            TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL,
    name          TEXT NOT NULL DEFAULT '',
    started_at    REAL NOT NULL,
    finished_at   REAL,
    status        TEXT NOT NULL DEFAULT 'running',
    total         INTEGER NOT NULL DEFAULT 0,
    definition    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS experiment_runs_by_experiment ON experiment_runs (experiment_id, started_at DESC);
CREATE TABLE IF NOT EXISTS experiment_trials (
    experiment_run TEXT NOT NULL,
    case_index     INTEGER NOT NULL,
    variant        INTEGER NOT NULL,
    repeat         INTEGER NOT NULL,
    run_id         TEXT,
    status         TEXT NOT NULL,
    data           TEXT NOT NULL,
    PRIMARY KEY (experiment_run, case_index, variant, repeat)
);
CREATE INDEX IF NOT EXISTS experiment_trials_by_run ON experiment_trials (run_id);
"""
_MIGRATIONS = {2: _EXPERIMENT_SCHEMA}  # version -> what takes a file from the version before to it
_COLUMNS = ("id", "started_at", "endpoint", "model", "preset", "text", "prompt", "error_kind", "partial",
            "total_tokens", "total_s", "data")
_UPSERT = (
    f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    "ON CONFLICT(id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
)
_SUMMARY = (f"SELECT id, started_at, endpoint, model, preset, substr(text, 1, {PREVIEW_CHARS}), error_kind, "
            "partial, total_tokens, total_s FROM runs")
# What a list shows beyond the indexed columns, read from each run's JSON. Only the rows of the
# page asked for are parsed (see RunStore.list): never a JSON per row of a search.
_LAST_USER_TEXT = (
    "(SELECT CASE json_type(m.value, '$.content') WHEN 'text' THEN json_extract(m.value, '$.content') "
    "ELSE (SELECT group_concat(json_extract(p.value, '$.text'), '') FROM json_each(m.value, '$.content') AS p) END "
    "FROM json_each(runs.data, '$.request.messages') AS m WHERE json_extract(m.value, '$.role') = 'user' "
    "ORDER BY m.key DESC LIMIT 1)"
)
_DETAILS = (f", coalesce(json_extract(data, '$.cancelled'), 0), substr({_LAST_USER_TEXT}, 1, {PREVIEW_CHARS}), "
            "json_extract(data, '$.error.message'), json_extract(data, '$.error.status_code')")
_LISTED = _SUMMARY.removesuffix(" FROM runs") + _DETAILS + " FROM runs"

class SecretInRunError(ValueError):
    """A run about to be stored holds what looks like a key. Nothing is stripped silently."""


@dataclass(frozen=True)
class RunSummary:
    id: str
    started_at: datetime
    endpoint: str
    model: str
    preset: str | None
    text_preview: str
    error_kind: str | None
    partial: bool
    total_tokens: int | None
    total_s: float | None
    # Added for lists that say what happened (History): defaults keep older callers working.
    cancelled: bool = False
    prompt_preview: str = ""  # the last user message's first words, on one line
    error_message: str | None = None
    error_status: int | None = None

    @property
    def status(self) -> str:
        return status_word(failed=self.error_kind is not None, stopped=self.cancelled, partial=self.partial)


TimeBound = datetime | date | float | int | None


class RunStore:
    """Runs in one SQLite file. Every method opens and closes its own connection."""

    def __init__(self, path: str | Path, timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout_s
        with closing(self._connect()) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= _SCHEMA_VERSION:
                return  # already set up: no write, no lock (the pages make a store per call)
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:
                conn.executescript(_SCHEMA)  # every statement IF NOT EXISTS: a no-op on an older file
                for step in range(max(version, 1) + 1, _SCHEMA_VERSION + 1):
                    conn.executescript(_MIGRATIONS[step])
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._timeout)
        conn.execute("PRAGMA busy_timeout = %d" % int(self._timeout * 1000))
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    # --- writing ----------------------------------------------------------------------

    def save(self, run: Run, forbid: Iterable[str] = ()) -> None:
        """Insert or replace the run. `forbid`: strings (e.g. the endpoint's key) that must not
        appear anywhere in what is stored; SecretInRunError if one does."""
        self.save_many([run], forbid=forbid)

    def save_many(self, runs: Iterable[Run], forbid: Iterable[str] = ()) -> int:
        forbidden = [s for s in forbid if s]
        rows = [_row(run, forbidden) for run in runs]
        with closing(self._connect()) as conn, conn:
            conn.executemany(_UPSERT, rows)
        return len(rows)

    def delete(self, run_id: str) -> bool:
        with closing(self._connect()) as conn, conn:
            return conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    # --- reading ----------------------------------------------------------------------

    def get(self, run_id: str) -> Run | None:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT data FROM runs WHERE id = ?", (run_id,)).fetchone()
        return Run.model_validate_json(row[0]) if row else None

    def list(self, endpoint: str | None = None, model: str | None = None, preset: str | None = None,
             since: TimeBound = None, until: TimeBound = None, search: str | None = None,
             limit: int = 50, offset: int = 0) -> list[RunSummary]:
        """Newest first, one page. since is inclusive; until is exclusive for a datetime and
        takes in the whole day for a date (dates are local days; naive datetimes local time).
        search: a case-insensitive (ASCII) substring of the answer or of the messages."""
        where, params = _filters(endpoint, model, preset, since, until, search)
        # The page's ids first, then their details: the JSON is read for these rows alone.
        page = f"SELECT id FROM runs{where} ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
        sql = f"{_LISTED} WHERE id IN ({page}) ORDER BY started_at DESC, id DESC"
        with closing(self._connect()) as conn:
            rows = conn.execute(sql, [*params, max(0, int(limit)), max(0, int(offset))]).fetchall()
        return [_summary(row) for row in rows]

    def count(self, endpoint: str | None = None, model: str | None = None, preset: str | None = None,
              since: TimeBound = None, until: TimeBound = None, search: str | None = None) -> int:
        where, params = _filters(endpoint, model, preset, since, until, search)
        with closing(self._connect()) as conn:
            return conn.execute(f"SELECT count(*) FROM runs{where}", params).fetchone()[0]

    def distinct(self, column: str) -> list[str]:
        """The values of endpoint, model or preset in use, for filter pickers."""
        if column not in ("endpoint", "model", "preset"):
            raise ValueError(f"distinct() takes endpoint, model or preset, not {column!r}")
        with closing(self._connect()) as conn:
            rows = conn.execute(f"SELECT DISTINCT {column} FROM runs WHERE {column} IS NOT NULL "
                                f"AND {column} != '' ORDER BY {column}").fetchall()
        return [row[0] for row in rows]

    def __iter__(self) -> Iterator[RunSummary]:
        offset = 0
        while page := self.list(limit=500, offset=offset):
            yield from page
            offset += len(page)


# --- rows -------------------------------------------------------------------------------


def _row(run: Run, forbidden: list[str]) -> tuple[Any, ...]:
    _refuse_secret_fields(run)
    data = run.model_dump_json()
    for secret in forbidden:
        if secret in data:
            raise SecretInRunError(f"run {run.id} contains a forbidden string (a key?); not stored")
    usage = run.usage
    total_tokens = usage.total_tokens if usage is not None and usage.total_tokens else None
    text = "\n".join(part for choice in run.choices for part in (choice.text, choice.refusal or "") if part)
    prompt = "\n".join(message_text(message) for message in run.request.messages)
    return (run.id, _epoch(run.started_at), run.endpoint or "", run.request.model, run.preset, text, prompt,
            run.error.kind if run.error else None, int(run.partial), total_tokens, run.total_s, data)


def _refuse_secret_fields(run: Run) -> None:
    """Raise SecretInRunError when the request's extra fields or metadata carry a key-like
    name or value (the same check presets get). Messages are the user's own words and are
    not inspected."""
    request = run.request
    findings = find_secrets({"metadata": request.metadata or {}, **request.extra_fields}, any_value=True)
    if findings:
        raise SecretInRunError(f"run {run.id}: {'; '.join(findings)} looks like a credential; not stored")


def _summary(row: tuple) -> RunSummary:
    return RunSummary(
        id=row[0],
        started_at=datetime.fromtimestamp(row[1], tz=timezone.utc),
        endpoint=row[2],
        model=row[3],
        preset=row[4],
        text_preview=row[5] or "",
        error_kind=row[6],
        partial=bool(row[7]),
        total_tokens=row[8],
        total_s=row[9],
        cancelled=bool(row[10]),
        prompt_preview=one_line(row[11] or ""),
        error_message=row[12],
        error_status=row[13],
    )


def _epoch(moment: datetime | date | float | int, end_of_day: bool = False) -> float:
    if isinstance(moment, (int, float)):
        return float(moment)
    if not isinstance(moment, datetime):  # a date: local midnight (the next one for an end bound)
        moment = datetime.combine(moment, time.min)
        if end_of_day:
            return moment.timestamp() + 86400.0
    return moment.timestamp()  # naive datetimes are local time, as datetime.timestamp() says


def _filters(endpoint, model, preset, since, until, search) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("endpoint", endpoint), ("model", model), ("preset", preset)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("started_at >= ?")
        params.append(_epoch(since))
    if until is not None:
        clauses.append("started_at < ?")
        params.append(_epoch(until, end_of_day=True))
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append("(text LIKE ? ESCAPE '\\' OR prompt LIKE ? ESCAPE '\\')")
        params += [pattern, pattern]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params



def default_store() -> RunStore:
    """The history every page shows: the store at $PLAYGROUND_DATA_DIR (read now)."""
    return RunStore(runs_db_path())


def history_saver(endpoints: Iterable[Endpoint]) -> Callable[[Run], None]:
    """A Batch's on_finish: save each run to the history ($PLAYGROUND_DATA_DIR, read now, in
    the caller's thread) from its worker thread (a store of its own there: SQLite connections
    stay in their thread), refusing one that carries any of these endpoints' keys."""
    path = runs_db_path()
    keys = sorted({endpoint.api_key for endpoint in endpoints if endpoint.api_key})

    def save(run: Run) -> None:
        RunStore(path).save(run, forbid=keys)

    return save

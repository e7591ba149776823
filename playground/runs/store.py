"""Run history: every run stored whole (its JSON), plus columns to filter, search and page
through 100,000 runs without loading them. An SQLite file by default; PostgreSQL for a team
(PLAYGROUND_DATABASE_URL): one set of queries (SQLAlchemy Core), playground.db's engines and
migrations.

Times are stored as UTC epoch seconds. Runs never carry keys; `save` refuses a run whose
request looks like it holds one. Each run may name where it came from (`source`) and who ran
it (`user`), and carries the reader's feedback (score, comment, tags), kept when it is saved again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import Engine, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite

from playground.client.endpoint import Endpoint
from playground.client.run import Run, one_line, status_word
from playground.db import describe, engine_for, is_url, migrate
from playground.db.rows import PREVIEW_CHARS, run_columns
from playground.db.schema import experiment_trials as _cells
from playground.db.schema import runs as _runs
from playground.db.user import User
from playground.secrets_check import find_secrets
from playground.settings import database_target

SOURCES = ("playground", "compare", "repeat", "experiment", "cli", "branch")
_DISTINCT = ("endpoint", "model", "preset", "source", "user_email")
_FEEDBACK_UNSET = object()

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
    source: str | None = None
    user_name: str | None = None
    user_email: str | None = None
    score: int | None = None
    comment: str = ""
    tags: str = ""

    @property
    def status(self) -> str:
        return status_word(failed=self.error_kind is not None, stopped=self.cancelled, partial=self.partial)


TimeBound = datetime | date | float | int | None

def _listed(t) -> tuple:
    """What a list shows of each run, from the runs table or a subquery of it."""
    return (t.c.id, t.c.started_at, t.c.endpoint, t.c.model, t.c.preset, func.substr(t.c.text, 1, PREVIEW_CHARS),
            t.c.error_kind, t.c.partial, t.c.total_tokens, t.c.total_s, t.c.cancelled, t.c.prompt_preview,
            t.c.error_message, t.c.error_status, t.c.source, t.c.user_name, t.c.user_email, t.c.score, t.c.comment,
            t.c.tags)


_LISTED = _listed(_runs)
_NEWEST_FIRST = (_runs.c.started_at.desc(), _runs.c.id.desc())
# SQLite: a search page is first looked for among this many newest runs the other filters keep
# (RunStore._page_from_newest); the trigram index is asked only when they do not fill the page.
NEWEST_WINDOW = 500


class RunStore:
    """Runs in one database: `target` is an SQLite file's path or a database URL. Stores are
    cheap to make (the engine is the process's, the schema checked with one read)."""

    def __init__(self, target: str | Path, timeout_s: float = 10.0) -> None:
        self.url = str(target) if is_url(target) else None
        self.path = None if self.url else Path(target)  # the SQLite file (None: a server)
        self.engine: Engine = engine_for(self.url or self.path, timeout_s)
        # writes take SQLite's write lock when they begin (see playground.db.engine)
        self.writer: Engine = self.engine.execution_options(write=True)
        migrate(self.engine)
        self._indexed_search = _indexed_search(self.engine)

    def __repr__(self) -> str:
        return f"RunStore({self.where!r})"

    @property
    def where(self) -> str:
        """The file's path or the URL without its password, for messages."""
        return describe(self.url or self.path)

    @property
    def target(self) -> str | Path:
        return self.url or self.path

    # --- writing ----------------------------------------------------------------------

    def save(self, run: Run, forbid: Iterable[str] = (), *, source: str | None = None,
             user: User | None = None) -> None:
        """Insert or replace the run. `forbid`: strings (e.g. the endpoint's key) that must not
        appear anywhere in what is stored; SecretInRunError if one does."""
        self.save_many([run], forbid=forbid, source=source, user=user)

    def save_many(self, runs: Iterable[Run], forbid: Iterable[str] = (), *, source: str | None = None,
                  user: User | None = None) -> int:
        forbidden = [s for s in forbid if s]
        provenance = {"source": source, "user_name": user.name if user else None,
                      "user_email": user.email if user else None}
        rows = [{**_row(run, forbidden), **provenance} for run in runs]
        if not rows:
            return 0
        with self.writer.begin() as conn:
            conn.execute(_upsert(self.engine.dialect.name), rows)
        return len(rows)

    def delete(self, run_id: str) -> bool:
        with self.writer.begin() as conn:
            return conn.execute(_runs.delete().where(_runs.c.id == run_id)).rowcount > 0

    def set_feedback(self, run_id: str, *, score: Any = _FEEDBACK_UNSET, comment: str | None = None,
                     tags: Iterable[str] | str | None = None) -> bool:
        """Set the reader's score (an int, or None to clear it), comment and tags; what is not
        given stays. Tags are stored as one comma-separated line. False when there is no such run."""
        values: dict[str, Any] = {}
        if score is not _FEEDBACK_UNSET:
            values["score"] = None if score is None else int(score)
        if comment is not None:
            values["comment"] = comment
        if tags is not None:
            values["tags"] = join_tags(tags)
        if not values:
            return self.get(run_id) is not None
        with self.writer.begin() as conn:
            return conn.execute(_runs.update().where(_runs.c.id == run_id).values(**values)).rowcount > 0

    # --- reading ----------------------------------------------------------------------

    def get(self, run_id: str) -> Run | None:
        with self.engine.connect() as conn:
            data = conn.execute(select(_runs.c.data).where(_runs.c.id == run_id)).scalar()
        return Run.model_validate_json(data) if data is not None else None

    def summary(self, run_id: str) -> RunSummary | None:
        """One run's listing row (its feedback included), without reading the whole run."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*_LISTED).where(_runs.c.id == run_id)).first()
        return _summary(row) if row is not None else None

    def list(self, endpoint: str | None = None, model: str | None = None, preset: str | None = None,
             since: TimeBound = None, until: TimeBound = None, search: str | None = None,
             limit: int = 50, offset: int = 0, *, source: str | None = None,
             user_email: str | None = None, hide_source: str | None = None,
             experiment_run: str | None = None) -> list[RunSummary]:
        """Newest first, one page. since is inclusive; until is exclusive for a datetime and
        takes in the whole day for a date (dates are local days; naive datetimes local time).
        search: a case-insensitive substring of the answer, the messages, the comment or the tags.
        user_email: only that person's runs ("mine"). hide_source: leave out the runs from there
        (History hides experiment cells). experiment_run: only that experiment run's cells."""
        if search and self.engine.dialect.name == "sqlite":
            others = self._filters(endpoint, model, preset, since, until, None, source, user_email, hide_source,
                                   experiment_run)
            page = self._page_from_newest(others, search, max(0, int(limit)), max(0, int(offset)))
            if page is not None:
                return page
        where = self._filters(endpoint, model, preset, since, until, search, source, user_email, hide_source,
                              experiment_run)
        query = (select(*_LISTED).where(*where).order_by(*_NEWEST_FIRST)
                 .limit(max(0, int(limit))).offset(max(0, int(offset))))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_summary(row) for row in rows]

    def count(self, endpoint: str | None = None, model: str | None = None, preset: str | None = None,
              since: TimeBound = None, until: TimeBound = None, search: str | None = None, *,
              source: str | None = None, user_email: str | None = None, hide_source: str | None = None,
              experiment_run: str | None = None, cap: int | None = None) -> int:
        """How many runs match. With `cap`, counting stops past it (the result is then cap + 1):
        an exact count reads every matching run, and a search for a common word matches most."""
        where = self._filters(endpoint, model, preset, since, until, search, source, user_email, hide_source,
                              experiment_run)
        matching = select(_runs.c.id).where(*where)
        if cap is not None:
            matching = matching.limit(int(cap) + 1)
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(matching.subquery())).scalar_one()

    def distinct(self, column: str) -> list[str]:
        """The values of endpoint, model, preset, source or user_email in use, for filter pickers."""
        if column not in _DISTINCT:
            raise ValueError(f"distinct() takes {', '.join(_DISTINCT)}, not {column!r}")
        col = _runs.c[column]
        query = select(col).distinct().where(col.is_not(None), col != "").order_by(col)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def __iter__(self) -> Iterator[RunSummary]:
        offset = 0
        while page := self.list(limit=500, offset=offset):
            yield from page
            offset += len(page)

    def _page_from_newest(self, where: list, needle: str, limit: int, offset: int) -> list[RunSummary] | None:
        """The search page when the newest NEWEST_WINDOW runs hold it whole, else None. The
        trigram index finds a rare needle at once but a common one only after reading every
        run that holds it (300 ms for a word in all of 100,000 runs); those runs' newest page
        is found here in a millisecond. Exact: when the window holds offset + limit matches, no
        older run can come before them. ASCII needles only: LIKE folds ASCII case alone, which
        for an ASCII needle is what the index's folding finds too."""
        if not needle.isascii() or offset + limit > NEWEST_WINDOW or limit == 0:
            return None
        columns = {c.name for c in _runs.c} - {"data"}
        window = (select(*(_runs.c[name] for name in columns)).where(*where).order_by(*_NEWEST_FIRST)
                  .limit(NEWEST_WINDOW).subquery())
        found = or_(*(window.c[column].like(_pattern(needle), escape="\\") for column in _SEARCHED))
        query = (select(*_listed(window)).where(found).order_by(window.c.started_at.desc(), window.c.id.desc())
                 .limit(offset + limit))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_summary(row) for row in rows[offset:]] if len(rows) == offset + limit else None

    def _filters(self, endpoint, model, preset, since, until, search, source, user_email, hide_source=None,
                 experiment_run=None) -> list:
        where = [_runs.c[column] == value for column, value in (
            ("endpoint", endpoint), ("model", model), ("preset", preset), ("source", source),
            ("user_email", user_email)) if value is not None]
        if hide_source is not None:
            where.append(or_(_runs.c.source.is_(None), _runs.c.source != hide_source))
        if experiment_run is not None:
            where.append(_runs.c.id.in_(select(_cells.c.run_id).where(_cells.c.experiment_run == experiment_run)))
        if since is not None:
            where.append(_runs.c.started_at >= _epoch(since))
        if until is not None:
            where.append(_runs.c.started_at < _epoch(until, end_of_day=True))
        if search:
            where.append(_search(self.engine.dialect.name, search, self._indexed_search))
        return where


# --- search ------------------------------------------------------------------------------

_SEARCHED = ("text", "prompt", "comment", "tags")


_FTS_TABLES: dict[str, bool] = {}


def _indexed_search(engine: Engine) -> bool:
    """Whether this SQLite database has its full-text table (asked once per process: an SQLite
    built without FTS5 migrates without it, and search then scans). PostgreSQL: always ILIKE,
    which pg_trgm's indexes serve when the extension was there to make them."""
    if engine.dialect.name != "sqlite":
        return True
    key = str(engine.url)
    if key not in _FTS_TABLES:
        with engine.connect() as conn:
            _FTS_TABLES[key] = conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'runs_search'").scalar_one() > 0
    return _FTS_TABLES[key]


def _search(dialect: str, needle: str, indexed: bool = True):
    """A substring of any searched column, any case, through the engine's index: SQLite's FTS5
    trigram table (a quoted phrase is a substring there; it needs 3 characters, shorter needles
    scan), PostgreSQL's pg_trgm indexes, which serve ILIKE."""
    if dialect == "sqlite" and indexed and len(needle) >= 3:
        phrase = '"' + needle.replace('"', '""') + '"'
        return text("runs.rowid IN (SELECT rowid FROM runs_search WHERE runs_search MATCH :phrase)").bindparams(
            phrase=phrase)
    pattern = _pattern(needle)
    if dialect == "postgresql":
        return or_(*(_runs.c[column].ilike(pattern, escape="\\") for column in _SEARCHED))
    return or_(*(_runs.c[column].like(pattern, escape="\\") for column in _SEARCHED))  # SQLite: any ASCII case


def _pattern(needle: str) -> str:
    """A LIKE pattern for the needle anywhere, its own % _ and backslash taken literally."""
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def join_tags(tags: Iterable[str] | str) -> str:
    """Tags as stored: trimmed, no empties or repeats, in the order given, joined by ', '."""
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    seen: list[str] = []
    for tag in (item.strip() for item in items):
        if tag and tag not in seen:
            seen.append(tag)
    return ", ".join(seen)


def _upsert(dialect: str):
    """Insert, or replace what the run says about itself; a row's feedback stays, and so do its
    source and user when the new save does not name them."""
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_runs)
    derived = {key: insert.excluded[key] for key in _DERIVED}
    kept = {key: func.coalesce(insert.excluded[key], _runs.c[key]) for key in ("source", "user_name", "user_email")}
    return insert.on_conflict_do_update(index_elements=[_runs.c.id], set_={**derived, **kept})


# --- rows -------------------------------------------------------------------------------

_OWN = ("source", "user_name", "user_email", "score", "comment", "tags")  # not the Run's to replace
_DERIVED = [column.name for column in _runs.c if column.name != "id" and column.name not in _OWN]


def _row(run: Run, forbidden: list[str]) -> dict[str, Any]:
    _refuse_secret_fields(run)
    columns = run_columns(run)
    for secret in forbidden:
        if secret in columns["data"]:
            raise SecretInRunError(f"run {run.id} contains a forbidden string (a key?); not stored")
    return columns


def _refuse_secret_fields(run: Run) -> None:
    """Raise SecretInRunError when the request's extra fields or metadata carry a key-like
    name or value (the same check presets get). Messages are the user's own words and are
    not inspected."""
    request = run.request
    findings = find_secrets({"metadata": request.metadata or {}, **request.extra_fields}, any_value=True)
    if findings:
        raise SecretInRunError(f"run {run.id}: {'; '.join(findings)} looks like a credential; not stored")


def _summary(row) -> RunSummary:
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
        source=row[14],
        user_name=row[15],
        user_email=row[16],
        score=row[17],
        comment=row[18] or "",
        tags=row[19] or "",
    )


def _epoch(moment: datetime | date | float | int, end_of_day: bool = False) -> float:
    if isinstance(moment, (int, float)):
        return float(moment)
    if not isinstance(moment, datetime):  # a date: local midnight (the next one for an end bound)
        moment = datetime.combine(moment, time.min)
        if end_of_day:
            return moment.timestamp() + 86400.0
    return moment.timestamp()  # naive datetimes are local time, as datetime.timestamp() says


def default_store() -> RunStore:
    """The history every page shows: $PLAYGROUND_DATABASE_URL, else the SQLite file in
    $PLAYGROUND_DATA_DIR (read now)."""
    return RunStore(database_target())


def history_saver(endpoints: Iterable[Endpoint], source: str | None = None,
                  user: User | None = None) -> Callable[[Run], None]:
    """A Batch's on_finish: save each run to the history (where: read now, in the caller's
    thread) from its worker thread, refusing one that carries any of these endpoints' keys."""
    target = database_target()
    keys = sorted({endpoint.api_key for endpoint in endpoints if endpoint.api_key})

    def save(run: Run) -> None:
        RunStore(target).save(run, forbid=keys, source=source, user=user)

    return save

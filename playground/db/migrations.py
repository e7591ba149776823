"""The schema's versions, run in order by every engine: a new database goes through all of
them, an older one through those it lacks, in one transaction (all or nothing).

Where the version is kept: SQLite's `PRAGMA user_version` (what every release since the first
wrote, so a file made by any of them is recognised); on PostgreSQL a one-row table,
playground_schema. Two processes starting at once on a new database: the first migrates, the
second waits (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), then finds it done.

Add a version: append a function to STEPS. Never edit one that has shipped.
"""

from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from playground.client.run import Run
from playground.db.rows import run_columns

log = logging.getLogger(__name__)

_LOCK_ID = 0x706C6179  # "play": the advisory lock every migrating process takes on PostgreSQL


def _ddl(conn: Connection, script: str) -> None:
    """Run `;`-separated statements. REAL is double precision on PostgreSQL (its REAL is 4 bytes:
    epoch seconds would lose their minutes)."""
    postgres = conn.dialect.name == "postgresql"
    for statement in script.split(";"):
        if statement.strip():
            conn.exec_driver_sql(statement.replace(" REAL", " DOUBLE PRECISION") if postgres else statement)


def _v1_runs(conn: Connection) -> None:
    _ddl(conn, """
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
    CREATE INDEX IF NOT EXISTS runs_preset ON runs (preset, started_at DESC)
    """)


def _v2_experiments(conn: Connection) -> None:
    """Runs of experiments; each trial row names its Run (runs.id)."""
    _ddl(conn, """
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
    CREATE INDEX IF NOT EXISTS experiment_trials_by_run ON experiment_trials (run_id)
    """)


def _v3_team(conn: Connection) -> None:
    """Listing columns (no JSON read per row), provenance, feedback, presets in the database,
    and the search index (SQLite FTS5 trigrams; PostgreSQL pg_trgm), both finding substrings."""
    _ddl(conn, """
    ALTER TABLE runs ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN prompt_preview TEXT NOT NULL DEFAULT '';
    ALTER TABLE runs ADD COLUMN error_message TEXT;
    ALTER TABLE runs ADD COLUMN error_status INTEGER;
    ALTER TABLE runs ADD COLUMN source TEXT;
    ALTER TABLE runs ADD COLUMN user_name TEXT;
    ALTER TABLE runs ADD COLUMN user_email TEXT;
    ALTER TABLE runs ADD COLUMN score INTEGER;
    ALTER TABLE runs ADD COLUMN comment TEXT NOT NULL DEFAULT '';
    ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '';
    CREATE INDEX runs_source ON runs (source, started_at DESC);
    CREATE INDEX runs_user ON runs (user_email, started_at DESC);
    ALTER TABLE experiment_runs ADD COLUMN user_name TEXT;
    ALTER TABLE experiment_runs ADD COLUMN user_email TEXT;
    CREATE TABLE presets (
        slug       TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        data       TEXT NOT NULL,
        hash       TEXT NOT NULL,
        updated_at REAL NOT NULL,
        user_name  TEXT,
        user_email TEXT,
        synced_hash TEXT
    )
    """)
    _backfill_runs(conn)
    if conn.dialect.name == "sqlite":
        _sqlite_search_index(conn)
    else:
        _postgres_search_index(conn)


def _backfill_runs(conn: Connection) -> None:
    """The new listing columns of rows written before version 3, from their JSON."""
    update = text("UPDATE runs SET cancelled = :cancelled, prompt_preview = :prompt_preview, "
                  "error_message = :error_message, error_status = :error_status WHERE id = :id")
    keys = ("id", "cancelled", "prompt_preview", "error_message", "error_status")
    rows = conn.exec_driver_sql("SELECT data FROM runs").fetchall()
    batch = []
    for (data,) in rows:
        try:
            columns = run_columns(Run.model_validate_json(data))
        except ValueError as error:  # a row no release could read: listed as before, without these
            log.warning("runs: a stored run could not be read while migrating (%s)", error)
            continue
        batch.append({key: columns[key] for key in keys})
        if len(batch) >= 1000:
            conn.execute(update, batch)
            batch = []
    if batch:
        conn.execute(update, batch)


def _sqlite_search_index(conn: Connection) -> None:
    # External content: the index holds trigrams, not a second copy of the text. Keyed by the
    # table's rowid (kept by upserts; a VACUUM may renumber a table without an INTEGER key,
    # after which: INSERT INTO runs_search(runs_search) VALUES ('rebuild')).
    statements = [
        "CREATE VIRTUAL TABLE runs_search USING fts5(text, prompt, comment, tags, content='runs', "
        "content_rowid='rowid', tokenize='trigram')",
        "CREATE TRIGGER runs_search_insert AFTER INSERT ON runs BEGIN " + _INDEX_NEW + "; END",
        "CREATE TRIGGER runs_search_delete AFTER DELETE ON runs BEGIN " + _UNINDEX_OLD + "; END",
        "CREATE TRIGGER runs_search_update AFTER UPDATE OF text, prompt, comment, tags ON runs BEGIN "
        + _UNINDEX_OLD + "; " + _INDEX_NEW + "; END",
        "INSERT INTO runs_search (runs_search) VALUES ('rebuild')",
    ]
    try:
        with conn.begin_nested():
            for statement in statements:
                conn.exec_driver_sql(statement)
    except Exception as error:  # noqa: BLE001 - an SQLite built without FTS5: search scans instead
        log.warning("runs: no full-text index (%s); History's search will scan", error)


_INDEX_NEW = ("INSERT INTO runs_search (rowid, text, prompt, comment, tags) "
              "VALUES (new.rowid, new.text, new.prompt, new.comment, new.tags)")
_UNINDEX_OLD = ("INSERT INTO runs_search (runs_search, rowid, text, prompt, comment, tags) "
                "VALUES ('delete', old.rowid, old.text, old.prompt, old.comment, old.tags)")


def _postgres_search_index(conn: Connection) -> None:
    """pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: the database's owner
    may create it. Without it search still works, by a scan."""
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as error:  # noqa: BLE001 - any refusal: no index, say so
        log.warning("runs: no pg_trgm extension (%s); History's search will scan. "
                    "A superuser can run: CREATE EXTENSION pg_trgm", error)
        return
    for column in ("text", "prompt", "comment", "tags"):
        conn.exec_driver_sql(f"CREATE INDEX runs_{column}_trgm ON runs USING gin ({column} gin_trgm_ops)")


STEPS: list[Callable[[Connection], None]] = [_v1_runs, _v2_experiments, _v3_team]
SCHEMA_VERSION = len(STEPS)


class DatabaseUnavailable(RuntimeError):
    """The database did not answer: its own words, and where (never the password)."""

    def __init__(self, engine: Engine, error: OperationalError) -> None:
        where = engine.url.render_as_string(hide_password=True).replace("+psycopg", "")
        reason = " ".join(str(error.orig).split()) if error.orig is not None else str(error)
        super().__init__(f"The database at {where} cannot be reached: {reason}")


def current_version(conn: Connection) -> int:
    if conn.dialect.name == "sqlite":
        return conn.exec_driver_sql("PRAGMA user_version").scalar_one()
    # The catalog read as a table (a snapshot of its own), not through to_regclass: that one
    # looks in this backend's cache, which may not yet know of a table another process's
    # migration just committed while we waited for the lock.
    if not conn.exec_driver_sql("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() "
                                "AND tablename = 'playground_schema'").scalar():
        return 0
    return conn.exec_driver_sql("SELECT max(version) FROM playground_schema").scalar() or 0


def _set_version(conn: Connection, version: int) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
        return
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS playground_schema (version INTEGER NOT NULL)")
    conn.exec_driver_sql("DELETE FROM playground_schema")
    conn.exec_driver_sql(f"INSERT INTO playground_schema (version) VALUES ({int(version)})")


def migrate(engine: Engine, upto: int = SCHEMA_VERSION) -> int:
    """Bring the database to version `upto` (tests stop earlier to build old schemas); return
    the version found. Cheap when nothing is to do: one read, no lock (pages make stores often).
    DatabaseUnavailable when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            found = current_version(conn)
    except OperationalError as error:
        raise DatabaseUnavailable(engine, error) from None
    if found >= upto:
        return found
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # outside any transaction, as SQLite requires
        try:
            raw.driver_connection.execute("PRAGMA journal_mode=WAL")
        finally:
            raw.close()
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
        found = current_version(conn)  # again, under the lock: another process may have done it
        for step in STEPS[found:upto]:
            step(conn)
        if found < upto:
            _set_version(conn, upto)
    return found

"""The schema's versions: a database at every earlier version (an SQLite file made by the
releases before PostgreSQL support, and each intermediate version on both engines) is brought
to the current one with its runs and experiments kept, listable and searchable."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import inspect

from playground.client.run import RunError
from playground.db import SCHEMA_VERSION, DatabaseUnavailable, engine_for, migrate
from playground.db.schema import metadata
from playground.experiments import ExperimentStore
from playground.runs.store import RunStore
from playground.sandbox.launcher import free_port
from tests.postgres_support import postgres, postgres_url  # noqa: F401 (fixtures)
from tests.test_runstore import stored_run

# The release before issue 25 (commit 647ce00) wrote these, byte for byte, with PRAGMA user_version 1
# (runs only, before experiments) or 2 (with experiments). Copied, not imported: the point is
# that they never change.
RELEASED_V1 = """
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
RELEASED_V2 = RELEASED_V1 + """
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
# The release's own insert: its 12 columns, as RunStore.save wrote them then.
RELEASED_INSERT = ("INSERT INTO runs (id, started_at, endpoint, model, preset, text, prompt, error_kind, partial, "
                   "total_tokens, total_s, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def old_runs():
    failed = stored_run(2, text="half an answer", prompt="Explain tides")
    failed.error = RunError(kind="RateLimitError", message="slow down", status_code=429)
    stopped = stored_run(3, text="stopped early", prompt="Count to ten")
    stopped.cancelled = stopped.partial = True
    return [stored_run(1, text="Paris is the capital.", prompt="Capital of France?", preset="geo"), failed, stopped]


def released_row(run) -> tuple:
    text = run.choices[0].text if run.choices else ""
    return (run.id, run.started_at.timestamp(), run.endpoint, run.request.model, run.preset, text,
            "\n".join(m.content for m in run.request.messages), run.error.kind if run.error else None,
            int(run.partial), run.usage.total_tokens if run.usage else None, run.total_s, run.model_dump_json())


def released_file(path: Path, version: int) -> Path:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(RELEASED_V1 if version == 1 else RELEASED_V2)
        conn.execute(f"PRAGMA user_version = {version}")
        conn.executemany(RELEASED_INSERT, [released_row(run) for run in old_runs()])
        if version >= 2:
            conn.execute("INSERT INTO experiment_runs (id, experiment_id, name, started_at, status, total, definition) "
                         "VALUES ('e1', 'tides', 'Tides', 1.0, 'finished', 1, ?)", (EXPERIMENT_JSON,))
            conn.execute("INSERT INTO experiment_trials VALUES ('e1', 0, 0, 0, 'run-00002', 'pass', ?)",
                         ('{"case": 0, "variant": 0, "repeat": 0, "run_id": "run-00002", "status": "pass"}',))
    return path


EXPERIMENT_JSON = ('{"id": "tides", "name": "Tides", "preset": {"name": "p", "request": {"model": "m", '
                   '"messages": [{"role": "user", "content": "hi"}]}}, "cases": [{}]}')


def assert_current(store: RunStore) -> None:
    """What every migrated store must give: the old runs listed as before, with their
    statuses and previews, found by search, taking feedback; the schema is schema.py's."""
    listed = {s.id: s for s in store.list()}
    assert sorted(listed) == ["run-00001", "run-00002", "run-00003"]
    assert listed["run-00002"].status == "failed" and listed["run-00002"].error_message == "slow down"
    assert listed["run-00002"].error_status == 429
    assert listed["run-00003"].status == "stopped" and listed["run-00003"].prompt_preview == "Count to ten"
    assert listed["run-00001"].prompt_preview == "Capital of France?" and listed["run-00001"].source is None
    assert [s.id for s in store.list(search="capital")] == ["run-00001"]  # the search index holds old rows
    assert [s.id for s in store.list(preset="geo")] == ["run-00001"]
    assert store.set_feedback("run-00001", score=1, comment="good") and store.count(search="good") == 1
    store.save(stored_run(9, text="a new run"), source="cli")
    assert store.count() == 4 and store.list(source="cli")[0].id == "run-00009"
    columns = inspect(store.engine)
    for table in metadata.sorted_tables:
        assert {c["name"] for c in columns.get_columns(table.name)} == set(table.c.keys()), table.name


@pytest.mark.parametrize("version", [1, 2])
def test_a_file_made_by_the_release_before_is_migrated(tmp_path: Path, version: int) -> None:
    path = released_file(tmp_path / "runs.sqlite3", version)
    store = RunStore(path)
    assert_current(store)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    experiments = ExperimentStore(store)
    if version == 2:  # its experiment run kept, its trial still pointing at its Run
        assert [s.id for s in experiments.list("tides")] == ["e1"] and experiments.experiment_of("run-00002") == "e1"
    else:
        assert experiments.list() == []


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "runs.sqlite3"
    return request.getfixturevalue("postgres_url")


@pytest.mark.parametrize("version", [1, 2])
def test_every_earlier_version_on_both_engines(target, version: int) -> None:
    """Stop the migrations at an earlier version, write what that version held, then open a store."""
    engine = engine_for(target)
    assert migrate(engine, upto=version) == 0
    with engine.begin() as conn:
        for row in [released_row(run) for run in old_runs()]:
            conn.exec_driver_sql(RELEASED_INSERT.replace("?", "%s") if conn.dialect.name == "postgresql"
                                 else RELEASED_INSERT, row)
    tables = set(inspect(engine).get_table_names()) - {"playground_schema"}  # PostgreSQL's version record
    assert tables == ({"runs"} if version == 1 else {"experiment_runs", "experiment_trials", "runs"})
    assert_current(RunStore(target))
    assert migrate(engine) == SCHEMA_VERSION  # done: the next store finds nothing to do


def test_a_new_database_goes_through_every_version(target) -> None:
    store = RunStore(target)
    assert migrate(store.engine) == SCHEMA_VERSION
    assert store.count() == 0 and store.list(search="anything") == []


def test_an_unreachable_database_is_named_without_its_password() -> None:
    url = f"postgresql://someone:hunter2-secret@127.0.0.1:{free_port()}/nowhere"  # nothing listens there
    with pytest.raises(DatabaseUnavailable) as caught:
        RunStore(url, timeout_s=2)
    message = str(caught.value)
    assert "cannot be reached" in message and "127.0.0.1" in message and "hunter2" not in message
    assert "refused" in message.lower()  # the driver's own words

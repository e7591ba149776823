"""One SQLAlchemy engine per database, made once per process: an SQLite file (a path) or
PostgreSQL (a `postgresql://` URL, driven by psycopg 3).

SQLite: no pool (one connection per use, as the run store always did: nothing stays open on a
file a test or a user may delete), WAL set when the file is created, a busy timeout so two
writers wait for each other, and transactions begun by us (the driver's own implicit BEGIN
leaves DDL outside the transaction: a migration must be all or nothing). A connection opened
with `execution_options(write=True)` begins with BEGIN IMMEDIATE: it takes the write lock
before it reads, so two processes migrating at once cannot deadlock.
PostgreSQL: a small pool shared by the process's threads, checked before use (a replica
outlives a database restart).
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, NullPool, create_engine, event
from sqlalchemy.engine import make_url

_ENGINES: dict[tuple[str, float], Engine] = {}
_GUARD = threading.Lock()


def is_url(target: str | Path) -> bool:
    """A database URL (postgresql://..., sqlite:///...) rather than a file path."""
    return isinstance(target, str) and "://" in target


def driver_url(target: str | Path) -> str:
    """The SQLAlchemy URL for a path or a URL: postgresql:// and postgres:// are psycopg 3's."""
    if not is_url(target):
        return f"sqlite:///{Path(target)}"
    url = str(target)
    scheme = url.split("://", 1)[0]
    if scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if scheme.startswith("postgresql+") and scheme != "postgresql+psycopg":
        raise ValueError(f"PLAYGROUND_DATABASE_URL: use postgresql:// (psycopg 3), not {scheme}://")
    if scheme not in ("postgresql+psycopg", "sqlite"):
        raise ValueError(f"PLAYGROUND_DATABASE_URL: a postgresql:// URL (or sqlite:///path), not {scheme}://")
    return url


def describe(target: str | Path) -> str:
    """Where the data is, for messages: a path, or the URL without its password."""
    if not is_url(target):
        return str(target)
    return make_url(driver_url(target)).render_as_string(hide_password=True).replace("+psycopg", "")


def engine_for(target: str | Path, timeout_s: float = 10.0) -> Engine:
    """The process's engine for this database (made on first use)."""
    url = driver_url(target)
    key = (url, timeout_s)
    with _GUARD:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _make(url, timeout_s)
            _ENGINES[key] = engine
    return engine


def _make(url: str, timeout_s: float) -> Engine:
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": timeout_s})
        _sqlite_transactions(engine, timeout_s)
        return engine
    return create_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True,
                         connect_args={"connect_timeout": max(1, int(timeout_s)), "application_name": "playground"})


def _sqlite_transactions(engine: Engine, timeout_s: float) -> None:
    """SQLAlchemy's documented recipe for SQLite: the driver leaves transactions to us."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN: ours below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = %d" % int(timeout_s * 1000))
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        write = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def dispose(target: str | Path) -> None:
    """Close the pooled connections of this database's engines and forget them (a test's
    database about to be dropped; a process done with a server)."""
    url = driver_url(target)
    with _GUARD:
        engines = [_ENGINES.pop(key) for key in [k for k in _ENGINES if k[0] == url]]
    for engine in engines:
        engine.dispose()

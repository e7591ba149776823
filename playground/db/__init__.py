"""The database every store shares: an SQLite file by default, PostgreSQL for a team
(PLAYGROUND_DATABASE_URL). engine: one engine per database; schema: the tables; migrations:
the versions, run in order by both engines; rows: a Run's columns."""

from playground.db.engine import describe, engine_for, is_url
from playground.db.migrations import SCHEMA_VERSION, DatabaseUnavailable, migrate

__all__ = ["SCHEMA_VERSION", "DatabaseUnavailable", "describe", "engine_for", "is_url", "migrate"]

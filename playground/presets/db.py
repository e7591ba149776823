"""Presets in the team database (the `presets` table), for PresetStore when
PLAYGROUND_DATABASE_URL is set. Rows hold the canonical JSON a file would hold, and its hash.

Two people saving the same preset: every write is a compare-and-swap on the row's hash (an
UPDATE that names the hash the writer loaded, or an INSERT that fails when the row appeared
meanwhile), so the second writer gets a conflict instead of overwriting, on both engines,
without holding locks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from playground.db import describe, engine_for, migrate
from playground.db.schema import presets as _presets
from playground.db.user import User


@dataclass(frozen=True)
class PresetRow:
    slug: str
    name: str
    data: bytes
    hash: str
    updated_at: float
    user_name: str | None
    user_email: str | None
    synced_hash: str | None


@dataclass
class SyncReport:
    added: list[str]
    changed: list[str]
    removed: list[str]
    errors: list[tuple[str, str]]  # (file name, reason)


class DatabasePresets:
    def __init__(self, target: str | Path) -> None:
        self.where = describe(target)
        self._reader = engine_for(target)
        self._writer = self._reader.execution_options(write=True)  # see playground.db.engine
        migrate(self._reader)

    def rows(self) -> list[PresetRow]:
        with self._reader.connect() as conn:
            return [_row(r) for r in conn.execute(select(_presets).order_by(_presets.c.slug)).all()]

    def get(self, slug: str) -> PresetRow | None:
        with self._reader.connect() as conn:
            found = conn.execute(select(_presets).where(_presets.c.slug == slug)).first()
        return _row(found) if found else None

    def put(self, slug: str, name: str, data: bytes, digest: str, expected: str | None,
            user: User | None = None, synced: bool = False) -> bool:
        """Write the row if its hash is still `expected` (None: only if there is no row).
        False when someone else got there first."""
        values = {"name": name, "data": data.decode("utf-8"), "hash": digest, "updated_at": time.time(),
                  "user_name": user.name if user else None, "user_email": user.email if user else None}
        if synced:
            values["synced_hash"] = digest
        with self._writer.begin() as conn:
            if expected is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(_presets).values(slug=slug, **values))
                except IntegrityError:
                    return False
                return True
            return conn.execute(update(_presets).where(_presets.c.slug == slug, _presets.c.hash == expected)
                                .values(**values)).rowcount == 1

    def remove(self, slug: str, expected: str | None = None) -> bool:
        """Delete the row (only if its hash is still `expected`, when given)."""
        condition = [_presets.c.slug == slug] + ([_presets.c.hash == expected] if expected else [])
        with self._writer.begin() as conn:
            return conn.execute(delete(_presets).where(*condition)).rowcount == 1


def _row(row) -> PresetRow:
    return PresetRow(slug=row.slug, name=row.name, data=row.data.encode("utf-8"), hash=row.hash,
                     updated_at=row.updated_at, user_name=row.user_name, user_email=row.user_email,
                     synced_hash=row.synced_hash)

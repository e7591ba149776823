"""Presets in the team database, on SQLite and on PostgreSQL: saved once, seen by every store
(replica) at once, the folder kept as the reviewed library beside them and marked, the same
validation, secret check and conflict errors, Export to folder, and `sync` from the folder."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from playground.client.schema import ChatRequest
from playground.db.schema import presets as presets_table
from playground.db.user import User
from playground.presets import (
    Preset,
    PresetConflictError,
    PresetExistsError,
    PresetNotFound,
    PresetStore,
    PresetStoreError,
    SecretFoundError,
    preset_to_json,
)
from playground.presets.store import DATABASE, EDITED, LIBRARY
from tests.postgres_support import postgres, postgres_url  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[1]


def preset(name: str, text: str = "Hello", **extra) -> Preset:
    return Preset(schema_version=1, name=name, request=ChatRequest.from_wire(
        {"model": "local/smollm2-135m-instruct", "messages": [{"role": "user", "content": text}], **extra}))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "team.sqlite3")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "haiku.json").write_text(preset_to_json(preset("Haiku", "Write a haiku")), encoding="utf-8")
    return folder


def replica(library: Path, database: str) -> PresetStore:
    return PresetStore(library, database=database)


def test_saved_once_seen_by_every_replica_beside_the_library(library: Path, database: str) -> None:
    one, two = replica(library, database), replica(library, database)
    assert [p.name for p in two.list()] == ["Haiku"] and two.origin("Haiku") == LIBRARY
    one.save(preset("Team prompt", "Summarise"), user=User("Ann", "ann@example.com"))
    assert [p.name for p in two.list()] == ["Haiku", "Team prompt"]
    assert two.load("Team prompt").request.messages[0].content == "Summarise"
    assert two.origin("Team prompt") == DATABASE
    assert sorted(p.name for p in library.iterdir()) == ["haiku.json"]  # the library is not written
    with one.database._reader.connect() as conn:
        row = conn.execute(select(presets_table).where(presets_table.c.slug == "team-prompt")).one()
    assert (row.user_name, row.user_email) == ("Ann", "ann@example.com")
    assert row.data == preset_to_json(preset("Team prompt", "Summarise"))  # the canonical JSON a file holds


def test_editing_a_library_preset_saves_to_the_database_and_export_writes_the_file(library: Path,
                                                                                  database: str) -> None:
    store = replica(library, database)
    loaded, digest = store.load_with_hash("Haiku")
    edited = loaded.model_copy(update={"description": "now with a twist"})
    store.save(edited, expected_hash=digest)
    assert store.origin("Haiku") == EDITED
    assert "twist" not in (library / "haiku.json").read_text(encoding="utf-8")
    assert replica(library, database).load("Haiku").description == "now with a twist"
    path = store.export_to_folder("Haiku")
    assert path == library / "haiku.json" and path.read_text(encoding="utf-8") == preset_to_json(edited)
    assert store.origin("Haiku") == LIBRARY  # the file and the row agree again


def test_two_people_saving_the_same_preset(library: Path, database: str) -> None:
    ann, bo = replica(library, database), replica(library, database)
    ann.save(preset("Shared", "v1"))
    _, ann_hash = ann.load_with_hash("Shared")
    _, bo_hash = bo.load_with_hash("Shared")
    ann.save(preset("Shared", "Ann's edit"), expected_hash=ann_hash)
    with pytest.raises(PresetConflictError, match="changed in the team database since you loaded it"):
        bo.save(preset("Shared", "Bo's edit"), expected_hash=bo_hash)
    assert bo.load("Shared").request.messages[0].content == "Ann's edit"  # Bo's did not overwrite it
    with pytest.raises(PresetExistsError):
        bo.save(preset("Shared", "again"))


@pytest.mark.parametrize("round_", range(3))
def test_two_people_saving_at_the_same_moment(library: Path, database: str, round_: int) -> None:
    """Both loaded the same version and press Save together: one is saved, the other told."""
    first = replica(library, database)
    first.save(preset("Race", "v1"))
    _, digest = first.load_with_hash("Race")
    barrier, outcomes = threading.Barrier(2), []

    def person(text: str) -> None:
        store = replica(library, database)
        barrier.wait(timeout=30)
        try:
            store.save(preset("Race", text), expected_hash=digest)
            outcomes.append(("saved", text))
        except PresetConflictError:
            outcomes.append(("conflict", text))

    threads = [threading.Thread(target=person, args=(text,)) for text in ("Ann's", "Bo's")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(kind for kind, _ in outcomes) == ["conflict", "saved"]
    [winner] = [text for kind, text in outcomes if kind == "saved"]
    assert first.load("Race").request.messages[0].content == winner


def test_validation_and_secrets_as_for_files(library: Path, database: str) -> None:
    store = replica(library, database)
    with pytest.raises(SecretFoundError):
        store.save(preset("Leaky", api_key="abc123"))
    assert not store.exists("Leaky")
    with pytest.raises(PresetStoreError):
        store.save(preset("../escape"))


def test_delete(library: Path, database: str) -> None:
    store = replica(library, database)
    with pytest.raises(PresetStoreError, match="reviewed library"):
        store.delete("Haiku")  # a file in git: removed by a pull request, not from the app
    store.save(preset("Mine"))
    _, digest = store.load_with_hash("Mine")
    replica(library, database).save(preset("Mine", "changed"), overwrite=True)
    with pytest.raises(PresetConflictError):
        store.delete("Mine", expected_hash=digest)
    store.delete("Mine")
    assert not store.exists("Mine")
    with pytest.raises(PresetNotFound):
        store.delete("Mine")


def test_sync_reports_added_changed_removed(library: Path, database: str) -> None:
    store = replica(library, database)
    (library / "notes.json").write_text(preset_to_json(preset("Notes", "Take notes")), encoding="utf-8")
    (library / "broken.json").write_text("{not json", encoding="utf-8")
    store.save(preset("Browser only", "made in the app"))
    report = store.sync()
    assert (report.added, report.changed, report.removed) == (["Haiku", "Notes"], [], [])
    assert [name for name, _ in report.errors] == ["broken.json"]
    again = store.sync()
    assert (again.added, again.changed, again.removed) == ([], [], [])

    (library / "haiku.json").write_text(preset_to_json(preset("Haiku", "Write two haiku")), encoding="utf-8")
    (library / "notes.json").unlink()
    report = store.sync()
    assert (report.added, report.changed, report.removed) == ([], ["Haiku"], ["Notes"])
    assert store.exists("Browser only")  # never in the folder: a sync does not remove it
    assert replica(library, database).load("Haiku").request.messages[0].content == "Write two haiku"


def test_sync_command(library: Path, database: str) -> None:
    environ = {**os.environ, "PLAYGROUND_DATABASE_URL": database}
    done = subprocess.run([sys.executable, "-m", "playground.presets", "sync", str(library)], cwd=REPO,
                          env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "added (1): Haiku" in done.stdout and "changed (0): -" in done.stdout and "removed (0): -" in done.stdout
    assert "password" not in done.stdout
    environ.pop("PLAYGROUND_DATABASE_URL")
    refused = subprocess.run([sys.executable, "-m", "playground.presets", "sync", str(library)], cwd=REPO,
                             env=environ, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "PLAYGROUND_DATABASE_URL" in refused.stderr


def test_without_a_database_the_app_store_is_the_folder(monkeypatch, library: Path) -> None:
    monkeypatch.setenv("PLAYGROUND_PRESETS_DIR", str(library))
    monkeypatch.delenv("PLAYGROUND_DATABASE_URL", raising=False)
    store = PresetStore()
    assert store.database is None and store.origin("Haiku") == LIBRARY
    store.save(preset("Local"))
    assert (library / "local.json").exists()

"""The Presets page with a team database (PLAYGROUND_DATABASE_URL, here an SQLite URL; the
store's behaviour on PostgreSQL is tests/test_store_presets.py's): where each preset is stored,
saves landing in the database, Export to folder writing the file for a pull request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground.presets import PresetStore
from tests.apptest_support import texts, widget
from tests.test_presets_page import folder, page  # noqa: F401 (fixture)


@pytest.fixture
def database(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    url = f"sqlite:///{tmp_path / 'team.sqlite3'}"
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", url)
    return url


def test_library_and_database_presets_side_by_side_and_export(folder: Path, database: str) -> None:  # noqa: F811
    files_before = sorted(p.name for p in folder.iterdir())
    at = page()
    assert any("team database" in t and "reviewed library" in t for t in texts(at.caption))
    table = next(df.value for df in at.dataframe if "stored in" in df.value.columns)
    assert set(table["stored in"]) == {"library"}
    first = widget(at.selectbox, "presets_selected").value
    assert not [b for b in at.button if b.key == "presets_export_folder"]  # a library preset: nothing to export

    at.button(key="presets_duplicate").click().run()
    assert not at.exception, at.exception
    copy = f"{first} (copy)"
    assert widget(at.selectbox, "presets_selected").value == copy
    assert sorted(p.name for p in folder.iterdir()) == files_before  # saved in the database, not the folder
    table = next(df.value for df in at.dataframe if "stored in" in df.value.columns)
    assert dict(zip(table["name"], table["stored in"]))[copy] == "team database"
    assert any("Stored in the team database" in t for t in texts(at.caption))

    at.button(key="presets_export_folder").click().run()
    assert not at.exception, at.exception
    written = PresetStore(folder).path_for(copy)
    assert written.exists() and json.loads(written.read_text(encoding="utf-8"))["name"] == copy
    assert any("pull request" in s for s in texts(at.success))
    table = next(df.value for df in at.dataframe if "stored in" in df.value.columns)
    assert dict(zip(table["name"], table["stored in"]))[copy] == "library"  # the file and the row agree


def test_deleting_a_library_preset_is_refused_with_a_database(folder: Path, database: str) -> None:  # noqa: F811
    at = page()
    name = widget(at.selectbox, "presets_selected").value
    at.button(key="presets_delete").click().run()
    assert any("team database" in w for w in texts(at.warning))
    at.button(key="presets_delete_yes").click().run()
    assert not at.exception, at.exception
    assert any("reviewed library" in e and "pull request" in e for e in texts(at.error))
    assert name in widget(at.selectbox, "presets_selected").options

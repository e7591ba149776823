"""PresetStore: a folder of canonical preset JSON files (presets/ beside app.py by default),
and, for a team (PLAYGROUND_DATABASE_URL), the database beside it.

File names are a slug of the preset's name; names that would leave the folder are refused.
Writes go to a temp file in the same folder, then os.replace, under a lock, so readers and a
concurrent writer never see half a file. A save over a file that changed on disk since it was
loaded (its hash differs from the one the caller loaded) raises PresetConflictError.

With a database, saves go to the database (the same canonical JSON, validation and secret
check; the same conflict error when the row changed since it was loaded: presets/db.py), and
the folder stays the reviewed library: listed beside the database's presets (a database preset
of the same file name is shown instead, marked as edited), never written by the app except by
`export_to_folder`; `sync` imports the folder into the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from playground.db.user import User
from playground.presets.db import DatabasePresets, SyncReport
from playground.presets.model import Preset, PresetFileError, parse_preset_bytes, preset_to_json
from playground.secrets_check import check_no_secrets
from playground.settings import database_url

try:
    import fcntl
except ImportError:  # Windows: the in-process lock still orders threads
    fcntl = None

SCHEMA_FILE = "preset.schema.json"
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _umask() -> int:
    """The process's umask (read from /proc where there is one: setting it to read it back is
    not thread-safe)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


class PresetStoreError(ValueError):
    pass


class PresetNameError(PresetStoreError):
    pass


class PresetNotFound(PresetStoreError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class PresetExistsError(PresetStoreError):
    pass


class PresetConflictError(PresetStoreError):
    pass


@dataclass
class ImportReport:
    imported: list[str]
    errors: list[tuple[str, str]]  # (file name, reason)


def default_presets_dir() -> Path:
    env = os.environ.get("PLAYGROUND_PRESETS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "presets"


def slugify(name: str) -> str:
    """'Few-shot: Capitals!' -> 'few-shot-capitals'. Raises PresetNameError for path-like names."""
    raw = name.strip()
    if not raw:
        raise PresetNameError("A preset needs a name.")
    if ("/" in raw or "\\" in raw or ".." in raw or raw.startswith(("~", ".")) or os.path.isabs(raw)
            or re.match(r"^[A-Za-z]:", raw) or any(ord(c) < 32 for c in raw)):
        raise PresetNameError(f"The name {raw!r} looks like a path; a preset name may not contain '/', '\\', "
                              "'..' or start with '.', '~' or a drive letter.")
    ascii_name = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:80].strip("-")
    if not slug:
        slug = "preset-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:10]
    return slug


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


# path -> (stat signature, parsed Preset or the reason it is unusable); see PresetStore.scan
_PARSED: dict[Path, tuple[tuple[int, int, int], Preset | str]] = {}


def _parse_cached(path: Path) -> Preset | str:
    info = path.stat()
    signature = (info.st_mtime_ns, info.st_size, info.st_ino)
    cached = _PARSED.get(path)
    if cached is not None and cached[0] == signature:
        return cached[1]
    try:
        result: Preset | str = parse_preset_bytes(path.read_bytes(), path.name)
    except PresetFileError as exc:
        result = exc.reason
    _PARSED[path] = (signature, result)
    return result


# Where a preset the store lists comes from (PresetStore.origin)
LIBRARY = "library"  # a file in the reviewed folder (or the database's copy of it, unchanged)
DATABASE = "database"  # saved in the app, in the team database only
EDITED = "edited"  # in the database, changed from the library file of the same name

_DEFAULT = object()


class PresetStore:
    def __init__(self, folder: Path | str | None = None, database: str | Path | None | object = _DEFAULT,
                 user: User | None = None):
        """`database`: a database URL (or SQLite path) to save to; by default the app's store
        (no folder given) uses PLAYGROUND_DATABASE_URL when set, and a store of a given folder
        uses none. `user`: who saves through this store (recorded in the database)."""
        self.user = user
        self.folder = Path(folder) if folder is not None else default_presets_dir()
        key = str(self.folder.resolve())
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(key, threading.Lock())
        if database is _DEFAULT:
            database = database_url() if folder is None else None
        self.database = DatabasePresets(database) if database else None

    # --- paths -------------------------------------------------------------------------------

    def path_for(self, name: str) -> Path:
        path = (self.folder / f"{slugify(name)}.json").resolve()
        if path.parent != self.folder.resolve():
            raise PresetNameError(f"The name {name!r} would leave the presets folder.")
        return path

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("*.json") if p.name != SCHEMA_FILE and p.is_file())

    # --- reading -----------------------------------------------------------------------------

    def scan(self) -> tuple[list[Preset], list[tuple[str, str]]]:
        """Every readable preset (sorted by name) and (file name, reason) for each broken file.

        Pages call this on every rerun, so a file is parsed again only when its stat changed
        (saves here replace the file, so they always change it). Treat the presets as read-only."""
        presets, problems = [], []
        files = self._files()
        present = set(files)
        for gone in [k for k in list(_PARSED) if k.parent == self.folder and k not in present]:
            _PARSED.pop(gone, None)
        for path in files:
            try:
                result = _parse_cached(path)
            except OSError as exc:
                problems.append((path.name, f"cannot be read: {exc.strerror}"))
                continue
            if isinstance(result, Preset):
                presets.append(result)
            else:
                problems.append((path.name, result))
        if self.database is not None:
            presets, problems = self._with_database(presets, problems)
        presets.sort(key=lambda p: p.name.lower())
        return presets, problems

    def _with_database(self, files: list[Preset], problems: list[tuple[str, str]]):
        """The database's presets, and the library's files that have no row of the same name."""
        by_slug = {slugify(preset.name): preset for preset in files}
        for row in self.database.rows():
            try:
                by_slug[row.slug] = _parse_row(row.data, row.hash, row.slug)
            except PresetFileError as exc:
                problems.append((f"{row.slug}.json (database)", exc.reason))
        return list(by_slug.values()), problems

    def origins(self) -> dict[str, str]:
        """origin() of every preset with a database row, by slug (one read); the rest are LIBRARY."""
        if self.database is None:
            return {}
        return {row.slug: (DATABASE if (file_hash := self._file_hash(row.name)) is None
                           else LIBRARY if file_hash == row.hash else EDITED) for row in self.database.rows()}

    def origin(self, name: str) -> str:
        """LIBRARY, DATABASE or EDITED (see above); LIBRARY for every preset without a database."""
        row = self.database.get(slugify(name)) if self.database is not None else None
        if row is None:
            return LIBRARY
        file_hash = self._file_hash(name)
        if file_hash is None:
            return DATABASE
        return LIBRARY if file_hash == row.hash else EDITED

    def list(self) -> list[Preset]:
        return self.scan()[0]

    def names(self) -> list[str]:
        return [p.name for p in self.list()]

    def exists(self, name: str) -> bool:
        return self.current_hash(name) is not None

    def load_with_hash(self, name: str) -> tuple[Preset, str]:
        """The preset and the hash of its file (or database row), to pass back as save(..., expected_hash=)."""
        row = self.database.get(slugify(name)) if self.database is not None else None
        if row is not None:
            return parse_preset_bytes(row.data, f"{row.slug}.json"), row.hash
        path = self.path_for(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise PresetNotFound(f"No preset named {name!r} in {self.folder}.") from None
        preset = parse_preset_bytes(data, path.name)
        return preset, content_hash(data)

    def load(self, name: str) -> Preset:
        return self.load_with_hash(name)[0]

    def current_hash(self, name: str) -> str | None:
        if self.database is not None:
            row = self.database.get(slugify(name))
            if row is not None:
                return row.hash
        return self._file_hash(name)

    def _file_hash(self, name: str) -> str | None:
        try:
            return content_hash(self.path_for(name).read_bytes())
        except FileNotFoundError:
            return None

    # --- writing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.folder, os.O_RDONLY) if fcntl else None
            try:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)

    def save(self, preset: Preset, overwrite: bool = False, expected_hash: str | None = None,
             user: User | None = None) -> str:
        """Write the preset atomically; return the new file hash.

        expected_hash (from load_with_hash) means "replace the version I loaded": if the file changed
        or vanished since, PresetConflictError. Without it an existing file is replaced only when
        overwrite is true, else PresetExistsError. `user`: who saved it (recorded in the database).
        """
        check_no_secrets(preset.to_dict())
        path = self.path_for(preset.name)
        data = preset_to_json(preset).encode("utf-8")
        if self.database is not None:
            return self._save_to_database(preset, data, overwrite, expected_hash, user or self.user)
        with self._locked():
            current = self.current_hash(preset.name)
            _check_replace(preset.name, path.name, current, overwrite, expected_hash, "on disk")
            self._write(path, data)
        return content_hash(data)

    def _save_to_database(self, preset: Preset, data: bytes, overwrite: bool, expected_hash: str | None,
                          user: User | None) -> str:
        slug = slugify(preset.name)
        row = self.database.get(slug)
        current = row.hash if row is not None else self._file_hash(preset.name)
        _check_replace(preset.name, f"{slug}.json", current, overwrite, expected_hash, "in the team database")
        digest = content_hash(data)
        if not self.database.put(slug, preset.name.strip(), data, digest, row.hash if row else None, user):
            raise PresetConflictError(
                f"The preset {preset.name!r} was saved by someone else a moment ago. Your version was not "
                "saved: save it under a new name, or reload the preset first.")
        return digest

    def export_to_folder(self, name: str) -> Path:
        """Write the preset as it is now (the database's version) to the library folder, replacing
        the file of that name: the file to propose in a pull request. Its path."""
        preset, _ = self.load_with_hash(name)
        path = self.path_for(preset.name)
        with self._locked():
            self._write(path, preset_to_json(preset).encode("utf-8"))
        return path

    def sync(self) -> SyncReport:
        """Import the library folder into the database: files new to it are added, files that
        differ replace their row, rows synced from a file that is gone are removed (presets saved
        in the app, never in the folder, stay). Broken files are reported, not imported."""
        if self.database is None:
            raise PresetStoreError("No database to sync into: set PLAYGROUND_DATABASE_URL.")
        report = SyncReport([], [], [], [])
        files: dict[str, tuple[Preset, bytes]] = {}
        for path in self._files():
            try:
                data = path.read_bytes()
                preset = parse_preset_bytes(data, path.name)
                check_no_secrets(preset.to_dict())
            except PresetFileError as exc:
                report.errors.append((path.name, exc.reason))
                continue
            except (OSError, ValueError) as exc:
                report.errors.append((path.name, str(exc)))
                continue
            files[slugify(preset.name)] = (preset, preset_to_json(preset).encode("utf-8"))
        rows = {row.slug: row for row in self.database.rows()}
        for slug, (preset, data) in sorted(files.items()):
            digest, row = content_hash(data), rows.get(slug)
            if row is not None and row.hash == digest and row.synced_hash == digest:
                continue
            if not self.database.put(slug, preset.name, data, digest, row.hash if row else None, synced=True):
                report.errors.append((f"{slug}.json", "changed in the database while syncing; run sync again"))
                continue
            if row is None:
                report.added.append(preset.name)
            elif row.hash != digest:
                report.changed.append(preset.name)
        for slug, row in sorted(rows.items()):
            if slug not in files and row.synced_hash is not None and self.database.remove(slug, row.hash):
                report.removed.append(row.name)
        return report

    def _write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=self.folder)
        try:
            # mkstemp makes the file 0600; a library reviewed in git wants the usual mode (0644
            # under the common umask), as any editor would have written it.
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def delete(self, name: str, expected_hash: str | None = None) -> None:
        path = self.path_for(name)
        if self.database is not None:
            self._delete_from_database(name, expected_hash)
            return
        with self._locked():
            current = self.current_hash(name)
            if current is None:
                raise PresetNotFound(f"No preset named {name!r} in {self.folder}.")
            if expected_hash is not None and current != expected_hash:
                raise PresetConflictError(f"The preset {name!r} changed on disk since you loaded it; "
                                          "reload it before deleting.")
            path.unlink()

    def _delete_from_database(self, name: str, expected_hash: str | None) -> None:
        row = self.database.get(slugify(name))
        if row is None:
            if self._file_hash(name) is not None:
                raise PresetStoreError(f"{name!r} is in the reviewed library ({self.path_for(name).name}): "
                                       "remove the file in a pull request.")
            raise PresetNotFound(f"No preset named {name!r} in the database or in {self.folder}.")
        if not self.database.remove(row.slug, expected_hash or row.hash):
            raise PresetConflictError(f"The preset {name!r} changed since you loaded it; reload it before deleting.")

    def rename(self, old: str, new: str, overwrite: bool = False) -> Preset:
        preset, digest = self.load_with_hash(old)
        renamed = preset.model_copy(update={"name": new.strip()})
        if self.path_for(new) == self.path_for(old):
            self.save(renamed, expected_hash=digest)
            return renamed
        self.save(renamed, overwrite=overwrite)
        self.delete(old)
        return renamed

    def duplicate(self, name: str, new_name: str | None = None) -> Preset:
        preset = self.load(name)
        if new_name is None:
            new_name, n = f"{preset.name} (copy)", 2
            while self.exists(new_name):
                new_name, n = f"{preset.name} (copy {n})", n + 1
        copy = preset.model_copy(update={"name": new_name.strip()})
        self.save(copy)
        return copy

    def import_files(self, files: list[tuple[str, bytes]], overwrite: bool = False) -> ImportReport:
        """Validate and save each (file name, bytes); bad files are reported by name, good ones saved."""
        report = ImportReport([], [])
        for filename, data in files:
            try:
                preset = parse_preset_bytes(data, filename)
                self.save(preset, overwrite=overwrite)
            except PresetFileError as exc:
                report.errors.append((filename, exc.reason))
            except (PresetStoreError, ValueError) as exc:
                report.errors.append((filename, str(exc)))
            else:
                report.imported.append(preset.name)
        return report


def _check_replace(name: str, file_name: str, current: str | None, overwrite: bool,
                   expected_hash: str | None, where: str) -> None:
    """The one rule for replacing a preset, folder or database (see PresetStore.save)."""
    if expected_hash is not None:
        if current != expected_hash:
            what = "was deleted" if current is None else f"was changed {where}"
            raise PresetConflictError(
                f"The preset {name!r} {what} since you loaded it (by someone else, or a git pull). "
                "Your version was not saved: save it under a new name, or reload the preset first.")
    elif current is not None and not overwrite:
        raise PresetExistsError(f"A preset named {name!r} already exists ({file_name}). "
                                "Choose another name, or overwrite it.")


# (slug, hash) -> parsed Preset: database rows parsed once per version, as files are per stat
_ROWS_PARSED: dict[tuple[str, str], Preset] = {}


def _parse_row(data: bytes, digest: str, slug: str) -> Preset:
    key = (slug, digest)
    if key not in _ROWS_PARSED:
        _ROWS_PARSED[key] = parse_preset_bytes(data, f"{slug}.json")
    return _ROWS_PARSED[key]

"""python -m playground.presets sync [FOLDER]: import the reviewed library (default presets/) into
the team database named by PLAYGROUND_DATABASE_URL, and say what was added, changed and removed.

Exit status: 0 done, 1 some files could not be imported (named), 2 nothing to sync into or a
bad command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playground.presets.store import PresetStore, PresetStoreError
from playground.settings import DATABASE_URL_ENV, database_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m playground.presets",
                                     description="Presets: sync the reviewed folder into the team database.")
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser("sync", help=f"import FOLDER's presets into ${DATABASE_URL_ENV}")
    sync.add_argument("folder", nargs="?", type=Path, help="the presets folder (default: the app's, presets/)")
    args = parser.parse_args(argv)

    url = database_url()
    if not url:
        print(f"error: set {DATABASE_URL_ENV} to the team database (postgresql://...) to sync into",
              file=sys.stderr)
        return 2
    if args.folder is not None and not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    try:
        store = PresetStore(args.folder, database=url)
        report = store.sync()
    except PresetStoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"synced {store.folder} into {store.database.where}")
    for label, names in (("added", report.added), ("changed", report.changed), ("removed", report.removed)):
        print(f"{label} ({len(names)}): {', '.join(names) if names else '-'}")
    for name, reason in report.errors:
        print(f"not imported: {name}: {reason}", file=sys.stderr)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())

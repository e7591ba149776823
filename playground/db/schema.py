"""The tables as SQLAlchemy Core sees them, for queries (their DDL is migrations.py's: each
version's statements, run in order; tests check that a migrated database has these columns).

Times are UTC epoch seconds (double precision). Every run and preset row holds its whole
record as JSON (`data`); the other columns are for filtering, searching and listing.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, Table, Text

metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("id", Text, primary_key=True),
    Column("started_at", Float, nullable=False),
    Column("endpoint", Text, nullable=False, server_default=""),
    Column("model", Text, nullable=False, server_default=""),
    Column("preset", Text),
    Column("text", Text, nullable=False, server_default=""),
    Column("prompt", Text, nullable=False, server_default=""),
    Column("error_kind", Text),
    Column("partial", Integer, nullable=False, server_default="0"),
    Column("total_tokens", Integer),
    Column("total_s", Float),
    Column("data", Text, nullable=False),
    # version 3: what History lists without reading the JSON, where a run came from, who made
    # it, and the reader's feedback (kept when the run is saved again)
    Column("cancelled", Integer, nullable=False, server_default="0"),
    Column("prompt_preview", Text, nullable=False, server_default=""),
    Column("error_message", Text),
    Column("error_status", Integer),
    Column("source", Text),  # playground, compare, repeat, experiment, cli (None: before version 3)
    Column("user_name", Text),
    Column("user_email", Text),
    Column("score", Integer),
    Column("comment", Text, nullable=False, server_default=""),
    Column("tags", Text, nullable=False, server_default=""),
)

experiment_runs = Table(
    "experiment_runs", metadata,
    Column("id", Text, primary_key=True),
    Column("experiment_id", Text, nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("status", Text, nullable=False, server_default="running"),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("definition", Text, nullable=False),
    Column("user_name", Text),
    Column("user_email", Text),
)

experiment_trials = Table(
    "experiment_trials", metadata,
    Column("experiment_run", Text, primary_key=True),
    Column("case_index", Integer, primary_key=True),
    Column("variant", Integer, primary_key=True),
    Column("repeat", Integer, primary_key=True),
    Column("run_id", Text),
    Column("status", Text, nullable=False),
    Column("data", Text, nullable=False),
)

presets = Table(
    "presets", metadata,
    Column("slug", Text, primary_key=True),  # presets.store.slugify(name): one preset per file name
    Column("name", Text, nullable=False),
    Column("data", Text, nullable=False),  # the canonical JSON a file would hold, byte for byte
    Column("hash", Text, nullable=False),  # presets.store.content_hash(data): the conflict check
    Column("updated_at", Float, nullable=False),
    Column("user_name", Text),
    Column("user_email", Text),
    # the hash of the presets/ file this row was last synced from (None: made in the browser);
    # `python -m playground.presets sync` removes only rows that came from a file now gone
    Column("synced_hash", Text),
)

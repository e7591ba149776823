"""Two writers at once, as two app replicas are: separate processes saving runs (and, on a new
database, both migrating it first) into one SQLite file or one PostgreSQL database. Nothing
is lost: every run is counted afterwards."""

from __future__ import annotations

import multiprocessing

import pytest

from playground.runs.store import RunStore
from tests.postgres_support import postgres, postgres_url  # noqa: F401 (fixtures)
from tests.test_runstore import stored_run

RUNS_EACH = 100


def writer(target: str, offset: int, barrier, results) -> None:
    """One replica: wait for the other, then open the (new) store and save runs one by one."""
    try:
        barrier.wait(timeout=60)
        store = RunStore(target)  # both processes migrate the new database at the same moment
        for k in range(RUNS_EACH):
            store.save(stored_run(offset + k, text=f"from writer {offset}"), source="playground")
            if k % 10 == 0:
                store.list(limit=5)  # readers and writers interleave, as History does beside a run
        results.put((offset, "ok"))
    except BaseException as error:  # noqa: BLE001 - reported to the test, not lost in the child
        results.put((offset, repr(error)))


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.sqlite3")
    return request.getfixturevalue("postgres_url")


def test_two_processes_save_at_once_and_nothing_is_lost(target: str) -> None:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter each, as a replica is
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=writer, args=(target, offset, barrier, results)) for offset in (0, 10_000)]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=240) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    assert outcomes == {0: "ok", 10_000: "ok"}
    store = RunStore(target)
    assert store.count() == 2 * RUNS_EACH
    assert store.count(search="from writer 0") == RUNS_EACH and store.count(search="from writer 10000") == RUNS_EACH
    ids = {summary.id for summary in store}
    assert ids == {f"run-{k:05d}" for k in [*range(RUNS_EACH), *range(10_000, 10_000 + RUNS_EACH)]}

"""Experiment runs and their trials in the store's database, on SQLite and on PostgreSQL: saved,
read back whole, listed with their figures (newest first, by experiment, "mine"), the baseline
lookup, the trial that names a Run, deletion keeping the Runs, and who ran it."""

from __future__ import annotations

import time

import pytest

from playground.db.user import User
from playground.experiments import ExperimentResult, ExperimentStore
from playground.experiments.model import Trial
from tests.postgres_support import postgres, postgres_url  # noqa: F401 (fixtures)
from tests.test_experiments import sized_experiment
from tests.test_runstore import stored_run


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> ExperimentStore:
    if request.param == "sqlite":
        return ExperimentStore(tmp_path / "runs.sqlite3")
    return ExperimentStore(request.getfixturevalue("postgres_url"))


def result_of(experiment, started_at: float, statuses: list[str], user: User | None = None) -> ExperimentResult:
    result = ExperimentResult(experiment=experiment, started_at=started_at, finished_at=started_at + 1.5,
                              status="finished", user=user)
    result.trials = [Trial(case=k, variant=0, repeat=0, status=status, answer=f"answer {k}", run_id=f"run-{k:05d}",
                           latency_s=0.25, prompt_tokens=5, completion_tokens=2) for k, status in enumerate(statuses)]
    return result


def test_saved_read_listed_and_deleted(store: ExperimentStore) -> None:
    experiment = sized_experiment(3)
    store.runs.save_many([stored_run(k) for k in range(3)], source="experiment")
    older = result_of(experiment, time.time() - 60, ["pass", "fail", "pass"], User("Ann", "ann@example.com"))
    newer = result_of(experiment, time.time(), ["pass", "pass", "error"], User("Bo", "bo@example.com"))
    store.save(older)
    store.save(newer)

    back = store.get(older.id)
    assert back is not None and back.experiment == experiment and back.trials == older.trials
    assert back.user == User("Ann", "ann@example.com") and back.status == "finished"
    assert back.started_at == pytest.approx(older.started_at) and back.finished_at == pytest.approx(older.finished_at)
    listed = store.list(experiment.id)
    assert [s.id for s in listed] == [newer.id, older.id]
    assert [(s.done, s.passed, s.total) for s in listed] == [(3, 2, 3), (3, 2, 3)]
    assert [s.id for s in store.list(user_email="ann@example.com")] == [older.id]  # "mine"
    assert listed[0].user_name == "Bo" and store.list("another-experiment") == []
    assert store.latest(experiment.id, before=newer.id).id == older.id
    assert store.experiment_of("run-00001") in (older.id, newer.id) and store.experiment_of("nope") is None
    assert {s.source for s in store.runs.list()} == {"experiment"}

    assert store.delete(older.id) is True and store.get(older.id) is None and store.delete(older.id) is False
    assert store.runs.count() == 3  # its Runs stay in the history


def test_a_run_recorded_as_it_goes(store: ExperimentStore) -> None:
    experiment = sized_experiment(2)
    result = ExperimentResult(experiment=experiment)
    store.begin(result)
    assert [(s.status, s.done) for s in store.list(experiment.id)] == [("running", 0)]
    first = Trial(case=0, variant=0, repeat=0, status="pass", run_id="r0")
    store.add_trials(result.id, [first])
    store.add_trials(result.id, [Trial(case=0, variant=0, repeat=0, status="fail", run_id="r0")])  # graded again
    store.add_trials(result.id, [])
    result.status, result.finished_at = "stopped", time.time()
    store.finish(result)
    [summary] = store.list(experiment.id)
    assert (summary.status, summary.done, summary.passed) == ("stopped", 1, 0) and summary.finished_at is not None
    keeper = store.keep_open()
    try:
        assert store.get(result.id).trials[0].status == "fail"
    finally:
        keeper.close()

"""The run history: filters, search, paging, feedback, no keys, right at 10,000 runs. Every
test that takes `store` or `target` runs twice: on an SQLite file and on a real PostgreSQL
server the session starts (tests/postgres_support.py)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import date, datetime, timedelta, timezone

import pytest

from playground.client.run import Run, RunError
from playground.client.schema import ChatRequest, TokenLogprob, TopLogprob
from playground.db.user import User
from playground.runs.store import RunStore, SecretInRunError, join_tags
from tests.postgres_support import postgres, postgres_url  # noqa: F401 (fixtures)
from tests.support import run_of

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def stored_run(k: int = 0, *, text: str = "", prompt: str = "hello", endpoint: str = "Local sandbox",
               model: str = "local/smollm2-135m-instruct", preset: str | None = None, minutes: float | None = None,
               **extra) -> Run:
    """Run k ("run-0000k"): `prompt` answered "answer k", k minutes after T0; `extra` request fields."""
    return run_of(text or f"answer {k}", model=model, prompt=prompt, usage=(3, k % 7 + 1), request_fields=extra,
                  id=f"run-{k:05d}", started_at=T0 + timedelta(minutes=k if minutes is None else minutes),
                  endpoint=endpoint, preset=preset, total_s=0.5 + k / 1000)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """Where a store keeps its runs: a file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return tmp_path / "runs.sqlite3"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(target):
    return RunStore(target)


def test_save_get_round_trip_keeps_everything(store):
    run = stored_run(1, text="Paris.", temperature=0.3, min_p=0.1)
    run.choices[0].logprobs = [TokenLogprob(token="Paris", logprob=-0.1,
                                            top_logprobs=[TopLogprob(token="Paris", logprob=-0.1)])]
    run.error = RunError(kind="StreamError", message="cut", status_code=None)
    run.partial = True
    store.save(run)
    back = store.get(run.id)
    assert back is not None
    assert back.model_dump() == run.model_dump()
    assert back.request.extra_fields == {"min_p": 0.1}
    assert store.get("missing") is None


def test_file_is_sqlite_in_wal_mode(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    store.save(stored_run())
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_save_is_an_upsert(store):
    run = stored_run(1, text="first")
    store.save(run)
    run.choices[0].text = "second"
    store.save(run)
    assert store.count() == 1
    assert store.get(run.id).text == "second"
    assert store.list()[0].text_preview == "second"


def test_summary_fields(store):
    run = stored_run(3, text="x" * 500, preset="haiku")
    run.error = RunError(kind="RateLimitError", message="slow down", status_code=429)
    run.partial = True
    store.save(run)
    [summary] = store.list()
    assert summary.id == run.id and summary.started_at == run.started_at
    assert summary.endpoint == "Local sandbox" and summary.model == "local/smollm2-135m-instruct"
    assert summary.preset == "haiku" and summary.error_kind == "RateLimitError" and summary.partial is True
    assert summary.total_tokens == 3 + 3 % 7 + 1 and summary.total_s == pytest.approx(0.503)
    assert summary.text_preview == "x" * 200
    assert summary.status == "failed" and summary.error_message == "slow down" and summary.error_status == 429


def test_summary_status_and_prompt_preview(store):
    ok = stored_run(1, prompt="  What is\n the capital   of France?  ")
    stopped = stored_run(2)
    stopped.cancelled = stopped.partial = True
    cut = stored_run(3)
    cut.partial = True
    conversation = stored_run(4)
    conversation.request = ChatRequest.from_wire({"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "first "}, {"type": "text", "text": "question"}]},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": [{"type": "text", "text": "and the "}, {"type": "text", "text": "last " * 40}]}]})
    no_user = stored_run(5)
    no_user.request = ChatRequest.from_wire({"model": "m", "messages": [{"role": "system", "content": "alone"}]})
    store.save_many([ok, stopped, cut, conversation, no_user])
    listed = {s.id: s for s in store.list()}
    assert [listed[r.id].status for r in (ok, stopped, cut)] == ["ok", "stopped", "partial"]
    assert listed[ok.id].prompt_preview == "What is the capital of France?"  # on one line
    last = listed[conversation.id].prompt_preview  # the last user message, its text parts joined
    assert last.startswith("and the last last") and last.endswith("\u2026") and len(last) == 60
    assert listed[no_user.id].prompt_preview == ""
    assert listed[ok.id].error_message is None and listed[ok.id].error_status is None


def test_list_newest_first_and_paged(store):
    store.save_many(stored_run(k) for k in range(25))
    first = store.list(limit=10)
    assert [s.id for s in first] == [f"run-{k:05d}" for k in range(24, 14, -1)]
    third = store.list(limit=10, offset=20)
    assert [s.id for s in third] == [f"run-{k:05d}" for k in range(4, -1, -1)]
    assert store.count() == 25


def test_filters(store):
    store.save_many([
        stored_run(1, endpoint="SGP", model="openai/gpt-4o", preset="a"),
        stored_run(2, endpoint="SGP", model="openai/gpt-4o-mini"),
        stored_run(3, endpoint="Local sandbox", preset="a"),
        stored_run(4, endpoint="SGP", model="openai/gpt-4o", preset="b"),
    ])
    assert [s.id for s in store.list(endpoint="SGP")] == ["run-00004", "run-00002", "run-00001"]
    assert [s.id for s in store.list(endpoint="SGP", model="openai/gpt-4o")] == ["run-00004", "run-00001"]
    assert [s.id for s in store.list(preset="a")] == ["run-00003", "run-00001"]
    assert store.count(endpoint="SGP", preset="b") == 1
    assert store.distinct("endpoint") == ["Local sandbox", "SGP"]
    assert store.distinct("preset") == ["a", "b"]
    with pytest.raises(ValueError):
        store.distinct("data; DROP TABLE runs")


def test_time_filters(store):
    store.save_many(stored_run(k, minutes=k * 60 * 24) for k in range(5))  # one a day from 1 March
    since, until = T0 + timedelta(days=1), T0 + timedelta(days=3)
    assert [s.id for s in store.list(since=since, until=until)] == ["run-00002", "run-00001"]
    assert store.count(since=since.timestamp()) == 4
    day = (T0 + timedelta(days=2)).astimezone().date()
    assert isinstance(day, date)
    local_day = [s.id for s in store.list(since=day, until=day)]
    assert "run-00002" in local_day and len(local_day) == 1


def test_search_text_and_messages(store):
    store.save_many([
        stored_run(1, text="The capital is Paris.", prompt="capital of France?"),
        stored_run(2, text="Berlin it is.", prompt="Capital of Germany?"),
        stored_run(3, text="100% sure_thing", prompt="odd chars"),
    ])
    assert [s.id for s in store.list(search="paris")] == ["run-00001"]
    assert [s.id for s in store.list(search="capital of")] == ["run-00002", "run-00001"]  # prompts, any case
    assert [s.id for s in store.list(search="100%")] == ["run-00003"]
    assert store.count(search="%") == 1 and store.count(search="_") == 1  # wildcards are literal
    assert store.count(search="nowhere") == 0


def test_delete(store):
    store.save(stored_run(1))
    assert store.delete("run-00001") is True
    assert store.delete("run-00001") is False
    assert store.get("run-00001") is None and store.count() == 0


@pytest.mark.parametrize("extra", [
    {"api_key": "abc"},
    {"headers": {"Authorization": "Bearer abcdefghijkl"}},
    {"chat_template_kwargs": {"x-api-key": "zzz"}},
    {"vendor": {"nested": [{"secret": "s"}]}},
    {"note": "sk-" + "abcdefghijklmnopqrstuvwx"},  # split: no key-shaped literal in the repo
    {"metadata": {"token": "ghp_abcdefghijklmnopqrstuvwxyz0123"}},
    {"credentials": {"user": "me", "key": 12345}},  # a secret-named field, whatever it holds
    {"api_key": 12345},
])
def test_refuses_runs_that_look_like_they_hold_a_key(store, extra):
    run = stored_run(1, **extra)
    with pytest.raises(SecretInRunError):
        store.save(run)
    assert store.count() == 0  # refused, not stripped and stored


def test_allows_ordinary_token_fields(store):
    store.save(stored_run(1, max_tokens=5, max_completion_tokens=5, top_logprobs=2, logprobs=True,
                        metadata={"team": "blue"}))
    assert store.count() == 1


def test_forbid_catches_the_endpoint_key_anywhere(store):
    run = stored_run(1, text="the key is k-123-SECRET")
    with pytest.raises(SecretInRunError):
        store.save(run, forbid=["k-123-SECRET"])
    store.save(run, forbid=["", "other"])
    assert store.count() == 1


def test_safe_from_many_threads(store):
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for k in range(20):
                store.save(stored_run(t * 100 + k))
                store.list(limit=5)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == 120


def test_pages_over_ten_thousand_runs(store):
    """The History page's queries give the right rows at 10,000 runs (their speed: bench/history_store.py)."""
    endpoints = ["SGP", "Local sandbox", "vllm"]
    runs = [stored_run(k, endpoint=endpoints[k % 3], model=f"vendor/model-{k % 5}", preset=f"p{k % 4}",
                     text=f"answer number {k} " + "lorem ipsum " * 5) for k in range(10_000)]
    assert store.save_many(runs) == 10_000
    assert store.count() == 10_000

    page = store.list(endpoint="SGP", model="vendor/model-2", limit=50, offset=100)
    matching = [k for k in range(10_000) if k % 3 == 0 and k % 5 == 2]  # SGP and model-2: k = 12 mod 15
    assert [s.id for s in page] == [f"run-{k:05d}" for k in sorted(matching, reverse=True)[100:150]]
    assert all(s.endpoint == "SGP" and s.model == "vendor/model-2" for s in page)

    page = store.list(search="number 99", limit=50)
    found = sorted((k for k in range(10_000) if f"number {k} ".startswith("number 99")), reverse=True)
    assert [s.id for s in page] == [f"run-{k:05d}" for k in found[:50]]

    since = T0 + timedelta(days=1)  # minute 1440 on
    assert store.count(preset="p1", since=since) == sum(1 for k in range(1440, 10_000) if k % 4 == 1)


def test_reopening_the_store_keeps_the_runs(target):
    RunStore(target).save(stored_run(7, text="kept"))
    again = RunStore(target)
    assert again.get("run-00007").text == "kept" and again.count() == 1


def test_source_and_user_are_recorded_and_filtered(store):
    alice, bob = User("Alice", "alice@example.com"), User("Bob", "bob@example.com")
    store.save(stored_run(1), source="playground", user=alice)
    store.save_many([stored_run(2), stored_run(3)], source="compare", user=bob)
    store.save(stored_run(4), source="cli")
    store.save(stored_run(5))  # no source, no user: as before version 3
    assert [s.id for s in store.list(user_email="bob@example.com")] == ["run-00003", "run-00002"]
    assert [s.id for s in store.list(source="playground")] == ["run-00001"]
    assert store.count(source="compare", user_email="alice@example.com") == 0
    first = store.list(user_email="alice@example.com")[0]
    assert (first.source, first.user_name, first.user_email) == ("playground", "Alice", "alice@example.com")
    assert store.distinct("source") == ["cli", "compare", "playground"]
    assert store.distinct("user_email") == ["alice@example.com", "bob@example.com"]
    unnamed = {s.id: s for s in store.list()}["run-00005"]
    assert unnamed.source is None and unnamed.user_email is None
    store.save(stored_run(1, text="again"))  # saved again without naming them: they stay
    again = store.list(search="again")[0]
    assert (again.source, again.user_email) == ("playground", "alice@example.com")


def test_feedback_is_kept_searched_and_cleared(store):
    store.save_many([stored_run(1), stored_run(2)])
    assert store.set_feedback("run-00001", score=1, comment="Too long; cut the preamble",
                              tags=["verbose", " tone ", "verbose", ""]) is True
    assert store.set_feedback("missing", score=1) is False
    [first] = [s for s in store.list() if s.id == "run-00001"]
    assert (first.score, first.comment, first.tags) == (1, "Too long; cut the preamble", "verbose, tone")
    assert [s.id for s in store.list(search="PREAMBLE")] == ["run-00001"]  # the comment is searched
    assert [s.id for s in store.list(search="tone")] == ["run-00001"]  # and the tags
    store.save(stored_run(1, text="answer again"))  # the run saved again (a late chunk): feedback stays
    assert store.list(search="answer again")[0].score == 1
    store.set_feedback("run-00001", score=None, tags="")
    [first] = [s for s in store.list() if s.id == "run-00001"]
    assert (first.score, first.comment, first.tags) == (None, "Too long; cut the preamble", "")
    assert store.count(search="tone") == 0  # the search index followed the update
    store.delete("run-00001")
    assert store.count(search="preamble") == 0  # and the delete
    assert join_tags("a, b,,a") == "a, b"


def test_search_takes_quotes_short_needles_and_any_case(store):
    store.save_many([
        stored_run(1, text='He said "stop" twice.'),
        stored_run(2, text="Ça va? ÉCOLE"),
        stored_run(3, text="ab"),
    ])
    assert [s.id for s in store.list(search='"stop"')] == ["run-00001"]  # quotes are text, not syntax
    assert [s.id for s in store.list(search='said "st')] == ["run-00001"]
    assert [s.id for s in store.list(search="ab")] == ["run-00003"]  # under 3 characters: still found
    assert [s.id for s in store.list(search="ÉCOLE")] == ["run-00002"]
    assert [s.id for s in store.list(search="ça va")] == ["run-00002"]  # beyond ASCII, any case


def test_a_capped_count_stops_past_its_cap(store) -> None:
    store.save_many(stored_run(k, text="same words") for k in range(12))
    assert store.count(search="same words", cap=5) == 6  # more than 5
    assert store.count(search="same words", cap=50) == store.count(search="same words") == 12


def test_experiment_cells_can_be_hidden_or_listed_by_their_experiment_run(store) -> None:
    """History hides experiment cells by default, and lists one experiment run's cells on demand."""
    from playground.experiments import Case, Experiment, ExperimentResult, ExperimentStore, Variant
    from playground.experiments.model import Trial
    from playground.presets import Preset

    mine, cell_a, cell_b = (Run(request=ChatRequest(model="m", messages=[{"role": "user", "content": text}]),
                                endpoint="E") for text in ("by hand", "cell a", "cell b"))
    store.save(mine, source="playground")
    store.save_many([cell_a, cell_b], source="experiment")
    experiments = ExperimentStore(store)
    preset = Preset.new("x", ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}]))
    experiment = Experiment.from_preset(preset, [Case(values={})], [Variant.from_preset(preset)])
    result = ExperimentResult(experiment=experiment)
    result.trials = [Trial(case=0, variant=0, repeat=0, status="pass", run_id=cell_a.id)]
    experiments.save(result)
    assert [r.id for r in store.list(hide_source="experiment")] == [mine.id]
    assert store.count(hide_source="experiment") == 1
    assert [r.id for r in store.list(experiment_run=result.id)] == [cell_a.id]
    assert store.count(experiment_run=result.id) == 1


def test_search_pages_are_the_same_whichever_way_sqlite_finds_them(store):
    """A needle in every run (its newest page found among the newest runs) and one in a few
    (found through the index), on the first pages and past the newest-runs window."""
    store.save_many(stored_run(k, text=f"common words {'needle' if k % 97 == 0 else 'hay'} {k}") for k in range(700))
    newest_first = list(range(699, -1, -1))
    for needle, matching in (("common", newest_first), ("needle", [k for k in newest_first if k % 97 == 0]),
                             ("COMMON WORDS", newest_first)):
        for offset in (0, 20, 480, 600):
            page = store.list(search=needle, limit=20, offset=offset)
            assert [s.id for s in page] == [f"run-{k:05d}" for k in matching[offset:offset + 20]], (needle, offset)
    assert [s.id for s in store.list(search="common", endpoint="Local sandbox", limit=3)] == [
        "run-00699", "run-00698", "run-00697"]

"""Repeat: grouping, exact-match rate, fork point, total logprob; Batch against a real loopback server."""

from __future__ import annotations

import math
import threading
import time
from functools import partial

import pytest

from playground.analysis.compare_tables import samples_frame
from playground.analysis.logprobs import first_difference
from playground.analysis.repeat import (
    END,
    Fork,
    exact_match_rate,
    fork_point,
    group_answers,
    summarize,
    tokens_of,
    total_logprob,
)
from playground.client.run import Run
from playground.client.schema import ChatRequest, TokenLogprob, Usage
from playground.runs.batch import Batch
from tests.scripted_server import Reply, ScriptedServer, make_chunk
from tests.support import run_of, wait_for

REQUEST = ChatRequest(model="scripted/model", messages=[{"role": "user", "content": "hi"}], stream=True)


def lp(token: str, logprob: float) -> TokenLogprob:
    return TokenLogprob(token=token, logprob=logprob)


# Repeat's samples: streamed answers with no finish reason recorded, unless a test says otherwise
run_of = partial(run_of, finish_reason=None, request_fields={"stream": True})


# --- pure functions ----------------------------------------------------------------------


def test_group_answers_counts_and_orders_by_count_then_first_seen():
    groups = group_answers(["b", "a", "b", "c", "a", "b"])
    assert [(g.text, g.count, g.samples) for g in groups] == [("b", 3, (0, 2, 5)), ("a", 2, (1, 4)), ("c", 1, (3,))]
    tie = group_answers(["y", "x"])
    assert [g.text for g in tie] == ["y", "x"]
    assert group_answers([]) == []


def test_exact_match_rate():
    assert exact_match_rate(["a"] * 5) == 1.0
    assert exact_match_rate(["a", "a", "a", "b"]) == 0.75
    assert exact_match_rate(["a", "b", "c", "d"]) == 0.25
    assert exact_match_rate([]) is None
    # whitespace counts: an exact match is exact
    assert exact_match_rate(["a", "a "]) == 0.5


def test_first_difference():
    assert first_difference(["a", "b"], ["a", "b"]) is None
    assert first_difference(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert first_difference(["a", "b"], ["a", "b", "c"]) == 2
    assert first_difference([], ["a"]) == 0
    assert first_difference([], []) is None


def test_fork_point_finds_first_disagreement_with_branch_counts():
    seqs = [["The", " cat", " sat"], ["The", " cat", " ran"], ["The", " cat", " sat"]]
    assert fork_point(seqs) == Fork(position=2, prefix="The cat", branches={" sat": 2, " ran": 1})


def test_fork_point_when_one_sample_stops_early_and_when_all_agree():
    assert fork_point([["a", "b"], ["a", "b", "c"]]) == Fork(position=2, prefix="ab", branches={END: 1, "c": 1})
    assert fork_point([["a", "b"], ["a", "b"]]) is None
    assert fork_point([["a"]]) is None
    assert fork_point([[], []]) is None
    assert fork_point([["x"], ["y"]]) == Fork(position=0, prefix="", branches={"x": 1, "y": 1})


def test_total_logprob_sums_chosen_tokens():
    assert total_logprob([lp("a", -0.5), lp("b", -1.25), lp("c", 0.0)]) == pytest.approx(-1.75)
    assert total_logprob([]) is None
    # many small terms: fsum, not naive drift
    assert total_logprob([lp("x", -0.1)] * 10) == pytest.approx(-1.0, abs=1e-15)


def test_tokens_of_prefers_server_tokens_then_falls_back_to_words():
    assert tokens_of(run_of([("Hel", -0.1), ("lo", -0.2)])) == (["Hel", "lo"], True)
    assert tokens_of(run_of("Hello, world")) == (["Hello", ",", " ", "world"], False)


# --- summarize ---------------------------------------------------------------------------


def test_summarize_groups_samples_and_reports_the_fork():
    runs = [
        run_of([("The", -0.1), (" cat", -0.2), (" sat", -0.3)]),
        run_of([("The", -0.1), (" cat", -0.2), (" ran", -2.0)]),
        run_of([("The", -0.1), (" cat", -0.2), (" sat", -0.3)]),
        run_of([("The", -0.1), (" cat", -0.2), (" sat", -0.3)]),
    ]
    summary = summarize(runs)
    assert summary.k == 4 and summary.distinct == 2 and not summary.deterministic
    assert summary.exact_match_rate == 0.75
    assert [(g.text, g.count) for g in summary.groups] == [("The cat sat", 3), ("The cat ran", 1)]
    assert [s.group for s in summary.samples] == [1, 2, 1, 1]
    assert summary.server_tokens is True
    assert summary.fork == Fork(position=2, prefix="The cat", branches={" sat": 3, " ran": 1})
    assert [s.forks_from_first_at for s in summary.samples] == [None, 2, None, None]
    assert summary.samples[0].total_logprob == pytest.approx(-0.6)
    assert summary.samples[1].total_logprob == pytest.approx(-2.3)
    assert [s.number for s in summary.samples] == [1, 2, 3, 4]


def test_summarize_identical_samples_is_deterministic():
    runs = [run_of([("4", -0.01)]) for _ in range(5)]
    summary = summarize(runs)
    assert summary.deterministic is True and summary.exact_match_rate == 1.0 and summary.fork is None


def test_summarize_leaves_out_failed_and_skipped_samples_and_uses_words_without_logprobs():
    runs = [run_of("a b c"), None, run_of("", error="boom"), run_of("a b d"), run_of("a b", partial=True)]
    summary = summarize(runs)
    assert summary.failed == 1 and summary.skipped == 1 and summary.k == 3
    assert [s.number for s in summary.samples] == [1, 4, 5]
    assert summary.server_tokens is False
    # words: "a", " ", "b", then " " twice and the stopped sample's end
    assert summary.fork == Fork(position=3, prefix="a b", branches={" ": 2, END: 1})
    assert [s.forks_from_first_at for s in summary.samples] == [None, 4, 3]
    assert [s.total_logprob for s in summary.samples] == [None, None, None]
    # the partial sample is called out
    assert summary.notes == ["Some samples were stopped or cut off: their partial text is compared as it is."]


def test_summarize_mixed_token_sources_compares_words_for_all():
    runs = [run_of([("a", -0.1), (" b", -0.1)]), run_of("a b")]
    summary = summarize(runs)
    assert summary.server_tokens is False
    assert summary.fork is None and summary.exact_match_rate == 1.0


def test_summarize_empty():
    summary = summarize([])
    assert summary.k == 0 and summary.exact_match_rate is None and summary.fork is None
    assert summary.determinism(seeded=True) == "n/a"


def test_determinism_is_only_a_verdict_with_a_seed():
    same = summarize([run_of([("4", -0.01)]) for _ in range(3)])
    differ = summarize([run_of("a"), run_of("b")])
    assert same.determinism(seeded=True) == "yes" and differ.determinism(seeded=True) == "no"
    # without a seed, agreeing samples (at temperature 0, say) prove nothing either way
    assert same.determinism(seeded=False) == "n/a" and differ.determinism(seeded=False) == "n/a"


def test_samples_frame_counts_the_servers_tokens_not_words():
    with_usage = run_of("one two three four five six")  # 11 words and spaces: not what the server counted
    with_usage.usage = Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)
    without = run_of("one two")
    frame = samples_frame(summarize([with_usage, without]))
    assert str(frame["completion tokens"].dtype) == "Int64"
    assert frame["completion tokens"].tolist()[0] == 4 and frame["completion tokens"].isna().tolist()[1]
    # the fork column names its unit: words here (no logprobs), tokens with them
    assert frame["forks from sample 1 at (word)"].tolist()[1] == 3  # "one", " ", "two", then it ends
    assert "tokens" not in frame.columns
    with_logprobs = samples_frame(summarize([run_of([("a", -0.1)]), run_of([("b", -0.1)])]))
    forks = with_logprobs["forks from sample 1 at (token)"]
    assert forks.isna().tolist() == [True, False] and forks.tolist()[1] == 0


# --- Batch against a real loopback server ------------------------------------------------


def test_batch_runs_items_concurrently_and_saves_each():
    saved: list[Run] = []
    finished_at: list[float] = []
    lock = threading.Lock()

    def save(run: Run) -> None:
        with lock:
            saved.append(run)
            finished_at.append(time.perf_counter())

    with ScriptedServer() as server:
        # each stream takes 9 events x 100 ms = 0.9 s: the four requests arrive within a few ms
        # of each other, so starting them all leaves over 10x room before the first one ends
        server.default = Reply.stream_text(["a", "b", "c", "d", "e"], delay_s=0.1)
        endpoint = server.endpoint()
        batch = Batch([(endpoint, REQUEST)] * 4, on_finish=save).start()
        assert batch.wait(timeout=10) is True
    assert batch.done is True and batch.finished_count == 4
    assert [run.text for run in batch.runs] == ["abcde"] * 4
    assert len(saved) == 4 and {run.id for run in saved} == {run.id for run in batch.runs}
    # concurrent: the server had every request before any stream ended (one at a time, or two
    # at a time, the later requests could only arrive after an earlier stream finished)
    assert len(server.requests) == 4
    assert max(r.at for r in server.requests) < min(finished_at)
    assert batch.claim_final_redraw() is True
    assert batch.claim_final_redraw() is False


def test_batch_snapshot_grows_while_streaming_and_cancel_keeps_partial_text():
    # a stream that ignored the cancel would run on for about 10 s (200 tokens x 50 ms)
    tokens = [f"t{i} " for i in range(200)]
    prefixes = {"".join(tokens[:n]) for n in range(1, len(tokens))}  # what a cut stream can hold
    with ScriptedServer() as server:
        server.default = Reply.stream_text(tokens, delay_s=0.05)
        batch = Batch([(server.endpoint(), REQUEST)] * 2, on_finish=lambda run: None).start()
        wait_for(lambda: batch.snapshot(0) and batch.snapshot(1), 10, "both items to have text")
        first = (batch.snapshot(0), batch.snapshot(1))
        assert all(text in prefixes for text in first), f"both items stream at once: {first}"
        assert batch.claim_final_redraw() is False  # not done yet
        wait_for(lambda: len(batch.snapshot(0)) > len(first[0]), 10, "the first item's text to grow")
        sent_at_cancel = [received.events_sent for received in server.requests]
        batch.cancel()
        assert batch.wait(timeout=30) is True
        # stopped where it was: each connection closed with at most an event more than at the cancel
        assert all(received.wait_closed(5) and not received.finished for received in server.requests)
        assert all(r.events_sent <= n + 1 for r, n in zip(server.requests, sent_at_cancel, strict=True))
    for run in batch.runs:
        assert (run.cancelled, run.partial) == (True, True)
        assert run.text in prefixes and run.text.startswith("t0 t1 "), run.text


def test_batch_cancel_skips_items_not_started_and_errors_come_back_in_the_run():
    with ScriptedServer() as server:
        server.add(Reply.error(400, {"detail": "model not found: nope"}))
        server.default = Reply.stream_text(["x"] * 30, delay_s=0.05)
        batch = Batch([(server.endpoint(), REQUEST)] * 5, concurrency=1, on_finish=lambda run: None).start()
        wait_for(lambda: batch.snapshot(1), 10, "the second item to have text")
        batch.cancel()
        assert batch.wait(timeout=30) is True
    first, second, *rest = batch.runs
    assert (first.error.status_code, first.error.message) == (400, "model not found: nope")
    assert first.text == ""
    assert (second.cancelled, second.error) == (True, None)
    assert rest == [None, None, None]
    summary = summarize(batch.runs)
    assert summary.failed == 1 and summary.skipped == 3 and summary.k == 1


def test_batch_keeps_going_when_saving_fails():
    def broken_save(run: Run) -> None:
        raise OSError("disk full")

    with ScriptedServer() as server:
        server.default = Reply.sse([make_chunk("ok", role="assistant"), make_chunk(finish_reason="stop")])
        batch = Batch([(server.endpoint(), REQUEST)] * 2, on_finish=broken_save).start()
        assert batch.wait(timeout=5) is True
    assert [run.text for run in batch.runs] == ["ok", "ok"]
    # both answers kept; each failed save said once, in either order (two worker threads)
    assert sorted(batch.errors) == sorted(f"could not save run {run.id}: disk full" for run in batch.runs)


def test_batch_needs_items():
    with pytest.raises(ValueError, match="^a batch needs at least one request$"):
        Batch([])


def test_math_sanity_of_probabilities():
    # total logprob of the answer is the log of the product of token probabilities
    tokens = [lp("a", math.log(0.5)), lp("b", math.log(0.25))]
    assert math.exp(total_logprob(tokens)) == pytest.approx(0.125)

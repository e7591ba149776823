"""The Compare page's pure tables (playground.analysis.compare_tables): pane requests, summary, baseline deltas,
token-diff headlines."""

from __future__ import annotations

from functools import partial

import markdown_it
import pytest

from playground.analysis.compare_tables import (
    changed_fields,
    delta_frame,
    diff_headlines,
    divergence,
    run_status,
    shared_prompt,
    shown_columns,
    stats_line,
    summary_frame,
    token_diff,
)
from playground.client.run import ChoiceResult, Run, RunError
from playground.client.schema import ChatRequest
from tests.support import run_of

MESSAGES = [{"role": "user", "content": "hi"}]


# Compare's runs: model m/a, 5 + 3 tokens, 0.1 s to the first token and 1 s in all, unless a test says otherwise
run_of = partial(run_of, model="m/a", usage=(5, 3), ttft_s=0.1, total_s=1.0)


def test_summary_frame_costs_and_status():
    ok = run_of("a", usage=(1000, 2000))
    stopped = run_of("b", cancelled=True, partial=True, usage=None)
    failed = Run(request=ChatRequest(model="m/a", messages=MESSAGES),
                 error=RunError(kind="rate_limit", message="slow down", status_code=429))
    frame = summary_frame([("A", ok), ("B", stopped), ("C", failed)], {"m/a": (1.0, 10.0)})
    assert frame["cost ($)"].tolist()[0] == pytest.approx(0.021)
    assert frame["cost ($)"].isna().tolist()[1:] == [True, True]
    assert frame["status"].tolist() == ["ok", "stopped", "failed"]
    assert run_status(run_of("x", partial=True)) == "partial"
    assert "cost ($)" not in summary_frame([("A", ok)], {}).columns


def test_summary_frame_puts_the_numbers_first_and_leaves_unknowns_empty():
    ok = run_of("a", usage=(5, 3), request_fields={"temperature": 0.2})
    ok.request.messages.append(ok.request.messages[0].model_copy(update={"content": "  and  then\n" + "x" * 80}))
    ok.endpoint = "SGP"
    ok.request.seed, ok.request.max_completion_tokens = 7, 32
    failed = Run(request=ChatRequest(model="m/a", messages=MESSAGES),
                 error=RunError(kind="not_found", message="no such model", status_code=404))
    frame = summary_frame([("A", ok), ("B", failed)], {})
    assert list(frame.columns)[:6] == ["run", "status", "completion tokens", "latency (s)", "TTFT (s)", "tokens/s"]
    assert str(frame["completion tokens"].dtype) == "Int64"  # 3, not 3.0
    assert frame["completion tokens"].tolist()[0] == 3 and frame["completion tokens"].isna().tolist()[1]
    assert frame["prompt tokens"].isna().tolist()[1] and frame["latency (s)"].isna().tolist()[1]
    assert frame["finish_reason"].tolist() == ["stop", ""]  # text columns: empty, never None
    assert frame["setup"].tolist() == ["SGP · T 0.2 · max 32 · seed 7", ""]
    prompt = frame["prompt"].tolist()[0]  # the last user message's first words, on one line
    assert prompt.startswith("and then xxx") and prompt.endswith("\u2026") and len(prompt) == 60
    assert frame["prompt"].tolist()[1] == "hi"
    # asked different things: the prompt is a column; asked the same: one caption says it
    assert shared_prompt(frame) is None and shown_columns(frame)[-1] == "prompt"
    same = summary_frame([("A", run_of("a")), ("B", run_of("b"))], {"m/a": (1.0, 1.0)})
    assert shared_prompt(same) == "hi" and "prompt" not in shown_columns(same)
    assert shown_columns(same) == ["run", "status", "completion tokens", "latency (s)", "TTFT (s)", "tokens/s",
                                   "cost ($)", "prompt tokens", "finish_reason", "setup"]


def test_delta_frame_against_a_baseline():
    base = run_of("The cat sat", usage=(5, 4), ttft_s=0.2, total_s=1.0)
    other = run_of("The cat ran", usage=(5, 2), ttft_s=0.1, total_s=2.0, request_fields={"temperature": 0.7})
    frame = delta_frame(base, [("B", other)], {})
    row = frame.iloc[0]
    assert row["Δ completion tokens"] == "-2 (-50%)"
    assert row["Δ TTFT (s)"] == "-0.100 (-50%)" and row["Δ latency (s)"] == "+1.000 (+100%)"
    assert row["changed fields"] == "temperature" and not row["same text"]
    assert row["diverges at"] == "word 4"  # The, ␣, cat, ␣, then sat | ran
    assert "Δ cost ($)" not in frame.columns
    assert changed_fields(base.request, base.request) == []


def test_divergence_prefers_tokens():
    a = run_of("ab", probs=[("a", 0.9), ("b", 0.5)])
    b = run_of("ac", probs=[("a", 0.9), ("c", 0.5)])
    assert divergence(a, b) == "token 1"
    assert divergence(a, a) == "identical"


def test_divergence_in_words_when_only_one_run_has_logprobs():
    with_tokens = run_of("Hello there", probs=[("Hel", 0.9), ("lo", 0.5), (" there", 0.5)])
    plain = run_of("Hello there")
    assert divergence(with_tokens, plain) == "identical" == divergence(plain, with_tokens)
    assert divergence(with_tokens, run_of("Hello you")) == "word 2"


def test_token_diff_headlines_name_the_first_divergence_and_escape_tokens():
    a = run_of("Hi <b>", probs=[("Hi", 0.9), (" <b>", 0.6)])
    b = run_of("Hi *x*", probs=[("Hi", 0.8), (" *x*", 0.3)])
    diff = token_diff(a, b)
    assert diff.attrs["mode"] == "token" and diff.attrs["first_divergence"] == 1
    text = " ".join(diff_headlines(diff, "A", "B"))
    assert "First divergence at token 1" in text
    assert "p=60.0%" in text and "p=30.0%" in text
    # The tokens sit in code spans: shown verbatim (no backslashes), never as markup.
    assert "`␣<b>`" in text and "`␣*x*`" in text
    html = markdown_it.MarkdownIt("commonmark").render(text)
    assert "<code>␣&lt;b&gt;</code>" in html and "<code>␣*x*</code>" in html
    assert "<b>" not in html and "<em>" not in html and "\\" not in html
    same = token_diff(a, a)
    assert "identical" in " ".join(diff_headlines(same, "A", "A"))
    # A token holding backticks gets a longer fence; a tiny probability does not show as 0.0%.
    c = run_of("Hi `x`", probs=[("Hi", 0.8), (" `x`", 1e-6)])
    assert "A has `` ␣`x` `` (p<0.1%)" in " ".join(diff_headlines(token_diff(c, a), "A", "B"))


def test_token_diff_switches_to_bytes_for_different_tokenizers():
    a = run_of("Hello world, friends all", model="m/one",
               probs=[("Hel", .9), ("lo wor", .8), ("ld, frie", .7), ("nds al", .6), ("l", .9)])
    b = run_of("Hello world, friends all", model="m/two",
               probs=[("He", .9), ("llo w", .8), ("orld,", .7), (" fri", .6), ("ends all", .9)])
    diff = token_diff(a, b)
    assert diff.attrs["mode"] == "byte"
    assert "different tokenizers" in " ".join(diff_headlines(diff, "A", "B"))


def test_stats_line():
    assert stats_line(run_of("a", usage=(5, 3), ttft_s=0.12, total_s=1.5)) == \
        "5 + 3 = 8 tokens · first token 120 ms · total 1.50 s · 2.2 tok/s · stop"
    stopped = Run(request=ChatRequest(model="m", messages=MESSAGES), cancelled=True, partial=True, content_deltas=2,
                  choices=[ChoiceResult(text="ab")], total_s=0.5)
    assert stats_line(stopped) == "2 tokens (counted) · total 500 ms · 4.0 tok/s · cancelled"

"""Logprob tables, perplexity, entropy, and the token-aligned diff of two answers."""

from __future__ import annotations

import math
import random
from difflib import SequenceMatcher

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playground.analysis._fastdiff import FastSequenceMatcher, byte_opcodes, merge_equal, opcodes
from playground.analysis.logprobs import (
    DIFF_COLUMNS,
    TOKEN_COLUMNS,
    align,
    chosen_probability_series,
    diff_table,
    entropy_of,
    first_difference,
    first_divergence_bytes,
    perplexity,
    probability_chart_data,
    same_tokenizer,
    token_bytes,
    token_table,
    total_logprob,
)
from playground.client.schema import TokenLogprob, TopLogprob


def tok(text: str, p: float, alts: dict[str, float] | None = None, raw: bytes | None = None) -> TokenLogprob:
    """A token with probability p and alternatives {token: probability} (-9999 kept as is)."""
    lp = p if p <= -9999 else math.log(p)
    top = [TopLogprob(token=t, logprob=q if q <= -9999 else math.log(q)) for t, q in (alts or {}).items()]
    return TokenLogprob(token=text, logprob=lp, top_logprobs=top, bytes=list(raw) if raw is not None else None)


def seq(*texts: str, p: float = 0.5) -> list[TokenLogprob]:
    return [tok(t, p, {t: p, "~" + t: 0.25}) for t in texts]


# --- token_table ----------------------------------------------------------------------


def test_token_table_columns_and_values():
    tokens = [tok("Paris", 0.912, {"Paris": 0.912, " London": 0.031}), tok(".", 1.0, {".": 1.0})]
    table = token_table(tokens)
    assert list(table.columns) == TOKEN_COLUMNS
    assert table["position"].tolist() == [0, 1]
    assert table["token"].tolist() == ["Paris", "."]
    assert table["probability"].tolist() == pytest.approx([0.912, 1.0])
    assert table["logprob"].tolist() == pytest.approx([math.log(0.912), 0.0])
    assert table["alternatives"][0] == "Paris 91.2% | \u2423London 3.1%"
    assert table["alternatives"][1] == ". 100.0%"
    p = np.array([0.912, 0.031]) / 0.943
    assert table["entropy"][0] == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert table["entropy"][1] == pytest.approx(0.0)


def test_token_table_sentinel_is_outside_top_20_not_a_crash():
    tokens = [
        tok("rare", -9999.0, {"common": 0.6, "usual": 0.3}),
        tok("x", 0.5, {"x": 0.5, "pad": -9999.0, "y": 0.5}),
        TokenLogprob(token="inf", logprob=float("-inf")),
    ]
    table = token_table(tokens)
    assert table["probability"].tolist() == [0.0, 0.5, 0.0]
    assert math.isnan(table["logprob"][0]) and math.isnan(table["logprob"][2])
    assert "pad" not in table["alternatives"][1]
    assert table["entropy"][1] == pytest.approx(1.0)  # two equal alternatives: one bit
    p = np.array([0.6, 0.3]) / 0.9
    assert table["entropy"][0] == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert perplexity(tokens) == pytest.approx(2.0)  # only the known token counts


def test_entropy_same_whether_or_not_sampled_token_is_listed():
    # The sampled token (p=0.2) is outside the server's top 2: one server lists it, one does not.
    listed = tok("c", 0.2, {"a": 0.5, "b": 0.3, "c": 0.2})
    unlisted = tok("c", 0.2, {"a": 0.5, "b": 0.3})
    e1, e2 = token_table([listed])["entropy"][0], token_table([unlisted])["entropy"][0]
    assert e1 == pytest.approx(e2)
    assert e1 == pytest.approx(entropy_of(listed.top_logprobs))
    assert "c 20.0%" not in token_table([unlisted])["alternatives"][0]  # not invented in the string


def test_token_table_without_alternatives_and_empty():
    table = token_table([TokenLogprob(token="hi", logprob=-0.1)])
    assert table["alternatives"][0] == "" and math.isnan(table["entropy"][0])
    empty = token_table([])
    assert list(empty.columns) == TOKEN_COLUMNS and len(empty) == 0


def test_token_table_shows_whitespace_in_alternatives():
    table = token_table([tok("\n", 0.5, {"\n": 0.5, "\t": 0.25, "a b": 0.25})])
    assert table["alternatives"][0] == "\\n 50.0% | \\t 25.0% | a\u2423b 25.0%"
    assert table["token"][0] == "\n"  # the token column keeps the exact text


def test_entropy_of():
    assert entropy_of([math.log(0.25)] * 4) == pytest.approx(2.0)
    assert entropy_of([TopLogprob(token="a", logprob=0.0)]) == pytest.approx(0.0)
    assert entropy_of([]) is None and entropy_of([-9999.0]) is None
    # Renormalised: the scale of the logprobs does not matter.
    assert entropy_of([math.log(0.1), math.log(0.1)]) == pytest.approx(1.0)


def test_perplexity_and_total():
    tokens = [tok("a", 0.5), tok("b", 0.25)]
    assert perplexity(tokens) == pytest.approx(math.exp(-(math.log(0.5) + math.log(0.25)) / 2))
    assert total_logprob(tokens) == pytest.approx(math.log(0.125))
    assert perplexity([]) is None and perplexity([tok("z", -9999.0)]) is None


def test_chosen_probability_series_and_chart_data():
    series = chosen_probability_series([tok("a", 0.5), tok("b", -9999.0), tok("c", 1.0)])
    assert series.tolist() == pytest.approx([0.5, 0.0, 1.0])
    assert series.index.name == "position"
    wide = probability_chart_data({"run A": seq("x", "y"), "run B": seq("x", "y", "z")})
    assert list(wide.columns) == ["run A", "run B"] and len(wide) == 3
    assert math.isnan(wide["run A"][2])


# --- alignment ------------------------------------------------------------------------


def tokens(logprobs):
    return [t.token for t in logprobs]


def ops_of(a, b):
    return [(r.op, r.i, r.j) for r in align(a, b).rows]


def test_align_equal():
    a = seq("The", " cat", " sat")
    assert ops_of(a, seq("The", " cat", " sat")) == [("equal", 0, 0), ("equal", 1, 1), ("equal", 2, 2)]
    assert first_difference(tokens(a), tokens(seq("The", " cat", " sat"))) is None
    assert align(a, seq("The", " cat", " sat")).similarity == 1.0


def test_align_one_substitution():
    a, b = seq("The", " cat", " sat", "."), seq("The", " dog", " sat", ".")
    assert ops_of(a, b) == [("equal", 0, 0), ("replace", 1, 1), ("equal", 2, 2), ("equal", 3, 3)]
    assert first_difference(tokens(a), tokens(b)) == 1


def test_align_insertion_and_deletion():
    a, b = seq("The", " cat", " sat"), seq("The", " fat", " cat", " sat")
    assert ops_of(a, b) == [("equal", 0, 0), ("insert", None, 1), ("equal", 1, 2), ("equal", 2, 3)]
    assert ops_of(b, a) == [("equal", 0, 0), ("delete", 1, None), ("equal", 2, 1), ("equal", 3, 2)]
    assert first_difference(tokens(a), tokens(b)) == 1


def test_align_different_lengths():
    a, b = seq("a", "b"), seq("a", "b", "c", "d")
    assert ops_of(a, b) == [("equal", 0, 0), ("equal", 1, 1), ("insert", None, 2), ("insert", None, 3)]
    assert first_difference(tokens(a), tokens(b)) == 2 and first_difference(tokens(b), tokens(a)) == 2
    # An unequal replace block pairs what it can, then inserts.
    rows = ops_of(seq("a", "x", "b"), seq("a", "y", "z", "w", "b"))
    assert rows == [("equal", 0, 0), ("replace", 1, 1), ("insert", None, 2), ("insert", None, 3), ("equal", 2, 4)]


def test_align_empty():
    assert ops_of([], []) == []
    assert ops_of([], seq("a")) == [("insert", None, 0)]
    assert ops_of(seq("a"), []) == [("delete", 0, None)]
    assert first_difference(tokens([]), tokens([])) is None and first_difference(tokens([]), tokens(seq("a"))) == 0
    assert align([], []).similarity == 1.0


def test_align_keeps_the_common_start_aligned():
    # Plain difflib would match the later "x y z" block and misplace the shared start.
    a, b = seq("x", "y", "x", "y", "z"), seq("x", "y", "z")
    assert ops_of(a, b)[:2] == [("equal", 0, 0), ("equal", 1, 1)]


# --- diff_table -----------------------------------------------------------------------


def test_diff_table_values():
    a = [tok("The", 0.9, {"The": 0.9, "A": 0.1}), tok(" cat", 0.5, {" cat": 0.5, " dog": 0.4, " cow": 0.1})]
    b = [tok("The", 0.8, {"The": 0.8, "A": 0.2}), tok(" dog", 0.6, {" dog": 0.6, " cat": 0.3, " pig": 0.1})]
    table = diff_table(a, b)
    assert list(table.columns) == DIFF_COLUMNS
    assert table["op"].tolist() == ["equal", "replace"]
    assert table["token_a"].tolist() == ["The", " cat"] and table["token_b"].tolist() == ["The", " dog"]
    assert table["delta"].tolist() == pytest.approx([math.log(0.8) - math.log(0.9), math.log(0.6) - math.log(0.5)])
    assert table["topk_overlap"].tolist() == pytest.approx([1.0, 2 / 4])
    assert table.attrs["mode"] == "token" and table.attrs["first_divergence"] == 1


def test_diff_table_insert_has_missing_side():
    table = diff_table(seq("a", "c"), seq("a", "b", "c"))
    row = table.iloc[1]
    assert row["op"] == "insert" and pd.isna(row["pos_a"]) and row["pos_b"] == 1
    assert row["token_a"] is None and math.isnan(row["logprob_a"]) and math.isnan(row["delta"])
    assert str(table["pos_a"].dtype) == "Int64"


def test_diff_table_empty_and_identical():
    empty = diff_table([], [])
    assert list(empty.columns) == DIFF_COLUMNS and len(empty) == 0
    assert empty.attrs["first_divergence"] is None
    same = diff_table(seq("a", "b"), seq("a", "b"))
    assert set(same["op"]) == {"equal"} and same["delta"].tolist() == [0.0, 0.0]


def test_diff_table_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        diff_table([], [], mode="chars")


ALT_NAMES = st.lists(st.sampled_from("abcde"), max_size=6)


def with_alternatives(names: list[str]) -> TokenLogprob:
    return TokenLogprob(token="t", logprob=-1.0, top_logprobs=[TopLogprob(token=n, logprob=-1.0) for n in names])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ALT_NAMES, ALT_NAMES), max_size=8))
def test_topk_overlap_is_the_jaccard_of_the_alternative_sets(rows):
    # Repeated, missing and shared alternatives: the overlap is that of Python sets.
    a = [with_alternatives(x) for x, _ in rows]
    b = [with_alternatives(y) for _, y in rows]
    overlap = diff_table(a, b, mode="token")["topk_overlap"].tolist()
    for value, (x, y) in zip(overlap, rows):
        if set(x) | set(y):
            assert value == len(set(x) & set(y)) / len(set(x) | set(y))
        else:
            assert math.isnan(value)


def test_tables_follow_a_list_that_changes():
    # Tables remember what they read per token list: a list that grows or is edited is read again.
    tokens = seq("a", "b")
    assert token_table(tokens)["token"].tolist() == ["a", "b"]
    tokens.append(tok("c", 0.5, {"c": 0.5}))
    assert token_table(tokens)["token"].tolist() == ["a", "b", "c"]
    tokens[0] = tok("z", 0.25, {"z": 0.25, "y": 0.75})
    table = token_table(tokens)
    assert table["token"].tolist() == ["z", "b", "c"] and table["alternatives"][0] == "z 25.0% | y 75.0%"
    assert diff_table(tokens, seq("z", "b", "c"))["token_a"].tolist() == ["z", "b", "c"]


def test_tables_of_plain_objects_without_weak_references():
    class Alt:
        __slots__ = ("token", "logprob", "bytes")

        def __init__(self, token, logprob):
            self.token, self.logprob, self.bytes = token, logprob, None

    class Tok(Alt):
        __slots__ = ("top_logprobs",)

        def __init__(self, token, logprob, alts):
            super().__init__(token, logprob)
            self.top_logprobs = alts

    half = math.log(0.5)
    tokens = [Tok("a", 0.0, [Alt("a", 0.0)]), Tok("b", half, [Alt("b", half), Alt("c", half)])]
    table = token_table(tokens)
    assert table["alternatives"].tolist() == ["a 100.0%", "b 50.0% | c 50.0%"]
    assert diff_table(tokens, tokens)["topk_overlap"].tolist() == [1.0, 1.0]


def test_alternatives_strings_around_empty_rows():
    tokens = [TokenLogprob(token="x", logprob=-0.1), tok("a", 0.5, {"a\nb": 0.5, "\x00": 0.5}),
              TokenLogprob(token="y", logprob=-0.1), TokenLogprob(token="z", logprob=-0.1), tok("c", 1.0, {"c": 1.0}),
              TokenLogprob(token="w", logprob=-0.1)]
    assert token_table(tokens)["alternatives"].tolist() == ["", "a\\nb 50.0% | \x00 50.0%", "", "", "c 100.0%", ""]


# --- tokenizers and bytes -------------------------------------------------------------


def test_token_bytes_prefers_server_bytes():
    assert token_bytes(tok("\ufffd", 0.5, raw=b"\xe2\x82")) == b"\xe2\x82"
    assert token_bytes(tok("\u00e9", 0.5)) == "\u00e9".encode()


def test_same_tokenizer_heuristic():
    text_a = ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog"]
    text_b = ["Th", "e qu", "ick b", "rown", " f", "ox j", "umps", " ov", "er the", " la", "zy dog"]
    a, b = seq(*text_a), seq(*text_b)
    assert "".join(text_a) == "".join(text_b)
    assert same_tokenizer(a, seq(*text_a)) is True
    assert same_tokenizer(a, b) is False
    assert same_tokenizer(a, b, model_a="m", model_b="m") is True
    assert same_tokenizer([], b) is True


def test_diff_table_compares_per_byte_when_tokenizers_differ():
    a = seq("The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog")
    b = seq("Th", "e qu", "ick b", "rown", " f", "ox j", "umps", " ov", "er the", " la", "zy cat")
    table = diff_table(a, b)
    assert table.attrs["mode"] == "byte" and table.attrs["same_tokenizer"] is False
    assert "".join(table["token_a"].dropna()) == "The quick brown fox jumps over the lazy dog"
    assert "".join(table["token_b"].dropna()) == "The quick brown fox jumps over the lazy cat"
    assert table.attrs["first_divergence"] == len("The quick brown fox jumps over the lazy ")
    changed = table[table["op"] != "equal"]
    assert changed["token_a"].tolist() == ["dog"] and changed["token_b"].tolist() == ["cat"]
    # Each piece points at the token it came from on both sides.
    first = table.iloc[0]
    assert (first["token_a"], first["pos_a"], first["pos_b"]) == ("Th", 0, 0)
    second = table.iloc[1]
    assert (second["token_a"], second["pos_a"], second["pos_b"]) == ("e", 0, 1)
    # The token diff of the same pair finds almost nothing equal: the reason for byte mode.
    assert (diff_table(a, b, mode="token")["op"] == "equal").sum() == 0


def test_first_divergence_bytes():
    assert first_divergence_bytes(seq("ab", "c"), seq("a", "bc")) is None
    assert first_divergence_bytes(seq("ab", "c"), seq("a", "bd")) == 2
    assert first_divergence_bytes(seq("ab"), seq("a", "b", "x")) == 2


def test_byte_opcodes_cover_both_texts():
    rng = random.Random(3)
    words = [b" the", b" cat", b",", b" sat", b"\n", b" on", b" mat"]
    for _ in range(50):
        x = b"".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        y = b"".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        codes = byte_opcodes(x, y)
        assert b"".join(x[i1:i2] for _, i1, i2, _, _ in codes) == x
        assert b"".join(y[j1:j2] for _, _, _, j1, j2 in codes) == y
        assert all(x[i1:i2] == y[j1:j2] for tag, i1, i2, j1, j2 in codes if tag == "equal")


# --- the fast matcher is difflib ------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.integers(0, 6), max_size=60),
    st.lists(st.integers(0, 6), max_size=60),
    st.data(),
)
def test_fast_matcher_gives_difflibs_answer(a, b, data):
    if data.draw(st.booleans()):  # often: b is a edited, the usual shape of two samples
        cut = data.draw(st.integers(0, len(a)))
        b = a[:cut] + b[:5] + a[cut:]
    slow = SequenceMatcher(None, a, b, autojunk=False)
    fast = FastSequenceMatcher(None, a, b, autojunk=False)
    assert fast.get_matching_blocks() == slow.get_matching_blocks()
    assert fast.get_opcodes() == slow.get_opcodes()
    alo = data.draw(st.integers(0, len(a)))
    ahi = data.draw(st.integers(alo, len(a)))
    blo = data.draw(st.integers(0, len(b)))
    bhi = data.draw(st.integers(blo, len(b)))
    assert fast.find_longest_match(alo, ahi, blo, bhi) == slow.find_longest_match(alo, ahi, blo, bhi)


def test_opcodes_on_long_text_match_difflib_after_the_common_start():
    rng = random.Random(11)
    vocab = [f" w{k}" for k in range(300)] + [" the", ",", "."] * 30
    a = [rng.choice(vocab) for _ in range(1500)]
    b = a[:200] + [rng.choice(vocab) for _ in range(1300)]
    codes = opcodes(a, b)
    assert codes[0] == ("equal", 0, 200, 0, 200)
    slow = SequenceMatcher(None, a[200:], b[200:], autojunk=False).get_opcodes()
    shifted = [(t, i1 + 200, i2 + 200, j1 + 200, j2 + 200) for t, i1, i2, j1, j2 in slow]
    assert codes == merge_equal([("equal", 0, 200, 0, 200), *shifted])


def test_fast_matcher_reused_with_new_sequences():
    fast = FastSequenceMatcher(None, "abcabc", "abc", autojunk=False)
    slow = SequenceMatcher(None, "abcabc", "abc", autojunk=False)
    assert fast.get_opcodes() == slow.get_opcodes()
    for seq1, seq2 in (("abcabc", "cab"), ("zcabz", "cab"), ("zcabz", "zzcab")):
        fast.set_seqs(seq1, seq2)
        slow.set_seqs(seq1, seq2)
        assert fast.get_opcodes() == slow.get_opcodes()

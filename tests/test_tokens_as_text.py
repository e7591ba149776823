"""Tokens read as text (issue 22): a character split across byte tokens is shown joined, with its
bytes at hand; the token diff's tables and its side-by-side text view; the inspector's facts
about sampling (sampled_logprob, drawn from the tail)."""

from __future__ import annotations

import math

from playground.analysis import compare_tables
from playground.analysis import logprobs as lp
from playground.client.run import ChoiceResult, Run
from playground.client.schema import ChatRequest, TokenLogprob, TopLogprob

HINA = "雛".encode()  # e9 9b 9b: one character, three bytes
SAKURA = "桜".encode()  # e6 a1 9c


def tok(text: str, logprob: float = -0.1, raw: bytes | None = None, alts: dict[str, float] = (),
        **extra) -> TokenLogprob:
    return TokenLogprob(token=text, logprob=logprob, bytes=list(raw) if raw is not None else None,
                        top_logprobs=[TopLogprob(token=t, logprob=v) for t, v in dict(alts).items()], **extra)


# OpenAI's and the sandbox's way: the text of a partial token is its bytes as \xNN escapes
SPLIT = [tok("Hi "), tok(r"\xe9\x9b", -1.0, HINA[:2]), tok(r"\x9b", -0.5, HINA[2:]), tok("!")]


def test_pieces_join_the_tokens_of_one_character():
    assert lp.pieces(SPLIT) == [lp.Piece(0, 1, "Hi "), lp.Piece(1, 3, "雛"), lp.Piece(3, 4, "!")]
    # three tokens of one byte each; two characters in a row; a character and text in one token
    three = [tok("x", raw=HINA[:1]), tok("y", raw=HINA[1:2]), tok("z", raw=HINA[2:])]
    assert lp.pieces(three) == [lp.Piece(0, 3, "雛")]
    row = [tok("a", raw=HINA[:2]), tok("b", raw=HINA[2:] + SAKURA[:1]), tok("c", raw=SAKURA[1:] + b" ok")]
    assert lp.pieces(row) == [lp.Piece(0, 3, "雛桜 ok")]


def test_bytes_that_never_make_a_character_show_as_replacement():
    broken = [tok("a", raw=HINA[:2]), tok("b", raw=b"x"), tok("c", raw=HINA[:1])]
    assert lp.pieces(broken) == [lp.Piece(0, 2, "\ufffdx"), lp.Piece(2, 3, "\ufffd")]
    assert "".join(p.text for p in lp.pieces([])) == ""


def test_each_token_alone_its_table_text_and_bytes():
    assert [lp.token_text(t) for t in SPLIT] == ["Hi ", r"\xe9\x9b", r"\x9b", "!"]
    assert lp.shown_tokens(SPLIT) == ["Hi ", "雛‹1/2›", "雛‹2/2›", "!"]
    assert lp.bytes_hex(SPLIT[1]) == "e9 9b" and lp.bytes_hex(tok("ok")) == "6f 6b"  # from the text without bytes


def diff_run(tokens: list[TokenLogprob], model: str = "m") -> Run:
    return Run(request=ChatRequest.from_wire({"model": model, "messages": [{"role": "user", "content": "Hi"}]}),
               choices=[ChoiceResult(index=0, text="".join(p.text for p in lp.pieces(tokens)), logprobs=tokens)])


def test_the_token_diff_shows_characters_not_byte_escapes():
    other = [tok("Hi "), tok(r"\xe6\xa1", -1.2, SAKURA[:2]), tok(r"\x9c", -0.4, SAKURA[2:]), tok("!")]
    frame = compare_tables.token_diff(diff_run(SPLIT), diff_run(other))
    assert frame.attrs["mode"] == "token"
    assert frame["token_a"].tolist() == ["Hi ", "雛‹1/2›", "雛‹2/2›", "!"]
    assert frame["token_b"].tolist() == ["Hi ", "桜‹1/2›", "桜‹2/2›", "!"]
    # byte mode (different tokenizers): cut only where characters end, so no half characters
    rows = lp.diff_table(SPLIT, [tok("Hi 雛!")], mode="byte")
    assert "\ufffd" not in "".join(rows["token_a"].tolist() + rows["token_b"].tolist())
    assert rows["token_a"].tolist() == ["Hi ", "雛", "!"]


def test_text_diff_aligns_the_answers_side_by_side():
    a = [tok("The"), tok(" cat"), tok(" sat"), tok(" on"), tok(" the"), tok(" mat")]
    b = [tok("The"), tok(" dog"), tok(" sat"), tok(" on"), tok(" a"), tok(" big"), tok(" mat")]
    segments = compare_tables.text_diff(a, b)
    assert [(s.op, s.a, s.b) for s in segments] == [
        ("equal", "The", "The"), ("replace", " cat", " dog"), ("equal", " sat on", " sat on"),
        ("replace", " the", " a big"), ("equal", " mat", " mat")]
    # from a branch point on: the text before it is left out
    assert [(s.op, s.a, s.b) for s in compare_tables.text_diff(a, b, start=2)][:1] == [("equal", " sat on", " sat on")]
    # split characters are aligned as characters
    other = [tok("Hi "), tok("x", raw=SAKURA[:1]), tok("y", raw=SAKURA[1:]), tok("!")]
    assert [(s.op, s.a, s.b) for s in compare_tables.text_diff(SPLIT, other)] == [
        ("equal", "Hi ", "Hi "), ("replace", "雛", "桜"), ("equal", "!", "!")]


def test_sampled_logprob_and_drawn_from_the_tail():
    assert lp.sampled_logprob(tok("a", sampled_logprob=-0.25)) == -0.25
    assert lp.sampled_logprob(tok("a")) is None
    greedy = tok(" yes", math.log(0.8), alts={" yes": math.log(0.8), " no": math.log(0.15)})
    assert lp.tail_reason(greedy) is None  # the most likely token
    second = tok(" no", math.log(0.15), alts={" yes": math.log(0.8), " no": math.log(0.15)})
    assert lp.tail_reason(second) is None  # not greedy's, but top_p 0.9 keeps it (80% above it)
    assert lp.tail_reason(second, top_p=0.5) is not None  # top_p 0.5 would not have
    tail = tok(" maybe", math.log(0.02), alts={" yes": math.log(0.8), " no": math.log(0.15)})
    reason = lp.tail_reason(tail)
    assert reason is not None and "' yes'" in reason and "95%" in reason

"""How a choice's token bytes become text deltas: stop sequences held back, UTF-8 split
across tokens, logprob entries sent with the text they complete; and the top-k pick behind
top_logprobs. No model needed."""

from __future__ import annotations

from playground.sandbox.textstream import ChoiceText


def feed(stops, pieces):
    text = ChoiceText(stops)
    deltas = []
    for i, piece in enumerate(pieces):
        deltas.append(text.add(piece, f"t{i}"))
        if deltas[-1].stopped:
            break
    else:
        deltas.append(text.finish())
    return text, deltas


def test_without_stops_every_token_goes_out_at_once():
    text, deltas = feed([], [b"Hel", b"lo", b"!"])
    assert [d.text for d in deltas] == ["Hel", "lo", "!", ""]
    assert [d.logprobs for d in deltas] == [["t0"], ["t1"], ["t2"], []]


def test_a_possible_stop_is_held_back_then_cut():
    text, deltas = feed(["END"], [b"Hello E", b"N", b"D more"])
    assert [d.text for d in deltas] == ["Hello ", "", ""]
    assert deltas[-1].stopped
    assert text.final_text == "Hello "
    # the token that began the stop sequence still brought text out before it: its entry goes too
    assert [entry for d in deltas for entry in d.logprobs] == ["t0"]


def test_a_false_alarm_is_released():
    text, deltas = feed(["ab"], [b"xa", b"c", b"d"])
    assert [d.text for d in deltas] == ["x", "ac", "d", ""]
    assert [d.logprobs for d in deltas] == [[], ["t0", "t1"], ["t2"], []]
    assert not any(d.stopped for d in deltas)


def test_held_text_comes_out_when_the_choice_ends():
    text, deltas = feed(["world"], [b"hello wor"])
    assert [d.text for d in deltas] == ["hello ", "wor"]
    assert text.final_text == "hello wor"


def test_stop_inside_one_token_and_several_stops():
    text, deltas = feed(["zz", "\n\n"], [b"one\n\ntwo zz"])
    assert text.final_text == "one" and deltas[0].stopped


def test_utf8_split_across_tokens():
    word = "café ☕".encode()
    text, deltas = feed([], [word[:4], word[4:6], word[6:8], word[8:]])
    assert "".join(d.text for d in deltas) == "café ☕"
    assert deltas[0].text == "caf"  # the half of é waits for its other byte
    assert "\ufffd" not in text.final_text


def test_invalid_bytes_become_replacement_characters_at_the_end():
    text, deltas = feed([], [b"ok", b"\xe2\x98"])
    assert text.final_text == "ok\ufffd"


def test_top_k_is_exact_most_likely_first_ties_by_token_id():
    import numpy as np

    from playground.sandbox.model import top_k_ids

    rng = np.random.default_rng(7)
    for trial in range(60):
        logits = (rng.standard_normal(49152) * rng.uniform(0.1, 10)).astype(np.float32)
        if trial % 2:
            logits[rng.integers(0, 49152, 25)] = np.sort(logits)[-6]  # ties around the cut
        k = int(rng.integers(1, 21))
        expected = np.lexsort((np.arange(len(logits)), -logits))[:k]
        assert top_k_ids(logits, float(logits.max()), k).tolist() == expected.tolist()

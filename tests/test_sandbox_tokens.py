"""Issue 24's sandbox side: continuing a final assistant message (vLLM's continue_final_message),
prompt_logprobs in vLLM's shape, plain and streamed, and sampled_logprob beside each token's logprob."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from playground.client.endpoint import LOCAL_MODEL

pytestmark = pytest.mark.sandbox

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
NO_END = {"2": -100}  # ban <|im_end|>: the reply runs to max_tokens
CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}


def chat(sandbox, **fields) -> dict:
    body = {"model": LOCAL_MODEL, "messages": HELLO, "max_tokens": 8, "temperature": 0, **fields}
    response = httpx.post(f"{sandbox.base_url}/v1/chat/completions", json=body, timeout=300)
    assert response.status_code == 200, response.text
    return response.json()


def refused(sandbox, **fields) -> str:
    body = {"model": LOCAL_MODEL, "messages": HELLO, "max_tokens": 2, **fields}
    response = httpx.post(f"{sandbox.base_url}/v4/beta/chat/completions", json=body, timeout=300)
    assert response.status_code == 400, response.text
    return response.json()["detail"]


def tokens(reply: dict) -> list[dict]:
    return reply["choices"][0]["logprobs"]["content"]


def test_a_branch_continues_from_the_chosen_token(sandbox):
    original = chat(sandbox, max_tokens=12, logprobs=True, top_logprobs=3, logit_bias=NO_END)
    entries = tokens(original)
    at = 4  # branch at the fifth token, with its second most likely alternative
    alternative = entries[at]["top_logprobs"][1]["token"]
    assert alternative != entries[at]["token"]
    before = "".join(e["token"] for e in entries[:at])
    branch = before + alternative
    reply = chat(sandbox, messages=[*HELLO, {"role": "assistant", "content": branch}], max_tokens=6,
                 logprobs=True, logit_bias=NO_END, **CONTINUE)
    continuation = reply["choices"][0]["message"]["content"]
    assert continuation and not continuation.startswith(branch)  # only what follows the branch comes back
    assert "".join(e["token"] for e in tokens(reply)) == continuation  # its logprobs start at the branch
    assert len(tokens(reply)) == reply["usage"]["completion_tokens"] == 6

    # continuing the original answer's own first tokens gives the rest of it, as greedy decoding did
    same = chat(sandbox, messages=[*HELLO, {"role": "assistant", "content": before}], max_tokens=12 - at,
                logit_bias=NO_END, **CONTINUE)
    assert before + same["choices"][0]["message"]["content"] == original["choices"][0]["message"]["content"]


def test_continuing_needs_vllms_pair_of_fields_and_an_assistant_message(sandbox):
    branch = [*HELLO, {"role": "assistant", "content": "Hello"}]
    assert refused(sandbox, messages=branch, continue_final_message=True).startswith("add_generation_prompt:")
    assert refused(sandbox, **CONTINUE).startswith(
        "continue_final_message: the last message must be an assistant message")
    # add_generation_prompt false alone: the prompt ends after the last message, as vLLM renders it
    assert chat(sandbox, add_generation_prompt=False, max_tokens=2)["usage"]["completion_tokens"] <= 2


def test_prompt_logprobs_have_vllms_shape(sandbox):
    reply = chat(sandbox, prompt_logprobs=5, max_tokens=2)
    entries = reply["prompt_logprobs"]
    assert len(entries) == reply["usage"]["prompt_tokens"]
    assert entries[0] is None
    for entry in entries[1:]:
        assert 5 <= len(entry) <= 6  # the k most likely, and the prompt's own token when it is not among them
        ranks = sorted(item["rank"] for item in entry.values())
        assert ranks[:5] == [1, 2, 3, 4, 5]
        for token_id, item in entry.items():
            assert int(token_id) >= 0 and item["logprob"] <= 0 and isinstance(item["decoded_token"], str)
        by_rank = sorted(entry.values(), key=lambda item: item["rank"])
        assert [i["logprob"] for i in by_rank[:5]] == sorted((i["logprob"] for i in by_rank[:5]), reverse=True)

    alone = chat(sandbox, prompt_logprobs=0, max_tokens=2)["prompt_logprobs"]
    assert all(len(entry) == 1 for entry in alone[1:])  # k=0: the prompt's own token only
    text = "".join(next(iter(entry.values()))["decoded_token"] for entry in alone[1:])
    assert HELLO[0]["content"] in text
    for own, more in zip(alone[1:], entries[1:]):  # the prompt token's figures do not depend on k
        ((token_id, item),) = own.items()
        assert more[token_id]["logprob"] == pytest.approx(item["logprob"], abs=1e-5)
        assert more[token_id]["rank"] == item["rank"]


def test_prompt_logprobs_of_an_answer_match_its_logprobs_when_generated(sandbox):
    answer = chat(sandbox, max_tokens=10, logprobs=True, logit_bias=NO_END)
    text = answer["choices"][0]["message"]["content"]
    again = chat(sandbox, messages=[*HELLO, {"role": "assistant", "content": text}], prompt_logprobs=0,
                 max_tokens=1, **CONTINUE)
    tail = [next(iter(entry.values())) for entry in again["prompt_logprobs"][-len(tokens(answer)):]]
    assert [item["decoded_token"] for item in tail] == [e["token"] for e in tokens(answer)]
    for item, entry in zip(tail, tokens(answer)):
        assert item["logprob"] == pytest.approx(entry["logprob"], abs=0.05)  # one step vs a chunk of prompt
        assert item["rank"] == 1  # greedy: each was the most likely


def test_the_stream_s_last_chunk_carries_prompt_logprobs(sandbox):
    plain = chat(sandbox, prompt_logprobs=2, max_tokens=3)
    body = {"model": LOCAL_MODEL, "messages": HELLO, "max_tokens": 3, "temperature": 0, "prompt_logprobs": 2,
            "stream": True}
    with httpx.stream("POST", f"{sandbox.base_url}/v4/beta/chat/completions", json=body, timeout=300) as response:
        chunks = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    assert [c for c in chunks if "prompt_logprobs" in c] == [chunks[-1]]
    assert chunks[-1]["choices"] == [] and "usage" not in chunks[-1]
    streamed = chunks[-1]["prompt_logprobs"]
    assert len(streamed) == len(plain["prompt_logprobs"])
    for a, b in zip(streamed[1:], plain["prompt_logprobs"][1:]):
        assert a.keys() == b.keys()
        assert all(a[k]["logprob"] == pytest.approx(b[k]["logprob"], abs=1e-5) for k in a)


def test_sampled_logprob_is_the_models_at_temperature_one_and_zero_when_greedy(sandbox):
    free = chat(sandbox, temperature=1.0, seed=7, max_tokens=12, logprobs=True)
    for entry in tokens(free):
        assert entry["sampled_logprob"] == pytest.approx(entry["logprob"], abs=1e-4)
    greedy = chat(sandbox, temperature=0, max_tokens=12, logprobs=True)
    assert all(entry["sampled_logprob"] == 0 for entry in tokens(greedy))
    cut = chat(sandbox, temperature=0.7, top_k=3, seed=7, max_tokens=12, logprobs=True, top_logprobs=3)
    for entry in tokens(cut):  # drawn from the 3 most likely
        assert entry["token"] in [alt["token"] for alt in entry["top_logprobs"]]
        assert entry["sampled_logprob"] <= 0
    assert any(abs(math.exp(e["sampled_logprob"]) - math.exp(e["logprob"])) > 0.01 for e in tokens(cut))

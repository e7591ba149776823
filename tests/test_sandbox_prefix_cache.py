"""The sandbox's prefix cache (issue 27): a prompt is read only after the longest prefix whose
cells some slot already holds, and nothing it answers changes for that.

In-process against two small Engines over the real model, one with reuse and one without (the
same requests, token for token), and over HTTP against the session sandbox for usage, /healthz,
the official openai SDK and the app's own usage strip."""

from __future__ import annotations

import threading
import uuid

import httpx
import openai
import pytest

from playground.client.client import ChatClient
from playground.client.endpoint import LOCAL_MODEL
from playground.client.schema import ChatRequest
from tests.support import health

pytestmark = pytest.mark.sandbox

NO_END = {2: -100.0}  # ban <|im_end|>: the reply runs to max_tokens (or the context's end)
SYSTEM = "Classify the sentiment of each review. Reply with exactly one word: good or bad."
SHOTS = [("Great battery, fast shipping. Love it.", "good"), ("Broke after two days. Waste of money.", "bad"),
         ("Terrible service, I will never come back.", "bad"),
         ("The staff were kind and the room was spotless.", "good")]
REVIEWS = ["Awful. It broke on the first day.", "Absolutely love this blender.", "The box arrived crushed.",
           "Friendly staff and a great breakfast."]


def few_shot(review: str, system: str = SYSTEM) -> list[dict]:
    messages = [{"role": "system", "content": system}]
    for text, label in SHOTS:
        messages += [{"role": "user", "content": f"Review: {text}"}, {"role": "assistant", "content": label}]
    return messages + [{"role": "user", "content": f"Review: {review}"}]


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


# --- in-process: with and without reuse --------------------------------------------------


@pytest.fixture(scope="module")
def engines():
    """(warm, cold): the same model and sizes, the prefix cache on and off."""
    from playground.sandbox.model import Engine

    warm = Engine(n_ctx=512, n_threads=1, parallel=2)
    cold = Engine(n_ctx=512, n_threads=1, parallel=2, prefix_cache=False)
    yield warm, cold
    warm.scheduler.close()
    cold.scheduler.close()


def generate(engine, messages: list[dict], **fields) -> dict:
    """One job; each choice's text and logprob entries (token, logprob, top alternatives)."""
    from playground.sandbox.model import Job
    from playground.sandbox.sampling import SamplingParams

    sampling = SamplingParams(**fields.pop("sampling", {"temperature": 0}))
    n = fields.get("n", 1)
    texts = [""] * n
    entries: list[list] = [[] for _ in range(n)]

    def on_piece(piece) -> None:
        texts[piece.index] += piece.text
        for entry in piece.logprobs or []:
            top = [(alt.token, alt.logprob) for alt in entry.top_logprobs]
            entries[piece.index].append((entry.token, entry.logprob, top))

    job = Job(prompt_tokens=engine.prompt_tokens(messages), sampling=sampling, logprobs=True, top_logprobs=3, **fields)
    outcome = engine.generate(job, on_piece)
    return {"outcome": outcome, "texts": texts, "entries": entries, "prompt": job.prompt_tokens}


def test_reuse_changes_no_token_and_no_logprob(engines):
    """Greedy and seeded runs over prompts that share most of their tokens (and the very same
    prompt again), with and without reuse: the same tokens, the same logprobs, bit for bit."""
    warm, cold = engines
    cases = [(REVIEWS[0], {"temperature": 0}, None), (REVIEWS[1], {"temperature": 0}, None),
             (REVIEWS[1], {"temperature": 1.0}, 1234), (REVIEWS[0], {"temperature": 1.0, "top_p": 0.9}, 7),
             (REVIEWS[2], {"temperature": 0.8, "logit_bias": NO_END}, 99)]
    reused = []
    for review, sampling, seed in cases:
        hot = generate(warm, few_shot(review), max_tokens=6, seed=seed, sampling=sampling)
        fresh = generate(cold, few_shot(review), max_tokens=6, seed=seed, sampling=sampling)
        assert hot["texts"] == fresh["texts"] and hot["texts"][0]
        assert hot["entries"] == fresh["entries"], f"logprobs moved with reuse for {review!r} {sampling}"
        assert fresh["outcome"].cached_tokens == 0
        reused.append(hot["outcome"].cached_tokens)
    prompt = len(warm.prompt_tokens(few_shot(REVIEWS[1])))
    assert reused[2] == prompt - 2  # the same prompt again: all but its last two tokens (see prefix.py)
    assert all(count > 40 for count in reused[1:]), reused  # every later prompt reused the shared shots


def test_n_choices_in_two_waves_evaluate_the_prompt_once_and_match(engines):
    """n = 3 on two slots: the third choice runs after the first two, in a slot of its own, from a
    copy of the prompt's cells (only the last two prompt tokens are read again: see prefix.py)."""
    warm, cold = engines
    generate(warm, few_shot(REVIEWS[3]), max_tokens=1)  # the shots are in a slot
    messages = few_shot(f"Review number {uuid.uuid4().hex[:8]} is not great.")
    before = (warm.prompt_tokens_evaluated, warm.prompt_tokens_reused)
    hot = generate(warm, messages, max_tokens=5, n=3, seed=42, sampling={"temperature": 1.0, "logit_bias": NO_END})
    evaluated = warm.prompt_tokens_evaluated - before[0]
    reused = warm.prompt_tokens_reused - before[1]
    fresh = generate(cold, messages, max_tokens=5, n=3, seed=42, sampling={"temperature": 1.0, "logit_bias": NO_END})
    assert hot["texts"] == fresh["texts"] and hot["entries"] == fresh["entries"]
    prompt = len(hot["prompt"])
    cached = hot["outcome"].cached_tokens
    assert 0 < cached < prompt - 5  # the shots were there, the new review was not
    assert evaluated == prompt - cached + 2, (evaluated, prompt, cached)
    assert reused == cached + prompt - 2


def test_two_requests_at_once_share_their_new_prefix(engines):
    """Two requests whose long shared prefix no slot holds yet, submitted together: one reads it,
    the other copies its cells (waiting while they are read) and reads only its own end."""
    from playground.sandbox.jobs import Ticket
    from playground.sandbox.model import Job
    from playground.sandbox.sampling import SamplingParams

    warm, cold = engines
    system = f"{uuid.uuid4().hex} " + " ".join([SYSTEM] * 12)  # a new beginning, past one prompt step
    prompts = [warm.prompt_tokens(few_shot(review, system)) for review in REVIEWS[:2]]
    shared = common_prefix(*prompts)
    assert shared > 200
    before = (warm.prompt_tokens_evaluated, warm.prompt_tokens_reused)
    texts: list[list[str]] = [[], []]
    tickets = [Ticket(Job(prompt_tokens=prompt, max_tokens=4, sampling=SamplingParams(temperature=0)),
                      lambda piece, i=i: texts[i].append(piece.text), threading.Event(), seed=0)
               for i, prompt in enumerate(prompts)]
    for ticket in tickets:  # back to back: the second is admitted while the first still reads
        warm.scheduler.submit(ticket)
    for ticket in tickets:
        assert ticket.done.wait(120) and ticket.error is None
    cached = sorted(ticket.outcome.cached_tokens for ticket in tickets)
    assert cached[1] == shared and cached[0] < 16, cached
    evaluated = warm.prompt_tokens_evaluated - before[0]
    reused = warm.prompt_tokens_reused - before[1]
    assert evaluated + reused == sum(map(len, prompts))
    assert evaluated == sum(map(len, prompts)) - sum(cached)
    for prompt, text in zip(prompts, texts):
        alone: list[str] = []
        cold.generate(Job(prompt_tokens=prompt, max_tokens=4, sampling=SamplingParams(temperature=0)),
                      lambda piece: alone.append(piece.text))
        assert "".join(text) == "".join(alone)


def test_a_full_context_evicts_the_least_recently_used_prefix():
    """Two slots of 256 cells, each run to the end of its context; a third prompt takes the
    least recently used slot. Nothing fails, the recent prefix stays, the old one is gone."""
    from playground.sandbox.model import Engine

    engine = Engine(n_ctx=256, n_threads=1, parallel=2)
    try:
        scheduler = engine.scheduler
        first, second, third = (few_shot(review) for review in REVIEWS[:3])
        runs = [generate(engine, messages, max_tokens=None, sampling={"temperature": 0.7, "logit_bias": NO_END},
                         seed=5) for messages in (first, second, third)]
        for run in runs:  # each ran to the end of its context, none refused
            assert run["outcome"].completion_tokens == engine.n_ctx - len(run["prompt"])
        held = sorted(scheduler.cells(slot) for slot in range(scheduler.parallel))
        assert held == [engine.n_ctx - 1] * 2  # both slots full (the last token sampled is never decoded)
        again_second = generate(engine, second, max_tokens=2)
        assert again_second["outcome"].cached_tokens == len(runs[1]["prompt"]) - 2  # still cached
        again_first = generate(engine, first, max_tokens=2)
        # evicted by the third: only what the first shares with the prompts still held is reused
        expected = max(common_prefix(runs[0]["prompt"], runs[i]["prompt"]) for i in (1, 2))
        assert again_first["outcome"].cached_tokens == expected < len(runs[0]["prompt"]) - 2
        for slot in range(scheduler.parallel):
            assert scheduler.cells(slot) == len(scheduler.cached_tokens(slot)) <= engine.n_ctx
    finally:
        engine.scheduler.close()


# --- over HTTP: usage, /healthz, the openai SDK, the app ------------------------------------


def body(review: str, **fields) -> dict:
    return {"model": LOCAL_MODEL, "messages": few_shot(review), "max_tokens": 1, "temperature": 0, **fields}


def test_usage_and_healthz_count_the_reused_prompt_tokens(sandbox):
    url = sandbox.base_url + "/v4/beta/chat/completions"
    review = f"Order {uuid.uuid4().hex[:6]} came late but works."
    first = httpx.post(url, json=body(review), timeout=60).json()
    state = health(sandbox)
    assert state["prefix_cache"] is True
    again = httpx.post(url, json=body(review), timeout=60).json()
    after = health(sandbox)
    prompt = first["usage"]["prompt_tokens"]
    assert again["usage"]["prompt_tokens"] == prompt  # the whole prompt, as before
    assert again["usage"]["prompt_tokens_details"] == {"cached_tokens": prompt - 2}
    assert 0 <= first["usage"]["prompt_tokens_details"]["cached_tokens"] < prompt - 2
    assert after["prompt_tokens_evaluated"] - state["prompt_tokens_evaluated"] == 2
    assert after["prompt_tokens_reused"] - state["prompt_tokens_reused"] == prompt - 2
    assert again["choices"][0]["message"] == first["choices"][0]["message"]
    # A stream's usage chunk says the same.
    streamed = httpx.post(url, json=body(review, stream=True, stream_options={"include_usage": True}), timeout=60)
    usage = [line for line in streamed.text.splitlines() if '"usage"' in line]
    assert len(usage) == 1 and f'"prompt_tokens_details":{{"cached_tokens":{prompt - 2}}}' in usage[0]


def test_the_openai_sdk_reads_cached_tokens(sandbox):
    with openai.OpenAI(base_url=f"{sandbox.base_url}/v4/beta", api_key="unused", max_retries=0, timeout=60) as client:
        messages = few_shot(f"Item {uuid.uuid4().hex[:6]} is fine, I guess.")
        first = client.chat.completions.create(model=LOCAL_MODEL, messages=messages, max_tokens=1, temperature=0)
        again = client.chat.completions.create(model=LOCAL_MODEL, messages=messages, max_tokens=1, temperature=0)
    assert isinstance(first.usage.prompt_tokens_details.cached_tokens, int)
    assert again.usage.prompt_tokens_details.cached_tokens == again.usage.prompt_tokens - 2


def test_the_app_shows_cached_tokens_beside_prompt_tokens(sandbox):
    from playground.ui.common.run_view import run_stats

    request = ChatRequest.model_validate(body(f"Parcel {uuid.uuid4().hex[:6]} was fine.", stream=True,
                                              stream_options={"include_usage": True}))
    with ChatClient(sandbox.endpoint) as client:
        client.run(request)
        run = client.run(request)
    assert run.error is None and run.usage.cached_tokens == run.usage.prompt_tokens - 2
    labels = [label for label, _, _ in run_stats(run)]
    values = {label: value for label, value, _ in run_stats(run)}
    assert labels.index("Cached tokens") == labels.index("Prompt tokens") + 1
    assert values["Cached tokens"] == str(run.usage.prompt_tokens - 2)

"""Continuous batching in the sandbox: requests run side by side, each as if alone.

Over HTTP against the session sandbox (4 slots), and in-process against a small Engine where
a test must know the exact scheduler step a piece came out in."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from playground.client.endpoint import LOCAL_MODEL
from tests.support import health, wait_for

pytestmark = pytest.mark.sandbox

NO_END = {"2": -100}  # ban <|im_end|>: every reply runs to max_tokens
PROMPTS = ["Write a poem about the sea.", "Explain how a bicycle works.", "List some famous painters.",
           "Describe a busy market in the morning.", "Tell me a story about a lost key."]


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def client(sandbox):
    with openai.OpenAI(base_url=f"{sandbox.base_url}/v4/beta", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def timed_stream(client, start: threading.Barrier | None = None, **kwargs) -> dict:
    """Stream one request; when each content chunk arrived, its text and how it finished."""
    if start is not None:
        start.wait(30)
    result: dict = {"times": [], "text": "", "tokens": [], "logprobs": [], "finish": None}
    stream = client.chat.completions.create(model=LOCAL_MODEL, stream=True, **kwargs)
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                result["times"].append(time.perf_counter())
                result["text"] += choice.delta.content
            if choice.logprobs and choice.logprobs.content:
                result["tokens"] += [entry.token for entry in choice.logprobs.content]
                result["logprobs"] += [entry.logprob for entry in choice.logprobs.content]
            if choice.finish_reason:
                result["finish"] = choice.finish_reason
                result["finished"] = time.perf_counter()
    return result


def run_all(calls) -> list[dict]:
    results: list[dict | BaseException] = [None] * len(calls)

    def work(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as error:  # re-raised below, in the test's thread
            results[i] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for result in results:
        if isinstance(result, BaseException) or result is None:
            raise AssertionError(f"a concurrent request failed: {result!r}")
    return results


def test_four_streams_all_produce_tokens_before_any_finishes(sandbox, client):
    assert health(sandbox)["parallel"] == 4
    start = threading.Barrier(4)
    results = run_all([
        lambda i=i: timed_stream(client, start, messages=ask(PROMPTS[i]), max_tokens=12, temperature=0,
                                 logit_bias=NO_END)
        for i in range(4)
    ])
    assert all(r["finish"] == "length" and len(r["times"]) >= 8 for r in results), results
    last_first_token = max(r["times"][0] for r in results)
    first_finish = min(r["finished"] for r in results)
    assert last_first_token < first_finish, "a stream finished before another had its first token: not batched"
    # Interleaved, not merely overlapping: each stream got tokens in the middle of every other's.
    for r in results:
        for other in results:
            assert any(r["times"][0] < t < r["times"][-1] for t in other["times"])


SEEDED, BACKGROUND = 8, 12


def test_a_seeded_run_is_the_same_alone_and_in_a_batch(sandbox, client):
    seeded = dict(messages=ask(PROMPTS[4]), max_tokens=SEEDED, temperature=1.0, seed=1234, logprobs=True,
                  top_logprobs=2, logit_bias=NO_END)
    alone = timed_stream(client, **seeded)
    before = health(sandbox)["steps"]
    started = threading.Event()

    def background(i: int) -> dict:
        result = timed_stream(client, messages=ask(PROMPTS[i]), max_tokens=BACKGROUND, temperature=0.7, seed=i,
                              logit_bias=NO_END)
        return result

    def in_batch() -> dict:
        wait_for(lambda: health(sandbox)["running"] >= 3, 30, "the background streams to run")  # join mid-flight
        started.set()
        return timed_stream(client, **seeded)

    *others, batched = run_all([lambda i=i: background(i) for i in range(3)] + [in_batch])
    assert started.is_set()
    assert all(o["finished"] > batched["times"][0] for o in others), "the seeded run was not in a batch"
    assert health(sandbox)["steps"] - before < 3 * BACKGROUND + SEEDED, "the requests ran one after another"
    assert len(alone["tokens"]) == SEEDED
    assert batched["tokens"] == alone["tokens"] and batched["text"] == alone["text"]
    drift = max(abs(a - b) for a, b in zip(alone["logprobs"], batched["logprobs"]))
    assert drift == 0.0, f"logprobs moved by {drift} in a batch"  # separate KV streams: the same sums


def test_n3_evaluates_the_prompt_once(sandbox, client):
    before = health(sandbox)
    reply = client.chat.completions.create(model=LOCAL_MODEL, messages=ask(PROMPTS[0]), max_tokens=5, n=3, seed=9,
                                           logit_bias=NO_END)
    after = health(sandbox)
    evaluated = after["prompt_tokens_evaluated"] - before["prompt_tokens_evaluated"]
    reused = after["prompt_tokens_reused"] - before["prompt_tokens_reused"]
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert all(c.finish_reason == "length" and c.message.content for c in reply.choices)
    assert reply.usage.prompt_tokens > 10
    # Once: the three choices together evaluated the prompt's tokens that were not reused, no more.
    assert reused == reply.usage.prompt_tokens_details.cached_tokens
    assert evaluated + reused == reply.usage.prompt_tokens, f"{evaluated} + {reused} prompt tokens for n=3"
    # The three choices drew from the same prompt with their own seeds (base seed + index), as before.
    single = client.chat.completions.create(model=LOCAL_MODEL, messages=ask(PROMPTS[0]), max_tokens=5, seed=9,
                                            logit_bias=NO_END)
    assert reply.choices[0].message.content == single.choices[0].message.content


def test_a_client_walking_away_hands_its_slot_to_the_queue(sandbox):
    """Four endless streams fill the slots, a fifth waits; one client leaves: the fifth starts."""
    endless = {"model": LOCAL_MODEL, "max_tokens": 1500, "logit_bias": NO_END, "stream": True}
    url = sandbox.base_url + "/v4/beta/chat/completions"
    with httpx.Client(timeout=60) as http:
        streams, lines = [], []  # a line iterator dropped early would close its connection
        try:
            for i in range(4):
                response = http.send(http.build_request("POST", url, json={**endless, "messages": ask(PROMPTS[i])}),
                                     stream=True)
                streams.append(response)
                lines.append(response.iter_lines())
                next(lines[-1])  # it runs
            waiting = http.send(http.build_request("POST", url, json={**endless, "messages": ask(PROMPTS[4])}),
                                stream=True)
            streams.append(waiting)
            wait_for(lambda: health(sandbox)["queued"] == 1, 10, "the fifth request to queue")
            assert health(sandbox)["running"] == 4
            streams[0].close()  # the client walks away
            lines.append(waiting.iter_lines())
            first = next(lines[-1])
            while not first.startswith("data: "):
                first = next(lines[-1])
            assert '"content"' in first
            state = health(sandbox)
            assert state["queued"] == 0 and state["running"] == 4, state
        finally:
            for response in streams:
                response.close()
    wait_for(lambda: not health(sandbox)["busy"], 30, "every stream to be dropped")


# --- in-process: the exact step -----------------------------------------------------------


@pytest.fixture(scope="module")
def engine():
    from playground.sandbox.model import Engine

    return Engine(n_ctx=512, n_threads=1, parallel=2)


def test_the_next_queued_request_starts_the_step_after_a_client_leaves(engine):
    """Two slots: a leaver and a stayer run, a third request waits. The leaver's client goes
    away (its cancel event, as the app sets it) at step s: the third reads its prompt and gives
    its first token in step s + 1, and the stayer's text is what it is alone."""
    from playground.sandbox.model import Job
    from playground.sandbox.sampling import SamplingParams

    scheduler = engine.scheduler
    greedy = SamplingParams(temperature=0, logit_bias={2: -100.0})

    def job(text: str, max_tokens: int) -> Job:
        return Job(prompt_tokens=engine.prompt_tokens(ask(text)), max_tokens=max_tokens, sampling=greedy)

    steps: dict[str, list[int]] = {"leaver": [], "stayer": [], "queued": []}
    texts = {name: "" for name in steps}
    started = {name: threading.Event() for name in steps}
    leave = threading.Event()
    left_at: list[int] = []

    def recorder(name: str):
        def on_piece(piece) -> None:  # runs in the scheduler's thread: the step count is exact here
            steps[name].append(scheduler.steps)
            texts[name] += piece.text
            started[name].set()
            full = scheduler.running == scheduler.parallel
            if name == "leaver" and full and scheduler.queued == 1 and not leave.is_set():
                left_at.append(scheduler.steps)
                leave.set()
        return on_piece

    def after(name: str, run):
        assert started[name].wait(60), f"{name} never started"
        return run()

    alone: list[str] = []
    engine.generate(job(PROMPTS[1], 16), lambda piece: alone.append(piece.text))
    leaver, stayer, queued = run_all([
        lambda: engine.generate(job(PROMPTS[0], 400), recorder("leaver"), leave),
        lambda: after("leaver", lambda: engine.generate(job(PROMPTS[1], 16), recorder("stayer"))),
        lambda: after("stayer", lambda: engine.generate(job(PROMPTS[2], 3), recorder("queued"))),
    ])
    assert left_at, "the third request never queued behind the other two"
    assert leaver.cancelled and leaver.completion_tokens == len(steps["leaver"]) < 400
    assert steps["leaver"][-1] == left_at[0]  # nothing more for a client that left
    assert steps["queued"][0] == left_at[0] + 1, (left_at, steps["queued"])  # dropped, admitted, prompt read
    assert not stayer.cancelled and stayer.completion_tokens == 16
    assert texts["stayer"] == "".join(alone)  # the others are not disturbed
    assert queued.completion_tokens == 3
    for slot in range(scheduler.parallel):  # the cells kept for reuse are exactly those recorded
        assert scheduler.cells(slot) == len(scheduler.cached_tokens(slot))
    assert not engine.busy


def test_an_error_in_one_request_leaves_the_others_alone(engine):
    from playground.sandbox.model import Job
    from playground.sandbox.sampling import SamplingParams

    greedy = SamplingParams(temperature=0, logit_bias={2: -100.0})
    prompt = engine.prompt_tokens(ask(PROMPTS[3]))
    good: list[str] = []

    def broken(piece) -> None:
        raise RuntimeError("the client's callback broke")

    def failing() -> str:
        with pytest.raises(RuntimeError, match="callback broke"):
            engine.generate(Job(prompt_tokens=prompt, max_tokens=8, sampling=greedy), broken)
        return "raised"

    outcome, raised = run_all([
        lambda: engine.generate(Job(prompt_tokens=prompt, max_tokens=8, sampling=greedy),
                                lambda piece: good.append(piece.text)),
        failing,
    ])
    assert raised == "raised"
    assert outcome.completion_tokens == 8 and not outcome.cancelled
    again: list[str] = []
    engine.generate(Job(prompt_tokens=prompt, max_tokens=8, sampling=greedy), lambda piece: again.append(piece.text))
    assert "".join(good) == "".join(again)
    assert not engine.busy

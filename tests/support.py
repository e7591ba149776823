"""Helpers every kind of test shares (browser ones are in browser_support, AppTest ones in
apptest_support): waiting on a condition, reading a server's state, the requests it saw, and
a Run made by hand (`run_of`).

Waiting is always on a condition with a deadline, never a bare sleep: a test that sleeps
either waits longer than it needs or passes before the thing it checks has happened."""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import httpx
import pytest

from playground.client.run import ChoiceResult, Run, RunError
from playground.client.schema import ChatRequest, TokenLogprob, TopLogprob, Usage

POLL_S = 0.02


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Return as soon as predicate() is true; fail the test, naming `what`, after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_S)


def stays_false(predicate: Callable[[], object], for_s: float) -> bool:
    """True when predicate() stayed false for `for_s` seconds: for "this must not happen",
    given a window longer than the time it would take to happen if it were going to."""
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        if predicate():
            return False
        time.sleep(POLL_S)
    return not predicate()


def health(sandbox) -> dict:
    """The sandbox's /healthz: busy, running, queued, tokens_generated, prompt_tokens_evaluated..."""
    return httpx.get(sandbox.base_url + "/healthz", timeout=10).json()


def chat_requests(server) -> list:
    """The chat-completion requests a ScriptedServer received (not its health checks or model lists)."""
    return [received for received in server.requests if received.path.endswith("/chat/completions")]


def run_of(
    answer: str | Sequence[tuple[str, float]] = "",
    *,
    probs: Sequence[tuple[str, float]] | None = None,
    model: str = "scripted/model",
    prompt: str = "hi",
    usage: tuple[int, int] | None = None,
    error: str | RunError | None = None,
    finish_reason: str | None = "stop",
    request_fields: dict | None = None,
    **run_fields,
) -> Run:
    """A finished Run made by hand, for tests of what reads runs (tables, summaries, the store).

    `answer`: its text, or (token, logprob) pairs whose tokens spell it; `probs`: (token,
    probability) pairs instead, each token also its own one top alternative, as servers send.
    `usage`: (prompt, completion) tokens. `error`: a message (a server error) or a RunError; a
    failed run has no choice unless it has text. `request_fields` go into the request beside
    the model and the one user message `prompt`; `run_fields` (id, started_at, endpoint,
    ttft_s, total_s, partial, cancelled, chunks...) into the Run."""
    if probs is not None:
        logprobs = [TokenLogprob(token=t, logprob=math.log(p), top_logprobs=[TopLogprob(token=t, logprob=math.log(p))])
                    for t, p in probs]
    elif isinstance(answer, str):
        logprobs = []
    else:
        logprobs = [TokenLogprob(token=t, logprob=value) for t, value in answer]
    text = answer if isinstance(answer, str) else "".join(t.token for t in logprobs)
    if isinstance(error, str):
        error = RunError(kind="server_error", message=error)
    request = ChatRequest.from_wire({"model": model, "messages": [{"role": "user", "content": prompt}],
                                     **(request_fields or {})})
    return Run(
        request=request,
        choices=[ChoiceResult(text=text, logprobs=logprobs, finish_reason=finish_reason)] if text or not error else [],
        usage=Usage(prompt_tokens=usage[0], completion_tokens=usage[1], total_tokens=sum(usage)) if usage else None,
        error=error,
        **run_fields,
    )

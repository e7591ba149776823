"""Helpers every kind of test shares (browser ones are in browser_support, AppTest ones in
apptest_support): waiting on a condition, reading a server's state, the requests it saw.

Waiting is always on a condition with a deadline, never a bare sleep: a test that sleeps
either waits longer than it needs or passes before the thing it checks has happened."""

from __future__ import annotations

import time
from typing import Callable

import httpx
import pytest

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

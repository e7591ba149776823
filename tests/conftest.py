"""Shared fixtures. `sandbox`: one real local model server for the whole session."""

from __future__ import annotations

import pytest

from playground.sandbox.launcher import SandboxHandle, ensure_sandbox, free_port, sandbox_available

SANDBOX_TEST_KEY = "sandbox-test-key"


def _start(api_key: str | None = None) -> SandboxHandle:
    if not sandbox_available():
        pytest.skip("the sandbox extra is not installed: pip install -e '.[sandbox]'")
    handle = ensure_sandbox(port=free_port(), api_key=api_key, timeout=120)
    if handle.state != "running":
        handle.stop()
        pytest.fail(f"the sandbox did not start: {handle.message}")
    return handle


@pytest.fixture(scope="session")
def sandbox():
    """A sandbox subprocess on a free port: .port, .base_url, .endpoint (Endpoint.local(port)).
    Stopped at the end of the session."""
    handle = _start()
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def sandbox_with_key():
    """A second sandbox that requires SANDBOX_TEST_KEY (.api_key; .endpoint sends it)."""
    handle = _start(api_key=SANDBOX_TEST_KEY)
    yield handle
    handle.stop()

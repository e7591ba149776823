"""The launcher the app uses: reuse a running sandbox, start one, stop it, report failure,
and never leave one behind when the app is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from playground.sandbox import launcher
from playground.sandbox.launcher import ensure_sandbox, free_port, healthy, sandbox_available
from tests.support import wait_for

pytestmark = pytest.mark.sandbox


def test_extra_is_installed_here():
    """`make test` installs the sandbox extra; without it every sandbox test would skip quietly."""
    assert sandbox_available()


def test_reuses_the_sandbox_on_the_configured_port(sandbox, monkeypatch):
    monkeypatch.setattr(launcher, "_current", None)
    monkeypatch.setenv("PLAYGROUND_SANDBOX_PORT", str(sandbox.port))
    handle = ensure_sandbox()
    assert handle.state == "running" and handle.port == sandbox.port and not handle.owned
    assert ensure_sandbox() is handle  # one handle per process
    assert handle.endpoint.base_url == sandbox.base_url
    handle.stop()  # not ours: left running
    assert healthy(sandbox.port)


def test_starts_waits_and_stops_its_own(monkeypatch):
    monkeypatch.setattr(launcher, "_current", None)
    monkeypatch.setenv("PLAYGROUND_SANDBOX_PORT", str(free_port()))  # nothing there to reuse
    handle = ensure_sandbox(wait=False)
    try:
        assert handle.state == "starting" and handle.owned
        assert handle.wait(120).state == "running", handle.message
        assert healthy(handle.port)
        # its fixed port, free here: generated code that names it keeps working after a restart
        assert handle.port == int(os.environ["PLAYGROUND_SANDBOX_PORT"])
    finally:
        process = handle.process
        handle.stop()
    assert process.poll() is not None
    assert not healthy(handle.port)


def test_takes_any_free_port_when_its_own_is_taken(monkeypatch):
    monkeypatch.setattr(launcher, "_current", None)
    with socket.socket() as taken:  # something that is not a sandbox holds the fixed port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("PLAYGROUND_SANDBOX_PORT", str(taken.getsockname()[1]))
        handle = ensure_sandbox(wait=False)
        try:
            assert handle.state == "starting" and handle.port != taken.getsockname()[1]
            assert handle.poll().state == "starting"  # a look, not a wait: the model is still loading
            assert handle.wait(120).state == "running", handle.message
        finally:
            handle.stop()


def test_reports_a_sandbox_that_could_not_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        handle = ensure_sandbox(port=taken.getsockname()[1], timeout=120)
    assert handle.state == "failed"
    assert "exited" in handle.message and handle.process is None


def test_sandbox_goes_away_with_the_app_even_if_the_app_is_killed():
    port = free_port()
    script = (
        "import os\n"
        "from playground.sandbox.launcher import ensure_sandbox\n"
        f"h = ensure_sandbox(port={port})\n"
        "print(h.state, h.process.pid, h.log_path, flush=True)\n"
        "os._exit(0)  # no atexit: as if the app were killed\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120).stdout
    state, pid, log_path = output.split()
    try:
        assert state == "running"
        wait_for(lambda: not healthy(port), 10, f"sandbox {pid} to end with the app that started it")
    finally:
        os.unlink(log_path)


def test_command_line_help():
    result = subprocess.run([sys.executable, "-m", "playground.sandbox", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for option in ("--host", "--port", "--api-key", "--model-path"):
        assert option in result.stdout

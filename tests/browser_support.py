"""What every browser test needs: `streamlit run app.py` on a free port, headless Chromium,
and a ScriptedServer posing as the local sandbox.

    with scripted_sandbox() as server, streamlit_app(tmp, server) as base, chromium() as browser:
        page = browser.new_page(); page.goto(base + "/history")

The app's "Local sandbox" is pointed at the scripted server with PLAYGROUND_SANDBOX_PORT (it
answers /healthz and the model list as the sandbox does; the launcher reuses whatever answers
there), so replies are exact and no model is loaded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from playground.sandbox.launcher import free_port
from tests.scripted_server import ScriptedServer

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
SHOTS = Path(os.environ.get("PLAYGROUND_SCREENSHOTS", "/tmp/playground-screenshots"))
START_TIMEOUT_S = 90


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).text.strip() == "ok"
    except httpx.HTTPError:
        return False


@contextmanager
def scripted_sandbox(model: str = "scripted-model", vendor: str | None = "scripted") -> Iterator[ScriptedServer]:
    """A ScriptedServer that answers /healthz and the model list like the sandbox."""
    with ScriptedServer() as server:
        yield server.pose_as_sandbox([(model, vendor)])


@contextmanager
def streamlit_app(tmp: Path, sandbox: ScriptedServer | None = None,
                  env: Mapping[str, str] | None = None) -> Iterator[str]:
    """`streamlit run app.py` on a free port, data and presets under `tmp`, no SGP key; its
    "Local sandbox" is `sandbox` when given. Yields the base URL; the process group (streamlit
    and anything it started) is stopped at the end. Nothing is requested from the app here,
    so the test's first page load is the server's first session."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make test installs it)")
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    full_env = {**os.environ, "PLAYGROUND_DATA_DIR": str(tmp / "data"), "PLAYGROUND_PRESETS_DIR": str(tmp / "presets")}
    full_env.pop("SGP_API_KEY", None)
    if sandbox is not None:
        full_env["PLAYGROUND_SANDBOX_PORT"] = str(sandbox.port)
    full_env.update(env or {})
    log_path = tmp / "streamlit.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
             "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: proc.poll() is not None or healthy(base + "/_stcore/health"), START_TIMEOUT_S,
                 "streamlit to start")
        assert proc.poll() is None, log_path.read_text(errors="replace")
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@contextmanager
def chromium() -> Iterator["object"]:
    """Headless Chromium from /usr/bin (no browser download), closed at the end."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name: str, full_page: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path

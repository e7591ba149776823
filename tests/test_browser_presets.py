"""Browser: a share link opened in headless Chromium loads its preset into the Playground."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from playground.endpoint import LOCAL_MODEL
from playground.presets import Preset, to_share_token
from playground.schema import ChatRequest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
MESSAGE = "Name three zebra-striped teapots from the share link."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).text.strip() == "ok"
    except httpx.HTTPError:
        return False


@pytest.fixture
def app_url(tmp_path: Path):
    # The app shell is written in parallel with this test: wait for it rather than fail at once.
    _wait_for(lambda: (REPO / "app.py").exists() and (REPO / "pages" / "playground.py").exists(), 300, "app.py")
    port = _free_port()
    env = {**os.environ, "PLAYGROUND_PRESETS_DIR": str(tmp_path / "presets"),
           "PLAYGROUND_DATA_DIR": str(tmp_path / "data")}
    env.pop("PLAYGROUND_BASE_URL", None)
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(lambda: proc.poll() is not None or _healthy(base + "/_stcore/health"), 90, "streamlit to start")
        assert proc.poll() is None, (tmp_path / "streamlit.log").read_text(errors="replace")
        yield base
    finally:
        # Our own process group: streamlit and the sandbox it may have started for this app.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.close()


@pytest.mark.browser
def test_opening_a_share_link_loads_the_preset_into_the_playground(app_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    preset = Preset.new("Teapots", ChatRequest.from_wire({
        "model": LOCAL_MODEL, "temperature": 0.4, "max_completion_tokens": 17,
        "messages": [{"role": "system", "content": "You are a catalogue."}, {"role": "user", "content": MESSAGE}]}))
    token = to_share_token(preset)
    tampered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{app_url}/?preset={token}")
            expect(page.get_by_text("from the share link")).to_be_visible(timeout=90_000)
            # The message editor shows the preset's message (a textarea's value, not its text).
            page.wait_for_function(
                "msg => [...document.querySelectorAll('textarea')].some(t => t.value === msg)", arg=MESSAGE,
                timeout=30_000)
            expect(page.get_by_text("could not be loaded")).to_have_count(0)

            page = browser.new_page()
            page.goto(f"{app_url}/?preset={tampered}")
            expect(page.get_by_text("could not be loaded")).to_be_visible(timeout=90_000)
            expect(page.get_by_text("from the share link")).to_have_count(0)
            values = page.evaluate("[...document.querySelectorAll('textarea')].map(t => t.value)")
            assert MESSAGE not in values
        finally:
            browser.close()

"""Browser: two Compare panes stream at the same time from a slow scripted server, and
`Stop generating` stops both and keeps their partial text.

`streamlit run app.py` runs as a subprocess. PLAYGROUND_SANDBOX_PORT points the app's "Local
sandbox" at a ScriptedServer in this process (it answers /healthz and the model list like the
sandbox does), so both panes stream 40 tokens at 50 ms each from it.
"""

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

from tests.scripted_server import Reply, ScriptedServer

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
TOKENS = [f"w{i:02d} " for i in range(40)]
FULL = "".join(TOKENS).strip()
SHOTS = Path(os.environ.get("PLAYGROUND_SCREENSHOTS", "/tmp/playground-screenshots"))

# The answers on screen (a run's Details expander holds another copy, hidden while folded).
ANSWERS_JS = ("[...document.querySelectorAll('.pg-answer')].filter(e => e.checkVisibility({visibilityProperty: true}))"
              ".map(e => e.innerText)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).text.strip() == "ok"
    except httpx.HTTPError:
        return False


@pytest.fixture
def app(tmp_path: Path):
    with ScriptedServer() as server:
        server.route("/healthz", Reply.json(200, {"status": "ok"}))
        server.route("/v5/chat/completions/models", Reply.json(200, {"object": "list", "items": [
            {"model_name": "scripted/model", "model_type": "generic", "model_vendor": None}]}))
        server.default = Reply.stream_text(TOKENS, delay_s=0.05)
        port = _free_port()
        env = {**os.environ, "PLAYGROUND_SANDBOX_PORT": str(server.port), "PLAYGROUND_DATA_DIR": str(tmp_path / "data"),
               "PLAYGROUND_PRESETS_DIR": str(tmp_path / "presets")}
        env.pop("SGP_API_KEY", None)
        log = open(tmp_path / "streamlit.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
             "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_for(lambda: proc.poll() is not None or _healthy(base + "/_stcore/health"), 90, "streamlit to start")
            assert proc.poll() is None, (tmp_path / "streamlit.log").read_text(errors="replace")
            yield base, server
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
            log.close()


@pytest.mark.browser
def test_two_panes_fill_at_once_and_stop_keeps_partial_text(app) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, server = app
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # Open the app at its root, then follow the sidebar link: a fresh server that is first
            # asked for a deep link (/compare) runs the page without app.py (Streamlit's pages/
            # folder fallback), and this test is about the app as users open it.
            page.goto(base)
            expect(page.get_by_role("heading", name="Endpoint")).to_be_visible(timeout=60_000)  # app.py's sidebar
            page.get_by_role("link", name="Compare", exact=True).click()
            expect(page.get_by_role("heading", name="Endpoint")).to_be_visible(timeout=30_000)
            # Write the user message in the shared conversation (open it when it is folded).
            message = page.get_by_placeholder("Message text").last
            expect(page.get_by_text("Shared conversation", exact=True)).to_be_visible(timeout=30_000)
            if not message.is_visible():
                page.get_by_text("Shared conversation", exact=True).click()
            message.fill("Count from w00 to w39.")
            message.press("Tab")
            run_all = page.get_by_role("button", name="Run all")
            expect(run_all).to_be_enabled(timeout=60_000)
            run_all.click()

            # Sample both panes' text while they stream: both must grow before either finishes.
            both_partial = None
            samples = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                texts = [t.strip() for t in page.evaluate(ANSWERS_JS)]
                samples.append(texts)
                if len(texts) >= 2 and all(texts[:2]) and not any(t == FULL for t in texts[:2]):
                    if both_partial is None:
                        both_partial = texts[:2]
                        page.screenshot(path=str(SHOTS / "compare-streaming.png"), full_page=True)
                    elif all(len(now) > len(then) for now, then in zip(texts[:2], both_partial)):
                        break  # both grew since, and neither is done
                if len(texts) >= 2 and all(t == FULL for t in texts[:2]):
                    break
                time.sleep(0.05)
            assert both_partial is not None, f"never saw both panes part-way: {samples[-5:]}"
            later = [t.strip() for t in page.evaluate(ANSWERS_JS)][:2]
            assert all(len(now) > len(then) for now, then in zip(later, both_partial)) or all(t == FULL for t in later)

            # When both finish, the summary table appears and both answers are complete.
            expect(page.get_by_text("Differences from the baseline").or_(page.get_by_text("Baseline"))).to_be_visible(
                timeout=30_000)
            page.wait_for_function(f"(full) => {ANSWERS_JS}.filter(t => t.trim() === full).length >= 2", arg=FULL,
                                   timeout=30_000)
            page.screenshot(path=str(SHOTS / "compare-done.png"), full_page=True)

            # Run again and stop part-way: both keep their partial text, marked as stopped.
            page.get_by_role("button", name="Run all").click()
            expect(page.get_by_role("button", name="Stop generating")).to_be_visible(timeout=15_000)
            page.wait_for_function(
                f"(full) => {{ const t = {ANSWERS_JS}.map(x => x.trim()); "
                "const old = [...document.querySelectorAll('summary')].filter(e => e.checkVisibility() && "
                "e.innerText.trim().endsWith('Details')); "  # nothing of the finished runs is left on screen
                "return t.length === 2 && old.length === 0 && t.every(x => x.length > 12 && x !== full); }", arg=FULL,
                timeout=30_000)
            page.get_by_role("button", name="Stop generating").click()
            stopped = page.get_by_text("Stopped by you").filter(visible=True)
            expect(stopped.first).to_be_visible(timeout=15_000)
            expect(stopped).to_have_count(2)
            page.wait_for_function(  # the live views are gone
                f"() => {{ const t = {ANSWERS_JS}; return t.length === 2 && !t.some(x => x.includes('▌')); }}",
                timeout=15_000)
            texts = [t.strip() for t in page.evaluate(ANSWERS_JS)]
            assert all(t and FULL.startswith(t) and t != FULL for t in texts), texts
            page.screenshot(path=str(SHOTS / "compare-stopped.png"), full_page=True)

            page.get_by_role("link", name="History", exact=True).click()
            expect(page.get_by_text("Runs 1-4 of 4")).to_be_visible(timeout=30_000)
            page.screenshot(path=str(SHOTS / "history.png"), full_page=True)
        finally:
            browser.close()
    streamed = [r for r in server.requests if r.path == "/v4/beta/chat/completions"]
    assert len(streamed) == 4

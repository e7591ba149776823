"""Browser: the Playground page in headless Chromium against `streamlit run app.py`.

The app's "Local sandbox" is pointed at a ScriptedServer in this process with
PLAYGROUND_SANDBOX_PORT (it answers /healthz and the model list as the sandbox does), so the
replies are exact and their pace is known: streamed text, a Stop mid-stream, and an answer
full of HTML that must show as text and run nothing.
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

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
SHOTS = Path(os.environ.get("PLAYGROUND_SCREENSHOTS", "/tmp/playground-screenshots"))
ANSWERS_JS = "[...document.querySelectorAll('.pg-answer')].map(e => e.innerText)"
STATS_JS = "Object.fromEntries([...document.querySelectorAll('.pg-stat')].map(e => [e.dataset.label, e.innerText]))"
TIMEOUT_MS = 30_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).text.strip() == "ok"
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server():
    with ScriptedServer() as scripted:
        scripted.route("/healthz", Reply.json(200, {"status": "ok"}))
        scripted.route("/v5/chat/completions/models", Reply.json(200, {"object": "list", "items": [
            {"model_name": "scripted-model", "model_type": "generic", "model_vendor": "scripted"}]}))
        yield scripted


@pytest.fixture(scope="module")
def app_url(server, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make test installs it)")
    tmp = tmp_path_factory.mktemp("browser-playground")
    port = _free_port()
    env = {**os.environ, "PLAYGROUND_SANDBOX_PORT": str(server.port), "PLAYGROUND_DATA_DIR": str(tmp / "data"),
           "PLAYGROUND_PRESETS_DIR": str(tmp / "presets")}
    env.pop("SGP_API_KEY", None)
    log_path = tmp / "streamlit.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
             "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and not _healthy(base + "/_stcore/health"):
            time.sleep(0.2)
        assert proc.poll() is None and _healthy(base + "/_stcore/health"), log_path.read_text(errors="replace")
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1440, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_url)
    page.get_by_role("heading", name="Playground").wait_for()
    yield page
    context.close()


def _ask(page, text: str) -> None:
    from playwright.sync_api import expect

    box = page.locator("textarea[placeholder^='Type a user message']").first
    box.fill(text)
    box.press("Tab")  # commit the text area: the Run button enables
    run = page.locator(".st-key-run button >> visible=true")
    expect(run).to_be_enabled()
    run.click()


def _answers(page) -> list[str]:
    return page.evaluate(ANSWERS_JS)


def _wait_answer(page, predicate: str) -> None:
    try:
        page.wait_for_function(f"() => {{ const a = {ANSWERS_JS}; return a.length > 0 && ({predicate}); }}")
    except Exception:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "playground-failure.png"))
        raise


def test_type_run_see_streamed_text_and_usage(page, server):
    tokens = [f"word{i} " for i in range(12)]
    server.add(Reply.stream_text(tokens, delay_s=0.08))
    _ask(page, "Count for me")
    # mid-stream: Stop generating is offered and part of the text is already there
    page.get_by_role("button", name="Stop generating").wait_for()
    _wait_answer(page, "a[0].includes('word2') && !a[0].includes('word11')")
    # the end: the whole text and its usage
    page.get_by_text("Prompt tokens").wait_for()
    _wait_answer(page, "a[0].includes('word11')")
    assert _answers(page)[0].strip() == "".join(tokens).strip()
    stats = page.evaluate(STATS_JS)
    assert stats["Prompt tokens"] == "5" and stats["Completion tokens"] == "12" and stats["Total tokens"] == "17"
    assert stats["Finish reason"] == "stop"
    assert page.get_by_role("button", name="Stop generating").count() == 0
    sent = [r for r in server.requests if r.path.endswith("/chat/completions")][-1].json
    assert sent["messages"] == [{"role": "user", "content": "Count for me"}] and sent["stream"] is True
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "playground-run.png"))


def test_stop_generating_keeps_partial_text(page, server):
    tokens = [f"t{i:02d} " for i in range(60)]
    server.add(Reply.stream_text(tokens, delay_s=0.1))
    _ask(page, "Go slowly")
    _wait_answer(page, "a[0].includes('t03')")
    page.get_by_role("button", name="Stop generating").click()
    page.get_by_text("Stopped by you").wait_for()
    text = _answers(page)[0].strip()
    assert text.startswith("t00 t01 t02 t03") and "t59" not in text
    stats = page.evaluate(STATS_JS)
    assert stats["Finish reason"] == "cancelled"
    # the server saw the connection close: the stream really stopped
    received = [r for r in server.requests if r.path.endswith("/chat/completions")][-1]
    assert received.wait_closed(5) and not received.finished
    # the page is usable again
    page.get_by_role("button", name="Run").wait_for()
    page.screenshot(path=str(SHOTS / "playground-stopped.png"))


def test_html_in_the_answer_is_shown_as_text_and_runs_nothing(page, server):
    evil = ['<img src=x onerror="window.__pwned_img=1">', " and ", "<script>window.__pwned_script=1</script>",
            " [link](javascript:window.__pwned_link=1) **bold**"]
    server.add(Reply.stream_text(evil, delay_s=0.02))
    _ask(page, "Say something dangerous")
    page.get_by_text("Prompt tokens").wait_for()
    _wait_answer(page, "a[0].includes('bold')")
    assert _answers(page)[0].strip() == "".join(evil)
    page.get_by_text('<img src=x onerror="window.__pwned_img=1">').first.wait_for()
    time.sleep(0.5)  # give any injected handler the chance to fire
    pwned = page.evaluate("() => [window.__pwned_img, window.__pwned_script, window.__pwned_link]")
    assert pwned == [None, None, None]
    assert page.locator(".pg-answer img, .pg-answer script, .pg-answer a").count() == 0


def test_ctrl_enter_in_the_message_box_runs(page, server):
    server.add(Reply.stream_text(["Shortcut", " works"]))
    box = page.locator("textarea[placeholder^='Type a user message']").first
    box.click()
    box.type("Via the keyboard")
    box.press("Control+Enter")  # commits the text and runs, in one go
    page.get_by_text("Prompt tokens").wait_for()
    _wait_answer(page, "a[0].includes('Shortcut works')")
    sent = [r for r in server.requests if r.path.endswith("/chat/completions")][-1].json
    assert sent["messages"] == [{"role": "user", "content": "Via the keyboard"}]


def test_stop_generating_while_the_server_is_silent(page, server):
    # two tokens, then the server holds the connection open and sends nothing more
    server.add(Reply.stream_text(["still ", "here"], done=False, include_usage=False, hold_open=True))
    _ask(page, "Then go quiet")
    _wait_answer(page, "a[0].includes('still here')")
    started = time.monotonic()
    page.get_by_role("button", name="Stop generating").click()
    page.get_by_text("Stopped by you").wait_for()
    assert time.monotonic() - started < 5
    assert _answers(page)[0].strip() == "still here"

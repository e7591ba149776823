"""What every browser test needs: `streamlit run app.py` on a free port, headless Chromium,
and a ScriptedServer posing as the local sandbox.

    with scripted_sandbox() as server, streamlit_app(tmp, server) as base, chromium() as browser:
        page = browser.new_page(); page.goto(base + "/history")

The app's "Local sandbox" is pointed at the scripted server with PLAYGROUND_SANDBOX_PORT (it
answers /healthz and the model list as the sandbox does; the launcher reuses whatever answers
there), so replies are exact and no model is loaded.

Two rules hold for every browser test:
- Without Chromium or Playwright a test skips locally and FAILS under CI=true (a skipped
  browser test proves nothing; tests/conftest.py also turns any other skip of one into a failure).
- No request leaves for an outside host: `chromium()` yields a `Browser` whose pages' requests
  are all logged, and the test fails when one went anywhere but loopback (`check_offline()`
  reports it at once; the end of `chromium()` reports what is left).

For escaping tests: HOSTILE (text that would run, fetch or render if any view failed to escape
it), `assert_inert(page, browser)` (nothing ran or rendered in any frame, nothing left for an
outside host), `shown_text(page, selector)` and `dataframe_text(locator)` (what is on screen).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from playground.sandbox.launcher import free_port
from tests.scripted_server import ScriptedServer
from tests.support import wait_for

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
SHOTS = Path(os.environ.get("PLAYGROUND_SCREENSHOTS", "/tmp/playground-screenshots"))
START_TIMEOUT_S = 90
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
NO_HOST_SCHEMES = {"data", "blob", "about"}  # never leave the browser


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM} (make test installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"playwright does not import ({error}): pip install -e '.[dev]'"
    return None


def require_browser() -> None:
    """Skip (locally) or fail (under CI=true) when the browser tests cannot run."""
    problem = browser_problem()
    if problem is not None:
        if in_ci():
            pytest.fail(f"CI=true and the browser tests cannot run: {problem}")
        pytest.skip(problem)


def is_outside(url: str) -> bool:
    """A request that leaves the machine: any host other than loopback."""
    parts = urlsplit(url)
    if parts.scheme in NO_HOST_SCHEMES:
        return False
    return (parts.hostname or "") not in LOCAL_HOSTS


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
    require_browser()
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # unbuffered, at INFO: a test can read what the app logs while it runs (test_browser_keys.py)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PLAYGROUND_LOG_LEVEL": "INFO",
                "PLAYGROUND_DATA_DIR": str(tmp / "data"), "PLAYGROUND_PRESETS_DIR": str(tmp / "presets")}
    full_env.pop("SGP_API_KEY", None)
    if sandbox is not None:
        full_env["PLAYGROUND_SANDBOX_PORT"] = str(sandbox.port)
    full_env.update(env or {})
    log_path = tmp / "streamlit.log"
    proc = start_streamlit(
        ["run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"], full_env, log_path)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: proc.poll() is not None or healthy(base + "/_stcore/health"), START_TIMEOUT_S,
                 "streamlit to start")
        assert proc.poll() is None, log_path.read_text(errors="replace")
        yield base
    finally:
        proc.stop()


class AppProcess:
    """A started `streamlit` in a process group of its own: Popen's, or a child of the zygote
    (tests/app_zygote.py), which the zygote reaps: gone from the process table means exited."""

    def __init__(self, pid: int, popen: subprocess.Popen | None = None) -> None:
        self.pid, self._popen = pid, popen

    def poll(self) -> int | None:
        """None while it runs, else its exit code (-1 when the zygote reaped it: code unknown)."""
        if self._popen is not None:
            return self._popen.poll()
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return -1
        return None

    def stop(self) -> None:
        """SIGTERM to the group (streamlit and anything it started), SIGKILL after 15 s."""
        for sig, grace_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            if self.poll() is not None:
                return
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return
            try:
                wait_for(lambda: self.poll() is not None, grace_s, "streamlit to stop")
            except pytest.fail.Exception:  # still running: SIGKILL next, or the test fails
                if sig == signal.SIGKILL:
                    raise


_ZYGOTE: dict[str, subprocess.Popen] = {}
COLD_START_ENV = "PLAYGROUND_TESTS_COLD_START"  # set to 1: every app is a plain `python -m streamlit`


def start_streamlit(argv: list[str], env: Mapping[str, str], log_path: Path) -> AppProcess:
    """`python -m streamlit <argv>` in REPO with `env`, its output in `log_path`: forked from the
    test process's zygote (started on first use; see tests/app_zygote.py for why), or a plain
    subprocess when $PLAYGROUND_TESTS_COLD_START is 1."""
    if os.environ.get(COLD_START_ENV) != "1":
        zygote = _ZYGOTE.get("process")
        if zygote is None or zygote.poll() is not None:
            zygote = subprocess.Popen([sys.executable, str(REPO / "tests" / "app_zygote.py")], cwd=REPO,
                                      env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
            assert json.loads(zygote.stdout.readline()) == {"ready": True}, "the app zygote did not start"
            _ZYGOTE["process"] = zygote
        zygote.stdin.write(json.dumps({"argv": argv, "env": dict(env), "cwd": str(REPO), "log": str(log_path)}) + "\n")
        zygote.stdin.flush()
        return AppProcess(json.loads(zygote.stdout.readline())["pid"])
    with open(log_path, "wb") as log:
        popen = subprocess.Popen([sys.executable, "-m", "streamlit", *argv], cwd=REPO, env=dict(env), stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    return AppProcess(popen.pid, popen)


def stop_zygote() -> None:
    """Close the zygote's stdin: it exits (its apps were stopped by their tests)."""
    zygote = _ZYGOTE.pop("process", None)
    if zygote is not None:
        zygote.stdin.close()
        try:
            zygote.wait(timeout=10)
        except subprocess.TimeoutExpired:
            zygote.kill()


class Browser:
    """A view of the test process's Chromium (see chromium()): the pages it opens, closed by
    close() with every cookie the context holds, and the URL of every request made while it is
    open (all pages, frames and popups), for check_offline()."""

    def __init__(self, context) -> None:
        self._context = context
        self.requests: list[str] = []  # URLs not yet checked by check_offline()
        self._pages: list = []

    def new_page(self, viewport: Mapping[str, int] | None = None):
        """A new page (about:blank: nothing requested yet), `viewport` in size (Playwright's
        default, 1280 x 720, when not given). Each page is its own Streamlit session (a session
        is a page's websocket, not a cookie)."""
        page = self._context.new_page()
        page.set_viewport_size(dict(viewport or DEFAULT_VIEWPORT))
        self._pages.append(page)
        return page

    def record(self, request) -> None:
        self.requests.append(request.url)

    def outside_requests(self) -> list[str]:
        return [url for url in self.requests if is_outside(url)]

    def check_offline(self) -> None:
        """Fail when a page requested anything from an outside host since the last check."""
        outside, self.requests = self.outside_requests(), []
        if outside:
            pytest.fail(f"the browser requested outside hosts: {sorted(set(outside))}")

    def close(self) -> None:
        """Close this view's pages and clear the cookies: cookies do not keep to a port, so one
        app's (a sign-in) would reach the next file's app on 127.0.0.1. Chromium stays."""
        for page in self._pages:
            if not page.is_closed():
                page.close()
        self._pages = []
        if _LAUNCHED.get("context") is self._context:  # still up (a crashed one has none to clear)
            self._context.clear_cookies()


DEFAULT_VIEWPORT = {"width": 1280, "height": 720}

# The test process's one Playwright and Chromium, started on first use and stopped by
# stop_chromium() (tests/conftest.py, at the session's end), and the views open on it.
# - One Chromium, not one per test file: a launch cost about 1 s of the two busy cores.
# - One persistent context (a profile on disk), not a new incognito context per file: Chromium keeps
#   compiled JavaScript (V8's code cache) only in a profile on disk. Six loads of one app's Playground
#   took 3.3 s of CPU each in an incognito context, 2.2 s in a profile (2 quiet cores). The cache is
#   keyed by the script's URL, and each file's app has a port of its own, so it helps within a file:
#   over the whole suite the browser files took 85 s less, 63 s of it the widths test's own change.
_LAUNCHED: dict[str, object] = {}
_VIEWS: list[Browser] = []


def _process_context():
    from playwright.sync_api import sync_playwright

    if "context" not in _LAUNCHED:
        if "playwright" not in _LAUNCHED:
            _LAUNCHED["playwright"] = sync_playwright().start()
        profile = tempfile.mkdtemp(prefix="playground-chromium-")
        context = _LAUNCHED["playwright"].chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=DEFAULT_VIEWPORT)
        context.on("request", lambda request: [view.record(request) for view in _VIEWS])
        context.on("close", lambda _: _LAUNCHED.pop("context", None))  # crashed: launched again next time
        _LAUNCHED.update(context=context, profile=profile)
    return _LAUNCHED["context"]


def stop_chromium() -> None:
    """Close the process's Chromium and Playwright, when they were started, and its profile."""
    context, playwright = _LAUNCHED.pop("context", None), _LAUNCHED.pop("playwright", None)
    profile = _LAUNCHED.pop("profile", None)
    if context is not None:
        context.close()
    if playwright is not None:
        playwright.stop()
    if profile is not None:
        shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium from /usr/bin (no browser download), seen through a `Browser` of its own:
    its pages are closed at the end, with the cookies, and it fails when a page requested an
    outside host meanwhile. The process itself is shared by the test files of a worker."""
    require_browser()
    from playwright.sync_api import expect

    # Playwright's 5 s for an expect() is tight on 2 busy cores (a rerun can take that long to draw
    # under load); a passing check returns as soon as it holds, so a longer wait costs nothing.
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)

    browser = Browser(_process_context())
    _VIEWS.append(browser)
    try:
        yield browser
        browser.check_offline()
    finally:
        _VIEWS.remove(browser)
        browser.close()


# --- hostile text: every view that shows model or user text must show it as text ----------

EVIL_HOST = "evil.example"  # never requested: a rendered image or link would point there
HOSTILE_IMG = '<img src=x onerror="window.__pwned=\'img\'">'
HOSTILE_SCRIPT = "<script>window.__pwned='script'</script>"
HOSTILE_JS_LINK = "[click](javascript:window.__pwned='link')"
HOSTILE_MD_IMAGE = f"![x](http://{EVIL_HOST}/x.png)"
HOSTILE_HTML_IMAGE = f'<img src="http://{EVIL_HOST}/y.png">'
HOSTILE_MATH = "$x^2$"
HOSTILE = (HOSTILE_IMG, HOSTILE_SCRIPT, HOSTILE_JS_LINK, HOSTILE_MD_IMAGE, HOSTILE_HTML_IMAGE, HOSTILE_MATH)

# What would show that hostile text rendered, in one document and its open shadow roots.
_RENDERED_JS = """() => {
    const roots = [document];
    for (let i = 0; i < roots.length; i++)
        for (const e of roots[i].querySelectorAll('*')) if (e.shadowRoot) roots.push(e.shadowRoot);
    const all = sel => roots.flatMap(r => [...r.querySelectorAll(sel)]);
    return {
        pwned: window.__pwned ?? null,
        images: all('img').map(e => e.getAttribute('src')).filter(s => s === 'x' || (s || '').includes('%s')),
        js_links: all('a[href]').map(e => e.getAttribute('href')).filter(h => /^\\s*javascript:/i.test(h)),
        scripts: all('script').filter(e => e.textContent.includes('__pwned')).length,
        math: all('.katex, math').length,
    };
}""" % EVIL_HOST


PAGE_TIMEOUT_MS = 30_000
EXPECT_TIMEOUT_MS = 15_000
USER_BOX = "textarea[placeholder^='Type a user message']"
RUN_BUTTON = ".st-key-run button >> visible=true"
# The answers on screen: the live box stays on the page, hidden, when nothing streams, and a run's
# Details expander holds another copy, hidden while folded.
ANSWERS_JS = ("[...document.querySelectorAll('.pg-answer')].filter(e => e.checkVisibility({visibilityProperty: true}))"
              ".map(e => e.innerText)")


def answers(page) -> list[str]:
    return page.evaluate(ANSWERS_JS)


def wait_answer(page, predicate: str, shot: str = "answer-failure.png") -> None:
    """Until the answers on screen, `a` in the JavaScript `predicate`, are there and satisfy it
    (a screenshot named `shot` when they never do)."""
    try:
        page.wait_for_function(f"() => {{ const a = {ANSWERS_JS}; return a.length > 0 && ({predicate}); }}")
    except Exception:
        screenshot(page, shot, full_page=True)
        raise


def put_preset(app_dir: Path, preset: dict, cases: str | None = None) -> Path:
    """Write a preset file (and its cases file, CSV text) into the app's presets folder, as a
    teammate's pull would: the file is named after the preset. Returns the folder."""
    from playground.presets import slugify

    folder = app_dir / "presets"
    folder.mkdir(parents=True, exist_ok=True)
    stem = slugify(preset["name"])
    (folder / f"{stem}.json").write_text(json.dumps(preset))
    if cases is not None:
        (folder / f"{stem}.cases.csv").write_text(cases)
    return folder


def choose(page, combobox, option) -> None:
    """Pick `option` (its exact name, or a locator of the option) in a st.selectbox. A rerun that
    redraws the box as it is clicked closes its list again (seen after a run finished): the click
    is made again, at most three times."""
    wanted = page.get_by_role("option", name=option, exact=True) if isinstance(option, str) else option
    for attempt in range(3):
        combobox.click()
        try:
            timeout = 5_000 if attempt < 2 else PAGE_TIMEOUT_MS
            wanted.wait_for(timeout=timeout)
            wanted.click(timeout=timeout)  # the list can close again between these two
            return
        except Exception:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")  # a list left open would close on the next click
            wait_idle(page)


def open_tab(page, name: str, showing) -> None:
    """Click the tab `name` until `showing` (a locator inside it) is visible. A rerun that redraws
    the tabs as the click lands shows the first tab again (seen as a run's answer was saved): the
    click is made again, at most three times."""
    from playwright.sync_api import expect

    for attempt in range(3):
        page.get_by_role("tab", name=name).click()
        try:
            expect(showing).to_be_visible(timeout=5_000 if attempt < 2 else PAGE_TIMEOUT_MS)
            return
        except AssertionError:
            if attempt == 2:
                raise
            wait_idle(page)


@contextmanager
def open_page(browser: Browser, url: str | None = None, title: str | None = None,
              viewport: tuple[int, int] = (1440, 1600), timeout_ms: int = PAGE_TIMEOUT_MS) -> Iterator["object"]:
    """A new page (its own Streamlit session) of that size, opened at
    `url` and waited on until the heading `title` shows. Afterwards: the page is closed, and no
    page of the test asked an outside host for anything."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.set_default_timeout(timeout_ms)
    if url is not None:
        page.goto(url)
        if title is not None:
            page.get_by_role("heading", name=title, exact=True).wait_for()
    try:
        yield page
    finally:
        page.close()
    browser.check_offline()


def run_prompt(page, text: str) -> None:
    """On the Playground: type `text` as the user message and press Run."""
    from playwright.sync_api import expect

    box = page.locator(USER_BOX).first
    box.fill(text)
    box.press("Tab")  # commit the text area: the Run button enables
    run = page.locator(RUN_BUTTON)
    expect(run).to_be_enabled()
    run.click()


# True once the app's script state (Streamlit marks its root with it) has been "notRunning" for
# quietMs: the observer notes when the state last changed, per root (a reload makes a new one).
_QUIET_JS = """quietMs => {
  const root = document.querySelector('[data-test-script-state]');
  if (!root) return false;
  if (window.__pgRoot !== root) {
    window.__pgRoot = root;
    window.__pgSince = performance.now();
    new MutationObserver(() => { window.__pgSince = performance.now(); })
      .observe(root, {attributes: true, attributeFilter: ['data-test-script-state']});
  }
  return root.getAttribute('data-test-script-state') === 'notRunning'
      && performance.now() - window.__pgSince >= quietMs;
}"""
QUIET_MS = 300


def wait_idle(page, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    """Until the app's script run is over and no other has started for QUIET_MS: an element
    found while a rerun redraws the page can be replaced under the test ("not attached to the
    DOM"). A finished stream is followed by a rerun or two (the run saved, the page redrawn) a
    moment later, so a single look at "notRunning" can fall between them."""
    page.wait_for_function(_QUIET_JS, arg=QUIET_MS, timeout=timeout_ms, polling=50)


def rendered_hostile(page) -> dict[str, dict]:
    """Per frame (the page and every iframe), what hostile text did there; {} when nothing."""
    found = {}
    for frame in page.frames:
        if frame.is_detached():
            continue
        seen = frame.evaluate(_RENDERED_JS)
        if seen["pwned"] is not None or seen["images"] or seen["js_links"] or seen["scripts"] or seen["math"]:
            found[frame.url or frame.name] = seen
    return found


def settle(page) -> None:
    """Until the app's rerun is over and every frame has loaded what it will: each image has
    loaded or failed (so an injected onerror has fired), then one more task and frame (a handler
    queued by either has run). The positive sign to wait for before asserting that nothing ran."""
    wait_idle(page)
    for frame in page.frames:
        if not frame.is_detached():
            frame.evaluate("""async () => {
                const loaded = (i) => new Promise(done => {
                    i.addEventListener('load', done);
                    i.addEventListener('error', done);
                });
                await Promise.all([...document.images].filter(i => !i.complete).map(loaded));
                await new Promise(done => setTimeout(done, 0));
                await new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)));
            }""")


def assert_inert(page, browser: Browser) -> None:
    """Hostile text on screen did nothing: no script ran (`window.__pwned` unset in every frame),
    nothing rendered as an image, a javascript: link or math, and no request left for an
    outside host (the evil host included)."""
    settle(page)
    found = rendered_hostile(page)
    assert not found, f"hostile text rendered or ran: {found}"
    evil = [url for url in browser.requests if EVIL_HOST in url]
    assert not evil, f"requested {evil}"
    browser.check_offline()


def shown_text(page, selector: str) -> str:
    """The visible text (innerText) of every element matching `selector`, in every frame."""
    texts = []
    for frame in page.frames:
        if not frame.is_detached():
            texts += frame.evaluate(
                "sel => [...document.querySelectorAll(sel)].filter(e => e.checkVisibility())"
                ".map(e => e.innerText)", selector)
    return "\n".join(texts)


def expect_texts(locator, expected: list[str], timeout_s: float = PAGE_TIMEOUT_MS / 1000) -> None:
    """Until the elements' text contents are exactly `expected`. Not a count and then a read: a
    redraw can rebuild the elements (a component's tokens) between the two."""
    seen: list[list[str]] = [[]]

    def shown() -> bool:
        seen[0] = locator.all_text_contents()
        return seen[0] == expected

    try:
        wait_for(shown, timeout_s, f"the texts {expected}")
    except BaseException:
        raise AssertionError(f"expected the texts {expected}, the page shows {seen[0]}") from None


def dataframe_text(locator) -> str:
    """A st.dataframe's cells as text, a tab between cells. The grid draws on a canvas; its
    accessible copy (a table inside the canvas element, the rows on screen) holds the cells as
    text nodes."""
    table = locator.locator("canvas table").first
    table.wait_for(state="attached")
    return table.evaluate("t => [...t.querySelectorAll('tr')]"
                          ".map(r => [...r.children].map(c => c.textContent).join('\\t')).join('\\n')")


def screenshot(page, name: str, full_page: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path

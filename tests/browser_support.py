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
import signal
import subprocess
import sys
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


class Browser:
    """Playwright's Browser whose every page logs its requests (all frames, popups too).
    Anything not defined here is the wrapped Browser's."""

    def __init__(self, browser) -> None:
        self._browser = browser
        self.requests: list[str] = []  # URLs not yet checked by check_offline()
        self._shared: dict[tuple[int, int], object] = {}
        self._contexts: list = []  # this view's own (cookies, storage, cache): closed by close_contexts()

    def shared_context(self, viewport: tuple[int, int]):
        """One context per window size, kept for the module: its pages share the HTTP cache, so
        the app's script bundle is fetched and compiled once, not once per test (about 0.7 s a
        page on 2 cores). Each page is still its own Streamlit session (a session is a page's
        websocket, not a cookie)."""
        if viewport not in self._shared:
            self._shared[viewport] = self.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        return self._shared[viewport]

    def new_context(self, **options):
        context = self._browser.new_context(**options)
        context.on("request", self._record)
        self._contexts.append(context)
        return context

    def new_page(self, **options):
        page = self._browser.new_page(**options)  # about:blank: nothing requested yet
        page.context.on("request", self._record)
        self._contexts.append(page.context)
        return page

    def close_contexts(self) -> None:
        """Close what this view opened; the Chromium process stays for the next test file."""
        for context in self._contexts:
            context.close()
        self._contexts, self._shared = [], {}

    def close(self) -> None:
        self.close_contexts()  # never the process: other files' views share it

    def _record(self, request) -> None:
        self.requests.append(request.url)

    def outside_requests(self) -> list[str]:
        return [url for url in self.requests if is_outside(url)]

    def check_offline(self) -> None:
        """Fail when a page requested anything from an outside host since the last check."""
        outside, self.requests = self.outside_requests(), []
        if outside:
            pytest.fail(f"the browser requested outside hosts: {sorted(set(outside))}")

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


# The test process's one Playwright and Chromium, started on first use and stopped by
# stop_chromium() (tests/conftest.py, at the session's end). Launching Chromium for each test file
# cost about 1 s of the two busy cores each time; a context per file keeps the files apart.
_LAUNCHED: dict[str, object] = {}


def _process_chromium():
    from playwright.sync_api import sync_playwright

    launched = _LAUNCHED.get("chromium")
    if launched is None or not launched.is_connected():  # a crashed Chromium is not reused
        if "playwright" not in _LAUNCHED:
            _LAUNCHED["playwright"] = sync_playwright().start()
        launched = _LAUNCHED["playwright"].chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _LAUNCHED["chromium"] = launched
    return launched


def stop_chromium() -> None:
    """Close the process's Chromium and Playwright, when they were started."""
    launched, playwright = _LAUNCHED.pop("chromium", None), _LAUNCHED.pop("playwright", None)
    if launched is not None:
        launched.close()
    if playwright is not None:
        playwright.stop()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium from /usr/bin (no browser download), seen through a `Browser` of its own:
    its contexts (cookies, storage, cache) are new and closed at the end, and it fails when its
    pages requested an outside host. The process itself is shared by the test files of a worker."""
    require_browser()
    from playwright.sync_api import expect

    # Playwright's 5 s for an expect() is tight on 2 busy cores (a rerun can take that long to draw
    # under load); a passing check returns as soon as it holds, so a longer wait costs nothing.
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)

    browser = Browser(_process_chromium())
    try:
        yield browser
        browser.check_offline()
    finally:
        browser.close_contexts()


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


@contextmanager
def open_page(browser: Browser, url: str | None = None, title: str | None = None,
              viewport: tuple[int, int] = (1440, 1600), timeout_ms: int = PAGE_TIMEOUT_MS) -> Iterator["object"]:
    """A new page (its own Streamlit session) in the module's context of that size, opened at
    `url` and waited on until the heading `title` shows. Afterwards: the page is closed, and no
    page of the test asked an outside host for anything."""
    page = browser.shared_context(viewport).new_page()
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

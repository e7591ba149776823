"""Shared fixtures. `sandbox`: one real local model server for the whole session.

Under CI=true every test that skips is reported as failed: CI installs everything the suite
needs (`make test`), so a skip there means a check that did not run (locally a skip with its
reason is fine, and `-rs` lists it)."""

from __future__ import annotations

import pytest

from playground.sandbox.launcher import SandboxHandle, ensure_sandbox, free_port, sandbox_available
from tests.browser_support import (
    USER_BOX,
    chromium,
    in_ci,
    open_page,
    scripted_sandbox,
    stop_chromium,
    stop_zygote,
    streamlit_app,
)

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


def pytest_collection_modifyitems(config, items):
    """The files that drive Chromium or the local model first, the quick ones after, each file's
    tests in their order: the two workers then end on quick files and finish together. `make test`
    runs xdist with --no-loadscope-reorder, so it hands files out in this order (its own order, the
    files with the most tests first, left the slowest files, a test or two each, for the end)."""
    slow = {item.module.__name__ for item in items
            if item.get_closest_marker("browser") or item.get_closest_marker("sandbox")}
    items.sort(key=lambda item: item.module.__name__ not in slow)  # a stable sort


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    skipped = report.skipped and not hasattr(report, "wasxfail")  # an expected failure is not a skip
    if skipped and in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI=true: a test may not skip ({reason})"


# --- browser tests: one app per test module, one Chromium per worker (a module may override any of them) ---


@pytest.fixture(scope="module")
def server():
    """A ScriptedServer posing as the local sandbox: queue replies with server.add(...)."""
    with scripted_sandbox() as scripted:
        yield scripted


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory, request):
    """The app's folder: its run history in data/, its presets in presets/."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def app_url(server, app_dir):
    """`streamlit run app.py` whose local sandbox is `server`."""
    with streamlit_app(app_dir, server) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    """The worker's Chromium, seen by this module alone: its pages closed and the cookies cleared
    at the module's end, and its own check that no page asked an outside host."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session", autouse=True)
def _stop_chromium_and_the_app_zygote_at_the_end():
    yield
    stop_chromium()
    stop_zygote()


@pytest.fixture
def page(browser, app_url):
    """The Playground in a fresh browser session, its message box ready."""
    with open_page(browser, app_url, "Playground") as page:
        page.locator(USER_BOX).first.wait_for()
        yield page

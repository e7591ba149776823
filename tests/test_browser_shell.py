"""Browser: the app's shell. The browser tests can run here; a deep link as the very first
request of a fresh server gets the whole app; no page requests anything from an outside host.

Streamlit (1.67) decides on the first session whether the app is a legacy pages/-folder app;
a first request for /history then ran pages/history.py without app.py (no endpoint picker,
no layout, the file names as navigation) for that session and every later one. The pages'
guard (playground.ui.shell.require_app) sets the app's shell up in that run.
"""

from __future__ import annotations

import pytest

from tests.browser_support import browser_problem, chromium, in_ci, screenshot, scripted_sandbox, streamlit_app

pytestmark = pytest.mark.browser
PAGES = {"": "Playground", "compare": "Compare", "presets": "Presets", "history": "History"}


def test_the_browser_tests_can_run_here():
    """Under CI=true, Chromium and Playwright are here and a page runs script: without them
    every browser test would fail (see browser_support.require_browser), never skip quietly."""
    problem = browser_problem()
    if problem is not None and not in_ci():
        pytest.skip(problem)
    assert problem is None, problem
    with chromium() as browser:
        page = browser.new_page()
        page.set_content("<p id=p></p><script>document.getElementById('p').textContent = 6 * 7</script>")
        assert page.inner_text("#p") == "42"


def _whole_app(page, title: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=60_000)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("heading", name="Endpoint")).to_be_visible()  # app.py's sidebar
    expect(sidebar.get_by_role("combobox", name="Endpoint")).to_have_value("Local sandbox")  # the pickers
    expect(sidebar.get_by_role("combobox", name="Model")).to_have_value("scripted/scripted-model")
    nav = page.get_by_test_id("stSidebarNav")
    for name in ("Playground", "Compare", "Presets", "History"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="app", exact=True)).to_have_count(0)  # the legacy file-name navigation
    # app.py's page config: the wide layout (the centered one is at most 736 px wide)
    width = page.evaluate("() => document.querySelector('[data-testid=stMainBlockContainer]').clientWidth")
    assert width > 900, width


def test_a_deep_link_as_the_first_request_gets_the_whole_app(tmp_path):
    from playwright.sync_api import expect

    with scripted_sandbox() as sandbox, streamlit_app(tmp_path, sandbox) as base, chromium() as browser:
        first = browser.new_page(viewport={"width": 1400, "height": 900})
        first.goto(f"{base}/history")  # nothing has asked this server anything before
        _whole_app(first, "History")
        assert first.url.rstrip("/").endswith("/history")
        screenshot(first, "deep-link-history.png")
        # the first interaction keeps what was typed (the widgets kept their ids on the next run)
        search = first.get_by_role("textbox", name="Search")
        search.fill("zebra")
        search.press("Enter")
        expect(first.get_by_text("No runs match.")).to_be_visible(timeout=30_000)
        expect(search).to_have_value("zebra")
        expect(first.get_by_test_id("stSidebar").get_by_role("heading", name="Endpoint")).to_be_visible()

        later = browser.new_page(viewport={"width": 1400, "height": 900})  # a later session too
        later.goto(f"{base}/compare")
        _whole_app(later, "Compare")


def test_no_page_requests_an_outside_host(tmp_path):
    """Offline, or behind a strict proxy, the app must still work: every page (its favicon, the
    navigation's icons, the fonts) is served by the app itself. chromium() fails on any request
    to a host other than loopback; each page is checked on its own to say which one did."""
    with scripted_sandbox() as sandbox, streamlit_app(tmp_path, sandbox) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for path, title in PAGES.items():
            page.goto(f"{base}/{path}")
            _whole_app(page, title)
            page.wait_for_load_state("networkidle")
            icons = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(e => e.href)")
            assert icons and all(icon.startswith(("data:", base)) for icon in icons), icons
            browser.check_offline()

"""Browser: a key typed for the Custom endpoint is sent, and found nowhere afterwards.

In headless Chromium against `streamlit run app.py`: the sidebar's "Custom (OpenAI-compatible)"
endpoint points at a ScriptedServer with a key typed in; a request runs, and the server saw the
key. Then the key is not in the run history (the SQLite files' bytes), a preset saved from the
Playground, that preset's share link, the generated code, the page (HTML of every frame, and the
browser's storage) after a reload, or the app's log. Each place is first shown to hold what it
should (the answer, the prompt, the URL), so an empty place cannot pass for a clean one.

A key in the base URL's query string (?api_key=..., as some servers take it) is redacted from
the error messages shown and stored, and from the app's log.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from playground.presets import from_share_token, preset_to_json
from tests.browser_support import PAGE_TIMEOUT_MS, choose, open_page, open_tab, run_prompt, screenshot, wait_idle
from tests.scripted_server import Reply, ScriptedServer

pytestmark = pytest.mark.browser

KEY = "pgtest-custom-key-5f1e9c"  # not shaped like a known key (sk-...): only this test's checks can catch it
PROMPT = "Say hello to the custom server."
ANSWER = ["Hello", " from", " custom"]
MODEL = "custom/echo-model"


PASSWORD_FIELDS = "input[type=password]"
# The page's HTML with the given fields' values blanked: what it shows beyond what was typed.
HTML_BUT_FIELDS_JS = """fields => {
  const copy = document.documentElement.cloneNode(true);
  copy.querySelectorAll(fields).forEach(field => field.setAttribute('value', ''));
  return copy.outerHTML;
}"""
CODE_JS = "[...document.querySelectorAll('[data-testid=stCode] code')].map(e => e.innerText)"


def code_blocks(page) -> list[str]:
    return page.evaluate(CODE_JS)


def everything_the_browser_holds(page) -> str:
    """The HTML of every frame, and the page's local and session storage."""
    parts = [frame.content() for frame in page.frames]
    parts.append(page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"))
    return "\n".join(parts)


def use_custom_endpoint(page, url: str, key: str | None = None) -> None:
    """The sidebar: the Custom endpoint, its base URL (and key) typed in."""
    sidebar = page.get_by_test_id("stSidebar")
    choose(page, sidebar.get_by_role("combobox", name="Endpoint"), "Custom (OpenAI-compatible)")
    fields = [("Base URL", url)] + ([("API key", key)] if key else [])
    for label, value in fields:
        box = sidebar.get_by_role("textbox", name=label)
        box.fill(value)
        box.press("Enter")


def app_log(app_dir: Path) -> str:
    """What the app logged so far (unbuffered: see browser_support.streamlit_app)."""
    return (app_dir / "streamlit.log").read_text(errors="replace")


def test_a_custom_endpoints_key_is_sent_and_kept_nowhere(browser, app_url, app_dir) -> None:
    from playwright.sync_api import expect

    base, tmp_path = app_url, app_dir
    with ScriptedServer() as server:
        server.route("/v1/models", Reply.json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]}))
        server.route("/v1/chat/completions", Reply.stream_text(ANSWER, model=MODEL))
        custom_url = server.base_url + "/v1"
        with open_page(browser, timeout_ms=PAGE_TIMEOUT_MS) as page:
            page.goto(base)
            expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible(timeout=90_000)
            try:
                # The sidebar: the Custom endpoint, its URL and key typed in; the model comes from its list.
                use_custom_endpoint(page, custom_url, KEY)
                expect(page.get_by_test_id("stSidebar").get_by_role("combobox", name="Model")).to_have_value(MODEL)

                # One request: the server saw the key as a Bearer token.
                run_prompt(page, PROMPT)
                expect(page.locator(".pg-answer").filter(visible=True).first).to_contain_text("Hello from custom")
                expect(page.get_by_text("Prompt tokens")).to_be_visible()
                sent = [r for r in server.requests if r.path == "/v1/chat/completions"]
                assert len(sent) == 1 and sent[0].json["messages"][-1]["content"] == PROMPT
                assert sent[0].headers.get("authorization") == f"Bearer {KEY}"

                # Get code: the exact request, the key read from an environment variable.
                # its snippets are built when it opens
                open_tab(page, "Get code", page.get_by_text("The exact request below, ready to paste."))
                page.wait_for_function(f"() => {CODE_JS}.length === 3")
                snippets = code_blocks(page)
                assert len(snippets) == 3 and all(custom_url in s for s in snippets), snippets
                assert all(KEY not in s for s in snippets)

                # Save preset: the file holds the request, not the key.
                wait_idle(page)  # the Get code tab's rerun is over: the form below is the page's current one
                page.get_by_text("Save as preset").click()
                name = page.get_by_role("textbox", name="Name", exact=True)
                name.fill("Custom key check")
                name.press("Tab")  # commit the name (a rerun) before the click that reads it
                wait_idle(page)
                page.get_by_role("button", name="Save preset").click()
                expect(page.get_by_text("Saved preset")).to_be_visible()
                preset_file = tmp_path / "presets" / "custom-key-check.json"
                saved = preset_file.read_text(encoding="utf-8")
                assert PROMPT in saved and KEY not in saved

                # The page itself shows the key nowhere but in the field it was typed into.
                assert KEY in page.content()  # the field's value: what the check below must not miss
                for frame in page.frames:
                    assert KEY not in frame.evaluate(HTML_BUT_FIELDS_JS, PASSWORD_FIELDS), frame.url

                # Its share link (the Presets page), decoded: no key either.
                page.get_by_role("link", name="Presets", exact=True).click()
                expect(page.get_by_role("heading", name="Presets", exact=True)).to_be_visible()
                page.get_by_role("button", name="Show share link").click()
                page.wait_for_function(f"() => {CODE_JS}.some(c => c.includes('?preset='))")
                link = next(c for c in code_blocks(page) if "?preset=" in c).strip()
                assert KEY not in link
                shared = from_share_token(parse_qs(urlsplit(link).query)["preset"][0])
                assert PROMPT in preset_to_json(shared) and KEY not in preset_to_json(shared)

                # The run history: the run is stored, the key is not (the database and its WAL file).
                stored = b"".join(p.read_bytes() for p in sorted((tmp_path / "data").rglob("*")) if p.is_file())
                assert b"Hello from custom" in stored
                assert KEY.encode() not in stored

                # The Playground (where the key was typed) after a reload: not in any frame's HTML,
                # nor in the browser's storage.
                page.get_by_role("link", name="Playground", exact=True).click()
                expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible()
                page.reload()
                expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible(timeout=60_000)
                expect(page.get_by_test_id("stSidebar").get_by_role("heading", name="Model")).to_be_visible()
                held = everything_the_browser_holds(page)
                assert "Playground" in held and KEY not in held
            except Exception:
                screenshot(page, "keys-failure.png", full_page=True)
                raise

    # The app's log: it holds the request's line (the custom server's URL), not the key.
    log = app_log(app_dir)
    assert f"HTTP Request: POST {custom_url}/chat/completions" in log and KEY not in log


URL_KEY = "pgtest-url-key-7d2a41"


def test_a_key_in_the_base_urls_query_is_redacted_from_errors_and_logs(browser, app_url, app_dir) -> None:
    """Some servers take the key in the query string (?api_key=...). The server's error quotes
    the URL it was called with; what the app shows, stores and logs has *** there instead."""
    from playwright.sync_api import expect

    base, tmp_path = app_url, app_dir
    with ScriptedServer() as server:
        said = {"detail": f"no such key: GET /v1/models?api_key={URL_KEY}"}
        server.route("/v1/models", Reply.error(401, said))
        # Retryable: the client's retry path, which names the URL, runs too.
        server.route("/v1/chat/completions", Reply.error(
            503, {"error": {"message": f"overloaded at /v1/chat/completions?api_key={URL_KEY}"}},
            headers={"Retry-After": "0"}))
        with open_page(browser, timeout_ms=PAGE_TIMEOUT_MS) as page:
            page.goto(base)
            expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible(timeout=90_000)
            try:
                use_custom_endpoint(page, f"{server.base_url}/v1?api_key={URL_KEY}")
                sidebar = page.get_by_test_id("stSidebar")
                expect(sidebar.get_by_text("Could not list models")).to_be_visible()
                run_prompt(page, PROMPT)
                expect(page.get_by_text("overloaded at")).to_be_visible()
                sent = [r for r in server.requests if r.path.startswith("/v1/chat/completions")]
                assert sent and all(r.path.endswith(f"?api_key={URL_KEY}") for r in sent)  # the key was used

                # The errors are shown with the key redacted; the key is nowhere but in the Base URL field.
                shown = page.get_by_test_id("stApp").inner_text()
                assert "api_key=***" in shown and URL_KEY not in shown
                for frame in page.frames:
                    html = frame.evaluate(HTML_BUT_FIELDS_JS, PASSWORD_FIELDS + ", input[aria-label='Base URL']")
                    assert URL_KEY not in html, frame.url
                stored = b"".join(p.read_bytes() for p in sorted((tmp_path / "data").rglob("*")) if p.is_file())
                assert b"overloaded at" in stored  # the failed run is kept
                assert URL_KEY.encode() not in stored
            except Exception:
                screenshot(page, "keys-url-failure.png", full_page=True)
                raise

    log = app_log(app_dir)
    assert "api_key=***" in log and URL_KEY not in log

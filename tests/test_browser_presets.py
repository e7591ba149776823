"""Browser: presets in headless Chromium against `streamlit run app.py`.

- A share link loads its preset into the Playground (a tampered one loads nothing).
- A preset's `{{variables}}` stay placeholders in the editor; their values, changed in the
  Variables panel, are what Run sends (the scripted server receives the filled text).
- "Open in Playground" on the Presets page goes to the Playground with the preset's messages
  and parameters in its editors (the real navigation: st.switch_page in the running app).
- A preset full of markup (HTML, a script, a javascript: link, a markdown image of an outside
  host, math) is shown as text in the Presets page's preview and diff: nothing runs (a window
  flag stays unset in every frame), nothing is fetched from the outside host.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest

from playground.client.endpoint import LOCAL_MODEL
from playground.client.schema import ChatRequest
from playground.client.token_limit import with_token_limit_field
from playground.presets import Preset, PresetStore, Variable, to_share_token
from playground.ui.presets.diff_view import word_diff_html
from tests.browser_support import (
    PAGE_TIMEOUT_MS,
    RUN_BUTTON,
    choose,
    open_page,
    open_tab,
    screenshot,
    scripted_sandbox,
    streamlit_app,
    wait_for,
    wait_idle,
)
from tests.scripted_server import Reply

pytestmark = pytest.mark.browser

MESSAGE = "Name three zebra-striped teapots."
HOSTILE = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=1</script>",
    "[click](javascript:window.__pwned=1)",
    "![x](http://evil.example/x.png)",
    "$math$",
]
# Elements the hostile text would have made had it been rendered as markup.
RENDERED_JS = """() => [
  ...document.querySelectorAll('img[src="x"], img[src*="evil.example"], a[href^="javascript:"], .katex'),
  ...[...document.scripts].filter(s => s.text.includes('__pwned')),
].length"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(base URL, presets folder, the scripted sandbox): one app for the module; each test uses
    presets of its own."""
    tmp = tmp_path_factory.mktemp("browser-presets")
    # The sandbox is a scripted stand-in: these tests are about presets, not the model.
    with scripted_sandbox() as sandbox, streamlit_app(tmp, sandbox) as base:
        yield base, tmp / "presets", sandbox


@pytest.fixture
def page(browser):
    with open_page(browser, timeout_ms=PAGE_TIMEOUT_MS) as page:
        yield page


def visible_text(page) -> str:
    """The main area's text as shown (innerText leaves out hidden tabs)."""
    return page.get_by_test_id("stMain").inner_text()


def test_opening_a_share_link_loads_the_preset_into_the_playground(app, browser) -> None:
    from playwright.sync_api import expect

    base, _, _ = app
    preset = Preset.new("Teapots", ChatRequest.from_wire({
        "model": LOCAL_MODEL, "temperature": 0.4, "max_completion_tokens": 17,
        "messages": [{"role": "system", "content": "You are a catalogue."}, {"role": "user", "content": MESSAGE}]}))
    token = to_share_token(preset)
    tampered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]

    page = browser.new_page()
    page.goto(f"{base}/?preset={token}")
    expect(page.get_by_text("Loaded “Teapots” from the share link.")).to_be_visible(timeout=90_000)
    # The message editor shows the preset's message (a textarea's value, not its text).
    page.wait_for_function(
        "msg => [...document.querySelectorAll('textarea')].some(t => t.value === msg)", arg=MESSAGE,
        timeout=30_000)
    expect(page.get_by_text("could not be loaded")).to_have_count(0)
    # The whole request, model included (the preset's, not the sidebar's), in the JSON view.
    shown = json.loads(page.locator(".st-key-request_json textarea").input_value())
    assert shown == with_token_limit_field(preset.request, "max_tokens").to_wire()  # the sandbox's field
    page.close()

    page = browser.new_page()
    page.goto(f"{base}/?preset={tampered}")
    expect(page.get_by_text("could not be loaded")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("Loaded “Teapots” from the share link.")).to_have_count(0)
    values = page.evaluate("[...document.querySelectorAll('textarea')].map(t => t.value)")
    assert MESSAGE not in values
    page.close()



def test_variables_stay_placeholders_and_run_sends_their_values(app, page) -> None:
    from playwright.sync_api import expect

    base, _, sandbox = app
    template = "Write one line about {{topic}} for {{reader}}."
    preset = Preset.new("One line (variables)", ChatRequest.from_wire({
        "model": LOCAL_MODEL, "max_completion_tokens": 20, "stream": True,
        "messages": [{"role": "user", "content": template}]}),
        variables=[Variable(name="topic", default="lighthouses"), Variable(name="reader", default="a child")])
    sandbox.add(Reply.stream_text(["A lamp", " that turns", " all night."]))
    chats = lambda: [r for r in sandbox.requests if r.path.endswith("/chat/completions")]  # noqa: E731
    before = len(chats())

    page.goto(f"{base}/?preset={to_share_token(preset)}")
    try:
        expect(page.get_by_text(f"Loaded “{preset.name}” from the share link.")).to_be_visible(timeout=90_000)
        page.wait_for_function(
            "want => [...document.querySelectorAll('textarea')].some(t => t.value === want)", arg=template)
        topic = page.get_by_role("textbox", name="topic", exact=True)
        expect(topic).to_have_value("lighthouses")  # the preset's default
        topic.fill("tide pools")
        topic.press("Tab")  # commit the field
        wait_idle(page)
        run = page.locator(RUN_BUTTON)
        expect(run).to_be_enabled()
        run.click()
        expect(page.get_by_text("A lamp that turns all night.")).to_be_visible()
        wait_for(lambda: len(chats()) > before, 10, "the chat request")
        assert chats()[-1].json["messages"] == [
            {"role": "user", "content": "Write one line about tide pools for a child."}]
        # The editor still holds the template, ready for other values; the JSON tab shows both.
        values = page.evaluate("[...document.querySelectorAll('textarea')].map(t => t.value)")
        assert template in values and "Write one line about tide pools for a child." not in values
        open_tab(page, "JSON", page.locator(".st-key-request_json textarea"))
        sent = page.get_by_test_id("stExpander").filter(has_text="Request as sent")
        expect(sent.get_by_test_id("stCode")).to_contain_text("Write one line about tide pools for a child.")
        shown = json.loads(page.locator(".st-key-request_json textarea").input_value())
        assert shown["messages"] == [{"role": "user", "content": template}]
        screenshot(page, "presets-variables.png", full_page=True)
    except Exception:
        screenshot(page, "presets-variables-failure.png", full_page=True)
        raise


def test_open_in_playground_loads_the_presets_messages_and_parameters(app, page) -> None:
    from playwright.sync_api import expect

    base, folder, _ = app
    preset = Preset.new("Open me: lighthouse", ChatRequest.from_wire({
        "model": "scripted/lighthouse-model", "temperature": 0.35, "max_completion_tokens": 23, "seed": 11,
        "messages": [{"role": "system", "content": "You keep a lighthouse."},
                     {"role": "user", "content": "Describe the lamp in one line."}]}))
    PresetStore(folder).save(preset)

    page.goto(f"{base}/presets")
    expect(page.get_by_role("heading", name="Presets", exact=True)).to_be_visible(timeout=90_000)
    try:
        choose(page, page.get_by_test_id("stMain").get_by_role("combobox", name="Preset"), preset.name)
        expect(page.get_by_role("heading", name=preset.name, exact=True)).to_be_visible()  # its preview
        page.get_by_role("button", name="Open in Playground").click()

        expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible()
        expect(page.get_by_text(f"Loaded “{preset.name}” from the Presets page.")).to_be_visible()
        assert urlsplit(page.url).path in ("/", "/playground"), page.url
        # The messages, in the message editor.
        texts = [m["content"] for m in preset.request.to_wire()["messages"]]
        page.wait_for_function(
            "want => want.every(w => [...document.querySelectorAll('textarea')].some(t => t.value === w))", arg=texts)
        # The parameters: the form's fields, the JSON view (the whole request, model included: the
        # preset's, not the sidebar's), and the sidebar's model picker, which follows the request.
        expect(page.locator(".st-key-p_temperature input")).to_have_value("0.35")
        # (the limit in max_tokens, the field the sandbox reads: issue 22)
        expect(page.locator(".st-key-p_max_tokens input")).to_have_value("23")
        expect(page.locator(".st-key-p_seed input")).to_have_value("11")
        shown = json.loads(page.locator(".st-key-request_json textarea").input_value())
        assert shown == with_token_limit_field(preset.request, "max_tokens").to_wire()
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_role("combobox", name="Model")).to_have_value("scripted/lighthouse-model")
    except Exception:
        screenshot(page, "presets-open-failure.png", full_page=True)
        raise


def hostile(name: str, last_word: str, seed: int, lines: list[str], **fields) -> Preset:
    """Every hostile text in a message of its own (so no HTML block swallows the markdown after
    it), and all of them in one message of several lines (whose line breaks must stay)."""
    messages = [{"role": "system", "content": f"{HOSTILE[0]} {last_word}"}]
    messages += [{"role": "user", "content": text} for text in HOSTILE[1:]]
    messages.append({"role": "assistant", "content": "\n".join(lines)})
    return Preset.new(name, ChatRequest.from_wire({"model": LOCAL_MODEL, "seed": seed, "messages": messages}), **fields)


def test_preview_and_diff_show_markup_as_text(app, page) -> None:
    from playwright.sync_api import expect

    base, folder, _ = app
    store = PresetStore(folder)
    markdown_first = HOSTILE[2:] + HOSTILE[:2]
    left = hostile("Hostile <i>A *x*", "stays", 1, markdown_first, tags=["x<i>y"],
                   description="Described with ![d](http://evil.example/d.png) and " + HOSTILE[0])
    right = hostile("Hostile <i>B *x*", "changed", 2, markdown_first[::-1])
    store.save(left)
    store.save(right)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{base}/presets")
    expect(page.get_by_role("heading", name="Presets", exact=True)).to_be_visible(timeout=90_000)
    try:
        # The preview (Browse tab): each message under its role, exactly as written.
        choose(page, page.get_by_test_id("stMain").get_by_role("combobox", name="Preset"), left.name)
        expect(page.get_by_role("heading", name=left.name, exact=True)).to_be_visible()
        shown = visible_text(page)
        for message in left.request.to_wire()["messages"]:
            assert f"{message['role']}\n\n{message['content']}" in shown, (message, shown)
        assert left.description in shown and "Tags: x<i>y" in shown

        # The diff (Diff tab): both presets' messages side by side, changed words marked.
        page.get_by_role("tab", name="Diff").click()
        main = page.get_by_test_id("stMain")
        choose(page, main.get_by_role("combobox", name="Left"), left.name)
        choose(page, main.get_by_role("combobox", name="Right"), right.name)
        expect(page.get_by_text("Messages (2 of 6 differ)")).to_be_visible()
        # the message cells: the page's stylesheet is an st.html too (the shell's LAYOUT_CSS), with no text
        cells = page.get_by_test_id("stMain").locator("[data-testid=stHtml]").filter(has_text=re.compile(r"\S"))
        expected = []
        for a, b in zip(left.request.to_wire()["messages"], right.request.to_wire()["messages"]):
            expected += [f"{a['role']}\n{a['content']}", f"{b['role']}\n{b['content']}"]
        expect(cells).to_have_count(len(expected))
        assert [cell.inner_text().strip() for cell in cells.all()] == expected
        # each run of changed words marked once: the system prompt's last word, and two runs of the
        # reordered lines (the word diff of the two presets' differing messages says the same)
        pairs = zip(left.request.to_wire()["messages"], right.request.to_wire()["messages"])
        marked = [word_diff_html(a["content"], b["content"]) for a, b in pairs if a != b]
        assert sum(old.count("#ffd7d5") for old, _ in marked) == sum(new.count("#ccf2d1") for _, new in marked) == 3
        assert page.locator("[data-testid=stHtml] span[style*='#ccf2d1']").count() == 3  # added words
        assert page.locator("[data-testid=stHtml] span[style*='#ffd7d5']").count() == 3  # removed words
        screenshot(page, "presets-hostile-diff.png", full_page=True)

        # Nothing ran, nothing was made into an element, nothing was fetched from the outside host.
        for frame in page.frames:
            assert frame.evaluate("typeof window.__pwned") == "undefined", frame.url
            assert frame.evaluate(RENDERED_JS) == 0, frame.url
        assert not [url for url in requested if "evil.example" in url]
    except Exception:
        screenshot(page, "presets-hostile-failure.png", full_page=True)
        raise

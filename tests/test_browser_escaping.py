"""Browser: hostile model and user text is shown as text on every view, in real Chromium.

A ScriptedServer posing as the local sandbox answers with `<img onerror>`, `<script>`, a
`javascript:` link, markdown images pointing at an outside host, `$math$`, an error body
holding HTML and a tool call whose arguments hold the same. On every view that shows such
text (the Playground's answer, token heatmap, token inspector and logprob table, its error
and tool-call views; Compare's panes, summary, logprob tables, aligned diff and Repeat;
History's list and detail) the test asserts that no script ran in any frame, nothing rendered
as an image, link or math, the characters are on screen as text, and no request left for an
outside host. One app process serves the whole module.
"""

from __future__ import annotations

import pytest

from playground.analysis.logprobs import visible_token
from playground.client.client import ChatClient
from playground.client.schema import ChatRequest
from playground.runs.store import RunStore
from tests.browser_support import (
    HOSTILE,
    HOSTILE_IMG,
    HOSTILE_JS_LINK,
    HOSTILE_MATH,
    HOSTILE_MD_IMAGE,
    HOSTILE_SCRIPT,
    PAGE_TIMEOUT_MS,
    USER_BOX,
    assert_inert,
    dataframe_text,
    open_page,
    screenshot,
    shown_text,
    wait_idle,
)
from tests.scripted_server import Reply, token_logprob

pytestmark = pytest.mark.browser

# One token holding every piece at once: the least likely, so the token inspector opens on it.
COMBO = HOSTILE_IMG + HOSTILE_MD_IMAGE + HOSTILE_JS_LINK + HOSTILE_MATH + HOSTILE_SCRIPT
TOKENS = [HOSTILE[0]] + [piece for hostile in HOSTILE[1:] for piece in (" ", hostile)] + ["\n", COMBO]
ANSWER = "".join(TOKENS)
USER_TEXT = f"Repeat after me: {HOSTILE_IMG} {HOSTILE_MD_IMAGE}"
ERROR_DETAIL = "<b>bad</b><img src=x onerror=\"window.__pwned='error'\">" + HOSTILE_MD_IMAGE
TOOL_ARGUMENTS = '{"query": "' + HOSTILE_IMG.replace('"', '\\"') + '", "note": "' + HOSTILE_SCRIPT + '"}'
HOSTILE_MODEL = "<b>m</b><img src=x onerror=\"window.__pwned='model'\">"


def logprobs_for(tokens: list[str]) -> list[dict]:
    """Likely tokens with hostile alternatives, and COMBO the least likely (its own alternative a script)."""
    entries = []
    for n, token in enumerate(tokens):
        if token == COMBO:
            entries.append(token_logprob(token, -4.0, [(HOSTILE_SCRIPT, -0.1), (COMBO, -4.0)]))
            continue
        other = next(h for h in HOSTILE[n % len(HOSTILE):] + HOSTILE if h != token)
        entries.append(token_logprob(token, -0.05, [(token, -0.05), (other, -1.5), (COMBO, -4.0)]))
    return entries


def hostile_answer(tokens: list[str] = TOKENS, **options) -> Reply:
    return Reply.stream_text(tokens, logprobs=logprobs_for(tokens), **options)


@pytest.fixture
def page(browser):
    with open_page(browser, viewport=(1500, 1800), timeout_ms=PAGE_TIMEOUT_MS) as page:
        yield page


def go_to(page, url: str, title: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=60_000)


def drawn(page, selector: str, count: int = 1) -> None:
    """Wait until `count` elements match `selector` on screen (st.html draws after its block)."""
    from playwright.sync_api import expect

    expect(page.locator(selector).filter(visible=True)).to_have_count(count, timeout=PAGE_TIMEOUT_MS)


def assert_shows(text: str, *pieces: str, where: str) -> None:
    missing = [piece for piece in pieces if piece not in text]
    assert not missing, f"{where} does not show {missing} as text; it shows {text[:2000]!r}"


# --- the Playground ---------------------------------------------------------------------------


def _run(page) -> None:
    from playwright.sync_api import expect

    run = page.locator(".st-key-run button >> visible=true")
    expect(run).to_be_enabled(timeout=PAGE_TIMEOUT_MS)
    run.click()


def test_playground_answer_heatmap_inspector_table_error_and_tool_call(page, browser, server, app_url):
    from playwright.sync_api import expect

    go_to(page, app_url, "Playground")
    server.add(hostile_answer(delay_s=0.01))
    box = page.locator(USER_BOX).first
    box.fill(USER_TEXT)
    box.press("Tab")  # commit the text area: the Run button enables
    _run(page)
    page.get_by_text("Prompt tokens").wait_for()
    try:
        drawn(page, ".pg-answer")
        drawn(page, ".pg-heatmap")
        # the answer, exactly as the model wrote it
        assert shown_text(page, ".pg-answer") == ANSWER
        # the heatmap: one cell per token, each token's text as written (newlines marked)
        assert_shows(shown_text(page, ".pg-heatmap"), *HOSTILE, COMBO, where="the token heatmap")
        # the token inspector: opened on the least likely token (COMBO), its alternatives below;
        # every token can be clicked and hovered, and the unsure line lists COMBO
        inspector = page.locator(".pg-inspector").first
        assert_shows(inspector.inner_text(), visible_token(COMBO), *(visible_token(h) for h in [HOSTILE_SCRIPT]),
                     where="the token inspector")
        cells = page.locator(".pg-heatmap .pg-token")
        for n in range(cells.count()):
            cells.nth(n).click()
            cells.nth(n).hover()
        assert_shows(inspector.inner_text(), visible_token(HOSTILE[1]), where="the token inspector")
        page.locator(".pg-unsure-link").first.click()
        assert_shows(page.locator(".pg-unsure").first.inner_text(), visible_token(COMBO), where="the unsure line")
        assert_shows(page.locator(".pg-heatmap-tip").first.inner_text(), visible_token(HOSTILE_SCRIPT),
                     where="the hover tip")
        # the logprob table, built when asked for
        page.get_by_test_id("stCheckbox").filter(has_text="Token table").first.click()
        table = page.locator(".st-key-last_c0_table_on ~ div [data-testid=stDataFrame]").first
        expect(table).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        assert_shows(dataframe_text(table), visible_token(HOSTILE_IMG), visible_token(HOSTILE_SCRIPT),
                     where="the logprob table")
        screenshot(page, "escaping-playground.png", full_page=True)
        assert_inert(page, browser)

        # an error whose body holds HTML: the server's words, as text
        server.add(Reply.error(400, {"detail": ERROR_DETAIL}))
        _run(page)
        alert = page.get_by_test_id("stAlertContentError").filter(has_text="bad")
        expect(alert).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        assert_shows(alert.inner_text(), "<b>bad</b><img src=x", HOSTILE_MD_IMAGE, where="the error message")
        assert_inert(page, browser)

        # a streamed tool call whose arguments hold hostile text
        server.add(Reply.stream_tool_call("lookup", [TOOL_ARGUMENTS[:20], TOOL_ARGUMENTS[20:]]))
        _run(page)
        page.get_by_text("Tool calls").wait_for()
        code = page.get_by_test_id("stCode").filter(has_text="query")  # the arguments (the name is above them)
        assert_shows(code.inner_text(), "<img src=x onerror=", HOSTILE_SCRIPT, where="the tool call's arguments")
        assert_inert(page, browser)
    except Exception:
        screenshot(page, "escaping-playground-failure.png", full_page=True)
        raise


# --- Compare ----------------------------------------------------------------------------------


def test_compare_panes_summary_logprobs_diff_and_repeat(page, browser, server, app_url):
    from playwright.sync_api import expect

    go_to(page, f"{app_url}/compare", "Compare")
    message = page.locator(USER_BOX).last
    if not message.is_visible():
        page.get_by_text("Shared conversation", exact=True).click()
    message.fill(USER_TEXT)
    message.press("Tab")
    wait_idle(page)  # the message's rerun redraws the panes: a box typed in meanwhile can lose it
    # pane 2 asks for a model whose name is hostile user text (its label is shown everywhere)
    model = page.get_by_test_id("stMain").get_by_role("textbox", name="Model").nth(1)
    model.fill(HOSTILE_MODEL)
    model.press("Tab")
    wait_idle(page)
    expect(model).to_have_value(HOSTILE_MODEL)
    # the two answers differ in one token (a script where the other has an image): a diff to show
    other = [HOSTILE_SCRIPT if token == HOSTILE_IMG else token for token in TOKENS]
    server.add(hostile_answer())
    server.add(hostile_answer(other))
    run_all = page.get_by_role("button", name="Run all")
    expect(run_all).to_be_enabled(timeout=60_000)
    run_all.click()
    try:
        expect(page.get_by_text("Token diff", exact=True)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        # the panes: each answer as a heatmap
        drawn(page, ".pg-heatmap", 2)
        assert_shows(shown_text(page, ".pg-heatmap"), *HOSTILE, COMBO, where="Compare's panes")
        # the summary: one row per pane, labelled with the hostile model name
        summary = page.get_by_test_id("stDataFrame").filter(visible=True).first  # under the panes
        assert_shows(dataframe_text(summary), HOSTILE_MODEL, where="Compare's summary")
        # pinned as the baseline, pane 2 is named in the differences' caption
        baseline = page.get_by_role("combobox", name="Baseline")
        baseline.evaluate("e => e.scrollIntoView({block: 'center'})")  # at the window's bottom edge it cannot open
        baseline.click()
        page.get_by_role("option").filter(has_text=HOSTILE_MODEL).click()
        expect(page.get_by_text(f"Differences from the baseline, Pane 2 · {HOSTILE_MODEL}:")).to_be_visible(
            timeout=PAGE_TIMEOUT_MS)
        # the logprob tables side by side, captioned with the pane labels
        main = page.get_by_test_id("stMain")
        assert_shows(main.inner_text(), f"Pane 2 · {HOSTILE_MODEL}", where="the logprob tables' captions")
        # the aligned diff: its headline names the diverging tokens, the table lists them
        headline = page.get_by_test_id("stMarkdownContainer").filter(has_text="First divergence")
        assert_shows(headline.inner_text(), visible_token(HOSTILE_IMG), visible_token(HOSTILE_SCRIPT),
                     where="the diff's headline")
        page.get_by_text("Only rows that differ").click()
        diff = page.locator(".st-key-cmp-diff_only ~ div [data-testid=stDataFrame]").first  # the table under the box
        expect(diff).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        assert_shows(dataframe_text(diff), visible_token(HOSTILE_IMG), visible_token(HOSTILE_SCRIPT),
                     where="the diff table")
        screenshot(page, "escaping-compare.png", full_page=True)
        assert_inert(page, browser)

        # Repeat: two samples that fork where the diff did
        server.add(hostile_answer())
        server.add(hostile_answer(other))
        page.locator(".st-key-cmp-repeat_go button").click()
        expect(page.get_by_text("Distinct answers")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        fork = page.get_by_test_id("stMarkdownContainer").filter(has_text="The samples fork")
        assert_shows(fork.inner_text(), visible_token(HOSTILE_IMG), visible_token(HOSTILE_SCRIPT),
                     where="Repeat's fork line")
        wait_idle(page)  # the run that draws the answers' expanders is over: a click is not undone by it
        for n in (1, 2):
            page.get_by_text(f"Answer {n}: 1 of 2").click()
        drawn(page, ".pg-answer", 2)
        answers = shown_text(page, ".pg-answer")
        assert_shows(answers, ANSWER, "".join(other), where="Repeat's answers")
        screenshot(page, "escaping-repeat.png", full_page=True)
        assert_inert(page, browser)
    except Exception:
        screenshot(page, "escaping-compare-failure.png", full_page=True)
        raise


# --- History ----------------------------------------------------------------------------------


def test_history_list_and_detail(page, browser, server, app_url, app_dir):
    from playwright.sync_api import expect

    # A run of its own, saved as the app saves them, found by a word only it holds; its endpoint
    # and model names are hostile too (they fill the list's columns and the filters).
    server.add(hostile_answer(["zanzibar ", *TOKENS]))
    request = ChatRequest.from_wire({"model": HOSTILE_MODEL, "stream": True,
                                     "messages": [{"role": "user", "content": USER_TEXT}]})
    with ChatClient(server.endpoint(name=HOSTILE_MODEL)) as client:
        run = client.run(request)
    assert run.error is None and run.text.startswith("zanzibar")
    RunStore(app_dir / "data" / "runs.sqlite3").save(run)

    go_to(page, f"{app_url}/history", "History")
    search = page.get_by_role("textbox", name="Search")
    search.fill("zanzibar")
    search.press("Enter")
    try:
        expect(page.get_by_text("Runs 1-1 of 1")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        # the list: the table, and the picker that opens a run
        assert_shows(dataframe_text(page.get_by_test_id("stDataFrame").first), HOSTILE_MODEL, "zanzibar " + HOSTILE_IMG,
                     where="History's list")
        picker = page.get_by_test_id("stSelectbox").filter(has_text="Open a run")
        picker.click()
        option = page.get_by_role("option").filter(has_text="zanzibar")
        assert_shows(option.inner_text(), HOSTILE_MODEL, where="the run picker's option")
        option.click()
        # the detail: its caption, the answer, the heatmap
        expect(page.get_by_role("heading", name=f"Run {run.id[:8]}")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        # the heading is drawn before the caption under it: wait for the caption, then read it
        expect(page.get_by_test_id("stMain")).to_contain_text(f"{HOSTILE_MODEL} · {HOSTILE_MODEL}",
                                                              timeout=PAGE_TIMEOUT_MS)
        assert_shows(page.get_by_test_id("stMain").inner_text(), f"{HOSTILE_MODEL} · {HOSTILE_MODEL}",
                     where="the run's caption")
        drawn(page, ".pg-answer")
        drawn(page, ".pg-heatmap")
        assert shown_text(page, ".pg-answer") == "zanzibar " + ANSWER
        assert_shows(shown_text(page, ".pg-heatmap"), *HOSTILE, COMBO, where="History's heatmap")
        screenshot(page, "escaping-history.png", full_page=True)
        assert_inert(page, browser)
    except Exception:
        screenshot(page, "escaping-history-failure.png", full_page=True)
        raise

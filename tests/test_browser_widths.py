"""Browser (issue 22): any window width. At 800, 1,000 and 1,400 px the Playground and Compare
(and the other pages) show every input wide enough for its value, and no label broken inside a
word: for each word of a label, Range.getClientRects() must give one line (a word split over two
lines, "temp / eratu / re", gives two or three), and the label's lines are at most its words.
Each page is opened once and its window resized through the widths, as a user drags it.
Screenshots go to $PLAYGROUND_SCREENSHOTS (default /tmp/playground-screenshots), widths-*.png.
"""

from __future__ import annotations

import shutil

import pytest

from tests.browser_support import REPO, choose, open_page, screenshot, wait_idle

pytestmark = pytest.mark.browser

WIDTHS = (800, 900, 1000, 1400, 1600)
PAGES = (("", "Playground"), ("compare", "Compare"), ("experiments", "Experiments"), ("presets", "Presets"),
         ("history", "History"))

# Every problem on the page, as text: a label broken inside a word or cut, an input narrower than
# what it holds (its value, or its placeholder when empty), a select box's choice cut, text cut
# with an ellipsis.
PROBLEMS_JS = r"""() => {
    const shown = e => e.checkVisibility({visibilityProperty: true, opacityProperty: true})
        && e.getBoundingClientRect().width > 0;
    const problems = [];
    let measured = {labels: 0, inputs: 0};
    const labels = document.querySelectorAll([
        '[data-testid="stWidgetLabel"] p', '[data-testid="stExpander"] summary p', 'button[role="tab"] p',
        '[data-testid^="stBaseButton"] p', '[data-testid="stSidebarNavLink"] span',
        '[data-testid="stCheckbox"] label p'].join(','));
    for (const label of [...labels].filter(shown)) {
        measured.labels += 1;
        const name = label.textContent.trim();
        const lines = new Set();
        let words = 0;
        const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (const match of node.data.matchAll(/\S+/g)) {
                words += 1;
                const range = document.createRange();
                range.setStart(node, match.index);
                range.setEnd(node, match.index + match[0].length);
                const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
                tops.forEach(top => lines.add(top));
                if (tops.size > 1) {
                    problems.push(`label "${name}": the word "${match[0]}" is broken over ${tops.size} lines`);
                }
            }
        }
        if (lines.size > words) problems.push(`label "${name}": ${lines.size} lines for ${words} words`);
        if (label.scrollWidth > label.clientWidth + 1) problems.push(`label "${name}" is cut`);
    }
    const canvas = document.createElement('canvas').getContext('2d');
    for (const input of [...document.querySelectorAll('input')].filter(shown)) {
        if (!['text', 'number', 'password', ''].includes(input.type) && input.type !== undefined) continue;
        const text = input.value || input.placeholder;
        if (!text) continue;
        measured.inputs += 1;
        const style = getComputedStyle(input);
        canvas.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
        const need = canvas.measureText(text).width;
        const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        if (need > room + 0.5) {
            const owner = input.closest('[class*="st-key-"]');
            const key = owner ? [...owner.classList].find(c => c.startsWith('st-key-'))
                              : input.getAttribute('aria-label');
            problems.push(`input ${key} holds "${text}" (${need.toFixed(0)} px) in ${room.toFixed(0)} px`);
        }
    }
    // (Streamlit 1.67 shows a select box's choice in an input, measured above; older ones in a div)
    for (const select of [...document.querySelectorAll('[data-baseweb="select"]')].filter(shown)) {
        for (const e of select.querySelectorAll('div')) {
            const style = getComputedStyle(e);
            if ([style.overflow, style.overflowX].includes('hidden') && e.scrollWidth > e.clientWidth + 1
                && e.textContent.trim() && shown(e)) {
                problems.push(`select shows "${e.textContent.trim()}" cut`);
                break;
            }
        }
    }
    for (const e of document.querySelectorAll('[data-testid="stMain"] *, [data-testid="stSidebar"] *')) {
        if (getComputedStyle(e).textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth + 1 && shown(e)) {
            problems.push(`text cut with an ellipsis: "${e.textContent.trim().slice(0, 60)}"`);
        }
    }
    return {problems, ...measured};
}"""
# Drawn: Streamlit shows a skeleton where an element's code is still loading (number boxes, select
# boxes, ... load lazily), and the script run is over.
DRAWN_JS = """() => !document.querySelector('[data-testid^="stSkeleton"]')
    && !!document.querySelector('[data-test-script-state="notRunning"]')"""
# What each page shows at least once it has drawn: (labels, inputs with a value or placeholder)
AT_LEAST = {"Playground": (15, 7), "Compare": (15, 7), "Experiments": (10, 0), "Presets": (5, 0), "History": (2, 0)}


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory):
    """The app's folder, with the team presets (and their cases), so Experiments and Presets show
    their tables and forms rather than "no presets yet"."""
    folder = tmp_path_factory.mktemp("widths")
    shutil.copytree(REPO / "presets", folder / "presets")
    return folder


def _open_what_a_user_opens(page, path: str) -> None:
    """Compare: the first pane's Sampling and Length groups (folded at first), so their labelled
    number boxes are measured too."""
    if path == "compare":
        for group in ("Sampling", "Length and stop"):
            page.locator(f".st-key-cmp-0-pgroup_{group.lower().replace(' ', '_')} summary").click()
            wait_idle(page)


# After a resize: the window has its new width and two frames were drawn since (React lays some
# elements out from a ResizeObserver, which reports once per frame).
RESIZED_JS = """async (width) => {
    while (window.innerWidth !== width) await new Promise(done => requestAnimationFrame(done));
    for (let i = 0; i < 2; i++) await new Promise(done => requestAnimationFrame(done));
}"""


def _measure(page, name: str, width: int, at_least: tuple[int, int]) -> list[str]:
    """The problems at this width, once two looks in a row agree: a layout still settling after
    the resize could show a problem a user never sees (or hide one for a frame)."""
    page.wait_for_function(DRAWN_JS)
    page.evaluate(RESIZED_JS, width)
    result = page.evaluate(PROBLEMS_JS)
    for _ in range(5):
        page.wait_for_timeout(100)
        again = page.evaluate(PROBLEMS_JS)
        if again == result:
            break
        result = again
    screenshot(page, f"widths-{name}-{width}.png", full_page=True)
    labels, inputs = at_least
    assert result["labels"] >= labels and result["inputs"] >= inputs, (name, width, result)  # it measured
    return result["problems"]


def _at_each_width(page, name: str, at_least: tuple[int, int]) -> dict[str, list[str]]:
    """The window resized to each width in turn, as a user drags it: {"<name> at <width> px": problems}.
    (One page measured at five widths, not five pages: the suite opened 25 and spent 75 s on it.)"""
    found = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 1000})
        if problems := _measure(page, name.lower().replace(", ", "-").replace(" ", "-"), width, at_least):
            found[f"{name} at {width} px"] = problems
    return found


@pytest.mark.parametrize(("path", "title"), PAGES, ids=[title for _, title in PAGES])
def test_nothing_is_cut_or_broken_mid_word(browser, app_url, path, title):
    found = {}
    with open_page(browser, f"{app_url}/{path}", title, viewport=(WIDTHS[0], 1000)) as page:
        wait_idle(page)
        _open_what_a_user_opens(page, path)
        page.get_by_text("Running on 127.0.0.1").wait_for()  # the sidebar's last element
        found.update(_at_each_width(page, title, AT_LEAST[title]))
        if path == "":  # the Custom endpoint's form in the sidebar: URL, key, token limit field
            choose(page, page.get_by_test_id("stSidebar").get_by_role("combobox").first,
                   "Custom (OpenAI-compatible)")
            page.get_by_text("Token limit field").wait_for()
            wait_idle(page)
            found.update(_at_each_width(page, "Playground, Custom endpoint", AT_LEAST[title]))
    assert found == {}, found

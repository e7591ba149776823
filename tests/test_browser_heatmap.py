"""Browser: the token heatmap component (playground/ui/common/token_heatmap.js) in real Chromium,
on the data playground.ui.common.token_heatmap sends it. The component's module is loaded into a
blank page and called as Streamlit calls it (data, parentElement, setTriggerValue): click, arrow
keys, hover, the unsure threshold and its links, a split UTF-8 character, "Continue with this
token", and hostile tokens that must run and fetch nothing. The app-level tests
(test_browser_escaping, test_browser_branch) show the same component inside the pages."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from playground.client.schema import TokenLogprob, TopLogprob
from playground.ui.common import token_heatmap
from tests.browser_support import (
    HOSTILE,
    HOSTILE_IMG,
    HOSTILE_JS_LINK,
    HOSTILE_SCRIPT,
    assert_inert,
    screenshot,
)

pytestmark = pytest.mark.browser
JS = Path(token_heatmap.__file__).with_name("token_heatmap.js").read_text()


def tok(text: str, p: float, alts: dict[str, float] = (), raw: bytes | None = None) -> TokenLogprob:
    top = [TopLogprob(token=t, logprob=math.log(q), bytes=list(t.encode())) for t, q in dict(alts).items()]
    return TokenLogprob(token=text, logprob=math.log(p), bytes=list(raw if raw is not None else text.encode()),
                        top_logprobs=top)


def mount(page, data: dict) -> None:
    """The component's module, called as Streamlit calls it; its triggers land in window.__triggers."""
    # the state settle() waits for, as Streamlit marks its root
    page.set_content('<html><body style="font-family:sans-serif;width:700px;">'
                     '<div id="host" data-test-script-state="notRunning"></div></body></html>')
    page.evaluate("""async ([js, data]) => {
        const url = URL.createObjectURL(new Blob([js], {type: 'text/javascript'}));
        const module = await import(url);
        window.__triggers = [];
        window.__mount = (d) => module.default({data: d, parentElement: document.getElementById('host'),
            setTriggerValue: (name, value) => window.__triggers.push([name, value])});
        window.__mount(data);
    }""", [JS, json.loads(json.dumps(data))])


def head(page) -> str:
    return page.locator(".pg-inspector-head").inner_text()


SENTENCE = [tok("The", 0.95, {"The": 0.95, "A": 0.04}), tok(" cat", 0.2, {" dog": 0.6, " cat": 0.2}),
            tok(" sat", 0.9, {" sat": 0.9, " ran": 0.05}), tok(" down", 0.25, {" down": 0.25, " up": 0.5}),
            tok(".", 0.99, {".": 0.99})]


def test_click_keys_hover_and_the_threshold(browser):
    page = browser.new_page()
    try:
        mount(page, token_heatmap.heatmap_data(SENTENCE, "run-1", branch=token_heatmap.Branching(True)))
        cells = page.locator(".pg-heatmap .pg-token")
        assert cells.all_text_contents() == ["The", " cat", " sat", " down", "."]
        # opened on the least likely token
        assert head(page).startswith("Position 1:")
        # a click selects; the inspector shows its probability, logprob, bytes and alternatives
        cells.nth(2).click()
        assert head(page).startswith("Position 2:") and "sat" in head(page)
        facts = page.locator(".pg-inspector-facts").inner_text()
        assert "90.0%" in facts and f"{math.log(0.9):.3f}" in facts
        page.locator(".pg-inspector summary").click()
        assert "20 73 61 74" in page.locator(".pg-inspector-facts").inner_text()  # " sat" in hex
        rows = page.locator(".pg-alternatives tr").all_inner_texts()
        assert "␣ran" in rows[2] and "5.0%" in rows[2]
        # arrow keys move the selection, and stop at the ends
        page.keyboard.press("ArrowRight")
        assert head(page).startswith("Position 3:")
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        assert head(page).startswith("Position 4:")
        page.keyboard.press("ArrowLeft")
        assert head(page).startswith("Position 3:")
        assert cells.nth(3).get_attribute("aria-selected") == "true"
        assert cells.nth(4).get_attribute("aria-selected") is None
        # hovering shows the top alternatives
        cells.nth(1).hover()
        tip = page.locator(".pg-heatmap-tip")
        assert tip.is_visible() and "␣dog  60.0%" in tip.inner_text()
        # the threshold: two tokens under 30% are outlined and listed; each link selects its token
        unsure = page.locator(".pg-unsure")
        assert unsure.inner_text().startswith("2 places the model was unsure:")
        assert page.locator(".pg-unsure-token").count() == 2
        links = page.locator(".pg-unsure-link")
        assert links.all_inner_texts() == ["␣cat (20.0%)", "␣down (25.0%)"]
        links.nth(1).click()
        assert head(page).startswith("Position 3:")
        # moving the threshold lists more (or none)
        page.locator(".pg-threshold").fill("95")
        assert unsure.inner_text().startswith("3 places the model was unsure:")
        page.locator(".pg-threshold").fill("0")
        assert "sure of every token" in unsure.inner_text() and page.locator(".pg-unsure-token").count() == 0
        screenshot(page, "heatmap-component.png", full_page=True)
        # "Continue with this token" hands the position and the alternative to Python
        cells.nth(1).click()
        page.locator(".pg-alternatives .pg-branch").first.click()
        assert page.evaluate("window.__triggers") == [["branch", {"position": 1, "rank": 0, "token": " dog"}]]
        assert page.locator(".pg-alternatives tr").nth(2).locator(".pg-branch").count() == 0  # not on the chosen one
        # a redraw of the same answer keeps the selection; a new answer starts again
        page.evaluate("d => window.__mount(d)", token_heatmap.heatmap_data(SENTENCE, "run-1",
                                                                          branch=token_heatmap.Branching(True)))
        assert head(page).startswith("Position 1:")
        cells.nth(4).click()
        page.evaluate("d => window.__mount(d)", token_heatmap.heatmap_data(
            SENTENCE, "run-1", branch=token_heatmap.Branching(False, "This server ignores continue_final_message.")))
        assert head(page).startswith("Position 4:")
        cells.nth(1).click()
        assert page.locator(".pg-branch").count() == 0
        assert page.locator(".pg-branch-why").inner_text() == "This server ignores continue_final_message."
    finally:
        page.close()


def test_a_character_split_across_byte_tokens_reads_as_the_character(browser):
    raw = "雛".encode()  # e9 9b 9b
    tokens = [tok("Hina", 0.9, {"Hina": 0.9}), tok(r"\xe9\x9b", 0.5, raw=raw[:2]), tok(r"\x9b", 0.8, raw=raw[2:]),
              tok("!", 0.9)]
    page = browser.new_page()
    try:
        mount(page, token_heatmap.heatmap_data(tokens, "jp"))
        cells = page.locator(".pg-heatmap .pg-token")
        assert cells.all_text_contents() == ["Hina", "雛", "!"]
        cells.nth(1).click()
        assert head(page).startswith("Tokens 1-2:") and "雛" in head(page) and "one character in 2 tokens" in head(page)
        assert page.locator(".pg-inspector-facts").count() == 2  # each token's own numbers
        facts = page.locator(".pg-inspector-facts").all_inner_texts()
        assert "40.0%" in page.locator(".pg-unsure").inner_text() or "50.0%" in facts[0]
        page.locator(".pg-inspector summary").first.click()
        assert "e9 9b" in page.locator(".pg-inspector-facts").first.inner_text()
    finally:
        page.close()


def test_hostile_tokens_run_and_fetch_nothing(browser):
    tokens = [tok(text, 0.2, {HOSTILE_SCRIPT: 0.5, text: 0.2, HOSTILE_JS_LINK: 0.1}) for text in HOSTILE]
    page = browser.new_page()
    try:
        mount(page, token_heatmap.heatmap_data(tokens, "evil", branch=token_heatmap.Branching(True)))
        cells = page.locator(".pg-heatmap .pg-token")
        assert cells.all_text_contents() == list(HOSTILE)
        for n in range(len(HOSTILE)):
            cells.nth(n).click()
            cells.nth(n).hover()
        page.locator(".pg-unsure-link").first.click()
        assert HOSTILE_IMG.replace(" ", "␣") in page.locator(".pg-inspector-head").inner_text()
        assert page.locator(".pg-heatmap-root img, .pg-heatmap-root script, .pg-heatmap-root a").count() == 0
        assert_inert(page, browser)
    finally:
        page.close()


def test_the_legend_wraps_in_a_narrow_column(browser):
    """A Compare pane of four is about 250 px wide: the legend must wrap, not overflow."""
    tokens = [tok(word, math.exp(-0.5 * i), {word: math.exp(-0.5 * i), " other": 0.1})
              for i, word in enumerate(["A", " narrow", " pane"])]
    page = browser.new_page()
    try:
        mount(page, token_heatmap.heatmap_data(tokens, "narrow", branch=token_heatmap.Branching(True)))
        page.evaluate("document.body.style.width = '240px'")
        legend = page.evaluate("""() => {
            const e = document.querySelector('.pg-heatmap-legend');
            const keys = [...e.children].map(k => k.getBoundingClientRect());
            return {scroll: e.scrollWidth, client: e.clientWidth, right: Math.max(...keys.map(k => k.right)),
                    rows: new Set(keys.map(k => Math.round(k.top))).size,
                    tallest: Math.max(...[...e.children].slice(1, -1).map(k => k.getBoundingClientRect().height))};
        }""")
        assert legend["scroll"] <= legend["client"] and legend["right"] <= 248, legend
        assert legend["rows"] >= 2, legend  # it wrapped
        assert legend["tallest"] < 2 * 16, legend  # and no key was broken across lines
        # the inspector (its alternatives and their buttons) stays inside the column: it scrolls
        right = page.evaluate("document.querySelector('.pg-inspector').getBoundingClientRect().right")
        assert right <= 248
        screenshot(page, "heatmap-narrow.png")
    finally:
        page.close()


def test_sampled_logprob_beside_the_models_and_drawn_from_the_tail(browser):
    sure = tok(" yes", 0.8, {" yes": 0.8, " no": 0.15})
    tail = tok(" maybe", 0.02, {" yes": 0.8, " no": 0.15, " maybe": 0.02})
    sampled = [TokenLogprob.model_validate({**sure.model_dump(), "sampled_logprob": 0.0}),
               TokenLogprob.model_validate({**tail.model_dump(), "sampled_logprob": math.log(0.5)})]
    page = browser.new_page()
    try:
        mount(page, token_heatmap.heatmap_data(sampled, "sampled"))
        cells = page.locator(".pg-heatmap .pg-token")
        cells.nth(0).click()
        facts = page.locator(".pg-inspector-facts").inner_text()
        assert "model's probability 80.0%" in facts and "after the sampler 100.0%" in facts
        assert page.locator(".pg-tail").count() == 0  # the greedy pick
        cells.nth(1).click()
        assert "after the sampler 50.0%" in page.locator(".pg-inspector-facts").inner_text()
        flag = page.locator(".pg-tail").inner_text()
        assert flag.startswith("Drawn from the tail: greedy decoding would have taken ' yes'") and "95%" in flag
        # a server without the field: the model's probability only
        mount(page, token_heatmap.heatmap_data([sure, tail], "plain"))
        page.locator(".pg-heatmap .pg-token").nth(0).click()
        facts = page.locator(".pg-inspector-facts").inner_text()
        assert "probability 80.0%" in facts and "sampler" not in facts and "model's" not in facts
    finally:
        page.close()

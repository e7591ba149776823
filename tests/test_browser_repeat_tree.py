"""Browser: Compare's Repeat draws its samples as a prefix tree (st.graphviz_chart over our DOT):
each fork's branches with their counts, a leaf picked shows its sample; nothing is fetched from
another host."""

from __future__ import annotations

import pytest

from tests.browser_support import PAGE_TIMEOUT_MS, USER_BOX, open_page, screenshot, wait_idle
from tests.scripted_server import Reply, token_logprob
from tests.support import wait_for

pytestmark = pytest.mark.browser


def sample(tokens: list[str]) -> Reply:
    return Reply.stream_text(tokens, logprobs=[token_logprob(t, -0.2 - 0.1 * n, [(t, -0.2)]) for n, t in
                                               enumerate(tokens)])


def test_repeat_draws_the_prefix_tree_and_a_leaf_shows_its_sample(browser, server, app_url):
    from playwright.sync_api import expect

    with open_page(browser, f"{app_url}/compare", viewport=(1400, 1800)) as page:
        expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible(timeout=60_000)
        message = page.locator(USER_BOX).last
        if not message.is_visible():
            page.get_by_text("Shared conversation", exact=True).click()
        # each edit waits out the rerun it starts: one typed during another's rerun could be lost
        wait_idle(page)
        message.fill("Colour of the sky?")
        message.press("Tab")
        wait_idle(page)
        model = page.get_by_test_id("stMain").get_by_role("textbox", name="Model").first  # Repeat sends pane 1's
        model.fill("scripted/scripted-model")
        model.press("Tab")
        wait_idle(page)
        expect(model).to_have_value("scripted/scripted-model")
        k = page.get_by_role("spinbutton", name="k")
        k.fill("3")
        k.press("Tab")
        for tokens in (["The", " sky", " is", " blue", "."], ["The", " sky", " is", " grey", "."],
                       ["The", " sky", " is", " blue", "."]):
            server.add(sample(tokens))
        wait_idle(page)
        page.locator(".st-key-cmp-repeat_go button").click()
        try:
            expect(page.get_by_text("Where the samples go their own way")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            chart = page.get_by_test_id("stGraphVizChart")
            expect(chart.locator("svg")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            labels = chart.locator("svg text").all_text_contents()
            assert "The sky is" in labels and "×3 · mean logprob -0.30" in labels, labels
            assert any(text.startswith("Leaf 1: ") for text in labels) and "×2 · mean logprob -0.55" in labels, labels
            # a leaf picked: its sample's heatmap
            wait_idle(page)
            picker = page.get_by_role("combobox", name="Leaf")
            option = page.get_by_role("option").filter(has_text="Leaf 2")  # the one that went " grey"

            def opened() -> bool:  # a redraw of the page may close the list as it opens: open it again
                if option.count():
                    return True
                picker.click()
                return False

            wait_for(opened, 20, "the Leaf list to open")
            option.click()
            heatmap = page.locator(".pg-heatmap").last  # (the samples ran at once: which one is not known)
            expect(heatmap).to_contain_text("grey", timeout=PAGE_TIMEOUT_MS)
            assert heatmap.inner_text().replace("\n", "") == "The sky is grey."
            screenshot(page, "repeat-prefix-tree.png", full_page=True)
            browser.check_offline()
        except Exception:
            screenshot(page, "repeat-prefix-tree-failure.png", full_page=True)
            raise

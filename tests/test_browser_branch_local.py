"""Browser, on the real local model: the Playground's answer with logprobs, a token clicked in the
heatmap, "Continue with this token" on one of its alternatives, and Compare showing the original
and the branch side by side from the branch point."""

from __future__ import annotations

import re

import pytest

from playground.runs.store import RunStore
from tests.browser_support import PAGE_TIMEOUT_MS, open_page, run_prompt, screenshot, streamlit_app, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]


@pytest.fixture(scope="module")
def local_app(tmp_path_factory, sandbox):
    folder = tmp_path_factory.mktemp("branch-local")
    with streamlit_app(folder, sandbox) as base:
        yield base, folder


def test_continue_with_another_token_on_the_local_model(browser, local_app):
    from playwright.sync_api import expect

    base, folder = local_app
    with open_page(browser, base, "Playground", viewport=(1440, 1600)) as page:
        try:
            run_prompt(page, "Name three colours.")
            cells = page.locator(".pg-heatmap .pg-token")
            expect(cells.first).to_be_visible(timeout=120_000)
            wait_idle(page)
            cells.nth(2).click()
            inspector = page.locator(".pg-inspector").first
            expect(inspector).to_contain_text("Position 2:")
            rows = inspector.locator("tr").filter(has=page.get_by_role("button", name="Continue with this token"))
            expect(rows.first).to_be_visible()
            shown = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())]
            # an empty token (shown as ∅) is a real choice, but it leaves no text to find on the right
            pick = next((i for i, text in enumerate(shown) if text != "\u2205"), None)
            assert pick is not None, f"every alternative at position 2 is empty: {shown}"
            alternative = shown[pick]
            rows.nth(pick).get_by_role("button", name="Continue with this token").click()
            expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible(timeout=120_000)
            expect(page.get_by_text(re.compile(r"side by side \(from the branch point, token 2\)"))).to_be_visible(
                timeout=PAGE_TIMEOUT_MS)
            right = page.locator(".pg-text-diff-b").inner_text()
            assert right.startswith(alternative.replace("\u2423", " ")), (right, alternative)
            runs = RunStore(folder / "data" / "runs.sqlite3")
            branch = runs.get(runs.list(limit=1)[0].id)
            assert branch.branched_from is not None and branch.branched_from.position == 2
            assert branch.request.to_wire()["continue_final_message"] is True
            page.locator(".pg-text-diff-a").scroll_into_view_if_needed()
            screenshot(page, "branch-local-compare.png", full_page=True)
        except Exception:
            screenshot(page, "branch-local-failure.png", full_page=True)
            raise

"""Browser: the Playground's heatmap on a scripted stream whose tokens split one Japanese
character across two byte tokens (shown as the character, its bytes in the inspector), and
"Continue with this token": the capability probe, the branched request (the answer up to the
token, then the alternative, continued), Compare opening with the original and the branch side
by side from the branch point, and the branch's record saying where it came from."""

from __future__ import annotations

import re

import pytest

from playground.runs import continuation
from playground.runs.store import RunStore
from tests.browser_support import PAGE_TIMEOUT_MS, choose, expect_texts, run_prompt, screenshot, wait_idle
from tests.scripted_server import Reply, make_chunk
from tests.support import chat_requests, wait_for

pytestmark = pytest.mark.browser
SAKURA = "桜".encode()  # e6 a1 9c


def entry(token: str, logprob: float, raw: bytes, alts: list[tuple[str, float]]) -> dict:
    return {"token": token, "logprob": logprob, "bytes": list(raw),
            "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in alts]}


def japanese_stream() -> Reply:
    """As a real server streams it: the first byte token's delta holds no text (half a character),
    the second the whole character; each token's logprobs with its bytes."""
    pieces = [("Sakura ", entry("Sakura ", -0.1, b"Sakura ", [("Sakura ", -0.1)])),
              ("", entry(r"\xe6\xa1", -0.7, SAKURA[:2], [(r"\xe6\xa1", -0.7)])),
              ("桜", entry(r"\x9c", -0.05, SAKURA[2:], [(r"\x9c", -0.05)])),
              (" is", entry(" is", -0.2, b" is", [(" is", -0.2), (" was", -2.0)])),
              (" pink", entry(" pink", -1.5, b" pink", [(" red", -0.9), (" pink", -1.5), (" white", -2.2)]))]
    events = [make_chunk("", role="assistant")]
    events += [make_chunk(text, logprobs=[logprob]) for text, logprob in pieces]
    events += [make_chunk(finish_reason="stop"),
               make_chunk(choices=[], usage={"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10})]
    return Reply.sse(events)


def test_a_split_character_and_a_branch_from_an_alternative(page, server, app_dir):
    from playwright.sync_api import expect

    server.add(japanese_stream())
    run_prompt(page, "What is sakura?")
    cells = page.locator(".pg-heatmap .pg-token")
    try:
        expect_texts(cells, ["Sakura ", "桜", " is", " pink"])
        cells.nth(1).click()
        inspector = page.locator(".pg-inspector").first
        assert "one character in 2 tokens" in inspector.inner_text()
        inspector.locator("summary").first.click()
        assert "e6 a1" in inspector.inner_text()
        # " pink" is the unsure one: the line above the answer links to it
        expect(page.locator(".pg-unsure").first).to_contain_text("1 place the model was unsure: ␣pink (22.3%)")
        page.locator(".pg-unsure-link").filter(has_text="pink").click()
        screenshot(page, "branch-playground.png", full_page=True)

        # branch: the probe (the server continues "1, ..., 6," with 7), then the continuation
        server.add(Reply.json(200, {"id": "p", "object": "chat.completion", "created": 0, "model": "scripted/model",
                                    "choices": [{"index": 0, "message": {"role": "assistant", "content": " 7"},
                                                 "finish_reason": "length"}]}))
        server.add(Reply.stream_text([" and", " white"], logprobs=[
            entry(" and", -0.3, b" and", [(" and", -0.3)]), entry(" white", -0.6, b" white", [(" white", -0.6)])]))
        before = len(chat_requests(server))
        wait_idle(page)
        inspector.locator("tr").filter(has_text="red").get_by_role("button", name="Continue with this token").click()
        wait_for(lambda: len(chat_requests(server)) >= before + 2, 30, "the probe and the branch to reach the server")
        probe, branch = chat_requests(server)[before:before + 2]
        assert probe.json["messages"][-1]["content"] == continuation.PROBE_PREFIX
        assert branch.json["messages"][-1] == {"role": "assistant", "content": "Sakura 桜 is red"}
        assert branch.json["continue_final_message"] is True and branch.json["add_generation_prompt"] is False

        # Compare: the original and the branch side by side, the text view from the branch point
        expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        expect(page.get_by_text("Token diff", exact=True)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        expect(page.get_by_text(re.compile(r"side by side \(from the branch point, token 4\)"))).to_be_visible(
            timeout=PAGE_TIMEOUT_MS)
        expect(page.get_by_text("at token 4: the answer continues 'Sakura 桜 is red'")).to_be_visible()
        assert page.locator(".pg-text-diff-a").inner_text() == " pink"
        assert page.locator(".pg-text-diff-b").inner_text() == " red and white"
        headline = page.get_by_test_id("stMarkdownContainer").filter(has_text="First divergence")
        assert "First divergence at token 0: A has ␣pink (p=22.3%), B has ␣red (p=40.7%)" in headline.inner_text()
        page.locator(".pg-text-diff-a").scroll_into_view_if_needed()
        screenshot(page, "branch-compare.png", full_page=True)

        # the branch's record says where it came from
        runs = RunStore(app_dir / "data" / "runs.sqlite3")
        latest = runs.get(runs.list(limit=1)[0].id)
        assert latest.branched_from is not None and latest.branched_from.position == 4
        assert latest.branched_from.token == " red"

        # History: the branch names the run it came from, and that run names its branch
        original = latest.branched_from.run_id
        page.goto(page.url.rsplit("/", 1)[0] + "/history")
        for needle, heading, line in (("and white", latest.id, f"Branched from run {original[:8]} at token 4"),
                                      ("pink", original, f"Branches of this run: {latest.id[:8]} at token 4")):
            search = page.get_by_role("textbox", name="Search")
            search.fill(needle)
            search.press("Enter")
            expect(page.get_by_text("Runs 1-1 of 1")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            choose(page, page.get_by_test_id("stSelectbox").filter(has_text="Open a run"),
                   page.get_by_role("option").filter(has_text=needle))
            expect(page.get_by_role("heading", name=f"Run {heading[:8]}")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            expect(page.get_by_text(line)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        screenshot(page, "branch-history.png", full_page=True)
    except Exception:
        screenshot(page, "branch-failure.png", full_page=True)
        raise

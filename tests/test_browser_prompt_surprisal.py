"""Browser: the prompt's surprisal under the Playground's answer, from a vLLM-shaped scripted
server (prompt_logprobs on the stream's last chunk), with a hostile prompt token shown as text."""

from __future__ import annotations

import pytest

from tests.browser_support import HOSTILE_IMG, PAGE_TIMEOUT_MS, assert_inert, run_prompt, screenshot
from tests.scripted_server import Reply, make_chunk

pytestmark = pytest.mark.browser
QUESTION = f"Capital of France? {HOSTILE_IMG}"
PROMPT = [("<|im_start|>", None), ("user", -0.05), ("\n", -0.01), ("Capital", -9.0), (" of", -0.7),
          (" France", -1.2), ("?", -0.4), (" ", -0.3), (HOSTILE_IMG, -14.0), ("<|im_end|>", -0.02)]


def vllm_reply() -> Reply:
    entries = [None if lp is None else {str(100 + n): {"logprob": lp, "rank": 1, "decoded_token": text},
                                         "5": {"logprob": -0.05, "rank": 1, "decoded_token": " Paris"}}
               for n, (text, lp) in enumerate(PROMPT)]
    last = make_chunk(choices=[], usage={"prompt_tokens": len(PROMPT), "completion_tokens": 2,
                                         "total_tokens": len(PROMPT) + 2})
    last["prompt_logprobs"] = entries
    return Reply.sse([make_chunk("", role="assistant"), make_chunk("Paris"), make_chunk("."),
                      make_chunk(finish_reason="stop"), last])


def test_the_prompt_coloured_by_surprisal(page, browser, server):
    from playwright.sync_api import expect

    server.add(vllm_reply())
    run_prompt(page, QUESTION)
    try:
        expect(page.get_by_text("How surprising the prompt was")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        tokens = page.locator(".pg-prompt-token")
        assert tokens.all_inner_texts() == ["Capital", " of", " France", "?", " ", HOSTILE_IMG]
        head = page.locator(".pg-prompt-message").inner_text()
        assert "user message 1" in head and "most surprising: <img" in head and "(20.2 bits)" in head
        assert "red marks a token of the prompt the model did not expect" in page.locator(
            ".pg-prompt-legend").inner_text()
        page.locator(".pg-prompt-legend").scroll_into_view_if_needed()
        screenshot(page, "prompt-surprisal.png", full_page=True)
        assert_inert(page, browser)
    except Exception:
        screenshot(page, "prompt-surprisal-failure.png", full_page=True)
        raise

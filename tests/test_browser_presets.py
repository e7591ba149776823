"""Browser: a share link opened in headless Chromium loads its preset into the Playground."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.endpoint import LOCAL_MODEL
from playground.presets import Preset, to_share_token
from playground.schema import ChatRequest
from tests.browser_support import chromium, scripted_sandbox, streamlit_app

MESSAGE = "Name three zebra-striped teapots from the share link."


@pytest.fixture
def app_url(tmp_path: Path):
    # The sandbox is a scripted stand-in: this test is about the share link, not the model.
    with scripted_sandbox() as sandbox, streamlit_app(tmp_path, sandbox) as base:
        yield base


@pytest.mark.browser
def test_opening_a_share_link_loads_the_preset_into_the_playground(app_url: str) -> None:
    from playwright.sync_api import expect

    preset = Preset.new("Teapots", ChatRequest.from_wire({
        "model": LOCAL_MODEL, "temperature": 0.4, "max_completion_tokens": 17,
        "messages": [{"role": "system", "content": "You are a catalogue."}, {"role": "user", "content": MESSAGE}]}))
    token = to_share_token(preset)
    tampered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]

    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{app_url}/?preset={token}")
        expect(page.get_by_text("from the share link")).to_be_visible(timeout=90_000)
        # The message editor shows the preset's message (a textarea's value, not its text).
        page.wait_for_function(
            "msg => [...document.querySelectorAll('textarea')].some(t => t.value === msg)", arg=MESSAGE,
            timeout=30_000)
        expect(page.get_by_text("could not be loaded")).to_have_count(0)

        page = browser.new_page()
        page.goto(f"{app_url}/?preset={tampered}")
        expect(page.get_by_text("could not be loaded")).to_be_visible(timeout=90_000)
        expect(page.get_by_text("from the share link")).to_have_count(0)
        values = page.evaluate("[...document.querySelectorAll('textarea')].map(t => t.value)")
        assert MESSAGE not in values

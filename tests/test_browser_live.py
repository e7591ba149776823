"""Browser: a Playground stream lives on through anything but `Stop generating`, in headless
Chromium against `streamlit run app.py` and a ScriptedServer posing as the local sandbox.

- An edit while the answer streams (a parameter, the system prompt) keeps the stream going to
  its end (not "Stopped by you"), and the edit is kept.
- A switch to History and back finds the run still streaming, or finished whole.
- `Stop generating` keeps the partial text and says so; a second Stop, or a second Run
  clicked at once, breaks nothing and starts no second stream.
- The answer comes down the live channel the page opened before Run was pressed.
- The Run bar stays in view at the bottom of the window beside a conversation taller than it
  (its sticky CSS finds the column by the tabs' st-key-* class, no internal class of Streamlit's).
- A dropped live channel is tried again after 1 s, twice as long after each failure, at most
  30 s; once connected, a drop starts again at 1 s (live_text.js on its own, its clock and
  WebSocket replaced by recorders).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_support import ANSWERS_JS, USER_BOX, open_page, screenshot, wait_answer, wait_idle
from tests.scripted_server import Reply
from tests.support import chat_requests, wait_for

pytestmark = pytest.mark.browser

RUN = ".st-key-run button >> visible=true"
SYSTEM_BOX = "textarea[aria-label='System prompt']"
TOKENS = [f"w{i:02d} " for i in range(40)]  # 40 tokens 0.1 s apart: a 4 s answer
FULL = "".join(TOKENS).strip()


def _start(page, server, text: str, delay_s: float = 0.1) -> None:
    """Type a message, press Run, and wait until the answer is visibly streaming."""
    from playwright.sync_api import expect

    server.add(Reply.stream_text(TOKENS, delay_s=delay_s))
    box = page.locator(USER_BOX).first
    box.fill(text)
    box.press("Tab")
    run = page.locator(RUN)
    expect(run).to_be_enabled()
    run.click()
    wait_answer(page, "a[0].includes('w03') && !a[0].includes('w39')")


def _wait_finished_whole(page) -> None:
    page.get_by_text("Prompt tokens").wait_for()
    wait_answer(page, f"a[0].trim() === {FULL!r}")
    assert page.get_by_text("Stopped by you").count() == 0
    assert page.get_by_role("button", name="Stop generating").count() == 0


def test_editing_while_it_streams_keeps_the_stream_and_the_edit(page, server):
    from playwright.sync_api import expect

    before = len(chat_requests(server))
    _start(page, server, "Count slowly")
    temperature = page.locator(".st-key-p_temperature input").first
    temperature.fill("1.3")
    temperature.press("Tab")
    system = page.locator(SYSTEM_BOX).first
    system.fill("Be brief.")
    system.press("Tab")
    wait_answer(page, "a[0].includes('w20')")  # still streaming after both edits
    assert page.get_by_text("Stopped by you").count() == 0
    expect(page.locator(RUN)).to_be_disabled()  # one run at a time
    _wait_finished_whole(page)
    expect(page.locator(RUN)).to_be_enabled()
    # the edits are kept, and go out with the next run; the first run went out as it was
    assert float(temperature.input_value()) == 1.3
    assert page.locator(SYSTEM_BOX).first.input_value() == "Be brief."
    first = chat_requests(server)[before]
    assert first.finished and first.json.get("temperature") != 1.3
    assert len(chat_requests(server)) == before + 1
    screenshot(page, "live-edit.png")


def test_history_and_back_finds_the_run_streaming_or_whole(page, server):
    from playwright.sync_api import expect

    _start(page, server, "Keep going")
    page.get_by_role("link", name="History", exact=True).click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    streaming = chat_requests(server)[-1]
    away_from = streaming.events_sent
    wait_for(lambda: streaming.events_sent >= away_from + 5, 10, "the answer to go on while History shows")
    page.get_by_role("link", name="Playground", exact=True).click()
    page.get_by_role("heading", name="Playground").wait_for()
    wait_answer(page, "a[0].includes('w00')")
    assert page.get_by_text("Stopped by you").count() == 0
    _wait_finished_whole(page)
    received = chat_requests(server)[-1]
    assert received.finished


def test_stop_keeps_partial_text_and_a_second_stop_or_run_breaks_nothing(page, server):
    from playwright.sync_api import expect

    before = len(chat_requests(server))
    server.add(Reply.stream_text(TOKENS, delay_s=0.1))
    box = page.locator(USER_BOX).first
    box.fill("Go")
    box.press("Tab")
    run = page.locator(RUN)
    expect(run).to_be_enabled()
    run.dblclick()  # a double click on Run: one stream only
    wait_answer(page, "a[0].includes('w03')")
    stop = page.get_by_role("button", name="Stop generating")
    stop.dblclick()  # and on Stop: it stops once
    page.get_by_text("Stopped by you").wait_for()
    text = page.evaluate(ANSWERS_JS)[0].strip()
    assert text.startswith("w00 w01 w02 w03") and "w39" not in text
    expect(page.locator(RUN)).to_be_enabled()
    assert page.get_by_role("button", name="Stop generating").count() == 0
    assert len(chat_requests(server)) == before + 1
    received = chat_requests(server)[-1]
    assert received.wait_closed(5) and not received.finished
    screenshot(page, "live-stopped.png")


def test_the_answer_comes_down_the_live_channel_opened_before_run(page, server, app_url):
    """The answer box is on the page, connected to its live channel, before Run is pressed: the
    run's text comes down that one WebSocket to the app's own host (no connection is opened
    for it, no page redraw carries it), and the box goes when the finished run is shown."""

    sockets: list = []
    frames: dict = {}

    def opened(ws) -> None:
        sockets.append(ws)
        frames[ws.url] = []
        ws.on("framereceived", lambda payload: frames[ws.url].append(payload if isinstance(payload, str) else ""))

    page.on("websocket", opened)
    with page.expect_websocket(lambda ws: "/_playground/live/" in ws.url):  # the answer box's channel
        page.reload()  # the page's sockets from their start
    page.locator(USER_BOX).first.wait_for()
    wait_idle(page)
    opened_before_run = len(sockets)

    _start(page, server, "Count over the channel")
    live = [ws.url for ws in sockets if "/_playground/live/" in ws.url]
    # by its id (the URL): a rerun while the page loads can connect the same channel again (seen in CI)
    carriers = sorted({url for url in live if any("w03" in frame for frame in frames[url])})
    assert len(carriers) == 1, live  # the text came down one live channel
    assert carriers[0] in [ws.url for ws in sockets[:opened_before_run]]  # opened before Run was pressed
    assert not [ws.url for ws in sockets[opened_before_run:]]  # and nothing was opened for the run
    host = app_url.split("//", 1)[1]
    assert carriers[0].startswith(f"ws://{host}/_playground/live/")  # to the app's own host
    _wait_finished_whole(page)
    assert [answer.strip() for answer in page.evaluate(ANSWERS_JS)] == [FULL]
    assert page.locator(".pg-answer").count() == 2  # the finished run's, and the live box: hidden, empty
    assert page.locator(".pg-answer").filter(visible=True).count() == 1


def test_a_slow_first_token_shows_an_empty_answer_not_the_last_one(page, server):
    """The page learns of a new run before its channel has any text for it (the server is slow to
    answer): the answer box shows nothing of the last answer meanwhile."""
    from playwright.sync_api import expect

    server.add(Reply.stream_text(["old ", "answer"]))
    box = page.locator(USER_BOX).first
    box.fill("First")
    box.press("Tab")
    page.locator(RUN).click()
    page.get_by_text("Prompt tokens").wait_for()
    wait_answer(page, "a[0].trim() === 'old answer'")

    before = len(chat_requests(server))
    server.add(Reply.stream_text(["new ", "one"], head_delay_s=2.0))
    page.locator(RUN).click()
    expect(page.get_by_role("button", name="Stop generating")).to_be_visible()  # the page drew the new run
    wait_for(lambda: len(chat_requests(server)) > before, 10, "the new request to reach the server")
    # the last answer goes (the page's redraw for the new run replaces its block)...
    page.wait_for_function(f"() => !{ANSWERS_JS}.some(a => a.includes('old'))", timeout=1_500)
    # ...while the server has still not answered (its status line comes after 2 s)
    assert chat_requests(server)[-1].answered_at is None
    wait_answer(page, "a[0].trim() === 'new one'")


def test_the_run_bar_stays_in_view_beside_a_long_conversation(browser, app_url):
    from playwright.sync_api import expect

    with open_page(browser, app_url, "Playground", viewport=(1400, 700)) as page:
        page.locator(USER_BOX).first.wait_for()
        boxes = page.locator("textarea[aria-label='Message text']")  # not the form's boxes, drawn as they come
        for _ in range(4):  # the messages reach far below the window
            count = boxes.count()
            page.get_by_role("button", name="Add message").click()
            expect(boxes).to_have_count(count + 1)
        page.get_by_role("heading", name="Playground").scroll_into_view_if_needed()
        user_box = page.locator(USER_BOX).first.bounding_box()
        assert page.get_by_role("button", name="Add message").bounding_box()["y"] > 700  # the talk goes on below
        run = page.locator(RUN).bounding_box()
        assert user_box["y"] < run["y"] and run["y"] + run["height"] <= 700  # the bar, in view at its bottom
        screenshot(page, "live-run-bar-sticks.png")


LIVE_TEXT_JS = Path(__file__).resolve().parents[1] / "playground" / "ui" / "common" / "live_text.js"
# live_text.js in a blank page: WebSocket and setTimeout record what the component asks of them,
# and the test plays the network (a socket opens, closes) and the clock (a timer fires).
RECORDERS_JS = """() => {
    window.sockets = [];
    window.timers = [];
    window.WebSocket = class { constructor(url) { this.url = String(url); sockets.push(this); } close() {} };
    window.setTimeout = (callback, ms) => timers.push({callback, ms});
    window.clearTimeout = () => {};
}"""
MOUNT_JS = """async (source) => {
    const module = await import(URL.createObjectURL(new Blob([source], {type: "text/javascript"})));
    const parentElement = document.createElement("div");
    document.body.append(parentElement);
    module.default({parentElement, data: {url: "http://127.0.0.1:9/_playground/live/token", run: 0, live: false,
                                         cursor: true, caption: "", style: "", holder: ""}});
}"""
# The last socket closes with `code`; the wait the component then asks for (null: none), and the
# timer fired, as the clock would.
DROP_JS = """(code) => {
    const before = timers.length;
    sockets.at(-1).onclose({code});
    if (timers.length === before) return null;
    const timer = timers.at(-1);
    timer.callback();
    return timer.ms;
}"""


def test_a_dropped_live_channel_is_tried_again_with_backoff(browser):
    page = browser.new_page()
    try:
        page.evaluate(RECORDERS_JS)
        page.evaluate(MOUNT_JS, LIVE_TEXT_JS.read_text())
        assert page.evaluate("sockets.map(s => s.url)") == ["ws://127.0.0.1:9/_playground/live/token"]
        waits = [page.evaluate(DROP_JS, 1006) for _ in range(8)]
        assert waits == [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        assert page.evaluate("sockets.length") == 9  # each wait ended in a new try
        page.evaluate("sockets.at(-1).onopen()")  # connected: the next drop starts again at 1 s
        assert [page.evaluate(DROP_JS, 1006) for _ in range(2)] == [1000, 2000]
        assert page.evaluate(DROP_JS, 4404) is None  # the app no longer knows the channel: no more tries
        assert page.evaluate("sockets.length") == 11
    finally:
        page.close()

"""The live channel: a streaming answer's text sent from its Batch straight to the page, beside
Streamlit's element tree rather than through it.

Why: Streamlit's frontend redraws every element of the page for each element that changes. A
live answer redrawn 20 times a second through `st.html` made the browser redraw the whole
Playground page (41 elements, 25-35 ms of main thread each time, against 10 ms for a page with
only the answer), and under four sessions on two cores the first token reached the screen
0.8-1.1 s after the server sent it. And an answer box mounted when Run is pressed waits for the
page to draw it before it can ask for text: 150 ms more for one session, seconds under load.

So each place that shows a live answer (the Playground's run area, each Compare pane, History's
rerun) has one channel per browser session, and one small component (live_view.live_text) that
stays on the page, connected by a WebSocket, whether or not anything streams. (A WebSocket, not
a long fetch: a browser keeps at most six HTTP/1.1 connections to a host, for all its tabs, and
held ones would leave none for the app's own files.) When a run starts, its batch is
attached to the place's channel (`attach`) and the open connection carries its text at once;
the page's other elements are not touched until the run ends and the page shows the finished
run.

A channel's path holds a random token: only the session that drew it knows it. It sends plain
text (the page sets it with textContent) in JSON messages: {"text": t, "run": n} starts target
n's answer with its first text (or none, when it ended without any), {"more": t} appends,
{"text": t} replaces, {"end": true} says the answer is whole.
The page sends nothing.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from contextlib import aclosing
from dataclasses import dataclass, field

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from playground.runs.batch import Batch

PATH = "/_playground/live/{token}"
LOOK_S = 0.005  # between two looks at a streaming answer: its first text and its end leave within this
# More text goes at most this often: the page draws it at most every 55 ms (live_text.js), and a
# message per look cost both sides CPU for nothing (four sessions on two cores: 200 messages a
# second per page, 10-20 ms of the page's main thread each).
SEND_S = 0.05
IDLE_S = 30.0  # an idle connection looks again this often even unwoken (a safety net)
FORGET_S = 600.0  # a channel no page has read for this long is dropped (its session has gone)


@dataclass
class _Channel:
    target: tuple[Batch, int, int] | None = None  # (batch, slot, choice) shown in this place
    run: int = 0  # counts the targets (None included): which one the page and the channel speak of
    wakers: set = field(default_factory=set)  # (loop, asyncio.Event) of each open connection
    used: float = field(default_factory=time.monotonic)  # when last attached or read
    delivered: threading.Event = field(default_factory=threading.Event)  # the target's first text went out


_lock = threading.Lock()
_by_token: dict[str, _Channel] = {}
_by_place: dict[tuple[str, str], str] = {}


def attach(session: str, place: str, current: Batch | None, slot: int = 0, choice: int = 0) -> tuple[str, int]:
    """Show `current`'s answer (slot, choice) in `place` of browser session `session` (None:
    nothing streams there now). Returns the channel's path (the same for the session's life) and
    the number of this target: the page compares the one its redraw carries with the one the
    channel's newest answer carries, and goes by the newer."""
    with _lock:
        _forget_unread()
        token = _by_place.get((session, place))
        if token is None:
            token = secrets.token_urlsafe(18)
            _by_place[(session, place)] = token
            _by_token[token] = _Channel()
        channel = _by_token[token]
        channel.used = time.monotonic()
        target = None if current is None else (current, slot, choice)
        if not _same(target, channel.target):
            channel.target = target
            channel.run += 1
            channel.delivered.clear()
            for loop, event in channel.wakers:
                loop.call_soon_threadsafe(event.set)
        return PATH.format(token=token), channel.run


def wait_delivered(session: str, place: str, timeout: float) -> bool:
    """Wait until the answer attached to `place` has had its first text sent to the page (or it
    ended, or no page reads it), at most `timeout` seconds; True if it was sent."""
    with _lock:
        token = _by_place.get((session, place))
        channel = _by_token.get(token) if token else None
        if channel is None or not channel.wakers:
            return False
    return channel.delivered.wait(timeout)


def _forget_unread() -> None:
    now = time.monotonic()
    for key, token in list(_by_place.items()):
        channel = _by_token[token]
        if not channel.wakers and now - channel.used > FORGET_S:
            del _by_place[key], _by_token[token]


def _same(a: tuple | None, b: tuple | None) -> bool:
    return a is b or (a is not None and b is not None and a[0] is b[0] and a[1:] == b[1:])


def routes() -> list[WebSocketRoute]:
    return [WebSocketRoute(PATH, _serve)]


async def _serve(websocket: WebSocket) -> None:
    with _lock:
        channel = _by_token.get(websocket.path_params["token"])
    await websocket.accept()
    if channel is None:  # accepted first, so the page reads why (it then stops asking)
        await websocket.close(code=4404, reason="No such answer.")
        return
    gone = asyncio.ensure_future(websocket.receive())  # the page sends nothing: this ends when it goes
    try:
        async with aclosing(_messages(channel, gone)) as messages:
            async for message in messages:
                await websocket.send_text(message)
    except (WebSocketDisconnect, OSError):  # the page went while a message was on its way
        pass
    finally:
        gone.cancel()


async def _messages(channel: _Channel, gone: asyncio.Future):
    """Whatever the place shows: each new answer from its start, its text as it grows, its end;
    until the page goes."""
    waker = (asyncio.get_running_loop(), asyncio.Event())
    with _lock:
        channel.wakers.add(waker)
    shown, started, sent, seen, whole = None, False, "", None, False
    sent_at = 0.0
    try:
        while not gone.done():
            with _lock:
                target, run = channel.target, channel.run
            if not _same(target, shown):
                shown, started, sent, seen, whole = target, False, "", None, False
            if target is not None and not whole:
                batch, slot, choice = target
                finished = batch.finished(slot)  # asked first: the text read after it is then final
                growth = batch.growth(slot, choice)
                due = not started or finished or time.monotonic() - sent_at >= SEND_S
                if due and (growth != seen or (finished and not started)):
                    seen = growth
                    text = batch.snapshot(slot, choice)
                    # A new answer starts with its first text, in one message: sent apart, the start
                    # was handled before the page's redraw for the Run click and the text only
                    # after the next one (measured in Chromium: the first token 25-40 ms later).
                    if not started and (text or finished):
                        started, sent, sent_at = True, text, time.monotonic()
                        yield _message({"text": text, "run": run})
                    elif started and text != sent:
                        yield _message({"more": text[len(sent):]} if text.startswith(sent) else {"text": text})
                        sent, sent_at = text, time.monotonic()
                    if sent and _same(channel.target, shown):
                        channel.delivered.set()  # resumed after the send: it is on its way
                if finished:
                    whole = True
                    yield _message({"end": True})
                    if _same(channel.target, shown):
                        channel.delivered.set()
            if target is not None and not whole:
                await asyncio.sleep(LOOK_S)
                continue
            waker[1].clear()
            if _same(channel.target, shown):  # nothing new: sleep until attach() wakes it, or the page goes
                woken = asyncio.ensure_future(waker[1].wait())
                await asyncio.wait([woken, gone], timeout=IDLE_S, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
    finally:
        with _lock:
            channel.wakers.discard(waker)
            channel.used = time.monotonic()


def _message(data: dict) -> str:
    return json.dumps(data)

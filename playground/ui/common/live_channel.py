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

Push, not poll: a connection sleeps until something changes. The batch wakes it (Batch.listen,
from its worker thread, after each network read and at the end: a thread-safe wake of the
event loop), and so does `attach` when the place shows another run. It then sends the pieces
appended since its last send (Batch.text_since), so a send costs the same at token 10 and at
token 10,000. More text goes at most every SEND_S; a new answer's first text and its end go at
once.

A channel lives while a page may read it: it is dropped, and with it its hold on the Batch,
once it has had no open connection for FORGET_S and shows nothing that streams (a closed tab:
its run streams on to its end and is saved, then freed). One sweeper thread does it, asleep
until the next channel is due, and gone while no channel exists.

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
from typing import Callable

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from playground.runs.batch import Batch

PATH = "/_playground/live/{token}"
# More text goes at most this often: the page draws it at most every 55 ms (live_text.js), and a
# message per token cost both sides CPU for nothing (four sessions on two cores: 200 messages a
# second per page, 10-20 ms of the page's main thread each).
SEND_S = 0.05
# A channel with no open connection for this long, showing nothing that streams, is dropped
# (its tab has gone). A closed tab's channel and Batch are freed FORGET_S after it closed (or
# when its run ends, if later): within the 90 s issue 20 allows. Tests shorten it.
FORGET_S = 60.0


class _Connection:
    """One open WebSocket of a channel, on its event loop: `wake` it from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()  # set: look again
        # True while a wake is on its way or a paced look is scheduled: the batch's further
        # reads need not wake it (a token-a-millisecond stream would cost a loop wake per read).
        self.pending = False
        self.timer: asyncio.TimerHandle | None = None  # the paced look, when one is scheduled
        self.due = False  # the paced look's time has come (its timer fired)

    def look_when_due(self, delay: float) -> None:
        """(On the loop.) Look again in `delay` seconds: more text came within SEND_S of the last
        send. Meanwhile the batch's reads need not wake it."""
        self.pending = True
        self.timer = self.loop.call_later(delay, self._due)

    def _due(self) -> None:
        self.timer, self.due = None, True  # said by the timer, not read off a clock that may be a tick short
        self.event.set()

    def wake(self, now: bool = False) -> None:
        if self.pending and not now:
            return
        self.pending = True
        try:
            self.loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:  # the loop closed: the server is stopping
            pass


@dataclass(eq=False)
class _Channel:
    target: tuple[Batch, int, int] | None = None  # (batch, slot, choice) shown in this place
    run: int = 0  # counts the targets (None included): which one the page and the channel speak of
    connections: set[_Connection] = field(default_factory=set)
    seen: float = field(default_factory=time.monotonic)  # when last attached, or last connected
    delivered: threading.Event = field(default_factory=threading.Event)  # the target's first text went out
    unlisten: Callable[[], None] | None = None  # stops the target batch's wakes

    def streaming(self) -> bool:
        return self.target is not None and not self.target[0].finished(self.target[1])


_lock = threading.Lock()
_by_token: dict[str, _Channel] = {}
_by_place: dict[tuple[str, str], str] = {}
_sweep = threading.Event()  # set: the sweeper looks again now
_sweeper: threading.Thread | None = None


def attach(session: str, place: str, current: Batch | None, slot: int = 0, choice: int = 0) -> tuple[str, int]:
    """Show `current`'s answer (slot, choice) in `place` of browser session `session` (None:
    nothing streams there now). Returns the channel's path (the same while the session's page
    reads it) and the number of this target: the page compares the one its redraw carries with
    the one the channel's newest answer carries, and goes by the newer."""
    with _lock:
        token = _by_place.get((session, place))
        if token is None:
            token = secrets.token_urlsafe(18)
            _by_place[(session, place)] = token
            _by_token[token] = _Channel()
            _wake_sweeper()
        channel = _by_token[token]
        channel.seen = time.monotonic()
        target = None if current is None else (current, slot, choice)
        if not _same(target, channel.target):
            if channel.unlisten is not None:
                channel.unlisten()
            channel.target = target
            channel.unlisten = None if current is None else current.listen(_waker(channel, current, slot))
            channel.run += 1
            channel.delivered.clear()
            for connection in channel.connections:
                connection.wake(now=True)
        return PATH.format(token=token), channel.run


def wait_delivered(session: str, place: str, timeout: float) -> bool:
    """Wait until the answer attached to `place` has had its first text sent to the page (or it
    ended, or no page reads it), at most `timeout` seconds; True if it was sent."""
    with _lock:
        token = _by_place.get((session, place))
        channel = _by_token.get(token) if token else None
        if channel is None or not channel.connections:
            return False
    return channel.delivered.wait(timeout)


def channel_count() -> int:
    """How many channels the app holds (each holds its place's Batch)."""
    with _lock:
        return len(_by_token)


def _waker(channel: _Channel, batch: Batch, slot: int) -> Callable[[int], None]:
    """The batch's listener for a channel: wakes its connections when its slot grows or ends (at
    once then, even within SEND_S), and the sweeper when it ends with no page to read it."""
    def heard(index: int) -> None:
        if index != slot:
            return
        ended = batch.finished(slot)
        with _lock:
            connections = tuple(channel.connections)
        for connection in connections:
            connection.wake(now=ended)
        if ended and not connections:
            _sweep.set()

    return heard


def _wake_sweeper() -> None:
    """(Under _lock.) Start the sweeper if it is not running, and have it look again."""
    global _sweeper
    if _sweeper is None:
        _sweeper = threading.Thread(target=_sweep_forever, name="playground-live-sweep", daemon=True)
        _sweeper.start()
    _sweep.set()


def _sweep_forever() -> None:
    """Drop each channel that has had no connection for FORGET_S and shows nothing streaming;
    sleep until the next is due (a channel still streaming wakes it when its run ends, one
    connected wakes it when its last connection closes, a new one when it is made). Ends when no
    channel is left."""
    global _sweeper
    while True:
        _sweep.clear()
        with _lock:
            now, due = time.monotonic(), None
            for key, token in list(_by_place.items()):
                channel = _by_token[token]
                if channel.connections or channel.streaming():
                    continue
                at = channel.seen + FORGET_S
                if at <= now:
                    del _by_place[key], _by_token[token]
                    if channel.unlisten is not None:
                        channel.unlisten()
                    channel.target = channel.unlisten = None
                else:
                    due = at if due is None else min(due, at)
            if not _by_token:
                _sweeper = None
                return
        _sweep.wait(None if due is None else due - now)


def _same(a: tuple | None, b: tuple | None) -> bool:
    return a is b or (a is not None and b is not None and a[0] is b[0] and a[1:] == b[1:])


def routes() -> list[WebSocketRoute]:
    return [WebSocketRoute(PATH, _serve)]


async def _serve(websocket: WebSocket) -> None:
    await websocket.accept()
    connection = _Connection(asyncio.get_running_loop())
    with _lock:
        channel = _by_token.get(websocket.path_params["token"])
        if channel is not None:
            channel.connections.add(connection)
    if channel is None:  # accepted first, so the page reads why (it then stops asking)
        await websocket.close(code=4404, reason="No such answer.")
        return
    gone = asyncio.ensure_future(websocket.receive())  # the page sends nothing: this ends when it goes
    gone.add_done_callback(lambda _: connection.event.set())
    try:
        async with aclosing(_messages(channel, connection, gone)) as messages:
            async for message in messages:
                await websocket.send_text(message)
    except (WebSocketDisconnect, OSError):  # the page went while a message was on its way
        pass
    finally:
        gone.cancel()
        if connection.timer is not None:
            connection.timer.cancel()
        with _lock:
            channel.connections.discard(connection)
            channel.seen = time.monotonic()
            if not channel.connections:  # its page may have gone: due in FORGET_S
                _wake_sweeper()


async def _messages(channel: _Channel, connection: _Connection, gone: asyncio.Future):
    """Whatever the place shows: each new answer from its start, its text as it grows, its end;
    until the page goes. Each pass runs when woken, and reads only what is new."""
    loop = asyncio.get_running_loop()
    shown, started, whole, count = None, False, False, 0
    sent_at = 0.0  # when text last went
    while not gone.done():
        connection.event.clear()
        due, connection.due = connection.due, False
        with _lock:
            target, run = channel.target, channel.run
        if not _same(target, shown):
            shown, started, whole, count = target, False, False, 0
        now = loop.time()
        if target is not None and not whole:
            batch, slot, choice = target
            finished = batch.finished(slot)  # asked first: the text read after it is then final
            if not started or finished or due or now - sent_at >= SEND_S:
                connection.pending = False  # text appended from here on wakes this connection
                text, count_now = batch.text_since(slot, choice, count)
                # A new answer starts with its first text, in one message: sent apart, the start
                # was handled before the page's redraw for the Run click and the text only after
                # the next one (measured in Chromium: the first token 25-40 ms later).
                if not started and (text or finished):
                    started = True
                    count, sent_at = count_now, now
                    yield _message({"text": text, "run": run})
                elif started and text:
                    count, sent_at = count_now, now
                    yield _message({"more": text})
                if started and _same(channel.target, shown):
                    channel.delivered.set()  # resumed after the send: it is on its way
                if finished:
                    whole = True
                    yield _message({"end": True})
                    if _same(channel.target, shown):
                        channel.delivered.set()
            elif connection.timer is None:  # more came within SEND_S of the last send: it goes when due
                connection.look_when_due(sent_at + SEND_S - now)
        await connection.event.wait()


def _message(data: dict) -> str:
    return json.dumps(data)

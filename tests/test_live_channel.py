"""The live channel (playground.ui.common.live_channel) over a real WebSocket: its one route in
a Starlette app served by uvicorn on loopback, read as the page reads it, while a Batch streams
from a ScriptedServer. The page connects while nothing streams and stays
connected: each run attached to its place then comes down that same connection."""

from __future__ import annotations

import json
import socket
import threading
from typing import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from playground.client.schema import ChatRequest
from playground.runs.batch import Batch
from playground.ui.common import live_channel
from tests.scripted_server import Reply, ScriptedServer
from tests.support import wait_for

REQUEST = ChatRequest(model="scripted/model", messages=[{"role": "user", "content": "hi"}], stream=True)
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=live_channel.routes()), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10, "the live channel's server to start")
    yield f"ws://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


def events(socket) -> Iterator[dict]:
    while True:
        yield json.loads(socket.recv(TIMEOUT_S))


def one_answer(stream: Iterator[dict]) -> tuple[str, list[dict]]:
    """Read one answer to its end: its text as the page builds it, and the events."""
    text, seen = None, []
    for event in stream:
        seen.append(event)
        if "text" in event:
            text = event["text"]
        if "more" in event:
            text += event["more"]
        if event.get("end"):
            return text, seen
    raise AssertionError(f"the stream closed before the answer's end: {seen}")


def test_each_run_comes_down_the_connection_opened_before_it(app_url, server):
    path, idle = live_channel.attach("session-a", "playground", None)  # the page connects while idle
    tokens = [f"t{i} " for i in range(12)]
    server.add(Reply.stream_text(tokens, delay_s=0.02)).add(Reply.stream_text(["second ", "run"]))
    with connect(app_url + path) as socket:
        stream = events(socket)
        first = Batch([(server.endpoint(), REQUEST)]).start()
        assert live_channel.attach("session-a", "playground", first) == (path, idle + 1)
        text, seen = one_answer(stream)
        assert text == "".join(tokens)
        # a new answer starts afresh with its first text (nothing of the last one stays), named by the
        # run number the page gets too
        assert seen[0] == {"text": tokens[0], "run": idle + 1}
        assert sum("more" in event for event in seen) > 1  # it came as it streamed, not at the end

        # the next run on the same place: the same connection, a fresh answer
        second = Batch([(server.endpoint(), REQUEST)]).start()
        assert live_channel.attach("session-a", "playground", second) == (path, idle + 2)
        assert live_channel.attach("session-a", "playground", second) == (path, idle + 2)  # a redraw: the same run
        text, seen = one_answer(stream)
        assert text == "second run" and seen[0]["run"] == idle + 2 and seen[0]["text"].startswith("second")


def test_a_page_that_connects_mid_stream_gets_the_text_so_far_first(app_url, server):
    tokens = [f"w{i} " for i in range(30)]
    server.add(Reply.stream_text(tokens, delay_s=0.03))
    batch = Batch([(server.endpoint(), REQUEST)]).start()
    path, run = live_channel.attach("session-b", "cmp0", batch)
    wait_for(lambda: batch.growth(0) >= 5, 10, "five pieces of the answer")
    with connect(app_url + path) as socket:
        text, seen = one_answer(events(socket))
    assert text == "".join(tokens)
    assert seen[0]["run"] == run and len(seen[0]["text"]) >= len("w0 w1 w2 w3 w4 ")


def test_model_text_goes_out_as_plain_text(app_url, server):
    hostile = ["<img src=x onerror=alert(1)>", " & ", "</div>", "\n", "'\""]
    server.add(Reply.stream_text(hostile))
    batch = Batch([(server.endpoint(), REQUEST)]).start()
    path, _ = live_channel.attach("session-c", "history", batch)
    with connect(app_url + path) as socket:
        text, _ = one_answer(events(socket))
    assert text == "".join(hostile)  # verbatim: the page sets it as text, never as HTML


def test_paths_are_per_session_and_place_and_unguessable(app_url):
    a, _ = live_channel.attach("session-d", "cmp0", None)
    assert live_channel.attach("session-d", "cmp0", None)[0] == a  # a rerun keeps the page's connection
    assert live_channel.attach("session-d", "cmp1", None)[0] != a
    assert live_channel.attach("session-e", "cmp0", None)[0] != a
    token = a.rsplit("/", 1)[1]
    assert len(token) >= 24 and "session" not in token
    with connect(app_url + a.replace(token, "x" * len(token))) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(TIMEOUT_S)
    assert closed.value.rcvd.code == 4404


def test_a_place_with_nothing_streaming_sends_nothing(app_url, server):
    path, _ = live_channel.attach("session-f", "playground", None)
    with connect(app_url + path) as socket:
        with pytest.raises(TimeoutError):
            socket.recv(0.5)


def test_a_run_that_fails_before_any_text_still_starts_and_ends_its_answer(app_url, server):
    server.add(Reply.error(429, {"error": {"message": "Slow down"}}))
    path, idle = live_channel.attach("session-g", "playground", None)
    with connect(app_url + path) as socket:
        batch = Batch([(server.endpoint(), REQUEST)]).start()
        _, run = live_channel.attach("session-g", "playground", batch)
        text, seen = one_answer(events(socket))
    assert (text, seen) == ("", [{"text": "", "run": run}, {"end": True}])  # the page drops the last answer

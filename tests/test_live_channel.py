"""The live channel (playground.ui.common.live_channel) over a real WebSocket: its one route in
a Starlette app served by uvicorn on loopback, read as the page reads it, while a Batch streams
from a ScriptedServer. The page connects while nothing streams and stays
connected: each run attached to its place then comes down that same connection. The channel is
woken by its Batch (Batch.listen), sends only what was appended, and is dropped, with its hold on
the Batch, once no page reads it."""

from __future__ import annotations

import gc
import json
import socket
import threading
import weakref
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


def test_the_batch_tells_its_listeners_as_text_comes_and_at_the_end(server):
    tokens = [f"b{i} " for i in range(8)]
    server.add(Reply.stream_text(tokens, delay_s=0.02))
    batch = Batch([(server.endpoint(), REQUEST)])
    heard: list[tuple[str, bool]] = []  # what a listener could read when told: (text, finished)
    batch.listen(lambda index: heard.append((batch.text_since(index)[0], batch.finished(index))))
    batch.start()
    wait_for(lambda: heard and heard[-1][1], 10, "the listener to hear the end")
    texts = [text for text, _ in heard]
    assert texts[-1] == "".join(tokens)
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))  # the text only grows
    assert len({text for text in texts if text and text != texts[-1]}) > 2  # told as it streamed, not only at the end
    assert [finished for _, finished in heard].count(True) == 1  # and told of the end once
    # pieces since a count: what was appended, and the count to pass next time
    assert batch.text_since(0, 0, 3) == ("".join(tokens[3:]), len(tokens))


def test_each_send_carries_only_what_was_appended(app_url, server):
    tokens = [f"d{i} " for i in range(300)]
    server.add(Reply.stream_text(tokens, delay_s=0.002))
    path, _ = live_channel.attach("session-h", "playground", None)
    with connect(app_url + path) as socket:
        stream = events(socket)
        batch = Batch([(server.endpoint(), REQUEST)]).start()
        live_channel.attach("session-h", "playground", batch)
        text, seen = one_answer(stream)
    assert text == "".join(tokens)
    sent = sum(len(event.get("text", "")) + len(event.get("more", "")) for event in seen)
    assert sent == len(text)  # no piece went twice: a send's size is what came since the last
    assert 2 < len(seen) < len(tokens) / 2  # more than one send, and paced (not one per token)


class CountingBatch(Batch):
    """A Batch that counts how often its text is looked at."""

    looks = 0

    def text_since(self, index: int, choice: int = 0, start: int = 0) -> tuple[str, int]:
        self.looks += 1
        return super().text_since(index, choice, start)


def test_a_channel_sleeps_until_its_batch_has_something_new(app_url, server):
    """Nothing polls: while the server is slow to answer, the open connection does not look."""
    server.add(Reply.stream_text(["late ", "answer"], head_delay_s=1.0))
    path, _ = live_channel.attach("session-i", "playground", None)
    with connect(app_url + path) as socket:
        batch = CountingBatch([(server.endpoint(), REQUEST)]).start()
        live_channel.attach("session-i", "playground", batch)
        text, _ = one_answer(events(socket))
    assert text == "late answer"
    assert batch.looks < 20, batch.looks  # a look each 5 ms over the second's wait would be 200


def test_a_tab_closed_mid_stream_has_its_channel_and_batch_freed(app_url, server, monkeypatch):
    """The tab goes while its answer streams: the run streams on to its end, then the channel
    (no connection for FORGET_S, nothing streaming) is dropped and nothing holds the Batch or its
    Run. FORGET_S (60 s in the app) is shortened here."""
    monkeypatch.setattr(live_channel, "FORGET_S", 0.3)
    tokens = [f"c{i} " for i in range(40)]
    server.add(Reply.stream_text(tokens, delay_s=0.02))
    batch = Batch([(server.endpoint(), REQUEST)]).start()
    path, _ = live_channel.attach("session-j", "playground", batch)
    with connect(app_url + path) as socket:
        assert next(events(socket))["text"]
        assert not batch.finished(0)  # the tab closes mid-stream
    assert batch.wait(TIMEOUT_S)  # the run streams on to its end
    assert batch.snapshot(0) == "".join(tokens)
    batch_ref, run_ref = weakref.ref(batch), weakref.ref(batch.runs[0])
    del batch
    wait_for(lambda: live_channel.channel_count() == 0, TIMEOUT_S, "every channel no page reads to be dropped")
    wait_for(lambda: gc.collect() >= 0 and batch_ref() is None and run_ref() is None, TIMEOUT_S,
             "the Batch and its Run to be unreachable")

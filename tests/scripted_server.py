"""A scripted HTTP/1.1 server on a real loopback socket, for faults a real model cannot produce.

    with ScriptedServer() as server:
        server.add(Reply.stream_text(["Hel", "lo"], delay_s=0.01))
        server.add(Reply.error(429, {"detail": "slow down"}, headers={"Retry-After": "0.1"}))
        server.default = Reply.json(200, {...})       # served whenever the queue is empty
        client = ChatClient(server.endpoint())
        ...
        server.requests[0].json, server.requests[0].headers["x-api-key"]

Replies are served in the order they were added (`route(path, reply)` pins one to a path;
`respond = lambda received: Reply...` computes each other reply from its request, as a model
would). `in_flight` and `max_in_flight` count the requests being answered at once.
SSE events: a dict is sent as `data: <json>`; a str that starts with an SSE field (`data:`,
`event:`, `id:`, `retry:`) or a comment (`:`) is sent as written (a blank line is added when
it has none); any other str is sent as `data: <str>`. `Raw(b"...")` is sent byte for byte.

Each request is recorded in `server.requests` as a `Received` that also tells what the
server saw: how many events it sent, whether it finished, and when (time.perf_counter) it
noticed the client closing the connection, so a test can time a cancel.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable, Sequence

from playground.client.endpoint import Endpoint

__all__ = ["Raw", "Received", "Reply", "ScriptedServer", "make_chunk", "token_logprob"]

SSE_FIELDS = (b"data:", b"event:", b"id:", b"retry:", b":")


@dataclass(frozen=True)
class Raw:
    """An event sent exactly as these bytes (no blank line added, no newline rewriting)."""

    data: bytes


def make_chunk(
    content: str | None = None,
    *,
    index: int = 0,
    role: str | None = None,
    finish_reason: str | None = None,
    logprobs: list[dict] | None = None,
    tool_calls: list[dict] | None = None,
    usage: dict | None = None,
    choices: list[dict] | None = None,
    model: str = "scripted/model",
    id: str = "chatcmpl-scripted",
) -> dict:
    """One chat.completion.chunk. `choices=[]` with `usage` gives include_usage's final chunk."""
    if choices is None:
        delta: dict[str, Any] = {}
        if role is not None:
            delta["role"] = role
        if content is not None:
            delta["content"] = content
        if tool_calls is not None:
            delta["tool_calls"] = tool_calls
        choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish_reason}
        if logprobs is not None:
            choice["logprobs"] = {"content": logprobs}
        choices = [choice]
    chunk = {"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": model, "choices": choices}
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def token_logprob(token: str, logprob: float, alternatives: Sequence[tuple[str, float]] = ()) -> dict:
    """One entry of `choices[].logprobs.content`: the chosen token, its logprob, its top alternatives."""
    def entry(text: str, value: float) -> dict:
        return {"token": text, "logprob": value, "bytes": list(text.encode())}

    return {**entry(token, logprob), "top_logprobs": [entry(text, value) for text, value in alternatives]}


def _event_bytes(event: str | dict | Raw, newline: bytes) -> bytes:
    if isinstance(event, Raw):
        return event.data
    if isinstance(event, dict):
        text = "data: " + json.dumps(event, separators=(",", ":")) + "\n\n"
    elif event.encode().startswith(SSE_FIELDS):
        text = event if event.endswith("\n\n") else event.rstrip("\n") + "\n\n"
    else:
        text = f"data: {event}\n\n"
    data = text.encode()
    return data if newline == b"\n" else data.replace(b"\n", newline)


@dataclass
class Reply:
    """One scripted answer: a plain body (`body`) or an SSE stream (`events`)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    events: list[bytes] | None = None  # encoded SSE events, one send each (unless delay_s == 0)
    delay_s: float = 0.0  # pause before each event
    head_delay_s: float = 0.0  # pause before the status line (a slow server)
    cut_after: int | None = None  # after this many events (plain body: bytes), drop the connection
    cut: str = "rst"  # how to drop it: "rst" (abortive close) or "fin" (plain close)
    end: str = "chunked"  # "chunked": proper end of a chunked body; "close": no framing, end = close
    hold_open: bool = False  # after the last event, keep the connection open (a silent server)
    drop: bool = False  # close the connection without any answer at all

    # --- factories (the API other tests use) -------------------------------------------

    @classmethod
    def json(cls, status: int, body: Any, headers: dict[str, str] | None = None) -> "Reply":
        data = json.dumps(body).encode()
        return cls(status=status, headers={"Content-Type": "application/json", **(headers or {})}, body=data)

    @classmethod
    def error(cls, status: int, body: Any, headers: dict[str, str] | None = None) -> "Reply":
        """An error reply: a dict/list is sent as JSON, a str (or bytes) as a raw text body."""
        if isinstance(body, (str, bytes)):
            return cls.raw(status, body, headers=headers)
        return cls.json(status, body, headers)

    @classmethod
    def raw(cls, status: int, body: str | bytes, headers: dict[str, str] | None = None,
            content_type: str = "text/plain; charset=utf-8") -> "Reply":
        data = body.encode() if isinstance(body, str) else body
        return cls(status=status, headers={"Content-Type": content_type, **(headers or {})}, body=data)

    @classmethod
    def drop_connection(cls, cut: str = "fin", head_delay_s: float = 0.0) -> "Reply":
        """No answer: the connection is closed ("fin") or reset ("rst") after reading the request."""
        return cls(drop=True, cut=cut, head_delay_s=head_delay_s)

    @classmethod
    def sse(
        cls,
        events: list[str | dict | Raw],
        delay_s: float = 0.0,
        done: bool = True,
        cut_after: int | None = None,
        *,
        newline: str = "\n",
        status: int = 200,
        headers: dict[str, str] | None = None,
        end: str = "chunked",
        cut: str = "rst",
        head_delay_s: float = 0.0,
        hold_open: bool = False,
    ) -> "Reply":
        """An event stream. done=True appends `data: [DONE]`; cut_after=N drops the connection
        after N events (the chunked body left incomplete); end="close" frames the body by
        closing the connection (no Content-Length, no chunked encoding); newline="\\r\\n" or
        "\\r" rewrites every line end."""
        nl = newline.encode()
        encoded = [_event_bytes(event, nl) for event in events]
        if done:
            encoded.append(_event_bytes("data: [DONE]", nl))
        return cls(
            status=status,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **(headers or {})},
            events=encoded, delay_s=delay_s, cut_after=cut_after, end=end, cut=cut,
            head_delay_s=head_delay_s, hold_open=hold_open,
        )

    @classmethod
    def stream_text(
        cls,
        tokens: list[str],
        delay_s: float = 0.0,
        done: bool = True,
        include_usage: bool = True,
        model: str = "scripted/model",
        logprobs: Sequence[dict] | None = None,
        **sse_options: Any,
    ) -> "Reply":
        """OpenAI-shaped chunks: a role chunk, one chunk per token, a finish_reason chunk, and
        (include_usage) a final `choices: []` chunk with usage counting one token per item.
        `logprobs`: one `token_logprob(...)` per token, sent in that token's chunk."""
        events: list[str | dict | Raw] = [make_chunk("", role="assistant", model=model)]
        if logprobs is not None and len(logprobs) != len(tokens):
            raise ValueError("one logprobs entry per token")
        events += [make_chunk(token, model=model, logprobs=None if logprobs is None else [logprobs[n]])
                   for n, token in enumerate(tokens)]
        events.append(make_chunk(finish_reason="stop", model=model))
        if include_usage:
            usage = {"prompt_tokens": 5, "completion_tokens": len(tokens), "total_tokens": 5 + len(tokens)}
            events.append(make_chunk(choices=[], usage=usage, model=model))
        return cls.sse(events, delay_s=delay_s, done=done, **sse_options)

    @classmethod
    def stream_tool_call(cls, name: str, argument_pieces: list[str], call_id: str = "call_scripted",
                         model: str = "scripted/model", **sse_options: Any) -> "Reply":
        """One streamed tool call: its id and name first, then its arguments piece by piece,
        finish_reason "tool_calls" and usage."""
        def call(**fields: Any) -> list[dict]:
            return [{"index": 0, **fields}]

        events: list[str | dict | Raw] = [
            make_chunk(role="assistant", model=model,
                       tool_calls=call(id=call_id, type="function", function={"name": name, "arguments": ""}))]
        events += [make_chunk(tool_calls=call(function={"arguments": piece}), model=model) for piece in argument_pieces]
        events.append(make_chunk(finish_reason="tool_calls", model=model))
        pieces = len(argument_pieces)
        usage = {"prompt_tokens": 5, "completion_tokens": pieces, "total_tokens": 5 + pieces}
        events.append(make_chunk(choices=[], usage=usage, model=model))
        return cls.sse(events, **sse_options)

    @property
    def streaming(self) -> bool:
        return self.events is not None


@dataclass
class Received:
    """One request the server read, and what happened while it answered."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.perf_counter() when the request was read
    answered_at: float | None = None  # perf_counter when the status line went out (None: not yet)
    events_sent: int = 0
    finished: bool = False  # the whole reply was written
    client_closed_at: float | None = None  # perf_counter when the server noticed the client closing
    closed: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Wait until the server notices the client closed this request's connection."""
        return self.closed.wait(timeout)


class _ClientGone(Exception):
    pass


class ScriptedServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 (keep-alive, one thread per connection)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.default: Reply | None = None
        self.respond: Callable[[Received], Reply] | None = None  # after routes, before the queue
        self.in_flight = 0  # requests read and not yet fully answered
        self.max_in_flight = 0  # the most at once since the server started (a test may reset it)
        self._queue: list[Reply] = []
        self._routes: dict[str, Reply] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.5)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="scripted-server", daemon=True)
        self._thread.start()

    # --- the API ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, path: str = "/v4/beta/chat/completions", **options: Any) -> Endpoint:
        """An SGP-style endpoint at this server (pass auth="bearer", api_key=..., etc. to vary)."""
        return Endpoint(**{"name": "Scripted", "base_url": self.base_url, "chat_path": path, **options})

    def add(self, reply: Reply) -> "ScriptedServer":
        with self._lock:
            self._queue.append(reply)
        return self

    def route(self, path: str, reply: Reply) -> "ScriptedServer":
        """Serve `reply` for every request to `path` (before the queue is consulted)."""
        with self._lock:
            self._routes[path] = reply
        return self

    def pose_as_sandbox(
        self, models: Sequence[tuple[str, str | None]] = (("scripted-model", "scripted"),)
    ) -> "ScriptedServer":
        """Answer /healthz and SGP's model list as the local sandbox does, so the app's launcher
        reuses this server (through PLAYGROUND_SANDBOX_PORT) and no model is loaded."""
        items = [{"model_name": name, "model_type": "generic", "model_vendor": vendor} for name, vendor in models]
        self.route("/healthz", Reply.json(200, {"status": "ok"}))
        return self.route("/v5/chat/completions/models", Reply.json(200, {"object": "list", "items": items}))

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def close(self) -> None:
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() at once (Linux)
        except OSError:
            pass
        self._thread.join(timeout=2)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _quiet_close(conn)

    def __enter__(self) -> "ScriptedServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- serving ------------------------------------------------------------------------

    def _next_reply(self, path: str, received: Received | None = None) -> Reply:
        with self._lock:
            if path.split("?")[0] in self._routes:
                return self._routes[path.split("?")[0]]
        if self.respond is not None and received is not None:
            return self.respond(received)
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
        if self.default is not None:
            return self.default
        return Reply.json(500, {"detail": f"ScriptedServer: no reply queued for {path}"})

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connections.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="scripted-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        try:
            while not self._stopping.is_set():
                received, buffer = self._read_request(conn, buffer)
                if received is None:
                    return
                with self._lock:
                    self.requests.append(received)
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    reply = self._next_reply(received.path, received)
                    keep = self._write_reply(conn, reply, received)
                except _ClientGone:
                    self._mark_closed(received)
                    return
                finally:
                    with self._lock:
                        self.in_flight -= 1
                if not keep:
                    return
                # Between requests: notice a client that closes while we wait for the next one.
                if not self._wait_readable(conn, received):
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.discard(conn)
            _quiet_close(conn)

    def _wait_readable(self, conn: socket.socket, received: Received) -> bool:
        """Block until the next request starts (True) or the client closes (False)."""
        while not self._stopping.is_set():
            readable, _, _ = select.select([conn], [], [], 0.05)
            if not readable:
                continue
            try:
                peek = conn.recv(1, socket.MSG_PEEK)
            except OSError:
                peek = b""
            if not peek:
                self._mark_closed(received)
                return False
            return True
        return False

    @staticmethod
    def _mark_closed(received: Received) -> None:
        if received.client_closed_at is None:
            received.client_closed_at = time.perf_counter()
        received.closed.set()

    def _read_request(self, conn: socket.socket, buffer: bytes) -> tuple[Received | None, bytes]:
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            buffer += chunk
        body, buffer = buffer[:length], buffer[length:]
        return Received(method, path, headers, body, at=time.perf_counter()), buffer

    def _write_reply(self, conn: socket.socket, reply: Reply, received: Received) -> bool:
        """Send one reply; return whether the connection stays open for another request."""
        if reply.head_delay_s:
            self._pause(conn, reply.head_delay_s, received)
        if reply.drop:
            self._cut(conn, reply.cut)
            received.finished = True
            return False
        reason = HTTPStatus(reply.status).phrase if reply.status in HTTPStatus._value2member_map_ else "Status"
        received.answered_at = time.perf_counter()  # set just before the status line goes out
        head = [f"HTTP/1.1 {reply.status} {reason}"] + [f"{k}: {v}" for k, v in reply.headers.items()]
        if not reply.streaming:
            body = reply.body or b""
            head.append(f"Content-Length: {len(body)}")
            if reply.cut_after is not None:  # a plain body: this many bytes, then the cut
                _send(conn, ("\r\n".join(head) + "\r\n\r\n").encode() + body[:reply.cut_after])
                return self._cut_after_pause(conn, reply, received)
            _send(conn, ("\r\n".join(head) + "\r\n\r\n").encode() + body)
            received.finished = True
            return True
        chunked = reply.end == "chunked"
        head.append("Transfer-Encoding: chunked" if chunked else "Connection: close")
        _send(conn, ("\r\n".join(head) + "\r\n\r\n").encode())
        events = reply.events or []
        if reply.delay_s == 0 and reply.cut_after is None:
            # As fast as possible: big writes (64 KiB framing chunks), the client is the bottleneck.
            payload = b"".join(events)
            for start in range(0, len(payload), 65536):
                piece = payload[start:start + 65536]
                _send(conn, b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            received.events_sent = len(events)
        else:
            for number, event in enumerate(events):
                if reply.delay_s:
                    self._pause(conn, reply.delay_s, received)
                if reply.cut_after is not None and number >= reply.cut_after:
                    return self._cut_after_pause(conn, reply, received, pause=False)  # paused just above
                _send(conn, b"%x\r\n%s\r\n" % (len(event), event) if chunked else event)
                received.events_sent = number + 1
            if reply.cut_after is not None and reply.cut_after >= len(events):
                return self._cut_after_pause(conn, reply, received)
        if reply.hold_open:
            self._pause(conn, 3600, received)  # until the client gives up (or the server stops)
        if chunked:
            _send(conn, b"0\r\n\r\n")
        received.finished = True
        return chunked

    def _cut_after_pause(self, conn: socket.socket, reply: Reply, received: Received, pause: bool = True) -> bool:
        """End the reply with its scripted cut (after its delay); False: the connection is done."""
        if pause and reply.delay_s:
            self._pause(conn, reply.delay_s, received)
        self._cut(conn, reply.cut)
        received.finished = True
        return False

    def _pause(self, conn: socket.socket, seconds: float, received: Received) -> None:
        """Sleep, but notice at once when the client closes the connection meanwhile."""
        deadline = time.perf_counter() + seconds
        while not self._stopping.is_set():
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            readable, _, _ = select.select([conn], [], [], min(left, 0.05))
            if readable:
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._mark_closed(received)
                    raise _ClientGone
        raise _ClientGone

    @staticmethod
    def _cut(conn: socket.socket, how: str) -> None:
        if how == "rst":  # abortive close: SO_LINGER 0 makes close() send a RST
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        else:
            conn.shutdown(socket.SHUT_RDWR)


def _send(conn: socket.socket, data: bytes) -> None:
    try:
        conn.sendall(data)
    except OSError:
        raise _ClientGone from None


def _quiet_close(conn: socket.socket) -> None:
    try:
        conn.close()
    except OSError:
        pass

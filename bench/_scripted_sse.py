"""A scripted SGP-style endpoint for bench/ui_latency.py, run as its own process (its pacing
never shares an interpreter lock with the bench or the apps):

    python bench/_scripted_sse.py            # prints its port on the first line of stdout

- `POST /v4/beta/chat/completions` streams `data: {chat.completion.chunk}` events (HTTP/1.1,
  chunked, TCP_NODELAY): a role chunk, then `tokens` content chunks `delay_s` apart on an
  absolute schedule, then finish_reason, usage and `data: [DONE]`. Request number n (from 0)
  sends the tokens "q<n>x00000 ", "q<n>x00001 ", ...: the tag says which request, the index
  which token, so a page can tell what arrived. The send time (time.time(), after sendall) of
  the first and the last token is recorded.
- `GET /healthz` and `GET /v5/chat/completions/models` answer as the local sandbox does, so
  the Playground takes this server as its "Local sandbox" (PLAYGROUND_SANDBOX_PORT).
- `POST /_bench/config {"tokens": N, "delay_s": S}` sets what the next requests get;
  `GET /_bench/log` returns every chat request so far: tag, arrived, first_sent, last_sent,
  tokens, finished (times are time.time() seconds).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHAT_PATH = "/v4/beta/chat/completions"
MODEL = "scripted/model"


def token_text(tag: str, index: int) -> str:
    return f"{tag}x{index:05d} "


def _chunk(delta: dict | None = None, finish_reason: str | None = None, usage: dict | None = None) -> bytes:
    choices = [] if usage is not None else [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}]
    body = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL,
            "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return _frame(b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n")


def _frame(data: bytes) -> bytes:
    """One piece of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


_PIECES = _chunk({"content": "@@"}).split(b"\r\n", 1)[1][:-2].split(b"@@")  # a content chunk around its text


def _content_chunk(text: str) -> bytes:
    """_chunk({"content": text}) for plain ASCII text, without a json.dumps (3,000 of them per request)."""
    return _frame(_PIECES[0] + text.encode() + _PIECES[1])


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens, self.delay_s = 100, 0.001
        self.log: list[dict] = []

    def new_request(self) -> tuple[dict, int, float]:
        with self.lock:
            entry = {"tag": f"q{len(self.log)}", "arrived": time.time(), "first_sent": None, "last_sent": None,
                     "tokens": self.tokens, "finished": False}
            self.log.append(entry)
            return entry, self.tokens, self.delay_s


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:  # quiet
        pass

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/healthz":
            self._json(200, {"status": "ok"})
        elif path == "/v5/chat/completions/models":
            self._json(200, {"object": "list", "items": [
                {"model_name": MODEL, "model_type": "generic", "model_vendor": None}]})
        elif path == "/_bench/log":
            with STATE.lock:
                self._json(200, [dict(entry) for entry in STATE.log])
        else:
            self._json(404, {"detail": "not found"})

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        body = self._body()
        if path == "/_bench/config":
            config = json.loads(body)
            with STATE.lock:
                STATE.tokens, STATE.delay_s = int(config["tokens"]), float(config["delay_s"])
            self._json(200, {"ok": True})
        elif path == CHAT_PATH:
            self._stream()
        else:
            self._json(404, {"detail": "not found"})

    def _stream(self) -> None:
        entry, tokens, delay_s = STATE.new_request()
        events = [_content_chunk(token_text(entry["tag"], n)) for n in range(tokens)]
        tail = (_chunk(finish_reason="stop")
                + _chunk(usage={"prompt_tokens": 5, "completion_tokens": tokens, "total_tokens": 5 + tokens})
                + _frame(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        write = self.connection.sendall
        try:
            write(_chunk({"role": "assistant", "content": ""}))
            start = time.perf_counter()
            for n, event in enumerate(events):
                wait = start + n * delay_s - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                write(event)
                if n == 0:
                    entry["first_sent"] = time.time()
            entry["last_sent"] = time.time()
            write(tail)
            entry["finished"] = True
        except OSError:
            self.close_connection = True


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()

"""Server-sent-event decoding, apart from any HTTP or JSON concern.

Works on raw byte chunks (faster than decoding every line to str first), accepts LF, CRLF
and CR line ends, multi-line data, comments (keep-alives) and events split across reads.
The hot path (`data:` lines and blank lines) stays inline: a stream can carry tens of
thousands of events, and the per-event cost is what the client's speed is made of.
"""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple


class ServerSentEvent(NamedTuple):
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


_new_event = tuple.__new__  # builds a ServerSentEvent without the Python-level __new__


class SSEDecoder:
    """Feed byte chunks, get complete events back (per the WHATWG event-stream rules)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            # A lone trailing CR may be the first half of a CRLF split across reads: keep it.
            held = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                buffer = buffer[:-1] + b"\r"
        blocks = buffer.split(b"\n\n")  # one block per event (an empty one for extra blank lines)
        self._buffer = blocks.pop()  # the unfinished event
        events: list[ServerSentEvent] = []
        for block in blocks:
            if block[:6] == b"data: " and b"\n" not in block:  # the common case: one data line
                text = block[6:].decode("utf-8", errors="replace")
                events.append(_new_event(ServerSentEvent, (text, None, self._id, self._retry)))
            elif block:
                for line in block.split(b"\n"):
                    self._line(line)
                if self._data or self._event is not None:
                    events.append(self._dispatch())
        return events

    def feed_data(self, chunk: bytes) -> list[str] | None:
        """The bulk of a chat stream in a few C calls per read: when every complete event that
        has come is one `data: ` line (not empty, no [DONE]), their data. None when anything
        else is there (a comment, another field, a CR, an unfinished event only): then
        nothing was taken, and feed(chunk) reads it."""
        buffer = self._buffer + chunk if self._buffer else chunk
        end = buffer.rfind(b"\n\n")
        if end < 0 or buffer[:6] != b"data: " or b"\r" in buffer or b"[DONE]" in buffer:
            return None
        text = buffer[6:end].decode("utf-8", errors="replace")
        datas = text.split("\n\ndata: ")
        # Every newline accounted for by a separator: each event is a single data line.
        if text.count("\n") != 2 * (len(datas) - 1) or "" in datas:
            return None
        self._buffer = buffer[end + 2:]
        return datas

    def flush(self) -> list[ServerSentEvent]:
        """At end of stream: an event without its closing blank line still counts."""
        tail, self._buffer = self._buffer, b""
        for line in tail.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
            self._line(line)
        if self._data or self._event is not None:
            return [self._dispatch()]
        return []

    def _line(self, line: bytes) -> None:
        if line[:5] == b"data:":
            self._data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line and line[:1] != b":":  # not a blank line, nor a comment / keep-alive
            self._field(line)

    def _field(self, line: bytes) -> None:
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":  # "data" with no colon: an empty data line
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", errors="replace")
        elif name == b"id":
            self._id = value.decode("utf-8", errors="replace")
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> ServerSentEvent:
        data = self._data
        raw = data[0] if len(data) == 1 else b"\n".join(data)
        event = _new_event(ServerSentEvent, (raw.decode("utf-8", errors="replace"), self._event, self._id, self._retry))
        self._data, self._event = [], None
        return event


def iter_events(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()

"""SSEDecoder: bytes in, events out, whatever the line ends and however the reads split."""

from __future__ import annotations

import pytest

from playground.client._sse import ServerSentEvent, SSEDecoder, iter_events

STREAM = b'data: {"a": 1}\n\nevent: error\ndata: {"error": "x"}\n\ndata: [DONE]\n\n'
EXPECTED = [
    ServerSentEvent(data='{"a": 1}'),
    ServerSentEvent(data='{"error": "x"}', event="error"),
    ServerSentEvent(data="[DONE]"),
]


def decode(*reads: bytes) -> list[ServerSentEvent]:
    return list(iter_events(reads))


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_line_ends(newline: bytes) -> None:
    assert decode(STREAM.replace(b"\n", newline)) == EXPECTED


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_split_point_gives_the_same_events(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    for cut in range(1, len(stream)):
        assert decode(stream[:cut], stream[cut:]) == EXPECTED, f"split at {cut}: {stream[:cut]!r}"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_one_byte_at_a_time(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    assert decode(*(stream[i:i + 1] for i in range(len(stream)))) == EXPECTED


def test_events_come_out_as_soon_as_their_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n") == []
    assert decoder.feed(b"\ndata: tw") == [ServerSentEvent(data="one")]
    assert decoder.feed(b"o\n\n") == [ServerSentEvent(data="two")]
    assert decoder.flush() == []


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r") == []  # the CR could still be the start of a CRLF
    assert decoder.feed(b"\n") == [ServerSentEvent(data="a")]
    # Nothing spurious is left behind: a single CRLF was not counted as two line ends.
    assert decoder.feed(b"data: b\r\n\r\n") == [ServerSentEvent(data="b")]


def test_comments_and_keepalives_are_ignored() -> None:
    events = decode(b": keep-alive\n\n:ping\n\ndata: x\n: inside an event\ndata: y\n\n: trailing\n")
    assert events == [ServerSentEvent(data="x\ny")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    events = decode(b'data: {"a":\ndata:  1}\ndata:\n\n')
    assert events == [ServerSentEvent(data='{"a":\n 1}\n')]  # one space after the colon is eaten, not two


def test_field_without_space_and_without_colon() -> None:
    assert decode(b"data:x\n\n") == [ServerSentEvent(data="x")]
    assert decode(b"data\n\n") == [ServerSentEvent(data="")]


def test_event_id_and_retry_fields() -> None:
    events = decode(b"id: 7\nretry: 1500\nevent: delta\ndata: d\n\ndata: e\n\n")
    assert events[0] == ServerSentEvent(data="d", event="delta", id="7", retry=1500)
    assert events[1].event is None  # the event name resets after each event
    assert events[1].id == "7"  # the last event id persists (WHATWG)


def test_unknown_fields_and_bad_retry_are_ignored() -> None:
    assert decode(b"foo: bar\nretry: soon\ndata: z\n\n") == [ServerSentEvent(data="z")]


def test_flush_emits_an_event_without_its_closing_blank_line() -> None:
    assert decode(b"data: last") == [ServerSentEvent(data="last")]
    assert decode(b"data: last\n") == [ServerSentEvent(data="last")]
    assert decode(b"data: last\r") == [ServerSentEvent(data="last")]
    assert decode(b"data: one\n\ndata: two\r\n") == [ServerSentEvent(data="one"), ServerSentEvent(data="two")]


def test_flush_of_a_clean_end_emits_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\n") == [ServerSentEvent(data="a")]
    assert decoder.flush() == []
    assert decoder.flush() == []


def test_utf8_split_inside_a_character() -> None:
    data = "data: héllo ✓\n\n".encode()
    cut = data.index("✓".encode()) + 1
    assert decode(data[:cut], data[cut:]) == [ServerSentEvent(data="héllo ✓")]


def test_many_events_in_one_read() -> None:
    stream = b"".join(b"data: %d\n\n" % i for i in range(1000))
    assert [e.data for e in decode(stream)] == [str(i) for i in range(1000)]


# --- property: any stream, split anywhere, decodes as the plain line-by-line algorithm does ---

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

LINES = st.sampled_from(["data: x", "data:y", "data", "data: {\"a\": 1}", "data:  two spaces", "event: error",
                         "event: ping", "id: 7", "retry: 10", "retry: no", ": comment", ":", "", "", "", "foo: bar",
                         "data: é✓", "data: [DONE]"])
ENDS = st.sampled_from(["\n", "\r\n", "\r"])


def reference(stream: bytes) -> list[ServerSentEvent]:
    """WHATWG's algorithm, one line at a time, over the whole stream at once."""
    events, data, event, last_id, retry = [], [], None, None, None
    lines = stream.decode().replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for line in lines + [""]:  # end of stream: the last line, then a dispatch
        if not line:
            if data or event is not None:
                events.append(ServerSentEvent("\n".join(data), event, last_id, retry))
            data, event = [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            last_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
    return events


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(LINES, ENDS), max_size=12), st.lists(st.integers(0, 400), max_size=5), st.booleans())
def test_any_stream_any_split_matches_the_reference(lines, cuts, terminated) -> None:
    stream = "".join(line + end for line, end in lines)
    if not terminated and lines:
        stream = stream.rstrip("\r\n")  # the stream stops mid-line
    data = stream.encode()
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces = [data[a:b] for a, b in zip([0] + points, points + [len(data)])]
    assert decode(*pieces) == reference(data)


def test_a_large_event_over_many_reads() -> None:
    payload = b"x" * 300_000
    stream = b"data: " + payload + b"\n\n"
    pieces = [stream[i:i + 4096] for i in range(0, len(stream), 4096)]
    assert decode(*pieces) == [ServerSentEvent(data=payload.decode())]


def read_like_the_client(pieces: list[bytes]) -> list[tuple[str, str | None]]:
    """(data, event) as playground.client.streaming.iter_batches reads them: feed_data first, feed when
    it declines."""
    decoder, out = SSEDecoder(), []
    for piece in pieces:
        datas = decoder.feed_data(piece)
        if datas is None:
            out += [(event.data, event.event) for event in decoder.feed(piece)]
        else:
            out += [(data, None) for data in datas]
    return out + [(event.data, event.event) for event in decoder.flush()]


PLAIN = st.sampled_from(["data: x", "data: {\"a\": 1}", "data: é✓", "data: [DONE]", "data: ", "data:y", ": ping", ""])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(PLAIN | LINES, ENDS | st.just("\n")), max_size=12),
       st.lists(st.integers(0, 400), max_size=5))
def test_the_fast_path_for_plain_data_decodes_as_feed_does(lines, cuts) -> None:
    data = "".join(line + end for line, end in lines).encode()
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces = [data[a:b] for a, b in zip([0] + points, points + [len(data)])]
    assert read_like_the_client(pieces) == [(event.data, event.event) for event in reference(data)]


def test_the_fast_path_takes_plain_data_events_in_one_step() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_data(b'data: {"a": 1}\n\ndata: b\n\ndata: c') == ['{"a": 1}', "b"]
    assert decoder.feed_data(b"\n\n: ping\n\n") is None  # declined: feed() reads it
    assert [event.data for event in decoder.feed(b"\n\n: ping\n\n")] == ["c"]

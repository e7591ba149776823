"""RunRecorder's two ways to read a chunk: the fast path (add_data reads plain text chunks from
the JSON directly) and the model path (parse_chunk + add_chunk, which add_data falls back to for
anything unusual) must build the same Run from any data."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from playground.client.errors import StreamError
from playground.client.run import ChunkRecord, Run, RunRecorder, parse_chunk
from playground.client.schema import ChatRequest

REQUEST = ChatRequest.from_wire({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True})

odd = st.sampled_from([1, 2.5, True, [], {}, "0"])  # values of the wrong type, now and then
text = st.text(max_size=6)
maybe_text = st.none() | text | odd
token = st.fixed_dictionaries({"token": text, "logprob": st.floats(-20, 0)},
                              optional={"bytes": st.none() | st.lists(st.integers(0, 255), max_size=3),
                                        "top_logprobs": st.lists(st.fixed_dictionaries(
                                            {"token": text, "logprob": st.floats(-20, 0)}), max_size=2)})
tool_call_delta = st.fixed_dictionaries({"index": st.integers(0, 1)}, optional={
    "id": st.none() | text, "type": st.none() | st.just("function"),
    "function": st.none() | st.fixed_dictionaries({}, optional={"name": st.none() | text,
                                                                "arguments": st.none() | text})})
delta = st.none() | odd | st.fixed_dictionaries({}, optional={
    "role": st.none() | st.just("assistant") | odd,
    "content": maybe_text,
    "refusal": st.none() | text,
    "tool_calls": st.none() | st.lists(tool_call_delta, max_size=2),
    "function_call": st.none() | st.fixed_dictionaries({"name": text, "arguments": text}),
    "reasoning_content": st.none() | text,
})
choice = st.fixed_dictionaries({}, optional={
    "index": st.integers(0, 2) | odd,
    "delta": delta,
    "finish_reason": st.none() | st.sampled_from(["stop", "length", "tool_calls"]) | odd,
    "logprobs": st.none() | st.fixed_dictionaries({"content": st.none() | st.lists(token, max_size=2)}),
    "matched_stop": st.none() | text,
})
usage = st.fixed_dictionaries({"prompt_tokens": st.integers(0, 9), "completion_tokens": st.integers(0, 9),
                               "total_tokens": st.integers(0, 20)})
chunk = st.fixed_dictionaries({}, optional={
    "id": text | odd,
    "object": st.just("chat.completion.chunk"),
    "model": text,
    "system_fingerprint": st.none() | text | odd,
    "choices": st.lists(choice, max_size=2) | odd | st.none(),
    "usage": st.none() | usage,
    "obfuscation": text,
    "error": st.none() | st.fixed_dictionaries({"message": text}),
})
event_data = chunk.map(json.dumps) | st.sampled_from(['{"choices": [', "not json", "[1, 2]", '"text"', "null"])


def comparable(run: Run) -> dict[str, Any]:
    return run.model_dump(exclude={"id", "started_at", "ttft_s", "total_s", "tokens_per_s", "chunks"})


def record(events: list[str], fast: bool, cuts: list[int] = ()) -> tuple[Run, int | None, str | None]:
    """Feed `events` to a recorder: fast, in batches split at `cuts` (as network reads split a
    stream); else each through the pydantic model. Returns the Run, the failing event's
    number and the error's message."""
    recorder = RunRecorder(REQUEST, endpoint="e")
    failed_at, message = None, None
    if fast:
        points = sorted({min(cut, len(events)) for cut in cuts} | {len(events)})
        for a, b in zip([0] + points, points):
            try:
                recorder.add_batch(events[a:b])
            except StreamError as error:
                failed_at, message = recorder.chunk_count - 1, error.message
                break
        return recorder.finish(), failed_at, message
    for number, data in enumerate(events):
        try:
            recorder.add_chunk(parse_chunk(data))
        except StreamError as error:
            failed_at, message = number, error.message
            break
    return recorder.finish(), failed_at, message


def assert_same_run(events: list[str], cuts: list[int]) -> Run:
    fast_run, fast_failed, fast_message = record(events, fast=True, cuts=cuts)
    model_run, model_failed, model_message = record(events, fast=False)
    assert (fast_failed, fast_message) == (model_failed, model_message)
    assert comparable(fast_run) == comparable(model_run)
    kept = events if fast_failed is None else events[:fast_failed + 1]  # the bad one is kept too
    assert [c.data for c in fast_run.chunks] == kept
    assert (fast_run.ttft_s is None) == (model_run.ttft_s is None)
    return fast_run


cuts = st.lists(st.integers(0, 12), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.lists(event_data, min_size=1, max_size=6), cuts)
def test_fast_path_and_model_path_build_the_same_run(events: list[str], cuts: list[int]) -> None:
    assert_same_run(events, cuts)


# Streams of text chunks that share their envelope (what add_batch reads without a parser once
# it has seen the shape), written in several ways, with texts that cannot be read that way.
tricky_text = st.text(max_size=4) | st.sampled_from(['"', "\\", '\\"', "\n", "\x00", "\u2028", "~", "a~", "é", ""])
envelope = st.fixed_dictionaries({"id": st.sampled_from(["c1", "a", "", "~"]), "model": st.sampled_from(["m", "a"])},
                                  optional={"system_fingerprint": st.sampled_from(["fp", "a"]),
                                            "object": st.just("chat.completion.chunk"),
                                            "obfuscation": st.sampled_from(["x", "a~"])})
writer = st.sampled_from([
    lambda obj: json.dumps(obj, separators=(",", ":")),
    json.dumps,
    lambda obj: json.dumps(obj, ensure_ascii=False),
    lambda obj: json.dumps(obj, indent=1),
])
raw_template = st.sampled_from([  # hand-written data around two texts: duplicate keys, text elsewhere, escapes
    '{"choices":[{"delta":{"content":"%s"}}],"x":{"content":"%s"}}',
    '{"x":"%s","choices":[{"index":0,"delta":{"content":"%s"}}]}',
    '{"choices":[{"delta":{"content":"a","content":"%s"}}],"y":"%s"}',
    '{"choices":[{"delta":{"content":"\\u0061"}}],"x":"%s","z":"%s"}',
])
# Few, so that one slot often repeats while the other changes; a raw tab makes the JSON invalid.
few_texts = st.sampled_from(["a", "b", "a~", "", "\t"])


@st.composite
def text_stream(draw) -> list[str]:
    head, write, template = draw(envelope), draw(writer), draw(raw_template)
    events = [write({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
    for _ in range(draw(st.integers(1, 10))):
        text = draw(tricky_text)
        kind = draw(st.sampled_from(["chunk", "chunk", "chunk", "raw", "odd"]))
        if kind == "chunk":
            events.append(write({**head, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}))
        elif kind == "raw":
            events.append(template % (draw(few_texts), draw(few_texts)))
        else:
            events.append(draw(event_data))
    return events


@settings(max_examples=500, deadline=None)
@given(text_stream(), cuts)
def test_chunks_read_by_their_shape_build_the_same_run(events: list[str], cuts: list[int]) -> None:
    assert_same_run(events, cuts)


def test_text_elsewhere_in_the_chunk_is_not_taken_for_its_content() -> None:
    role = json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    template = '{"choices":[{"delta":{"content":"%s"}}],"x":{"content":"%s"}}'
    run = assert_same_run([role, template % ("a", "a"), template % ("a", "b")], [])
    assert run.text == "aa"


def test_a_stream_of_text_chunks_is_read_whole() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    texts = ["Hel", "lo", ' "quoted"', "\n", "é", "", "!"]
    events = [json.dumps({**chunk, "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]})
              for t in texts]
    run = assert_same_run(events, [3])
    assert run.text == "".join(texts) and run.content_deltas == len(texts) - 1


def test_chunk_records_are_timed_and_serialise_as_objects() -> None:
    recorder = RunRecorder(REQUEST)
    recorder.add_data(json.dumps({"choices": [{"delta": {"content": "a"}}]}))
    recorder.add_data(json.dumps({"choices": [{"delta": {"content": "b"}}]}))
    assert recorder.chunk_count == 2 and recorder.snapshot_text() == "ab"
    run = recorder.finish()
    assert [type(c) for c in run.chunks] == [ChunkRecord, ChunkRecord]
    assert 0 <= run.chunks[0].t <= run.chunks[1].t <= run.total_s
    dumped = json.loads(run.model_dump_json())
    assert dumped["chunks"][1] == {"t": run.chunks[1].t, "data": '{"choices": [{"delta": {"content": "b"}}]}'}
    assert Run.model_validate(dumped).chunks == run.chunks
    assert run.content_deltas == 2 and run.completion_tokens == 2

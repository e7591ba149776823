"""RunRecorder's two ways in: the fast path (add_data, JSON read directly) and the model path
(parse_chunk + add_chunk, what on_chunk consumers get) must build the same Run from any data."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from playground.errors import StreamError
from playground.runs import ChunkRecord, Run, RunRecorder, parse_chunk
from playground.schema import ChatRequest

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


def record(events: list[str], fast: bool) -> tuple[Run, int | None, str | None]:
    recorder = RunRecorder(REQUEST, endpoint="e")
    failed_at, message = None, None
    for number, data in enumerate(events):
        try:
            if fast:
                recorder.add_data(data)
            else:
                recorder.add_raw(data)
                recorder.add_chunk(parse_chunk(data))
        except StreamError as error:
            failed_at, message = number, error.message
            break
    return recorder.finish(), failed_at, message


@settings(max_examples=300, deadline=None)
@given(st.lists(event_data, min_size=1, max_size=6))
def test_fast_path_and_model_path_build_the_same_run(events: list[str]) -> None:
    fast_run, fast_failed, fast_message = record(events, fast=True)
    model_run, model_failed, model_message = record(events, fast=False)
    assert (fast_failed, fast_message) == (model_failed, model_message)
    assert comparable(fast_run) == comparable(model_run)
    assert [c.data for c in fast_run.chunks] == [c.data for c in model_run.chunks]
    assert (fast_run.ttft_s is None) == (model_run.ttft_s is None)


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

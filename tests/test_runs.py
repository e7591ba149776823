"""RunRecorder bookkeeping that the wire tests do not reach."""

from playground.client.run import RunRecorder
from playground.client.schema import ChatCompletionChunk, ChatRequest


def _chunk(delta: dict) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta}]})


def test_finish_twice_keeps_one_copy_of_each_tool_call() -> None:
    recorder = RunRecorder(ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}]))
    first_call = {"index": 0, "id": "t1", "function": {"name": "f", "arguments": '{"a"'}}
    recorder.add_chunk(_chunk({"tool_calls": [first_call]}))
    recorder.add_chunk(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}))
    first = recorder.finish()
    again = recorder.finish()
    assert [call.function.arguments for call in again.choices[0].tool_calls] == ['{"a": 1}']
    assert first is again

"""A stream of chunks over one open HTTP response: SSE events in, ChatCompletionChunk out.

Shaped like openai-python's _streaming.py: the SSE decoder (playground.client._sse) is apart from the
stream, the stream closes its response, and [DONE], error events and cuts are handled in one
place (iter_batches).
"""

from __future__ import annotations

import json
from typing import Callable, Iterator

import httpx
from pydantic import ValidationError

from playground.client._sse import SSEDecoder
from playground.client.errors import APIConnectionError, APIError, APITimeoutError, StreamError, error_message, shorten
from playground.client.run import parse_chunk
from playground.client.schema import (
    ChatCompletion,
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    FunctionCallDelta,
    ToolCallDelta,
)


class ChatStream:
    """Iterator of chunks over one open response. Closes the response when exhausted,
    on error, on close(), or when the consumer drops it early (`for ... : break`)."""

    def __init__(self, response: httpx.Response, on_raw: Callable[[str], None] | None = None) -> None:
        self.response = response
        # The generator must not refer back to this object: a cycle would keep the response
        # open after an early break until the garbage collector happened to run.
        self._iterator = _iter_chunks(response, on_raw)

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self._iterator

    def __next__(self) -> ChatCompletionChunk:
        return next(self._iterator)

    def __enter__(self) -> "ChatStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._iterator.close()
        self.response.close()


def _iter_chunks(response: httpx.Response, on_raw: Callable[[str], None] | None) -> Iterator[ChatCompletionChunk]:
    for batch in iter_batches(response):
        for data in batch:
            if on_raw is not None:
                on_raw(data)
            yield parse_chunk(data)


_DONE = object()


def iter_batches(response: httpx.Response) -> Iterator[list[str]]:
    """The data of the events, one list per network read, up to [DONE] or the end of the
    body; closes the response. (Lists, not single events: a generator step per event costs
    more than the rest of the fast path's bookkeeping.)

    Raises StreamError for an `event: error` (after the events before it), when the
    connection breaks, and when the answer is not an event stream at all (an HTML page from
    a wrong base URL, say). A server that ignored stream=true and sent one JSON completion
    gives it as one chunk."""
    try:
        if response.headers.get("content-type", "").startswith("application/json"):
            yield [_completion_as_chunk(parse_completion(read_body(response))).model_dump_json(exclude_none=True)]
            return
        decoder = SSEDecoder()
        first = b""
        seen = False
        for raw in _iter_raw(response):
            if not first:
                first = raw
            batch = decoder.feed_data(raw)
            if batch is not None:  # plain data events only: the bulk of any stream
                seen = True
                yield batch
                continue
            events = decoder.feed(raw)
            if events:
                seen = True
                batch, end = _event_data(events)
                if batch:
                    yield batch
                if end is not None:
                    if end is _DONE:
                        return
                    raise end
        events = decoder.flush()
        if events:
            batch, end = _event_data(events)
            if batch:
                yield batch
            if end is not None and end is not _DONE:
                raise end
        elif not seen and first.strip():
            kind = response.headers.get("content-type", "no content type")
            text = first.decode("utf-8", errors="replace").strip()
            raise StreamError(None, f"the answer is not an event stream ({kind}): {shorten(text)}", text)
    finally:
        response.close()


def _event_data(events: list) -> tuple[list[str], object]:
    """The chunk data among `events`, and what ended them early: _DONE, a StreamError, None."""
    batch = []
    for data, event, _, _ in events:
        if event is not None:
            if event == "error":
                return batch, StreamError(None, _stream_error_message(data), data)
            if not data.strip():
                continue  # a named event without data: a ping
        if not data:
            continue
        if data[:6] == "[DONE]":
            return batch, _DONE
        batch.append(data)
    return batch, None


def read_body(response: httpx.Response) -> bytes:
    try:
        return response.read()
    except httpx.TimeoutException as error:
        raise APITimeoutError(f"timed out reading the answer: {error}") from None
    except httpx.HTTPError as error:
        raise APIConnectionError(f"connection lost reading the answer: {error or type(error).__name__}") from None


def _completion_as_chunk(completion: ChatCompletion) -> ChatCompletionChunk:
    """A whole completion as the one chunk that says the same."""
    choices = []
    for choice in completion.choices:
        message = choice.message
        calls = [ToolCallDelta(index=i, id=call.id, type=call.type,
                               function=FunctionCallDelta(name=call.function.name, arguments=call.function.arguments))
                 for i, call in enumerate(message.tool_calls or ())]
        function_call = (FunctionCallDelta(name=message.function_call.name, arguments=message.function_call.arguments)
                         if message.function_call is not None else None)
        delta = Delta(role=message.role, content=message.content, refusal=message.refusal,
                      tool_calls=calls or None, function_call=function_call)
        choices.append(ChunkChoice(index=choice.index, delta=delta, finish_reason=choice.finish_reason,
                                   logprobs=choice.logprobs))
    return ChatCompletionChunk(id=completion.id, model=completion.model, choices=choices, usage=completion.usage,
                               system_fingerprint=completion.system_fingerprint)


def _iter_raw(response: httpx.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_bytes()
    except httpx.TimeoutException as error:
        raise APITimeoutError(f"stream timed out: {error}") from None
    except httpx.HTTPError as error:
        raise StreamError(None, f"connection lost mid-stream: {error or type(error).__name__}") from None


def _stream_error_message(data: str) -> str:
    try:
        return error_message(json.loads(data))
    except ValueError:
        return data


def parse_completion(data: bytes) -> ChatCompletion:
    try:
        payload = json.loads(data)
    except ValueError:
        raise APIError(200, f"the reply is not JSON: {shorten(data.decode('utf-8', 'replace'))}", data) from None
    if isinstance(payload, dict) and "error" in payload and "choices" not in payload:
        raise APIError(200, error_message(payload), payload)
    try:
        return ChatCompletion.model_validate(payload)
    except ValidationError as error:
        raise APIError(200, f"the reply is not a chat completion: {error.errors()[0]['msg']}", payload) from None

"""A thin synchronous httpx client for chat completions: complete, stream, run, list_models.

Retries (408/409/429/5xx, connection errors) happen only before any byte of a stream has
been handed to the caller. Errors carry the server's own words (see playground.errors).
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from typing import Callable, Iterator, TypeVar

import httpx
from pydantic import ValidationError

from playground.endpoint import Endpoint
from playground.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    StreamError,
    error_for_status,
    error_message,
)
from playground.runs import Run, RunRecorder, parse_chunk
from playground.schema import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    ChunkChoice,
    Delta,
    FunctionCallDelta,
    ToolCallDelta,
)
from playground.sse import SSEDecoder

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0


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
    for batch in _iter_batches(response):
        for data in batch:
            if on_raw is not None:
                on_raw(data)
            yield parse_chunk(data)


_DONE = object()


def _iter_batches(response: httpx.Response) -> Iterator[list[str]]:
    """The data of the events, one list per network read, up to [DONE] or the end of the
    body; closes the response. (Lists, not single events: a generator step per event costs
    more than the rest of the fast path's bookkeeping.)

    Raises StreamError for an `event: error` (after the events before it), when the
    connection breaks, and when the answer is not an event stream at all (an HTML page from
    a wrong base URL, say). A server that ignored stream=true and sent one JSON completion
    gives it as one chunk."""
    try:
        if response.headers.get("content-type", "").startswith("application/json"):
            yield [_completion_as_chunk(_parse_completion(_read(response))).model_dump_json(exclude_none=True)]
            return
        decoder = SSEDecoder()
        first = b""
        seen = False
        for raw in _iter_raw(response):
            if not first:
                first = raw
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
            raise StreamError(None, f"the answer is not an event stream ({kind}): {_short(text)}", text)
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


def _read(response: httpx.Response) -> bytes:
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


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class ChatClient:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._http = http or httpx.Client(timeout=endpoint.timeout)

    def __repr__(self) -> str:
        return f"ChatClient({self.endpoint!r})"  # Endpoint's repr leaves the key out

    def __enter__(self) -> "ChatClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- public calls ------------------------------------------------------------------

    def complete(self, request: ChatRequest, cancel: threading.Event | None = None) -> ChatCompletion:
        body = request.to_wire()
        body.pop("stream", None)
        body.pop("stream_options", None)
        response = self._send("POST", self.endpoint.chat_url, body, cancel)
        try:
            return _parse_completion(_read(response))
        finally:
            response.close()

    def stream(self, request: ChatRequest, on_raw: Callable[[str], None] | None = None) -> ChatStream:
        return ChatStream(self._open_stream(request), on_raw)

    def _open_stream(self, request: ChatRequest, cancel: threading.Event | None = None) -> httpx.Response:
        body = request.to_wire()
        body["stream"] = True
        return self._send("POST", self.endpoint.chat_url, body, cancel)

    def run(
        self,
        request: ChatRequest,
        on_chunk: Callable[[ChatCompletionChunk, RunRecorder], None] | None = None,
        cancel: threading.Event | None = None,
        preset: str | None = None,
    ) -> Run:
        """Send the request and record everything into a Run; never raises an APIError.

        on_chunk(chunk, recorder) is called per chunk, in this thread. Without it, chunks are
        read by RunRecorder.add_data's fast path (same Run, no chunk objects).

        With `cancel`, setting the event returns at once and keeps the partial text: mid-stream
        the socket is shut down (so even a read waiting on a silent server returns); before
        the answer (slow first byte, retry wait) the request is abandoned and its response
        closed as soon as it comes."""
        recorder = RunRecorder(request, endpoint=self.endpoint.name, preset=preset)
        try:
            if cancel is not None and cancel.is_set():
                pass
            elif request.stream:
                self._stream_into(recorder, request, on_chunk, cancel)
            elif cancel is None:
                recorder.add_completion(self.complete(request))
            else:
                recorder.add_completion(_unless_cancelled(lambda: self.complete(request, cancel), cancel))
        except _Cancelled:
            pass
        except APIError as error:  # no answer at all: nothing partial
            if cancel is None or not cancel.is_set():
                recorder.fail(error, partial=False)
        if cancel is not None and cancel.is_set():
            recorder.cancel()
        return recorder.finish()

    def _stream_into(
        self,
        recorder: RunRecorder,
        request: ChatRequest,
        on_chunk: Callable[[ChatCompletionChunk, RunRecorder], None] | None,
        cancel: threading.Event | None,
    ) -> None:
        """Stream into `recorder`. Errors before the stream opens raise; after, they are recorded
        (partial) unless the caller cancelled."""
        if cancel is None:
            response = self._open_stream(request)
        else:
            # Waiting for the answer happens in a helper thread, so Stop returns at once even
            # during a slow first byte; once streaming, the watcher shuts the socket on Stop.
            response = _unless_cancelled(lambda: self._open_stream(request, cancel), cancel)
        watcher = _CancelWatcher(cancel, response) if cancel is not None else None
        batches = _iter_batches(response)
        try:
            if on_chunk is None:  # the fast path: no chunk objects unless something unusual comes
                add = recorder.add_data
                for batch in batches:
                    for data in batch:
                        add(data)
                        if cancel is not None and cancel.is_set():
                            return
            else:
                for batch in batches:
                    for data in batch:
                        recorder.add_raw(data)
                        chunk = parse_chunk(data)
                        recorder.add_chunk(chunk)
                        on_chunk(chunk, recorder)
                        if cancel is not None and cancel.is_set():
                            return
        except APIError as error:
            if cancel is None or not cancel.is_set():
                recorder.fail(error, partial=True)
        finally:
            if watcher is not None:
                watcher.stop()
            batches.close()
            response.close()

    def list_models(self) -> list[str]:
        response = self._send("GET", self.endpoint.models_url, None)
        try:
            payload = json.loads(_read(response))
        except ValueError as error:
            raise APIError(response.status_code, f"model list is not JSON: {error}") from None
        finally:
            response.close()
        return _model_ids(payload)

    # --- sending with retries ----------------------------------------------------------

    def _send(self, method: str, url: str, body: dict | None, cancel: threading.Event | None = None) -> httpx.Response:
        """Open a response (headers read, body not) that is 2xx, retrying what is retryable."""
        headers = {"Accept": "application/json", **self.endpoint.all_headers()}
        if body is not None and body.get("stream"):
            headers["Accept"] = "text/event-stream"
        attempt = 0
        while True:
            request = self._http.build_request(method, url, json=body, headers=headers)
            try:
                response = self._http.send(request, stream=True)
            except httpx.TimeoutException as error:
                failure: APIError = APITimeoutError(f"timed out talking to {url}: {error or type(error).__name__}")
                retry_after = None
            except httpx.HTTPError as error:
                failure = APIConnectionError(f"could not reach {url}: {error or type(error).__name__}")
                retry_after = None
            else:
                if response.status_code < 300:
                    return response
                try:
                    failure = error_for_status(response.status_code, response.read(), response.reason_phrase)
                except httpx.HTTPError as error:
                    failure = APIConnectionError(f"{response.status_code}, then the connection broke: {error}")
                finally:
                    response.close()
                if response.is_redirect:  # not followed: a POST must not silently turn into a GET
                    raise APIError(response.status_code, f"{url} redirects to {response.headers['location']}: "
                                   "use that address in the endpoint's base URL", failure.body)
                if response.status_code not in RETRY_STATUSES:
                    raise failure
                retry_after = _retry_after_s(response.headers)
            if attempt >= self.max_retries:
                raise failure
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            log.info("retrying %s %s in %.2fs after %s", method, url, delay, failure.kind)
            if cancel is not None:
                if cancel.wait(delay):  # a Stop during the wait ends it: report what failed
                    raise failure
            else:
                time.sleep(delay)
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)  # "equal jitter"


class _Cancelled(Exception):
    """The caller's cancel event was set before the answer came."""


def _unless_cancelled(call: Callable[[], T], cancel: threading.Event) -> T:
    """call() in a helper thread; its result, or _Cancelled as soon as `cancel` is set.

    An abandoned call runs on until the server answers (or times out); a response it then
    gets is closed at once, which tells the server to stop."""
    lock = threading.Lock()
    finished = threading.Event()
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the caller, re-raised there
            outcome["error"] = error
        with lock:
            finished.set()
            abandoned = outcome.get("abandoned", False)
        if abandoned and isinstance(outcome.get("value"), httpx.Response):
            outcome["value"].close()  # type: ignore[union-attr]

    threading.Thread(target=work, name="playground-send", daemon=True).start()
    while not finished.wait(0.02):
        if cancel.is_set():
            with lock:
                if not finished.is_set():
                    outcome["abandoned"] = True
                    raise _Cancelled
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


class _CancelWatcher:
    """Shuts the response's socket down as soon as `cancel` is set, waking a blocked read."""

    def __init__(self, cancel: threading.Event, response: httpx.Response) -> None:
        self._cancel = cancel
        self._response = response
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="playground-cancel", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            if self._cancel.wait(0.02):
                _shutdown_socket(self._response)
                return

    def stop(self) -> None:
        self._done.set()


def _shutdown_socket(response: httpx.Response) -> None:
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


def _retry_after_s(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after-ms")
    if value:
        try:
            return min(float(value) / 1000, MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return min(max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0), MAX_RETRY_AFTER_S)
        except (TypeError, ValueError):
            return None


def _parse_completion(data: bytes) -> ChatCompletion:
    try:
        payload = json.loads(data)
    except ValueError:
        raise APIError(200, f"the reply is not JSON: {_short(data.decode('utf-8', 'replace'))}", data) from None
    if isinstance(payload, dict) and "error" in payload and "choices" not in payload:
        raise APIError(200, error_message(payload), payload)
    try:
        return ChatCompletion.model_validate(payload)
    except ValidationError as error:
        raise APIError(200, f"the reply is not a chat completion: {error.errors()[0]['msg']}", payload) from None


def _model_ids(payload: object) -> list[str]:
    """SGP's {items: [{model_name, model_vendor}]} or OpenAI's {data: [{id}]}."""
    if not isinstance(payload, dict):
        return []
    if isinstance(payload.get("items"), list):
        ids = []
        for item in payload["items"]:
            name, vendor = item.get("model_name", ""), item.get("model_vendor")
            ids.append(f"{vendor}/{name}" if vendor and "/" not in name else name)
        return [i for i in ids if i]
    if isinstance(payload.get("data"), list):
        return [item["id"] for item in payload["data"] if isinstance(item, dict) and item.get("id")]
    return []

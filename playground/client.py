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
from typing import Callable, Iterator

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
from playground.runs import Run, RunRecorder
from playground.schema import ChatCompletion, ChatCompletionChunk, ChatRequest
from playground.sse import SSEDecoder

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0


class ChatStream:
    """Iterator of chunks over one open response. Closes the response when exhausted,
    on error, on close(), or when the consumer drops it early."""

    def __init__(self, response: httpx.Response, on_raw: Callable[[str], None] | None = None) -> None:
        self.response = response
        self._on_raw = on_raw
        self._iterator = self._chunks()

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

    def _chunks(self) -> Iterator[ChatCompletionChunk]:
        decoder = SSEDecoder()
        validate = ChatCompletionChunk.model_validate_json
        try:
            for raw in _iter_raw(self.response):
                for event in decoder.feed(raw):
                    chunk = self._decode(event.event, event.data, validate)
                    if chunk is None:
                        return
                    yield chunk
            for event in decoder.flush():
                chunk = self._decode(event.event, event.data, validate)
                if chunk is None:
                    return
                yield chunk
        finally:
            self.response.close()

    def _decode(self, event: str | None, data: str, validate) -> ChatCompletionChunk | None:
        """One event -> a chunk; None at [DONE]; raises StreamError for error events and bad data."""
        if data.startswith("[DONE]"):
            return None
        if self._on_raw is not None:
            self._on_raw(data)
        if event == "error":
            raise StreamError(None, _stream_error_message(data), data)
        try:
            chunk = validate(data)
        except ValidationError as error:
            raise StreamError(None, f"malformed stream data: {_short(data)} ({error.errors()[0]['msg']})", data) from None
        if chunk.__pydantic_extra__ and "error" in chunk.__pydantic_extra__:
            raise StreamError(None, error_message({"error": chunk.__pydantic_extra__["error"]}), data)
        return chunk


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

    def complete(self, request: ChatRequest) -> ChatCompletion:
        body = request.to_wire()
        body.pop("stream", None)
        body.pop("stream_options", None)
        response = self._send("POST", self.endpoint.chat_url, body)
        try:
            return _parse_completion(response.read())
        finally:
            response.close()

    def stream(self, request: ChatRequest, on_raw: Callable[[str], None] | None = None) -> ChatStream:
        body = request.to_wire()
        body["stream"] = True
        return ChatStream(self._send("POST", self.endpoint.chat_url, body), on_raw)

    def run(
        self,
        request: ChatRequest,
        on_chunk: Callable[[ChatCompletionChunk, RunRecorder], None] | None = None,
        cancel: threading.Event | None = None,
        preset: str | None = None,
    ) -> Run:
        """Send the request and record everything into a Run; never raises an APIError.

        With `cancel`, setting the event stops the stream at once (the socket is shut down,
        so even a read waiting on a silent server returns) and keeps the partial text."""
        recorder = RunRecorder(request, endpoint=self.endpoint.name, preset=preset)
        if not request.stream:
            try:
                recorder.add_completion(self.complete(request))
            except APIError as error:
                recorder.fail(error, partial=False)
            return recorder.finish()
        stream: ChatStream | None = None
        watcher: _CancelWatcher | None = None
        try:
            stream = self.stream(request, on_raw=recorder.add_raw)
            if cancel is not None:
                watcher = _CancelWatcher(cancel, stream.response)
            for chunk in stream:
                recorder.add_chunk(chunk)
                if on_chunk is not None:
                    on_chunk(chunk, recorder)
                if cancel is not None and cancel.is_set():
                    break
        except APIError as error:
            if not (cancel is not None and cancel.is_set()):
                recorder.fail(error, partial=stream is not None)
        finally:
            if watcher is not None:
                watcher.stop()
            if stream is not None:
                stream.close()
        if cancel is not None and cancel.is_set():
            recorder.cancel()
        return recorder.finish()

    def list_models(self) -> list[str]:
        response = self._send("GET", self.endpoint.models_url, None)
        try:
            payload = json.loads(response.read())
        except ValueError as error:
            raise APIError(response.status_code, f"model list is not JSON: {error}") from None
        finally:
            response.close()
        return _model_ids(payload)

    # --- sending with retries ----------------------------------------------------------

    def _send(self, method: str, url: str, body: dict | None) -> httpx.Response:
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
                if response.status_code < 400:
                    return response
                try:
                    failure = error_for_status(response.status_code, response.read(), response.reason_phrase)
                except httpx.HTTPError as error:
                    failure = APIConnectionError(f"{response.status_code}, then the connection broke: {error}")
                finally:
                    response.close()
                if response.status_code not in RETRY_STATUSES:
                    raise failure
                retry_after = _retry_after_s(response.headers)
            if attempt >= self.max_retries:
                raise failure
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            log.info("retrying %s %s in %.2fs after %s", method, url, delay, failure.kind)
            time.sleep(delay)
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)  # "equal jitter"


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

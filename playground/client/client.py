"""A thin synchronous httpx client for chat completions: complete, stream, run, list_models.

Retries (408/409/429/5xx, connection errors) happen only before any byte of a stream has
been handed to the caller. Errors carry the server's own words (see playground.client.errors).
"""

from __future__ import annotations

import functools
import json
import logging
import random
import ssl
import threading
import time
from typing import Callable

import httpx

from playground.client._cancel import Cancelled, CancelWatcher, unless_cancelled
from playground.client.endpoint import Endpoint
from playground.client.errors import APIConnectionError, APIError, APITimeoutError, error_for_status
from playground.client.run import Run, RunRecorder
from playground.client.schema import ChatCompletion, ChatRequest
from playground.client.streaming import ChatStream, iter_batches, parse_completion, read_body
from playground.secrets_check import RedactURLSecrets

log = logging.getLogger(__name__)
# Log lines quote URLs, and a URL may carry a key in its query string (?api_key=...).
for _logger in (log, logging.getLogger("httpx")):
    _logger.addFilter(RedactURLSecrets())

RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx: see _retryable
MAX_RETRY_AFTER_S = 60.0


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
        self._http = http or httpx.Client(timeout=endpoint.timeout, verify=_tls_context())

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
        body = self.endpoint.prepare(request).to_wire()
        body.pop("stream", None)
        body.pop("stream_options", None)
        response = self._send("POST", self.endpoint.chat_url, body, cancel)
        try:
            return parse_completion(read_body(response))
        finally:
            response.close()

    def stream(self, request: ChatRequest, on_raw: Callable[[str], None] | None = None) -> ChatStream:
        return ChatStream(self._open_stream(request), on_raw)

    def _open_stream(self, request: ChatRequest, cancel: threading.Event | None = None) -> httpx.Response:
        body = self.endpoint.prepare(request).to_wire()
        body["stream"] = True
        return self._send("POST", self.endpoint.chat_url, body, cancel)

    def run(
        self,
        request: ChatRequest,
        *,
        on_start: Callable[[RunRecorder], None] | None = None,
        on_chunk: Callable[[RunRecorder], None] | None = None,
        cancel: threading.Event | None = None,
        preset: str | None = None,
        on_read: Callable[[RunRecorder], None] | None = None,
    ) -> Run:
        """Send the request and record everything into a Run; never raises an APIError.

        on_start(recorder) is called once, before the request is sent (a caller that shows the
        text as it comes keeps the recorder and reads recorder.snapshot_text()); on_chunk(recorder)
        after each event's data has been recorded; on_read(recorder) after each network read's
        events have been recorded (a streamed answer only; once per read, so the fast path stays
        fast: a live view is woken by it). All run in this thread.

        With `cancel`, setting the event returns at once and keeps the partial text: mid-stream
        the socket is shut down (so even a read waiting on a silent server returns); before
        the answer (slow first byte, retry wait) the request is abandoned and its response
        closed as soon as it comes.

        The run records the request as sent: its token limit in the endpoint's field
        (Endpoint.prepare), so History and the run view show what the server was asked."""
        request = self.endpoint.prepare(request)
        recorder = RunRecorder(request, endpoint=self.endpoint.name, preset=preset)
        if on_start is not None:
            on_start(recorder)
        try:
            if cancel is not None and cancel.is_set():
                pass
            elif request.stream:
                self._stream_into(recorder, request, on_chunk, cancel, on_read)
            elif cancel is None:
                recorder.add_completion(self.complete(request))
            else:
                recorder.add_completion(unless_cancelled(lambda: self.complete(request, cancel), cancel))
        except Cancelled:
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
        on_chunk: Callable[[RunRecorder], None] | None,
        cancel: threading.Event | None,
        on_read: Callable[[RunRecorder], None] | None = None,
    ) -> None:
        """Stream into `recorder` (RunRecorder.add_batch: no chunk objects unless something
        unusual comes). Errors before the stream opens raise; after, they are recorded (partial)
        unless the caller cancelled."""
        if cancel is None:
            response = self._open_stream(request)
        else:
            # Waiting for the answer happens in a helper thread, so Stop returns at once even
            # during a slow first byte; once streaming, the watcher shuts the socket on Stop.
            response = unless_cancelled(lambda: self._open_stream(request, cancel), cancel)
        watcher = CancelWatcher(cancel, response) if cancel is not None else None
        batches = iter_batches(response)
        try:
            for batch in batches:
                if on_chunk is None:
                    recorder.add_batch(batch)  # what one read brought, at once
                else:  # one event at a time: the callback sees each, and may stop the run after it
                    for data in batch:
                        recorder.add_data(data)
                        on_chunk(recorder)
                        if cancel is not None and cancel.is_set():
                            return
                if on_read is not None:
                    on_read(recorder)
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
            payload = json.loads(read_body(response))
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
                if not _retryable(response.status_code):
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


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client, made as httpx makes its own: reading the CA bundle
    takes tens of milliseconds, and every page run makes a client."""
    return httpx.create_ssl_context()


def _retryable(status_code: int) -> bool:
    return status_code in RETRY_STATUSES or status_code >= 500


def _retry_after_s(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after-ms")
    if value:
        try:  # clamped at 0: time.sleep() refuses a negative wait
            return min(max(float(value) / 1000, 0.0), MAX_RETRY_AFTER_S)
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

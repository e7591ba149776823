"""Stopping a request from another thread: before its answer comes, and while it streams."""

from __future__ import annotations

import socket
import threading
from typing import Callable, TypeVar

import httpx

T = TypeVar("T")


class Cancelled(Exception):
    """The caller's cancel event was set before the answer came."""


def unless_cancelled(call: Callable[[], T], cancel: threading.Event) -> T:
    """call() in a helper thread; its result, or Cancelled as soon as `cancel` is set.

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
                    raise Cancelled
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


class CancelWatcher:
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

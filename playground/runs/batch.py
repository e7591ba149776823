"""`Batch`: runs a list of (endpoint, request) items in plain worker threads, with one cancel
event for all of them. Compare's `Run all` is a batch of one item per pane; Repeat is a batch of
the same item k times; the Playground's Run is a batch of one. Pages read it (`snapshot`,
`finished`, `done`) and redraw; the threads never touch Streamlit. Each finished Run goes to
`on_finish` (the run store). A live view is told when an item's text grows or it finishes
(`listen`) and reads only what was appended (`text_since`), so it neither polls nor rebuilds.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Sequence

from playground.client.client import ChatClient
from playground.client.endpoint import Endpoint
from playground.client.run import Run, RunError, RunRecorder
from playground.client.schema import ChatRequest

log = logging.getLogger(__name__)


class Batch:
    """Runs each (endpoint, request) item once in worker threads, at most `concurrency` at a time.

    `cancel()` stops every stream at once (each Run keeps its partial text, marked cancelled);
    items not started yet are skipped (their slot stays None). `on_finish(run)` is called in the
    worker thread for every run that happened (the run store's save); its errors are logged,
    never raised, and kept in `errors`."""

    def __init__(
        self,
        items: Sequence[tuple[Endpoint, ChatRequest]],
        *,
        concurrency: int | None = None,
        preset: str | Sequence[str | None] | None = None,
        on_finish: Callable[[Run], None] | None = None,
        client_factory: Callable[[Endpoint], ChatClient] = ChatClient,
    ) -> None:
        if not items:
            raise ValueError("a batch needs at least one request")
        self.items = list(items)
        self.concurrency = max(1, min(concurrency or len(self.items), len(self.items)))
        self._presets = list(preset) if isinstance(preset, (list, tuple)) else [preset] * len(self.items)
        self.runs: list[Run | None] = [None] * len(self.items)
        self.errors: list[str] = []
        self._on_finish = on_finish
        self._client_factory = client_factory
        self._recorders: dict[int, RunRecorder] = {}
        self._finished = [threading.Event() for _ in self.items]
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._next = 0
        self._threads: list[threading.Thread] = []
        self._redraw_claimed = False
        self._started = False
        # Replaced whole (never changed in place): a worker thread reads it without the lock.
        self._listeners: tuple[Callable[[int], None], ...] = ()

    def __len__(self) -> int:
        return len(self.items)

    def start(self) -> "Batch":
        if self._started:
            return self
        self._started = True
        for n in range(self.concurrency):
            thread = threading.Thread(target=self._work, name=f"playground-batch-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def finished(self, index: int) -> bool:
        return self._finished[index].is_set()

    @property
    def done(self) -> bool:
        return all(event.is_set() for event in self._finished)

    @property
    def finished_count(self) -> int:
        return sum(event.is_set() for event in self._finished)

    def started(self, index: int) -> bool:
        """True once item `index` has its first chunk (or is finished)."""
        recorder = self._recorders.get(index)
        return (recorder is not None and recorder.chunk_count > 0) or self.finished(index)

    def snapshot(self, index: int, choice: int = 0) -> str:
        """The text of item `index` (its choice `choice`) so far; its final text once finished."""
        run = self.runs[index]
        if run is not None:
            return run.choices[choice].text if choice < len(run.choices) else ""
        recorder = self._recorders.get(index)
        return recorder.snapshot_text(choice) if recorder is not None else ""

    def growth(self, index: int, choice: int = 0) -> int:
        """A number that changes whenever snapshot(index, choice) does (cheap to ask often)."""
        if self.runs[index] is not None:
            return -1
        recorder = self._recorders.get(index)
        return recorder.text_pieces(choice) if recorder is not None else 0

    def text_since(self, index: int, choice: int = 0, start: int = 0) -> tuple[str, int]:
        """Item `index`'s text (its choice `choice`) from its piece `start` on, and how many pieces
        it has now: pass that back as the next `start`. Costs what was appended, not the whole
        text. Pieces are what the stream brought; a finished item's pieces join to its text."""
        recorder = self._recorders.get(index)
        if recorder is None:
            return "", 0
        return recorder.text_since(start, choice)

    def listen(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Call `listener(index)` whenever item `index`'s text may have grown (after each network
        read is recorded: the text is readable when it is called) and once when it finished
        (finished(index) is then True). It runs in a worker thread, so it must be quick and never
        block: wake whoever shows the text. Its errors are logged. Returns the call that stops it."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def stop() -> None:
            with self._lock:
                self._listeners = tuple(other for other in self._listeners if other is not listener)

        return stop

    def _tell(self, index: int) -> None:
        for listener in self._listeners:
            try:
                listener(index)
            except Exception:  # a view's bug must not lose the run
                log.exception("a listener of batch item %d failed", index)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every item finished (tests and benches; pages poll instead)."""
        for event in self._finished:
            if not event.wait(timeout):
                return False
        return True

    def claim_final_redraw(self) -> bool:
        """True exactly once, for the first caller after the whole batch is done: that caller
        triggers the one redraw that shows the finished results."""
        with self._lock:
            if self._redraw_claimed or not self.done:
                return False
            self._redraw_claimed = True
            return True

    # --- worker side ---------------------------------------------------------------------

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= len(self.items):
                return None
            index, self._next = self._next, self._next + 1
            return index

    def _work(self) -> None:
        clients: dict[int, ChatClient] = {}
        try:
            while (index := self._take()) is not None:
                if self._cancel.is_set():
                    self._finished[index].set()  # never started: its slot stays None
                    self._tell(index)
                    continue
                endpoint, request = self.items[index]
                client = clients.get(id(endpoint))
                if client is None:
                    client = clients[id(endpoint)] = self._client_factory(endpoint)
                run = self._run_one(client, index, endpoint, request)
                self.runs[index] = run
                if self._on_finish is not None:
                    try:
                        self._on_finish(run)
                    except Exception as error:  # a full disk must not lose the answer on screen
                        log.warning("could not save run %s: %s", run.id, error)
                        self.errors.append(f"could not save run {run.id}: {error}")
                self._finished[index].set()
                self._tell(index)
        finally:
            for client in clients.values():
                client.close()

    def _run_one(self, client: ChatClient, index: int, endpoint: Endpoint, request: ChatRequest) -> Run:
        def on_start(recorder: RunRecorder) -> None:  # the pages read the text so far from it
            self._recorders[index] = recorder

        def on_read(recorder: RunRecorder) -> None:  # the pages' live views are woken by it
            if self._listeners:
                self._tell(index)

        try:
            return client.run(request, on_start=on_start, cancel=self._cancel, preset=self._presets[index],
                              on_read=on_read)
        except Exception as error:  # anything but an APIError (those come back inside the Run)
            log.exception("run %d failed outside the client's error handling", index)
            return Run(request=request, endpoint=endpoint.name, preset=self._presets[index],
                       error=RunError.from_exception(error))

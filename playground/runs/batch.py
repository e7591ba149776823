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
from typing import Callable, Mapping, Sequence

from playground.client.client import ChatClient
from playground.client.endpoint import Endpoint
from playground.client.run import Run, RunError, RunRecorder
from playground.client.schema import ChatRequest

log = logging.getLogger(__name__)

DEFAULT_PER_ENDPOINT = 4  # with a limit per endpoint: one the mapping does not name


class Batch:
    """Runs each (endpoint, request) item once in worker threads, at most `concurrency` at a time:
    one number for the whole batch, or {endpoint name: number} for a limit per endpoint (an
    experiment's cells; an endpoint not named gets DEFAULT_PER_ENDPOINT).

    `cancel()` stops every stream at once (each Run keeps its partial text, marked cancelled);
    items not started yet are skipped (their slot stays None). `on_finish(run)` is called in the
    worker thread for every run that happened (the run store's save); its errors are logged,
    never raised, and kept in `errors`. `on_item(index, run)` is called in the worker thread once
    per item when it is finished (run None: skipped after a cancel), after `finished(index)` is
    True (an experiment grades the answer there); its errors are logged."""

    def __init__(
        self,
        items: Sequence[tuple[Endpoint, ChatRequest]],
        *,
        concurrency: int | Mapping[str, int] | None = None,
        preset: str | Sequence[str | None] | None = None,
        on_finish: Callable[[Run], None] | None = None,
        on_item: Callable[[int, Run | None], None] | None = None,
        client_factory: Callable[[Endpoint], ChatClient] = ChatClient,
    ) -> None:
        if not items:
            raise ValueError("a batch needs at least one request")
        self.items = list(items)
        # The queues the workers take from: one for the batch, or one per endpoint (its own limit).
        if isinstance(concurrency, Mapping):
            groups: dict[str, list[int]] = {}
            for index, (endpoint, _) in enumerate(self.items):
                groups.setdefault(endpoint.name, []).append(index)
            self._queues = [(indexes, max(1, min(int(concurrency.get(name, DEFAULT_PER_ENDPOINT)), len(indexes))))
                            for name, indexes in groups.items()]
        else:
            self._queues = [(list(range(len(self.items))), max(1, min(concurrency or len(self.items),
                                                                       len(self.items))))]
        self.concurrency = sum(limit for _, limit in self._queues)
        self._presets = list(preset) if isinstance(preset, (list, tuple)) else [preset] * len(self.items)
        self.runs: list[Run | None] = [None] * len(self.items)
        self.errors: list[str] = []
        self._on_finish = on_finish
        self._on_item = on_item
        self._client_factory = client_factory
        self._recorders: dict[int, RunRecorder] = {}
        self._finished = [threading.Event() for _ in self.items]
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._next = [0] * len(self._queues)  # per queue: the position of its next item
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
        for queue, (_, limit) in enumerate(self._queues):
            for _ in range(limit):
                name = f"playground-batch-{len(self._threads)}"
                thread = threading.Thread(target=self._work, args=(queue,), name=name, daemon=True)
                self._threads.append(thread)
        for thread in self._threads:
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

    def _take(self, queue: int) -> int | None:
        indexes, _ = self._queues[queue]
        with self._lock:
            position = self._next[queue]
            if position >= len(indexes):
                return None
            self._next[queue] = position + 1
            return indexes[position]

    def _work(self, queue: int) -> None:
        clients: dict[int, ChatClient] = {}
        try:
            while (index := self._take(queue)) is not None:
                if self._cancel.is_set():
                    self._finished[index].set()  # never started: its slot stays None
                    self._tell(index)
                    self._item_done(index, None)
                    continue
                endpoint, request = self.items[index]
                try:
                    client = clients.get(id(endpoint))
                    if client is None:
                        client = clients[id(endpoint)] = self._client_factory(endpoint)
                except Exception as error:  # a client that cannot even be built: the item fails, not the batch
                    log.exception("no client for %s", endpoint.name)
                    run = Run(request=request, endpoint=endpoint.name, preset=self._presets[index],
                              error=RunError.from_exception(error))
                else:
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
                self._item_done(index, run)
        finally:
            for client in clients.values():
                client.close()

    def _item_done(self, index: int, run: Run | None) -> None:
        if self._on_item is not None:
            try:
                self._on_item(index, run)
            except Exception:  # the caller's bug must not stop the other items
                log.exception("on_item for batch item %d failed", index)

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

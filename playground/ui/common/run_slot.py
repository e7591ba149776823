"""A page's run in flight: one `playground.runs.batch.Batch` under one session key. Every page
that sends requests (the Playground's Run, Compare's Run all and Repeat, History's rerun, the
Experiments matrix) holds its runs in a RunSlot, so starting, stopping and seeing a run finish
work the same everywhere:

- `start(items, ...)` sends them in worker threads (each finished Run saved to the history);
  `hold(job)` keeps one made elsewhere (an experiment, whose cells run through a Batch of its own);
- `stop()` is `Stop generating`: every stream stops at once and keeps its partial text, and the
  click's own page run already shows the stopped runs (a cancelled worker ends in tens of ms);
- `current()` is the batch while it runs, and after until it is taken (a page draws its live
  views from it: playground.ui.common.live_view, whose fragments claim the one final redraw with
  Batch.claim_final_redraw, also when it finished during the page run that draws them);
- `take_finished()` hands a finished batch back once, to move its runs where the page shows them.

Nothing but `stop()` stops a run: a rerun, an edit or a page switch draws the same batch again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import streamlit as st

from playground.client.endpoint import Endpoint
from playground.client.schema import ChatRequest
from playground.runs.batch import Batch
from playground.runs.store import history_saver
from playground.ui.common.user import current_user

STOP_WAIT_S = 2.0  # a bound, not a delay: a cancelled worker is done in tens of ms (then saves)


class Job(Protocol):
    """What a slot holds: a Batch, or anything that runs one and stops and ends like it."""

    @property
    def done(self) -> bool: ...
    def cancel(self) -> None: ...
    def wait(self, timeout: float | None = None) -> object: ...


@dataclass(frozen=True)
class RunSlot:
    key: str  # the session key the batch lives under (None when nothing runs or waits to be taken)
    source: str | None = None  # where its runs come from, in the history (runs.store.SOURCES)

    def start(self, items: Sequence[tuple[Endpoint, ChatRequest]], *, preset: str | Sequence[str | None] | None = None,
              concurrency: int | None = None) -> Batch:
        """Send `items` in worker threads; each finished Run is saved to the history (with its
        source, and the signed-in user when there is one)."""
        saver = history_saver((endpoint for endpoint, _ in items), source=self.source, user=current_user())
        batch = Batch(items, concurrency=concurrency, preset=preset, on_finish=saver).start()
        return self.hold(batch)

    def hold(self, job: Job) -> Job:
        st.session_state[self.key] = job
        return job

    def current(self) -> Job | None:
        """The batch running, or finished and not taken yet."""
        return st.session_state.get(self.key)

    def stop(self) -> None:
        """`Stop generating`: cancel, and give the workers a moment to end so that the page run
        this click starts already shows the stopped runs."""
        current = self.current()
        if current is not None:
            current.cancel()
            current.wait(STOP_WAIT_S)

    def take_finished(self) -> Job | None:
        """A finished batch, once: the slot is empty after."""
        current = self.current()
        if current is None or not current.done:
            return None
        st.session_state[self.key] = None
        return current

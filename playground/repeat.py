"""Run requests in the background and summarise repeated samples of one request.

Two parts, no Streamlit in either:

- `Batch`: runs a list of (endpoint, request) items in plain worker threads, with one cancel
  event for all of them. Compare's `Run all` is a batch of one item per pane; Repeat is a batch
  of the same item k times. Pages poll it (`snapshot`, `finished`, `done`) and redraw; the
  threads never touch Streamlit. Each finished Run goes to `on_finish` (the run store).
- `summarize(runs)`: distinct answers with counts, the exact-match rate, where the samples fork
  (the first token position at which they stop agreeing) and each sample's total logprob.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from playground import logprobs
from playground.client import ChatClient
from playground.endpoint import Endpoint
from playground.runs import Run, RunError, RunRecorder
from playground.schema import ChatRequest, TokenLogprob

log = logging.getLogger(__name__)

MAX_REPEAT = 20
END = "<end>"  # the branch taken by a sample that stops where others go on

# --- running in the background ----------------------------------------------------------


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
        finally:
            for client in clients.values():
                client.close()

    def _run_one(self, client: ChatClient, index: int, endpoint: Endpoint, request: ChatRequest) -> Run:
        def on_start(recorder: RunRecorder) -> None:  # the pages read the text so far from it
            self._recorders[index] = recorder

        try:
            return client.run(request, on_start=on_start, cancel=self._cancel, preset=self._presets[index])
        except Exception as error:  # anything but an APIError (those come back inside the Run)
            log.exception("run %d failed outside the client's error handling", index)
            return Run(request=request, endpoint=endpoint.name, preset=self._presets[index],
                       error=RunError.from_exception(error))


# --- summarising repeated samples --------------------------------------------------------

_WORDS = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


def tokens_of(run: Run) -> tuple[list[str], bool]:
    """The answer's tokens: the server's (from logprobs) when it sent them, else words and
    punctuation split from the text. The flag says which (True: the server's tokens)."""
    choice = run.choices[0] if run.choices else None
    if choice is not None and choice.logprobs:
        return [token.token for token in choice.logprobs], True
    return words(run.text), False


def words(text: str) -> list[str]:
    """Words, runs of whitespace and punctuation marks: the unit to compare answers in when
    not every answer came with the server's tokens."""
    return _WORDS.findall(text)


def total_logprob(tokens: Sequence[TokenLogprob]) -> float | None:
    """Sum of the chosen tokens' logprobs (the log probability of the whole answer; a token
    marked "outside the top 20" is left out, as in playground.logprobs); None without logprobs."""
    if not tokens:
        return None
    return logprobs.total_logprob(tokens)


@dataclass(frozen=True)
class AnswerGroup:
    text: str
    count: int
    samples: tuple[int, ...]  # 0-based sample numbers with this exact text


def group_answers(texts: Sequence[str]) -> list[AnswerGroup]:
    """Distinct texts, most frequent first (ties: the one seen first)."""
    members: dict[str, list[int]] = {}
    for n, text in enumerate(texts):
        members.setdefault(text, []).append(n)
    groups = [AnswerGroup(text, len(ns), tuple(ns)) for text, ns in members.items()]
    return sorted(groups, key=lambda g: (-g.count, g.samples[0]))


def exact_match_rate(texts: Sequence[str]) -> float | None:
    """Share of samples identical to the most common answer: 1.0 when all agree (a determinism
    check passes), 1/k when all differ. None for no samples."""
    if not texts:
        return None
    return max(Counter(texts).values()) / len(texts)


def first_difference(a: Sequence[str], b: Sequence[str]) -> int | None:
    """The first position where two token sequences differ (a shorter one ends there); None if equal."""
    for position, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return position
    return None if len(a) == len(b) else min(len(a), len(b))


@dataclass(frozen=True)
class Fork:
    """Where the samples stop agreeing: every sample shares `prefix` (the first `position`
    tokens), then they take different `branches` (token -> how many samples; END for a
    sample that ends there)."""

    position: int
    prefix: str
    branches: dict[str, int]


def fork_point(sequences: Sequence[Sequence[str]]) -> Fork | None:
    """The first position where not all sequences agree; None when they are all identical
    (or there are fewer than two)."""
    if len(sequences) < 2:
        return None
    position = 0
    while True:
        at = [seq[position] if position < len(seq) else END for seq in sequences]
        if len(set(at)) > 1:
            return Fork(position, "".join(sequences[0][:position]), dict(Counter(at).most_common()))
        if at[0] == END:
            return None
        position += 1


@dataclass(frozen=True)
class Sample:
    number: int  # 1-based, in the order the samples were requested
    run: Run
    group: int  # 1-based index into RepeatSummary.groups
    tokens: int
    total_logprob: float | None
    forks_from_first_at: int | None  # first token differing from sample 1 (None: same tokens)


@dataclass(frozen=True)
class RepeatSummary:
    samples: list[Sample]
    groups: list[AnswerGroup]
    exact_match_rate: float | None
    fork: Fork | None
    server_tokens: bool  # tokens came from the server's logprobs (else a word split of the text)
    failed: int = 0  # samples that ended in an error (left out of the grouping)
    skipped: int = 0  # samples never run (stopped before they started)
    notes: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        return len(self.samples)

    @property
    def distinct(self) -> int:
        return len(self.groups)

    @property
    def deterministic(self) -> bool:
        return self.k > 1 and self.distinct == 1


def summarize(runs: Sequence[Run | None]) -> RepeatSummary:
    """Summarise k samples of one request. Runs that failed (an error with no text) or never ran
    (None) are counted apart and left out of the grouping; a stopped run's partial text counts."""
    usable = [(n, run) for n, run in enumerate(runs, 1) if run is not None and not (run.error and not run.text)]
    failed = sum(1 for run in runs if run is not None and run.error and not run.text)
    skipped = sum(1 for run in runs if run is None)
    texts = [run.text for _, run in usable]
    groups = group_answers(texts)
    group_of = {group.text: i for i, group in enumerate(groups, 1)}
    token_lists = [tokens_of(run) for _, run in usable]
    server_tokens = bool(token_lists) and all(flag for _, flag in token_lists)
    sequences = [tokens for tokens, _ in token_lists]
    if not server_tokens:  # compare like with like: a word split for every sample
        sequences = [words(text) for text in texts]
    notes = []
    if any(run.partial for _, run in usable):
        notes.append("Some samples were stopped or cut off: their partial text is compared as it is.")
    samples = []
    for (number, run), tokens in zip(usable, sequences):
        choice = run.choices[0] if run.choices else None
        samples.append(Sample(
            number=number, run=run, group=group_of[run.text], tokens=len(tokens),
            total_logprob=total_logprob(choice.logprobs) if choice is not None else None,
            forks_from_first_at=first_difference(sequences[0], tokens),
        ))
    return RepeatSummary(samples=samples, groups=groups, exact_match_rate=exact_match_rate(texts),
                         fork=fork_point(sequences), server_tokens=server_tokens,
                         failed=failed, skipped=skipped, notes=notes)

"""Running an experiment: every case x variant x repeat, at most `concurrency` requests at a
time per endpoint, each answer graded, saved to the history and recorded as a trial.

    runner = ExperimentRunner(experiment, endpoints, on_trial=draw).start()
    runner.progress()      # done / total, tokens and cost so far (poll it, or use on_trial)
    runner.stop()          # in-flight requests end at once; finished trials stay
    result = runner.wait() # the ExperimentResult (also in the run store)

The cells' requests go through a playground.runs.batch.Batch, as every page's runs do (with a
limit per endpoint), and each answer is graded in its worker as it finishes (Batch's on_item).
Nothing raises out of a worker: an HTTP error, a missing variable or a bug becomes an error
trial. One writer thread saves Runs and trials in batches, so the workers never wait on SQLite. An experiment that
validation refuses (a check naming no case's variable, say) raises ExperimentError when the
runner is built, before any request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

from playground.client.client import ChatClient
from playground.client.endpoint import Endpoint
from playground.client.run import Run
from playground.client.schema import ChatRequest
from playground.experiments.checks import GradeContext, confidence_labels, grade
from playground.experiments.embeddings import embed
from playground.experiments.model import Experiment, Trial
from playground.experiments.results import ExperimentResult, ExperimentStore
from playground.experiments.validation import ExperimentError, validate
from playground.presets import Check, MissingVariableError
from playground.runs.batch import Batch
from playground.sandbox.launcher import served_at_once
from playground.settings import Prices, database_target

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class Progress:
    done: int  # trials finished (any status)
    total: int
    passed: int
    failed: int
    errors: int
    tokens: int  # prompt + completion, so far
    cost: float | None  # dollars so far; None when no answer had a price
    elapsed_s: float
    unchecked: int = 0  # answers no check applied to

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def remaining_s(self) -> float | None:
        """A straight-line estimate from the pace so far (None before the first trial)."""
        if not self.done or self.elapsed_s <= 0:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)


TrialCallback = Callable[[Trial, Progress], None]


class ExperimentRunner:
    """One run of `experiment` against `endpoints` (by name; a variant without an endpoint goes
    to `default_endpoint`, else the first one).

    `store`: where Runs and trials are saved (default: the app's run store, $PLAYGROUND_DATA_DIR,
    read now in the caller's thread); `save=False` keeps everything in memory. `concurrency`:
    per endpoint, one number for all or {endpoint name: number}; None: as many as the local
    sandbox generates at once (its /healthz), DEFAULT_CONCURRENCY for any other endpoint. `on_trial(trial, progress)`
    runs in a worker thread after each trial: keep it short, and do not touch Streamlit there
    (store what it gives; the page redraws from it). `grader`, `grader_model`: where rubric checks
    that name no grader of their own are graded (default: the variant's endpoint and model)."""

    def __init__(
        self,
        experiment: Experiment,
        endpoints: Sequence[Endpoint] | Mapping[str, Endpoint],
        *,
        default_endpoint: str | None = None,
        store: ExperimentStore | None = None,
        save: bool = True,
        concurrency: int | Mapping[str, int] | None = None,
        prices: Prices | None = None,
        on_trial: TrialCallback | None = None,
        client_factory: Callable[[Endpoint], ChatClient] = ChatClient,
        grader: str | None = None,
        grader_model: str | None = None,
    ) -> None:
        validate(experiment)  # ExperimentError (a ValueError) before anything starts
        named = dict(endpoints) if isinstance(endpoints, Mapping) else {e.name: e for e in endpoints}
        if not named:
            raise ValueError("no endpoint to send the experiment to")
        graders = {check.grader for case in experiment.cases for check in experiment.checks_for(case)
                   if check.kind == "rubric" and check.grader} | ({grader} if grader else set())
        unknown = sorted(name for name in graders if name not in named)
        if unknown:
            raise ExperimentError([f"no grader endpoint named {unknown[0]!r} (configured: {', '.join(named)})"])
        self.grader, self.grader_model, self._named = grader, grader_model, named
        default = default_endpoint or next(iter(named))
        self.experiment = experiment
        self.endpoints: list[Endpoint] = []
        for variant in experiment.variants:
            name = variant.endpoint or default
            if name not in named:
                raise ValueError(f"variant {variant.label!r}: no endpoint named {name!r} "
                                 f"(configured: {', '.join(named)})")
            self.endpoints.append(named[name])
        self.store = (store or ExperimentStore(database_target())) if save else None
        self.result = ExperimentResult(experiment=experiment)
        self.prices = prices
        self.errors: list[str] = []  # what could not be saved (the trials themselves are kept)
        self._concurrency = concurrency
        self._on_trial = on_trial
        self._client_factory = client_factory
        self._labels = confidence_labels(experiment.checks)
        self._forbid = sorted({e.api_key for e in named.values() if e.api_key})
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._batch: Batch | None = None
        self._cells: list[tuple[int, int, int]] = []  # the batch's items' cells, in its order
        self._started = False
        self._done = threading.Event()
        self._left = 0  # cells whose trial is not recorded yet
        self._t0 = 0.0
        self._t0_wall = 0.0
        self._counts = {"pass": 0, "fail": 0, "error": 0, "stopped": 0, "unchecked": 0}
        self._tokens = 0
        self._cost: float | None = None
        self._keeper = None  # held open while running: see ExperimentStore.keep_open
        self._writes: queue.SimpleQueue[tuple[Run | None, Trial] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None

    # --- control ------------------------------------------------------------------------

    def start(self) -> "ExperimentRunner":
        if self._started:
            return self
        self._started = True
        self._t0 = time.perf_counter()
        if self.store is not None:
            self._keeper = self.store.keep_open()
            self.store.begin(self.result)
            self._writer = threading.Thread(target=self._write, name="experiment-writer", daemon=True)
            self._writer.start()
        items, presets, unsent = [], [], []
        for cell in self.experiment.cells():
            case_index, variant_index, repeat = cell
            variant = self.experiment.variants[variant_index]
            try:
                request = variant.request_for(self.experiment.cases[case_index])
            except MissingVariableError as error:  # never sent: an error trial of its own
                unsent.append(Trial(case=case_index, variant=variant_index, repeat=repeat, status="error",
                                    error=str(error)))
                continue
            items.append((self.endpoints[variant_index], request))
            presets.append(variant.preset)
            self._cells.append(cell)
        self._left = len(items) + len(unsent)
        for trial in unsent:
            self._record(trial, None)
        if items:
            limits = {endpoint.name: self._limit_for(endpoint) for endpoint, _ in items}
            self._batch = Batch(items, concurrency=limits, preset=presets, on_item=self._graded,
                                client_factory=self._client_factory)
            if self._stop.is_set():
                self._batch.cancel()
            self._t0_wall = time.time()  # cells wait from here; a Run's started_at (its send) is wall-clock
            self._batch.start()
        elif not unsent:
            self._finish()
        return self

    def _limit_for(self, endpoint: Endpoint) -> int:
        if isinstance(self._concurrency, Mapping):
            return int(self._concurrency.get(endpoint.name, DEFAULT_CONCURRENCY))
        if self._concurrency is None:
            return served_at_once(endpoint) or DEFAULT_CONCURRENCY
        return int(self._concurrency)

    def stop(self) -> None:
        """Stop: requests in flight end now (their trials marked stopped), no new ones start."""
        self._stop.set()
        if self._batch is not None:
            self._batch.cancel()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> ExperimentResult | None:
        """Block until every worker ended; the result, or None on timeout."""
        return self.result if self._done.wait(timeout) else None

    def progress(self) -> Progress:
        with self._lock:
            return self._progress()

    def _progress(self) -> Progress:  # under self._lock
        c = self._counts
        return Progress(done=sum(c.values()), total=self.experiment.total, passed=c["pass"], failed=c["fail"],
                        errors=c["error"], tokens=self._tokens, cost=self._cost,
                        elapsed_s=(time.perf_counter() - self._t0) if self._t0 else 0.0, unchecked=c["unchecked"])

    def trials(self) -> list[Trial]:
        """A copy of the trials finished so far (safe to read while workers add to them)."""
        with self._lock:
            return list(self.result.trials)

    # --- workers ------------------------------------------------------------------------

    def _graded(self, index: int, run: Run | None) -> None:
        """Batch's on_item: grade the cell's answer and record its trial (None: skipped after Stop)."""
        if run is not None:
            case_index, variant_index, repeat = self._cells[index]
            self._record(*self._grade(run, self._endpoint_of(index), case_index, variant_index, repeat))
        else:
            self._count_down()

    def _endpoint_of(self, index: int) -> Endpoint:
        assert self._batch is not None
        return self._batch.items[index][0]

    def _grade(self, run: Run, endpoint: Endpoint, case_index: int, variant_index: int,
               repeat: int) -> tuple[Trial, Run]:
        case = self.experiment.cases[case_index]
        variant = self.experiment.variants[variant_index]
        where = dict(case_index=case_index, variant=variant_index, repeat=repeat)
        try:
            context = GradeContext(prices=self.prices, folder=self.experiment.folder,
                                   ask=lambda check, request: self._ask(check, request, endpoint),
                                   embed=lambda model, texts: embed(endpoint, model, texts))
            trial = grade(run, variant.case_for(case), self.experiment.checks_for(case), labels=self._labels,
                          pass_threshold=self.experiment.pass_threshold, context=context, **where)
            # Latency is the run's own (from its send); the wait for a free slot is told apart.
            trial = replace(trial, queued_s=round(max(0.0, run.started_at.timestamp() - self._t0_wall), 3))
        except Exception as error:  # a check that breaks on odd data marks the cell, not the run
            log.exception("grading cell %s failed", where)
            trial = Trial(case=case_index, variant=variant_index, repeat=repeat, status="error", run_id=run.id,
                          answer=run.text, error=f"grading failed: {type(error).__name__}: {error}")
        return trial, run

    def _ask(self, check: Check, request: ChatRequest, endpoint: Endpoint) -> Run:
        """The grader's answer for a rubric check: on the check's grader endpoint, else the
        runner's (--grader), else the variant's own; its model the check's, else the runner's,
        else the variant's (already in `request`). Each call has its own client; Stop ends it."""
        name = check.grader or self.grader
        target = self._named[name] if name else endpoint
        if check.model is None and self.grader_model:
            request = request.model_copy(update={"model": self.grader_model})
        client = self._client_factory(target)
        try:
            return client.run(request, cancel=self._stop)
        finally:
            client.close()

    def _record(self, trial: Trial, run: Run | None) -> None:
        with self._lock:
            self.result.trials.append(trial)
            self._counts[trial.status] += 1
            self._tokens += trial.prompt_tokens + trial.completion_tokens
            if trial.cost is not None:
                self._cost = (self._cost or 0.0) + trial.cost
            progress = self._progress()  # taken with the trial: callbacks see done counts in order
        if self.store is not None:
            self._writes.put((run, trial))
        if self._on_trial is not None:
            try:
                self._on_trial(trial, progress)
            except Exception:  # the page's callback must not stop the experiment
                log.exception("on_trial callback failed")
        self._count_down()

    def _count_down(self) -> None:
        """One cell less to go; the last one ends the run."""
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self._finish()

    def _write(self) -> None:
        """Save what the workers finished, as many at a time as have piled up (None: the end)."""
        assert self.store is not None
        while True:
            batch = [self._writes.get()]
            while True:
                try:
                    batch.append(self._writes.get_nowait())
                except queue.Empty:
                    break
            items = [item for item in batch if item is not None]
            self._save_runs([run for run, _ in items if run is not None])
            try:
                self.store.add_trials(self.result.id, [trial for _, trial in items])
            except Exception as error:
                log.warning("could not save %d trials: %s", len(items), error)
                self.errors.append(f"could not save {len(items)} trials: {error}")
            if None in batch:
                return

    def _save_runs(self, runs: list[Run]) -> None:
        assert self.store is not None
        try:
            self.store.runs.save_many(runs, forbid=self._forbid, source="experiment", user=self.result.user)
            return
        except Exception:  # one bad run (a key in it, say) must not cost the others: one by one
            pass
        for run in runs:
            try:
                self.store.runs.save(run, forbid=self._forbid, source="experiment", user=self.result.user)
            except Exception as error:  # a full disk must not lose the answer on screen
                log.warning("could not save run %s: %s", run.id, error)
                self.errors.append(f"could not save run {run.id}: {error}")

    def _finish(self) -> None:
        result = self.result
        result.finished_at = time.time()
        result.status = "stopped" if self._stop.is_set() else "finished"
        if self._writer is not None:
            self._writes.put(None)
            self._writer.join()
        if self.store is not None:
            try:
                self.store.finish(result)
            except Exception as error:
                self.errors.append(f"could not save the end of the run: {error}")
            if self._keeper is not None:
                self._keeper.close()
        self._done.set()


def run_experiment(experiment: Experiment, endpoints: Sequence[Endpoint] | Mapping[str, Endpoint],
                   **options) -> ExperimentResult:
    """Run it to the end in this thread (the CLI, tests); options as for ExperimentRunner."""
    runner = ExperimentRunner(experiment, endpoints, **options).start()
    result = runner.wait()
    assert result is not None
    return result

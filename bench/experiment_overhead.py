"""The experiment engine's own cost (exit 1 on a miss):

- run: 200 cells against a loopback server that answers each request in 50 ms, 4 at a time
  (the default per endpoint), every Run and trial saved to a run store, against a bare loop of
  four threads with one ChatClient each sending the same requests over the same server (what
  the engine adds on top of the client): engine/bare, the median of PAIRED_ROUNDS rounds' own
  ratios (each round runs both, in alternating order, so they share the machine's mood, as
  bench/stream_overhead.py does), target <= 1.1. The wall time against the ideal
  200 x 50 ms / 4 is printed beside, not gated.
- figures: per-variant summaries, the matrix's cells, calibration and the comparison with an
  earlier run, for 1,000 cases x 4 variants (4,000 trials): target < 200 ms.
- page: the Experiments page (the whole app through AppTest: shell, sidebar, navigation) drawing
  a 1,000 cases x 4 variants result, as a user opening it sees it: the preset's 1,000 cases in
  the editor, the matrix, the per-variant summary, the comparison with an earlier run of the same
  size, calibration and the first cell's stored run. One at.run(), after a warm-up run (imports,
  caches), best of 3: target < 1.5 s.

The server (tests/scripted_server.py) runs in a process of its own, so that its threads do not
share this process's interpreter lock with the engine's; it also stands in for the local sandbox
while the page is drawn (the sidebar asks it for its health and models).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playground.client.client import ChatClient  # noqa: E402
from playground.client.endpoint import Endpoint  # noqa: E402
from playground.client.schema import ChatRequest  # noqa: E402
from playground.experiments import (  # noqa: E402
    Case,
    Experiment,
    ExperimentResult,
    ExperimentStore,
    Trial,
    Variant,
    calibration,
    cases_path,
    cells,
    compare,
    run_experiment,
    save_cases,
    summarize,
)
from playground.experiments.model import CheckResult  # noqa: E402
from playground.presets import Check, Preset, PresetStore, preset_to_json  # noqa: E402
from playground.runs.store import RunStore  # noqa: E402

CELLS = 200
DELAY_S = 0.05
CONCURRENCY = 4
RUN_TARGET = 1.1  # engine/bare, paired median
PAIRED_ROUNDS = 7
FIGURES_CASES, FIGURES_VARIANTS = 1000, 4
FIGURES_TARGET_S = 0.2
PAGE_TARGET_S = 1.5
PAGE_PRESET = "Bench review"
ROUNDS = 3


def _serve() -> None:
    from tests.scripted_server import Reply, ScriptedServer, token_logprob

    server = ScriptedServer()
    lp = [token_logprob("good", math.log(0.8), [("good", math.log(0.8)), ("bad", math.log(0.15))])]
    server.default = Reply.stream_text(["good"], logprobs=lp, head_delay_s=DELAY_S)
    server.pose_as_sandbox(models=[])  # the page's sidebar: the local sandbox is this server
    print(server.port, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.close()


def _request() -> ChatRequest:
    return ChatRequest.from_wire({
        "model": "scripted/model", "messages": [{"role": "user", "content": "Review: {{review}}"}],
        "stream": True, "stream_options": {"include_usage": True}, "logprobs": True, "top_logprobs": 2,
    })


def _checks() -> list[Check]:
    return [Check(kind="equals", ignore_case=True), Check(kind="min_confidence", limit=0.7, labels=["good", "bad"])]


def _experiment() -> Experiment:
    cases = [Case(values={"review": f"review {n}"}, expected="good") for n in range(CELLS)]
    return Experiment(id="bench", name="bench", cases=cases, variants=[Variant.from_request(_request())],
                      checks=_checks())


def _bare(endpoint: Endpoint) -> float:
    """Four threads, each with its own client, sending CELLS requests between them."""
    left = list(range(CELLS))
    lock = threading.Lock()
    request = ChatRequest.from_wire({**_request().to_wire(), "messages": [{"role": "user", "content": "Review: x"}]})

    def work() -> None:
        with ChatClient(endpoint) as client:
            while True:
                with lock:
                    if not left:
                        return
                    left.pop()
                run = client.run(request)
                if run.error is not None:
                    raise SystemExit(f"bare run failed: {run.error}")

    threads = [threading.Thread(target=work) for _ in range(CONCURRENCY)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def _engine(endpoint: Endpoint, folder: Path, n: int) -> float:
    store = ExperimentStore(folder / f"runs-{n}.sqlite3")
    start = time.perf_counter()
    result = run_experiment(_experiment(), [endpoint], store=store, concurrency=CONCURRENCY)
    elapsed = time.perf_counter() - start
    if len(result.trials) != CELLS or not all(t.status == "pass" for t in result.trials):
        bad = next(t for t in result.trials if t.status != "pass")
        raise SystemExit(f"the bench experiment did not pass: {bad.status} {bad.reason}")
    if len(store.get(result.id).trials) != CELLS:
        raise SystemExit("the trials were not all stored")
    return elapsed


def _cases() -> list[Case]:
    return [Case(values={"review": f"review {n}"}, expected="good") for n in range(FIGURES_CASES)]


def _synthetic(seed: int, experiment_id: str = "figures") -> ExperimentResult:
    """A finished run of 1,000 cases x 4 variants whose trials look like stored ones: graded by
    both checks, each naming its Run (which is not in any store)."""
    rng = random.Random(seed)
    variants = [Variant.from_request(_request(), label=f"v{v}", preset=PAGE_PRESET) for v in range(FIGURES_VARIANTS)]
    experiment = Experiment(id=experiment_id, name=PAGE_PRESET, cases=_cases(), variants=variants, checks=_checks())
    result = ExperimentResult(experiment=experiment, status="finished")
    for c in range(FIGURES_CASES):
        for v in range(FIGURES_VARIANTS):
            conf = rng.random()
            correct = rng.random() < conf
            answer = "good" if correct else "bad"
            checks = (CheckResult("equals {{expected}}", correct, "" if correct else f"{answer!r} != 'good'"),
                      CheckResult("min_confidence 0.7 over good/bad", conf >= 0.7,
                                  f"confidence {conf:.2f} {'>=' if conf >= 0.7 else '<'} 0.70"))
            passed = all(check.passed for check in checks)
            result.trials.append(Trial(case=c, variant=v, repeat=0, status="pass" if passed else "fail",
                                       answer=answer, checks=checks, run_id=f"{seed:04d}{c:06d}{v:02d}" + "0" * 20,
                                       latency_s=rng.uniform(0.1, 2.0), prompt_tokens=50, completion_tokens=1,
                                       cost=1e-5, confidence=conf, correct=correct))
    result.finished_at = result.started_at + 60
    return result


def _figures() -> float:
    before, after = _synthetic(1), _synthetic(2)
    start = time.perf_counter()
    summarize(after)
    cells(after)
    for v in range(FIGURES_VARIANTS):
        calibration(after, variant=v)
    comparison = compare(before, after)
    elapsed = time.perf_counter() - start
    if comparison.matched_cells != FIGURES_CASES * FIGURES_VARIANTS:
        raise SystemExit("the comparison did not match every cell")
    return elapsed


def _page(port: int, endpoint: Endpoint, folder: Path) -> float:
    """The Experiments page drawing a 1,000 x 4 result (with the comparison against an earlier
    run of the same size), the best of ROUNDS runs after a warm-up; the result is put in the page's
    session keys as state.harvest() leaves it when a run ends."""
    from streamlit.logger import set_log_level

    set_log_level("error")  # not the "no runtime" / "missing ScriptRunContext" warnings of bare mode
    from streamlit.testing.v1 import AppTest

    import playground.ui.experiments.page  # noqa: F401  (before AppTest puts pages/ on sys.path: pages/playground.py)
    from playground.ui.experiments import state as exp_state

    saved = {name: os.environ.get(name) for name in ("PLAYGROUND_PRESETS_DIR", "PLAYGROUND_DATA_DIR",
                                                     "PLAYGROUND_SANDBOX_PORT", "SGP_API_KEY")}
    presets, data = folder / "presets", folder / "data"
    presets.mkdir()
    os.environ.update({"PLAYGROUND_PRESETS_DIR": str(presets), "PLAYGROUND_DATA_DIR": str(data),
                       "PLAYGROUND_SANDBOX_PORT": str(port)})
    os.environ.pop("SGP_API_KEY", None)
    try:
        preset = Preset.new(PAGE_PRESET, _request(), description="The bench's review classifier.")
        preset = preset.model_copy(update={"checks": _checks()})
        path = PresetStore().path_for(PAGE_PRESET)
        path.write_text(preset_to_json(preset), encoding="utf-8")
        save_cases(cases_path(path), _cases())  # the editor holds the 1,000 cases the result was run on
        before, after = _synthetic(1, path.stem), _synthetic(2, path.stem)
        with ChatClient(endpoint) as client:  # the first cell (the one shown under the matrix) has a real Run
            run = client.run(after.experiment.variants[0].request_for(after.experiment.cases[0]))
        if run.error is not None:
            raise SystemExit(f"the page's stored run failed: {run.error}")
        RunStore(data / "runs.sqlite3").save(run)
        after.trials[0] = dataclasses.replace(after.trials[0], run_id=run.id)

        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).switch_page("pages/experiments.py")
        at.session_state[exp_state._RESULT] = after
        at.session_state[exp_state._COMPARISON] = (before, compare(before, after))
        at.run()  # warm-up: imports, caches, the sidebar's first look at the sandbox
        times = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - start)
        if at.exception:
            raise SystemExit(f"the page failed: {at.exception}")
        shown = {tuple(df.value.columns)[:2]: len(df.value) for df in at.dataframe}
        if shown.get(("#", "case")) != FIGURES_CASES:
            raise SystemExit(f"the matrix was not drawn with every case: {shown}")
        captions = [str(c.value) for c in at.caption]
        if not any("matched cell(s)" in c for c in captions) or not at.metric:
            raise SystemExit("the comparison or the calibration was not drawn")
        return min(times)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> int:
    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        port = int(child.stdout.readline())
        endpoint = Endpoint(name="Scripted", base_url=f"http://127.0.0.1:{port}")
        ideal = CELLS * DELAY_S / CONCURRENCY
        with tempfile.TemporaryDirectory() as folder:
            _engine(endpoint, Path(folder), -1)  # warm-up: imports, the first connections, jsonschema
            _bare(endpoint)
            engine, bare = [], []
            for n in range(PAIRED_ROUNDS):  # side by side, the order alternating
                if n % 2:
                    bare.append(_bare(endpoint))
                    engine.append(_engine(endpoint, Path(folder), n))
                else:
                    engine.append(_engine(endpoint, Path(folder), n))
                    bare.append(_bare(endpoint))
        with tempfile.TemporaryDirectory() as folder:
            page = _page(port, endpoint, Path(folder))
    finally:
        child.stdin.close()
        child.wait(10)
    figures = min(_figures() for _ in range(2 * ROUNDS))  # the best of a few: other work shares the CPU
    run_ratio = statistics.median(e / b for e, b in zip(engine, bare))
    print(f"run: {CELLS} cells at {DELAY_S * 1000:.0f} ms, {CONCURRENCY} at a time, {PAIRED_ROUNDS} paired rounds: "
          f"engine/bare median {run_ratio:.3f} (target <= {RUN_TARGET}; rounds "
          f"{', '.join(f'{e / b:.2f}' for e, b in zip(engine, bare))}); engine best {min(engine):.2f} s, bare best "
          f"{min(bare):.2f} s, ideal {ideal:.2f} s (engine/ideal {min(engine) / ideal:.2f}, not gated)")
    print(f"figures: {FIGURES_CASES} cases x {FIGURES_VARIANTS} variants: {figures * 1000:.0f} ms "
          f"(target < {FIGURES_TARGET_S * 1000:.0f} ms)")
    print(f"page with {FIGURES_CASES} x {FIGURES_VARIANTS} result (AppTest, best of {ROUNDS}): {page:.2f} s "
          f"(target < {PAGE_TARGET_S} s)")
    ok = run_ratio <= RUN_TARGET and figures < FIGURES_TARGET_S and page < PAGE_TARGET_S
    print("OK" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        _serve()
    else:
        sys.exit(main())

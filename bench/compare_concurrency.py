"""Four streams at once, as the Compare page runs them: time the four together against the
slowest of the four run alone (ratio target <= 1.2; exit 1 on a miss). Two paces:

- slow model: 100 tokens at 20 ms each (about 2 s per stream), measured twice, each with its
  own baseline:
  - client: four threads, each with its own ChatClient and an on_chunk that reads the text
    so far (the transport and the run recorder alone);
  - batch: what `Run all` starts, a playground.runs.batch.Batch of four items (its own worker
    threads and clients), while a poller reads every slot's snapshot each 50 ms as the page's
    parallel fragments do (playground.ui.common.live_view.POLL_S). Alone is a Batch of one item.
- fast hosted model: 2,000 tokens at 1 ms each (1,000 tokens/s, about 2 s per stream), through
  the batch as above. At this pace four streams are 4,000 events a second: the client's own
  cost per chunk shows.

The server (tests/scripted_server.py) runs in a process of its own, so that its work on the
four streams does not share this process's interpreter lock with the client's.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.client.client import ChatClient  # noqa: E402
from playground.client.endpoint import Endpoint  # noqa: E402
from playground.client.run import Run  # noqa: E402
from playground.client.schema import ChatRequest  # noqa: E402
from playground.runs.batch import Batch  # noqa: E402
from tests.scripted_server import Reply, ScriptedServer  # noqa: E402

STREAMS = 4
PACES = {  # name: (tokens per stream, seconds per token)
    "slow": (100, 0.02),
    "fast": (2000, 0.001),
}
TARGET = 1.2
ROUNDS = 3
POLL_S = 0.05  # the pane fragments' redraw interval (compare_live.POLL_S; not imported: no Streamlit here)


def _request(pane: int) -> ChatRequest:
    return ChatRequest.from_wire({
        "model": "scripted/model",
        "messages": [{"role": "user", "content": f"pane {pane}: count"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    })


def _checker(tokens: int) -> Callable[[Run | None], None]:
    def check(run: Run | None) -> None:
        if run is None or run.error is not None or run.partial or run.completion_tokens != tokens:
            raise SystemExit(f"a stream did not complete: {run and run.error} tokens={run and run.completion_tokens}")
    return check


# --- ChatClient in threads ---------------------------------------------------------------


def _on_chunk(recorder) -> None:
    recorder.snapshot_text(0)  # what a pane does before redrawing


def _client_alone(client: ChatClient, pane: int, check) -> float:
    start = time.perf_counter()
    check(client.run(_request(pane), on_chunk=_on_chunk))
    return time.perf_counter() - start


def _clients_together(clients: list[ChatClient], check) -> float:
    barrier = threading.Barrier(len(clients) + 1)
    runs: list[Run | None] = [None] * len(clients)

    def pane(index: int) -> None:
        barrier.wait()
        runs[index] = clients[index].run(_request(index), on_chunk=_on_chunk)

    threads = [threading.Thread(target=pane, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for run in runs:
        check(run)
    return elapsed


# --- playground.runs.batch.Batch, polled like the page ---------------------------------------


def _batch(endpoint: Endpoint, panes: list[int], check) -> float:
    """Seconds from Batch.start() to the last of these panes' runs finished, with every slot's
    snapshot read each POLL_S meanwhile, as the page's fragments read them."""
    finished: list[float] = []
    lock = threading.Lock()

    def done(run: Run) -> None:  # the page saves the run here; the bench notes the time
        with lock:
            finished.append(time.perf_counter())

    batch = Batch([(endpoint, _request(pane)) for pane in panes], on_finish=done)
    start = time.perf_counter()
    batch.start()
    while not batch.done:
        for slot in range(len(batch)):
            batch.snapshot(slot)
        time.sleep(POLL_S)
    for run in batch.runs:
        check(run)
    return max(finished) - start


def _measure(name: str, alone: Callable[[int], float], together: Callable[[], float]) -> float:
    ratios = []
    for round_ in range(1, ROUNDS + 1):
        singles = [alone(pane) for pane in range(STREAMS)]
        both = together()
        ratio = both / max(singles)
        ratios.append(ratio)
        print(f"  {name} round {round_}: alone {', '.join(f'{a:.3f}' for a in singles)} s "
              f"(slowest {max(singles):.3f} s); {STREAMS} together {both:.3f} s; ratio {ratio:.3f}", flush=True)
    return statistics.median(ratios)


# --- the server, in its own process ------------------------------------------------------


def serve() -> None:
    """The child process: one route per pace; prints its port, serves until stdin closes."""
    with ScriptedServer() as server:
        for pace, (tokens, delay_s) in PACES.items():
            reply = Reply.stream_text([f" t{k}" for k in range(tokens)], delay_s=delay_s)
            server.route(f"/{pace}/chat/completions", reply)
        print(server.port, flush=True)
        sys.stdin.read()


def main() -> int:
    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        port = int(child.stdout.readline())
        base_url = f"http://127.0.0.1:{port}"
        endpoints = {pace: Endpoint(name=pace, base_url=base_url, chat_path=f"/{pace}/chat/completions")
                     for pace in PACES}
        results: list[tuple[str, float]] = []

        tokens, delay_s = PACES["slow"]
        check = _checker(tokens)
        clients = [ChatClient(endpoints["slow"]) for _ in range(STREAMS)]
        try:
            _client_alone(clients[0], 0, check)  # warm-up: imports, first connection
            results.append(("slow: ChatClient threads", _measure(
                "slow client", lambda pane: _client_alone(clients[pane], pane, check),
                lambda: _clients_together(clients, check))))
        finally:
            for client in clients:
                client.close()
        for pace in PACES:
            tokens, delay_s = PACES[pace]
            check = _checker(tokens)
            _batch(endpoints[pace], [0], check)  # warm-up
            results.append((f"{pace}: repeat.Batch (Run all), polled", _measure(
                f"{pace} batch", lambda pane: _batch(endpoints[pace], [pane], check),
                lambda: _batch(endpoints[pace], list(range(STREAMS)), check))))
    finally:
        child.stdin.close()
        child.wait(10)

    print(f"{STREAMS} streams together / the slowest alone, median of {ROUNDS}; target <= {TARGET}:")
    for pace, (tokens, delay_s) in PACES.items():
        print(f"  {pace}: {tokens} tokens at {delay_s * 1000:g} ms (ideal {tokens * delay_s:.1f} s per stream)")
    ok = True
    for name, ratio in results:
        ok = ok and ratio <= TARGET
        print(f"  {name:38s} {ratio:.3f}  {'OK' if ratio <= TARGET else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        raise SystemExit(main())

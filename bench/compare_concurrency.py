"""Four streams at once, as the Compare page runs them: a loopback server sends 100 tokens at
20 ms each (about 2 s per stream); time the four together against the slowest of the four run
alone, and print the ratio (target <= 1.2). Two measurements, each with its own baseline:

- client: four threads, each with its own ChatClient and an on_chunk that reads the text so
  far (the transport and the run recorder alone);
- batch: what `Run all` starts, a playground.repeat.Batch of four items (its own worker
  threads and clients), while a poller reads every slot's snapshot each 50 ms as the page's
  parallel fragments do (playground.ui.compare_live.POLL_S). Alone is a Batch of one item.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.client import ChatClient  # noqa: E402
from playground.endpoint import Endpoint  # noqa: E402
from playground.repeat import Batch  # noqa: E402
from playground.runs import Run  # noqa: E402
from playground.schema import ChatRequest  # noqa: E402
from tests.scripted_server import Reply, ScriptedServer  # noqa: E402

STREAMS = 4
TOKENS = 100
DELAY_S = 0.02
TARGET = 1.2
ROUNDS = 3
POLL_S = 0.05  # the pane fragments' redraw interval (compare_live.POLL_S; not imported: no Streamlit here)


def _request(pane: int) -> ChatRequest:
    return ChatRequest.from_wire({
        "model": "scripted/model",
        "messages": [{"role": "user", "content": f"pane {pane}: count to a hundred"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    })


def _check(run: Run | None) -> None:
    if run is None or run.error is not None or run.partial or run.completion_tokens != TOKENS:
        raise SystemExit(f"a stream did not complete: {run and run.error} tokens={run and run.completion_tokens}")


# --- ChatClient in threads ---------------------------------------------------------------


def _on_chunk(chunk, recorder) -> None:
    recorder.snapshot_text(0)  # what a pane does before redrawing


def _client_alone(client: ChatClient, pane: int) -> float:
    start = time.perf_counter()
    _check(client.run(_request(pane), on_chunk=_on_chunk))
    return time.perf_counter() - start


def _clients_together(clients: list[ChatClient]) -> float:
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
        _check(run)
    return elapsed


# --- playground.repeat.Batch, polled like the page ---------------------------------------


def _batch(endpoint: Endpoint, panes: list[int]) -> float:
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
        _check(run)
    return max(finished) - start


def _measure(name: str, alone: Callable[[int], float], together: Callable[[], float]) -> float:
    ratios = []
    for round_ in range(1, ROUNDS + 1):
        singles = [alone(pane) for pane in range(STREAMS)]
        both = together()
        ratio = both / max(singles)
        ratios.append(ratio)
        print(f"  {name} round {round_}: alone {', '.join(f'{a:.3f}' for a in singles)} s "
              f"(slowest {max(singles):.3f} s); {STREAMS} together {both:.3f} s; ratio {ratio:.3f}")
    return statistics.median(ratios)


def main() -> int:
    tokens = [f" t{k}" for k in range(TOKENS)]
    with ScriptedServer() as server:
        server.default = Reply.stream_text(tokens, delay_s=DELAY_S)
        endpoint = server.endpoint()
        clients = [ChatClient(endpoint) for _ in range(STREAMS)]
        try:
            _client_alone(clients[0], 0)  # warm-up: imports, first connection
            client_ratio = _measure("client", lambda pane: _client_alone(clients[pane], pane),
                                    lambda: _clients_together(clients))
        finally:
            for client in clients:
                client.close()
        _batch(endpoint, [0])  # warm-up
        batch_ratio = _measure("batch", lambda pane: _batch(endpoint, [pane]),
                               lambda: _batch(endpoint, list(range(STREAMS))))
    ideal = TOKENS * DELAY_S
    print(f"{STREAMS} streams x {TOKENS} tokens at {DELAY_S * 1000:.0f} ms (ideal {ideal:.1f} s each); "
          f"together / slowest alone, median of {ROUNDS}; target <= {TARGET}:")
    ok = True
    for name, ratio in (("ChatClient threads", client_ratio), ("repeat.Batch (Run all), polled", batch_ratio)):
        ok = ok and ratio <= TARGET
        print(f"  {name:32s} {ratio:.3f}  {'OK' if ratio <= TARGET else 'OVER TARGET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

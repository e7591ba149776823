"""Four streams at once, as the Compare page runs them: a loopback server sends 100 tokens at
20 ms each (about 2 s per stream); time the four together, in four threads with
ChatClient.run, against the slowest of the four run alone. Print the ratio (target <= 1.2).

Each thread has its own ChatClient (a pane each) and an on_chunk that reads the text so far,
as a pane that redraws would.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.client import ChatClient  # noqa: E402
from playground.runs import Run  # noqa: E402
from playground.schema import ChatRequest  # noqa: E402
from tests.scripted_server import Reply, ScriptedServer  # noqa: E402

STREAMS = 4
TOKENS = 100
DELAY_S = 0.02
TARGET = 1.2
ROUNDS = 3


def _request(pane: int) -> ChatRequest:
    return ChatRequest.from_wire({
        "model": "scripted/model",
        "messages": [{"role": "user", "content": f"pane {pane}: count to a hundred"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    })


def _on_chunk(chunk, recorder) -> None:
    recorder.snapshot_text(0)  # what a pane does before redrawing


def _one(client: ChatClient, pane: int) -> tuple[float, Run]:
    start = time.perf_counter()
    run = client.run(_request(pane), on_chunk=_on_chunk)
    return time.perf_counter() - start, run


def _check(run: Run) -> None:
    if run.error is not None or run.partial or run.completion_tokens != TOKENS:
        raise SystemExit(f"a stream did not complete: error={run.error} tokens={run.completion_tokens}")


def _together(clients: list[ChatClient]) -> float:
    barrier = threading.Barrier(len(clients) + 1)
    runs: list[Run | None] = [None] * len(clients)

    def pane(index: int) -> None:
        barrier.wait()
        runs[index] = _one(clients[index], index)[1]

    threads = [threading.Thread(target=pane, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for run in runs:
        _check(run)  # type: ignore[arg-type]
    return elapsed


def main() -> int:
    tokens = [f" t{k}" for k in range(TOKENS)]
    with ScriptedServer() as server:
        server.default = Reply.stream_text(tokens, delay_s=DELAY_S)
        clients = [ChatClient(server.endpoint()) for _ in range(STREAMS)]
        _one(clients[0], 0)  # warm-up: imports, first connection

        ratios = []
        for round_ in range(1, ROUNDS + 1):
            alone = []
            for index, client in enumerate(clients):
                elapsed, run = _one(client, index)
                _check(run)
                alone.append(elapsed)
            together = _together(clients)
            ratio = together / max(alone)
            ratios.append(ratio)
            print(f"round {round_}: alone {', '.join(f'{a:.3f}' for a in alone)} s (slowest {max(alone):.3f} s); "
                  f"{STREAMS} together {together:.3f} s; ratio {ratio:.3f}")
    ideal = TOKENS * DELAY_S
    ratio = statistics.median(ratios)
    print(f"{STREAMS} streams x {TOKENS} tokens at {DELAY_S * 1000:.0f} ms (ideal {ideal:.1f} s each): "
          f"together / slowest alone = {ratio:.3f} (median of {ROUNDS}); target <= {TARGET}: "
          f"{'OK' if ratio <= TARGET else 'OVER TARGET'}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Client overhead on a fast stream: ChatClient.run against a bare httpx loop and the openai SDK.

A loopback server (a thread in this process) sends 20,000 chunks as fast as it can: the body
is built once and written in 64 KiB pieces, so the client is the bottleneck. Each round times

  (a) ChatClient.run       parse every chunk into pydantic models and accumulate the Run
  (b) bare httpx loop      iter_lines() and json.loads() of each data line, nothing else
  (c) openai SDK stream    openai.OpenAI(base_url=...).chat.completions.create(stream=True)

over the same server, interleaved, a few rounds (the slow SDK only three), each after a
gc.collect(); the ratios use the best time of each (the median is shown beside).
Targets (issue 2): run/bare <= 1.25, run/openai < 1.

    .venv/bin/python bench/stream_overhead.py [--chunks N] [--rounds N] [--check]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from playground.client import ChatClient  # noqa: E402
from playground.schema import ChatRequest  # noqa: E402
from tests.scripted_server import Reply, ScriptedServer  # noqa: E402

WORDS = [" the", " quick", " brown", " fox", " jumps", " over", " a", " lazy", " dog", ".", "\n", " It",
         " was", " not", " amused", ",", " but", " said", " nothing", "!"]
MESSAGES = [{"role": "user", "content": "Tell me a long story."}]
MODEL = "scripted/model"
TARGET_BARE = 1.25
TARGET_OPENAI = 1.0
OPENAI_ROUNDS = 3


def run_playground(client: ChatClient, request: ChatRequest) -> int:
    run = client.run(request)
    if run.error is not None:
        raise SystemExit(f"ChatClient.run failed: {run.error.message}")
    return len(run.text)


def run_bare(http: httpx.Client, url: str, body: dict) -> int:
    count = 0
    with http.stream("POST", url, json=body, headers={"Accept": "text/event-stream"}) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                data = line[6:]
                if data == "[DONE]":
                    break
                json.loads(data)
                count += 1
    return count


def run_openai(sdk, body: dict) -> int:
    length = 0
    stream = sdk.chat.completions.create(model=body["model"], messages=body["messages"], stream=True,
                                         stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.choices:
            length += len(chunk.choices[0].delta.content or "")
    return length


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    try:
        import openai
    except ImportError:
        openai = None

    tokens = [WORDS[i % len(WORDS)] for i in range(args.chunks)]
    expected_text = "".join(tokens)
    body = {"model": MODEL, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    request = ChatRequest.from_wire(body)
    wall: dict[str, list[float]] = {"bare": [], "run": [], "openai": []}
    cpu: dict[str, list[float]] = {"bare": [], "run": [], "openai": []}

    with ScriptedServer() as server:
        server.default = Reply.stream_text(tokens, model=MODEL)
        endpoint = server.endpoint("/v1/chat/completions")
        with ChatClient(endpoint, max_retries=0) as client, httpx.Client(timeout=60) as http:
            sdk = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) if openai else None
            contenders = {
                "bare": lambda: run_bare(http, endpoint.chat_url, body),
                "run": lambda: run_playground(client, request),
            }
            if sdk is not None:
                contenders["openai"] = lambda: run_openai(sdk, body)
            checks = {"bare": args.chunks + 3, "run": len(expected_text), "openai": len(expected_text)}
            for name, contender in contenders.items():  # warm-up: connections, imports, caches
                got = contender()
                if got != checks[name]:
                    raise SystemExit(f"{name}: expected {checks[name]}, got {got}")
            for number in range(args.rounds):
                for name, contender in contenders.items():
                    if name == "openai" and number >= OPENAI_ROUNDS:
                        continue  # ~20x slower than the others: a few rounds say enough
                    gc.collect()  # start each timing clean: no collection owed to an earlier round
                    started, started_cpu = time.perf_counter(), time.thread_time()
                    contender()
                    cpu[name].append(time.thread_time() - started_cpu)
                    wall[name].append(time.perf_counter() - started)
            if sdk is not None:
                sdk.close()

    print(f"stream_overhead: {args.chunks:,} chunks over loopback; wall clock best / median of {args.rounds} rounds,"
          " and the client thread's CPU time (best), which other load on the machine barely moves")
    labels = {"bare": "bare httpx loop (iter_lines + json.loads)", "run": "ChatClient.run (parse + accumulate)",
              "openai": f"openai SDK stream ({openai.__version__})" if openai else "openai SDK (not installed)"}
    for name in ("bare", "run", "openai"):
        if wall[name]:
            best = min(wall[name])
            print(f"  {labels[name]:<44} {best * 1000:7.1f} ms / {statistics.median(wall[name]) * 1000:7.1f} ms"
                  f"   cpu {min(cpu[name]) * 1000:7.1f} ms   {args.chunks / best / 1000:6.1f}k chunks/s")

    def ratios(a: str, b: str) -> tuple[float, str]:
        best = min(wall[a]) / min(wall[b])
        return best, (f"[median {statistics.median(wall[a]) / statistics.median(wall[b]):.2f}x,"
                      f" cpu {min(cpu[a]) / min(cpu[b]):.2f}x]")

    ratio, detail = ratios("run", "bare")
    ok = ratio <= TARGET_BARE
    print(f"run/bare   = {ratio:.2f}x (target <= {TARGET_BARE}) {'OK  ' if ratio <= TARGET_BARE else 'MISS'}  {detail}")
    if wall["openai"]:
        ratio, detail = ratios("run", "openai")
        ok &= ratio < TARGET_OPENAI
        print(f"run/openai = {ratio:.2f}x (target < {TARGET_OPENAI:g})    {'OK  ' if ratio < TARGET_OPENAI else 'MISS'}  {detail}")
    else:
        print("run/openai = n/a (pip install openai)")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())

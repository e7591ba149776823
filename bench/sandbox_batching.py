"""Continuous batching in the sandbox, in one run: several streams at once against one alone.

Targets (exit 1 on a miss):
- 4 concurrent streams of 128 tokens (greedy, different prompts): wall time at most 2.0x one
  stream alone; aggregate tokens per second printed beside one stream's.
- Repeat with k = 8 (n = 8 in one request, seeded, temperature 1): at most 2.5x one run (n = 1),
  on a sandbox started with --parallel 8 (the default 4 runs the 8 choices in two waves: its
  figure is printed beside).
- One stream alone: at least 0.95x the tokens per second of the serial path as it was before
  batching: a sandbox started with --parallel 1 (one sequence at a time in a context of one
  sequence) on the shipped Q4_1 file, whatever --quant the batched side loads.
- The same 4-stream workload against llama-cpp-python's own server (`python -m llama_cpp.server`
  over the same GGUF, same threads and batch threads) is printed as the peer's ratio.

Every reply is held to exactly 128 tokens (<|im_end|> is banned) and tokens are counted by the
model's tokenizer over the text, the same way on every side. Rounds alternate the order of the
servers; each figure is the median of its per-round values (the machine's load drifts).

    .venv/bin/python bench/sandbox_batching.py [--tokens 128] [--rounds 3] [--threads N] [--no-peer] [--quant Q]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from sandbox_throughput import _spread  # noqa: E402  (bench/ is this script's folder: the same round list)

from playground.sandbox.launcher import SandboxHandle, ensure_sandbox, free_port  # noqa: E402
from playground.sandbox.model import (  # noqa: E402
    MODEL_ID,
    PARALLEL_ENV,
    THREADS_ENV,
    default_batch_threads,
    default_threads,
)
from playground.sandbox.quant import QUANT_ENV, QUANTS, SHIPPED, default_quant, model_file  # noqa: E402

FOUR_TARGET = 2.0
REPEAT_TARGET = 2.5
SINGLE_TARGET = 0.95
PROMPTS = [
    "Write a long, detailed story about a dragon who learns to bake bread.",
    "Explain in detail how a steam engine works, step by step.",
    "Describe a walk through a busy city market at dawn, in rich detail.",
    "Write a long letter from a sailor to his family about life at sea.",
]
NO_END = {"2": -100}  # <|im_end|>: every reply runs to max_tokens


def stream(base_url: str, prompt: str, tokens: int, **fields) -> tuple[float, list[str]]:
    """One streamed request on /v1; seconds from sending to the last byte, and each choice's text."""
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": prompt}], "max_tokens": tokens,
            "temperature": 0, "logit_bias": NO_END, "stream": True, **fields}
    texts: dict[int, list[str]] = {}
    with httpx.Client(trust_env=False, timeout=600) as client:
        start = time.perf_counter()
        with client.stream("POST", base_url + "/v1/chat/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                for choice in json.loads(line[6:])["choices"]:
                    texts.setdefault(choice["index"], []).append(choice["delta"].get("content") or "")
        seconds = time.perf_counter() - start
    return seconds, ["".join(texts[i]) for i in sorted(texts)]


def concurrent(base_url: str, tokens: int, count: int) -> tuple[float, list[str]]:
    """`count` streams at once, different prompts; wall time from the first send to the last byte."""
    results: list = [None] * count

    def work(i: int) -> None:
        results[i] = stream(base_url, PROMPTS[i % len(PROMPTS)], tokens)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if any(result is None for result in results):
        raise RuntimeError("a concurrent stream failed")
    return seconds, [text for _, texts in results for text in texts]


def start_sandbox(parallel: int, threads: int, quant: str) -> SandboxHandle:
    os.environ[PARALLEL_ENV] = str(parallel)  # the subprocess reads all three
    os.environ[THREADS_ENV] = str(threads)
    os.environ[QUANT_ENV] = quant
    handle = ensure_sandbox(port=free_port())
    if handle.state != "running":
        raise RuntimeError(f"sandbox (--parallel {parallel}) did not start: {handle.message}")
    return handle


def start_peer(threads: int, quant: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", model_file(quant), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "2048", "--n_threads", str(threads),
               "--n_threads_batch", str(default_batch_threads()),  # the sandbox's own split
               "--model_alias", MODEL_ID, "--interrupt_requests", "False"]  # else a new request cuts a running one
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with code {process.returncode} "
                               "(its extra deps: pip install -e '.[sandbox]')")
        try:
            if httpx.get(base_url + "/v1/models", timeout=1, trust_env=False).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("llama_cpp.server did not answer within 120 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads everywhere (default: the sandbox's)")
    parser.add_argument("--no-peer", action="store_true", help="skip llama-cpp-python's server")
    parser.add_argument("--quant", choices=QUANTS, default=default_quant(),
                        help="the weights the batched sandboxes and the peer load (default: the sandbox's)")
    args = parser.parse_args()
    threads = args.threads or default_threads()
    from llama_cpp import Llama

    vocab = Llama(model_path=model_file(args.quant), vocab_only=True, verbose=False)

    def count(texts: list[str]) -> int:
        return sum(len(vocab.tokenize(text.encode(), add_bos=False, special=True)) for text in texts)

    batched = start_sandbox(4, threads, args.quant)
    wide = start_sandbox(8, threads, args.quant)
    serial = start_sandbox(1, threads, SHIPPED)
    peer, peer_url = (None, None) if args.no_peer else start_peer(threads, args.quant)
    n = args.tokens
    figures: dict[str, list[float]] = {key: [] for key in (
        "one", "four", "four_ratio", "four_rate", "repeat_one", "repeat", "repeat_ratio", "repeat4_ratio",
        "serial", "single_ratio",
        "peer_one", "peer_four", "peer_ratio")}
    short: list[str] = []

    def check(name: str, texts: list[str], expected: int) -> None:
        got = count(texts)
        if got < expected * n * 0.95:  # banned end: anything shorter means a reply was cut
            short.append(f"{name}: {got} tokens, expected {expected * n}")

    try:
        for url in (batched.base_url, wide.base_url, serial.base_url, peer_url):  # warm every server up
            if url:
                stream(url, PROMPTS[0], 8)
        for round_ in range(args.rounds):
            sides = ["batched", "serial", "peer"] if round_ % 2 == 0 else ["peer", "serial", "batched"]
            for side in sides:
                if side == "batched":
                    seconds, texts = stream(batched.base_url, PROMPTS[0], n)
                    check("one", texts, 1)
                    figures["one"].append(count(texts) / seconds)
                    one = seconds
                    seconds, texts = concurrent(batched.base_url, n, 4)
                    check("four", texts, 4)
                    figures["four"].append(seconds)
                    figures["four_ratio"].append(seconds / one)
                    figures["four_rate"].append(count(texts) / seconds)
                    seeded = {"temperature": 1.0, "seed": 100 + round_}
                    single, texts = stream(wide.base_url, PROMPTS[1], n, **seeded)
                    check("repeat one", texts, 1)
                    seconds, texts = stream(wide.base_url, PROMPTS[1], n, n=8, **seeded)
                    check("repeat k=8", texts, 8)
                    figures["repeat_one"].append(single)
                    figures["repeat"].append(seconds)
                    figures["repeat_ratio"].append(seconds / single)
                    waves, texts = stream(batched.base_url, PROMPTS[1], n, n=8, **seeded)
                    check("repeat k=8 (--parallel 4)", texts, 8)
                    figures["repeat4_ratio"].append(waves / single)
                elif side == "serial":
                    seconds, texts = stream(serial.base_url, PROMPTS[0], n)
                    check("serial", texts, 1)
                    figures["serial"].append(count(texts) / seconds)
                elif peer_url:
                    one, texts = stream(peer_url, PROMPTS[0], n)
                    check("peer one", texts, 1)
                    seconds, texts = concurrent(peer_url, n, 4)
                    check("peer four", texts, 4)
                    figures["peer_one"].append(one)
                    figures["peer_four"].append(seconds)
                    figures["peer_ratio"].append(seconds / one)
            figures["single_ratio"].append(figures["one"][-1] / figures["serial"][-1])
    finally:
        batched.stop()
        wide.stop()
        serial.stop()
        if peer is not None:
            peer.terminate()
            peer.wait(10)

    med = {key: statistics.median(values) for key, values in figures.items() if values}
    print(f"weights: {Path(model_file(args.quant)).name} (serial path: {Path(model_file(SHIPPED)).name})")
    print(f"{n} tokens a reply, llama.cpp threads: {threads} for a one-token step, {default_batch_threads()} for a "
          f"batch, on {os.cpu_count()} CPUs, {args.rounds} rounds "
          f"(median, then each round)")
    print(f"one stream alone (--parallel 4):    {med['one']:7.1f} tok/s  {_spread(figures['one'])}")
    print(f"one stream, serial (Q4_1, --parallel 1): {med['serial']:7.1f} tok/s  {_spread(figures['serial'])}")
    print(f"4 streams at once: aggregate        {med['four_rate']:7.1f} tok/s  {_spread(figures['four_rate'])}"
          f"  (wall {med['four']:.2f} s)")
    results = [
        ("4 streams / one stream (wall)", med["four_ratio"], figures["four_ratio"], FOUR_TARGET, "<="),
        ("repeat k=8 (n=8, --parallel 8) / one run", med["repeat_ratio"], figures["repeat_ratio"], REPEAT_TARGET,
         "<="),
        ("one stream: batched / serial tok/s", med["single_ratio"], figures["single_ratio"], SINGLE_TARGET, ">="),
    ]
    ok = not short
    for label, value, values, target, sense in results:
        hit = value <= target if sense == "<=" else value >= target
        ok = ok and hit
        print(f"{label:42s} {value:6.3f}  {_spread(values, 3)}  target {sense} {target}  {'OK' if hit else 'MISS'}")
    print(f"{'repeat k=8 on --parallel 4 (two waves)':42s} {med['repeat4_ratio']:6.3f}  "
          f"{_spread(figures['repeat4_ratio'], 3)}  (not gated)")
    if "peer_ratio" in med:
        print(f"{'peer llama_cpp.server: 4 streams / one':42s} {med['peer_ratio']:6.3f}  "
              f"{_spread(figures['peer_ratio'], 3)}  "
              f"(one stream {med['peer_one']:.2f} s, four {med['peer_four']:.2f} s)")
    for problem in short:
        print(f"SHORT REPLY: {problem}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Tokens per second of a streamed request to the sandbox, against the same generation
in-process with llama-cpp-python, in one run. Target: the ratio is 0.9 or better, and both
sides produce the same text; exit 1 otherwise.

Both sides use one Llama built as the server builds it (n_ctx 2048, same threads), decode
greedily (so they produce the same tokens), and start from an empty KV cache (the sandbox
evaluates every prompt afresh so that a seed always gives the same text). Time runs from
sending the request to the last token. Tokens are counted the same way on every side: the
answer's text tokenized by the model's own tokenizer (so the same text is the same count).
Rounds alternate the order of the sides; the ratio is the median of the per-round ratios
(the machine's load drifts between rounds).

    .venv/bin/python bench/sandbox_throughput.py [--tokens 150] [--rounds 7] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from playground.sandbox.launcher import ensure_sandbox, free_port  # noqa: E402
from playground.sandbox.model import MODEL_ID, THREADS_ENV, Engine, Job, default_threads  # noqa: E402
from playground.sandbox.sampling import SamplingParams  # noqa: E402

TARGET = 0.9
PROMPT = [{"role": "user", "content": "Write a long, detailed story about a dragon who learns to bake bread."}]


def http_run(base_url: str, max_tokens: int) -> tuple[float, str]:
    body = {"model": MODEL_ID, "messages": PROMPT, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    text = []
    with httpx.Client(trust_env=False, timeout=120) as client:
        start = time.perf_counter()
        with client.stream("POST", base_url + "/v4/beta/chat/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                for choice in json.loads(line[6:])["choices"]:
                    text.append(choice["delta"].get("content") or "")
        return time.perf_counter() - start, "".join(text)


def llama_cpp_run(llm, max_tokens: int) -> tuple[float, str]:
    llm.reset()  # an empty KV cache, as the sandbox starts every request
    text = []
    start = time.perf_counter()
    for chunk in llm.create_chat_completion(PROMPT, max_tokens=max_tokens, temperature=0, stream=True):
        content = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
        if content:
            text.append(content)
    return time.perf_counter() - start, "".join(text)


def engine_run(engine: Engine, max_tokens: int) -> tuple[float, str]:
    text = []
    start = time.perf_counter()
    job = Job(prompt_tokens=engine.prompt_tokens(PROMPT), max_tokens=max_tokens, sampling=SamplingParams(temperature=0))
    engine.generate(job, lambda piece: text.append(piece.text))
    return time.perf_counter() - start, "".join(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads on both sides (default: the sandbox's)")
    args = parser.parse_args()
    threads = args.threads or default_threads()
    os.environ[THREADS_ENV] = str(threads)  # the sandbox subprocess reads it

    handle = ensure_sandbox(port=free_port())
    if handle.state != "running":
        print(f"sandbox did not start: {handle.message}", file=sys.stderr)
        return 1
    engine = Engine(n_threads=threads)  # the in-process side: the same Llama construction as the server's
    rates: dict[str, list[float]] = {"http": [], "llama_cpp": [], "engine": []}
    paired: list[float] = []  # http / llama_cpp within one round: robust to load drifting between rounds
    texts: dict[str, set[str]] = {name: set() for name in rates}

    def tokens(text: str) -> int:  # one count for every side: the model's tokenizer over the text
        return len(engine.llm.tokenize(text.encode(), add_bos=False, special=True))

    sides = {
        "http": lambda: http_run(handle.base_url, args.tokens),
        "llama_cpp": lambda: llama_cpp_run(engine.llm, args.tokens),
        "engine": lambda: engine_run(engine, args.tokens),
    }
    try:
        http_run(handle.base_url, 8)  # warm both sides up
        llama_cpp_run(engine.llm, 8)
        for round_ in range(args.rounds):
            order = ["http", "llama_cpp", "engine"] if round_ % 2 == 0 else ["engine", "llama_cpp", "http"]
            for name in order:
                seconds, text = sides[name]()
                rates[name].append(tokens(text) / seconds)
                texts[name].add(text)
            paired.append(rates["http"][-1] / rates["llama_cpp"][-1])
    finally:
        handle.stop()

    med = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{args.tokens} tokens, greedy, {threads} llama.cpp thread(s) on {os.cpu_count()} CPUs, "
          f"{args.rounds} rounds (median, then each round)")
    print(f"sandbox over HTTP (streamed, /v4):      {med['http']:7.1f} tok/s  {_spread(rates['http'])}")
    print(f"llama-cpp-python in-process (stream):  {med['llama_cpp']:7.1f} tok/s  {_spread(rates['llama_cpp'])}")
    print(f"sandbox engine in-process (no HTTP):   {med['engine']:7.1f} tok/s  {_spread(rates['engine'])}")
    same = len(texts["http"]) == 1 and texts["http"] == texts["llama_cpp"]
    print(f"one text, the same on both sides, every round: {'yes' if same else 'NO'}"
          f" ({tokens(next(iter(texts['http'])))} tokens; engine's text the same: {texts['engine'] == texts['http']})")
    ratio = statistics.median(paired)
    ok = same and ratio >= TARGET
    print(f"ratio HTTP / llama-cpp-python: {ratio:.3f}  (median of per-round ratios "
          f"{_spread(paired, 3)}; target >= {TARGET}) {'OK' if ratio >= TARGET else 'MISS'}")
    print(f"ratio HTTP / engine in-process: {med['http'] / med['engine']:.3f}  (the cost of HTTP + SSE alone)")
    return 0 if ok else 1


def _spread(values: list[float], digits: int = 1) -> str:
    return "(" + ", ".join(f"{v:.{digits}f}" for v in values) + ")"


if __name__ == "__main__":
    sys.exit(main())

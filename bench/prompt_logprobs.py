"""What vLLM's prompt_logprobs cost the sandbox (issue 24).

Target (exit 1 on a miss): a request whose prompt is about 1,500 tokens, with `prompt_logprobs: 5`,
takes at most 1.5x the time of the same request without them. Both ask for one answer token at
temperature 0; each round's prompt begins with new text so that the prefix cache reuses nothing
on either side (a request with prompt_logprobs always reads its whole prompt: no cell keeps logits).
The ratio is the median of per-round ratios, the two requests of a round in alternating order.

    python bench/prompt_logprobs.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from prefix_cache import Sandbox  # noqa: E402  (bench/ is this script's folder)

TARGET = 1.5
PROMPT_TOKENS = 1500
SENTENCE = "The quick brown fox jumps over the lazy dog while the farmer counts his sheep in the field. "


def prompt(words: str) -> list[dict]:
    return [{"role": "user", "content": f"{words} " + SENTENCE * 75 + "Summarise this."}]


def timed(http: httpx.Client, messages: list[dict], **fields) -> tuple[float, dict]:
    body = {"model": "local/smollm2-135m-instruct", "messages": messages, "max_tokens": 1, "temperature": 0,
            **fields}
    start = time.perf_counter()
    response = http.post("/v1/chat/completions", json=body)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed, response.json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sandbox = Sandbox("--no-prefix-cache")  # neither side reuses a prefix (the chat template's system line)
    try:
        http = sandbox.http
        timed(http, prompt("warm up"))  # the first request pays for buffers and caches
        ratios = []
        for round_ in range(args.rounds):
            plain_messages, with_messages = prompt(uuid.uuid4().hex), prompt(uuid.uuid4().hex)
            if round_ % 2 == 0:
                plain, plain_reply = timed(http, plain_messages)
                with_, reply = timed(http, with_messages, prompt_logprobs=5)
            else:
                with_, reply = timed(http, with_messages, prompt_logprobs=5)
                plain, plain_reply = timed(http, plain_messages)
            tokens = reply["usage"]["prompt_tokens"]
            assert len(reply["prompt_logprobs"]) == tokens and reply["usage"]["prompt_tokens_details"][
                "cached_tokens"] == 0 and plain_reply["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
            ratios.append(with_ / plain)
            print(f"round {round_ + 1}: {tokens} prompt tokens, without {plain:.2f} s, "
                  f"with prompt_logprobs 5 {with_:.2f} s, ratio {with_ / plain:.2f}")
        ratio = statistics.median(ratios)
        assert tokens >= PROMPT_TOKENS * 0.9, tokens
        ok = ratio <= TARGET
        print(f"prompt_logprobs / plain, median of {args.rounds}: {ratio:.2f} (target <= {TARGET}) "
              f"{'ok' if ok else 'MISS'}")
        return 0 if ok else 1
    finally:
        sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())

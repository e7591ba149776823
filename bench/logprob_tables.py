"""Build the logprob tables and the token-aligned diff for two 4,000-token answers with 20
alternatives each; print the time and the ratio to building the plain pandas table alone.

Target: under 200 ms for both tables plus the aligned diff.

The two answers are what sampling the same prompt twice looks like: they agree for a while,
then fork, and after the fork they are different text over the same vocabulary (the hard case
for difflib). A third pair (one answer lightly edited) and a byte-mode diff are timed too.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from playground.analysis.logprobs import align, diff_table, perplexity, token_table  # noqa: E402
from playground.client.schema import ChoiceLogprobs, TokenLogprob  # noqa: E402

N_TOKENS = 4000
TOP_K = 20
TARGET_MS = 200.0


def _vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = {" " + "".join(rng.choice(letters) for _ in range(rng.randint(1, 9))) for _ in range(size)}
    return sorted(words) + [",", ".", "\n", " the", " of", " and", " a", " to", " in"]


def _answer(rng: random.Random, vocab: list[str], n: int, prefix: list[str] | None = None) -> list[TokenLogprob]:
    """Logprobs as a run has them: parsed by pydantic from the server's JSON."""
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]  # Zipf-like, as real text is
    texts = list(prefix or [])
    texts += rng.choices(vocab, weights=weights, k=n - len(texts))
    content = []
    for text in texts:
        alts = rng.sample(vocab, TOP_K - 1)
        logs = sorted((math.log(rng.random() * 0.5 + 1e-6) for _ in range(TOP_K)), reverse=True)
        chosen = logs[rng.randrange(3)]
        top = [{"token": text, "logprob": chosen, "bytes": list(text.encode())}]
        top += [{"token": alt, "logprob": lp, "bytes": list(alt.encode())} for alt, lp in zip(alts, logs[1:])]
        content.append({"token": text, "logprob": chosen, "bytes": list(text.encode()), "top_logprobs": top})
    return ChoiceLogprobs.model_validate_json(json.dumps({"content": content})).content


def _plain_table(tokens: list[TokenLogprob]) -> pd.DataFrame:
    """The baseline: the raw fields (alternatives as lists of (token, logprob) pairs), built
    from column lists, with none of the derived work (probabilities, entropy, strings, diff)."""
    return pd.DataFrame(
        {
            "position": range(len(tokens)),
            "token": [t.token for t in tokens],
            "logprob": [t.logprob for t in tokens],
            "top_logprobs": [[(alt.token, alt.logprob) for alt in t.top_logprobs] for t in tokens],
        }
    )


def _best_of(fn, repeats: int = 7) -> tuple[float, float]:
    """Best wall time and best CPU time of the process (the machine may be shared)."""
    wall = cpu = math.inf
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def main() -> int:
    rng = random.Random(7)
    vocab = _vocabulary(rng)
    a = _answer(rng, vocab, N_TOKENS)
    forked = _answer(rng, vocab, N_TOKENS, prefix=[t.token for t in a[:600]])
    edited = list(a)
    for k, replacement in zip(rng.sample(range(N_TOKENS), 40), _answer(rng, vocab, 40)):
        edited[k] = replacement

    def everything(b):
        def run():
            token_table(a)
            token_table(b)
            diff_table(a, b, mode="token")
            perplexity(a), perplexity(b)
        return run

    timings = {
        "plain pandas table (baseline)": _best_of(lambda: _plain_table(a)),
        "token_table, one answer": _best_of(lambda: token_table(a)),
        "align, answers forked at 600": _best_of(lambda: align(a, forked)),
        "diff_table, forked": _best_of(lambda: diff_table(a, forked, mode="token")),
        "diff_table, 40 edits": _best_of(lambda: diff_table(a, edited, mode="token")),
        "diff_table, byte mode, forked": _best_of(lambda: diff_table(a, forked, mode="byte"), repeats=3),
        "2 tables + aligned diff, forked": _best_of(everything(forked)),
        "2 tables + aligned diff, 40 edits": _best_of(everything(edited)),
    }
    baseline = timings["plain pandas table (baseline)"][0]
    print(f"{N_TOKENS} tokens x {TOP_K} alternatives; best of 7 runs: wall ms (process CPU ms), ratio to baseline")
    for label, (wall, cpu) in timings.items():
        print(f"  {label:36s} {wall * 1e3:7.1f} ms ({cpu * 1e3:6.1f} ms CPU)  {wall / baseline:5.1f}x")
    worst = max(timings["2 tables + aligned diff, forked"][0], timings["2 tables + aligned diff, 40 edits"][0]) * 1e3
    verdict = "OK" if worst < TARGET_MS else "OVER TARGET"
    print(f"tables + aligned diff, worst case: {worst:.1f} ms, {worst / 1e3 / baseline:.1f}x the plain table; "
          f"target < {TARGET_MS:.0f} ms: {verdict}")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())

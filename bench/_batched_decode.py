"""llama.cpp's own batched decode of N sequences, in process: the baseline that
bench/sandbox_batching.py holds the sandbox's serving to.

The context is the one the sandbox's scheduler makes (playground.sandbox.scheduler.make_context):
the engine's context settings (threads, batch threads), n_ctx per sequence x N, n_seq_max = N,
a KV cache that is not unified (a stream of cells per sequence), no flash attention, batches of
512. The loop is the plainest one: each prompt in a decode of its own, then one decode a step
holding the next token of every sequence (ascending sequence ids), each picked by argmax with
<|im_end|> banned. No sampler chain, no text handling, no threads: what is left over this in the
sandbox is its serving.
"""

from __future__ import annotations

import time

import llama_cpp
import numpy as np

from playground.sandbox.scheduler import N_BATCH, make_context, put_token


class BatchedDecode:
    """A context of `parallel` sequences over the engine's model (a playground.sandbox.model.Engine)."""

    def __init__(self, engine, parallel: int, banned: tuple[int, ...] = ()) -> None:
        self.engine = engine
        self.parallel = parallel
        self.banned = list(banned)
        self._ctx = make_context(engine, parallel)  # as the sandbox's scheduler makes its own
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(N_BATCH, 0, 1)

    def close(self) -> None:
        llama_cpp.llama_batch_free(self._batch)
        llama_cpp.llama_free(self._ctx)

    def run(self, prompts: list[list[int]], tokens: int) -> tuple[float, list[list[int]]]:
        """Greedy replies of exactly `tokens` tokens to every prompt (one sequence each), from empty
        cells; seconds from the first prompt's decode to the last token picked, and the tokens."""
        if len(prompts) > self.parallel:
            raise ValueError(f"{len(prompts)} prompts for a context of {self.parallel} sequences")
        for seq in range(self.parallel):
            llama_cpp.llama_memory_seq_rm(self._memory, seq, -1, -1)
        batch = self._batch
        replies: list[list[int]] = [[] for _ in prompts]
        start = time.perf_counter()
        for seq, prompt in enumerate(prompts):
            for i, token in enumerate(prompt):
                put_token(batch, i, token, i, seq, i == len(prompt) - 1)
            batch.n_tokens = len(prompt)
            self._decode()
            replies[seq].append(self._pick(len(prompt) - 1))
        for step in range(1, tokens):
            for seq, prompt in enumerate(prompts):
                put_token(batch, seq, replies[seq][-1], len(prompt) + step - 1, seq, True)
            batch.n_tokens = len(prompts)
            self._decode()
            for seq in range(len(prompts)):
                replies[seq].append(self._pick(seq))
        return time.perf_counter() - start, replies

    def text(self, reply: list[int]) -> str:
        return b"".join(self.engine.piece(token) for token in reply).decode("utf-8", errors="replace")

    def _decode(self) -> None:
        if llama_cpp.llama_decode(self._ctx, self._batch) != 0:
            raise RuntimeError("llama_decode failed")

    def _pick(self, row: int) -> int:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._ctx, row), shape=(self.engine.n_vocab,))
        if self.banned:
            logits = logits.copy()
            logits[self.banned] = -np.inf
        return int(logits.argmax())

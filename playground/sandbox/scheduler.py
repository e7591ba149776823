"""Continuous batching: up to `parallel` choices share one llama.cpp context, one sequence id each.

One thread owns the context. Every step it drops what was cancelled, starts choices that waited
for another's prompt, admits queued choices into free slots (FIFO), decodes one batch holding
the next token of every running choice and a chunk of the prompt of newly admitted ones, then
samples each choice with its own sampler chain. The choices of one request admitted together
evaluate the prompt once; the others copy its cells (llama_memory_seq_cp) before their first
token.

The KV cache is not unified: each sequence id has its own stream of `n_ctx` cells, so a
sequence's attention never sees another's cells and its floating-point sums are the same bits
alone or in a batch (a unified cache interleaves cells and changed greedy text within 64
tokens), and the same bits whether a prefix's cells were computed now or for an earlier prompt.

Prefix reuse (prefix.py): a finished or abandoned choice leaves its cells in its slot, and a
later prompt evaluates only what follows the longest prefix it shares with cells in some slot:
its own slot's cut back (llama_memory_seq_rm), or another's copied in. With the prefix cache
off (--no-prefix-cache) a choice's cells are freed when it ends and every prompt is read whole.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading

import llama_cpp
import numpy as np

from playground.sandbox.jobs import Job, Outcome, Piece, Seq, Ticket
from playground.sandbox.prefix import SlotCache, common_prefix
from playground.sandbox.sampling import Sampler

__all__ = ["Job", "Outcome", "Piece", "Scheduler", "Ticket"]

PROMPT_STEP = 128  # prompt tokens per step, all prompts together
# A prompt chunk this short (the end of a prompt after a reused prefix) is read with the
# one-token thread count: too little work per thread to pay for llama.cpp's barriers. Measured on
# the shared 2-core machine (load 8): 10 tokens 128 ms with 1 thread against 476 ms with 2.
SMALL_CHUNK = 32
N_BATCH = 512

log = logging.getLogger(__name__)


def make_context(engine, parallel: int):
    """A llama.cpp context of `parallel` sequences over the engine's model, as the sandbox decodes:
    the engine's settings, one KV stream per sequence, batches of N_BATCH (a bench's in-process
    baseline makes its own with this too, so both sides decode alike)."""
    params = type(engine.llm.context_params).from_buffer_copy(engine.llm.context_params)  # the server's settings
    params.n_ctx = engine.n_ctx * parallel
    params.n_seq_max = parallel
    params.n_batch = params.n_ubatch = N_BATCH
    params.kv_unified = False
    # No flash attention: on this CPU build it read a prompt 5x slower (384 tokens: 7.1 s against
    # 1.2 s), and its sums for a token depended on how many tokens shared its step.
    params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    ctx = llama_cpp.llama_init_from_model(engine.llm._model.model, params)
    if not ctx:
        raise RuntimeError(f"llama.cpp could not make a context of {parallel} x {engine.n_ctx} tokens")
    return ctx


class Scheduler:
    """Owns a llama.cpp context of `parallel` sequences over the engine's model."""

    def __init__(self, engine, parallel: int, prefix_cache: bool = True) -> None:
        self.engine = engine
        self.parallel = parallel
        self._ctx = make_context(engine, parallel)
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self.n_ctx_total = llama_cpp.llama_n_ctx(self._ctx)
        self._batch = llama_cpp.llama_batch_init(N_BATCH, 0, 1)
        self._threads = (engine.n_threads, engine.n_threads_batch)
        self._slots: list[Seq | None] = [None] * parallel
        self._cache = SlotCache(parallel, prefix_cache)
        self._queue: collections.deque[Ticket] = collections.deque()
        self._cond = threading.Condition()
        self.active = 0  # tickets submitted and not yet done
        self.prompt_tokens_evaluated = 0  # over the life of the process: for /healthz and tests
        self.prompt_tokens_reused = 0  # prompt tokens whose cells were kept or copied instead
        self.steps = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="sandbox-scheduler", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # before the model is freed: a decode must not outlive it

    def close(self) -> None:
        """Stop the loop (requests still waiting fail) and free the context."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._thread.join(10)
        if self._thread.is_alive():
            return  # a decode still runs: leave its memory alone
        for ticket in {seq.ticket for seq in self._slots if seq is not None} | set(self._queue):
            self._fail(ticket, RuntimeError("the sandbox is shutting down"))
        llama_cpp.llama_batch_free(self._batch)
        llama_cpp.llama_free(self._ctx)
        atexit.unregister(self.close)

    @property
    def running(self) -> int:
        return sum(seq is not None for seq in self._slots)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def prefix_cache(self) -> bool:
        return self._cache.enabled

    def cached_tokens(self, slot: int) -> list[int]:
        """The tokens the scheduler holds to be in sequence `slot`'s cells (ask while it is idle)."""
        return list(self._cache.tokens[slot])

    def cells(self, slot: int) -> int:
        """How many positions sequence `slot` holds in llama.cpp's cache (its last one + 1)."""
        return llama_cpp.llama_memory_seq_pos_max(self._memory, slot) + 1

    def submit(self, ticket: Ticket) -> None:
        with self._cond:
            self.active += 1
            self._queue.append(ticket)
            self._cond.notify()

    # --- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and self.running == 0 and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
            try:
                self._step()
            except BaseException as error:  # never let the thread die: fail what was running
                log.exception("scheduler step failed")
                for seq in list(self._slots):
                    if seq is not None:
                        self._fail(seq.ticket, error)

    def _step(self) -> None:
        self._drop_cancelled()
        self._start_waiting()
        self._admit()
        # Every running choice's next token in one decode (one token per sequence), then each
        # prompt chunk in a decode of its own, never a single token: llama.cpp computes a sequence
        # with one token in a ubatch another way (its last prompt token's logits moved by up to 0.4
        # when read alone after a reused prefix), and a decode of several sequences splits them
        # into ubatches of equal shares. So a prompt token is computed the same way however the
        # prompt is cut, and an answer is the same with or without reuse, alone or in a batch.
        generating = [seq for seq in self._slots if seq is not None and seq.next_token is not None]
        reading = [seq for seq in self._slots
                   if seq is not None and seq.prompt_left and seq.leader is None and seq.source is None]
        if not generating and not reading:
            return
        self.steps += 1
        if generating:
            for n, seq in enumerate(generating):  # ascending sequence ids: llama.cpp packs them in one ubatch
                self._cache.tokens[seq.slot].append(seq.next_token)
                put_token(self._batch, n, seq.next_token, seq.pos, seq.slot, True)
                seq.pos, seq.row, seq.next_token = seq.pos + 1, n, None
            self._batch.n_tokens = len(generating)
            self._set_threads(self.engine.n_threads_batch)
            if self._decode(generating):
                for seq in generating:
                    self._sampled(seq)
        budget = PROMPT_STEP  # running choices keep flowing while a long prompt is read
        for seq in reading:
            take = _chunk(len(seq.prompt_left), budget)
            if take == 0 or seq.ticket.done.is_set():
                continue
            budget -= take
            chunk, seq.prompt_left = seq.prompt_left[:take], seq.prompt_left[take:]
            self._cache.tokens[seq.slot].extend(chunk)
            every = seq.ticket.job.prompt_logprobs is not None  # each prompt position's logits are wanted
            last = take - 1 if not seq.prompt_left else -1
            for i, token in enumerate(chunk):
                put_token(self._batch, i, token, seq.pos + i, seq.slot, every or i == last)
            start, seq.pos = seq.pos, seq.pos + take
            seq.row = take - 1
            self._batch.n_tokens = take
            self._set_threads(self.engine.n_threads if take < SMALL_CHUNK else self.engine.n_threads_batch)
            if self._decode([seq]):
                self.prompt_tokens_evaluated += take
                if every:
                    self._prompt_logprobs(seq, start, take)
                if not seq.prompt_left:
                    self._sampled(seq)

    def _set_threads(self, batch_threads: int) -> None:
        threads = (self.engine.n_threads, batch_threads)
        if threads != self._threads:
            llama_cpp.llama_set_n_threads(self._ctx, *threads)
            self._threads = threads

    def _decode(self, members: list[Seq]) -> bool:
        code = llama_cpp.llama_decode(self._ctx, self._batch)
        if code == 0:
            return True
        error = RuntimeError(f"llama_decode returned {code}")  # its cells may be half written: end its requests
        for seq in members:
            self._cut(seq.slot, 0)
        for ticket in {seq.ticket for seq in members}:
            self._fail(ticket, error)
        return False

    def _sampled(self, seq: Seq) -> None:
        """The decode gave this choice's row: hand the prompt's cells to its siblings, sample."""
        if seq.ticket.done.is_set():  # a sibling's callback failed this step
            return
        for follower in seq.followers:  # the prompt is in the leader's cells: share them
            self._copy(seq.slot, follower.slot, seq.pos)
            follower.pos, follower.row, follower.leader = seq.pos, seq.row, None
        followers, seq.followers = seq.followers, []
        for each in (seq, *followers):
            if not each.ticket.done.is_set():
                self._advance(each)

    def _drop_cancelled(self) -> None:
        with self._cond:
            gone = [ticket for ticket in self._queue if ticket.cancel.is_set()]
        gone += [seq.ticket for seq in self._slots if seq is not None and seq.ticket.cancel.is_set()]
        for ticket in dict.fromkeys(gone):
            ticket.outcome.cancelled = True
            self._end(ticket)

    def _admit(self) -> None:
        while True:
            with self._cond:
                free = [slot for slot, seq in enumerate(self._slots) if seq is None]
                if not self._queue or not free:
                    return
                ticket = self._queue[0]
                group = ticket.waiting[: len(free)]
                del ticket.waiting[: len(group)]
                if not ticket.waiting:
                    self._queue.popleft()
            job = ticket.job
            room = self.engine.n_ctx - len(job.prompt_tokens)
            limit = room if job.max_tokens is None else min(job.max_tokens, room)
            first = self._cache.choose_slot(job.prompt_tokens, free)  # the leader's; the others by age
            slots = [first, *sorted((slot for slot in free if slot != first), key=self._cache.used.__getitem__)]
            seqs: list[Seq] = []
            try:
                for slot, index in zip(slots, group):
                    sampler = Sampler(self.engine.vocab, self.engine.n_vocab, self.engine.n_ctx,
                                      job.sampling, ticket.seed + index)
                    seq = Seq(ticket, index, slot, sampler, limit)
                    self._slots[slot] = seq
                    self._cache.touch(slot)
                    ticket.live += 1
                    seqs.append(seq)
            except Exception as error:  # a grammar llama.cpp refused: this request only
                self._fail(ticket, error)
                continue
            leader = seqs[0]
            leader.followers = seqs[1:]
            for follower in leader.followers:
                follower.leader = leader
                self._cut(follower.slot, 0)  # it will hold a copy of the leader's cells
            self._place(leader)

    # --- prefix reuse -------------------------------------------------------------------------

    def _place(self, seq: Seq) -> None:
        """Start a leader's prompt after the longest prefix already in some cells: kept in its
        own slot, copied from another, or (that one still reading it) copied once it is there."""
        others: dict[int, tuple[list[int], list[int]]] = {}
        for slot, other in enumerate(self._slots):
            if slot == seq.slot or (other is not None and (other.leader is not None or other.source is not None)):
                continue  # (a follower's or a waiting choice's cells are about to be replaced)
            others[slot] = (self._cache.tokens[slot], other.prompt_left if other is not None else [])
        plan = self._cache.plan(seq.ticket.job.prompt_tokens, seq.slot, others)
        if seq.ticket.job.prompt_logprobs is not None:  # every prompt token's logits: read it all
            self._start(seq, self._cut(seq.slot, 0))
        elif plan.source is None:
            self._start(seq, self._cut(seq.slot, plan.keep))
        elif plan.ready:
            self._copy(plan.source, seq.slot, plan.share)
            self._start(seq, plan.share)
        else:
            seq.source, seq.share = self._slots[plan.source], plan.share

    def _start_waiting(self) -> None:
        """Choices waiting for another request's prompt: copy it once its cells are there; plan
        again when that request went away first."""
        for seq in self._slots:
            if seq is None or seq.source is None:
                continue
            source, seq.source = seq.source, None
            held = self._cache.tokens[source.slot]
            if common_prefix(held, seq.ticket.job.prompt_tokens) >= seq.share:
                self._copy(source.slot, seq.slot, seq.share)
                self._start(seq, seq.share)
            elif self._slots[source.slot] is source and source.prompt_left:
                seq.source = source  # still reading it
            else:
                self._place(seq)

    def _start(self, seq: Seq, reused: int) -> None:
        """The leader's cells hold the prompt's first `reused` tokens: read the rest."""
        prompt = seq.ticket.job.prompt_tokens
        seq.pos = reused
        seq.prompt_left = list(prompt[reused:])
        self.prompt_tokens_reused += reused
        if not seq.ticket.placed:
            seq.ticket.placed = True
            seq.ticket.outcome.cached_tokens = reused

    def _prompt_logprobs(self, seq: Seq, start: int, take: int) -> None:
        """vLLM's prompt_logprobs for the chunk just read (positions start..start+take-1): row i
        holds the model's distribution for the token after position start+i."""
        job, outcome = seq.ticket.job, seq.ticket.outcome
        if outcome.prompt_logprobs is None:
            outcome.prompt_logprobs = [None]  # the first token: nothing before it
        targets = job.prompt_tokens[start + 1: start + take + 1]
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits(self._ctx), shape=(take, self.engine.n_vocab))
        outcome.prompt_logprobs.extend(self.engine.prompt_logprob_entries(logits, targets, job.prompt_logprobs))

    def _cut(self, slot: int, keep: int) -> int:
        """Drop the slot's cells from position `keep` on; how many it kept."""
        if keep > 0 and not llama_cpp.llama_memory_seq_rm(self._memory, slot, keep, -1):
            keep = 0  # a cache that cannot cut a sequence's tail (never for this model's)
        if keep == 0:
            llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)
        del self._cache.tokens[slot][keep:]
        return keep

    def _copy(self, source: int, slot: int, share: int) -> None:
        """Slot `slot` gets the first `share` cells of `source`. Across streams llama.cpp copies a
        whole stream, at the next decode, before that decode writes anything: then cut the tail."""
        llama_cpp.llama_memory_seq_cp(self._memory, source, slot, -1, -1)
        self._cache.tokens[slot] = list(self._cache.tokens[source])
        self._cut(slot, share)

    def _advance(self, seq: Seq) -> None:
        """Sample this choice's next token from its row, and hand out what it adds."""
        engine, job = self.engine, seq.ticket.job
        if seq.generated >= seq.limit:
            self._finish(seq, "length")
            return
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._ctx, seq.row), shape=(engine.n_vocab,))
        token, sampled_logprob = seq.sampler.sample(self._ctx, seq.row, logits, job.logprobs)
        if engine.is_end(token):
            self._finish(seq, "stop")
            return
        if seq.generated == 0 and job.sampling.grammar_until_text and not engine.piece(token).startswith(b"{"):
            seq.sampler.drop_grammar()  # the answer is text, not a call: nothing left to constrain
        seq.generated += 1
        seq.ticket.outcome.completion_tokens += 1
        engine.tokens_generated += 1
        entry = None
        if job.logprobs:
            entry = engine.logprob_entry(token, job.top_logprobs, logits)
            entry.sampled_logprob = sampled_logprob
        delta = seq.text.add(engine.piece(token), entry)
        if delta.text or delta.logprobs:
            if not self._emit(seq, Piece(seq.index, delta.text, delta.logprobs if job.logprobs else None)):
                return
        if delta.stopped:
            self._finish(seq, "stop")
        elif seq.generated >= seq.limit:
            self._finish(seq, "length")
        else:
            seq.next_token = token

    # --- endings ------------------------------------------------------------------------------

    def _emit(self, seq: Seq, piece: Piece) -> bool:
        """Hand a piece to the request; a callback that raises ends that request only."""
        try:
            seq.ticket.on_piece(piece)
            return True
        except Exception as error:
            self._fail(seq.ticket, error)
            return False

    def _finish(self, seq: Seq, reason: str) -> None:
        logprobs = seq.ticket.job.logprobs
        delta = seq.text.finish()
        if delta.text or delta.logprobs:
            if not self._emit(seq, Piece(seq.index, delta.text, delta.logprobs if logprobs else None)):
                return
        if not self._emit(seq, Piece(seq.index, finish_reason=reason)):
            return
        self._release(seq)
        ticket = seq.ticket
        if ticket.live == 0 and not ticket.waiting:
            self._end(ticket)

    def _release(self, seq: Seq) -> None:
        """Free the slot. Its cells stay for a later prompt to reuse (unless the cache is off)."""
        if self._slots[seq.slot] is seq:
            self._slots[seq.slot] = None
            self._cache.touch(seq.slot)
            if not self._cache.enabled:
                self._cut(seq.slot, 0)
            seq.sampler.close()
            seq.ticket.live -= 1

    def _fail(self, ticket: Ticket, error: BaseException) -> None:
        if ticket.error is None:
            ticket.error = error
        self._end(ticket)

    def _end(self, ticket: Ticket) -> None:
        """Take the request out of the queue and its slots, and wake whoever waits for it."""
        for seq in self._slots:
            if seq is not None and seq.ticket is ticket:
                self._release(seq)
        with self._cond:
            if ticket in self._queue:
                self._queue.remove(ticket)
            if not ticket.done.is_set():
                self.active -= 1
        ticket.waiting.clear()
        ticket.done.set()


def _chunk(left: int, budget: int) -> int:
    """How many of a prompt's `left` tokens to read in this step's `budget`: never one token
    alone, nor leaving one for later (unless the prompt is a single token)."""
    if left <= budget:
        return left
    take = budget - 1 if left - budget == 1 else budget
    return take if take >= 2 else 0


def put_token(batch, i: int, token: int, pos: int, seq_id: int, logits: bool) -> None:
    """Row i of a llama_batch: one token of one sequence (the bench's in-process baseline fills its own with it)."""
    batch.token[i] = token
    batch.pos[i] = pos
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = seq_id
    batch.logits[i] = logits


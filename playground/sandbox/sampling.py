"""llama.cpp sampler chains with OpenAI semantics (grammars.py makes their grammars).

The chain, in order: logit_bias, penalties, temperature, top_k, top_p, min_p, typical_p, then a
seeded draw (or greedy at temperature 0). Temperature comes before the truncation samplers, as
in OpenAI's and Hugging Face's samplers, so top_p cuts the distribution the draw actually uses.

A grammar stands apart from the chain, as llama.cpp's own common sampler keeps it: the token the
chain draws is checked alone, and only when the grammar refuses it is the draw made again over
the tokens the grammar allows (checking all 49,152 tokens of the vocabulary took most of a
step). Drawing from the whole distribution and redrawing from the allowed part on a refusal gives
each allowed token its probability in the allowed part, the same as filtering first.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass, field

import llama_cpp
import numpy as np
from llama_cpp._internals import LlamaSampler

from playground.sandbox.grammars import GRAMMAR_ROOT, GrammarError

# llama_token_data as numpy lays it out: the candidates are filled from the logits in one copy.
TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
RANDOM_SEED = 0xFFFFFFFF  # llama.cpp's "pick a random seed": never pass it for a user seed


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # <= 0: off
    min_p: float = 0.0
    typical_p: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    grammar: str | None = None  # GBNF text
    # Tool choice "auto": the grammar allows text or a call, and the first token tells which. Once
    # it is text the grammar is dropped: it would only check every token of the vocabulary
    # against "any character" (a 135M model's step took 2.4x as long with it).
    grammar_until_text: bool = False


def seed_for(seed: int) -> int:
    """A uint32 llama.cpp uses as is (never its 'random' value)."""
    return seed % RANDOM_SEED


class Sampler:
    """One choice's sampler: its chain, its grammar (if any), and the candidates array they share."""

    def __init__(self, vocab, n_vocab: int, n_ctx: int, params: SamplingParams, seed: int) -> None:
        self.grammar = None
        if params.grammar is not None:
            self.grammar = llama_cpp.llama_sampler_init_grammar(vocab, params.grammar.encode("utf-8"), GRAMMAR_ROOT)
            if not self.grammar:
                raise GrammarError("llama.cpp could not parse the grammar made from this schema")
        self.chain = _chain(n_vocab, n_ctx, params, seed)
        self.greedy = params.temperature <= 0.0
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._data = np.zeros(n_vocab, dtype=TOKEN_DATA)
        self._one = np.zeros(1, dtype=TOKEN_DATA)
        self._candidates = _array(self._data)
        self._single = _array(self._one)

    def sample(self, ctx, row: int, logits: np.ndarray, want_logprob: bool) -> tuple[int, float | None]:
        """Draw the next token from the model's logits (row `row` of the context's, as `logits`) and
        accept it. Returns it with, when `want_logprob`, its logprob under the chain: in the
        distribution it was drawn from after bias, penalties, grammar, temperature and truncation (0
        for greedy, whose pick is certain)."""
        if self.grammar is None and not want_logprob:
            # llama.cpp fills the candidates in C++: filling them here cost the batching bench 2%
            return llama_cpp.llama_sampler_sample(self.chain.sampler, ctx, row), None
        token, p = self._draw(logits, with_grammar=False)
        if self.grammar is not None and not self._allowed(token):
            token, p = self._draw(logits, with_grammar=True)
        if self.grammar is not None:
            llama_cpp.llama_sampler_accept(self.grammar, token)
        llama_cpp.llama_sampler_accept(self.chain.sampler, token)
        return token, 0.0 if self.greedy else math.log(p) if p > 0.0 else -math.inf

    def drop_grammar(self) -> None:
        """The answer no longer needs its grammar (see SamplingParams.grammar_until_text)."""
        if self.grammar is not None:
            llama_cpp.llama_sampler_free(self.grammar)
            self.grammar = None

    def close(self) -> None:
        self.drop_grammar()
        self.chain.close()

    def _draw(self, logits: np.ndarray, with_grammar: bool) -> tuple[int, float]:
        data, candidates = self._data, self._candidates
        data["id"] = self._ids  # the samplers sort and cut the array in place: fill it afresh
        data["logit"] = logits
        data["p"] = 0.0
        candidates.size, candidates.selected, candidates.sorted = len(data), -1, False
        if with_grammar:
            llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(candidates))
        llama_cpp.llama_sampler_apply(self.chain.sampler, ctypes.byref(candidates))
        chosen = candidates.data[candidates.selected]
        return chosen.id, chosen.p

    def _allowed(self, token: int) -> bool:
        self._one[0] = (token, 0.0, 0.0)
        self._single.size, self._single.selected, self._single.sorted = 1, -1, False
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(self._single))
        return bool(np.isfinite(self._one[0]["logit"]))


def _array(data: np.ndarray):
    return llama_cpp.llama_token_data_array(
        data=data.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)), size=len(data), selected=-1,
        sorted=False)


def _chain(n_vocab: int, n_ctx: int, params: SamplingParams, seed: int) -> LlamaSampler:
    chain = LlamaSampler()
    if params.logit_bias:
        chain.add_logit_bias(n_vocab, params.logit_bias)
    if params.frequency_penalty or params.presence_penalty or params.repetition_penalty != 1.0:
        chain.add_penalties(
            n_vocab=n_vocab,
            penalty_last_n=n_ctx,
            penalty_repeat=params.repetition_penalty,
            penalty_freq=params.frequency_penalty,
            penalty_present=params.presence_penalty,
        )
    if params.temperature <= 0.0:
        chain.add_greedy()
        return chain
    if params.temperature != 1.0:
        chain.add_temp(params.temperature)
    if params.top_k > 0:
        chain.add_top_k(params.top_k)
    if params.top_p < 1.0:
        chain.add_top_p(params.top_p, 1)
    if params.min_p > 0.0:
        chain.add_min_p(params.min_p, 1)
    if params.typical_p < 1.0:
        chain.add_typical(params.typical_p, 1)
    chain.add_dist(seed_for(seed))
    return chain

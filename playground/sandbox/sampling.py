"""llama.cpp sampler chains with OpenAI semantics, and grammars for response_format.

The chain, in order: logit_bias, penalties, grammar, temperature, top_k, top_p, min_p,
typical_p, then a seeded draw (or greedy at temperature 0). Temperature comes before the
truncation samplers, as in OpenAI's and Hugging Face's samplers, so top_p cuts the
distribution the draw actually uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import llama_cpp
from llama_cpp._internals import LlamaSampler
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

GRAMMAR_ROOT = b"root"
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


class GrammarError(ValueError):
    """A grammar llama.cpp would not parse."""


def seed_for(seed: int) -> int:
    """A uint32 llama.cpp uses as is (never its 'random' value)."""
    return seed % RANDOM_SEED


def grammar_for(response_format_type: str, schema: dict | None) -> str | None:
    """GBNF for a response_format: None for text, JSON for json_object, the schema's grammar
    for json_schema. Raises ValueError for a schema the converter cannot handle."""
    if response_format_type == "json_object":
        return JSON_GBNF
    if response_format_type == "json_schema":
        return json_schema_to_gbnf(json.dumps(schema if schema is not None else {}))
    return None


def check_grammar(vocab, grammar: str) -> None:
    """Raise GrammarError if llama.cpp cannot parse the grammar."""
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), GRAMMAR_ROOT)
    if not sampler:
        raise GrammarError("llama.cpp could not parse the grammar made from this schema")
    llama_cpp.llama_sampler_free(sampler)


def build_sampler(vocab, n_vocab: int, n_ctx: int, params: SamplingParams, seed: int) -> LlamaSampler:
    """A fresh sampler chain; llama_sampler_sample() on it also accepts the drawn token."""
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
    if params.grammar is not None:
        grammar = llama_cpp.llama_sampler_init_grammar(vocab, params.grammar.encode("utf-8"), GRAMMAR_ROOT)
        if not grammar:
            chain.close()
            raise GrammarError("llama.cpp could not parse the grammar made from this schema")
        llama_cpp.llama_sampler_chain_add(chain.sampler, grammar)
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

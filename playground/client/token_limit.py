"""Which wire field carries the token limit, and whether a server kept to it.

Two names exist for one limit: `max_completion_tokens` (OpenAI's newer name, SGP's) and
`max_tokens` (the older one). Servers read one of them and ignore the other without a word:
llama-cpp-python's server ignores max_completion_tokens (its issue #1907), Ollama and LM Studio
read only max_tokens, OpenAI's o-series refuse max_tokens. So each endpoint names its field
(Endpoint.token_limit_field) and the limit is sent in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from playground.client.schema import ChatRequest

if TYPE_CHECKING:
    from playground.client.run import Run

TokenLimitField = Literal["max_completion_tokens", "max_tokens"]
TOKEN_LIMIT_FIELDS: tuple[TokenLimitField, ...] = ("max_completion_tokens", "max_tokens")
OPENAI_HOST = "api.openai.com"


def default_field(kind: str, base_url: str) -> TokenLimitField:
    """max_completion_tokens for SGP (and servers spoken to as SGP is) and OpenAI's own host;
    max_tokens for every other OpenAI-compatible server and the sandbox: the older name is the
    one every such server knows."""
    if kind == "sgp" or (urlsplit(base_url).hostname or "").lower() == OPENAI_HOST:
        return "max_completion_tokens"
    return "max_tokens"


def other_field(field: TokenLimitField) -> TokenLimitField:
    return "max_tokens" if field == "max_completion_tokens" else "max_completion_tokens"


def with_token_limit_field(request: ChatRequest, field: TokenLimitField) -> ChatRequest:
    """`request` with its token limit in `field`: a limit set only in the other field moves
    there. A request that sets both (typed on purpose) or neither is returned unchanged."""
    other = other_field(field)
    limit = getattr(request, other)
    if limit is None or getattr(request, field) is not None:
        return request
    return request.model_copy(update={field: limit, other: None})


def changes_in_field(changes: dict, field: TokenLimitField) -> dict:
    """Changes to a request (ChatRequest.changes_from) with a token limit edited in the other
    field moved to `field`: an edit made for one endpoint follows the request to another."""
    other = other_field(field)
    if other not in changes or field in changes:
        return changes
    moved = dict(changes)
    moved[field] = moved.pop(other)
    return moved


@dataclass(frozen=True)
class IgnoredLimit:
    """A run that generated more tokens than its request's limit allows."""

    field: TokenLimitField  # the field the limit was sent in
    limit: int  # per choice, as asked
    choices: int
    generated: int  # all choices together (usage's completion_tokens, else the logprobs' count)

    @property
    def allowed(self) -> int:
        return self.limit * self.choices


def ignored_limit(run: "Run") -> IgnoredLimit | None:
    """The limit `run`'s server ignored, if it generated more tokens than the request allows (the
    limit applies per choice); None when it kept to it or no limit was sent. With both fields
    set, the smaller is the one that should have held."""
    request = run.request
    sent = [(getattr(request, f), f) for f in TOKEN_LIMIT_FIELDS if getattr(request, f) is not None]
    if not sent:
        return None
    limit, field = min(sent)
    choices = max(len(run.choices), 1)
    # Counted tokens only: the server's usage, else one logprob per token. Streamed deltas are no
    # count (a server may send several tokens, or pieces of one, per delta): no claim on a guess.
    if run.usage is not None and run.usage.completion_tokens:
        generated = run.usage.completion_tokens
    else:
        generated = sum(len(choice.logprobs) for choice in run.choices)
    if generated <= limit * choices:
        return None
    return IgnoredLimit(field, limit, choices, generated)

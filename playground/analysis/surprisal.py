"""How surprising the prompt was to the model: vLLM's `prompt_logprobs` (one entry per prompt
token, the first null; each a map from token id to {logprob, rank, decoded_token}) read as
tokens with their surprisal in bits, and each message's share of them.

Which entry of a position's map is the prompt's own token: vLLM puts it first (then the top-k,
which may hold it again); with a `rank` of its own it is the same either way. A message's
tokens are found by laying the decoded tokens end to end and finding each message's text in
that string, in order; tokens of the chat template (role markers, separators) belong to no
message."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

_LN2 = math.log(2.0)


@dataclass(frozen=True)
class PromptToken:
    position: int
    text: str
    logprob: float | None  # None for the first token (nothing before it to predict it from)
    rank: int | None
    alternatives: list[tuple[str, float]]  # the other tokens the model expected there

    @property
    def bits(self) -> float | None:
        """Surprisal: -log2 p. 0 for a token the model was sure of; 10 is 1 in 1,024."""
        return None if self.logprob is None else max(-self.logprob / _LN2, 0.0)

    @property
    def probability(self) -> float | None:
        return None if self.logprob is None else math.exp(min(self.logprob, 0.0))


@dataclass
class MessageSurprisal:
    index: int  # into the request's messages
    role: str
    tokens: list[PromptToken] = field(default_factory=list)

    @property
    def mean_bits(self) -> float | None:
        values = [t.bits for t in self.tokens if t.bits is not None]
        return math.fsum(values) / len(values) if values else None

    def most_surprising(self, k: int = 3) -> list[PromptToken]:
        scored = [t for t in self.tokens if t.bits is not None and t.text.strip()]
        return sorted(scored, key=lambda t: -t.bits)[:k]


def prompt_tokens(prompt_logprobs: Sequence[dict[str, Any] | None]) -> list[PromptToken]:
    """The prompt's tokens with their logprobs, from vLLM's prompt_logprobs."""
    out = []
    for position, entry in enumerate(prompt_logprobs):
        if not entry:
            out.append(PromptToken(position, "", None, None, []))
            continue
        items = list(entry.values())
        own = items[0]
        others = sorted(((str(v.get("decoded_token", "")), float(v["logprob"])) for v in items[1:]
                         if v.get("decoded_token") != own.get("decoded_token")), key=lambda a: -a[1])
        out.append(PromptToken(position, str(own.get("decoded_token", "")), float(own["logprob"]),
                               own.get("rank"), others))
    # the first position's map is null: its text is unknown, which drops nothing else
    return out


def by_message(tokens: list[PromptToken], messages: Sequence[dict[str, Any]]) -> list[MessageSurprisal]:
    """Each message's prompt tokens: those whose text overlaps the message's text where it is
    found (in order) in the prompt laid end to end."""
    starts, offset = [], 0
    for token in tokens:
        starts.append(offset)
        offset += len(token.text)
    prompt = "".join(t.text for t in tokens)
    found, cursor = [], 0
    for index, message in enumerate(messages):
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        result = MessageSurprisal(index, str(message.get("role", "")))
        at = prompt.find(text, cursor) if text else -1
        if at >= 0:
            end = at + len(text)
            result.tokens = [t for t, s in zip(tokens, starts) if s < end and s + len(t.text) > at]
            cursor = end
        found.append(result)
    return found

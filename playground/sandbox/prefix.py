"""Prefix reuse: which tokens each sequence slot's KV cells hold, and where a new prompt starts.

A slot keeps its cells when its choice ends. A new prompt is read only from the end of the
longest prefix it shares with cells already computed: its own slot's (cut back to that prefix),
or another slot's, copied in (a hot prefix: several requests that share it at once). The last
two prompt tokens are always evaluated again: the first sample needs the last one's logits,
which no cell keeps, and llama.cpp computes a lone token of a sequence in a step another way
(scheduler.py reads no prompt token alone).

Eviction is least-recently-used, by slot: a prompt goes to the free slot holding the longest
prefix of it (ties: the least recently used) when that loses little else of the slot's cells;
otherwise to the least recently used free slot, whose cells are the ones given up, with the
prefix copied in from where it is. Nothing here touches llama.cpp: the scheduler carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

# Copy another slot's cells only when that saves at least this many prompt tokens. A copy
# across the cache's streams moves the whole stream (n_ctx cells of every layer: ~5 ms at 2048
# for SmolLM2-135M on 2 cores); evaluating 16 prompt tokens costs several times that.
MIN_SHARE = 16


@dataclass
class Plan:
    """Where a choice's prompt starts: `keep` cells of its own slot, or (source set) the first
    `share` cells of slot `source`, which already holds them (`ready`) or is evaluating them."""

    keep: int = 0
    source: int | None = None
    share: int = 0
    ready: bool = True


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class SlotCache:
    """Per slot: the tokens its cells hold, in position order, and when it was last used."""

    def __init__(self, slots: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.tokens: list[list[int]] = [[] for _ in range(slots)]
        self.used = [0] * slots
        self._clock = 0

    def touch(self, slot: int) -> None:
        self._clock += 1
        self.used[slot] = self._clock

    def reusable(self, tokens: Sequence[int], prompt: Sequence[int]) -> int:
        """Cells holding `tokens` a prompt can keep: their common prefix, short of the prompt's
        last two tokens."""
        if not self.enabled:
            return 0
        return max(0, min(common_prefix(tokens, prompt), len(prompt) - 2))

    def choose_slot(self, prompt: Sequence[int], free: list[int]) -> int:
        """The free slot a new prompt goes to (see the module's docstring)."""
        lru = min(free, key=lambda slot: self.used[slot])
        if not self.enabled:
            return lru
        best = max(free, key=lambda slot: (self.reusable(self.tokens[slot], prompt), -self.used[slot]))
        lost = len(self.tokens[best]) - self.reusable(self.tokens[best], prompt)
        return best if best == lru or lost < MIN_SHARE else lru

    def plan(self, prompt: Sequence[int], slot: int, others: dict[int, tuple[list[int], list[int]]]) -> Plan:
        """Where a prompt placed in `slot` starts. `others`: for each slot it may copy from, the
        tokens its cells hold and those a running prompt there is about to add."""
        own = self.reusable(self.tokens[slot], prompt)
        if not self.enabled:
            return Plan(keep=0)
        best: int | None = None
        share, ready = own, True
        for other, (held, coming) in others.items():
            have = common_prefix(held, prompt)
            n = have
            if have == len(held) and coming:
                n += common_prefix(coming, prompt[have:])
            n = max(0, min(n, len(prompt) - 2))
            if n > share or (n == share and best is not None and not ready and have >= n):
                best, share, ready = other, n, have >= n
        if best is None or share - own < MIN_SHARE:
            return Plan(keep=own)
        return Plan(keep=own, source=best, share=share, ready=ready)

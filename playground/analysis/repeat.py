"""Summaries of repeated samples of one request: distinct answers with counts, the exact-match
rate, where the samples fork (the first token position at which they stop agreeing) and each
sample's total logprob."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from playground.analysis import logprobs
from playground.client.run import Run
from playground.client.schema import TokenLogprob

MAX_REPEAT = 20
END = "<end>"  # the branch taken by a sample that stops where others go on

_WORDS = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


def tokens_of(run: Run) -> tuple[list[str], bool]:
    """The answer's tokens: the server's (from logprobs) when it sent them, else words and
    punctuation split from the text. The flag says which (True: the server's tokens)."""
    choice = run.choices[0] if run.choices else None
    if choice is not None and choice.logprobs:
        return [token.token for token in choice.logprobs], True
    return words(run.text), False


def words(text: str) -> list[str]:
    """Words, runs of whitespace and punctuation marks: the unit to compare answers in when
    not every answer came with the server's tokens."""
    return _WORDS.findall(text)


def total_logprob(tokens: Sequence[TokenLogprob]) -> float | None:
    """Sum of the chosen tokens' logprobs (the log probability of the whole answer; a token
    marked "outside the top 20" is left out, as in playground.analysis.logprobs); None without logprobs."""
    if not tokens:
        return None
    return logprobs.total_logprob(tokens)


@dataclass(frozen=True)
class AnswerGroup:
    text: str
    count: int
    samples: tuple[int, ...]  # 0-based sample numbers with this exact text


def group_answers(texts: Sequence[str]) -> list[AnswerGroup]:
    """Distinct texts, most frequent first (ties: the one seen first)."""
    members: dict[str, list[int]] = {}
    for n, text in enumerate(texts):
        members.setdefault(text, []).append(n)
    groups = [AnswerGroup(text, len(ns), tuple(ns)) for text, ns in members.items()]
    return sorted(groups, key=lambda g: (-g.count, g.samples[0]))


def exact_match_rate(texts: Sequence[str]) -> float | None:
    """Share of samples identical to the most common answer: 1.0 when all agree (a determinism
    check passes), 1/k when all differ. None for no samples."""
    if not texts:
        return None
    return max(Counter(texts).values()) / len(texts)


@dataclass(frozen=True)
class Fork:
    """Where the samples stop agreeing: every sample shares `prefix` (the first `position`
    tokens), then they take different `branches` (token -> how many samples; END for a
    sample that ends there)."""

    position: int
    prefix: str
    branches: dict[str, int]


def fork_point(sequences: Sequence[Sequence[str]]) -> Fork | None:
    """The first position where not all sequences agree; None when they are all identical
    (or there are fewer than two)."""
    if len(sequences) < 2:
        return None
    position = 0
    while True:
        at = [seq[position] if position < len(seq) else END for seq in sequences]
        if len(set(at)) > 1:
            return Fork(position, "".join(sequences[0][:position]), dict(Counter(at).most_common()))
        if at[0] == END:
            return None
        position += 1


@dataclass(frozen=True)
class Sample:
    number: int  # 1-based, in the order the samples were requested
    run: Run
    group: int  # 1-based index into RepeatSummary.groups
    tokens: int
    total_logprob: float | None
    forks_from_first_at: int | None  # first token differing from sample 1 (None: same tokens)


@dataclass(frozen=True)
class RepeatSummary:
    samples: list[Sample]
    groups: list[AnswerGroup]
    exact_match_rate: float | None
    fork: Fork | None
    server_tokens: bool  # tokens came from the server's logprobs (else a word split of the text)
    failed: int = 0  # samples that ended in an error (left out of the grouping)
    skipped: int = 0  # samples never run (stopped before they started)
    notes: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        return len(self.samples)

    @property
    def distinct(self) -> int:
        return len(self.groups)

    @property
    def deterministic(self) -> bool:
        return self.k > 1 and self.distinct == 1

    def determinism(self, seeded: bool) -> str:
        """The verdict to show: "yes" or "no" for a seeded request sampled at least twice, else
        "n/a" (without a seed, even at temperature 0, agreeing samples prove nothing)."""
        if not seeded or self.k < 2:
            return "n/a"
        return "yes" if self.deterministic else "no"


def summarize(runs: Sequence[Run | None]) -> RepeatSummary:
    """Summarise k samples of one request. Runs that failed (an error with no text) or never ran
    (None) are counted apart and left out of the grouping; a stopped run's partial text counts."""
    usable = [(n, run) for n, run in enumerate(runs, 1) if run is not None and not (run.error and not run.text)]
    failed = sum(1 for run in runs if run is not None and run.error and not run.text)
    skipped = sum(1 for run in runs if run is None)
    texts = [run.text for _, run in usable]
    groups = group_answers(texts)
    group_of = {group.text: i for i, group in enumerate(groups, 1)}
    token_lists = [tokens_of(run) for _, run in usable]
    server_tokens = bool(token_lists) and all(flag for _, flag in token_lists)
    sequences = [tokens for tokens, _ in token_lists]
    if not server_tokens:  # compare like with like: a word split for every sample
        sequences = [words(text) for text in texts]
    notes = []
    if any(run.partial for _, run in usable):
        notes.append("Some samples were stopped or cut off: their partial text is compared as it is.")
    samples = []
    for (number, run), tokens in zip(usable, sequences):
        choice = run.choices[0] if run.choices else None
        samples.append(Sample(
            number=number, run=run, group=group_of[run.text], tokens=len(tokens),
            total_logprob=total_logprob(choice.logprobs) if choice is not None else None,
            forks_from_first_at=logprobs.first_difference(sequences[0], tokens),
        ))
    return RepeatSummary(samples=samples, groups=groups, exact_match_rate=exact_match_rate(texts),
                         fork=fork_point(sequences), server_tokens=server_tokens,
                         failed=failed, skipped=skipped, notes=notes)

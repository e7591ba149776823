"""What a request asks of the scheduler (Job), what it hands back as it runs (Piece), how it
ended (Outcome), the Ticket that carries a job through the scheduler's queue and slots, and each
of its choices once in a slot (Seq)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from playground.sandbox.sampling import SamplingParams
from playground.sandbox.textstream import ChoiceText


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
    prompt_logprobs: int | None = None  # vLLM's: each prompt token's logprob, and the k most likely there
    tool_calls: bool = False  # the answer may be tool calls (tool_calls.py's format): the server reads it so


@dataclass
class Piece:
    """What one choice produced since the last piece: text, logprob entries, or its end."""

    index: int
    text: str = ""
    logprobs: list[Any] | None = None
    finish_reason: str | None = None


@dataclass
class Outcome:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cancelled: bool = False
    cached_tokens: int = 0  # prompt tokens whose cells were reused, not evaluated
    prompt_logprobs: list[Any] | None = None  # vLLM's shape (see Job.prompt_logprobs), when asked


class Ticket:
    """A job in the scheduler: its choices not yet admitted, its live ones, and how it ended."""

    def __init__(self, job: Job, on_piece: Callable[[Piece], None], cancel: threading.Event, seed: int) -> None:
        self.job = job
        self.on_piece = on_piece
        self.cancel = cancel
        self.seed = seed
        self.waiting = list(range(job.n))  # choice indexes not yet in a slot
        self.live = 0
        self.outcome = Outcome(prompt_tokens=len(job.prompt_tokens))
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.placed = False  # its first prompt started: later waves of its choices leave cached_tokens alone


class Seq:
    """One choice in one slot (its sequence id in the KV cache)."""

    def __init__(self, ticket: Ticket, index: int, slot: int, sampler, limit: int) -> None:
        self.ticket = ticket
        self.index = index
        self.slot = slot
        self.sampler = sampler
        self.limit = limit
        self.text = ChoiceText(ticket.job.stop)
        self.generated = 0
        self.pos = 0
        self.prompt_left: list[int] = []  # the leader's prompt tokens not yet decoded
        self.followers: list[Seq] = []  # siblings that copy the leader's prompt cells
        self.leader: Seq | None = None  # set while a follower waits for the prompt
        self.source: Seq | None = None  # set while it waits for another request's prompt to copy
        self.share = 0  # how many of the source's cells it copies
        self.next_token: int | None = None
        self.row = -1  # the batch row whose logits this choice samples from this step

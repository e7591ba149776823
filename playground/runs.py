"""A Run: one request, what came back (accumulated from chunks), its timings and its error."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from pydantic import BaseModel, Field, computed_field

from playground.errors import APIError
from playground.schema import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    FunctionCall,
    TokenLogprob,
    ToolCall,
    Usage,
)


class RunError(BaseModel):
    kind: str
    message: str
    status_code: int | None = None

    @classmethod
    def from_exception(cls, error: Exception) -> "RunError":
        if isinstance(error, APIError):
            return cls(kind=error.kind, message=error.message, status_code=error.status_code)
        return cls(kind=type(error).__name__, message=str(error) or type(error).__name__)


class ChoiceResult(BaseModel):
    index: int = 0
    text: str = ""
    refusal: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    logprobs: list[TokenLogprob] = Field(default_factory=list)
    finish_reason: str | None = None


class ChunkRecord(BaseModel):
    """One raw stream event and when it arrived (seconds after the request was sent)."""

    t: float
    data: str


class Run(BaseModel):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    started_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    endpoint: str = ""  # the endpoint's name: never its key
    request: ChatRequest
    preset: str | None = None
    response_id: str | None = None
    response_model: str | None = None
    system_fingerprint: str | None = None
    choices: list[ChoiceResult] = Field(default_factory=list)
    usage: Usage | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    error: RunError | None = None
    partial: bool = False
    cancelled: bool = False
    content_deltas: int = 0  # streamed deltas with text: a token count when usage is missing
    chunks: list[ChunkRecord] = Field(default_factory=list)

    @property
    def text(self) -> str:
        return self.choices[0].text if self.choices else ""

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None

    @property
    def completion_tokens(self) -> int:
        """From usage when the server gave it, else the tokens counted on the way."""
        if self.usage is not None and self.usage.completion_tokens:
            return self.usage.completion_tokens
        return sum(len(choice.logprobs) for choice in self.choices) or self.content_deltas

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_per_s(self) -> float | None:
        if not self.total_s:
            return None
        # Decode speed: time after the first token, when we know it and it leaves a span.
        span = self.total_s - self.ttft_s if self.ttft_s is not None and self.total_s > self.ttft_s else self.total_s
        tokens = self.completion_tokens
        return tokens / span if tokens and span > 0 else None


class RunRecorder:
    """Builds a Run from chunks (or one completion) as they arrive. Cheap per chunk."""

    def __init__(self, request: ChatRequest, endpoint: str = "", preset: str | None = None) -> None:
        self.run = Run(request=request, endpoint=endpoint, preset=preset)
        self._t0 = time.perf_counter()
        self._texts: dict[int, list[str]] = {}
        self._refusals: dict[int, list[str]] = {}
        self._tool_calls: dict[int, dict[int, dict]] = {}
        self._choices: dict[int, ChoiceResult] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def restart_clock(self) -> None:
        self._t0 = time.perf_counter()

    def _choice(self, index: int) -> ChoiceResult:
        choice = self._choices.get(index)
        if choice is None:
            choice = self._choices[index] = ChoiceResult(index=index)
            self._texts[index] = []
        return choice

    def add_raw(self, data: str) -> None:
        self.run.chunks.append(ChunkRecord(t=self.elapsed(), data=data))

    def add_chunk(self, chunk: ChatCompletionChunk) -> None:
        run = self.run
        if not run.response_id and chunk.id:
            run.response_id, run.response_model = chunk.id, chunk.model or None
        if chunk.system_fingerprint:
            run.system_fingerprint = chunk.system_fingerprint
        if chunk.usage is not None:
            run.usage = chunk.usage
        for choice_delta in chunk.choices:
            choice = self._choice(choice_delta.index)
            delta = choice_delta.delta
            if delta.content:
                if run.ttft_s is None:
                    run.ttft_s = self.elapsed()
                self._texts[choice_delta.index].append(delta.content)
                run.content_deltas += 1
            if delta.refusal:
                self._refusals.setdefault(choice_delta.index, []).append(delta.refusal)
            if delta.tool_calls:
                if run.ttft_s is None:
                    run.ttft_s = self.elapsed()
                calls = self._tool_calls.setdefault(choice_delta.index, {})
                for call in delta.tool_calls:
                    slot = calls.setdefault(call.index, {"id": "", "type": "function", "name": "", "arguments": []})
                    if call.id:
                        slot["id"] = call.id
                    if call.type:
                        slot["type"] = call.type
                    if call.function is not None:
                        if call.function.name:
                            slot["name"] += call.function.name
                        if call.function.arguments:
                            slot["arguments"].append(call.function.arguments)
            if choice_delta.logprobs is not None and choice_delta.logprobs.content:
                choice.logprobs.extend(choice_delta.logprobs.content)
            if choice_delta.finish_reason:
                choice.finish_reason = choice_delta.finish_reason

    def add_completion(self, completion: ChatCompletion) -> None:
        run = self.run
        run.response_id, run.response_model = completion.id or None, completion.model or None
        run.system_fingerprint = completion.system_fingerprint
        run.usage = completion.usage
        for item in completion.choices:
            choice = self._choice(item.index)
            self._texts[item.index] = [item.message.content or ""]
            choice.refusal = item.message.refusal
            choice.tool_calls = list(item.message.tool_calls or [])
            if item.message.function_call is not None:
                choice.tool_calls.append(ToolCall(id="", function=item.message.function_call))
            if item.logprobs is not None and item.logprobs.content:
                choice.logprobs = list(item.logprobs.content)
            choice.finish_reason = item.finish_reason

    def fail(self, error: Exception, partial: bool) -> None:
        self.run.error = RunError.from_exception(error)
        self.run.partial = partial

    def cancel(self) -> None:
        self.run.cancelled = True
        self.run.partial = True

    def snapshot_text(self, index: int = 0) -> str:
        """The text so far, for live display while streaming."""
        return "".join(self._texts.get(index, ()))

    def finish(self) -> Run:
        run = self.run
        run.total_s = self.elapsed()
        for index, choice in self._choices.items():
            choice.text = "".join(self._texts[index])
            if index in self._refusals:
                choice.refusal = "".join(self._refusals[index])
            for _, slot in sorted(self._tool_calls.get(index, {}).items()):
                call = FunctionCall(name=slot["name"], arguments="".join(slot["arguments"]))
                choice.tool_calls.append(ToolCall(id=slot["id"], type=slot["type"], function=call))
        run.choices = [self._choices[i] for i in sorted(self._choices)]
        return run

"""A Run: one request, what came back (accumulated from chunks), its timings and its error."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from pydantic import BaseModel, Field, ValidationError, computed_field
from pydantic_core import from_json

from playground.client.errors import APIError, StreamError, error_message, shorten
from playground.client.schema import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    FunctionCall,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
    message_text,
)

_clock = time.perf_counter
_NO_DELTA: dict = {}
_MAX_SHAPES = 16  # a server whose chunks vary more than their text (a random field): stop learning


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


@dataclass(slots=True)
class ChunkRecord:
    """One raw stream event and when it arrived (seconds after the request was sent).

    A plain dataclass (pydantic validates and serialises it as {"t", "data"}): a long stream
    has tens of thousands of them, and a BaseModel each would cost more than the parsing."""

    t: float
    data: str


class BranchOrigin(BaseModel):
    """Where a branched run came from (playground.runs.continuation): its run, the choice, the
    token position it replaced and the token it took there instead."""

    run_id: str
    choice: int = 0
    position: int
    token: str


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
    branched_from: BranchOrigin | None = None  # kept in the run's own record, as every field here
    # vLLM's prompt_logprobs as the server sent it: one entry per prompt token (the first null),
    # each {token id: {logprob, rank, decoded_token}} (playground.analysis.surprisal reads it)
    prompt_logprobs: list[dict[str, Any] | None] | None = None

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


def parse_chunk(data: str) -> ChatCompletionChunk:
    """One event's data -> a validated chunk; StreamError for bad data or an error object."""
    try:
        chunk = ChatCompletionChunk.model_validate_json(data)
    except ValidationError as error:
        try:  # an error object whose other fields are odd is still an error object
            obj = from_json(data)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and obj.get("error") is not None:
            raise StreamError(None, error_message({"error": obj["error"]}), data) from None
        raise StreamError(None, f"malformed stream data: {shorten(data)} ({error.errors()[0]['msg']})", data) from None
    extra = chunk.__pydantic_extra__
    if extra and extra.get("error") is not None:
        raise StreamError(None, error_message({"error": extra["error"]}), data)
    return chunk


class RunRecorder:
    """Builds a Run from chunks (or one completion) as they arrive. Cheap per chunk: the Run
    itself (a pydantic model, slow to mutate) is filled in once, by finish()."""

    def __init__(self, request: ChatRequest, endpoint: str = "", preset: str | None = None) -> None:
        self.run = Run(request=request, endpoint=endpoint, preset=preset)
        self._t0 = time.perf_counter()
        # Raw events as two flat lists (floats and strs are not tracked by the garbage collector,
        # so a long stream adds no GC work); ChunkRecords are built once, by finish().
        self._raw_t: list[float] = []
        self._raw_data: list[str] = []
        self._texts: dict[int, list[str]] = {}
        self._refusals: dict[int, list[str]] = {}
        self._tool_calls: dict[int, dict[int, dict]] = {}
        self._choices: dict[int, ChoiceResult] = {}
        self._deltas = 0
        self._seen_chunk = False
        self._ttft_pending = True
        self._need_id = True
        # The shape of plain text chunks: the data around the text (see _learn_shape).
        self._prefix: str | None = None
        self._suffix = ""
        self._shape_len = 0
        self._shape_texts: list[str] = []
        self._shapes_learned = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def _choice(self, index: int) -> ChoiceResult:
        choice = self._choices.get(index)
        if choice is None:
            choice = self._choices[index] = ChoiceResult(index=index)
            self._texts[index] = []
        return choice

    def _first_token(self) -> None:
        if self._ttft_pending:
            self._ttft_pending = False
            self.run.ttft_s = self.elapsed()

    def add_data(self, data: str) -> None:
        """Record one event's data and accumulate the chunk in it (see add_batch)."""
        self.add_batch((data,))

    def add_batch(self, datas: Sequence[str]) -> None:
        """Record the data of events that arrived together (one network read) and accumulate
        their chunks.

        Plain text chunks (the bulk of any stream) are read without a parser when they have
        the shape of the last one (the same bytes around a different text: _learn_shape), or
        straight from the JSON; anything else (the first chunk, usage, tool calls, logprobs,
        refusals, odd types) goes through the pydantic model, so every way gives the same Run.
        Raises StreamError when the data is not a chunk or holds an error object (that event
        is the last one recorded)."""
        start = len(self._raw_data)
        self._raw_t.extend([_clock()] * len(datas))
        self._raw_data.extend(datas)
        startswith, endswith = str.startswith, str.endswith
        prefix, suffix, size, texts = self._prefix, self._suffix, self._shape_len, self._shape_texts
        n = shaped = 0
        try:
            for n, data in enumerate(datas):
                if prefix is not None and len(data) >= size and startswith(data, prefix) and endswith(data, suffix):
                    text = data[len(prefix):len(data) - len(suffix)]
                    # Without a quote, backslash or control character the text is its own JSON
                    # string: the data is the shape's chunk with this text. (A shape comes from a
                    # chunk with text: the first token's time is already set.)
                    if '"' not in text and "\\" not in text and text.isprintable():
                        if text:
                            texts.append(text)
                            shaped += 1
                        continue
                try:
                    obj = from_json(data)
                except ValueError:
                    obj = None
                if obj.__class__ is not dict or not self._seen_chunk or not self._add_plain(obj, data):
                    self.add_chunk(parse_chunk(data))
                prefix, suffix, size, texts = self._prefix, self._suffix, self._shape_len, self._shape_texts
        except StreamError:
            del self._raw_t[start + n + 1:], self._raw_data[start + n + 1:]
            raise
        finally:
            self._deltas += shaped

    def _add_plain(self, obj: dict, data: str) -> bool:
        """Accumulate a one-choice text chunk; False (nothing changed) for anything else.

        Checks what pydantic would check for the fields it reads, so bad data still fails
        (through the model path, with pydantic's words)."""
        choices = obj.get("choices")
        if (choices.__class__ is not list or len(choices) != 1 or obj.get("usage") is not None
                or "prompt_logprobs" in obj):
            return False
        if obj.get("error") is not None:
            raise StreamError(None, error_message({"error": obj["error"]}), data)
        ident, model = obj.get("id", ""), obj.get("model", "")
        if (
            ident.__class__ is not str
            or model.__class__ is not str
            or obj.get("object", "").__class__ is not str
            or obj.get("created", 0).__class__ is not int
        ):
            return False
        choice = choices[0]
        if choice.__class__ is not dict:
            return False
        index = choice.get("index", 0)
        finish = choice.get("finish_reason")
        if (
            index.__class__ is not int
            or choice.get("logprobs") is not None
            or (finish is not None and finish.__class__ is not str)
        ):
            return False
        delta = choice.get("delta", _NO_DELTA)
        if delta.__class__ is not dict:
            return False
        content = delta.get("content")
        if content is None or len(delta) != 1:  # more than one piece of text: look closer
            role = delta.get("role")
            if (
                (content is not None and content.__class__ is not str)
                or (role is not None and role.__class__ is not str)
                or delta.get("tool_calls") is not None
                or delta.get("refusal") is not None
                or delta.get("function_call") is not None
            ):
                return False
        elif content.__class__ is not str:
            return False
        fingerprint = obj.get("system_fingerprint")
        if fingerprint is not None and fingerprint.__class__ is not str:
            return False
        if fingerprint and fingerprint != self.run.system_fingerprint:
            self.run.system_fingerprint = fingerprint
            self._prefix = None  # a shape's chunk sets it too: only while it is unchanged is that a no-op
        if ident and self._need_id:
            self._need_id = False
            self.run.response_id, self.run.response_model = ident, model or None
        texts = self._texts.get(index)
        if texts is None:
            self._choice(index)
            texts = self._texts[index]
        if content:
            if self._ttft_pending:
                self._first_token()
            texts.append(content)
            self._deltas += 1
            if not finish and len(delta) == 1 and self._shapes_learned < _MAX_SHAPES:
                self._learn_shape(obj, data, content, texts)
        if finish:
            self._choices[index].finish_reason = finish
        return True

    def _learn_shape(self, obj: dict, data: str, content: str, texts: list[str]) -> None:
        """Remember this text chunk's data around its text, when any other text there gives the
        same chunk but for that text: the content is written as itself (no escapes), and a probe
        text put in its place parses to the same object with only the content changed."""
        if '"' in content or "\\" in content or not content.isprintable():
            return
        literal = '"' + content + '"'
        at = data.rfind(literal)
        if at < 0:
            return
        prefix, suffix = data[:at + 1], data[at + 1 + len(content):]
        probe = content + "~"
        try:
            same = from_json(prefix + probe + suffix)
            delta = same["choices"][0]["delta"]
        except (ValueError, LookupError, TypeError):
            return
        if delta.__class__ is not dict or delta.get("content") != probe:
            return
        delta["content"] = content
        if same != obj:
            return
        self._shapes_learned += 1
        self._prefix, self._suffix = prefix, suffix
        self._shape_len, self._shape_texts = len(prefix) + len(suffix), texts

    def add_chunk(self, chunk: ChatCompletionChunk) -> None:
        run = self.run
        self._seen_chunk = True
        if self._need_id and chunk.id:
            self._need_id = False
            run.response_id, run.response_model = chunk.id, chunk.model or None
        if chunk.system_fingerprint and chunk.system_fingerprint != run.system_fingerprint:
            run.system_fingerprint = chunk.system_fingerprint
            self._prefix = None  # as in _add_plain
        if chunk.usage is not None:
            run.usage = chunk.usage
        prompt = _prompt_logprobs(chunk)
        if prompt is not None:
            run.prompt_logprobs = prompt
        for choice_delta in chunk.choices:
            choice = self._choice(choice_delta.index)
            delta = choice_delta.delta
            if delta.content:
                self._first_token()
                self._texts[choice_delta.index].append(delta.content)
                self._deltas += 1
            if delta.refusal:
                self._refusals.setdefault(choice_delta.index, []).append(delta.refusal)
            tool_calls = list(delta.tool_calls or ())
            if delta.function_call is not None:  # the deprecated single function call
                tool_calls.append(ToolCallDelta(index=0, function=delta.function_call))
            if tool_calls:
                self._first_token()
                calls = self._tool_calls.setdefault(choice_delta.index, {})
                for call in tool_calls:
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
        run.prompt_logprobs = _prompt_logprobs(completion)
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

    @property
    def chunk_count(self) -> int:
        """Raw events recorded so far (run.chunks is filled in by finish())."""
        return len(self._raw_data) + len(self.run.chunks)

    def snapshot_text(self, index: int = 0) -> str:
        """The text so far, for live display while streaming."""
        return "".join(self._texts.get(index, ()))

    def text_pieces(self, index: int = 0) -> int:
        """How many pieces of text choice `index` has so far: a cheap way to see whether it grew."""
        return len(self._texts.get(index, ()))

    def text_since(self, start: int, index: int = 0) -> tuple[str, int]:
        """Choice `index`'s text from its piece `start` on, and how many pieces it has now (the
        next call's `start`): a live view sends what was appended since its last send, at a cost
        that does not grow with the answer (snapshot_text joins it all)."""
        texts = self._texts.get(index, ())
        count = len(texts)  # read once: the worker thread may append meanwhile
        return "".join(texts[start:count]), count

    def finish(self) -> Run:
        run = self.run
        run.total_s = self.elapsed()
        run.content_deltas = self._deltas
        if self._raw_data:
            t0 = self._t0
            run.chunks = run.chunks + list(map(ChunkRecord, [t - t0 for t in self._raw_t], self._raw_data))
            self._raw_t, self._raw_data = [], []
        for index, choice in self._choices.items():
            choice.text = "".join(self._texts[index])
            if index in self._refusals:
                choice.refusal = "".join(self._refusals[index])
            for _, slot in sorted(self._tool_calls.pop(index, {}).items()):  # pop: a second finish() adds none
                call = FunctionCall(name=slot["name"], arguments="".join(slot["arguments"]))
                choice.tool_calls.append(ToolCall(id=slot["id"], type=slot["type"], function=call))
        run.choices = [self._choices[i] for i in sorted(self._choices)]
        return run


# --- how a run ended, what it was asked (the lists and tables show these) -----------------

PROMPT_CHARS = 60  # the first words of a prompt, as a list shows them
STATUSES = ("ok", "failed", "partial", "stopped")


def _prompt_logprobs(obj: Any) -> list[dict[str, Any] | None] | None:
    """vLLM's prompt_logprobs of a reply or chunk as plain JSON (a typed field or an extra one)."""
    value = getattr(obj, "prompt_logprobs", None)
    if not isinstance(value, list):
        return None
    return [{str(k): (v.model_dump() if isinstance(v, BaseModel) else v) for k, v in entry.items()}
            if isinstance(entry, dict) else None for entry in value]


def status_word(*, failed: bool, stopped: bool, partial: bool) -> str:
    """One of STATUSES. A failure wins over a stop (a stream can break as it is stopped);
    "partial" is an answer cut off by something other than the user."""
    if failed:
        return "failed"
    if stopped:
        return "stopped"
    return "partial" if partial else "ok"


def run_status(run: Run) -> str:
    return status_word(failed=run.error is not None, stopped=run.cancelled, partial=run.partial)


def one_line(text: str, limit: int = PROMPT_CHARS) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis (not escaped)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def prompt_preview(run: Run) -> str:
    """The first words of the run's last user message ('' when it has none)."""
    users = [message for message in run.request.messages if message.role == "user"]
    return one_line(message_text(users[-1])) if users else ""

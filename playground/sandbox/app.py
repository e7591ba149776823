"""The HTTP face of the sandbox: SGP's routes (and OpenAI's) over one Engine.

Each request waits for its generation in a worker thread; the engine's scheduler runs up to
`parallel` requests' choices at once and calls back from its own thread. A stream's chunks
are serialised there and handed to the event loop through an asyncio queue; the loop writes
whatever has piled up in one send. When the response ends for any reason (done, client gone,
error) the request is cancelled, and the scheduler drops it before its next step.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import threading
import time
import uuid
from typing import AsyncIterator, Callable

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse

from playground.client.schema import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
    FunctionCall,
    FunctionCallDelta,
    ResponseMessage,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from playground.sandbox.model import MODEL_ID, MODEL_NAME, MODEL_VENDOR, Engine, Job, Outcome, Piece
from playground.sandbox.params import RequestError, build_job
from playground.sandbox.tool_calls import CallDelta, CallReader

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def create_app(engine: Engine, api_key: str | None = None) -> FastAPI:
    # No /docs: Swagger UI would load its scripts from a CDN, and the sandbox makes no outside calls.
    app = FastAPI(title="Playground sandbox", version="1", docs_url=None, redoc_url=None)
    app.state.engine = engine
    started = int(time.time())
    fingerprint = f"llama.cpp-{MODEL_NAME}"

    @app.exception_handler(RequestError)
    async def _request_error(_request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status_code)

    def check_key(request: Request) -> None:
        if not api_key:
            return
        given = request.headers.get("x-api-key")
        if given is None:
            auth = request.headers.get("authorization", "")
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if given is None or not hmac.compare_digest(given.encode(), api_key.encode()):
            what = "wrong" if given is not None else "missing"
            raise HTTPException(401, f"{what} API key: send the sandbox's key in the x-api-key header "
                                     "(or as Authorization: Bearer on /v1)")

    auth = [Depends(check_key)]

    @app.get("/healthz")
    async def healthz() -> dict:
        scheduler = engine.scheduler
        return {"status": "ok", "model": MODEL_ID, "weights": os.path.basename(engine.model_path),
                "n_ctx": engine.n_ctx, "n_ctx_total": engine.n_ctx_total,
                "parallel": engine.parallel, "threads": engine.n_threads, "busy": engine.busy,
                "running": scheduler.running, "queued": scheduler.queued, "steps": scheduler.steps,
                "tokens_generated": engine.tokens_generated,
                "prefix_cache": scheduler.prefix_cache,
                "prompt_tokens_evaluated": engine.prompt_tokens_evaluated,
                "prompt_tokens_reused": engine.prompt_tokens_reused}

    @app.get("/v5/chat/completions/models", dependencies=auth)
    async def sgp_models() -> dict:
        return {"object": "list", "items": [{
            "model_name": MODEL_NAME,
            "model_vendor": MODEL_VENDOR,
            "model_type": "chat_completion",
            "model_availability": "available",
        }]}

    @app.get("/v1/models", dependencies=auth)
    async def openai_models() -> dict:
        listed = {"id": MODEL_ID, "object": "model", "created": started, "owned_by": MODEL_VENDOR}
        return {"object": "list", "data": [listed]}

    async def chat(body: ChatRequest, request: Request, done_marker: bool):
        job = build_job(body, engine)
        meta = _Meta(id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=body.model,
                     fingerprint=fingerprint)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            stream = _Stream(engine, job, meta, include_usage, done_marker)
            return _StreamResponse(stream)
        return await _complete(engine, job, meta, request)

    @app.post("/v4/beta/chat/completions", dependencies=auth)
    async def sgp_v4(body: ChatRequest, request: Request):
        return await chat(body, request, done_marker=False)

    @app.post("/v5/chat/completions", dependencies=auth)
    async def sgp_v5(body: ChatRequest, request: Request):
        return await chat(body, request, done_marker=False)

    @app.post("/v1/chat/completions", dependencies=auth)
    async def openai_v1(body: ChatRequest, request: Request):
        return await chat(body, request, done_marker=True)

    return app


class _Meta:
    __slots__ = ("id", "created", "model", "fingerprint")

    def __init__(self, id: str, created: int, model: str, fingerprint: str) -> None:
        self.id, self.created, self.model, self.fingerprint = id, created, model, fingerprint


def _usage(outcome: Outcome) -> Usage:
    """As OpenAI counts: prompt_tokens is the whole prompt; its details say how many of them were
    read from cells an earlier request computed (the prefix cache)."""
    return Usage(prompt_tokens=outcome.prompt_tokens, completion_tokens=outcome.completion_tokens,
                 total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
                 prompt_tokens_details={"cached_tokens": outcome.cached_tokens})


def _answer(job: Job, text: str, finish: str | None) -> Choice:
    """A finished choice's message: its tool calls when the answer is one (content null, as
    OpenAI's), else its text."""
    if job.tool_calls and text.startswith("{"):  # the grammar lets no text answer begin so
        reader = CallReader()
        reader.feed(text)
        calls = [ToolCall(id=c.id, type="function", function=FunctionCall(name=c.name, arguments=c.arguments))
                 for c in reader.calls]
        return Choice(message=ResponseMessage(role="assistant", content=None, tool_calls=calls),
                      finish_reason="tool_calls" if finish in (None, "stop") else finish)
    return Choice(message=ResponseMessage(role="assistant", content=text), finish_reason=finish or "stop")


def _call_delta(delta: CallDelta) -> ToolCallDelta:
    if delta.id is not None:  # the call's first delta: OpenAI's carries id, type and name, arguments ""
        return ToolCallDelta(index=delta.index, id=delta.id, type="function",
                             function=FunctionCallDelta(name=delta.name, arguments=delta.arguments))
    return ToolCallDelta(index=delta.index, function=FunctionCallDelta(arguments=delta.arguments))


def _run_in_thread(target: Callable[[], None], name: str) -> None:
    threading.Thread(target=target, name=name, daemon=True).start()


# --- plain completions --------------------------------------------------------------------


async def _complete(engine: Engine, job: Job, meta: _Meta, request: Request) -> JSONResponse:
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    cancel = threading.Event()
    texts = [[] for _ in range(job.n)]
    logprobs: list[list[TokenLogprob]] = [[] for _ in range(job.n)]
    finish: list[str | None] = [None] * job.n

    def on_piece(piece: Piece) -> None:
        if piece.text:
            texts[piece.index].append(piece.text)
        if piece.logprobs:
            logprobs[piece.index].extend(piece.logprobs)
        if piece.finish_reason:
            finish[piece.index] = piece.finish_reason

    def work() -> None:
        try:
            result: object = engine.generate(job, on_piece, cancel)
        except BaseException as error:  # handed to the request to answer 500
            result = error
        if not done.done():
            loop.call_soon_threadsafe(_settle, done, result)

    _run_in_thread(work, "sandbox-generate")
    watcher = asyncio.ensure_future(_client_gone(request))
    try:
        await asyncio.wait([done, watcher], return_when=asyncio.FIRST_COMPLETED)
        if not done.done():  # the client went away first
            cancel.set()  # the scheduler drops the request before its next step and frees its slots
            return JSONResponse({"detail": "client disconnected"}, status_code=499)
    finally:
        cancel.set()
        watcher.cancel()
    outcome = done.result()
    if isinstance(outcome, BaseException):
        raise outcome
    choices = [_answer(job, "".join(texts[i]), finish[i]) for i in range(job.n)]
    for i, choice in enumerate(choices):
        choice.index = i
        choice.logprobs = ChoiceLogprobs(content=logprobs[i]) if job.logprobs else None
    completion = ChatCompletion(id=meta.id, created=meta.created, model=meta.model,
                                system_fingerprint=meta.fingerprint, choices=choices, usage=_usage(outcome),
                                prompt_logprobs=outcome.prompt_logprobs)
    body = completion.model_dump(mode="json", exclude_none=True)
    for choice in body["choices"]:
        choice["message"].setdefault("content", None)  # a tool call's content is null, not absent
    return JSONResponse(body)


async def _client_gone(request: Request) -> None:
    """Returns when the client disconnects (the body has been read: nothing else comes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _settle(future: asyncio.Future, result: object) -> None:
    if not future.done():
        future.set_result(result)


# --- streams ------------------------------------------------------------------------------


class _Stream:
    """A generation whose chunks the worker thread serialises and queues for the loop."""

    def __init__(self, engine: Engine, job: Job, meta: _Meta, include_usage: bool, done_marker: bool) -> None:
        self.engine = engine
        self.job = job
        self.meta = meta
        self.include_usage = include_usage
        self.done_marker = done_marker
        self.cancel = threading.Event()
        self._started: set[int] = set()
        self._readers: dict[int, CallReader] = {}  # choices whose answer is tool calls
        self._texts: set[int] = set()  # choices whose answer is text
        self._queue: asyncio.Queue[bytes | None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def events(self) -> AsyncIterator[bytes]:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        _run_in_thread(self._work, "sandbox-stream")
        queue = self._queue
        try:
            while True:
                item = await queue.get()
                parts = [item]
                while not queue.empty():
                    parts.append(queue.get_nowait())
                end = parts[-1] is None
                payload = b"".join(p for p in parts if p is not None)
                if payload:
                    yield payload
                if end:
                    return
        finally:
            self.cancel.set()

    def _push(self, data: bytes | None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, data)
        except RuntimeError:  # the loop has closed: the server is shutting down
            self.cancel.set()

    def _chunk(self, choices: list[ChunkChoice], usage: Usage | None = None,
               prompt_logprobs: list | None = None) -> bytes:
        chunk = ChatCompletionChunk(id=self.meta.id, created=self.meta.created, model=self.meta.model,
                                    system_fingerprint=self.meta.fingerprint, choices=choices, usage=usage,
                                    prompt_logprobs=prompt_logprobs)
        return b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"

    def _on_piece(self, piece: Piece) -> None:
        if self.cancel.is_set():
            return
        index, text = piece.index, piece.text
        if self.job.tool_calls and text and index not in self._readers and index not in self._texts:
            if text.startswith("{"):  # the first character tells a call from text (see grammars.py)
                self._readers[index] = CallReader()
            else:
                self._texts.add(index)
        reader = self._readers.get(index)
        if reader is not None:
            delta = Delta(tool_calls=[_call_delta(d) for d in reader.feed(text)] or None)
        else:
            delta = Delta(content=text if text or piece.finish_reason is None else None)
        if index not in self._started:
            self._started.add(index)
            delta.role = "assistant"
            if delta.content is None and reader is None:
                delta.content = ""
        finish = piece.finish_reason
        if reader is not None and finish == "stop":
            finish = "tool_calls"
        choice = ChunkChoice(index=index, delta=delta, finish_reason=finish,
                             logprobs=ChoiceLogprobs(content=piece.logprobs) if piece.logprobs else None)
        self._push(self._chunk([choice]))

    def _work(self) -> None:
        try:
            outcome = self.engine.generate(self.job, self._on_piece, self.cancel)
            wanted = self.include_usage or outcome.prompt_logprobs is not None
            if wanted and not outcome.cancelled:  # the last chunk: usage, and the prompt's logprobs (as vLLM's)
                self._push(self._chunk([], _usage(outcome) if self.include_usage else None, outcome.prompt_logprobs))
            if self.done_marker and not outcome.cancelled:
                self._push(b"data: [DONE]\n\n")
        except Exception as error:  # the stream has begun: report in-band, as SSE servers do
            body = {"error": {"message": f"generation failed: {error}", "type": "server_error"}}
            self._push(b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n")
        finally:
            self._push(None)


class _StreamResponse(StreamingResponse):
    """SSE response that stops its generation whenever the response ends, however it ends."""

    def __init__(self, stream: _Stream) -> None:
        super().__init__(stream.events(), media_type="text/event-stream", headers=SSE_HEADERS)
        self._stream = stream

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._stream.cancel.set()

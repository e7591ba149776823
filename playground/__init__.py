"""Playground: build, stream and compare chat-completion requests (SGP and OpenAI-compatible)."""

from playground.client import ChatClient, ChatStream
from playground.endpoint import Endpoint
from playground.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    ServerError,
    StreamError,
)
from playground.runs import Run, RunError, RunRecorder
from playground.schema import ChatCompletion, ChatCompletionChunk, ChatRequest, Usage

__all__ = [
    "APIConnectionError", "APIError", "APITimeoutError", "AuthenticationError", "BadRequestError",
    "ChatClient", "ChatCompletion", "ChatCompletionChunk", "ChatRequest", "ChatStream", "ConflictError",
    "Endpoint", "NotFoundError", "RateLimitError", "Run", "RunError", "RunRecorder", "ServerError",
    "StreamError", "Usage",
]

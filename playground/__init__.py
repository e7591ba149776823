"""Playground: build, stream and compare chat-completion requests (SGP and OpenAI-compatible)."""

from playground.client.client import ChatClient, ChatStream
from playground.client.endpoint import Endpoint
from playground.client.errors import (
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
from playground.client.run import Run, RunError, RunRecorder
from playground.client.schema import ChatCompletion, ChatCompletionChunk, ChatRequest, Usage

__all__ = [
    "APIConnectionError", "APIError", "APITimeoutError", "AuthenticationError", "BadRequestError",
    "ChatClient", "ChatCompletion", "ChatCompletionChunk", "ChatRequest", "ChatStream", "ConflictError",
    "Endpoint", "NotFoundError", "RateLimitError", "Run", "RunError", "RunRecorder", "ServerError",
    "StreamError", "Usage",
]

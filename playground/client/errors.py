"""The APIError family, and reading a server's own words out of an error body."""

from __future__ import annotations

import json
from typing import Any

from playground.secrets_check import redact_url_secrets

MAX_RAW_BODY = 2000


def shorten(text: str, limit: int = 200) -> str:
    """The start of a long body, for an error message."""
    return text if len(text) <= limit else text[:limit] + "..."


class APIError(Exception):
    """A request that did not give a completion. `message` is the server's own words, with any
    secret a quoted URL carried (?api_key=...) redacted: messages are shown, stored and logged."""

    def __init__(self, status_code: int | None, message: str, body: Any = None) -> None:
        message = redact_url_secrets(message)
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.body = body

    @property
    def kind(self) -> str:
        return type(self).__name__

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}" if self.status_code else self.message


class BadRequestError(APIError):
    """400 and 422: the request itself is wrong."""


class AuthenticationError(APIError):
    """401 and 403: a missing, wrong or unauthorised key."""


class NotFoundError(APIError):
    """404: wrong path, or a model the server does not have."""


class ConflictError(APIError):
    """409."""


class RateLimitError(APIError):
    """429."""


class ServerError(APIError):
    """5xx."""


class APIConnectionError(APIError):
    """No HTTP answer at all: refused, reset, DNS, TLS."""

    def __init__(self, message: str, body: Any = None) -> None:
        super().__init__(None, message, body)


class APITimeoutError(APIConnectionError):
    """The server took longer than the endpoint's timeout."""


class StreamError(APIError):
    """A stream that broke after it started: an error event, a malformed line, a cut."""


def error_for_status(status_code: int, body_bytes: bytes, reason: str = "") -> APIError:
    body = _parse(body_bytes)
    message = error_message(body) or reason or f"HTTP {status_code}"
    if status_code in (400, 422):
        cls = BadRequestError
    elif status_code in (401, 403):
        cls = AuthenticationError
    elif status_code == 404:
        cls = NotFoundError
    elif status_code == 409:
        cls = ConflictError
    elif status_code == 429:
        cls = RateLimitError
    elif status_code >= 500:
        cls = ServerError
    else:
        cls = APIError
    return cls(status_code, message, body)


def _parse(body_bytes: bytes) -> Any:
    text = body_bytes.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def error_message(body: Any) -> str:
    """The words in `{"detail": ...}` (FastAPI, SGP) or `{"error": {...}}` (OpenAI), else the raw body."""
    if isinstance(body, dict):
        if "detail" in body:
            return _detail_message(body["detail"])
        if "error" in body:
            error = body["error"]
            if isinstance(error, dict):
                message = error.get("message") or json.dumps(error)
                code = error.get("code") or error.get("type")
                return f"{message} ({code})" if code and str(code) not in message else message
            return str(error)
        if isinstance(body.get("message"), str):
            return body["message"]
    if isinstance(body, str):
        return body.strip()[:MAX_RAW_BODY]
    return json.dumps(body)[:MAX_RAW_BODY]


def _detail_message(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        lines = []
        for item in detail:
            if isinstance(item, dict):
                loc = [str(part) for part in item.get("loc", []) if part != "body"]
                where = ".".join(loc)
                msg = item.get("msg", json.dumps(item))
                lines.append(f"{where}: {msg}" if where else msg)
            else:
                lines.append(str(item))
        return "; ".join(lines)
    return json.dumps(detail)

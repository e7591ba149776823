"""Where requests go and how they authenticate. The key never appears in repr or logs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal, Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

from playground.client.schema import ChatRequest
from playground.client.token_limit import TOKEN_LIMIT_FIELDS, TokenLimitField, default_field, with_token_limit_field
from playground.secrets_check import redact_url_secrets

SGP_DEFAULT_BASE_URL = "https://api.egp.scale.com"
SGP_CHAT_PATH = "/v4/beta/chat/completions"
SGP_MODELS_PATH = "/v5/chat/completions/models"
LOCAL_MODEL = "local/smollm2-135m-instruct"

AuthStyle = Literal["x-api-key", "bearer"]
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=10.0)


@dataclass(frozen=True)
class Endpoint:
    name: str
    base_url: str
    chat_path: str = SGP_CHAT_PATH
    auth: AuthStyle = "x-api-key"
    api_key: str | None = field(default=None, repr=False)
    account_id: str | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT, repr=False)
    models_path: str | None = None
    kind: str = "custom"  # sgp | openai | local | custom: a hint for presets and the UI
    # The wire field that carries the token limit (token_limit.py): None picks the usual one.
    token_limit_field: TokenLimitField | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.models_path is None:
            object.__setattr__(self, "models_path", _default_models_path(self.chat_path))
        if self.token_limit_field is None:
            object.__setattr__(self, "token_limit_field", default_field(self.kind, self.base_url))
        elif self.token_limit_field not in TOKEN_LIMIT_FIELDS:
            raise ValueError(f"token_limit_field must be one of {', '.join(TOKEN_LIMIT_FIELDS)}, "
                             f"got {self.token_limit_field!r}")

    @classmethod
    def sgp(cls, api_key: str | None = None, account_id: str | None = None, base_url: str | None = None,
            environ: Mapping[str, str] | None = None) -> "Endpoint":
        """SGP; what is not given comes from SGP_API_KEY, SGP_ACCOUNT_ID, SGP_BASE_URL in `environ`
        (default os.environ)."""
        env = os.environ if environ is None else environ
        return cls(
            name="SGP",
            base_url=base_url or env.get("SGP_BASE_URL") or SGP_DEFAULT_BASE_URL,
            chat_path=SGP_CHAT_PATH,
            auth="x-api-key",
            api_key=api_key or env.get("SGP_API_KEY"),
            account_id=account_id or env.get("SGP_ACCOUNT_ID"),
            models_path=SGP_MODELS_PATH,
            kind="sgp",
        )

    @classmethod
    def openai_compatible(
        cls, base_url: str, api_key: str | None = None, name: str = "OpenAI-compatible",
        token_limit_field: TokenLimitField | None = None,
    ) -> "Endpoint":
        """Like the OpenAI SDK: base_url ends in /v1, requests go to {base_url}/chat/completions."""
        return cls(name=name, base_url=base_url, chat_path="/chat/completions", auth="bearer",
                   api_key=api_key, models_path="/models", kind="openai", token_limit_field=token_limit_field)

    @classmethod
    def local(cls, port: int, host: str = "127.0.0.1", api_key: str | None = None) -> "Endpoint":
        """The bundled sandbox, spoken to exactly as SGP is."""
        return cls(name="Local sandbox", base_url=f"http://{host}:{port}", chat_path=SGP_CHAT_PATH,
                   auth="x-api-key", api_key=api_key, models_path=SGP_MODELS_PATH, kind="local")

    def __repr__(self) -> str:  # no key: neither the field nor one in the URL's query string
        return (f"Endpoint(name={self.name!r}, base_url={self.safe_base_url!r}, chat_path={self.chat_path!r}, "
                f"auth={self.auth!r}, models_path={self.models_path!r}, kind={self.kind!r}, "
                f"token_limit_field={self.token_limit_field!r})")

    @property
    def safe_base_url(self) -> str:
        """The base URL to show or log: a key in its query string (?api_key=...) redacted."""
        return redact_url_secrets(self.base_url)

    @property
    def chat_url(self) -> str:
        return _join(self.base_url, self.chat_path)

    @property
    def models_url(self) -> str:
        return _join(self.base_url, self.models_path or "/models")

    def auth_headers(self) -> dict[str, str]:
        headers = {}
        if self.api_key:
            if self.auth == "bearer":
                headers["Authorization"] = f"Bearer {self.api_key}"
            else:
                headers["x-api-key"] = self.api_key
        if self.account_id:
            headers["x-selected-account-id"] = self.account_id
        return headers

    def all_headers(self) -> dict[str, str]:
        return {**self.headers, **self.auth_headers()}

    def prepare(self, request: ChatRequest) -> ChatRequest:
        """The request as this endpoint is sent it (what the client sends and records, what Get
        code shows): see with_token_limit_field."""
        return with_token_limit_field(request, self.token_limit_field or "max_completion_tokens")


def _join(base_url: str, path: str) -> str:
    """base_url + path, with a query the base URL carries (?api-version=..., ?api_key=...) kept
    after the path, where the server looks for it."""
    parts = urlsplit(base_url)
    if not parts.query:
        return base_url + path
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + path))


def _default_models_path(chat_path: str) -> str:
    if chat_path.startswith(("/v4/", "/v5/")):
        return SGP_MODELS_PATH
    return chat_path.rsplit("/chat/completions", 1)[0] + "/models"

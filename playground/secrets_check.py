"""Find secrets (API keys, bearer tokens, passwords) anywhere in a JSON-like structure.

Presets, share links and imported files must never carry a key. Nothing is stripped
silently: `find_secrets` names every field that looks like a secret and the caller refuses.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# Field names (compared lower-case, without "-" and "_") that hold a credential.
_SECRET_NAMES = {
    "apikey", "xapikey", "authorization", "proxyauthorization", "bearer", "bearertoken",
    "accesstoken", "authtoken", "refreshtoken", "idtoken", "sessiontoken", "token", "secret",
    "clientsecret", "secretkey", "password", "passwd", "privatekey", "cookie", "setcookie",
    "xselectedaccountid", "accountid", "xauthtoken", "xaccesstoken", "awssecretaccesskey",
}
_SECRET_PARTS = ("apikey", "secret", "password", "authorization", "accesstoken", "authtoken", "bearer", "credential",
                 "privatekey")

# Values that look like a credential wherever they appear (message text included).
_SECRET_VALUES = [
    (re.compile(r"\bBearer\s+[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE), "a bearer token"),
    (re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"), "an API key (sk-...)"),
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|github_pat)_[A-Za-z0-9_]{20,}"), "a GitHub token"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"\bxox[abpr]-[A-Za-z0-9\-]{10,}"), "a Slack token"),
    (re.compile(r"\bx-api-key\s*[:=]\s*\S{8,}", re.IGNORECASE), "an x-api-key header"),
]


class SecretFoundError(ValueError):
    """A structure carries something that looks like a credential."""

    def __init__(self, findings: list[str], what: str = "this preset"):
        self.findings = findings
        listed = "; ".join(findings)
        super().__init__(
            f"Refused: {what} carries a secret ({listed}). Remove it: keys belong in the "
            f"endpoint settings (secrets.toml or the environment), never in {what}."
        )


# Parts of an HTTP header's name that make it secret. Broader than for fields (a header named
# "X-Session" or "X-Signature" carries a credential; a request field named "max_tokens" does not).
_SECRET_HEADER_PARTS = re.compile(r"auth|key|token|secret|passw|cookie|credential|signature|session", re.IGNORECASE)


def _is_secret_name(key: str) -> bool:
    norm = re.sub(r"[^a-z0-9]", "", key.lower())
    return norm in _SECRET_NAMES or any(part in norm for part in _SECRET_PARTS)


def is_secret_header(name: str) -> bool:
    """Whether an HTTP header of this name carries a credential (generated code leaves it out)."""
    return _is_secret_name(name) or bool(_SECRET_HEADER_PARTS.search(name))


def find_secrets(value: Any, path: str = "", any_value: bool = False) -> list[str]:
    """Every place in `value` that looks like a secret, as 'field path: why' strings.

    A secret-named field counts when it holds a string; with `any_value`, whatever it holds
    (for places that never carry a JSON schema, whose properties may be named "password")."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            # A secret-named field holding a value (not a JSON-schema object describing one).
            if _is_secret_name(str(key)) and (any_value or isinstance(item, str)):
                if any_value or item.strip():
                    found.append(f"field '{where}'")
                    continue
            found.extend(find_secrets(item, where, any_value))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found.extend(find_secrets(item, f"{path}[{i}]", any_value))
    elif isinstance(value, str):
        for pattern, label in _SECRET_VALUES:
            if pattern.search(value):
                found.append(f"field '{path or '(value)'}' holds {label}")
                break
    return found


# A URL's credentials: "user:password@" and query parameters with a secret's name (?api_key=...).
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s?#]+@")
_URL_QUERY_PARAM = re.compile(r"(?<=[?&])([^=&#\s]+)=([^&#\s)\]'\"<>,;]*)")  # ends at what closes a quote
_URL_SECRET_PARAMS = {"key", "sig", "signature", "code"}  # too generic for preset fields, not for a query
REDACTED = "***"


def redact_url_secrets(text: str) -> str:
    """`text` with the secrets of every URL in it replaced by ***: some servers take the key in
    the query string (?api_key=...), and an error message or a log line quotes the URL."""
    if "://" not in text and "=" not in text:
        return text
    text = _URL_USERINFO.sub(REDACTED + "@", text)
    return _URL_QUERY_PARAM.sub(
        lambda m: f"{m.group(1)}={REDACTED}" if _is_secret_name(m.group(1)) or m.group(1).lower() in _URL_SECRET_PARAMS
        else m.group(0), text)


class RedactURLSecrets(logging.Filter):
    """A logging filter that redacts URL secrets from a record's formatted message (our client's
    log lines and httpx's "HTTP Request: POST <url>" both quote the URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_url_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def check_no_secrets(value: Any, path: str = "", what: str = "this preset") -> None:
    """Raise SecretFoundError naming each secret-looking field of `value`."""
    findings = find_secrets(value, path)
    if findings:
        raise SecretFoundError(findings, what)

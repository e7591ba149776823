"""Code that sends the exact request: curl, Python with httpx, Python with the openai SDK.

The body is the request as the endpoint is sent it (`endpoint.prepare(request).to_wire()`: its
token limit in the endpoint's token_limit_field, as ChatClient sends it), otherwise unchanged.
The key is read from an environment variable
($SGP_API_KEY for x-api-key endpoints, $OPENAI_API_KEY for bearer ones; the account id from
$SGP_ACCOUNT_ID), never written out. Extra headers of the endpoint are included unless their
name looks secret or their value contains the key; those are left out with a comment saying so.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from playground.client.endpoint import Endpoint
from playground.client.schema import ChatRequest
from playground.secrets_check import check_no_secrets, is_secret_header, redact_url_secrets

ACCOUNT_ENV = "SGP_ACCOUNT_ID"
_CHAT_SUFFIX = "/chat/completions"

# What openai-python's chat.completions.create() takes as keyword arguments (the rest goes
# in extra_body). tests/test_codegen.py checks this against the installed SDK.
OPENAI_SDK_FIELDS = frozenset({
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias",
    "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities", "n",
    "parallel_tool_calls", "prediction", "presence_penalty", "reasoning_effort", "response_format",
    "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice",
    "tools", "top_logprobs", "top_p", "user",
})


@dataclass(frozen=True)
class _Auth:
    key_env: str | None  # env var holding the key; None when the endpoint sends none
    key_header: str | None  # "x-api-key" or "Authorization"
    account_env: str | None
    headers: dict[str, str]  # extra headers safe to print
    omitted: list[str]  # extra headers left out
    url: str  # the chat URL, a key in its query string replaced by ***

    def comments(self) -> list[str]:
        """What the reader must add by hand: secret headers, a secret in the URL."""
        lines = [f"# header {name} left out (it looks secret): add it yourself" for name in self.omitted]
        if "***" in self.url:
            lines.append("# the endpoint's URL carries a secret in its query string: put yours where *** is")
        return lines


def key_env_for(endpoint: Endpoint) -> str:
    return "OPENAI_API_KEY" if endpoint.auth == "bearer" else "SGP_API_KEY"


def _auth(endpoint: Endpoint) -> _Auth:
    sends_key = bool(endpoint.api_key) or endpoint.kind in ("sgp", "openai")
    key_env = key_env_for(endpoint) if sends_key else None
    key_header = ("Authorization" if endpoint.auth == "bearer" else "x-api-key") if sends_key else None
    auth_names = {"authorization", "x-api-key", "x-selected-account-id", "content-type"}
    headers, omitted = {}, []
    for name, value in endpoint.headers.items():
        if name.lower() in auth_names:
            continue
        if is_secret_header(name) or (endpoint.api_key and endpoint.api_key in value):
            omitted.append(name)
        else:
            headers[name] = value
    return _Auth(key_env, key_header, ACCOUNT_ENV if endpoint.account_id else None, headers, omitted,
                 redact_url_secrets(endpoint.chat_url))


def _body(endpoint: Endpoint, request: ChatRequest) -> dict[str, Any]:
    """The body ChatClient sends to `endpoint`, refused (SecretFoundError) when a key was typed
    into it: code gets copied into chats and repositories, so no snippet may carry one."""
    body = endpoint.prepare(request).to_wire()
    check_no_secrets(body, what="this request")
    return body


def _pretty_json(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False)


# --- curl -----------------------------------------------------------------------------


def curl_snippet(endpoint: Endpoint, request: ChatRequest) -> str:
    """A bash command; the body goes in single quotes, byte for byte."""
    auth = _auth(endpoint)
    lines = auth.comments()
    flags = ["--no-buffer"] if request.stream else []
    lines.append(f"curl -sS {' '.join(flags + [shlex.quote(auth.url)])} \\")
    lines.append("  -H 'Content-Type: application/json' \\")
    if auth.key_header == "Authorization":
        lines.append(f'  -H "Authorization: Bearer ${auth.key_env}" \\')
    elif auth.key_header:
        lines.append(f'  -H "x-api-key: ${auth.key_env}" \\')
    if auth.account_env:
        lines.append(f'  -H "x-selected-account-id: ${auth.account_env}" \\')
    for name, value in auth.headers.items():
        lines.append(f"  -H {shlex.quote(f'{name}: {value}')} \\")
    lines.append(f"  --data-binary {shlex.quote(_pretty_json(_body(endpoint, request)))}")
    return "\n".join(lines) + "\n"


# --- Python ---------------------------------------------------------------------------


def _py(value: Any, level: int = 0) -> str:
    """A Python literal for a JSON value, indented like pretty JSON."""
    pad, inner = "    " * level, "    " * (level + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{_py(str(k))}: {_py(v, level + 1)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        items = [f"{inner}{_py(v, level + 1)}," for v in value]
        return "[\n" + "\n".join(items) + f"\n{pad}]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if _json_string_is_python(value) else repr(value)
    return repr(value)  # int, float, bool, None


def _json_string_is_python(text: str) -> bool:
    # JSON's double-quoted form is also a Python literal unless it holds surrogate escapes.
    return not any("\ud800" <= ch <= "\udfff" for ch in text)


def _header_lines(auth: _Auth, indent: str, for_sdk: bool = False) -> list[str]:
    """Header dict entries. for_sdk: only what openai's default_headers needs (the SDK sets
    Content-Type itself and sends its api_key as the Bearer header)."""
    lines = [] if for_sdk else [f'{indent}"Content-Type": "application/json",']
    if auth.key_header == "Authorization":
        if not for_sdk:
            lines.append(f'{indent}"Authorization": "Bearer " + os.environ["{auth.key_env}"],')
    elif auth.key_header:
        lines.append(f'{indent}"x-api-key": os.environ["{auth.key_env}"],')
    if auth.account_env:
        lines.append(f'{indent}"x-selected-account-id": os.environ["{auth.account_env}"],')
    lines += [f"{indent}{_py(name)}: {_py(value)}," for name, value in auth.headers.items()]
    return lines


def httpx_snippet(endpoint: Endpoint, request: ChatRequest) -> str:
    auth = _auth(endpoint)
    out = ["import json" if request.stream else None, "import os", "", "import httpx", ""]
    out = [line for line in out if line is not None]
    out += auth.comments()
    out += [f"url = {_py(auth.url)}", "headers = {", *_header_lines(auth, "    "), "}"]
    out += [f"body = {_py(_body(endpoint, request))}", ""]
    if request.stream:
        out += [
            "with httpx.Client(timeout=120.0) as client:",
            '    with client.stream("POST", url, headers=headers, json=body) as response:',
            "        response.raise_for_status()",
            "        for line in response.iter_lines():",
            '            if not line.startswith("data:") or line.strip() == "data: [DONE]":',
            "                continue",
            '            chunk = json.loads(line[len("data:"):])',
            '            for choice in chunk.get("choices") or []:',
            '                print((choice.get("delta") or {}).get("content") or "", end="", flush=True)',
            "print()",
        ]
    else:
        out += [
            "with httpx.Client(timeout=120.0) as client:",
            "    response = client.post(url, headers=headers, json=body)",
            "    response.raise_for_status()",
            "    completion = response.json()",
            'print(completion["choices"][0]["message"]["content"])',
        ]
    return "\n".join(out) + "\n"


def openai_snippet(endpoint: Endpoint, request: ChatRequest) -> str:
    """The openai SDK pointed at the endpoint: base_url is the chat URL without
    /chat/completions; x-api-key endpoints get their key in default_headers (the SDK insists on
    an api_key, so it gets the same key); fields the SDK does not know go in extra_body."""
    auth = _auth(endpoint)
    url = auth.url
    base_url = url[: -len(_CHAT_SUFFIX)] if url.endswith(_CHAT_SUFFIX) else url
    body = _body(endpoint, request)
    known = {k: v for k, v in body.items() if k in OPENAI_SDK_FIELDS}
    extra = {k: v for k, v in body.items() if k not in OPENAI_SDK_FIELDS}
    default_headers = _header_lines(auth, "        ", for_sdk=True)

    out = ["import os", "", "from openai import OpenAI", ""]
    if not url.endswith(_CHAT_SUFFIX):
        out.append(f"# The SDK posts to base_url + {_CHAT_SUFFIX!r}; this endpoint's path is {endpoint.chat_path!r}.")
    out += auth.comments()
    out += ["client = OpenAI(", f"    base_url={_py(base_url)},"]
    if auth.key_env:
        out.append(f'    api_key=os.environ["{auth.key_env}"],')
    else:
        out.append('    api_key="unused",  # this endpoint takes no key; the SDK wants one anyway')
    if default_headers:
        out += ["    default_headers={", *default_headers, "    },"]
    out += [")", ""]
    call = ["    " + f"{name}={_py(value, 1)}," for name, value in known.items()]
    if extra:
        call.append(f"    extra_body={_py(extra, 1)},")
    if request.stream:
        out += ["stream = client.chat.completions.create(", *call, ")", "for chunk in stream:",
                "    for choice in chunk.choices:",
                '        print(choice.delta.content or "", end="", flush=True)', "print()"]
    else:
        out += ["completion = client.chat.completions.create(", *call, ")",
                "print(completion.choices[0].message.content)"]
    return "\n".join(out) + "\n"

"""Where data lives, which endpoints are configured, and what tokens cost.

Pure functions of what they are given: a secrets mapping (st.secrets or a plain dict; nested
tables are mappings; a secrets object that raises because no file exists counts as empty) and
an environment mapping. Nothing here imports streamlit.

Secrets file shape (.streamlit/secrets.toml):

    SGP_API_KEY = "..."            # optional; the environment is used when absent
    [endpoints.vllm]
    base_url = "http://gpu-box:8000/v1"
    auth = "bearer"                 # or "x-api-key" (default)
    api_key = "..."                 # or api_key_env = "VLLM_KEY" to read it from the environment
    chat_path = "/chat/completions" # default: /chat/completions for bearer, SGP's path otherwise
    account_id = "..."              # optional, sent as x-selected-account-id
    token_limit_field = "max_tokens" # or "max_completion_tokens"; default: max_completion_tokens
                                    # for SGP-style (x-api-key) servers and api.openai.com, else max_tokens
    [prices]
    "openai/gpt-4o" = [2.5, 10.0]   # dollars per million input, output tokens
    "openai/gpt-4o-mini" = { input = 0.15, output = 0.6 }
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import platformdirs

from playground.client.endpoint import SGP_CHAT_PATH, Endpoint
from playground.client.token_limit import TOKEN_LIMIT_FIELDS
from playground.secrets_check import redact_url_secrets

log = logging.getLogger(__name__)

APP_NAME = "playground"
SGP_NAME = "SGP"
LOCAL_NAME = "Local sandbox"
LOG_LEVEL_ENV = "PLAYGROUND_LOG_LEVEL"
LOGGED = ("playground", "httpx")  # our client's retries and httpx's line per request
Prices = dict[str, tuple[float, float]]


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$PLAYGROUND_DATA_DIR, else the user data dir ("playground"); created when missing."""
    environ = os.environ if environ is None else environ
    configured = environ.get("PLAYGROUND_DATA_DIR")
    path = Path(configured).expanduser() if configured else platformdirs.user_data_path(APP_NAME)
    path.mkdir(parents=True, exist_ok=True)
    return path


def configure_logging(environ: Mapping[str, str] | None = None) -> None:
    """$PLAYGROUND_LOG_LEVEL (e.g. INFO) sends the app's and httpx's log lines to stderr, each
    request's URL with any key in it redacted (client.py's filter). Unset: Python's default,
    warnings only. Safe to call on every page run: the handler is added once."""
    environ = os.environ if environ is None else environ
    level = environ.get(LOG_LEVEL_ENV, "").strip().upper()
    if not level or not isinstance(logging.getLevelName(level), int):
        return
    for name in LOGGED:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not any(getattr(handler, "_playground", False) for handler in logger.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            handler._playground = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
            logger.propagate = False


def runs_db_path(environ: Mapping[str, str] | None = None) -> Path:
    return data_dir(environ) / "runs.sqlite3"


DATABASE_URL_ENV = "PLAYGROUND_DATABASE_URL"


def database_url(environ: Mapping[str, str] | None = None) -> str | None:
    """$PLAYGROUND_DATABASE_URL (postgresql://user:password@host:5432/db for a team), else None."""
    environ = os.environ if environ is None else environ
    return environ.get(DATABASE_URL_ENV, "").strip() or None


def database_target(environ: Mapping[str, str] | None = None) -> str | Path:
    """Where runs, experiments (and, with a URL, presets) are stored: the URL when one is
    configured, else the SQLite file in the data folder."""
    return database_url(environ) or runs_db_path(environ)


def _get(mapping: Any, key: str) -> Any:
    """mapping[key] or None; tolerant of st.secrets raising when there is no secrets file."""
    try:
        if mapping is None or key not in mapping:
            return None
        return mapping[key]
    except Exception:  # noqa: BLE001 - StreamlitSecretNotFoundError, FileNotFoundError, ...
        return None


def _items(mapping: Any) -> list[tuple[str, Any]]:
    try:
        return list(mapping.items()) if isinstance(mapping, Mapping) else []
    except Exception:  # noqa: BLE001
        return []


def _setting(secrets: Any, environ: Mapping[str, str], key: str) -> str | None:
    value = _get(secrets, key)
    if value in (None, ""):
        value = environ.get(key)
    return str(value) if value not in (None, "") else None


def configured_endpoints(secrets: Mapping[str, Any] | Any, environ: Mapping[str, str],
                         local_port: int | None, problems: list[str] | None = None) -> list[Endpoint]:
    """The sandbox (when local_port is given), SGP (when SGP_API_KEY is set in the secrets or
    the environment; SGP_ACCOUNT_ID and SGP_BASE_URL honoured), then every [endpoints.NAME]
    table. A table that cannot be used is skipped and described in `problems`."""
    problems = [] if problems is None else problems
    endpoints: list[Endpoint] = []
    if local_port is not None:
        endpoints.append(Endpoint.local(int(local_port)))
    sgp_key = _setting(secrets, environ, "SGP_API_KEY")
    if sgp_key:
        endpoints.append(Endpoint.sgp(api_key=sgp_key, account_id=_setting(secrets, environ, "SGP_ACCOUNT_ID"),
                                      base_url=_setting(secrets, environ, "SGP_BASE_URL"), environ=environ))
    for name, table in _items(_get(secrets, "endpoints")):
        try:
            endpoint = _endpoint_from_table(str(name), table, environ)
        except ValueError as error:
            problems.append(f"[endpoints.{name}]: {error}")
            log.warning("skipping [endpoints.%s]: %s", name, error)
            continue
        taken = {e.name for e in endpoints}
        if endpoint.name in taken:
            problems.append(f"[endpoints.{name}]: the name {endpoint.name!r} is taken; "
                            f"shown as {endpoint.name} (secrets)")
            endpoint = replace(endpoint, name=f"{endpoint.name} (secrets)")
        endpoints.append(endpoint)
    return endpoints


def _endpoint_from_table(name: str, table: Any, environ: Mapping[str, str]) -> Endpoint:
    if not isinstance(table, Mapping):
        raise ValueError("expected a table with base_url")
    base_url = _get(table, "base_url")
    if not base_url or not str(base_url).startswith(("http://", "https://")):
        raise ValueError(f"base_url must be an http(s) URL, got {redact_url_secrets(repr(base_url))}")
    auth = str(_get(table, "auth") or "x-api-key").lower()
    if auth not in ("x-api-key", "bearer"):
        raise ValueError(f"auth must be 'x-api-key' or 'bearer', got {auth!r}")
    api_key = _get(table, "api_key")
    key_env = _get(table, "api_key_env")
    if not api_key and key_env:
        api_key = environ.get(str(key_env))
    chat_path = str(_get(table, "chat_path") or ("/chat/completions" if auth == "bearer" else SGP_CHAT_PATH))
    if not chat_path.startswith("/"):
        chat_path = "/" + chat_path
    headers = _get(table, "headers")
    models_path = _get(table, "models_path")
    kind = str(_get(table, "kind") or ("openai" if auth == "bearer" else "sgp"))
    token_limit_field = _get(table, "token_limit_field")
    if token_limit_field is not None and token_limit_field not in TOKEN_LIMIT_FIELDS:
        raise ValueError(f"token_limit_field must be {' or '.join(map(repr, TOKEN_LIMIT_FIELDS))}, "
                         f"got {token_limit_field!r}")
    return Endpoint(
        name=name,
        base_url=str(base_url),
        chat_path=chat_path,
        auth=auth,  # type: ignore[arg-type]
        api_key=str(api_key) if api_key else None,
        account_id=str(_get(table, "account_id")) if _get(table, "account_id") else None,
        headers={str(k): str(v) for k, v in _items(headers)},
        models_path=str(models_path) if models_path else None,
        kind=kind,
        token_limit_field=token_limit_field,
    )


def default_endpoint_name(endpoints: list[Endpoint]) -> str | None:
    """SGP when configured, else the local sandbox, else the first endpoint (None if none)."""
    names = [endpoint.name for endpoint in endpoints]
    for preferred in (SGP_NAME, LOCAL_NAME):
        if preferred in names:
            return preferred
    return names[0] if names else None


def price_table(secrets: Mapping[str, Any] | Any) -> Prices:
    """{model: (dollars per million input tokens, per million output tokens)} from [prices].
    Entries may be [input, output] or {input = .., output = ..}; unusable ones are skipped."""
    prices: Prices = {}
    for model, entry in _items(_get(secrets, "prices")):
        pair = _price_pair(entry)
        if pair is None:
            log.warning("skipping [prices] entry %r: expected [input, output] per million tokens", model)
            continue
        prices[str(model)] = pair
    return prices


def _price_pair(entry: Any) -> tuple[float, float] | None:
    try:
        if isinstance(entry, Mapping):
            values = [_first(entry, names) for names in (("input", "prompt", "input_per_million"),
                                                         ("output", "completion", "output_per_million"))]
        elif isinstance(entry, (list, tuple)) and len(entry) == 2:
            values = list(entry)
        else:
            return None
        if any(v is None or isinstance(v, bool) for v in values):
            return None
        low, high = float(values[0]), float(values[1])
    except (TypeError, ValueError):
        return None
    return (low, high) if low >= 0 and high >= 0 else None


def _first(entry: Mapping, names: tuple[str, ...]) -> Any:
    for name in names:
        if name in entry:
            return entry[name]
    return None


def cost_of(run: Any, prices: Prices) -> float | None:
    """Dollars for a run: prompt and completion tokens (from usage) at the model's price;
    None without usage or without a price for the model. The model is looked up as requested,
    as reported by the server, then without its vendor prefix."""
    usage = getattr(run, "usage", None)
    if usage is None or not prices:
        return None
    candidates = [run.request.model, getattr(run, "response_model", None)]
    candidates += [name.split("/", 1)[1] for name in list(candidates) if name and "/" in name]
    for name in candidates:
        if name and name in prices:
            per_in, per_out = prices[name]
            return (usage.prompt_tokens * per_in + usage.completion_tokens * per_out) / 1_000_000
    return None

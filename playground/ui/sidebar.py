"""The sidebar: which endpoint and which model. Every page reads them through
`current_endpoint()` and `current_model()`.

Entries: the local sandbox (always listed; started only while it is the chosen or default
endpoint), SGP when SGP_API_KEY is set, every [endpoints.NAME] table of
.streamlit/secrets.toml, and a custom OpenAI-compatible server whose URL and key are typed
in (the key lives in this session only). The choice is kept in
st.session_state["endpoint_name"] and st.session_state["model"].
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import httpx
import streamlit as st

from playground import settings
from playground.client import token_limit
from playground.client.client import ChatClient
from playground.client.endpoint import LOCAL_MODEL, Endpoint
from playground.client.errors import APIError
from playground.secrets_check import redact_url_secrets
from playground.textsafe import escape_markdown
from playground.ui.common import user, widget_sync

ENDPOINT_KEY = "endpoint_name"
MODEL_KEY = "model"
CUSTOM = "Custom (OpenAI-compatible)"
LOCAL = "Local sandbox"
CUSTOM_URL_KEY = "custom_base_url"
CUSTOM_KEY_KEY = "custom_api_key"
CUSTOM_LIMIT_KEY = "custom_token_limit_field"  # None: the usual field for the URL (token_limit.default_field)
_ENDPOINTS = "_sb_endpoints"
_PROBLEMS = "_sb_endpoint_problems"
_PICK_MODEL = "_sb_pick_model"
_ENDPOINT_WIDGET, _MODEL_WIDGET = "_sb_endpoint", "_sb_model"  # drawn from ENDPOINT_KEY, MODEL_KEY
MODELS_TTL_S = 30
SGP_FALLBACK_MODEL = "openai/gpt-4o-mini"
INSTALL_HINT = "pip install -e '.[sandbox]'"


# --- secrets and endpoints ------------------------------------------------------------------


def secrets() -> dict[str, Any]:
    """st.secrets as a dict; {} when there is no secrets file (st.secrets would raise)."""
    try:
        if st.secrets.load_if_toml_exists():
            return st.secrets.to_dict()
    except Exception:  # a broken secrets file must not take the app down
        return {}
    return {}


@st.cache_resource(show_spinner=False)
def _sandbox_handle(port_hint: int):
    # Keyed by $PLAYGROUND_SANDBOX_PORT: pointing it elsewhere gives that port's sandbox. No
    # waiting here: the page draws at once while the model loads (sandbox_starting()).
    from playground.sandbox.launcher import ensure_sandbox

    return ensure_sandbox(wait=False)


def sandbox_available() -> bool:
    from playground.sandbox.launcher import sandbox_available as available

    return available()


def restart_sandbox() -> None:
    """Forget the sandbox this app process knows, stopping it if the app started it: the next
    page run finds or starts a new one (after it died, or when the user asks to try again)."""
    from playground.sandbox.launcher import reset

    _sandbox_handle.clear()
    reset()


def sandbox_handle(check: bool = False):
    """The sandbox (started once per app process, reused when one already runs on
    $PLAYGROUND_SANDBOX_PORT). With `check`, a sandbox that died is started again."""
    handle = _sandbox_handle(_sandbox_port_hint())
    if check and handle.state == "running" and not handle.alive():
        restart_sandbox()
        handle = _sandbox_handle(_sandbox_port_hint())
    return handle.poll() if hasattr(handle, "poll") else handle


def sandbox_starting() -> bool:
    """True while the local model is loading (Run waits; the page itself does not)."""
    return getattr(sandbox_handle(), "state", None) == "starting"


@st.fragment(run_every=0.5)
def _follow_sandbox_start() -> None:
    """While the sandbox starts: redraw the whole app once it answers, so Run enables itself."""
    if not sandbox_starting():
        st.rerun()


def _sandbox_port_hint() -> int:
    from playground.sandbox.launcher import configured_port

    return configured_port()


def configured(check: bool = False, need_local: bool = False) -> list[Endpoint]:
    """Every configured endpoint, the sandbox first.

    The sandbox is started only when it is the chosen endpoint (or the default one while none
    is chosen), or when the caller needs it (`need_local`); otherwise its entry points at
    $PLAYGROUND_SANDBOX_PORT and nothing is started. With `check`, a sandbox that died is
    started again."""
    problems: list[str] = []
    endpoints = settings.configured_endpoints(secrets(), os.environ, _sandbox_port_hint(), problems)
    st.session_state[_PROBLEMS] = problems
    chosen = st.session_state.get(ENDPOINT_KEY)
    if chosen not in _names(endpoints):
        chosen = _default_name(endpoints)
    if need_local or chosen == LOCAL:
        endpoints[0] = local_endpoint(check, wait=need_local)  # configured_endpoints puts the sandbox first
    return endpoints


def local_endpoint(check: bool = False, wait: bool = False) -> Endpoint:
    """The sandbox's endpoint, starting the sandbox when it is not running yet (with `wait`,
    until it answers: for a page about to send to it, e.g. a Compare pane)."""
    return Endpoint.local(_local_port(check, wait) or _sandbox_port_hint())


def _local_port(check: bool = False, wait: bool = False) -> int | None:
    handle = sandbox_handle(check)
    if wait and getattr(handle, "state", None) == "starting":
        handle.wait()  # a request is about to go to it
    return handle.port if getattr(handle, "port", None) else None


def _custom_endpoint() -> Endpoint:
    url = (st.session_state.get(CUSTOM_URL_KEY) or "").strip() or "http://127.0.0.1:8000/v1"
    return Endpoint.openai_compatible(url, st.session_state.get(CUSTOM_KEY_KEY) or None, name=CUSTOM,
                                      token_limit_field=st.session_state.get(CUSTOM_LIMIT_KEY) or None)


def _names(endpoints: list[Endpoint]) -> list[str]:
    return [e.name for e in endpoints] + [CUSTOM]


def _default_name(endpoints: list[Endpoint]) -> str:
    name = settings.default_endpoint_name(endpoints)
    return name if name in _names(endpoints) else endpoints[0].name


def current_endpoint() -> Endpoint:
    """The endpoint chosen in the sidebar (the default one before the sidebar has run)."""
    endpoints = st.session_state.get(_ENDPOINTS) or configured()
    name = st.session_state.get(ENDPOINT_KEY) or _default_name(endpoints)
    if name == CUSTOM:
        return _custom_endpoint()
    for endpoint in endpoints:
        if endpoint.name == name:
            return endpoint
    return endpoints[0]


def endpoints_by_name(need_local: bool = False) -> dict[str, Endpoint]:
    """The endpoints the sidebar offers (the custom one when it is chosen there), by name.
    With `need_local`, the sandbox is started (if it is not running) whatever the sidebar chose."""
    named = {endpoint.name: endpoint for endpoint in configured(need_local=need_local)}
    current = current_endpoint()
    named.setdefault(current.name, current)
    return named


def choose(endpoint_name: str | None = None, model: str | None = None) -> None:
    """Pick the endpoint (when it is configured) and the model from code (History's Load into
    Playground, the JSON view, a preset): the pickers show them on the next draw."""
    if endpoint_name and endpoint_name in _names(st.session_state.get(_ENDPOINTS) or configured()):
        st.session_state[ENDPOINT_KEY] = endpoint_name
    if model:
        st.session_state[MODEL_KEY] = model


def current_model() -> str:
    model = st.session_state.get(MODEL_KEY)
    if model:
        return model
    endpoint = current_endpoint()
    return _fallback_model(endpoint)


def pick_model(models: list[str], wanted: str | None, fallback: str) -> str:
    """The one rule for the model a setup uses on a server: the same name when the server lists
    it, else the endpoint's usual model when listed, else the server's first model. With no list
    (a server that does not list, or not reachable yet), what was wanted, else the usual model."""
    if wanted and wanted in models:
        return wanted
    if models:
        return fallback if fallback in models else models[0]
    return wanted or fallback


def model_on(endpoint: Endpoint, wanted: str | None) -> str:
    """The model a setup moved to `endpoint` uses (a Compare pane whose endpoint changed)."""
    local = endpoint.kind == "local"
    models = [] if local and sandbox_starting() else list_models(endpoint)[0]
    if local and not models:  # starting, or not started: it serves one model
        models = [LOCAL_MODEL]
    return pick_model(models, wanted, _fallback_model(endpoint))


def _fallback_model(endpoint: Endpoint) -> str:
    if endpoint.kind == "local":
        return LOCAL_MODEL
    if endpoint.kind == "sgp":
        return SGP_FALLBACK_MODEL
    return ""


# --- model list -----------------------------------------------------------------------------


def _cache_id(endpoint: Endpoint) -> str:
    key = hashlib.sha256((endpoint.api_key or "").encode()).hexdigest()[:16]
    return f"{endpoint.name}|{endpoint.base_url}|{endpoint.models_path}|{endpoint.account_id or ''}|{key}"


@st.cache_data(ttl=MODELS_TTL_S, show_spinner=False, max_entries=32)
def _list_models(cache_id: str, _endpoint: Endpoint) -> tuple[list[str], str | None]:
    quick = dataclasses.replace(_endpoint, timeout=httpx.Timeout(5.0, connect=3.0))
    try:
        with ChatClient(quick, max_retries=0) as client:
            return client.list_models(), None
    except APIError as error:
        return [], str(error)
    except Exception as error:  # a bad URL typed in, ...: its text may quote the URL, key and all
        return [], redact_url_secrets(f"{type(error).__name__}: {error}")


def list_models(endpoint: Endpoint) -> tuple[list[str], str | None]:
    """(model ids, error): cached for a short while, failures too (a dead server is not re-asked each rerun)."""
    return _list_models(_cache_id(endpoint), endpoint)


# --- drawing --------------------------------------------------------------------------------


def _on_endpoint() -> None:
    st.session_state[ENDPOINT_KEY] = widget_sync.value(_ENDPOINT_WIDGET)
    _on_new_server()


def _on_new_server() -> None:
    st.session_state[_PICK_MODEL] = True  # pick a model of the new server if the current one is not there


def _on_model() -> None:
    value = widget_sync.value(_MODEL_WIDGET)
    if value:
        st.session_state[MODEL_KEY] = value.strip()


def render() -> Endpoint:
    """Draw the endpoint and model pickers in the sidebar; returns the chosen endpoint."""
    with st.sidebar:
        st.markdown("### Endpoint")
        endpoints = configured(check=True)  # starts the sandbox only when it is chosen (or the default)
        names = _names(endpoints)
        if st.session_state.get(ENDPOINT_KEY) not in names:
            st.session_state[ENDPOINT_KEY] = _default_name(endpoints)
        st.session_state[_ENDPOINTS] = endpoints  # for current_endpoint() during this run
        widget_sync.write(_ENDPOINT_WIDGET, st.session_state[ENDPOINT_KEY])
        st.selectbox("Endpoint", names, key=widget_sync.key(_ENDPOINT_WIDGET), on_change=_on_endpoint,
                     label_visibility="collapsed",
                     help="Where requests go. Add servers as [endpoints.NAME] tables in .streamlit/secrets.toml.")
        for problem in st.session_state.get(_PROBLEMS) or []:
            st.caption(f":material/warning: {escape_markdown(problem)}")
        name = st.session_state[ENDPOINT_KEY]
        if name == CUSTOM:
            st.text_input("Base URL", key=CUSTOM_URL_KEY, placeholder="http://127.0.0.1:8000/v1",
                          help="An OpenAI-compatible server; requests go to {base URL}/chat/completions.",
                          persist_state="session", on_change=_on_new_server)
            st.text_input("API key", key=CUSTOM_KEY_KEY, type="password", persist_state="session",
                          on_change=_on_new_server,
                          help="Sent as a Bearer token. Kept in this browser session only, never saved.")
            _token_limit_choice()
        endpoint = current_endpoint()
        if endpoint.kind == "local":
            _sandbox_status()
        else:
            st.caption(escape_markdown(redact_url_secrets(endpoint.chat_url)))  # no ?api_key=... on screen
        _model_picker(endpoint)
        user.account_box()
    return endpoint


def _token_limit_choice() -> None:
    """Issue 22: which field carries the token limit to the custom server (servers ignore the
    one they do not read, without a word)."""
    usual = token_limit.default_field("openai", _custom_endpoint().base_url)
    st.selectbox("Token limit field", [None, *token_limit.TOKEN_LIMIT_FIELDS], key=CUSTOM_LIMIT_KEY,
                 format_func=lambda field: f"{usual} (default)" if field is None else field,
                 persist_state="session",
                 help="The field the server reads the token limit from: llama-cpp-python's server, Ollama and "
                      "LM Studio read max_tokens, OpenAI reads max_completion_tokens. The limit is sent in it. "
                      "Default: max_completion_tokens for api.openai.com, max_tokens for any other server.")
    st.caption(f"The token limit is sent as `{_custom_endpoint().token_limit_field}`.")


def _sandbox_status() -> None:
    handle = sandbox_handle()
    state = getattr(handle, "state", "failed")
    if state == "running":
        st.badge(f"Running on 127.0.0.1:{handle.port}", icon=":material/check_circle:", color="green")
        return
    if state == "missing" or not sandbox_available():
        st.warning("The local model is not installed. Add it with:", icon=":material/download:")
        st.code(INSTALL_HINT, language="bash")
        st.caption("or run `make run`, which installs it. Other endpoints work without it.")
        return
    if state == "starting":
        st.badge("Starting the local model…", icon=":material/hourglass_top:", color="orange")
        _follow_sandbox_start()
        return
    st.badge("Failed to start", icon=":material/error:", color="red")
    message = getattr(handle, "message", "")
    if message:
        with st.expander("Why"):
            st.code(str(message)[-1500:], language="text")
    if st.button("Try again", key="_sb_sandbox_retry"):
        restart_sandbox()
        st.rerun()


def _model_picker(endpoint: Endpoint) -> None:
    head = st.container(horizontal=True, vertical_alignment="center")
    head.markdown("### Model")
    if head.button("", key="_sb_refresh_models", type="tertiary", icon=":material/refresh:",
                   help="Ask the server for its models again."):
        _list_models.clear()
        st.rerun()
    if endpoint.kind == "local" and sandbox_starting():
        models, error = [LOCAL_MODEL], None  # not asked yet: a refusal now would be cached
    else:
        models, error = list_models(endpoint)
    current = st.session_state.get(MODEL_KEY)
    # A new server's models may come only once its URL and key are typed: keep the wish to
    # pick one until a model list arrives.
    repick = st.session_state.get(_PICK_MODEL, False) and models and current not in models
    if models:
        st.session_state.pop(_PICK_MODEL, None)
    if not current or repick:
        current = pick_model(models, None, _fallback_model(endpoint)) or current or ""
        st.session_state[MODEL_KEY] = current
    widget_sync.write(_MODEL_WIDGET, current)
    if models:
        options = models if current in models else [current, *models]
        st.selectbox("Model", options, key=widget_sync.key(_MODEL_WIDGET), on_change=_on_model,
                     label_visibility="collapsed", accept_new_options=True,
                     help="From the server's model list; type to use another id.")
    else:
        st.text_input("Model", key=widget_sync.key(_MODEL_WIDGET), on_change=_on_model, label_visibility="collapsed",
                      placeholder="vendor/model, e.g. openai/gpt-4o", help="The model id to send.")
        if error:
            st.caption(f"Could not list models: {escape_markdown(error)}. Type a model id.")

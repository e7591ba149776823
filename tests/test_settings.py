"""Settings: data dir, configured endpoints from secrets and environment, prices and cost."""

from __future__ import annotations

import re
import sys

import platformdirs
import pytest

from playground.client.endpoint import LOCAL_MODEL, SGP_CHAT_PATH, SGP_DEFAULT_BASE_URL, Endpoint
from playground.client.run import Run
from playground.client.schema import ChatRequest, Usage
from playground.settings import (
    LOGGED,
    configure_logging,
    configured_endpoints,
    cost_of,
    data_dir,
    default_endpoint_name,
    price_table,
    runs_db_path,
)
from tests.scripted_server import Reply, ScriptedServer


def by_name(endpoints: list[Endpoint]) -> dict[str, Endpoint]:
    return {e.name: e for e in endpoints}


# --- paths ----------------------------------------------------------------------------


def test_data_dir_from_environment(tmp_path):
    target = tmp_path / "nested" / "data"
    assert data_dir({"PLAYGROUND_DATA_DIR": str(target)}) == target
    assert target.is_dir()
    assert runs_db_path({"PLAYGROUND_DATA_DIR": str(target)}) == target / "runs.sqlite3"


def test_data_dir_reads_os_environ_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env" and runs_db_path() == tmp_path / "env" / "runs.sqlite3"


def test_data_dir_default_is_the_user_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("PLAYGROUND_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # platformdirs on Linux
    path = data_dir({})
    assert path.is_dir()
    # platformdirs follows XDG_DATA_HOME on Linux only (macOS and Windows have their own place)
    expected = tmp_path / "xdg" / "playground" if sys.platform == "linux" else platformdirs.user_data_path("playground")
    assert path == expected


# --- endpoints ------------------------------------------------------------------------


def test_sandbox_only_without_key():
    endpoints = configured_endpoints({}, {}, local_port=8765)
    assert [e.name for e in endpoints] == ["Local sandbox"]
    assert endpoints[0].chat_url == "http://127.0.0.1:8765" + SGP_CHAT_PATH
    assert default_endpoint_name(endpoints) == "Local sandbox"
    assert configured_endpoints({}, {}, local_port=None) == []
    assert default_endpoint_name([]) is None


def test_sgp_from_environment(monkeypatch):
    # os.environ must not leak in: only the mapping given counts.
    monkeypatch.setenv("SGP_ACCOUNT_ID", "from-os-environ")
    endpoints = by_name(configured_endpoints({}, {"SGP_API_KEY": "k1"}, local_port=1234))
    sgp = endpoints["SGP"]
    assert sgp.api_key == "k1" and sgp.account_id is None and sgp.base_url == SGP_DEFAULT_BASE_URL
    assert sgp.auth == "x-api-key" and sgp.chat_path == SGP_CHAT_PATH and sgp.kind == "sgp"
    assert default_endpoint_name(list(endpoints.values())) == "SGP"

    env = {"SGP_API_KEY": "k2", "SGP_ACCOUNT_ID": "acct", "SGP_BASE_URL": "https://sgp.internal/"}
    sgp = by_name(configured_endpoints({}, env, None))["SGP"]
    assert (sgp.account_id, sgp.base_url) == ("acct", "https://sgp.internal")
    assert sgp.auth_headers() == {"x-api-key": "k2", "x-selected-account-id": "acct"}


def test_sgp_key_from_secrets_wins_over_environment():
    endpoints = configured_endpoints({"SGP_API_KEY": "from-secrets"}, {"SGP_API_KEY": "from-env"}, None)
    assert by_name(endpoints)["SGP"].api_key == "from-secrets"


def test_endpoint_tables_from_secrets():
    secrets = {
        "endpoints": {
            "vllm": {"base_url": "http://gpu:8000/v1", "auth": "bearer", "api_key": "vk"},
            "staging": {"base_url": "https://staging.example", "api_key_env": "STAGING_KEY", "account_id": "a1",
                        "headers": {"X-Team": "blue"}},
            "custom path": {"base_url": "http://x:1", "chat_path": "v5/chat/completions"},
            "broken": {"auth": "bearer"},
            "bad auth": {"base_url": "http://x:1", "auth": "basic"},
            "not a table": "http://x",
        }
    }
    problems: list[str] = []
    endpoints = by_name(configured_endpoints(secrets, {"STAGING_KEY": "sk"}, 8765, problems))
    assert list(endpoints) == ["Local sandbox", "vllm", "staging", "custom path"]
    vllm = endpoints["vllm"]
    assert vllm.chat_url == "http://gpu:8000/v1/chat/completions"
    assert vllm.auth_headers() == {"Authorization": "Bearer vk"}
    assert vllm.models_url == "http://gpu:8000/v1/models" and vllm.kind == "openai"
    staging = endpoints["staging"]
    assert staging.chat_path == SGP_CHAT_PATH and staging.api_key == "sk" and staging.account_id == "a1"
    assert staging.all_headers() == {"X-Team": "blue", "x-api-key": "sk", "x-selected-account-id": "a1"}
    assert endpoints["custom path"].chat_path == "/v5/chat/completions"
    assert problems == [
        "[endpoints.broken]: base_url must be an http(s) URL, got None",
        "[endpoints.bad auth]: auth must be 'x-api-key' or 'bearer', got 'basic'",
        "[endpoints.not a table]: expected a table with base_url",
    ]


def test_name_clash_is_renamed_not_lost():
    secrets = {"endpoints": {"SGP": {"base_url": "https://other.example", "api_key": "x"}}}
    problems: list[str] = []
    names = [e.name for e in configured_endpoints(secrets, {"SGP_API_KEY": "k"}, None, problems)]
    assert names == ["SGP", "SGP (secrets)"]
    assert problems == ["[endpoints.SGP]: the name 'SGP' is taken; shown as SGP (secrets)"]


def test_real_streamlit_secrets_object(tmp_path):
    """st.secrets itself: nested tables are AttrDicts, and a missing file raises on access."""
    from streamlit import config
    from streamlit.errors import StreamlitSecretNotFoundError
    from streamlit.runtime.secrets import Secrets

    missing = Secrets()
    old = config.get_option("secrets.files")
    nowhere = tmp_path / "nope" / "secrets.toml"
    config.set_option("secrets.files", [str(nowhere)])
    try:
        # what settings._get must absorb: Streamlit's own error for "no secrets file"
        with pytest.raises(StreamlitSecretNotFoundError, match=f"^No secrets found.*{re.escape(str(nowhere))}$"):
            missing["endpoints"]
        assert [e.name for e in configured_endpoints(missing, {}, 8765)] == ["Local sandbox"]
        assert price_table(missing) == {}

        path = tmp_path / "secrets.toml"
        path.write_text(
            '[endpoints.vllm]\nbase_url = "http://gpu:8000/v1"\nauth = "bearer"\napi_key = "vk"\n'
            '[prices]\n"openai/gpt-4o" = [2.5, 10.0]\n"openai/gpt-4o-mini" = { input = 0.15, output = 0.6 }\n'
        )
        config.set_option("secrets.files", [str(path)])
        secrets = Secrets()
        endpoints = by_name(configured_endpoints(secrets, {}, None))
        assert endpoints["vllm"].api_key == "vk"
        assert price_table(secrets) == {"openai/gpt-4o": (2.5, 10.0), "openai/gpt-4o-mini": (0.15, 0.6)}
        secrets._reset()
    finally:
        config.set_option("secrets.files", old)


# --- prices and cost ------------------------------------------------------------------


def test_price_table_shapes():
    secrets = {"prices": {
        "a/list": [1, 2],
        "a/table": {"input": 0.5, "output": 1.5},
        "a/alt-names": {"prompt": 3, "completion": 4},
        "bad/one": [1],
        "bad/neg": [-1, 2],
        "bad/text": "cheap",
        "bad/bool": [True, 1],
    }}
    assert price_table(secrets) == {"a/list": (1.0, 2.0), "a/table": (0.5, 1.5), "a/alt-names": (3.0, 4.0)}
    assert price_table({}) == {}


def run_with(model: str, prompt_tokens: int, completion_tokens: int, response_model: str | None = None) -> Run:
    request = ChatRequest.from_wire({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                  total_tokens=prompt_tokens + completion_tokens)
    return Run(request=request, usage=usage, response_model=response_model)


def test_cost_of():
    prices = {"openai/gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}
    assert cost_of(run_with("openai/gpt-4o", 1_000_000, 100_000), prices) == pytest.approx(2.5 + 1.0)
    assert cost_of(run_with("openai/gpt-4o-mini", 2000, 1000), prices) == pytest.approx(
        (2000 * 0.15 + 1000 * 0.6) / 1e6)
    # priced by the model the server reported when the requested one has no price
    assert cost_of(run_with("x/unknown", 10, 10, response_model="gpt-4o-mini"), prices) == pytest.approx(
        (10 * 0.15 + 10 * 0.6) / 1e6)
    assert cost_of(run_with(LOCAL_MODEL, 10, 10), prices) is None
    assert cost_of(run_with("openai/gpt-4o", 10, 10), {}) is None
    request = ChatRequest.from_wire({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    no_usage = Run(request=request)
    assert cost_of(no_usage, prices) is None


def test_log_level_sends_request_lines_to_stderr_once_with_keys_redacted(monkeypatch, capsys):
    import logging

    import httpx

    from playground.client import client  # noqa: F401  (installs the URL-key filter on httpx's logger)

    for name in LOGGED:
        monkeypatch.setattr(logging.getLogger(name), "handlers", [])
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    configure_logging({})  # unset: nothing changes
    assert logging.getLogger("httpx").handlers == []
    configure_logging({"PLAYGROUND_LOG_LEVEL": "info"})
    configure_logging({"PLAYGROUND_LOG_LEVEL": "info"})  # every page run calls it: one handler
    assert [len(logging.getLogger(name).handlers) for name in LOGGED] == [1, 1]
    with ScriptedServer() as server, httpx.Client() as http:
        server.route("/v1/models", Reply.json(200, {"object": "list", "data": []}))
        http.get(f"{server.base_url}/v1/models?api_key=secret-123")
    logged = capsys.readouterr().err
    assert logged.count(f"HTTP Request: GET {server.base_url}/v1/models?api_key=*** \"HTTP/1.1 200 OK\"") == 1
    assert "secret-123" not in logged

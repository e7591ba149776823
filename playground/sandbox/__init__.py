"""The local sandbox: an SGP-compatible chat-completions server with a real small model.

`python -m playground.sandbox` (or `playground-sandbox`) serves it; the app starts it with
`ensure_sandbox()`. Only the launcher is imported here, so this package imports without the
`sandbox` extra; the server modules (app, model) need llama-cpp-python, FastAPI and uvicorn.
"""

from playground.sandbox.launcher import SandboxHandle, ensure_sandbox, sandbox_available

__all__ = ["SandboxHandle", "ensure_sandbox", "sandbox_available"]

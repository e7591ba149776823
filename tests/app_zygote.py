"""A warm start for the browser tests' `streamlit run app.py`: this process imports what the
app imports (Streamlit, pandas, pyarrow, altair, ...) once, then forks a child per app asked for.

Why: the suite starts about forty apps, and each spent 3-4 s of CPU importing the same modules
before it drew its first page, on two cores that the browser tests keep busy. A forked child
starts with them imported; it is otherwise `python -m streamlit run ...` in its own process
group, with the environment, working directory and log it was given. The project's own modules
are not imported here: they read their settings (PLAYGROUND_*) in the child, as in a real start.

Protocol, one JSON line each way on stdin/stdout:
    -> {"argv": [...], "env": {...}, "cwd": "...", "log": "..."}
    <- {"pid": 1234}
The zygote ignores SIGCHLD, so a child that exits is reaped at once: `os.kill(pid, 0)` failing
means it has exited. The zygote exits when its stdin closes (the test process ended).
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys

PRELOAD = ("streamlit", "streamlit.web.cli", "streamlit.web.bootstrap", "pandas", "pyarrow",
           "numpy", "altair", "sqlalchemy", "pydantic", "jsonschema", "httpx", "PIL.Image", "pygments", "jinja2",
           "starlette", "uvicorn")


def _child(order: dict) -> None:
    """In the forked child: become `python -m streamlit <argv>`, never return."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the app's own subprocesses are waited for
        os.setsid()  # its own process group, stopped as one by the test
        os.chdir(order["cwd"])
        os.environ.clear()
        os.environ.update(order["env"])
        log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(line_buffering=True, write_through=True)  # the test reads the log as it runs
        sys.argv = ["streamlit", *order["argv"]]
        sys.path[0] = order["cwd"]
        runpy.run_module("streamlit", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever it was goes to the app's log
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def main() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # not installed here: the child imports what it needs itself
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombies: exited children are reaped at once
    reply = sys.stdout
    print(json.dumps({"ready": True}), file=reply, flush=True)
    for line in sys.stdin:
        order = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(order)
        print(json.dumps({"pid": pid}), file=reply, flush=True)


if __name__ == "__main__":
    main()

"""The `python` check: `file.py:function`, a function of the team's own in the preset's folder,
called in-process as `function(answer, context)`.

It returns a bool (pass or fail), a float in 0..1 (a score: it passes at the check's threshold,
0.5 by default), or a (bool | float, reason) pair. `context` is a dict: `vars` (the case's
variables), `expected`, `accepted` (every accepted answer), `finish_reason`, `request` (as sent).

Only files inside the experiment's folder (the preset's) are run: a path that leaves it (an
absolute path, `..`) or an experiment with no folder is refused at load, before any request.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from playground.client.run import Run
from playground.experiments.model import Case, CheckResult, shorten
from playground.presets import Check

PYTHON_THRESHOLD = 0.5  # a float score passes at this unless the check sets its threshold
_lock = threading.Lock()
_modules: dict[tuple[str, int], ModuleType] = {}


class CheckCodeError(ValueError):
    """The python check cannot be run as named (outside the folder, no file, no function)."""


def resolve(spec: str, folder: str | Path | None) -> tuple[Path, str]:
    """(the file, the function name) for "file.py:function", refused outside `folder`."""
    file, _, function = spec.rpartition(":")
    if folder is None:
        raise CheckCodeError(f"python check {spec!r}: its file is looked for in the preset's folder, and this "
                             "experiment has none (run it with python -m playground.experiments run PRESET.json)")
    base = Path(folder).resolve()
    path = (base / file).resolve()
    if Path(file).is_absolute() or not path.is_relative_to(base):
        raise CheckCodeError(f"python check {spec!r}: {file} is outside the preset's folder {base} "
                             "(only files there are run)")
    if not path.is_file():
        raise CheckCodeError(f"python check {spec!r}: no file {path}")
    return path, function


def load(spec: str, folder: str | Path | None) -> Callable[..., Any]:
    """The check's function (its file imported once per version of the file); CheckCodeError."""
    path, name = resolve(spec, folder)
    key = (str(path), path.stat().st_mtime_ns)
    with _lock:
        module = _modules.get(key)
        if module is None:
            module_spec = importlib.util.spec_from_file_location(f"playground_check_{abs(hash(key))}", path)
            if module_spec is None or module_spec.loader is None:
                raise CheckCodeError(f"python check {spec!r}: {path} cannot be imported")
            module = importlib.util.module_from_spec(module_spec)
            try:
                module_spec.loader.exec_module(module)
            except Exception as error:
                raise CheckCodeError(f"python check {spec!r}: importing {path.name} raised "
                                     f"{type(error).__name__}: {error}") from None
            _modules[key] = module
    function = getattr(module, name, None)
    if not callable(function):
        raise CheckCodeError(f"python check {spec!r}: {path.name} has no function {name}")
    return function


def context_of(run: Run, case: Case) -> dict[str, Any]:
    return {"vars": dict(case.values), "expected": case.expected, "accepted": case.accepted,
            "finish_reason": run.finish_reason, "request": run.request.to_wire()}


def python_check(check: Check, run: Run, case: Case, folder: str | Path | None) -> CheckResult:
    spec = check.value or ""
    try:
        function = load(spec, folder)
    except CheckCodeError as error:
        return CheckResult(check.label, False, str(error))
    try:
        returned = function(run.text, context_of(run, case))
    except Exception as error:  # the team's code failing is this check failing, not the run
        return CheckResult(check.label, False, f"{spec} raised {type(error).__name__}: {shorten(str(error), 80)}")
    reason = ""
    if isinstance(returned, tuple) and len(returned) == 2 and isinstance(returned[1], str):
        returned, reason = returned
    if isinstance(returned, bool):
        return CheckResult(check.label, returned, reason or f"{spec} returned {returned}")
    if isinstance(returned, (int, float)) and 0 <= returned <= 1:
        threshold = check.threshold if check.threshold is not None else PYTHON_THRESHOLD
        ok = returned >= threshold
        why = f"score {returned:.2f} {'>=' if ok else '<'} {threshold:.2f}"
        return CheckResult(check.label, ok, f"{why}: {reason}" if reason else why, score=float(returned))
    return CheckResult(check.label, False, f"{spec} returned {shorten(repr(returned), 40)}, not a bool, a score "
                                           "in 0..1 or a (verdict, reason) pair")

"""`python -m playground.experiments run presets/NAME.json ...`: the experiment engine headless,
for CI. Prints a table of the variants and the failures; exit 0 when every check passed, 1 when
one failed (with --baseline: when a cell regressed or a new one failed) or when an answer was
not checked at all (every check not applicable; --allow-unchecked lets that pass), 2 on a
usage error: among them a check naming a variable no case has, a cases file without a column a
check reads, and a baseline of another experiment or with no cell in common.

Endpoints come from the app's settings: the local sandbox (started on demand), SGP when
SGP_API_KEY is set, and every [endpoints.NAME] of .streamlit/secrets.toml (the project's, then
~/.streamlit/secrets.toml); prices from its [prices] table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, Sequence, TextIO

from playground import settings
from playground.client.endpoint import Endpoint
from playground.experiments.calibration import calibration
from playground.experiments.cases import CasesFileError, cases_path, load_cases
from playground.experiments.compare import Comparison, compare, matching_cells
from playground.experiments.engine import DEFAULT_CONCURRENCY, ExperimentRunner
from playground.experiments.model import MAX_REPEATS, MAX_VARIANTS, Case, Experiment, Trial, Variant, shorten
from playground.experiments.results import ExperimentResult, ExperimentStore
from playground.experiments.summary import failures, summarize, unchecked
from playground.experiments.validation import ExperimentError, columns_read, validate
from playground.presets import Preset, PresetFileError, parse_preset_bytes

MAX_FAILURES_SHOWN = 30
_ALIASES = {"local": settings.LOCAL_NAME, "sandbox": settings.LOCAL_NAME, "sgp": settings.SGP_NAME}


class UsageError(Exception):
    """Exit 2: the command cannot run as given."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m playground.experiments",
                                     description="Run a preset over its cases and checks (exit 1 when a check fails).")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an experiment and print its table")
    run.add_argument("preset", help="the preset file, e.g. presets/NAME.json")
    run.add_argument("--cases", help="a .csv or .jsonl of cases (default: NAME.cases.csv beside the preset)")
    run.add_argument("--endpoint", help="endpoint name: 'Local sandbox' (default), SGP, or an [endpoints.NAME]")
    run.add_argument("--model", action="append", default=[], metavar="M",
                     help=f"a model to try (repeat for up to {MAX_VARIANTS} variants; default: the preset's)")
    run.add_argument("--repeats", type=int, default=1, metavar="K", help=f"answers per cell, 1 to {MAX_REPEATS}")
    run.add_argument("--baseline", metavar="RUN_ID|FILE",
                     help="an earlier run (its id, latest, or a --out file); then exit 1 only on a regression")
    run.add_argument("--out", metavar="results.jsonl", help="write the trials here (usable as a later --baseline)")
    run.add_argument("--concurrency", type=int, default=None,
                     help=f"requests at once per endpoint (default: as many as the local sandbox generates at once, "
                          f"{DEFAULT_CONCURRENCY} for another endpoint)")
    run.add_argument("--no-save", action="store_true", help="do not write the runs to the history")
    run.add_argument("--allow-unchecked", action="store_true",
                     help="exit 0 even when no check applied to some answer (a blank expected, no price for max_cost)")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, environ: dict[str, str] | None = None,
         secrets: Any = None) -> int:
    out = out or sys.stdout
    environ = dict(os.environ) if environ is None else environ
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage and why
        return int(exit_.code or 0)
    try:
        return _run(args, out, environ, _read_secrets() if secrets is None else secrets)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


# --- setting up ---------------------------------------------------------------------------


def _read_secrets() -> dict[str, Any]:
    """The app's secrets files, as Streamlit reads them: the user's, then the project's over it."""
    merged: dict[str, Any] = {}
    for path in (Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml"):
        try:
            merged |= tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise UsageError(f"{path}: {error}") from None
    return merged


def _load_preset(path: Path) -> Preset:
    try:
        return parse_preset_bytes(path.read_bytes(), path.name)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except PresetFileError as error:
        raise UsageError(str(error)) from None


def _load_cases(preset: Preset, preset_path: Path, given: str | None) -> list[Case]:
    path = Path(given) if given else cases_path(preset_path)
    variables = list(preset.defaults())
    read = columns_read(preset.checks, preset.defaults())
    if not path.exists():
        if given:
            raise UsageError(f"no cases file {path}")
        missing = [name for name, value in preset.defaults().items() if value is None] or read
        if missing:
            raise UsageError(f"no {path.name} beside the preset, and {{{{{missing[0]}}}}} has no default: "
                             "give --cases FILE")
        return [Case()]  # the preset as it is, once
    try:
        imported = load_cases(path, variables, required=read)
    except (OSError, CasesFileError) as error:
        raise UsageError(str(error)) from None
    if imported.problems:
        raise UsageError(f"{path}: " + "; ".join(imported.messages[:10]))
    if not imported.cases:
        raise UsageError(f"{path} has no cases")
    return imported.cases


def _endpoints(preset: Preset, wanted: str | None, environ: dict[str, str], secrets: Any) -> dict[str, Endpoint]:
    problems: list[str] = []
    endpoints = {e.name: e for e in settings.configured_endpoints(secrets, environ, 0, problems)}
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if wanted:
        lookup = {name.casefold(): name for name in endpoints} | {k: v for k, v in _ALIASES.items() if v in endpoints}
        name = lookup.get(wanted.casefold())
        if name is None:
            raise UsageError(f"no endpoint named {wanted!r} (configured: {', '.join(endpoints)})")
    else:
        hint = preset.endpoint.kind if preset.endpoint else None
        name = settings.SGP_NAME if hint == "sgp" and settings.SGP_NAME in endpoints else settings.LOCAL_NAME
    if name == settings.LOCAL_NAME:
        from playground.sandbox.launcher import ensure_sandbox

        handle = ensure_sandbox()
        if handle.state != "running" or handle.endpoint is None:
            raise UsageError(f"the local sandbox is not available: {handle.message}")
        endpoints[name] = handle.endpoint
    return {name: endpoints[name]}


def build_experiment(preset: Preset, cases: list[Case], models: Sequence[str], repeats: int,
                     endpoint: str | None = None) -> Experiment:
    if len(models) > MAX_VARIANTS:
        raise UsageError(f"at most {MAX_VARIANTS} --model options (one variant each), got {len(models)}")
    if not 1 <= repeats <= MAX_REPEATS:
        raise UsageError(f"--repeats must be 1 to {MAX_REPEATS}, got {repeats}")
    variants = [Variant.from_preset(preset, endpoint=endpoint, model=m, label=m) for m in models] or [
        Variant.from_preset(preset, endpoint=endpoint)]
    try:
        return validate(Experiment.from_preset(preset, cases, variants, repeats=repeats))
    except ExperimentError as error:
        raise UsageError(str(error)) from None


def _baseline(spec: str, store: ExperimentStore | None, experiment: Experiment) -> ExperimentResult:
    """The earlier run to compare with, refused unless it is a run of the same experiment with
    at least one cell this one has too (all before any request is sent)."""
    path = Path(spec)
    if path.exists():
        try:
            found: ExperimentResult | None = ExperimentResult.from_jsonl(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise UsageError(f"{path}: {error}") from None
    elif store is None:
        raise UsageError(f"no file {spec} (and --no-save leaves no history to find a run id in)")
    else:
        found = store.latest(experiment.id) if spec == "latest" else store.get(spec)
    if found is None:
        raise UsageError(f"no earlier run {spec!r} of {experiment.id!r} (neither a file nor a run id in {store.path})")
    if found.experiment.id != experiment.id:
        raise UsageError(f"baseline run {found.id} is of experiment {found.experiment.id!r}, not {experiment.id!r}: "
                         "compare runs of one experiment")
    if not matching_cells(found, experiment):
        raise UsageError(f"baseline run {found.id} of {found.experiment.id!r} has no cell that this run of "
                         f"{experiment.id!r} has (no case with the same values in the same variant column)")
    return found


# --- running ------------------------------------------------------------------------------


def _run(args: argparse.Namespace, out: TextIO, environ: dict[str, str], secrets: Any) -> int:
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    preset_path = Path(args.preset)
    preset = _load_preset(preset_path)
    cases = _load_cases(preset, preset_path, args.cases)
    experiment = build_experiment(preset, cases, args.model, args.repeats)
    store = None if args.no_save else ExperimentStore(settings.runs_db_path(environ))
    baseline = _baseline(args.baseline, store, experiment) if args.baseline else None
    endpoints = _endpoints(preset, args.endpoint, environ, secrets)
    runner = ExperimentRunner(experiment, endpoints, store=store, save=store is not None,
                              concurrency=args.concurrency, prices=settings.price_table(secrets))
    runner.start()
    try:
        while runner.wait(0.2) is None:
            pass
    except KeyboardInterrupt:
        runner.stop()
        runner.wait()
    result = runner.result
    if args.out:
        Path(args.out).write_text(result.to_jsonl(), encoding="utf-8")
    comparison = compare(baseline, result) if baseline is not None else None
    print_report(result, out, comparison=comparison, endpoint=next(iter(endpoints)), errors=runner.errors)
    if unchecked(result) and not args.allow_unchecked:
        return 1
    if comparison is not None:
        return 1 if comparison.failing else 0
    return 0 if result.status == "finished" and not failures(result) else 1


# --- the report -----------------------------------------------------------------------------


def _table(rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if n in right else cell.ljust(w) for n, (cell, w) in enumerate(zip(row, widths)))
            .rstrip() for row in rows]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_report(result: ExperimentResult, out: TextIO, *, comparison: Comparison | None = None,
                 endpoint: str = "", errors: Sequence[str] = ()) -> None:
    experiment = result.experiment
    took = (result.finished_at or time.time()) - result.started_at
    print(f"Experiment {experiment.name!r} ({experiment.id}), run {result.id} on {endpoint or 'the default endpoint'}",
          file=out)
    print(f"{len(experiment.cases)} cases x {len(experiment.variants)} variants x {experiment.repeats} repeats = "
          f"{experiment.total} trials; {len(result.trials)} done in {took:.1f} s ({result.status})", file=out)
    checks = ", ".join(check.label for check in experiment.checks) or "none (only errors fail)"
    print(f"Checks: {checks}", file=out)
    rows = [["", "variant", "model", "passed", "rate", "unchecked", "mean s", "p95 s", "tokens", "cost $"]]
    for s in summarize(result):
        rows.append(["*" if s.best else "", shorten(s.label, 36), shorten(s.model, 36), f"{s.passed}/{s.trials}",
                     _num(s.pass_rate and s.pass_rate * 100, ".1f") + ("%" if s.pass_rate is not None else ""),
                     str(s.unchecked), _num(s.mean_latency_s, ".2f"), _num(s.p95_latency_s, ".2f"), str(s.tokens),
                     _num(s.cost, ".6f")])
    print("", *_table(rows, right={3, 4, 5, 6, 7, 8, 9}), sep="\n", file=out)
    print("(* best: highest pass rate, then cheapest, then fastest; unchecked: no check applied to the answer)",
          file=out)
    _print_trials("Failures", failures(result), experiment, out)
    _print_trials("Unchecked (no check applied; --allow-unchecked lets them pass)", unchecked(result), experiment, out)
    for index, variant in enumerate(experiment.variants):
        figures = calibration(result, variant=index)
        if figures is not None and figures.count >= 2:
            print(f"\nCalibration, {variant.label}: {figures.sentence}", file=out)
    if comparison is not None:
        _print_comparison(comparison, experiment, out)
    for error in errors:
        print(f"warning: {error}", file=sys.stderr)


def _print_trials(title: str, trials: Sequence[Trial], experiment: Experiment, out: TextIO) -> None:
    if not trials:
        return
    print(f"\n{title} ({len(trials)}):", file=out)
    for trial in trials[:MAX_FAILURES_SHOWN]:
        case = experiment.cases[trial.case]
        where = f"case {trial.case + 1} ({case.label(30)}), variant {trial.variant + 1}"
        if experiment.repeats > 1:
            where += f", repeat {trial.repeat + 1}"
        answer = "" if trial.status == "error" else f" answer {shorten(trial.answer, 30)!r}:"
        print(f"  {trial.status.upper()} {where}:{answer} {trial.reason}", file=out)
    if len(trials) > MAX_FAILURES_SHOWN:
        print(f"  ... and {len(trials) - MAX_FAILURES_SHOWN} more (--out FILE has them all)", file=out)


def _print_comparison(comparison: Comparison, experiment: Experiment, out: TextIO) -> None:
    print(f"\nAgainst run {comparison.baseline_id} ({comparison.matched_cells} cells matched): "
          f"{len(comparison.regressions)} pass -> fail, {len(comparison.fixes)} fail -> pass, "
          f"{len(comparison.changed_answers)} answers changed, {len(comparison.new_cells)} new cells "
          f"({len(comparison.new_failures)} failing)", file=out)
    for word, changes in (("REGRESSED", comparison.regressions), ("FIXED", comparison.fixes)):
        for c in changes[:MAX_FAILURES_SHOWN]:
            print(f"  {word} case {c.case + 1} ({c.case_label}), variant {c.variant + 1}: {c.before} -> {c.after} "
                  f"({shorten(c.before_answer, 25)!r} -> {shorten(c.after_answer, 25)!r})", file=out)
    for c in comparison.new_cells[:MAX_FAILURES_SHOWN]:
        print(f"  NEW case {c.case + 1} ({c.case_label}), variant {c.variant + 1}: {c.after} "
              f"({shorten(c.after_answer, 25)!r})", file=out)
    for d in comparison.variants:
        rate = _num(d.pass_rate and d.pass_rate * 100, "+.1f")
        print(f"  variant {d.variant + 1} ({shorten(d.label, 30)}): pass rate {rate} points, "
              f"mean latency {_num(d.mean_latency_s, '+.2f')} s, cost {_num(d.cost, '+.6f')} $", file=out)

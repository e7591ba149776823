"""`python -m playground.experiments run presets/NAME.json ...`: the experiment engine headless,
for CI. Prints a table of the variants and the failures (or --format json, csv, junit); exit 0 when
every check passed, 1 when one failed (with --pass-at M: when a case passed fewer than M of its
repeats; with --baseline: when a cell regressed or a new one failed) or when an answer was
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
import tomllib
from pathlib import Path
from typing import Any, Sequence, TextIO

from playground import settings
from playground.client.endpoint import Endpoint
from playground.experiments.cases import CasesFileError, cases_path, load_cases
from playground.experiments.compare import Comparison, compare, matching_cells
from playground.experiments.engine import DEFAULT_CONCURRENCY, ExperimentRunner
from playground.experiments.model import MAX_REPEATS, MAX_VARIANTS, Case, Experiment, Variant
from playground.experiments.report_formats import FORMATS, to_csv, to_json, to_junit
from playground.experiments.report_table import print_report
from playground.experiments.results import ExperimentResult, ExperimentStore
from playground.experiments.summary import failing_cells, failures, unchecked
from playground.experiments.validation import ExperimentError, columns_read, validate
from playground.presets import Preset, PresetFileError, parse_preset_bytes

_ALIASES = {"local": settings.LOCAL_NAME, "sandbox": settings.LOCAL_NAME, "sgp": settings.SGP_NAME}


class UsageError(Exception):
    """Exit 2: the command cannot run as given."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m playground.experiments",
                                     description="Run a preset over its cases and checks (exit 1 when a check fails).")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an experiment and print its table")
    run.add_argument("preset", help="the preset file, e.g. presets/NAME.json (its checks grade every variant)")
    run.add_argument("--cases", help="a .csv or .jsonl of cases (default: NAME.cases.csv beside the preset)")
    run.add_argument("--variant", action="append", default=[], metavar="PRESET.json",
                     help="another preset to run as a variant beside the first (repeatable; its prompt and "
                          "parameters, the first preset's cases and checks)")
    run.add_argument("--endpoint", action="append", default=[], metavar="NAME",
                     help="endpoint name: 'Local sandbox' (default), SGP, or an [endpoints.NAME]; repeat to run "
                          "every variant on each")
    run.add_argument("--model", action="append", default=[], metavar="M",
                     help=f"a model to try (repeatable; every preset x endpoint x model is a variant, at most "
                          f"{MAX_VARIANTS}; default: the preset's)")
    run.add_argument("--repeats", type=int, default=1, metavar="K", help=f"answers per cell, 1 to {MAX_REPEATS}")
    run.add_argument("--pass-at", type=int, default=None, metavar="M",
                     help="with --repeats: a case passes when at least M of its repeats pass (default: all)")
    run.add_argument("--grader", metavar="ENDPOINT",
                     help="where rubric checks that name no grader are graded (default: the variant's endpoint)")
    run.add_argument("--grader-model", metavar="M", help="the grader's model (default: the variant's model)")
    run.add_argument("--format", choices=FORMATS, default="table",
                     help="table (default), json, csv (one row per trial) or junit (JUnit XML: a test per case)")
    run.add_argument("--baseline", metavar="RUN_ID|FILE",
                     help="an earlier run (its id, latest, or a --out file); then exit 1 only on a regression")
    run.add_argument("--out", metavar="results.jsonl", help="write the trials here (usable as a later --baseline)")
    run.add_argument("--concurrency", type=int, default=None,
                     help=f"requests at once per endpoint (default: as many as the local sandbox generates at once, "
                          f"{DEFAULT_CONCURRENCY} for another endpoint)")
    run.add_argument("--no-save", action="store_true", help="do not write the runs to the history")
    run.add_argument("--allow-unchecked", action="store_true",
                     help="exit 0 even when no check applied to some answer (a blank expected, no price for max_cost)")
    imp = commands.add_parser("import-promptfoo", help="write presets and cases files from a promptfooconfig.yaml")
    imp.add_argument("config", help="promptfoo's config file (promptfooconfig.yaml)")
    imp.add_argument("--out", default="presets", metavar="DIR", help="where to write them (default: presets/)")
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
        if args.command == "import-promptfoo":
            from playground.experiments.promptfoo import main as import_main

            return import_main(args.config, args.out, out)
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


def _endpoints(preset: Preset, wanted: Sequence[str], environ: dict[str, str], secrets: Any,
               grader: str | None = None) -> tuple[list[str], dict[str, Endpoint], str | None]:
    """The endpoints the variants go to (their names, in order), every endpoint the run needs
    (those and the grader's; the local sandbox started when one of them is it) and the grader's name."""
    problems: list[str] = []
    endpoints = {e.name: e for e in settings.configured_endpoints(secrets, environ, 0, problems)}
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    lookup = {name.casefold(): name for name in endpoints} | {k: v for k, v in _ALIASES.items() if v in endpoints}

    def find(given: str) -> str:
        name = lookup.get(given.casefold())
        if name is None:
            raise UsageError(f"no endpoint named {given!r} (configured: {', '.join(endpoints)})")
        return name

    if wanted:
        names = list(dict.fromkeys(find(given) for given in wanted))
    else:
        hint = preset.endpoint.kind if preset.endpoint else None
        names = [settings.SGP_NAME if hint == "sgp" and settings.SGP_NAME in endpoints else settings.LOCAL_NAME]
    grader_name = find(grader) if grader else None
    needed = names + ([grader_name] if grader_name and grader_name not in names else [])
    if settings.LOCAL_NAME in needed:
        from playground.sandbox.launcher import ensure_sandbox

        handle = ensure_sandbox()
        if handle.state != "running" or handle.endpoint is None:
            raise UsageError(f"the local sandbox is not available: {handle.message}")
        endpoints[settings.LOCAL_NAME] = handle.endpoint
    return names, {name: endpoints[name] for name in needed}, grader_name


def build_experiment(preset: Preset, cases: list[Case], models: Sequence[str], repeats: int,
                     endpoint: str | None = None, *, others: Sequence[Preset] = (),
                     endpoints: Sequence[str] = (), folder: str | None = None) -> Experiment:
    """Every preset (the first, then `others`) x endpoint x model as a variant; the first preset's
    checks and pass_threshold grade them all."""
    if not 1 <= repeats <= MAX_REPEATS:
        raise UsageError(f"--repeats must be 1 to {MAX_REPEATS}, got {repeats}")
    bases = [preset, *others]
    where = list(endpoints) or [endpoint]
    total = len(bases) * len(where) * max(1, len(models))
    if total > MAX_VARIANTS:
        raise UsageError(f"at most {MAX_VARIANTS} variants: {len(bases)} preset(s) x {len(where)} endpoint(s) x "
                         f"{max(1, len(models))} model(s) is {total}")
    variants = []
    for base in bases:
        for name in where:
            for model in models or [None]:
                parts = ([base.name] if len(bases) > 1 else []) + ([model] if model else []) + (
                    [f"@ {name}"] if len(where) > 1 and name else [])
                label = " ".join(parts) or None
                variants.append(Variant.from_preset(base, endpoint=name, model=model, label=label))
    try:
        experiment = Experiment.from_preset(preset, cases, variants, repeats=repeats)
        return validate(experiment.model_copy(update={"folder": folder}) if folder else experiment)
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
        raise UsageError(f"no earlier run {spec!r} of {experiment.id!r} (neither a file nor a run id in {store.where})")
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
    if args.pass_at is not None and not 1 <= args.pass_at <= args.repeats:
        raise UsageError(f"--pass-at must be 1 to --repeats ({args.repeats}), got {args.pass_at}")
    preset_path = Path(args.preset)
    preset = _load_preset(preset_path)
    others = [_load_preset(Path(path)) for path in args.variant]
    cases = _load_cases(preset, preset_path, args.cases)
    build_experiment(preset, cases, args.model, args.repeats, others=others,  # refused before any sandbox starts
                     endpoints=args.endpoint, folder=str(preset_path.resolve().parent))
    names, endpoints, grader = _endpoints(preset, args.endpoint, environ, secrets, args.grader)
    experiment = build_experiment(preset, cases, args.model, args.repeats, others=others, endpoints=names,
                                  folder=str(preset_path.resolve().parent))
    store = None if args.no_save else ExperimentStore(settings.database_target(environ))
    baseline = _baseline(args.baseline, store, experiment) if args.baseline else None
    try:
        runner = ExperimentRunner(experiment, endpoints, default_endpoint=names[0], store=store,
                                  save=store is not None, concurrency=args.concurrency,
                                  prices=settings.price_table(secrets),
                                  grader=grader, grader_model=args.grader_model)
    except ExperimentError as error:
        raise UsageError(str(error)) from None
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
    if args.format == "table":
        print_report(result, out, comparison=comparison, endpoint=", ".join(names), errors=runner.errors,
                     pass_at=args.pass_at)
    else:
        writer = {"json": lambda: to_json(result, args.pass_at), "csv": lambda: to_csv(result),
                  "junit": lambda: to_junit(result, args.pass_at, args.allow_unchecked)}[args.format]
        out.write(writer())
        for error in runner.errors:
            print(f"warning: {error}", file=sys.stderr)
    return exit_code(result, comparison, pass_at=args.pass_at, allow_unchecked=args.allow_unchecked)


def exit_code(result: ExperimentResult, comparison: Comparison | None, *, pass_at: int | None = None,
              allow_unchecked: bool = False) -> int:
    """1 when an answer went unchecked (unless allowed), when a cell regressed against the
    baseline (or a new one fails), or without a baseline when a case failed: any failing trial,
    or with --pass-at a case under a variant with fewer than M passing repeats."""
    if unchecked(result) and not allow_unchecked:
        return 1
    if comparison is not None:
        return 1 if comparison.failing else 0
    if result.status != "finished":
        return 1
    if pass_at is not None:
        return 1 if failing_cells(result, pass_at) else 0
    return 1 if failures(result) else 0

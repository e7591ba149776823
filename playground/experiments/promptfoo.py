"""`python -m playground.experiments import-promptfoo promptfooconfig.yaml [--out presets/]`: a
promptfoo suite as presets and a cases file, and a list of what could not be carried over.

What is read: `prompts` (inline text, `file://` text files, `---` between several prompts in one
file, JSON chat message lists), `providers` (each `vendor:model` or `vendor:chat:model` a
variant: one preset per prompt x provider, `config`'s sampling fields in its request),
`defaultTest` (its `assert` are the preset's checks, its `vars` the variables' defaults), `tests`
(inline, or a CSV file: its columns the variables, `__expected`, `__expected1`... the row's checks
written as promptfoo does: `contains: x`, `icontains: x`, `grade: rubric`, plain text for equals),
each test's `vars` a case and its `assert` the case's own checks.

Assertion types: equals, contains, icontains, contains-any/all (and i-), not-contains, regex,
not-regex, starts-with, is-json, contains-json, similar (difflib here, embeddings there),
llm-rubric, finish-reason, latency, cost, perplexity, python (file:// in the config's folder,
copied beside the presets), with `weight` and `threshold`. `javascript` and everything else
are reported with where they were, one line each: nothing is dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from playground.client.schema import ChatRequest, describe_error
from playground.experiments.cases import cases_to_csv
from playground.experiments.model import Case
from playground.presets import Check, Preset, Variable, preset_to_json, slugify, variables_in

SAMPLING = {"temperature", "top_p", "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty",
            "seed", "stop", "response_format", "top_k"}
DEFAULT_MODEL = "local/smollm2-135m-instruct"
_NAMED = {"equals": "equals", "contains": "contains", "not-contains": "not_contains", "regex": "regex",
          "not-regex": "not_regex", "starts-with": "starts_with", "contains-any": "contains_any",
          "contains-all": "contains_all", "finish-reason": "finish_reason", "similar": "similar",
          "llm-rubric": "rubric", "python": "python", "is-json": "json_schema", "contains-json": "contains_json"}
_FOLDED = {"icontains": "contains", "not-icontains": "not_contains", "icontains-any": "contains_any",
           "icontains-all": "contains_all", "iequals": "equals"}
_CSV_PREFIX = re.compile(r"^(?P<type>[a-z-]+)(?:\((?P<threshold>[0-9.]+)\))?:\s?(?P<value>.*)$", re.DOTALL)
_CSV_ALIASES = {"grade": "llm-rubric", "fn": "javascript", "eval": "javascript"}


class ImportFailed(Exception):
    """The config cannot be read at all."""


@dataclass
class ImportReport:
    written: list[Path] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # "where: what could not be carried over"
    command: str = ""


@dataclass
class _Reader:
    config_path: Path
    out: Path
    report: ImportReport

    @property
    def folder(self) -> Path:
        return self.config_path.parent

    def drop(self, where: str, what: str) -> None:
        self.report.dropped.append(f"{where}: {what}")

    # --- prompts and providers ------------------------------------------------------------

    def prompts(self, given: Any) -> list[tuple[str, list[dict[str, Any]]]]:
        """(label, messages) per prompt."""
        items = given if isinstance(given, list) else [given] if given else []
        found: list[tuple[str, list[dict[str, Any]]]] = []
        for n, item in enumerate(items):
            where = f"prompts[{n}]"
            label = None
            if isinstance(item, dict):
                label, item = item.get("label"), item.get("id") or item.get("raw")
            if not isinstance(item, str):
                self.drop(where, f"a prompt of type {type(item).__name__} is not importable")
                continue
            if item.startswith("file://"):
                found += self.prompt_file(item.removeprefix("file://"), where, label)
            else:
                found.append((label or f"prompt {len(found) + 1}", [{"role": "user", "content": item}]))
        return found

    def prompt_file(self, name: str, where: str, label: str | None) -> list[tuple[str, list[dict[str, Any]]]]:
        path = (self.folder / name).resolve()
        if path.suffix in (".js", ".ts", ".py", ".mjs", ".cjs") or ":" in name:
            self.drop(where, f"file://{name}: prompt functions are not importable (only text and JSON chat prompts)")
            return []
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            self.drop(where, f"file://{name}: cannot read it ({error.strerror})")
            return []
        if path.suffix == ".json":
            try:
                messages = json.loads(text)
            except ValueError as error:
                self.drop(where, f"file://{name}: not JSON ({error})")
                return []
            if isinstance(messages, list) and all(isinstance(m, dict) and "role" in m for m in messages):
                return [(label or path.stem, messages)]
            self.drop(where, f"file://{name}: JSON that is not a list of chat messages")
            return []
        parts = [part.strip() for part in re.split(r"^---\s*$", text, flags=re.MULTILINE) if part.strip()]
        return [(label or (path.stem if len(parts) == 1 else f"{path.stem} {n}"), [{"role": "user", "content": part}])
                for n, part in enumerate(parts, 1)]

    def providers(self, given: Any) -> list[tuple[str, str, dict[str, Any]]]:
        """(label, model as vendor/model, request fields) per provider."""
        items = given if isinstance(given, list) else [given] if given else []
        found = []
        for n, item in enumerate(items):
            where = f"providers[{n}]"
            config: dict[str, Any] = {}
            label = None
            if isinstance(item, dict):
                label, config, item = item.get("label"), dict(item.get("config") or {}), item.get("id")
            if not isinstance(item, str) or item.startswith(("file://", "exec:", "python:", "http", "webhook:")):
                self.drop(where, f"provider {item!r} is not importable (only vendor:model providers)")
                continue
            parts = item.split(":")
            if len(parts) < 2:
                self.drop(where, f"provider {item!r} names no model")
                continue
            vendor, model = parts[0], parts[-1] if parts[1] in ("chat", "messages", "completion") else ":".join(
                parts[1:])
            fields = {k: v for k, v in config.items() if k in SAMPLING}
            for key in config:
                if key not in SAMPLING:
                    self.drop(where, f"config.{key} is not carried over (only sampling fields)")
            found.append((label or item, f"{vendor}/{model}", fields))
        return found

    # --- assertions ------------------------------------------------------------------------

    def check(self, given: Any, where: str) -> Check | None:
        if not isinstance(given, dict) or not isinstance(given.get("type"), str):
            self.drop(where, "an assertion without a type")
            return None
        kind, value = given["type"], given.get("value")
        data: dict[str, Any] = {}
        if kind in _FOLDED:
            data["ignore_case"] = True
            kind = _FOLDED[kind]
        elif kind in _NAMED:
            kind = _NAMED[kind]
        elif kind in ("latency", "cost", "perplexity"):
            limit = given.get("threshold")
            if not isinstance(limit, (int, float)):
                self.drop(where, f"{kind} without a numeric threshold")
                return None
            data["limit"] = limit / 1000 if kind == "latency" else limit
            kind = {"latency": "max_latency_s", "cost": "max_cost", "perplexity": "max_perplexity"}[kind]
            value = None
        else:
            shown = json.dumps(value)[:60] if value is not None else ""
            self.drop(where, f"{given['type']} is not importable" + (f" ({shown})" if shown else ""))
            return None
        data["kind"] = kind
        if kind in ("contains_any", "contains_all"):
            data["values"] = [str(v) for v in value] if isinstance(value, list) else [
                v.strip() for v in str(value or "").split(",") if v.strip()]
        elif kind in ("json_schema", "contains_json"):
            if isinstance(value, dict):
                data["schema"] = value
            elif value is not None:
                self.drop(where, f"{given['type']}'s schema {str(value)[:40]!r} is not carried over (not inline)")
            if kind == "json_schema" and "schema" not in data:
                data["kind"] = "json_valid"
        elif kind == "python":
            spec = self.python_file(str(value or ""), where)
            if spec is None:
                return None
            data["value"] = spec
        elif value is not None:
            data["value"] = value if isinstance(value, str) else json.dumps(value)
        if isinstance(given.get("threshold"), (int, float)) and kind in ("similar", "rubric", "python"):
            data["threshold"] = given["threshold"]
        if isinstance(given.get("weight"), (int, float)):
            data["weight"] = given["weight"]
        if kind == "rubric" and isinstance(given.get("provider"), str) and ":" in given["provider"]:
            vendor, *rest = given["provider"].split(":")
            data["model"] = f"{vendor}/{rest[-1]}"
        for key in ("metric", "transform", "rubricPrompt"):
            if key in given:
                self.drop(where, f"{given['type']}'s {key} is not carried over")
        if kind == "similar":
            self.drop(where, "similar is scored with difflib's ratio here, not embeddings: check its threshold")
        try:
            return Check.model_validate(data)
        except ValidationError as error:
            self.drop(where, f"{given['type']}: " + "; ".join(describe_error(error)))
            return None

    def python_file(self, value: str, where: str) -> str | None:
        if not value.startswith("file://"):
            self.drop(where, "inline python is not importable (a file://x.py:function is)")
            return None
        name, _, function = value.removeprefix("file://").partition(":")
        source = (self.folder / name).resolve()
        if not source.is_file():
            self.drop(where, f"python file {name} not found")
            return None
        self.out.mkdir(parents=True, exist_ok=True)
        target = self.out / source.name
        if source != target.resolve():
            shutil.copyfile(source, target)
            self.report.written.append(target)
        self.drop(where, f"python {source.name}: copied beside the presets; a dict (GradingResult) return is not read")
        return f"{source.name}:{function or 'get_assert'}"

    def csv_assertion(self, text: str, where: str) -> Check | None:
        text = text.strip()
        match = _CSV_PREFIX.match(text)
        if match is None or (match.group("type") not in _NAMED and match.group("type") not in _FOLDED
                             and match.group("type") not in _CSV_ALIASES and match.group("type") != "javascript"):
            if text in ("is-json", "contains-json"):
                return self.check({"type": text}, where)
            return self.check({"type": "equals", "value": text}, where)
        kind = _CSV_ALIASES.get(match.group("type"), match.group("type"))
        value: Any = match.group("value")
        if kind in ("contains-any", "contains-all", "icontains-any", "icontains-all"):
            value = [v.strip() for v in value.split(",") if v.strip()]
        given = {"type": kind, "value": value}
        if match.group("threshold"):
            given["threshold"] = float(match.group("threshold"))
        return self.check(given, where)

    # --- tests -----------------------------------------------------------------------------

    def tests(self, given: Any) -> list[tuple[str, dict[str, Any]]]:
        """(where, test) for every test: inline ones, and rows of CSV files."""
        items = given if isinstance(given, list) else [given] if given else []
        found: list[tuple[str, dict[str, Any]]] = []
        for n, item in enumerate(items):
            if isinstance(item, str):
                found += self.csv_tests(item.removeprefix("file://"), f"tests[{n}]")
            elif isinstance(item, dict):
                found.append((f"tests[{n}]", item))
            else:
                self.drop(f"tests[{n}]", f"a test of type {type(item).__name__} is not importable")
        return found

    def csv_tests(self, name: str, where: str) -> list[tuple[str, dict[str, Any]]]:
        if not name.endswith(".csv"):
            self.drop(where, f"tests from {name} are not importable (only a CSV file)")
            return []
        try:
            text = (self.folder / name).read_text(encoding="utf-8-sig")
        except OSError as error:
            self.drop(where, f"{name}: cannot read it ({error.strerror})")
            return []
        found = []
        for line, row in enumerate(csv.DictReader(io.StringIO(text)), 2):
            test: dict[str, Any] = {"vars": {}, "assert": []}
            for column, cell in row.items():
                cell = cell or ""
                if column.startswith("__expected"):
                    if cell.strip():
                        test["assert"].append(("csv", cell, f"{name} line {line}: {column}"))
                elif column == "__description":
                    test["description"] = cell
                elif column.startswith("__"):
                    if cell.strip():
                        self.drop(f"{name} line {line}", f"{column} is not carried over")
                else:
                    test["vars"][column] = cell
            found.append((f"{name} line {line}", test))
        return found

    def case(self, where: str, test: dict[str, Any]) -> Case | None:
        values = {}
        for name, value in (test.get("vars") or {}).items():
            if isinstance(value, (list, dict)):
                self.drop(f"{where}: vars.{name}", "a list or object value is not importable (promptfoo expands "
                                                   "lists into several tests; write them out)")
                return None
            if isinstance(value, str) and value.startswith("file://"):
                self.drop(f"{where}: vars.{name}", f"{value} is not read (the case has the path as its text)")
            values[name] = value if isinstance(value, str) else json.dumps(value)
        checks = []
        for n, given in enumerate(test.get("assert") or []):
            if isinstance(given, tuple):
                check = self.csv_assertion(given[1], given[2])
            else:
                check = self.check(given, f"{where}: assert[{n}]")
            if check is not None:
                checks.append(check)
        for key in ("options", "provider", "providers", "threshold", "metadata"):
            if key in test:
                why = " (a preset's pass_threshold is every case's)" if key == "threshold" else ""
                self.drop(where, f"{key} is not carried over{why}")
        return Case(values=values, checks=checks, note=test.get("description") or None)


def import_config(config_path: str | Path, out: str | Path = "presets") -> ImportReport:
    """Write the presets and the cases file of a promptfoo config into `out`; ImportFailed when
    it cannot be read."""
    try:
        import yaml  # PyYAML (a dependency): imported here, so the CLI's --help stays quick
    except ImportError:
        raise ImportFailed("reading promptfoo's YAML needs PyYAML: pip install PyYAML") from None

    path, target = Path(config_path), Path(out)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ImportFailed(f"{path}: {error}") from None
    if not isinstance(config, dict):
        raise ImportFailed(f"{path}: not a promptfoo config (a mapping with prompts, providers and tests)")
    report = ImportReport()
    reader = _Reader(path, target, report)
    prompts = reader.prompts(config.get("prompts"))
    if not prompts:
        raise ImportFailed(f"{path}: no prompt could be imported" + "".join(f"\n  {d}" for d in report.dropped))
    providers = reader.providers(config.get("providers")) or [(DEFAULT_MODEL, DEFAULT_MODEL, {})]
    default = config.get("defaultTest") or {}
    checks = [c for n, a in enumerate(default.get("assert") or [])
              if (c := reader.check(a, f"defaultTest.assert[{n}]")) is not None]
    defaults = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (default.get("vars") or {}).items()}
    for key in default:
        if key not in ("assert", "vars"):
            reader.drop("defaultTest", f"{key} is not carried over")
    cases = [c for where, test in reader.tests(config.get("tests")) if (c := reader.case(where, test)) is not None]
    for key in config:
        if key not in ("description", "prompts", "providers", "defaultTest", "tests"):
            reader.drop(path.name, f"{key} is not carried over")
    base = slugify(str(config.get("description") or path.parent.name or path.stem)) or "promptfoo"
    target.mkdir(parents=True, exist_ok=True)
    files = []
    for p, (prompt_label, messages) in enumerate(prompts):
        for v, (provider_label, model, fields) in enumerate(providers):
            name = base if (p, v) == (0, 0) else f"{base}--{slugify(prompt_label)}--{slugify(provider_label)}"
            request = ChatRequest.from_wire({"model": model, "messages": messages, **fields})
            used = list(dict.fromkeys([*variables_in(request), *(n for c in cases for n in c.values)]))
            variables = [Variable(name=n, default=defaults.get(n)) for n in used]  # a case's vars: the preset's
            preset = Preset(schema_version=1, name=name if (p, v) != (0, 0) else str(config.get("description") or base),
                            description=f"Imported from {path.name}: {prompt_label} on {provider_label}",
                            variables=variables, request=request, checks=checks if (p, v) == (0, 0) else [])
            file = target / f"{name}.json"
            file.write_text(preset_to_json(preset), encoding="utf-8")
            files.append(file)
    if cases:
        cases_file = target / f"{base}.cases.csv"
        cases_file.write_text(cases_to_csv(cases), encoding="utf-8", newline="")
        files.insert(1, cases_file)
    report.written = files + report.written
    variants = " ".join(f"--variant {f}" for f in files if f.suffix == ".json" and f != files[0])
    report.command = f"python -m playground.experiments run {files[0]} {variants}".rstrip()
    if len(prompts) * len(providers) > 4:
        reader.drop(path.name, f"{len(prompts)} prompts x {len(providers)} providers is over 4 variants: run them "
                               "four at a time")
    return report


def main(config: str, out_dir: str, out: TextIO) -> int:
    """The command: what was written, what was not carried over (one line each), how to run it."""
    try:
        report = import_config(config, out_dir)
    except ImportFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in report.written:
        print(f"wrote {path}", file=out)
    if report.dropped:
        print(f"\nNot carried over ({len(report.dropped)}):", file=out)
        for line in report.dropped:
            print(f"  {line}", file=out)
    else:
        print("\nEverything was carried over.", file=out)
    print(f"\nRun it: {report.command}", file=out)
    return 0

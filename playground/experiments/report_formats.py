"""The CLI's machine-readable reports (--format json|csv|junit), written to stdout.

- json: the run, each variant's figures, each case under each variant (k of n passed, flaky, its
  trials with their checks), and the flaky cells.
- csv: one row per trial.
- junit: JUnit XML as CI systems read it (Jenkins, GitLab, GitHub's test reporters): one
  <testsuite> per variant, one <testcase> per case (over its repeats, by the --pass-at rule),
  a <failure> with every failing check's reason, an <error> when no answer came, an unchecked
  case a <failure> (a <skipped> with --allow-unchecked).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from xml.etree import ElementTree as ET

from playground.experiments.model import Trial
from playground.experiments.results import ExperimentResult
from playground.experiments.summary import Cell, cells, flaky, summarize

FORMATS = ("table", "json", "csv", "junit")


def _trial(trial: Trial) -> dict[str, Any]:
    return {"repeat": trial.repeat, "status": trial.status, "score": trial.score, "answer": trial.answer,
            "reason": trial.reason, "finish_reason": trial.finish_reason, "latency_s": trial.latency_s,
            "checks": [c.to_dict() for c in trial.checks], "run_id": trial.run_id}


def _verdict(cell: Cell, pass_at: int | None) -> str:
    """pass / fail / error / unchecked for a case under a variant, by the --pass-at rule."""
    counted = cell.counted
    if cell.passes_at(pass_at or len(counted)):
        return "pass"
    if all(t.status == "error" for t in counted):
        return "error"
    if all(t.status in ("pass", "unchecked") for t in counted):
        return "unchecked"
    return "fail"


def to_json(result: ExperimentResult, pass_at: int | None = None) -> str:
    experiment = result.experiment
    found = cells(result)
    data = {
        "experiment": experiment.id, "name": experiment.name, "run": result.id, "status": result.status,
        "repeats": experiment.repeats, "pass_at": pass_at, "pass_threshold": experiment.pass_threshold,
        "variants": [{"variant": s.variant + 1, "label": s.label, "model": s.model, "endpoint": s.endpoint,
                      "trials": s.trials, "passed": s.passed, "failed": s.failed, "errors": s.errors,
                      "unchecked": s.unchecked, "pass_rate": s.pass_rate, "mean_latency_s": s.mean_latency_s,
                      "tokens": s.tokens, "cost": s.cost, "best": s.best} for s in summarize(result)],
        "cases": [{"case": c + 1, "label": experiment.cases[c].label(80), "variant": v + 1,
                   "verdict": _verdict(cell, pass_at), "passed": cell.passed, "of": len(cell.counted),
                   "flaky": cell.flaky, "trials": [_trial(t) for t in cell.trials]}
                  for (c, v), cell in sorted(found.items())],
        "flaky": [{"case": cell.case + 1, "variant": cell.variant + 1, "passed": cell.passed, "of": len(cell.counted)}
                  for cell in flaky(result)],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


CSV_COLUMNS = ["case", "variant", "repeat", "status", "score", "answer", "reason", "finish_reason", "latency_s",
               "prompt_tokens", "completion_tokens", "cost", "run_id"]


def to_csv(result: ExperimentResult) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for t in sorted(result.trials, key=lambda t: (t.case, t.variant, t.repeat)):
        writer.writerow([t.case + 1, t.variant + 1, t.repeat + 1, t.status, "" if t.score is None else f"{t.score:g}",
                         t.answer, t.reason, t.finish_reason or "", "" if t.latency_s is None else f"{t.latency_s:.3f}",
                         t.prompt_tokens, t.completion_tokens, "" if t.cost is None else f"{t.cost:.6f}",
                         t.run_id or ""])
    return out.getvalue()


def _xml_text(text: str) -> str:
    """XML 1.0 allows no control characters but tab, newline and carriage return."""
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 32 else f"\\x{ord(ch):02x}" for ch in text)


def to_junit(result: ExperimentResult, pass_at: int | None = None, allow_unchecked: bool = False) -> str:
    experiment = result.experiment
    found = cells(result)
    root = ET.Element("testsuites", name=_xml_text(experiment.name))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    for index, variant in enumerate(experiment.variants):
        suite = ET.SubElement(root, "testsuite", name=_xml_text(f"{index + 1}. {variant.label}"))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
        for c, case in enumerate(experiment.cases):
            cell = found.get((c, index))
            seconds = sum(t.latency_s or 0.0 for t in cell.counted) if cell is not None else 0.0
            test = ET.SubElement(suite, "testcase", name=_xml_text(f"case {c + 1}: {case.label(80)}"),
                                 classname=_xml_text(f"{experiment.id}.{variant.label}"), time=f"{seconds:.3f}")
            counts["tests"] += 1
            counts["time"] += seconds
            if cell is None or not cell.counted:
                ET.SubElement(test, "skipped", message="not run (the run was stopped first)")
                counts["skipped"] += 1
                continue
            verdict = _verdict(cell, pass_at)
            detail = "\n".join(f"repeat {t.repeat + 1}: {t.status}: answer {t.answer!r}: {t.reason}"
                               for t in cell.counted if t.status != "pass")
            summary = f"{cell.passed} of {len(cell.counted)} repeats passed" + (" (flaky)" if cell.flaky else "")
            if verdict == "error":
                element = ET.SubElement(test, "error", message=_xml_text(cell.counted[0].reason[:500]), type="error")
                counts["errors"] += 1
            elif verdict == "unchecked" and allow_unchecked:
                element = ET.SubElement(test, "skipped", message="unchecked: no check applied to the answer")
                counts["skipped"] += 1
            elif verdict in ("fail", "unchecked"):
                first = next(t for t in cell.counted if t.status != "pass")
                element = ET.SubElement(test, "failure", message=_xml_text(f"{summary}: {first.reason}"[:500]),
                                        type=verdict)
                counts["failures"] += 1
            else:
                element = None
            if element is not None and element.tag != "skipped":
                element.text = _xml_text(detail)
            out = ET.SubElement(test, "system-out")
            out.text = _xml_text(f"{summary}\nanswer: {cell.answer}")
        for key, value in counts.items():
            suite.set(key, f"{value:.3f}" if key == "time" else str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, f"{value:.3f}" if key == "time" else str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

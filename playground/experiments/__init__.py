"""Experiments: one prompt over a table of cases and up to four variants, every answer graded
by the preset's checks (some read logprobs), run in CI through `python -m playground.experiments`.

- model: Experiment, Case, Variant (what is run), Trial and CheckResult (what came back)
- cases: cases files (presets/NAME.cases.csv), CSV/JSONL import with per-row problems, export; a
  case's own checks and accepted answers
- checks: grading one answer (the verdict, the weighted score), confidence from logprobs; the kinds
  by what they read: checks_text, checks_json, checks_code (python), grader (rubric, from the
  grader's logprobs), embeddings (similar on an endpoint's embeddings)
- validation: what an experiment is refused for before any request (ExperimentError)
- engine: ExperimentRunner (threads, a limit per endpoint, Stop, progress) and run_experiment
- results: ExperimentResult and ExperimentStore (tables in the run store's SQLite file)
- summary, compare, calibration: the figures of one run (flaky cells, --pass-at), of two runs, of confidence
- cli: the command line (__main__); report_table and report_formats (json, csv, junit) print a run;
  promptfoo: import-promptfoo

UI-free: the Experiments page draws these; nothing here imports Streamlit.
"""

from playground.experiments.calibration import Bin, Calibration, calibration
from playground.experiments.cases import (
    MAX_CASES,
    CaseImport,
    CasesFileError,
    case_from_run,
    cases_path,
    cases_to_csv,
    cases_to_jsonl,
    load_cases,
    parse_cases,
    save_cases,
)
from playground.experiments.checks import check_run, confidence, grade, label_check, label_masses
from playground.experiments.compare import CellChange, Comparison, VariantDelta, compare, matching_cells
from playground.experiments.engine import DEFAULT_CONCURRENCY, ExperimentRunner, Progress, run_experiment
from playground.experiments.model import (
    MAX_REPEATS,
    MAX_VARIANTS,
    Case,
    CheckResult,
    Experiment,
    Trial,
    Variant,
)
from playground.experiments.results import ExperimentResult, ExperimentRunSummary, ExperimentStore
from playground.experiments.summary import Cell, VariantSummary, cells, failures, summarize, unchecked
from playground.experiments.validation import ExperimentError, validate
from playground.presets.model import CHECK_KINDS, Check

__all__ = [
    "Bin", "CHECK_KINDS", "Calibration", "Case", "CaseImport", "CasesFileError", "Cell", "CellChange", "Check",
    "CheckResult", "Comparison", "DEFAULT_CONCURRENCY", "Experiment", "ExperimentError", "ExperimentResult",
    "ExperimentRunSummary", "ExperimentRunner", "ExperimentStore", "MAX_CASES", "MAX_REPEATS", "MAX_VARIANTS",
    "Progress", "Trial", "Variant", "VariantDelta", "VariantSummary", "calibration", "case_from_run", "cases_path",
    "cases_to_csv", "cases_to_jsonl", "cells", "check_run", "compare", "confidence", "failures", "grade",
    "label_check", "label_masses", "load_cases", "matching_cells", "parse_cases", "run_experiment", "save_cases",
    "summarize", "unchecked", "validate",
]

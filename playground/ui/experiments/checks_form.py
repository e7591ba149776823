"""The preset's checks as a small editable table: one row per check, the kind picked from a list,
the fields that kind reads beside it. What the table holds is what the next run grades by (as
the Playground sends what its form shows); `Save checks` writes it into the preset file. A row
that is not a valid check blocks the run and the save, named with its row number and reason;
nothing typed is dropped."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from playground.client.schema import describe_error
from playground.presets import CHECK_KINDS, Check, Preset
from playground.textsafe import escape_markdown
from playground.ui.experiments import state

COLUMNS = ["kind", "value", "limit", "labels", "tool", "ignore case", "schema", "values", "path", "matches", "weight",
           "threshold", "grader", "model"]
_TEXT_COLUMNS = ("value", "labels", "tool", "schema", "values", "path", "matches", "grader", "model")
_HELP = {
    "kind": "equals / contains / not_contains / regex / starts_with / not_regex / similar compare the answer with "
            "value; contains_any / contains_all look for values; json_valid, json_schema, contains_json, json_path, "
            "tool_called read its structure; max_* and min_confidence compare a figure with limit; python runs "
            "file.py:function from the preset's folder; rubric asks a grader model to rate the answer (1-5).",
    "value": "The text to look for; {{expected}} and the case's {{variables}} are filled in. Empty: {{expected}}. "
             "rubric: the grader's prompt ({{answer}} is the answer); python: file.py:function.",
    "values": "contains_any / contains_all: the texts, comma-separated (or a JSON list).",
    "path": "json_path: where the value is in the answer's JSON, such as $.items[0].name.",
    "matches": "json_path: a regex the value must match (instead of value).",
    "weight": "The check's share of the trial's score (1 by default; 0: shown, not counted).",
    "threshold": "similar / python / rubric: the score (0..1) at which the check passes.",
    "grader": "rubric: the endpoint that grades (empty: the variant's own).",
    "model": "rubric: the grader's model (empty: the variant's); similar: an embedding model (cosine similarity "
             "where the endpoint serves embeddings).",
    "limit": "For max_latency_s, max_completion_tokens, max_cost, min_confidence (0..1), max_perplexity.",
    "labels": "min_confidence only: the answer's labels, comma-separated (their first tokens' probability mass).",
    "tool": "tool_called only: the function that must be called (empty: any).",
    "ignore case": "Text kinds: compare without case.",
    "schema": "json_schema only: a JSON schema (empty: the request's response_format schema).",
}


def _values_text(values: list[str] | None) -> str:
    if not values:
        return ""
    return json.dumps(values, ensure_ascii=False) if any("," in v for v in values) else ", ".join(values)


def checks_frame(checks: list[Check]) -> pd.DataFrame:
    rows = [{"kind": c.kind, "value": c.value or "", "limit": c.limit, "labels": ", ".join(c.labels or []),
             "tool": c.tool or "", "ignore case": c.ignore_case,
             "schema": json.dumps(c.schema_, ensure_ascii=False) if c.schema_ is not None else "",
             "values": _values_text(c.values), "path": c.path or "", "matches": c.matches or "",
             "weight": c.weight if c.weight != 1.0 else None, "threshold": c.threshold,
             "grader": c.grader or "", "model": c.model or ""}
            for c in checks]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"limit": "float64", "weight": "float64", "threshold": "float64",
                         "ignore case": "object"})  # object: a new row's None fits


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str)
                                                                                and not value.strip())


def frame_checks(frame: pd.DataFrame) -> tuple[list[Check], list[str]]:
    """The rows as checks, and one line per row that is not a valid check ("Row 2: ...").
    Rows with nothing in them are left out."""
    checks, problems = [], []
    for number, row in enumerate(frame.to_dict("records"), start=1):
        if all(_blank(row.get(name)) for name in COLUMNS if name != "ignore case"):  # a blank row
            continue
        data: dict[str, Any] = {"kind": row.get("kind") or ""}
        if not _blank(row.get("value")):
            data["value"] = str(row["value"])
        if not _blank(row.get("limit")):
            data["limit"] = row["limit"]
        if not _blank(row.get("labels")):
            data["labels"] = [label.strip() for label in str(row["labels"]).split(",") if label.strip()]
        if not _blank(row.get("tool")):
            data["tool"] = str(row["tool"]).strip()
        if row.get("ignore case") is True:
            data["ignore_case"] = True
        if not _blank(row.get("values")):
            text = str(row["values"]).strip()
            try:
                data["values"] = [str(v) for v in json.loads(text)] if text.startswith("[") else [
                    v.strip() for v in text.split(",") if v.strip()]
            except ValueError as error:
                problems.append(f"Row {number}: values is not a JSON list ({error})")
                continue
        for name in ("path", "matches", "grader", "model"):
            if not _blank(row.get(name)):
                data[name] = str(row[name]).strip()
        for name in ("weight", "threshold"):
            if not _blank(row.get(name)):
                data[name] = row[name]
        if not _blank(row.get("schema")):
            try:
                data["schema"] = json.loads(str(row["schema"]))
            except ValueError as error:
                problems.append(f"Row {number}: schema is not JSON ({error})")
                continue
        try:
            checks.append(Check.model_validate(data))
        except ValidationError as error:
            problems.append(f"Row {number}: " + "; ".join(describe_error(error)))
    return checks, problems


def render(preset: Preset, busy: bool) -> tuple[list[Check], list[str]]:
    """Draw the checks editor; the checks it holds and the problems of its rows."""
    st.subheader("Checks")
    st.caption("Every answer is graded by each check (pass, fail, or n/a with the reason in one line). "
               "Edits apply to the next run; Save checks writes them into the preset file.")
    config = {
        "kind": st.column_config.SelectboxColumn("kind", options=list(CHECK_KINDS), required=True,
                                                 help=_HELP["kind"]),
        "limit": st.column_config.NumberColumn("limit", help=_HELP["limit"]),
        "ignore case": st.column_config.CheckboxColumn("ignore case", help=_HELP["ignore case"], default=False),
        "weight": st.column_config.NumberColumn("weight", help=_HELP["weight"], min_value=0.0),
        "threshold": st.column_config.NumberColumn("threshold", help=_HELP["threshold"], min_value=0.0,
                                                   max_value=1.0),
        **{name: st.column_config.TextColumn(name, help=_HELP[name]) for name in _TEXT_COLUMNS},
    }
    edited = st.data_editor(checks_frame(preset.checks), num_rows="dynamic", hide_index=True,
                            key=state.checks_editor_key(preset), column_config=config, disabled=busy,
                            width="stretch")
    checks, problems = frame_checks(pd.DataFrame(edited))
    for problem in problems:
        st.error(escape_markdown(problem))
    changed = [c.to_dict() for c in checks] != [c.to_dict() for c in preset.checks]
    if changed and not problems:
        if st.button("Save checks", key=state.W_SAVE_CHECKS, disabled=busy,
                     help="Write these checks into the preset file (reviewed in git with it)."):
            state.save_checks(preset, checks)
            st.rerun()
    elif not checks and not problems:
        st.caption("No checks: every answer that comes back passes.")
    return checks, problems

"""What the Experiments page remembers, and the only writer of it: the cases table of each preset
(and the version of its editor's key), the running experiment, the last result and its
comparison with the run before it, the problems of the last import, notes shown once.

How a run works: `Run experiment` starts a playground.experiments.ExperimentRunner (plain worker
threads, no Streamlit call there); the page's progress fragment polls it and the first look
that finds it done triggers one full rerun (as playground.ui.common.live_view does for a
Batch), whose first act is `harvest()`. `Stop` stops the runner: requests in flight end at once
and every finished trial stays in the result.

Session keys (all start with "exp."). Widgets are drawn with widget_sync keys from the names
below; the cases editor is renewed (widget_sync.renew) when code replaces the table (an import,
a reload), since a data editor's value cannot be written.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import streamlit as st

from playground import settings
from playground.client.endpoint import Endpoint
from playground.client.schema import ChatRequest
from playground.client.token_limit import changes_in_field
from playground.experiments import (
    CaseImport,
    CasesFileError,
    Comparison,
    Experiment,
    ExperimentResult,
    ExperimentRunner,
    ExperimentRunSummary,
    ExperimentStore,
    cases_path,
    compare,
    load_cases,
    parse_cases,
    save_cases,
)
from playground.experiments.model import Case
from playground.experiments.validation import columns_read
from playground.presets import Check, Preset, PresetStore, read_variables
from playground.settings import database_target
from playground.ui import sidebar
from playground.ui.common import notices, widget_sync
from playground.ui.common.request_editor import RequestEditor
from playground.ui.common.request_sync import endpoint_of
from playground.ui.common.run_slot import RunSlot
from playground.ui.common.user import current_user, runs_owner
from playground.ui.playground import state as playground_state

PRESET = "exp.preset"
VARIANTS, MIN_VARIANTS, MAX_VARIANTS = "exp.variants", 1, 4
REPEATS = "exp.repeats"
ONLY_FAILURES = "exp.only_failures"
# the cell picker: a case, then one of its variants (one list of every cell was 4,000 options)
CELL_CASE, CELL_VARIANT, REPEAT = "exp.cell_case", "exp.cell_variant", "exp.cell_repeat"
UPLOAD = "exp.upload"
_TABLES = "exp.tables"  # preset name -> the cases its editor starts from
_RUNNING = "exp.running"
_RESULT, _COMPARISON = "exp.result", "exp.comparison"
_IMPORT_PROBLEMS = "exp.import_problems"
NOTICES = "experiments"  # the page's queue of notices (playground.ui.common.notices)
_HISTORY_CASES = "exp.history_cases"  # (preset, its request, the listed run ids) -> the cases read from them
# buttons and tables (their keys keep them apart from the other pages')
W_EXPORT_CSV = "exp.export_csv"
W_EXPORT_JSONL = "exp.export_jsonl"
W_SAVE_CASES = "exp.save_cases"
W_SAVE_CHECKS = "exp.save_checks"
HISTORY_RUN = "exp.history_run"
W_ADD_FROM_HISTORY = "exp.add_from_history"
W_STOP = "exp.stop"
W_RUN = "exp.run"
W_SUMMARY = "exp.summary"
W_MATRIX = "exp.matrix"
W_DELTAS = "exp.deltas"
W_CHANGES = "exp.changes"
W_BINS = "exp.bins"
W_MISTAKES = "exp.mistakes"
KEEP = "session"  # widgets keep their values across page switches (persist_state)


def variant_key(i: int, name: str) -> str:
    return f"exp.v{i}.{name}"


def run_view_key(case: int, variant: int, repeat: int) -> str:
    """The prefix of the widget keys of one cell's run view."""
    return f"exp.run.{case}.{variant}.{repeat}"


# --- presets and their cases -----------------------------------------------------------------


def presets() -> list[Preset]:
    return PresetStore().list()


def presets_folder() -> Path:
    """Where the presets are: the folder an experiment's `python` checks' files are read from."""
    return Path(PresetStore().folder).resolve()


def variables(preset: Preset) -> list[str]:
    return list(preset.defaults())


def _file_cases(preset: Preset) -> list[Case]:
    """The preset's cases file, or one row of its defaults (none when it has no default)."""
    path = cases_path(PresetStore().path_for(preset.name))
    if path.exists():
        try:
            loaded = load_cases(path, variables(preset), required=columns_read(preset.checks, preset.defaults()))
        except (OSError, CasesFileError) as error:
            note(f"Could not read {path.name}: {error}")
            return []
        if loaded.problems:
            note(f"{path.name}: " + "; ".join(loaded.messages))
        return loaded.cases
    defaults = {k: v for k, v in preset.defaults().items() if v}
    return [Case(values=defaults)] if defaults else []


def table(preset: Preset) -> list[Case]:
    """The cases the editor starts from for `preset` (its cases file the first time)."""
    tables = st.session_state.setdefault(_TABLES, {})
    if preset.name not in tables:
        tables[preset.name] = _file_cases(preset)
    return tables[preset.name]


def editor_key(preset: Preset) -> str:
    return widget_sync.key(_editor(preset))


def _editor(preset: Preset) -> str:
    return f"exp.cases.{preset.name}"


def replace_cases(preset: Preset, cases: list[Case]) -> None:
    """Code replaces the table: the editor is drawn under a new key (its old edits go)."""
    st.session_state.setdefault(_TABLES, {})[preset.name] = list(cases)
    widget_sync.renew(_editor(preset))


def reload_cases(preset: Preset) -> None:
    """Back to the preset's cases file (edits not saved go)."""
    st.session_state.setdefault(_TABLES, {}).pop(preset.name, None)
    widget_sync.renew(_editor(preset))


def save_cases_file(preset: Preset, cases: list[Case]) -> None:
    path = cases_path(PresetStore().path_for(preset.name))
    try:
        save_cases(path, cases)
    except OSError as error:
        note(f"Could not save {path.name}: {error.strerror or error}")
        return
    replace_cases(preset, cases)
    note(f"Saved {len(cases)} case(s) to {path.name}.", level="success")


def history_cases(preset: Preset, limit: int = 30) -> list[tuple[str, Case]]:
    """Past runs of the preset (newest first, at most `limit`) whose messages it made, each as a
    (label, case): the variables it was filled with; the expected answer left for the user.

    The page draws this on every run: one query lists the ids, and the runs themselves (each
    with its recorded stream) are read again only when that list or the preset changed."""
    try:
        runs = store().runs
        summaries = runs.list(preset=preset.name, limit=limit)
        seen = (preset.name, preset.request.model_dump_json(), tuple(s.id for s in summaries))
        cached = st.session_state.get(_HISTORY_CASES)
        if cached is not None and cached[0] == seen:
            return cached[1]
        found = []
        for summary in summaries:
            run = runs.get(summary.id)
            values = read_variables(preset.request, run.request) if run is not None else None
            if values is None:
                continue
            case = Case(values=values, note=f"from run {summary.id[:8]}")
            found.append((f"{summary.started_at:%Y-%m-%d %H:%M} · {case.label(60)}", case))
    except Exception as error:  # an unreadable history must not take the page down
        note(f"Could not read the history: {error}")
        return []
    st.session_state[_HISTORY_CASES] = (seen, found)
    return found


def add_case(preset: Preset, cases: list[Case], case: Case) -> None:
    """Append `case` to the table as it is now (edits not saved are kept)."""
    replace_cases(preset, [*cases, case])
    note(f"Added a case: {case.label(60)}.", level="success")


def import_file(preset: Preset, name: str, data: bytes) -> None:
    """Replace the table with the good rows of an uploaded file; the bad ones are listed."""
    try:
        imported: CaseImport = parse_cases(data, name, variables(preset),
                                           required=columns_read(preset.checks, preset.defaults()))
    except CasesFileError as error:
        st.session_state[_IMPORT_PROBLEMS] = [str(error)]
        return
    st.session_state[_IMPORT_PROBLEMS] = imported.messages
    if imported.cases:
        replace_cases(preset, imported.cases)
    note(f"Imported {len(imported.cases)} case(s) from {name}"
         + (f"; {len(imported.problems)} row(s) left out." if imported.problems else "."),
         level="warning" if imported.problems else "success")


def import_problems() -> list[str]:
    return st.session_state.get(_IMPORT_PROBLEMS, [])


# --- checks ----------------------------------------------------------------------------------


def checks_editor_key(preset: Preset) -> str:
    return widget_sync.key(_checks_editor(preset))


def _checks_editor(preset: Preset) -> str:
    return f"exp.checks.{preset.name}"


def save_checks(preset: Preset, checks: list[Check]) -> None:
    """Write `checks` into the preset's file (refused when the file changed since it was read)."""
    store = PresetStore(user=current_user())
    try:
        current, digest = store.load_with_hash(preset.name)
        store.save(current.model_copy(update={"checks": list(checks)}), overwrite=True, expected_hash=digest)
    except (OSError, ValueError) as error:  # a changed or broken file, a secret in it
        note(f"Could not save the checks: {error}")
        return
    widget_sync.renew(_checks_editor(preset))
    note(f"Saved {len(checks)} check(s) to {store.path_for(preset.name).name}.", level="success")


# --- endpoints ---------------------------------------------------------------------------------


endpoints = sidebar.endpoints_by_name


def default_endpoint_name() -> str:
    return sidebar.current_endpoint().name


def prices() -> settings.Prices:
    return settings.price_table(sidebar.secrets())


PLAYGROUND_SOURCE = "Playground request"  # a variant's source besides the presets
_PAGE_PRESET = "exp.page_preset"  # the page's preset when the variants were last drawn


def variant_sources(preset: Preset, presets: list[Preset]) -> list[str]:
    """What a variant can start from: the page's preset first, the other presets, and the
    Playground's working request when it has one."""
    names = [preset.name, *(p.name for p in presets if p.name != preset.name)]
    return names + ([PLAYGROUND_SOURCE] if playground_state.current_request() is not None else [])


def playground_request() -> ChatRequest | None:
    return playground_state.current_request()


def variant_editor(i: int) -> RequestEditor:
    """Variant i's request editor: its source's request with this variant's changes on top, its
    token limit in the field the variant's endpoint reads (issue 22)."""
    return RequestEditor(prefix=variant_key(i, ""), open_groups=False, show_model=True,
                         endpoint=lambda: endpoints().get(widget_sync.value(variant_key(i, "endpoint")) or ""))


def follow_page_preset(preset: str) -> None:
    """When the page's preset changes, the variants that took their prompt from the old one take
    it from the new one: a variant never runs a prompt the page no longer shows."""
    before = st.session_state.get(_PAGE_PRESET)
    st.session_state[_PAGE_PRESET] = preset
    if before is None or before == preset:
        return
    for i in range(MAX_VARIANTS):
        if widget_sync.value(variant_key(i, "source")) == before:
            widget_sync.write(variant_key(i, "source"), preset)


def variant_request(i: int, source: str, source_request: ChatRequest) -> tuple[ChatRequest, dict]:
    """Variant i's request and its changes from `source_request` (field -> value, REMOVED when
    left out). Its editor holds the source's request with the variant's changes on top. Another
    source picked starts afresh from its request; the same source's request changed since (the
    preset's file, the Playground's request edited) keeps the changes on top of the new one, and
    a change that no longer fits it is dropped (said once)."""
    editor = variant_editor(i)
    endpoint = endpoint_of(editor)
    if endpoint is not None:  # the source as this variant's endpoint is sent it: no limit shown twice
        source_request = endpoint.prepare(source_request)
    base_key = variant_key(i, "base")
    base_source, base = st.session_state.get(base_key, (None, None))
    current = editor.request()
    if current is None or base is None or base_source != source:
        editor.load(source_request)
    elif base != source_request:
        changes = current.changes_from(base)
        if endpoint is not None:
            changes = changes_in_field(changes, endpoint.token_limit_field)
        try:
            editor.load(source_request.with_changes(changes))
        except ValueError as error:  # ValidationError: e.g. a temperature the new request's model cannot take
            editor.load(source_request)
            note(f"Variant {i + 1}: its changes did not fit {source!r} and were dropped: {error}")
    st.session_state[base_key] = (source, source_request)
    request = editor.get()
    return request, request.changes_from(source_request)


# --- running -----------------------------------------------------------------------------------


@dataclass
class Running:
    """The running experiment, and the once-only claim of the redraw that shows its result."""

    runner: ExperimentRunner
    _claimed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def claim_final_redraw(self) -> bool:
        with self._lock:
            if self._claimed or not self.runner.done:
                return False
            self._claimed = True
            return True

    # what the page's run slot (playground.ui.common.run_slot) asks of what it holds
    @property
    def done(self) -> bool:
        return self.runner.done

    def cancel(self) -> None:
        self.runner.stop()

    def wait(self, timeout: float | None = None) -> object:
        return self.runner.wait(timeout)


RUN = RunSlot(_RUNNING)  # the experiment in flight


def store() -> ExperimentStore:
    return ExperimentStore(database_target())


def running() -> Running | None:
    return RUN.current()


def running_in(session_state: Mapping[str, Any]) -> Running | None:
    """The experiment a session's page started and is running (None: none), read from that
    session's state: st.session_state, or an AppTest's from outside the script run."""
    return session_state.get(_RUNNING)


def start(experiment: Experiment, named: dict[str, Endpoint]) -> None:
    st.session_state[_RESULT] = None
    st.session_state[_COMPARISON] = None
    runner = ExperimentRunner(experiment, named, default_endpoint=default_endpoint_name(), prices=prices())
    runner.result.user = current_user()  # recorded with the run and its Runs (before start() saves it)
    RUN.hold(Running(runner.start()))


stop = RUN.stop  # `Stop`: the cells in flight end now, keeping what came; no new ones start


def harvest() -> None:
    """Move a finished run into the page state with its comparison (top of every page run)."""
    current = RUN.take_finished()
    if current is None:
        return
    result = current.runner.result
    st.session_state[_RESULT] = result
    for problem in current.runner.errors:
        note(problem)
    st.session_state.pop(BASELINE_PICK, None)
    try:
        earlier = baseline_choices(result)
        default = next((run for run in earlier if run.status == "finished"), earlier[0] if earlier else None)
        baseline = store().get(default.id) if default is not None else None
    except Exception as error:  # an unreadable store must not hide the result on screen
        note(f"Could not read the earlier runs of this experiment: {error}")
        baseline = None
    _set_baseline(result, baseline)


BASELINE_PICK = "exp.baseline_pick"  # the earlier run the result is compared with (its id)
_CASE_COUNTS = "exp.case_counts"  # experiment run id -> its number of cases (read once)


BASELINE_WHOSE = "exp.baseline_whose"  # EVERYONE or MINE: whose earlier runs the picker lists (signed in)
EVERYONE, MINE = "Everyone", "Mine"


def baseline_choices(result: ExperimentResult) -> list[ExperimentRunSummary]:
    """The earlier runs of the same experiment, newest first (the result itself left out); only
    the signed-in user's when they chose Mine."""
    me = runs_owner()
    mine = me is not None and st.session_state.get(BASELINE_WHOSE) == MINE
    earlier = store().list(result.experiment.id, limit=20, user_email=me.email if mine else None)
    return [run for run in earlier if run.id != result.id]


def case_count(run_id: str) -> int | None:
    counts = st.session_state.setdefault(_CASE_COUNTS, {})
    if run_id not in counts:
        stored = store().get(run_id)
        counts[run_id] = len(stored.experiment.cases) if stored is not None else None
    return counts[run_id]


def _set_baseline(result: ExperimentResult, baseline: ExperimentResult | None) -> None:
    st.session_state[_COMPARISON] = (baseline, compare(baseline, result)) if baseline is not None else None
    if baseline is not None:
        st.session_state[BASELINE_PICK] = baseline.id


def follow_whose() -> None:
    """Everyone/Mine changed: a baseline no longer listed gives way to the newest listed run."""
    current = result()
    if current is None:
        return
    listed = baseline_choices(current)
    if listed and st.session_state.get(BASELINE_PICK) not in {run.id for run in listed}:
        _set_baseline(current, store().get(listed[0].id))


def choose_baseline() -> None:
    """The Compare against picker's on_change: the comparison is made again with that run."""
    current, picked = result(), st.session_state.get(BASELINE_PICK)
    if current is not None and picked:
        _set_baseline(current, store().get(picked))


def result() -> ExperimentResult | None:
    return st.session_state.get(_RESULT)


def comparison() -> tuple[ExperimentResult, Comparison] | None:
    return st.session_state.get(_COMPARISON)


def stored_run(run_id: str):
    return store().runs.get(run_id)


# --- notes -------------------------------------------------------------------------------------


def note(message: str, level: str = "warning") -> None:
    """Say `message` (plain text) once, at the top of the next page run, as st.<level>."""
    notices.say(NOTICES, level, message)

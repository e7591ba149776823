"""Experiments: one preset over a table of cases and 1 to 4 variants, every answer graded by the
preset's checks. This module draws the page:

- the preset, its cases (an editable table; import, export, save beside the preset), its checks;
- the variants (playground.ui.experiments.variants: each a request editor over its source) and
  the repeats; Run experiment and Stop;
- while running, a progress fragment (it polls the runner and draws the matrix as cells finish;
  the first look that finds it done triggers the one rerun that shows the result);
- the result: the matrix, the per-variant summary, the change since the run before, calibration,
  and one cell's run in the same view the Playground shows.

What the page remembers is in playground.ui.experiments.state; the tables in .tables.
"""

from __future__ import annotations

import time

import altair as alt
import pandas as pd
import streamlit as st

from playground.experiments import (
    Calibration,
    Experiment,
    ExperimentResult,
    ExperimentRunSummary,
    Progress,
    Variant,
    calibration,
    cases_to_csv,
    cases_to_jsonl,
    cells,
    summarize,
)
from playground.experiments.model import Case
from playground.presets import Preset, slugify
from playground.textsafe import escape_markdown
from playground.ui.common import live_view, notices, run_view, widget_sync
from playground.ui.common.user import runs_owner
from playground.ui.experiments import checks_form, state, tables
from playground.ui.experiments.variants import variants_section

REDRAW_MATRIX_S = 0.5  # while running, the matrix is redrawn at most this often


def render() -> None:
    state.harvest()
    st.title("Experiments")
    st.caption("One preset over a table of cases and 1 to 4 variants; every answer graded by the preset's checks.")
    presets = {preset.name: preset for preset in state.presets()}
    if not presets:
        st.info("No presets yet: save one from the Playground (or add a file to the presets folder) to "
                "run it over a table of cases.")
        return
    busy = state.running() is not None
    names = list(presets)
    widget_sync.keep_valid(state.PRESET, names, names[0])
    st.selectbox("Preset", names, key=widget_sync.key(state.PRESET), disabled=busy, persist_state=state.KEEP)
    preset = presets[widget_sync.value(state.PRESET)]
    if preset.description:
        st.caption(escape_markdown(preset.description))
    notices.show(state.NOTICES)
    cases = cases_section(preset, busy)
    checks, check_problems = checks_form.render(preset, busy)
    variants, variant_problems = variants_section(preset, presets, busy)
    controls(preset.model_copy(update={"checks": checks}), cases, variants, busy, check_problems, variant_problems)
    current = state.running()
    with st.container():
        if current is not None:
            live_view.replace_stale()
            live_progress(current)
        elif (result := state.result()) is not None:
            with st.container():
                show_result(result)


# --- cases --------------------------------------------------------------------------------------


def cases_section(preset: Preset, busy: bool) -> list[Case]:
    st.subheader("Cases")
    variables = state.variables(preset)
    st.caption("One row per case: a value for each of the prompt's variables (empty: the preset's default), "
               "and optionally the expected answer (checks read it as {{expected}}) and a note.")
    frame = tables.cases_frame(state.table(preset), variables)
    config = {name: st.column_config.TextColumn(name) for name in frame.columns}
    edited = st.data_editor(frame, num_rows="dynamic", hide_index=True, key=state.editor_key(preset),
                            column_config=config, disabled=busy, width="stretch")
    cases = tables.frame_cases(pd.DataFrame(edited), variables)
    upload, export = st.columns([3, 2], vertical_alignment="bottom")
    with upload:
        st.file_uploader("Import cases (CSV or JSONL; replaces the table)", type=["csv", "jsonl", "ndjson"],
                         key=state.UPLOAD, on_change=_on_upload, args=(preset,), disabled=busy)
    with export:
        slug = slugify(preset.name)
        a, b, c = st.columns(3)
        a.download_button("CSV", cases_to_csv(cases), file_name=f"{slug}.cases.csv", mime="text/csv",
                          on_click="ignore", key=state.W_EXPORT_CSV, width="stretch", icon=":material/download:")
        b.download_button("JSONL", cases_to_jsonl(cases), file_name=f"{slug}.cases.jsonl",
                          mime="application/jsonl", on_click="ignore", key=state.W_EXPORT_JSONL, width="stretch",
                          icon=":material/download:")
        if c.button("Save", key=state.W_SAVE_CASES, disabled=busy, width="stretch",
                    help=f"Write the table to {slug}.cases.csv beside the preset (reviewed in git with it)."):
            state.save_cases_file(preset, cases)
            st.rerun()
    add_from_history(preset, cases, busy)
    problems = state.import_problems()
    if problems:
        with st.expander(f"{len(problems)} row(s) not imported", expanded=True):
            st.markdown("\n".join(f"- {escape_markdown(problem)}" for problem in problems))
    return cases


def add_from_history(preset: Preset, cases: list[Case], busy: bool) -> None:
    """A past run of this preset (from the Playground, or an experiment) becomes a case: the
    values its variables were filled with."""
    with st.expander("Add from History"):
        found = state.history_cases(preset)
        if not found:
            st.caption("No run of this preset in the history yet: open it in the Playground, fill its variables "
                       "and run it; the values it was run with can then be added here as a case.")
            return
        options = list(range(len(found)))
        widget_sync.keep_valid(state.HISTORY_RUN, options, 0)
        st.selectbox("A past run of this preset", options, format_func=lambda i: found[i][0],
                     key=widget_sync.key(state.HISTORY_RUN), disabled=busy)
        known = {case.key for case in cases}
        case = found[widget_sync.value(state.HISTORY_RUN)][1]
        if case.key in known:
            st.caption("The table already has a case with these values.")
        if st.button("Add as a case", key=state.W_ADD_FROM_HISTORY, disabled=busy or case.key in known):
            state.add_case(preset, cases, case)
            st.rerun()


def _on_upload(preset: Preset) -> None:
    uploaded = st.session_state.get(state.UPLOAD)
    if uploaded is not None:
        state.import_file(preset, uploaded.name, uploaded.getvalue())


# --- variants and the run ----------------------------------------------------------------------


def controls(preset: Preset, cases: list[Case], variants: list[Variant], busy: bool,
             check_problems: list[str], variant_problems: list[str]) -> None:
    """`preset` carries the checks the checks table holds (saved or not): they grade this run."""
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    repeats = int(st.session_state.get(state.REPEATS) or 1)
    total = len(cases) * len(variants) * repeats
    left.caption(f"{len(cases)} case(s) × {len(variants)} variant(s) × {repeats} repeat(s) = {total} request(s).")
    if busy:
        right.button("Stop", key=state.W_STOP, on_click=state.stop, width="stretch")
        return
    if not right.button("Run experiment", key=state.W_RUN, type="primary", width="stretch"):
        return
    if not cases:
        st.error("Add at least one case to the table first.")
        return
    if check_problems:
        st.error("Fix the checks first: " + escape_markdown("; ".join(check_problems)))
        return
    if variant_problems:
        st.error("Fix the variants first: " + escape_markdown("; ".join(variant_problems)))
        return
    try:
        experiment = Experiment.from_preset(preset, cases, variants, repeats=repeats)
        # `python` checks run files from the preset's own folder, as the CLI's do
        experiment = experiment.model_copy(update={"folder": str(state.presets_folder())})
        state.start(experiment, state.endpoints())
    except ValueError as error:  # a variant's endpoint gone since drawn, an invalid experiment
        st.error(escape_markdown(str(error)))
        return
    st.rerun()  # draw the page as running: Stop shown, the table and pickers locked


# --- while running ------------------------------------------------------------------------------


def progress_text(progress: Progress) -> str:
    parts = [f"{progress.done} of {progress.total} done", f"{progress.elapsed_s:.1f} s elapsed"]
    if progress.remaining_s is not None and progress.done < progress.total:
        parts.append(f"about {progress.remaining_s:.0f} s left")
    parts.append(f"{progress.tokens:,} tokens")
    if progress.cost is not None:
        parts.append(f"${progress.cost:.4f}")
    parts.append(f"{progress.passed} passed, {progress.failed} failed, {progress.errors} errors, "
                 f"{progress.unchecked} unchecked")
    return " · ".join(parts)


@st.fragment(parallel=True)
def live_progress(current: state.Running) -> None:
    """The progress bar and the matrix so far, redrawn while the runner works (as
    live_view.live_progress does for a Batch); the first look that finds it done reruns the page."""
    runner = current.runner
    bar = st.progress(0.0, text="Starting...")
    box = st.empty()
    shown, drawn_at = -1, 0.0
    while not runner.done:
        progress = runner.progress()
        bar.progress(progress.fraction, text=progress_text(progress))
        if progress.done != shown and time.monotonic() - drawn_at >= REDRAW_MATRIX_S:
            partial = ExperimentResult(experiment=runner.experiment, id=runner.result.id, trials=runner.trials())
            box.dataframe(tables.matrix_frame(partial), hide_index=True)
            shown, drawn_at = progress.done, time.monotonic()
        time.sleep(live_view.POLL_S * 2)
    bar.progress(1.0, text=progress_text(runner.progress()))
    if current.claim_final_redraw():
        st.rerun()


# --- the result ---------------------------------------------------------------------------------


def show_result(result: ExperimentResult) -> None:
    done, total = len(result.trials), result.experiment.total
    status = "Stopped" if result.status == "stopped" else "Finished"
    st.subheader("Results")
    st.caption(f"{status}: {done} of {total} request(s) · run {result.id[:8]} of experiment "
               f"{escape_markdown(result.experiment.id)}")
    compared = state.comparison()
    matrix(result, compared[1] if compared else None)
    unchecked = sum(row.unchecked for row in summarize(result))
    if unchecked:
        st.warning(f"{unchecked} answer(s) unchecked: no check applied to them (a blank expected value, no price "
                   "for max_cost). They are not passes.")
    shaky = tables.flaky_frame(result)
    if len(shaky):
        st.markdown(f"**Flaky cases** ({len(shaky)}: some repeats passed, some did not)")
        st.dataframe(shaky, hide_index=True)
    st.markdown("**Per variant**")
    st.dataframe(tables.summary_frame(result), hide_index=True, key=state.W_SUMMARY,
                 column_config={"pass rate": st.column_config.NumberColumn(format="percent"),
                                "best": st.column_config.TextColumn(help="Highest pass rate, then lowest cost, "
                                                                    "then lowest mean latency."),
                                "mean latency (s)": st.column_config.NumberColumn(
                                    help="From each request's send to its answer's end."),
                                "mean queued (s)": st.column_config.NumberColumn(
                                    help="From the run's start to each request's send: cells wait for a free "
                                         "slot (the endpoint's concurrency). Not part of the latency.")})
    if compared:
        comparison_section(*compared)
    calibration_section(result)
    cell_section(result)


def matrix(result: ExperimentResult, comparison) -> None:
    st.markdown("**Matrix**")
    only = st.checkbox("Only failures", key=state.ONLY_FAILURES, persist_state=state.KEEP)
    st.caption("✅ pass · ❌ fail · ⚠️ error · ❔ unchecked (no check applied) · with repeats, passes/repeats · "
               "then the most frequent answer, its score and the grader's confidence (scored checks), mean latency "
               "and completion tokens"
               + (" · 🔴 regressed, 🟢 fixed, 🆕 new since the run compared against" if comparison is not None else ""))
    st.dataframe(tables.matrix_frame(result, only_failures=bool(only), comparison=comparison), hide_index=True,
                 key=state.W_MATRIX, placeholder="")


def baseline_label(run: ExperimentRunSummary) -> str:
    cases = state.case_count(run.id)
    return (f"{run.started_at:%Y-%m-%d %H:%M} UTC · {run.status} · "
            + (f"{cases} case(s), " if cases is not None else "") + f"{run.done} of {run.total} cell(s) done, "
            f"{run.passed} passed · {run.id[:8]}" + (f" · by {run.user_name}" if run.user_name else ""))


def comparison_section(baseline: ExperimentResult, comparison) -> None:
    st.markdown("**Against an earlier run**")
    result = state.result()
    if runs_owner() is not None:  # signed in: whose earlier runs to compare with
        st.segmented_control("Runs of", [state.EVERYONE, state.MINE], default=state.EVERYONE,
                             key=state.BASELINE_WHOSE, persist_state=state.KEEP, on_change=state.follow_whose)
    earlier = state.baseline_choices(result) if result is not None else []
    labels = {run.id: baseline_label(run) for run in earlier}
    if labels:
        st.selectbox("Compare against", list(labels), key=state.BASELINE_PICK, format_func=labels.get,
                     on_change=state.choose_baseline,
                     help="Any earlier run of this experiment: the newest finished one is chosen first (a stopped "
                          "run, or one on another case set, compares fewer cells).")
    st.caption(f"Run {baseline.id[:8]} of {baseline.started:%Y-%m-%d %H:%M} UTC: "
               f"{len(comparison.regressions)} regression(s), {len(comparison.fixes)} fix(es), "
               f"{len(comparison.changed_answers)} changed answer(s) over {comparison.matched_cells} matched cell(s)"
               + (f"; {comparison.new_cases} new case(s)" if comparison.new_cases else "")
               + (f"; {len(comparison.new_failures)} new cell(s) failing" if comparison.new_failures else "")
               + (f"; {comparison.dropped_cases} case(s) dropped" if comparison.dropped_cases else "") + ".")
    st.dataframe(tables.deltas_frame(comparison), hide_index=True, key=state.W_DELTAS,
                 column_config={"pass rate Δ": st.column_config.NumberColumn(format="percent")})
    if comparison.regressions or comparison.fixes:
        st.dataframe(tables.changes_frame(comparison), hide_index=True, key=state.W_CHANGES)


def calibration_section(result: ExperimentResult) -> None:
    figures = calibration(result)
    if figures is None:
        return
    st.markdown("**Calibration**")
    st.markdown(escape_markdown(figures.sentence))
    if figures.never_right:
        return
    st.metric("Expected calibration error", f"{figures.ece:.3f}", help="0 is perfect: confidence equals the "
              "share of right answers in every bin.")
    bins = tables.bins_frame(figures)
    st.altair_chart(reliability_chart(figures), width="stretch")
    st.dataframe(bins, hide_index=True, key=state.W_BINS,
                 column_config={"mean confidence": st.column_config.NumberColumn(format="percent"),
                                "share correct": st.column_config.NumberColumn(format="percent")})
    if figures.confident_mistakes:
        st.caption(f"Wrong with confidence above 0.8: {len(figures.confident_mistakes)}")
        st.dataframe(tables.mistakes_frame(result, figures), hide_index=True, key=state.W_MISTAKES)


def reliability_chart(figures: Calibration) -> alt.LayerChart:
    """The reliability diagram: per confidence bin, the share answered right (a bar, its count
    above it) against the diagonal a perfectly calibrated model would follow. Vega-Lite draws it
    in the page, from Streamlit's own bundle (no outside host)."""
    rows = [{"from": b.low, "to": b.high, "answers": b.count, "share correct": b.share_correct,
             "mean confidence": b.mean_confidence} for b in figures.bins if b.count]
    data = alt.Data(values=rows)
    x = alt.X("from:Q", title="confidence", scale=alt.Scale(domain=[0, 1]))
    y = alt.Y("share correct:Q", title="share correct", scale=alt.Scale(domain=[0, 1]),
              axis=alt.Axis(format="%"))
    tooltip = [alt.Tooltip("from:Q", title="from", format=".1f"), alt.Tooltip("to:Q", title="to", format=".1f"),
               alt.Tooltip("answers:Q"), alt.Tooltip("mean confidence:Q", format=".0%"),
               alt.Tooltip("share correct:Q", format=".0%")]
    bars = alt.Chart(data).mark_rect(opacity=0.8).encode(x=x, x2="to:Q", y=y, y2=alt.datum(0), tooltip=tooltip)
    counts = alt.Chart(data).mark_text(dy=-6).encode(x=alt.X("middle:Q"), y=y, text="answers:Q").transform_calculate(
        middle="(datum.from + datum.to) / 2")
    diagonal = alt.Chart(alt.Data(values=[{"c": 0.0}, {"c": 1.0}])).mark_line(strokeDash=[4, 4], color="grey").encode(
        x="c:Q", y="c:Q")
    return (bars + counts + diagonal).properties(height=260, title="Reliability: share correct per confidence bin "
                                                                  "(dashed: perfectly calibrated)")


def cell_section(result: ExperimentResult) -> None:
    found = cells(result)
    if not found:
        return
    st.markdown("**One cell**")
    labels = tables.variant_labels(result)
    cases = result.experiment.cases
    case_options = sorted({case for case, _ in found})
    widget_sync.keep_valid(state.CELL_CASE, case_options, case_options[0])
    pick_case, pick_variant = st.columns([3, 2])
    pick_case.selectbox("Case", case_options, key=widget_sync.key(state.CELL_CASE),
                        format_func=lambda i: f"Case {i + 1} ({cases[i].label(40)})")
    case = widget_sync.value(state.CELL_CASE)
    variant_options = sorted(variant for each, variant in found if each == case)
    widget_sync.keep_valid(state.CELL_VARIANT, variant_options, variant_options[0])
    pick_variant.selectbox("Variant", variant_options, key=widget_sync.key(state.CELL_VARIANT),
                           format_func=lambda v: labels[v])
    cell = found[(case, widget_sync.value(state.CELL_VARIANT))]
    trials = list(cell.trials)
    if len(trials) > 1:
        repeats = [t.repeat for t in trials]
        widget_sync.keep_valid(state.REPEAT, repeats, repeats[0])
        st.selectbox("Repeat", repeats, format_func=lambda r: f"Repeat {r + 1}", key=widget_sync.key(state.REPEAT))
        trial = next(t for t in trials if t.repeat == widget_sync.value(state.REPEAT))
        groups = cell.answers
        if groups:
            st.caption("Answers: " + escape_markdown("; ".join(f"{g.text!r} ×{g.count}" for g in groups)))
    else:
        trial = trials[0]
    st.markdown(f"{tables.MARKS.get(trial.status, '')} **{trial.status}**"
                + (f": {escape_markdown(trial.reason)}" if trial.reason else ""))
    if trial.checks:
        if trial.score is not None:
            st.caption(f"Score {trial.score:.2f} (the checks' weighted mean)")
        st.dataframe(tables.checks_frame(trial), hide_index=True)
    run = state.stored_run(trial.run_id) if trial.run_id else None
    if run is None:
        st.caption("No stored run for this cell (it was never sent, or the history could not be saved).")
        return
    run_view.show_run(run, key=state.run_view_key(trial.case, trial.variant, trial.repeat))

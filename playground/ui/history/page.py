"""History: past runs, newest first, filtered and paged in SQL (never all loaded); open one to
see it, rerun it, send it to Compare, load it into the Playground, export it, delete it."""

from __future__ import annotations

from datetime import timezone

import pandas as pd
import streamlit as st

from playground.client.run import Run
from playground.experiments import ExperimentStore
from playground.runs.store import RunStore, RunSummary
from playground.textsafe import escape_markdown
from playground.ui import sidebar
from playground.ui.common import branching, live_view, notices, run_view, widget_sync
from playground.ui.common.user import runs_owner
from playground.ui.compare import state as compare_state
from playground.ui.history import state
from playground.ui.playground import state as playground_state

PAGE_SIZE = 25
COUNT_CAP = 1000  # the pager counts this far ("of 1,000+"): an exact count of a common word's runs reads them all
KEEP = "session"  # filters keep their values across page switches
COMPARE_PAGE = "pages/compare.py"
PLAYGROUND_PAGE = "pages/playground.py"
LIST_COLUMNS = ["started (UTC)", "status", "model", "prompt", "answer", "tokens", "latency (s)", "endpoint", "preset",
                "id"]
# Widths that fit the table beside the sidebar in a 1440 px window (about 980 px); the id stays
# in the frame (the row picked is found by it) but not on screen: the opened run shows it.
LIST_CONFIG = {
    "started (UTC)": st.column_config.TextColumn(width=145),
    "status": st.column_config.TextColumn(width=65, help="ok, failed (an error from the server or the connection), "
                                          "partial (cut off) or stopped (by you: the text up to there)."),
    "model": st.column_config.TextColumn(width=110),
    "prompt": st.column_config.TextColumn(width=140, help="The first words of the last user message."),
    "answer": st.column_config.TextColumn(width=175, help="The answer's start, or why the run failed."),
    "tokens": st.column_config.NumberColumn(width=65, help="Prompt + completion, as the server counted them."),
    "latency (s)": st.column_config.NumberColumn(format="%.2f", width=85,
                                                 help="From sending the request to the last byte."),
    "endpoint": st.column_config.TextColumn(width=95),
    "preset": st.column_config.TextColumn(width=60),
}
LIST_SHOWN = [column for column in LIST_COLUMNS if column != "id"]
SOURCE_LABELS = {state.ANY: state.ANY, "playground": "Playground", "compare": "Compare", "repeat": "Repeat",
                 "experiment": "Experiment", "cli": "CLI", "branch": "Branch"}  # "Came from", as the pages are named


# --- pure helpers --------------------------------------------------------------------------


def export_json(run: Run) -> str:
    """The whole Run as one JSON document: request, answer, usage, timings, raw chunks with their
    arrival times. Runs hold an endpoint's name, never its key."""
    return run.model_dump_json(indent=2)


def list_frame(rows: list[RunSummary]) -> pd.DataFrame:
    """One row per run: what happened (status), what was asked and answered, its size and time.
    Unknown numbers stay unknown (the table shows them empty), never a made-up 0."""
    frame = pd.DataFrame([
        {
            "started (UTC)": row.started_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            "status": row.status,
            "model": row.model,
            "prompt": row.prompt_preview,
            "answer": answer_cell(row),
            "tokens": row.total_tokens,
            "latency (s)": row.total_s,
            "endpoint": row.endpoint,
            "preset": row.preset or "",
            "id": row.id,
        }
        for row in rows
    ], columns=LIST_COLUMNS)
    frame["tokens"] = frame["tokens"].astype("Int64")
    return frame


def answer_cell(row: RunSummary) -> str:
    """The answer's start; for a failed run without one, the server's own words about why."""
    answer = " ".join((row.text_preview or "").split())[:120]
    if answer or row.error_kind is None:
        return answer
    code = f" {row.error_status}" if row.error_status else ""
    return f"error{code}: {row.error_message or row.error_kind}"[:120]


# --- drawing -------------------------------------------------------------------------------


def render() -> None:
    state.harvest()
    st.title("History")
    st.caption("Every run, newest first: the Playground's, Compare's, reruns; an experiment's cells under their "
               "experiment run.")
    notices.show(state.NOTICES)
    runs = state.store()
    filter_bar(runs)
    filters = state.filters()
    total = runs.count(**filters, cap=COUNT_CAP)
    capped = total > COUNT_CAP  # more than the pager counts: it pages on while pages are full
    pages = max(1, -(-total // PAGE_SIZE))
    page = state.page_number(pages if not capped else 10**9)
    rows = runs.list(**filters, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    if not rows:
        filtered = any(filters.values())
        st.caption("No runs match." if filtered else "No runs yet: run something in the Playground.")
    else:
        first, last = page * PAGE_SIZE + 1, page * PAGE_SIZE + len(rows)
        left, middle, right = st.columns([1, 3, 1], vertical_alignment="center")
        left.button("Newer", key="hist.newer", on_click=state.turn, args=(-1,), disabled=page == 0,
                    icon=":material/chevron_left:")
        middle.caption(f"Runs {first}-{last} of {COUNT_CAP:,}+ · page {page + 1}" if capped
                       else f"Runs {first}-{last} of {total} · page {page + 1} of {pages}")
        last_page = len(rows) < PAGE_SIZE if capped else page >= pages - 1
        right.button("Older", key="hist.older", on_click=state.turn, args=(1,), disabled=last_page,
                     icon=":material/chevron_right:")
        state.show_ids([row.id for row in rows])
        st.dataframe(list_frame(rows), hide_index=True, key=state.TABLE, on_select=state.on_table_select,
                     selection_mode="multi-row", placeholder="", column_config=LIST_CONFIG, column_order=LIST_SHOWN)
        selection_bar()
        labels = {row.id: f"{row.started_at:%Y-%m-%d %H:%M:%S} · {row.model} · {(row.text_preview or '')[:50]}"
                  for row in rows}
        opened = state.opened()
        options = [None, *labels]
        if opened and opened not in labels:
            options.append(opened)  # keep an opened run on screen while paging
        widget_sync.write(state.PICK, opened if opened in options else None)  # follows what is open
        st.selectbox("Open a run", options, key=widget_sync.key(state.PICK),
                     format_func=lambda i: "(choose a run)" if i is None else labels.get(i, f"run {i[:8]}"),
                     on_change=state.on_pick,
                     placeholder="Pick a run, or click its row in the table",
                     help="Or click a row of the table.")
    current = state.rerun_in_flight()
    with st.container():
        if current is not None:
            st.subheader("Rerunning...")
            st.button("Stop generating", key="hist.stop", on_click=state.stop)
    live_view.live_text("history", current)
    with st.container():
        if current is not None:
            live_view.replace_stale()
            live_view.live_output(current, 0, place="history")
            return
        opened = state.opened()
        run = runs.get(opened) if opened else None
        if opened and run is None:
            state.open_run(None)
            st.warning("That run is no longer in the history.")
        elif run is not None:
            with st.container():
                show_opened(run)


def filter_bar(runs: RunStore) -> None:
    a, b, c, d = st.columns(4)
    for column, name, label in ((a, "endpoint", "Endpoint"), (b, "model", "Model"), (c, "preset", "Preset"),
                                (d, "source", "Came from")):
        choices = runs.distinct(name)  # the values in use, from one SELECT DISTINCT
        with column:
            if choices:
                options = [state.ANY, *choices]
                state.keep_filter_valid(name, options)
                shown = (lambda v: SOURCE_LABELS.get(v, v)) if name == "source" else str
                st.selectbox(label, options, key=state.filter_key(name), on_change=state.first_page,
                             persist_state=KEEP, format_func=shown)
            else:
                st.text_input(label, key=state.filter_key(name), on_change=state.first_page, placeholder="any",
                              persist_state=KEEP)
    if runs_owner() is not None:  # signed in: whose runs (everyone's, as without login, by default)
        st.segmented_control("Runs of", [state.EVERYONE, state.MINE], default=state.EVERYONE, key=state.WHOSE,
                             on_change=state.first_page, persist_state=KEEP)
    experiment_cells(runs)
    d, e, f = st.columns([1, 1, 2])
    d.date_input("From (UTC)", value=None, key=state.SINCE, on_change=state.first_page, persist_state=KEEP)
    e.date_input("To (UTC)", value=None, key=state.UNTIL, on_change=state.first_page, persist_state=KEEP)
    f.text_input("Search", key=state.SEARCH, on_change=state.first_page,
                 placeholder="words in the prompt, the answer or the feedback", persist_state=KEEP)


def experiment_cells(runs: RunStore) -> None:
    """Experiment cells are many and alike: hidden from the list unless one experiment run's are asked for."""
    experiment_runs = ExperimentStore(runs).list(limit=30)
    if not experiment_runs:
        return
    # the id too: two runs of one experiment in one minute must not share a label (Streamlit
    # matches a selectbox's choice by its label, so the second could not be picked)
    labels = {run.id: f"{run.name} · {run.started_at:%Y-%m-%d %H:%M} · {run.done} cell(s) · {run.id[:8]}"
              for run in experiment_runs}
    state.keep_cells_valid(list(labels))
    st.selectbox("Experiment cells", [None, *labels], key=state.CELLS, on_change=state.first_page,
                 format_func=lambda i: "Hidden (choose an experiment run to list its cells)" if i is None
                 else labels[i], help="The runs an experiment made, one per cell, listed under their experiment run.")


def selection_bar() -> None:
    """What can be done with the ticked rows: a cases file for Experiments."""
    chosen = state.selected()
    if not chosen:
        st.caption("Tick rows to make a cases file of them (their variables, the answer as expected).")
        return
    made = state.cases_file(chosen)
    left, right = st.columns([1, 2], vertical_alignment="center")
    if isinstance(made, str):
        left.button("Make a cases file", key="hist.cases_disabled", disabled=True)
        right.caption(escape_markdown(made))
        return
    name, data, note = made
    left.download_button("Make a cases file", data=data, file_name=name, mime="text/csv", on_click="ignore",
                         key="hist.cases", icon=":material/table_view:",
                         help="Their variable values, and each answer as expected: Experiments imports it.")
    right.caption(escape_markdown(f"{len(chosen)} run(s) selected → {name}. {note}"))


def feedback(run: Run) -> None:
    """The reader's score, comment and tags: saved with the run, searchable."""
    state.show_feedback(run.id)
    with st.expander("Feedback", icon=":material/rate_review:"):
        st.feedback("stars", key=widget_sync.key(state.feedback_key("score")))
        st.text_area("Comment", key=widget_sync.key(state.feedback_key("comment")), height=68)
        st.text_input("Tags (comma separated)", key=widget_sync.key(state.feedback_key("tags")))
        st.button("Save feedback", key="hist.save_feedback", on_click=state.save_feedback, args=(run.id,))


def show_opened(run: Run) -> None:
    st.divider()
    started = run.started_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    st.subheader(f"Run {run.id[:8]}")
    st.caption(escape_markdown(f"{started} · {run.endpoint} · {run.request.model}"
                               + (f" · preset {run.preset}" if run.preset else "")))
    actions = st.container(horizontal=True, gap="small")
    actions.button("Rerun", key="hist.rerun", on_click=state.rerun, args=(run.id,), icon=":material/replay:",
                   help="Send the same request again (to the same endpoint when it is still configured).")
    to_compare = actions.button("Send to Compare", key="hist.to_compare", icon=":material/compare_arrows:")
    to_playground = actions.button("Load into Playground", key="hist.to_playground", icon=":material/chat:")
    actions.download_button("Export JSON", data=export_json(run), file_name=f"run-{run.id}.json",
                            mime="application/json", on_click="ignore", key="hist.export", icon=":material/download:",
                            help="Request, response, timings and the raw chunks with their arrival times.")
    actions.button("Delete", key="hist.delete", icon=":material/delete:",
                   on_click=state.ask_delete, args=(run.id,))
    if state.confirming(run.id):
        with st.container(border=True):
            st.warning("Delete this run from the history for good?")
            yes, no = st.columns(2)
            yes.button("Yes, delete it", key="hist.delete_yes", type="primary", on_click=state.delete, args=(run.id,))
            no.button("Cancel", key="hist.delete_no", on_click=state.ask_delete, args=(None,))
    if to_compare:
        compare_state.send_to_compare([run.id])
        st.switch_page(COMPARE_PAGE)
    if to_playground:
        load_into_playground(run)
        st.switch_page(PLAYGROUND_PAGE)
    branching.show_family(run)  # where a branch came from, and the branches of this run
    feedback(run)
    run_view.show_run(run, key=f"hist_{run.id[:8]}")
    with st.expander("Request"):
        st.json(run.request.to_wire())
    with st.expander(f"Raw stream ({len(run.chunks)} chunks, with arrival times)"):
        if run.chunks:
            st.dataframe(pd.DataFrame([{"t (s)": chunk.t, "data": chunk.data} for chunk in run.chunks]),
                         hide_index=True, key="hist.chunks",
                         column_config={"t (s)": st.column_config.NumberColumn(format="%.4f")})
        else:
            st.caption("No chunks recorded (not streamed).")


def load_into_playground(run: Run) -> None:
    """Make the run's request the Playground's working request (its page redraws its views)."""
    playground_state.load_past_request(run.request)
    sidebar.choose(run.endpoint, run.request.model)

"""What the History page remembers, and the only writer of it: the filters and the page of the
list, the run opened, a delete waiting for its confirmation, a rerun in flight, a one-time notice.
Widgets use the keys named here; callbacks are the functions below."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import streamlit as st

from playground.experiments.cases import cases_from_runs, cases_to_csv
from playground.presets import PresetStore, slugify, variables_in
from playground.runs.batch import Batch
from playground.runs.store import default_store
from playground.ui import sidebar
from playground.ui.common import notices, widget_sync
from playground.ui.common.run_slot import RunSlot
from playground.ui.common.user import runs_owner

ANY = "(any)"
FILTERS = ("endpoint", "model", "preset", "source")  # the select/text filters; their keys are filter_key(name)
CELLS = "hist.cells"  # None: experiment cells hidden; an experiment run's id: only its cells listed
SELECTED = "hist.selected"  # the ids of the rows ticked in the table (a cases file is made of them)
FEEDBACK = "hist.feedback"  # prefix of the opened run's feedback widgets (score, comment, tags)
SINCE, UNTIL, SEARCH = "hist.since", "hist.until", "hist.search"
WHOSE = "hist.whose"  # EVERYONE or MINE: offered when someone is signed in (ui.common.user)
EVERYONE, MINE = "Everyone", "Mine"
PAGE = "hist.page"
PAGE_IDS = "hist.page_ids"  # the ids of the rows on screen, for the table's selection
TABLE = "hist.table"
PICK = "hist.pick"
OPEN = "hist.open"
CONFIRM = "hist.confirm"  # the id of a run whose Delete waits for "Yes, delete it"
BATCH = "hist.batch"  # a rerun in flight (a one-item Batch in RERUN)
RERUN = RunSlot(BATCH)
NOTICES = "history"  # the page's queue of notices (playground.ui.common.notices)

store = default_store


def filter_key(name: str) -> str:
    return f"hist.{name}"


def day_bounds(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """UTC datetimes for a day range: from the start of `since` to the end of `until`."""
    start = datetime.combine(since, time.min, tzinfo=timezone.utc) if since else None
    end = datetime.combine(until, time.min, tzinfo=timezone.utc) + timedelta(days=1) if until else None
    return start, end


def filters() -> dict[str, Any]:
    state = st.session_state
    since, until = day_bounds(state.get(SINCE), state.get(UNTIL))
    chosen = {name: state.get(filter_key(name)) for name in FILTERS}
    me = runs_owner()
    mine = me is not None and state.get(WHOSE) == MINE
    cells = state.get(CELLS)
    listed = {"experiment_run": cells} if cells else (
        {} if chosen.get("source") == "experiment" else {"hide_source": "experiment"})
    return {
        **listed,
        **{name: value for name, value in chosen.items() if value and value != ANY},
        "since": since,
        "until": until,
        "search": (state.get(SEARCH) or "").strip() or None,
        **({"user_email": me.email} if mine else {}),
    }


def keep_filter_valid(name: str, options: list[str]) -> None:
    """A filter whose value is no longer among its options (the last such run deleted) shows any."""
    if st.session_state.get(filter_key(name)) not in options:
        st.session_state[filter_key(name)] = ANY


def first_page() -> None:
    st.session_state[PAGE] = 0


def turn(step: int) -> None:
    st.session_state[PAGE] = max(0, st.session_state.get(PAGE, 0) + step)


def page_number(pages: int) -> int:
    """The page to show, within the `pages` there are now (the list may have shrunk)."""
    page = min(st.session_state.get(PAGE, 0), pages - 1)
    st.session_state[PAGE] = page
    return page


def show_ids(ids: list[str]) -> None:
    st.session_state[PAGE_IDS] = ids


def rerun_in_flight() -> Batch | None:
    """The rerun, running or finished and not harvested yet (its view claims the final redraw)."""
    return RERUN.current()


def harvest() -> None:
    """A finished rerun: open its run and say so."""
    finished = RERUN.take_finished()
    if finished is not None:
        run = finished.runs[0]
        if run is not None:
            st.session_state[OPEN] = run.id
            notices.say(NOTICES, "info", "Rerun stopped: what came is saved and shown below." if run.cancelled
                        else "Rerun finished: it is saved and shown below.")


def rerun(run_id: str) -> None:
    run = store().get(run_id)
    if run is None:
        return
    named = sidebar.endpoints_by_name(need_local=run.endpoint == sidebar.LOCAL)
    endpoint = named.get(run.endpoint)
    if endpoint is None:
        endpoint = sidebar.current_endpoint()
        notices.say(NOTICES, "info", f"Endpoint {run.endpoint!r} is not configured now: "
                                     f"the rerun went to {endpoint.name!r}.")
    RERUN.start([(endpoint, run.request)], preset=run.preset)


stop = RERUN.stop  # `Stop generating`


def ask_delete(run_id: str | None) -> None:
    """Ask for a confirmation before deleting `run_id` (None: the question is withdrawn)."""
    st.session_state[CONFIRM] = run_id


def confirming(run_id: str) -> bool:
    return st.session_state.get(CONFIRM) == run_id


def delete(run_id: str) -> None:
    store().delete(run_id)
    st.session_state[OPEN] = None
    st.session_state[CONFIRM] = None
    notices.say(NOTICES, "info", "Run deleted.")


def opened() -> str | None:
    return st.session_state.get(OPEN)


def on_table_select() -> None:
    """Ticking rows selects them (for a cases file); the row ticked last is opened."""
    rows = st.session_state[TABLE]["selection"]["rows"]
    ids = st.session_state.get(PAGE_IDS, [])
    chosen = [ids[row] for row in rows if row < len(ids)]
    added = [run_id for run_id in chosen if run_id not in selected()]
    st.session_state[SELECTED] = chosen
    if added:
        open_run(added[-1])


def keep_cells_valid(experiment_runs: list[str]) -> None:
    """An experiment run no longer listed (deleted): its cells are hidden again."""
    if st.session_state.get(CELLS) not in (None, *experiment_runs):
        st.session_state[CELLS] = None


def selected() -> list[str]:
    return list(st.session_state.get(SELECTED) or [])


def feedback_key(name: str) -> str:
    return f"{FEEDBACK}.{name}"


def show_feedback(run_id: str) -> None:
    """Put the opened run's stored feedback into its widgets (once per run opened)."""
    if st.session_state.get(feedback_key("for")) == run_id:
        return
    row = store().summary(run_id)
    st.session_state[feedback_key("for")] = run_id
    widget_sync.write(feedback_key("score"), row.score - 1 if row is not None and row.score else None)
    widget_sync.write(feedback_key("comment"), row.comment if row is not None else "")
    widget_sync.write(feedback_key("tags"), row.tags if row is not None else "")


def save_feedback(run_id: str) -> None:
    """Save feedback's on_click: the score (1-5 stars), comment and tags, searchable from then on."""
    stars = widget_sync.value(feedback_key("score"))
    saved = store().set_feedback(run_id, score=None if stars is None else int(stars) + 1,
                                 comment=(widget_sync.value(feedback_key("comment")) or "").strip(),
                                 tags=widget_sync.value(feedback_key("tags")) or "")
    notices.say(NOTICES, "success" if saved else "warning",
                "Feedback saved." if saved else "That run is no longer in the history.")


def cases_file(run_ids: list[str]) -> tuple[str, bytes, str] | str:
    """The selected runs as a cases file for their preset's experiment: (file name, CSV, a note
    on runs left out), or why not (plain text)."""
    runs = [run for run in (store().get(run_id) for run_id in run_ids) if run is not None]
    presets = {run.preset for run in runs}
    if not runs or len(presets) != 1 or None in presets:
        return "Cases are made for one preset: select runs of the same preset (the preset column)."
    name = presets.pop()
    try:
        preset = PresetStore().load(name)
    except ValueError as error:
        return f"The preset {name!r} cannot be read: {error}"
    if not preset.variables and not variables_in(preset.request):
        return f"The preset {name!r} has no {{{{variables}}}}: its runs all ask the same thing."
    cases, misfits = cases_from_runs(preset.request, [(run.request, run.text) for run in runs])
    if not cases:
        return f"None of these runs sent the preset {name!r} as it is now (its messages changed since)."
    note = f"{misfits} run(s) left out: their messages are not the preset's." if misfits else ""
    return f"{slugify(name)}.cases.csv", cases_to_csv(cases).encode(), note


def on_pick() -> None:
    open_run(widget_sync.value(PICK))


def open_run(run_id: str | None) -> None:
    st.session_state[OPEN] = run_id
    st.session_state[CONFIRM] = None

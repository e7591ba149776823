"""The token inspector's "Continue with this token": whether it is offered for a run (the
endpoint's capability probe, playground.runs.continuation), and what pressing it does: the
branched run is asked for, saved with where it came from (Run.branched_from), and opened in
Compare beside the original, its token diff starting at the branch point."""

from __future__ import annotations

import streamlit as st

from playground.client.client import ChatClient
from playground.client.run import Run
from playground.runs import continuation
from playground.runs.store import default_store, history_saver
from playground.textsafe import escape_markdown
from playground.ui import sidebar
from playground.ui.common.token_heatmap import Branching
from playground.ui.compare import state as compare_state

COMPARE_PAGE = "pages/compare.py"
REFUSED = "branching.refused"  # why the last "Continue with this token" was not run (written here only)


def show_refusal() -> None:
    """Say once why the last branch asked for could not run."""
    reason = st.session_state.pop(REFUSED, None)
    if reason:
        st.warning(escape_markdown(reason), icon=":material/call_split:")


def offer(run: Run) -> Branching:
    """Whether this run's answer can be continued from another token, and if not, why. Drawing
    asks no server: the endpoint's probe runs on the first "Continue with this token" pressed
    for it (the button then says what it found), and its answer is remembered."""
    if run.error is not None or run.partial:
        return Branching(False, "Continue with this token: not offered, this run did not finish.")
    endpoint = sidebar.endpoints_by_name().get(run.endpoint)
    if endpoint is None:
        return Branching(False, f"Continue with this token: not offered, the endpoint {run.endpoint!r} of this run "
                                "is not configured now.")
    found = continuation.known(endpoint, run.request.model)
    if found is None:
        return Branching(True, "")
    return Branching(found.offered, found.reason)


def start(run: Run, choice: int, chosen: dict) -> None:
    """Run the branch (the answer up to `chosen["position"]`, then alternative `chosen["rank"]`),
    save it and open it in Compare beside `run`."""
    endpoint = sidebar.endpoints_by_name().get(run.endpoint)
    if endpoint is None:
        st.error(f"The endpoint {escape_markdown(run.endpoint)} of this run is not configured now.")
        return
    found = continuation.probe(endpoint, run.request.model)  # once per endpoint and model
    if not found.offered:
        st.session_state[REFUSED] = found.reason  # shown above the heatmap, which now says why too
        st.rerun()
    request, origin = continuation.branch_request(run, int(chosen["position"]), int(chosen["rank"]), choice)
    with st.spinner(f"Continuing with {escape_markdown(origin.token)!s} at token {origin.position}..."):
        with ChatClient(endpoint) as client:
            branch = client.run(request, preset=run.preset)
    branch.branched_from = origin
    save = history_saver([endpoint], source=continuation.BRANCH_SOURCE)
    if default_store().get(run.id) is None:  # the original must be there for Compare to load it
        save(run)
    save(branch)
    compare_state.open_branch(run.id, branch.id, origin.position)
    st.switch_page(COMPARE_PAGE)


def show_family(run: Run) -> None:
    """History's detail: the run this one branched from, and the runs branched from it."""
    origin = run.branched_from
    if origin is not None:
        st.caption(f"Branched from run **{escape_markdown(origin.run_id[:8])}** at token {origin.position}, "
                   f"taking {escape_markdown(repr(origin.token))} there.")
    children = continuation.branches_of(default_store(), run.id)
    if children:
        st.caption("Branches of this run: " + "; ".join(
            f"**{escape_markdown(child.id[:8])}** at token {child.branched_from.position} "
            f"({escape_markdown(repr(child.branched_from.token))})" for child in children))


def show_origin(run: Run) -> None:
    """Above a branch's answer (Compare's pane): what it continues, and from which run."""
    origin = run.branched_from
    if origin is None:
        return
    messages = run.request.messages
    prefix = messages[-1].content if messages and isinstance(messages[-1].content, str) else ""
    shown = ("…" + prefix[-60:]) if len(prefix) > 60 else prefix
    st.caption(f"Branch of run **{escape_markdown(origin.run_id[:8])}** at token {origin.position}: the answer "
               f"continues {escape_markdown(repr(shown))}")

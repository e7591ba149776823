"""The Playground page: build any request (form or JSON), stream it, read its usage and logprobs."""

import streamlit as st

from playground.textsafe import escape_markdown
from playground.ui import sidebar
from playground.ui.playground import codeview, preset_bar, runner, state, tool_answers


def render() -> None:
    endpoint = sidebar.current_endpoint()
    state.ensure(sidebar.current_model(), local=endpoint.kind == "local")
    state.run_in_flight()  # a run that just ended: a rerun's answer joins the conversation before it is drawn
    tool_answers.step()  # Auto-continue's next round, before the messages editor draws the conversation

    st.title("Playground")
    st.caption(f"{escape_markdown(endpoint.name)} · build a request, stream it, see why the model said what it said.")
    preset_bar.preset_bar()

    # The request keeps its {{variables}}; Run, Get code and "Request as sent" use it filled in
    # (state.filled_request), each where it is drawn: the Run area is a fragment with its own runs.
    left, right = st.columns([3, 2], gap="large")
    with right:
        preset_bar.variables_panel()
        st.markdown("#### Parameters")
        state.EDITOR.parameters()
    with left:
        # Every element on the page is redrawn by the browser with each streamed chunk: the code
        # snippets (hundreds of highlighted spans) are built only while their tab is open.
        compose, as_json, code = st.tabs(["Messages", "JSON", "Get code"], key=state.TABS, on_change="rerun")
        with compose:
            state.EDITOR.messages()
        with as_json:
            state.EDITOR.json()
            if as_json.open and state.variables():
                codeview.as_sent(state.filled_request(), state.missing_variables())
        with code:
            if code.open:
                codeview.render(endpoint, state.filled_request(), state.missing_variables())
        run_area()
    state.keep_draft()


@st.fragment
def run_area() -> None:
    """The Run bar and the answer below it, as a fragment: a click on Run or Stop generating reruns
    only this, so the request leaves at once and the browser redraws this part alone before the
    first token, instead of the whole page (its rerun came first: a few hundred ms, more with
    several sessions sharing the app's process). Everything is read from the session, not taken
    as arguments: a fragment's rerun reuses the arguments of the last full run, which can be older
    than the edit that came with the click (Ctrl+Enter in the message box)."""
    endpoint = sidebar.current_endpoint()
    tool_answers.step()  # a run that ended in this fragment's own rerun
    sent, missing = state.filled_request(), state.missing_variables()
    waiting = runner.unfilled(missing)
    if endpoint.kind == "local" and sidebar.sandbox_starting():
        waiting.append("Starting the local model…")
    tool_answers.progress()
    runner.render_run_area(sent or state.get_request(), endpoint, preset=state.loaded_preset().get("name"),
                           waiting_for=waiting)

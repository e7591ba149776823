"""The Playground page: build any request (form or JSON), stream it, read its usage and logprobs."""

import streamlit as st

from playground.textsafe import escape_markdown
from playground.ui import sidebar
from playground.ui.playground import codeview, json_editor, messages, params, preset_bar, runner, state


def render() -> None:
    endpoint = sidebar.current_endpoint()
    preset_bar.load_share_link()
    # may rerun: before preset_bar shows its one-time message
    request = state.ensure(sidebar.current_model(), local=endpoint.kind == "local")

    st.title("Playground")
    st.caption(f"{escape_markdown(endpoint.name)} · build a request, stream it, see why the model said what it said.")
    preset_bar.preset_bar()

    errors = state.errors()
    left, right = st.columns([3, 2], gap="large")
    with right:
        st.markdown("#### Parameters")
        params.render()
    with left:
        # Every element on the page is redrawn by the browser with each streamed chunk: the code
        # snippets (hundreds of highlighted spans) are built only while their tab is open.
        compose, as_json, code = st.tabs(["Messages", "JSON", "Get code"], key=state.TABS, on_change="rerun")
        with compose:
            messages.render()
        with as_json:
            json_editor.render()
        with code:
            if code.open:
                codeview.render(endpoint, request)
        loaded = state.loaded_preset()
        variables = preset_bar.pending_variables()
        waiting = [f"Fill in the preset's variables first: {', '.join(variables)}."] if variables else []
        if endpoint.kind == "local" and sidebar.sandbox_starting():
            waiting.append("Starting the local model…")
        runner.render_run_area(request, endpoint, errors, preset=loaded.get("name"), waiting_for=waiting)
    state.keep_draft()

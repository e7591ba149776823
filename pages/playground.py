"""Playground: build any request (form or JSON), stream it, read its usage and logprobs."""

import streamlit as st

from playground.textsafe import escape_markdown
from playground.ui import codeview, json_editor, messages, params, preset_widgets, request_state, runner, sidebar
from playground.ui.shell import require_app

require_app()  # first: a deep link to a fresh server must still run app.py
endpoint = sidebar.current_endpoint()
preset_widgets.load_share_link()
request = request_state.ensure(sidebar.current_model())  # may rerun: before preset_bar shows its one-time message

st.title("Playground")
st.caption(f"{escape_markdown(endpoint.name)} · build a request, stream it, see why the model said what it said.")
preset_widgets.preset_bar()

errors = request_state.errors()

left, right = st.columns([3, 2], gap="large")
with right:
    st.markdown("#### Parameters")
    params.render()
with left:
    compose, as_json, code = st.tabs(["Messages", "JSON", "Get code"])
    with compose:
        messages.render()
    with as_json:
        json_editor.render()
    with code:
        codeview.render(endpoint, request)
    loaded = st.session_state.get(preset_widgets.LOADED_KEY) or {}
    variables = preset_widgets.pending_variables()
    waiting = [f"Fill in the preset's variables first: {', '.join(variables)}."] if variables else []
    runner.render_run_area(request, endpoint, errors, preset=loaded.get("name"), waiting_for=waiting)

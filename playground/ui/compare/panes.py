"""Compare's panes as drawn and used: each pane's setup (its endpoint, whether Run all includes
it, the shared conversation or its own, and its own request editor: every field of the API and
the JSON view), the request a pane makes, and the pane itself (live text while it streams, then
the answer at a glance). A pane's state, and loading one from the shared setup, a preset or a
past run, is playground.ui.compare.state and .sources.
"""

from __future__ import annotations

import streamlit as st

from playground.analysis import compare_tables
from playground.client.endpoint import Endpoint
from playground.client.run import Run
from playground.client.schema import ChatRequest
from playground.textsafe import escape_markdown
from playground.ui import sidebar
from playground.ui.common import branches, branching, live_view, message_editor, run_view, token_heatmap, widget_sync
from playground.ui.common.request_fields import BY_NAME
from playground.ui.compare import conversation, sources, state

# What the line above a pane names of its request, beyond messages, model and sampling: the
# settings that change an answer's shape and are easy to carry over unseen.
SAMPLING = {"model", "messages", "temperature", "top_p", "top_k", "seed", "n", "stream", "stream_options"}


def pane_request(i: int) -> tuple[ChatRequest | None, list[str]]:
    """Pane i's request as Run all sends it (the shared conversation when linked), and what stops
    it running (the editor's one rule)."""
    editor = state.pane_editor(i)
    request = editor.request()
    if request is None:
        return None, ["Reset the pane to the shared setup."]
    if state.pane_value(i, "linked", True):
        request = request.model_copy(update={"messages": ChatRequest.from_wire(
            {"model": request.model, "messages": conversation.current()}).messages})
    return request, editor.problems(request)


def follow_shared(i: int) -> None:
    """A linked pane's request holds the shared conversation (so its JSON view shows what it sends)."""
    editor = state.pane_editor(i)
    request = editor.request()
    shared = conversation.current()
    if request is not None and state.pane_value(i, "linked", True) and \
            message_editor.request_messages(request) != shared:
        try:
            editor.update(messages=shared)
        except ValueError:  # a shared message the API refuses: the Run all check names it
            pass


def carried(request: ChatRequest) -> list[str]:
    """The fields a request carries beyond messages, model and sampling, for the line above a pane."""
    body = request.to_wire()
    named = [name for name in body if name not in SAMPLING]
    return [name if name in BY_NAME or name in ChatRequest.model_fields else f"{name} (extra)" for name in named]


def pane_label(i: int, run: Run | None = None) -> str:
    request = state.pane_editor(i).request()
    model = (run.request.model if run is not None else request.model if request is not None else None) or "?"
    return f"Pane {i + 1} · {model}"


def included() -> list[int]:
    return [i for i in range(state.pane_count()) if state.pane_value(i, "include", True)]


def prepare(panes: list[int]) -> tuple[list[tuple[Endpoint, ChatRequest]], list[str | None], list[str]]:
    """The (endpoint, request) of each pane, their presets, and what stops any of them running."""
    chosen = [state.pane_value(i, "endpoint") for i in panes]
    named = state.endpoints(need_local=sidebar.LOCAL in chosen)
    items, presets, problems = [], [], []
    for i in panes:
        request, errors = pane_request(i)
        endpoint = named.get(state.pane_value(i, "endpoint") or "")
        if endpoint is None:
            errors = [*errors, "choose an endpoint"]
        if errors or request is None:
            problems.extend(f"Pane {i + 1}: {error}" for error in errors)
            continue
        items.append((endpoint, request))
        presets.append(state.pane_preset(i))
    return items, presets, problems


# --- drawing ----------------------------------------------------------------------------------


def place(i: int) -> str:
    """Pane i's live answer box (live_view.live_text)."""
    return f"cmp{i}"


def pane(i: int, recent: dict[str, str]) -> None:
    """Pane i; `recent`: the past runs its picker offers (sources.recent_runs)."""
    sources.ensure_pane(i)
    follow_shared(i)
    busy = state.batch() is not None
    st.subheader(f"Pane {i + 1}")
    st.caption(escape_markdown(state.pane_source(i)))
    request = state.pane_editor(i).request()
    extra = carried(request) if request is not None else []
    if extra:  # what this pane sends that the form's folded groups would not show at a glance
        st.caption("Also sends: " + escape_markdown(", ".join(extra)))
    result = state.results().get(i)
    with st.expander("Setup", expanded=result is None and not busy):
        pane_setup(i, recent, disabled=busy)
    _, problems = pane_request(i)
    for problem in problems:  # a plain hint until a run was asked for and refused
        text = escape_markdown(problem)
        st.caption(f":red[{text}]" if state.tried() else text)
    slots = state.batch_slots()
    current = state.batch() if i in slots else None
    live_view.live_text(place(i), current, slots.get(i, 0))
    with st.container():
        if current is not None:
            live_view.replace_stale()
            live_view.live_output(current, slots[i], place=place(i))
        elif result is None:
            st.caption("No run yet: press Run all.")
        else:
            with st.container():
                pane_result(i, result)


def pane_result(i: int, run: Run) -> None:
    """The answer at a glance (a token heatmap when there are logprobs), one line of numbers,
    and everything else (usage, every choice, tool calls, the token inspector) under Details."""
    run_view.show_error(run)
    run_view.show_status(run)
    branching.show_origin(run)  # a branch: what it continues
    choice = run.choices[0] if run.choices else None
    if choice is not None and choice.logprobs:
        token_heatmap.token_heatmap(choice.logprobs, f"cmp{i}_{run.id[:8]}_glance", ident=f"{run.id}.0",
                                    top_p=run.request.top_p)
    elif choice is not None and (choice.text or not choice.tool_calls):
        st.html(run_view.answer_html(choice.text))
    st.caption(escape_markdown(compare_tables.stats_line(run)))
    if run.choices and run.choices[0].text and not state.added(run.id) and not state.running():
        st.button(branches.ADD, key=f"cmp.{i}.add_to_conversation", icon=":material/add_comment:",
                  on_click=conversation.add_answer, args=(i, run),
                  help="Append this pane's answer to the conversation it sent, with a new user message below.")
    with st.expander("Details"):
        run_view.show_run(run, key=f"cmp{i}_{run.id[:8]}")


def pane_setup(i: int, recent: dict[str, str], disabled: bool) -> None:
    names = list(state.endpoints())
    if state.pane_value(i, "endpoint") not in names and names:
        default = state.default_endpoint_name()
        state.write_pane_widget(i, "endpoint", default if default in names else names[0])

    def k(name: str) -> str:
        return widget_key(i, name)

    st.selectbox("Endpoint", names, key=k("endpoint"), disabled=disabled, persist_state=state.KEEP,
                 on_change=state.pane_editor(i).follow_endpoint)
    st.checkbox("Include in Run all", key=k("include"), disabled=disabled, persist_state=state.KEEP)
    st.toggle("Use the shared conversation", key=k("linked"), disabled=disabled, persist_state=state.KEEP,
              help="On: this pane sends the shared conversation. Off: its own messages, starting from a copy.")
    editor = state.pane_editor(i)
    if not state.pane_value(i, "linked", True):
        st.caption("This pane's own messages:")
        editor.messages(disabled=disabled)
    parameters, as_json = st.tabs(["Parameters", "JSON"])
    with parameters:
        editor.parameters(disabled=disabled)
    with as_json:
        editor.json(disabled=disabled)
    with st.popover("Load a preset or a past run", disabled=disabled, width="stretch"):
        sources.source_picker(i, recent)


def widget_key(i: int, name: str) -> str:
    """The key to draw pane i's widget `name` (one of state.PANE_WIDGETS) with now."""
    return widget_sync.key(state.pane_key(i, name))

"""Compare's panes as drawn and used: the setup widgets (endpoint, model, parameter overrides,
the shared conversation or the pane's own), the request a pane makes, and the pane itself (live
text while it streams, then the answer at a glance). The setup's state, and loading one from the
shared setup, a preset or a past run, is playground.ui.compare.sources.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from pydantic import ValidationError

from playground.analysis import compare_tables
from playground.client.endpoint import Endpoint
from playground.client.run import Run
from playground.client.schema import ChatRequest, describe_error, message_text
from playground.textsafe import escape_markdown
from playground.ui import sidebar
from playground.ui.common import live_view, run_view, widget_sync
from playground.ui.compare import conversation, sources, state

key = sources.key


def _on_link_change(i: int) -> None:
    """Unlinking copies the shared conversation into the pane, to be edited there."""
    if not sources.value(i, "linked") and not conversation.stored(str(i)):
        conversation.set_messages(str(i), conversation.current(conversation.SHARED))


def pane_values(i: int) -> dict[str, Any]:
    return {name: sources.value(i, name) for name in ("model", *sources.PARAMS)}


def pane_messages(i: int) -> list[dict[str, Any]]:
    linked = sources.value(i, "linked", True)
    return conversation.current(conversation.SHARED if linked else str(i))


def pane_request(i: int) -> tuple[ChatRequest | None, list[str]]:
    try:
        request = compare_tables.build_request(st.session_state[key(i, "base")], pane_messages(i), pane_values(i))
    except ValidationError as error:
        return None, describe_error(error)
    if not any(message_text(m).strip() for m in request.messages if m.role == "user"):
        return request, ["Write a user message first."]
    return request, []


def pane_label(i: int, run: Run | None = None) -> str:
    model = (run.request.model if run is not None else sources.value(i, "model")) or "?"
    return f"Pane {i + 1} · {model}"


def included() -> list[int]:
    return [i for i in range(state.pane_count()) if sources.value(i, "include", True)]


def prepare(panes: list[int]) -> tuple[list[tuple[Endpoint, ChatRequest]], list[str | None], list[str]]:
    """The (endpoint, request) of each pane, their presets, and what stops any of them running.
    """
    chosen = [sources.value(i, "endpoint") for i in panes]
    named = state.endpoints(need_local=sidebar.LOCAL in chosen)
    items, presets, problems = [], [], []
    for i in panes:
        request, errors = pane_request(i)
        endpoint = named.get(sources.value(i, "endpoint") or "")
        if endpoint is None:
            errors = [*errors, "choose an endpoint"]
        if errors or request is None:
            problems.extend(f"Pane {i + 1}: {error}" for error in errors)
            continue
        items.append((endpoint, request))
        presets.append(st.session_state.get(key(i, "preset")))
    return items, presets, problems


# --- drawing ----------------------------------------------------------------------------------


def place(i: int) -> str:
    """Pane i's live answer box (live_view.live_text)."""
    return f"cmp{i}"


def pane(i: int, recent: dict[str, str]) -> None:
    """Pane i; `recent`: the past runs its picker offers (sources.recent_runs)."""
    sources.ensure_pane(i)
    busy = state.batch() is not None
    st.subheader(f"Pane {i + 1}")
    st.caption(escape_markdown(st.session_state[key(i, "source")]))
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
    choice = run.choices[0] if run.choices else None
    if choice is not None and choice.logprobs:
        st.html(run_view.token_heatmap_html(choice.logprobs))
    elif choice is not None and (choice.text or not choice.tool_calls):
        st.html(run_view.answer_html(choice.text))
    st.caption(escape_markdown(compare_tables.stats_line(run)))
    with st.expander("Details"):
        run_view.show_run(run, key=f"cmp{i}_{run.id[:8]}")


def pane_setup(i: int, recent: dict[str, str], disabled: bool) -> None:
    names = list(state.endpoints())
    if sources.value(i, "endpoint") not in names and names:
        default = state.default_endpoint_name()
        widget_sync.write(key(i, "endpoint"), default if default in names else names[0])

    keep = state.KEEP

    def k(name: str) -> str:
        return sources.widget_key(i, name)

    st.selectbox("Endpoint", names, key=k("endpoint"), disabled=disabled, persist_state=keep)
    st.text_input("Model", key=k("model"), disabled=disabled, persist_state=keep)
    a, b = st.columns(2)
    a.number_input("Temperature", 0.0, 2.0, value=None, step=0.1, key=k("temperature"), disabled=disabled,
                   placeholder="default", persist_state=keep)
    b.number_input("top_p", 0.0, 1.0, value=None, step=0.05, key=k("top_p"), disabled=disabled, placeholder="default",
                   persist_state=keep)
    a.number_input("Max tokens", 1, None, value=None, step=1, key=k("max_tokens"), disabled=disabled,
                   placeholder="default", persist_state=keep)
    b.number_input("Seed", None, None, value=None, step=1, key=k("seed"), disabled=disabled, placeholder="none",
                   persist_state=keep)
    a.checkbox("Logprobs", key=k("logprobs"), disabled=disabled, persist_state=keep)
    b.number_input("top_logprobs", 0, 20, value=None, step=1, key=k("top_logprobs"), placeholder="0",
                   disabled=disabled or not sources.value(i, "logprobs"), persist_state=keep)
    st.checkbox("Include in Run all", key=k("include"), disabled=disabled, persist_state=keep)
    st.toggle("Use the shared conversation", key=k("linked"), disabled=disabled, on_change=_on_link_change, args=(i,),
              persist_state=keep)
    if not sources.value(i, "linked", True):
        st.caption("This pane's own messages:")
        conversation.messages_editor(str(i), disabled=disabled)
    with st.popover("Load a preset or a past run", disabled=disabled, width="stretch"):
        sources.source_picker(i, recent)

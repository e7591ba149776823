"""The Playground answers tool calls: the last run's calls get result boxes (the common call
view, playground.ui.common.tool_calls_view), `Send results and continue` appends the assistant's
calls and one tool message per result to the conversation and runs again, and `Auto-continue`
does that round after round from the loaded preset's tool_results.

Auto-continue is a loop over ordinary runs: each run goes through the page's RunSlot like a
click on Run, and each finished run is looked at once (`step`, at the top of every page run):
calls answered from tool_results start the next run; a text answer ends the loop; so do the
round limit, a call tool_results has no answer for, an error and Stop generating, each with a
note that says so beside the run it stopped at.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.client.run import Run
from playground.client.schema import ToolCall
from playground.textsafe import escape_markdown
from playground.tools import DEFAULT_ROUNDS, ToolResultError, continuation, result_for
from playground.ui.common.tool_calls_view import ToolAnswers
from playground.ui.playground import state


def answers(run: Run) -> ToolAnswers | None:
    """How the last run's calls are answered here (None: it made none)."""
    if not any(choice.tool_calls for choice in run.choices):
        return None
    results = state.tool_results()
    return ToolAnswers(scope=f"tool_{run.id[:12]}", send=send, tool_results=results or None,
                       auto=start_auto if results else None,
                       disabled=state.run_in_flight() is not None or state.auto_continue() is not None)


def send(calls: list[ToolCall], results: list[str], text: str) -> None:
    """`Send results and continue`: the exchange joins the conversation, and the page runs it."""
    state.continue_conversation(continuation(calls, results, text))
    state.request_run()
    st.rerun()  # the whole page, not the Run area's fragment: the messages editor shows the exchange


def start_auto(limit: int = DEFAULT_ROUNDS) -> None:
    """`Auto-continue`: answer the last run's calls from tool_results now, and every round after."""
    state.start_auto(limit)
    step()
    st.rerun()


def step() -> None:
    """Once per finished run while Auto-continue runs: carry on, or stop and say why."""
    auto = state.auto_continue()
    if auto is None or state.run_in_flight() is not None:
        return
    last = state.last_run()
    if last is None or last.id == auto["seen"]:
        return
    auto["seen"] = last.id
    rounds, limit = auto["rounds"], auto["limit"]
    choice = last.choices[0] if last.choices else None
    if last.error is not None or last.cancelled or last.partial:
        why = "you stopped the run" if last.cancelled else "the run failed" if last.error else "the stream broke off"
        state.stop_auto(last.id, "warning", f"Auto-continue stopped after {_rounds(rounds)}: {why}.")
        return
    if choice is None or not choice.tool_calls:
        state.stop_auto(last.id, "success", f"Auto-continue: the model answered after {_rounds(rounds)} of tool calls.")
        return
    if rounds >= limit:
        state.stop_auto(last.id, "warning", f"Auto-continue stopped at its limit of {_rounds(limit)}: the model "
                        "called tools again. Answer these calls and press Send results and continue, or press "
                        "Auto-continue for more rounds.")
        return
    found = _results(choice.tool_calls)
    if isinstance(found, str):
        state.stop_auto(last.id, "warning", f"Auto-continue stopped after {_rounds(rounds)}: {found}")
        return
    auto["rounds"] = rounds + 1
    state.continue_conversation(continuation(choice.tool_calls, found, choice.text))
    state.request_run()


def _rounds(n: int) -> str:
    return f"{n} round" if n == 1 else f"{n} rounds"


def _results(calls: list[ToolCall]) -> list[str] | str:
    """The preset's answer to every call, or (escaped markdown) why one has none."""
    results: list[Any] = []
    for call in calls:
        try:
            result = result_for(call, state.tool_results())
        except ToolResultError as error:
            return f"tool_results cannot answer {escape_markdown(call.function.name)}: {escape_markdown(str(error))}"
        if result is None:
            return (f"the preset's tool_results has no answer for {escape_markdown(call.function.name)}. Write its "
                    "result below and press Send results and continue.")
        results.append(result)
    return results


def progress() -> None:
    """While the loop runs: which round, and how to end it."""
    auto = state.auto_continue()
    if auto is not None and auto["rounds"]:
        st.caption(f"Auto-continue: round {auto['rounds']} of at most {auto['limit']}, answered from the preset's "
                   "tool_results. Stop generating ends it.")


def note(run: Run) -> None:
    """Why Auto-continue stopped at this run, if it did."""
    found = state.auto_note(run.id)
    if found is not None:
        level, text = found
        getattr(st, level)(text, icon=":material/fast_forward:")

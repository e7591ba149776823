"""The tool calls a choice ended with, as every page shows them (run_view.show_choice calls
`show`): each call's name, its arguments pretty-printed, and whether they fit the tool's schema
(playground.tools.check_call, the judgement the experiments' tool_called check makes too).

A page that can carry on the conversation (the Playground) passes a `ToolAnswers`: each call
then gets a result box (pre-filled from the preset's tool_results, when it has an entry for the
tool) and `Send results and continue` hands the calls and the results to the page. Compare,
History and Experiments show the calls alone.

Model text is data: the name goes through escape_markdown, the arguments are shown in st.code
(literal text, never markup).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import streamlit as st

from playground.client.run import ChoiceResult
from playground.client.schema import Tool, ToolCall
from playground.textsafe import escape_markdown
from playground.tools import DEFAULT_ROUNDS, CallCheck, ToolResultError, check_call, result_for
from playground.ui.common import widget_sync

SEND = "Send results and continue"
AUTO = "Auto-continue"
EMPTY_RESULT = "Write a result for every call first (the text the tool would return; JSON or plain text)."


@dataclass(frozen=True)
class ToolAnswers:
    """How a page answers calls. scope: the start of the result boxes' keys, one per run shown (a
    new run gets new, empty boxes); tool_results: the preset's answers per tool name (pre-fill);
    send(calls, results, text): carry on with these results (the button's click, on its run);
    auto(limit): start Auto-continue for at most `limit` rounds (None: the page has no
    tool_results to run it with);
    disabled: a run is streaming."""

    scope: str
    send: Callable[[list[ToolCall], list[str], str], None]
    tool_results: Mapping[str, Any] | None = None
    auto: Callable[[int], None] | None = None
    disabled: bool = False


def validity(checked: CallCheck) -> tuple[str, str]:
    """(icon, sentence) saying whether the call fits its tool; the sentence is plain text."""
    if checked.fault == "json":
        return ":material/error:", f"Arguments are not valid JSON: {checked.problem}"
    if checked.fault == "tool":
        return ":material/error:", f"Not a tool of this request: {checked.problem}"
    if checked.fault == "schema":
        return ":material/error:", f"Arguments do not fit the tool's schema: {checked.problem}"
    if not checked.schema:
        return ":material/info:", "The tool has no parameters schema: any arguments are taken."
    return ":material/check_circle:", "Arguments fit the tool's schema."


def result_key(answers: ToolAnswers, choice: int, position: int) -> str:
    return f"{answers.scope}_c{choice}_result_{position}"


def show(choice: ChoiceResult, tools: list[Tool] | None, key: str, answers: ToolAnswers | None = None) -> None:
    calls = choice.tool_calls
    st.markdown(f"**Tool calls** ({len(calls)})")
    for position, call in enumerate(calls):
        checked = check_call(call, tools)
        with st.container(border=True, key=f"{key}_call_{position}"):
            _show_call(checked)
            if answers is not None:
                _result_box(answers, choice.index, position, call)
    if answers is not None:
        _buttons(answers, choice, key)


def _show_call(checked: CallCheck) -> None:
    call = checked.call
    head = st.container(horizontal=True, vertical_alignment="center", gap="small")
    head.markdown(f"**{escape_markdown(checked.name)}**")
    if call.id:
        head.caption(f"id {escape_markdown(call.id)}")
    st.code(checked.pretty, language="json", wrap_lines=True)
    icon, sentence = validity(checked)
    if checked.valid:
        st.caption(f"{icon} {escape_markdown(sentence)}")
    else:
        st.error(escape_markdown(sentence), icon=icon)


def _prefill(answers: ToolAnswers, call: ToolCall) -> tuple[str, str | None]:
    """The result box's first value (from tool_results), and why it could not be filled."""
    if not answers.tool_results:
        return "", None
    try:
        return result_for(call, answers.tool_results) or "", None
    except ToolResultError as error:
        return "", f"tool_results could not answer this call: {error}"


def _result_box(answers: ToolAnswers, choice: int, position: int, call: ToolCall) -> None:
    base = result_key(answers, choice, position)
    problem = None
    if not widget_sync.has(base):
        text, problem = _prefill(answers, call)
        widget_sync.write(base, text)
    st.text_area("Result", key=widget_sync.key(base), height=90, disabled=answers.disabled,
                 placeholder="What the tool returned, e.g. {\"temperature_c\": 21}",
                 help="Sent back as a tool message answering this call (its tool_call_id).")
    if problem:
        st.warning(escape_markdown(problem), icon=":material/warning:")


def results(answers: ToolAnswers, choice: ChoiceResult) -> list[str]:
    return [widget_sync.value(result_key(answers, choice.index, position)) or ""
            for position in range(len(choice.tool_calls))]


def _buttons(answers: ToolAnswers, choice: ChoiceResult, key: str) -> None:
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    send = row.button(SEND, key=f"{key}_send", type="primary", icon=":material/reply:", disabled=answers.disabled,
                      help="Add the calls and these results to the conversation (a tool message per call) "
                           "and run again.")
    auto, rounds = False, DEFAULT_ROUNDS
    if answers.auto is not None:
        auto = row.button(AUTO, key=f"{key}_auto", icon=":material/fast_forward:", disabled=answers.disabled,
                          help="Answer every call from the preset's tool_results and run again, round after "
                               "round, until the model answers in text or the round limit is reached.")
        rounds = row.number_input("Rounds", min_value=1, max_value=50, value=DEFAULT_ROUNDS, step=1, width=130,
                                  key=f"{key}_rounds", disabled=answers.disabled,
                                  help="Auto-continue's limit: at most this many rounds of answered calls.")
    if send:
        given = results(answers, choice)
        if any(not text.strip() for text in given):
            st.warning(EMPTY_RESULT, icon=":material/edit_note:")
            return
        answers.send(list(choice.tool_calls), given, choice.text)
    elif auto and answers.auto is not None:
        answers.auto(int(rounds))

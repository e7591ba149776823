"""The working request of the Playground page: one ChatRequest in st.session_state["request"],
edited by the common request editor (playground.ui.common.request_editor, prefix ""): the form
(parameters and messages) and the JSON view are two views of it, kept in sync there. Errors
that keep the request from being updated (bad JSON, an out-of-range value) are the editor's;
Run is disabled while any is there.

The draft survives a reload: the page keeps the request in the address as ?draft=TOKEN (the
share-link codec: deflated, checked) and a new session starts from it. Never a key: a request
that carries anything secret-looking is not put in the address.

Variables: the request is a template. `{{name}}` placeholders in its message text stay in it
(and so in both views, in a saved preset and in the draft); the values the user gives them live
here beside it (st.session_state["variable_values"]), with the defaults and descriptions a
loaded preset declares. What Run sends and Get code shows is `filled_request()`: the request
with the values filled in, None while a variable has no value.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from playground.client.endpoint import LOCAL_MODEL, Endpoint
from playground.client.run import Run
from playground.client.schema import ChatRequest
from playground.presets import (
    MissingVariableError,
    Preset,
    PresetStore,
    Variable,
    fill_variables,
    from_share_token,
    variables_in,
)
from playground.presets.sharelink import ShareLinkError, decode_token, encode_token
from playground.runs.batch import Batch
from playground.secrets_check import find_secrets
from playground.textsafe import code_span, escape_markdown
from playground.tools import continued
from playground.ui import sidebar
from playground.ui.common import branches, notices
from playground.ui.common.request_editor import RequestEditor
from playground.ui.common.run_slot import RunSlot

# The JSON view's model goes to the sidebar at once (no extra rerun for _follow_model).
EDITOR = RequestEditor(prefix="", on_json_commit=lambda request: sidebar.choose(model=request.model),
                       rerun=lambda: request_run(),
                       endpoint=sidebar.current_endpoint)  # its token limit field (issue 22)
REQUEST = EDITOR.key("request")
TABS = "playground_tabs"  # which of Messages / JSON / Get code is open
group_key = EDITOR.group_key
LIVE = "live_run"  # the run in flight: a one-item Batch in RUN (its worker saves the Run to the history)
RUN = RunSlot(LIVE, "playground")
LAST = "last_run"  # the Run shown under the Run button
SAVE_ERROR = "last_run_save_error"
LAST_BEFORE = "last_run_before"  # set when another request was loaded since the last run (mark_last_run_previous)
_RUN_REQUESTED = "_run_requested"
DRAFT_PARAM = "draft"  # the query parameter that holds the draft
SHARE_PARAM = "preset"  # a share link's token (read once by preset_bar, then the draft takes over)


DEFAULT_TEMPERATURE = 0.7  # servers default to 1.0, at which the 135M sandbox model rambles
DEFAULT_MAX_COMPLETION_TOKENS = 256
DEFAULT_TOP_LOGPROBS = 5


def default_request(model: str, local: bool = False) -> ChatRequest:
    """A newcomer's first request: one empty user message, streamed with usage. On the local
    sandbox it asks for logprobs too, so the first run shows the token heatmap (other servers
    keep the plain default: some refuse logprobs)."""
    body = {
        "model": model or LOCAL_MODEL,
        "messages": [{"role": "user", "content": ""}],
        "temperature": DEFAULT_TEMPERATURE,
        "max_completion_tokens": DEFAULT_MAX_COMPLETION_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if local:
        body.update(logprobs=True, top_logprobs=DEFAULT_TOP_LOGPROBS)
    return ChatRequest.from_wire(body)


get_request = EDITOR.get
current_request = EDITOR.request  # the working request, when the Playground has one yet (other pages read it)
errors = EDITOR.errors


def load(request: ChatRequest) -> None:
    """Make `request` the working one (a preset, a share link, History's Load into Playground):
    every view redraws its widgets from it, and the sidebar picks its model at once.

    The model has one owner, the sidebar's pick: the working request carries it. Whatever puts
    a model in the request (this, the JSON view) picks it in the sidebar in the same breath, and
    a pick in the sidebar is copied into the request (ensure). Both happen before the sidebar is
    drawn (callbacks, and prepare() in the shell), so no extra rerun reconciles them."""
    EDITOR.load(request)
    sidebar.choose(model=request.model)


def load_past_request(request: ChatRequest) -> None:
    """A request that is no preset's (History's Load into Playground): the preset loaded before
    is forgotten, with its variables, so the runs that follow are not filed under its name."""
    mark_last_run_previous("before a past run's request was loaded")
    load(request)
    for key in (PRESET_LOADED, PRESET_VARIABLES, VARIABLE_VALUES, TOOL_RESULTS):
        st.session_state.pop(key, None)


def prepare() -> None:
    """Before the sidebar is drawn (the shell calls it on every page run): the preset of a share
    link, and the draft in the address (after a reload), so that the sidebar shows their model
    on this very run."""
    load_share_link()
    if current_request() is None and (draft := _draft_in_address()) is not None:
        load(draft)  # a new request without one is made by ensure, on the model the sidebar picks


def ensure(model: str, local: bool = False) -> ChatRequest:
    """Called at the top of the page, before any request widget is drawn: the working request
    (made on first use), carrying the sidebar's model (a pick there is copied in here)."""
    if current_request() is None:
        load(_draft_in_address() or default_request(model, local))
    request = get_request()
    if model and model != request.model:
        request = request.model_copy(update={"model": model})
        EDITOR.load(request)
    return request


def load_share_link() -> None:
    """Load the preset of ?preset=TOKEN once per token; say so when the token is bad."""
    token = st.query_params.get(SHARE_PARAM)
    if not token or not share_token_is_new(token):
        return
    try:
        preset = from_share_token(token)
    except ShareLinkError as exc:
        say("error", f"The shared preset could not be loaded: {escape_markdown(str(exc))}")
        return
    load_preset(preset, "from the share link")  # no file hash: saving never overwrites a file unasked


def _draft_in_address() -> ChatRequest | None:
    token = st.query_params.get(DRAFT_PARAM)
    if not token:
        return None
    try:
        return ChatRequest.from_wire(json.loads(decode_token(token)))
    except (ShareLinkError, ValueError):  # a cut or edited address: start afresh, as without one
        return None


def keep_draft() -> None:
    """At the end of the page run: put the working request in the address (when it changed),
    so a reload starts from it. A share link's token is dropped once loaded."""
    body = get_request().to_wire()
    try:
        token = None if find_secrets(body) else encode_token(json.dumps(body, separators=(",", ":"),
                                                                      ensure_ascii=False))
    except ShareLinkError:  # too long for an address: the draft lives in this session only
        token = None
    if token is None:
        st.query_params.pop(DRAFT_PARAM, None)
    elif st.query_params.get(DRAFT_PARAM) != token:
        st.query_params[DRAFT_PARAM] = token
    st.query_params.pop(SHARE_PARAM, None)


# --- the run ----------------------------------------------------------------------------------


def request_run() -> None:
    """Run's on_click: the page run it starts sends the request (when nothing blocks it)."""
    st.session_state[_RUN_REQUESTED] = True


def take_run_request() -> bool:
    return st.session_state.pop(_RUN_REQUESTED, False)


def start_run(request: ChatRequest, endpoint: Endpoint, preset: str | None) -> Batch:
    """Send the request in a worker thread; it is the run in flight until it ends."""
    return RUN.start([(endpoint, request)], preset=preset)


stop_run = RUN.stop  # `Stop generating`


def run_in_flight() -> Batch | None:
    """The run in flight, if any; a finished one becomes the last run (a run stopped before its
    worker began sent nothing, and leaves no last run)."""
    finished = RUN.take_finished()
    if finished is not None and finished.runs[0] is not None:
        st.session_state[LAST] = finished.runs[0]
        st.session_state.pop(LAST_BEFORE, None)
        st.session_state[SAVE_ERROR] = "; ".join(finished.errors) or None
    if finished is not None:
        _answer_the_branch(finished.runs[0])
    return RUN.current()  # one that finished just now is drawn, and its view claims the redraw


def last_run() -> Run | None:
    return st.session_state.get(LAST)


ADDED = "last_run_added"  # the id of the last run once its answer is in the conversation


def _answer_the_branch(run: Run | None) -> None:
    """A run started by Regenerate or Edit and rerun from here: its answer joins the conversation
    (branches), or, with none (an error, stopped before any text), the cut messages come back."""
    conversation = EDITOR.conversation()
    if not branches.pending(conversation):
        return
    choice = run.choices[0] if run is not None and run.choices else None
    if choice is not None and choice.tool_calls:  # answered by the tool-call view (Send results and continue)
        branches.settle(conversation)
        return
    message = branches.answer_message(choice) if choice is not None and choice.text else None
    if message is None:
        branches.give_up(conversation)
        return
    branches.add_answer(conversation, message)
    st.session_state[ADDED] = run.id


def answer_addable() -> bool:
    """The last run has an answer that is not in the conversation yet (Add to conversation)."""
    run = last_run()
    return (run is not None and st.session_state.get(ADDED) != run.id and bool(run.choices)
            and bool(run.choices[0].text) and branches.answer_message(run.choices[0]) is not None)


def add_to_conversation() -> None:
    """Add to conversation's on_click: the answer becomes an assistant message, with a new empty
    user message below it for the next turn."""
    if answer_addable():
        run = last_run()
        branches.add_answer(EDITOR.conversation(), branches.answer_message(run.choices[0]))
        st.session_state[ADDED] = run.id


def mark_last_run_previous(when: str) -> None:
    """Another request was loaded: the answer still under Run is the previous request's, and
    must not read as the new one's result. `when`: "before “X” was loaded"."""
    if last_run() is not None:
        st.session_state[LAST_BEFORE] = when


def last_run_is_previous() -> str | None:
    """How the last run's request was replaced (mark_last_run_previous), or None."""
    return st.session_state.get(LAST_BEFORE)


def last_run_save_error() -> str | None:
    return st.session_state.get(SAVE_ERROR)


# --- presets loaded into the page -------------------------------------------------------------

PRESET_LOADED = "preset_loaded"  # {"name", "hash", "description", "tags"} of the preset last loaded
PRESET_VARIABLES = "preset_variables"  # declared variables (defaults, descriptions) of the last preset
PRESET_LINK = "preset_link_token"  # the share token already loaded in this session
_PRESET_FORMS_FOR = "_preset_forms_for"  # the loaded preset preset_bar's save form was last filled from


def load_preset(preset: Preset, source: str, digest: str | None = None) -> None:
    """Make the preset's request the working request (History, the Presets page, a share link,
    the Load preset bar), its `{{variables}}` kept as placeholders and their values set to the
    preset's defaults. `digest` is the hash of the file version read, so a later overwrite can
    tell whether the file changed since."""
    mark_last_run_previous(f"before “{preset.name}” was loaded")
    made_for = unconfigured_kind(preset)
    if made_for is None:
        load(preset.request)
    else:  # its model would be sent to a server that does not have it (a 404): this one's model
        model = sidebar.current_model()
        load(preset.request.model_copy(update={"model": model or preset.request.model}))
        say("warning", f"“{escape_markdown(preset.name)}” was made for {KIND_NAMES[made_for]} "
            f"(model {code_span(preset.request.model)}), and none is configured here. It is loaded on "
            f"{escape_markdown(sidebar.current_endpoint().name)} with its model, {code_span(model)}: "
            "Run sends it there. To use the preset's own model, configure that endpoint (README, Endpoints) "
            "and choose it in the sidebar.")
    remember_preset_file(preset, digest)
    st.session_state[PRESET_VARIABLES] = [v.model_dump() for v in preset.variables]
    st.session_state[TOOL_RESULTS] = dict(preset.tool_results)
    defaults = preset.defaults()
    st.session_state[VARIABLE_VALUES] = {name: default or "" for name, default in defaults.items()}
    name = escape_markdown(preset.name)
    if not defaults:
        say("success", f"Loaded “{name}” {source}.")
    else:
        needed = any(default is None for default in defaults.values())
        say("info" if needed else "success",
            f"Loaded “{name}” {source}. Its variables stay in the prompt as placeholders: set their values "
            "under **Variables**, and Run sends the request with them filled in.")


KIND_NAMES = {"sgp": "the Scale GenAI Platform", "openai": "an OpenAI-compatible endpoint"}


def unconfigured_kind(preset: Preset) -> str | None:
    """The kind of endpoint the preset was made for, when no endpoint of that kind is configured
    here (an SGP preset without an SGP key); None when it can run as it is."""
    kind = preset.endpoint.kind if preset.endpoint is not None else None
    if kind not in KIND_NAMES:  # local: always here; custom or none: anything goes
        return None
    return None if kind in {e.kind for e in sidebar.endpoints_by_name().values()} else kind


def open_preset(name: str, source: str) -> str | None:
    """Load the library's preset `name`; the error to show (already escaped), or None."""
    try:
        preset, digest = PresetStore().load_with_hash(name)
    except ValueError as exc:  # PresetStoreError, PresetFileError
        return escape_markdown(str(exc))
    load_preset(preset, source, digest)
    return None


def loaded_preset() -> dict:
    return st.session_state.get(PRESET_LOADED) or {}


def remember_preset_file(preset: Preset, digest: str | None) -> None:
    """The preset now loaded (or just saved), and the hash of its file's version."""
    st.session_state[PRESET_LOADED] = {"name": preset.name, "hash": digest, "description": preset.description,
                                       "tags": list(preset.tags)}


def preset_forms_need_filling(loaded: object) -> bool:
    """True once per loaded preset: preset_bar then fills its save form from it."""
    if st.session_state.get(_PRESET_FORMS_FOR) == loaded:
        return False
    st.session_state[_PRESET_FORMS_FOR] = loaded
    return True


def declared_variables() -> list[dict]:
    return st.session_state.get(PRESET_VARIABLES) or []


# --- variables: the request's {{placeholders}} and the values Run fills in ----------------------

VARIABLE_VALUES = "variable_values"  # variable name -> the text the user gave it (the Variables panel)


def variables() -> list[Variable]:
    """The `{{name}}` variables of the working request, in order of first use: as the loaded
    preset declares them (default, description), else required with no default (typed by hand)."""
    request = current_request()
    if request is None:
        return []
    declared = {v.get("name"): v for v in declared_variables()}
    return [Variable.model_validate(declared[name]) if name in declared else Variable(name=name)
            for name in variables_in(request)]


def variable_values() -> dict[str, str]:
    return st.session_state.setdefault(VARIABLE_VALUES, {})


def set_variable(name: str, text: str) -> None:
    variable_values()[name] = text


def values_to_send() -> dict[str, str | None]:
    """Per variable of the request: the text given, or its default when the field is empty (None:
    no value, Run waits for one)."""
    given = variable_values()
    return {var.name: given.get(var.name) or var.default for var in variables()}


def missing_variables() -> list[str]:
    return [name for name, value in values_to_send().items() if value is None]


def filled_request() -> ChatRequest | None:
    """What Run sends and Get code shows: the working request with its variables filled in (the
    request itself keeps its placeholders); None while one has no value, or with no request yet."""
    request = current_request()
    if request is None:
        return None
    try:
        return fill_variables(request, values_to_send())
    except MissingVariableError:
        return None


NOTICES = "playground"  # the page's queue of notices (playground.ui.common.notices)


def say(level: str, text: str) -> None:
    """Show `text` (markdown, escaped by the caller) once, as st.<level>, above the page."""
    notices.say(NOTICES, level, text, markdown=True)


def share_token_is_new(token: str) -> bool:
    """True once per token: a share link loads once, not on every page run."""
    if st.session_state.get(PRESET_LINK) == token:
        return False
    st.session_state[PRESET_LINK] = token
    return True


# --- answering tool calls (playground.ui.playground.tool_answers) -----------------------------

TOOL_RESULTS = "preset_tool_results"  # the loaded preset's tool_results: tool name -> fixed JSON or template
AUTO = "auto_continue"  # {"limit", "rounds", "seen"} while Auto-continue runs the loop
AUTO_NOTE = "auto_continue_note"  # (run id, level, text): why Auto-continue stopped, shown with that run


def tool_results() -> dict[str, Any]:
    return st.session_state.get(TOOL_RESULTS) or {}


def continue_conversation(messages: list[dict[str, Any]]) -> None:
    """Add turns at the end of the working request's conversation (playground.tools.continued: a
    tool_choice that forces a call becomes "none", and the page says so): every view (the messages
    editor, the JSON) redraws with them, and they can be edited and rerun like any turn."""
    before = get_request().to_wire()
    body = continued(before, messages)
    EDITOR.load(ChatRequest.from_wire(body))
    if body.get("tool_choice") != before.get("tool_choice"):
        say("info", "tool_choice forced a tool call, and would force another after every answer: the "
            "conversation goes on with tool_choice **none**, so the model answers with the results (set it to "
            "auto under Parameters, Tools, to let it call tools again).")


def auto_continue() -> dict[str, Any] | None:
    return st.session_state.get(AUTO)


def start_auto(limit: int) -> dict[str, Any]:
    st.session_state.pop(AUTO_NOTE, None)
    st.session_state[AUTO] = {"limit": limit, "rounds": 0, "seen": None}
    return st.session_state[AUTO]


def stop_auto(run_id: str, level: str | None = None, text: str = "") -> None:
    """Auto-continue ends; `text` (markdown, escaped by the caller) is shown with run `run_id`."""
    st.session_state.pop(AUTO, None)
    if level:
        st.session_state[AUTO_NOTE] = (run_id, level, text)


def auto_note(run_id: str) -> tuple[str, str] | None:
    note = st.session_state.get(AUTO_NOTE)
    return (note[1], note[2]) if note and note[0] == run_id else None

"""The one editor of a ChatRequest: the messages, every parameter group and the JSON view, kept
in sync, under a key prefix. The Playground draws one (prefix ""), each Compare pane its own
("cmp.0.", ...), each Experiments variant one over its source.

The request lives in st.session_state[prefix + "request"]. The form (parameters and messages)
and the JSON text are two views of it: each view's widgets write their change back with
`commit(request, source)`, and the editor remembers, per view, the fingerprint of the request
its widgets show; a view asks `needs_sync(view)` before drawing and, when the request changed
under it (the other view's edit, a preset, a past run, `load` from code), redraws its widgets
from the request. Errors that keep the request from being updated (bad JSON, an out-of-range
value) are kept per source (a widget's base key, "json" or a message's) and shown under their
widget; `problems()` says, by one rule for every page, what stops the request from running.

Every key the editor makes starts with its prefix: the widgets (prefix + "p_temperature",
prefix + "request_json", the message editor's prefix + "msg_..."), the group expanders and its
bookkeeping. The form's fields are playground.ui.common.request_fields; drawing them is
request_form, their callbacks request_sync, the JSON view request_json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import streamlit as st
from pydantic import ValidationError

from playground import json_errors
from playground.client.endpoint import Endpoint
from playground.client.schema import ChatRequest, describe_error, message_text
from playground.textsafe import escape_markdown
from playground.ui import sidebar
from playground.ui.common import branches, message_editor, request_form, request_json, widget_sync
from playground.ui.common.request_sync import FORM_VIEW, JSON_VIEW, endpoint_of

NO_USER_TEXT = "Write a user message first."


def fingerprint(request: ChatRequest) -> str:
    return json.dumps(request.to_wire(), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class RequestEditor:
    """prefix: the start of every key (one editor per prefix on a page); open_groups: parameter
    groups open when they hold something (False: all start folded, as in a Compare pane);
    on_json_commit: told of each request the JSON view commits (the Playground's sidebar follows
    its model); show_model: the form has a Model box (a Compare pane's); endpoint: gives the
    endpoint the request is sent to (its token limit field)."""

    prefix: str = ""
    open_groups: bool = True
    on_json_commit: Callable[[ChatRequest], None] | None = None
    show_model: bool = False  # a Model box above the parameters (the Playground's model is the sidebar's)
    # Where the request goes (issue 22): its token limit is kept in the field that endpoint reads
    # (Endpoint.token_limit_field), so the form, the JSON view and Get code show what is sent.
    endpoint: Callable[[], Endpoint | None] | None = None
    rerun: Callable[[], None] | None = None  # runs the request (Regenerate, Edit and rerun from here)

    def key(self, base: str) -> str:
        return self.prefix + base

    # --- the request ------------------------------------------------------------------------

    def request(self) -> ChatRequest | None:
        request = st.session_state.get(self.key("request"))
        return request if isinstance(request, ChatRequest) else None

    def get(self) -> ChatRequest:
        return st.session_state[self.key("request")]

    def load(self, request: ChatRequest) -> None:
        """Make `request` the one edited, from code: every view redraws its widgets from it."""
        st.session_state[self.key("request")] = request

    def ensure(self, make: Callable[[], ChatRequest]) -> ChatRequest:
        """The request, made by `make()` on first use."""
        request = self.request()
        if request is None:
            request = make()
            self.load(request)
        return request

    def commit(self, request: ChatRequest, source: str) -> None:
        """Store a request that came from one view ("form" or "json"): that view's widgets show it
        already (unless the request had been replaced under them); the others redraw."""
        previous = self.request()
        self.load(request)
        synced, shown = self._synced(), fingerprint(previous) if previous is not None else None
        view = JSON_VIEW if source == "json" else FORM_VIEW
        if synced.get(view) == shown:
            synced[view] = fingerprint(request)

    def update(self, **fields: Any) -> ChatRequest:
        """Set wire fields from code (None removes one): the views redraw. Raises ValidationError."""
        body = self.get().to_wire()
        for name, value in fields.items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        request = ChatRequest.from_wire(body)
        self.load(request)
        return request

    def follow_endpoint(self) -> None:
        """The endpoint changed (a Compare pane's, a variant's): the model becomes one the new
        server has (sidebar.pick_model's rule), or History would record the old server's model
        against the new one."""
        endpoint = endpoint_of(self)
        request = self.request()
        if endpoint is None or request is None:
            return
        model = sidebar.model_on(endpoint, request.model)
        if model and model != request.model:
            self.update(model=model)

    def needs_sync(self, view: str) -> bool:
        """Called by a view before it draws its widgets: True (once) when the request changed in a
        way the view's widgets do not show yet; the view then redraws them from the request (and
        the errors it had reported are gone with the values that caused them)."""
        current = fingerprint(self.get())
        synced = self._synced()
        if synced.get(view) == current:
            return False
        synced[view] = current
        for source in list(self.errors()):
            if (source == "json") == (view == JSON_VIEW):
                self.set_error(source, None)
        return True

    def _synced(self) -> dict[str, str]:
        return st.session_state.setdefault(self.key("_request_synced"), {})

    # --- what stops it ----------------------------------------------------------------------

    def errors(self) -> dict[str, str]:
        return st.session_state.setdefault(self.key("request_errors"), {})

    def set_error(self, source: str, message: str | None) -> None:
        errs = self.errors()
        if message:
            errs[source] = message
        else:
            errs.pop(source, None)

    def show_error(self, source: str) -> None:
        """Under a widget: why its last change was not taken, if it was not."""
        message = self.errors().get(source)
        if message:
            st.error(escape_markdown(message), icon=":material/error:")
            if "invalid JSON at line" in message:  # a JSON field: its line, a caret under the column
                _, broken = json_errors.parse(widget_sync.value(self.key(source)) or "")
                if broken is not None:
                    st.code(broken.excerpt, language=None)

    def blockers(self) -> list[str]:
        """A view holding a value that is not valid: the request shown is not the one kept."""
        # The first line: a JSON error's excerpt (its line and caret) is shown under its own box.
        return [f"Fix {where(source)} first: {message.splitlines()[0]}" for source, message in self.errors().items()]

    def problems(self, request: ChatRequest | None = None) -> list[str]:
        """What stops `request` (default: the edited one) from running, by the one rule every page
        uses: a view's invalid value, then no user message with text."""
        request = request if request is not None else self.request()
        found = self.blockers()
        if request is None or not has_user_text(request):
            found.append(NO_USER_TEXT)
        return found

    # --- drawing ----------------------------------------------------------------------------

    def group_key(self, title: str) -> str:
        """The key of the parameter group `title`'s expander (whether it is open)."""
        return self.key(f"pgroup_{title.lower().replace(' ', '_')}")

    def conversation(self) -> message_editor.Conversation:
        return message_editor.Conversation(self.key("msg"), self._read_messages, self._commit_messages,
                                           self.show_error, self.rerun, branches.controls if self.rerun else None)

    def messages(self, disabled: bool = False) -> None:
        """The system prompt and the conversation."""
        message_editor.render(self.conversation(), disabled=disabled)

    def parameters(self, disabled: bool = False) -> None:
        """Every parameter group, with the labels, ranges and help of the API's fields."""
        request_form.render(self, disabled=disabled)

    def json(self, disabled: bool = False) -> None:
        """The whole request as JSON, the second view."""
        request_json.render(self, disabled=disabled)

    def _read_messages(self) -> list[dict[str, Any]]:
        return message_editor.request_messages(self.get())

    def _commit_messages(self, messages: list[dict[str, Any]], source: str) -> bool:
        return self.commit_field("messages", messages, source)

    def commit_field(self, name: str, value: Any, source: str) -> bool:
        """A form widget's change of one wire field (None: the field is not sent), committed;
        False, and the API's reason under `source`, when the request does not validate."""
        body = self.get().to_wire()
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
        try:
            new = ChatRequest.from_wire(body)
        except ValidationError as error:
            self.set_error(source, "; ".join(describe_error(error)))
            return False
        self.set_error(source, None)
        self.commit(new, source="form")
        return True


def has_user_text(request: ChatRequest) -> bool:
    return any(m.role == "user" and message_text(m).strip() for m in request.messages)


def where(source: str) -> str:
    """A source of errors, as the page names it."""
    if source == "json":
        return "the JSON view"
    if "msg_" in source:
        return "the messages"
    return source.removeprefix("p_").replace("_", " ")

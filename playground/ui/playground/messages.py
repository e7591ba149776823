"""The Playground's messages: the common message editor (playground.ui.common.message_editor)
over the working request's messages. An edit that makes the request invalid is reported under
its widget and keeps Run disabled (request_state's errors)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from playground.client.schema import ChatRequest, describe_error
from playground.ui.common import message_editor
from playground.ui.playground import state as request_state

SCOPE = "msg"


def _read() -> list[dict[str, Any]]:
    return message_editor.request_messages(request_state.get_request())


def _commit(messages: list[dict[str, Any]], source: str) -> bool:
    body = request_state.get_request().to_wire()
    body["messages"] = messages
    try:
        new = ChatRequest.from_wire(body)
    except ValidationError as error:
        request_state.set_error(source, "; ".join(describe_error(error)))
        return False
    request_state.set_error(source, None)
    request_state.commit(new, source="form")
    return True


CONVERSATION = message_editor.Conversation(SCOPE, _read, _commit, request_state.show_error)


def render() -> None:
    message_editor.render(CONVERSATION)

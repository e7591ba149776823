"""Tool calls in the sandbox: how tools, calls and results are written into the prompt, and how
the model's answer is read back as OpenAI's tool_calls.

SmolLM2's chat template knows only messages with a role and a content, so the sandbox writes
tools in a plain format of its own (the same for any model whose template has no tools):

- the tools go at the end of the (first) system message, one JSON line per function
  ({"name", "description", "parameters"}), after a line saying how to call one; a system message
  is added when the conversation has none;
- an assistant message's tool calls are its content: one JSON line per call,
  {"name": ..., "arguments": {...}}, after its text if it has any;
- a tool message becomes a user message: "Result of NAME: CONTENT" (NAME found through its
  tool_call_id among the calls before it).

The model answers a call in that same form (grammars.tool_call_grammar holds it to it), and
CallReader turns the text, as it arrives, into calls: the name as soon as it is written, then
the arguments piece by piece, as OpenAI streams them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

HOW_AUTO = ("You can call the functions below. To call one, answer with only a JSON object "
            '{"name": <function name>, "arguments": <its arguments as a JSON object>}')
HOW_REQUIRED = ("Answer by calling one of the functions below, with only a JSON object "
                '{"name": <function name>, "arguments": <its arguments as a JSON object>}')
HOW_NAMED = ("Answer by calling the function {name} below, with only a JSON object "
             '{{"name": "{name}", "arguments": <its arguments as a JSON object>}}')
PARALLEL = ", one line per call when you call several"
OTHERWISE = ". Otherwise answer in plain text."


def call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def tools_text(functions: list[dict[str, Any]], choice: str, named: str | None, parallel: bool) -> str:
    """The lines the system message ends with: how to call, then the functions."""
    if named is not None:
        how = HOW_NAMED.format(name=named)
    else:
        how = HOW_REQUIRED if choice == "required" else HOW_AUTO
    how += PARALLEL if parallel and named is None else ""
    how += OTHERWISE if choice == "auto" else "."
    lines = [json.dumps({key: f[key] for key in ("name", "description", "parameters") if f.get(key) is not None},
                        ensure_ascii=False) for f in functions]
    return "\n".join([how, "Functions:", *lines])


def with_tools(messages: list[dict[str, str]], text: str) -> list[dict[str, str]]:
    """The messages with `text` at the end of the first system message (a new one when none)."""
    for i, message in enumerate(messages):
        if message["role"] == "system":
            joined = f"{message['content']}\n\n{text}" if message["content"] else text
            return [*messages[:i], {**message, "content": joined}, *messages[i + 1:]]
    return [{"role": "system", "content": text}, *messages]


def calls_text(calls: list[tuple[str, str]]) -> str:
    """An assistant message's calls ((name, arguments JSON text) each) as the model writes them."""
    lines = []
    for name, arguments in calls:
        try:
            value: Any = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            value = arguments  # as it was sent: the model sees what it (or the user) wrote
        lines.append(json.dumps({"name": name, "arguments": value}, ensure_ascii=False))
    return "\n".join(lines)


def result_text(name: str | None, content: str) -> str:
    return f"Result of {name}: {content}" if name else f"Result: {content}"


# --- reading the answer -----------------------------------------------------------------------


@dataclass
class CallDelta:
    """What a piece of the answer added to call `index`: its start (id and name), or arguments."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


@dataclass
class Call:
    id: str
    name: str
    arguments: str = ""


@dataclass
class CallReader:
    """Reads a tool-call answer ({"name": ..., "arguments": {...}} objects, one per line) as it
    arrives. The grammar guarantees the shape; this only finds where the name and arguments are."""

    calls: list[Call] = field(default_factory=list)
    _state: str = "between"  # between calls, in a call's head, in its arguments, after them
    _head: str = ""
    _named: bool = False  # the call whose head is being read has its name
    _depth: int = 0
    _in_string: bool = False
    _escaped: bool = False

    def feed(self, text: str) -> list[CallDelta]:
        deltas: list[CallDelta] = []
        pieces: list[str] = []  # argument characters of the current call in this piece
        for char in text:
            if self._state == "between":
                if char == "{":
                    self._state, self._head, self._named = "head", "{", False
            elif self._state == "head":
                self._read_head(char, deltas, pieces)
            elif self._state == "arguments":
                pieces.append(char)
                self._read_arguments(char)
                if self._depth == 0:
                    self._state = "tail"
            elif char == "}":  # tail: the call's object closes
                self._flush(pieces, deltas)
                self._state = "between"
        self._flush(pieces, deltas)
        return deltas

    def _read_head(self, char: str, deltas: list[CallDelta], pieces: list[str]) -> None:
        before, self._head = self._head, self._head + char
        if not self._named:
            name = _head_name(self._head)
            if name is not None:
                self._named = True
                self.calls.append(Call(id=call_id(), name=name))
                deltas.append(CallDelta(index=len(self.calls) - 1, id=self.calls[-1].id, name=name))
        elif char == "{" and before.rstrip().endswith(":"):  # `, "arguments": {`
            self._state, self._depth, self._in_string, self._escaped = "arguments", 1, False, False
            pieces.append(char)

    def _read_arguments(self, char: str) -> None:
        if self._in_string:
            if self._escaped:
                self._escaped = False
            elif char == "\\":
                self._escaped = True
            elif char == '"':
                self._in_string = False
        elif char == '"':
            self._in_string = True
        elif char in "{[":
            self._depth += 1
        elif char in "}]":
            self._depth -= 1

    def _flush(self, pieces: list[str], deltas: list[CallDelta]) -> None:
        if pieces:
            text = "".join(pieces)
            pieces.clear()
            self.calls[-1].arguments += text
            deltas.append(CallDelta(index=len(self.calls) - 1, arguments=text))


def _head_name(head: str) -> str | None:
    """The function's name once the head `{"name": "..."` holds all of it."""
    start = head.find('"name"')
    if start < 0:
        return None
    colon = head.find(":", start + 6)
    quote = head.find('"', colon + 1) if colon >= 0 else -1
    if quote < 0:
        return None
    end = head.find('"', quote + 1)  # function names hold no quote or backslash (OpenAI's pattern)
    return head[quote + 1:end] if end >= 0 else None

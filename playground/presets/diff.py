"""Compare two presets: messages side by side (changed words marked) and parameters as rows.

Data only: playground/ui/presets/diff_view.py draws what these return.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from playground.client.schema import message_text
from playground.presets.model import Preset


@dataclass
class MessageRow:
    index: int
    role_a: str | None
    text_a: str | None
    role_b: str | None
    text_b: str | None

    @property
    def changed(self) -> bool:
        return (self.role_a, self.text_a) != (self.role_b, self.text_b)


@dataclass
class ParamRow:
    field: str
    a: str
    b: str

    @property
    def changed(self) -> bool:
        return self.a != self.b


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _message_parts(preset: Preset) -> list[tuple[str, str]]:
    out = []
    for message, wire in zip(preset.request.messages, preset.request.to_wire()["messages"]):
        text = message_text(message)
        extra = {k: v for k, v in wire.items() if k not in ("role", "content")}
        if extra:  # tool calls, names, tool_call_id: shown after the text
            text = (text + "\n" if text else "") + json.dumps(extra, ensure_ascii=False, sort_keys=True)
        out.append((message.role, text))
    return out


def message_rows(a: Preset, b: Preset) -> list[MessageRow]:
    left, right = _message_parts(a), _message_parts(b)
    rows = []
    for i in range(max(len(left), len(right))):
        role_a, text_a = left[i] if i < len(left) else (None, None)
        role_b, text_b = right[i] if i < len(right) else (None, None)
        rows.append(MessageRow(i, role_a, text_a, role_b, text_b))
    return rows


def param_rows(a: Preset, b: Preset) -> list[ParamRow]:
    """Every parameter of either request (messages aside), then the preset's own fields."""
    wa = {k: v for k, v in a.request.to_wire().items() if k != "messages"}
    wb = {k: v for k, v in b.request.to_wire().items() if k != "messages"}
    keys = list(wa) + [k for k in wb if k not in wa]
    rows = [ParamRow(k, _show(wa.get(k)), _show(wb.get(k))) for k in keys]
    da, db = a.to_dict(), b.to_dict()
    for key in ("description", "tags", "endpoint", "variables"):
        rows.append(ParamRow(f"(preset) {key}", _show(da[key]), _show(db[key])))
    return rows


_WORDS = re.compile(r"\S+\s*|\s+")

Piece = tuple[str, bool]  # a run of words, and whether it is not in the other text


def word_diff(old: str | None, new: str | None) -> tuple[list[Piece], list[Piece]]:
    """Both texts as runs of words, those removed from old and added in new marked True."""
    a, b = _WORDS.findall(old or ""), _WORDS.findall(new or "")
    left: list[Piece] = []
    right: list[Piece] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        chunk_a, chunk_b = "".join(a[i1:i2]), "".join(b[j1:j2])
        if chunk_a:
            left.append((chunk_a, op != "equal"))
        if chunk_b:
            right.append((chunk_b, op != "equal"))
    return left, right

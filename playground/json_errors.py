"""Where a JSON text is broken, shown as a reader finds it: the line and column, and the line
itself with a caret under the column (not "line 1, column 450"). Used by every place that
parses JSON a user typed (the request's JSON view, the form's JSON fields, the tools editor).
No presentation framework here: the UI puts `excerpt` in a code block, where columns line up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

WINDOW = 72  # characters of a long line shown around the column


@dataclass(frozen=True)
class JSONErrorAt:
    line: int  # 1-based
    column: int  # 1-based, in characters
    message: str  # the parser's words: "Expecting ',' delimiter"
    excerpt: str  # "3 |   "a": 1 "b"\n  |          ^" (a long line cut around the column, with …)

    @property
    def headline(self) -> str:
        return f"Invalid JSON at line {self.line}, column {self.column}: {self.message}"

    def __str__(self) -> str:
        return f"{self.headline}\n{self.excerpt}"


def locate(error: json.JSONDecodeError) -> JSONErrorAt:
    """The place of `error` in the text it was parsing (error.doc)."""
    lines = error.doc.splitlines() or [""]
    text = lines[error.lineno - 1] if error.lineno <= len(lines) else ""
    column = error.colno - 1  # 0-based from here
    start = 0
    if len(text) > WINDOW:  # keep the column in view, about a third from the left
        start = max(0, min(column - WINDOW // 3, len(text) - WINDOW))
    shown = text[start:start + WINDOW].expandtabs(1)  # one column per tab, so the caret lines up
    lead, tail = ("…" if start > 0 else ""), ("…" if start + WINDOW < len(text) else "")
    gutter = f"{error.lineno} | "
    caret = " " * (len(gutter) - 2) + "| " + " " * (len(lead) + column - start) + "^"
    return JSONErrorAt(error.lineno, error.colno, error.msg, f"{gutter}{lead}{shown}{tail}\n{caret}")


def parse(text: str) -> tuple[object, JSONErrorAt | None]:
    """json.loads(text), or None and where it broke."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, locate(error)

"""One way to show a message that must survive the rerun after a click: a callback (or a page
run that is about to rerun or switch page) says it, and the page shows it once, at the top of
its next run, then forgets it. Every page uses this; each names its own queue.

`say(page, level, text)`: level is success, info, warning or error; `text` is plain text
(escaped when shown) unless markdown=True (the caller escaped what came from outside).
"""

from __future__ import annotations

import streamlit as st

from playground.textsafe import escape_markdown

_KEY = "_notices"  # page -> [(level, markdown)]
LEVELS = ("success", "info", "warning", "error")


def say(page: str, level: str, text: str, *, markdown: bool = False) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    st.session_state.setdefault(_KEY, {}).setdefault(page, []).append(
        (level, text if markdown else escape_markdown(text)))


def take(page: str) -> list[tuple[str, str]]:
    """The page's notices (level, markdown), in the order said; forgotten once taken."""
    return st.session_state.get(_KEY, {}).pop(page, [])


def show(page: str) -> None:
    """Draw the page's notices here, each once."""
    for level, text in take(page):
        getattr(st, level)(text)

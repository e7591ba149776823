"""The preset diff as HTML: each message's text with the words the other side lacks marked
(removed struck through in red, added in green), in a bordered cell. Text is escaped first."""

from __future__ import annotations

from playground.presets.diff import word_diff
from playground.textsafe import escape_html

REMOVED_STYLE = "background:#ffd7d5;text-decoration:line-through"
ADDED_STYLE = "background:#ccf2d1"


def word_diff_html(old: str | None, new: str | None) -> tuple[str, str]:
    """Both texts as escaped HTML, words removed from old and added in new highlighted."""
    left, right = word_diff(old, new)

    def html(pieces: list[tuple[str, bool]], style: str) -> str:
        return "".join(f'<span style="{style}">{escape_html(text)}</span>' if marked else escape_html(text)
                       for text, marked in pieces)

    return html(left, REMOVED_STYLE), html(right, ADDED_STYLE)


def message_cell_html(role: str | None, body_html: str, changed: bool) -> str:
    border = "#e8a33d" if changed else "#d0d4da"
    if role is None:
        return f'<div style="border:1px dashed {border};padding:6px;color:#888">(no message)</div>'
    return (f'<div style="border:1px solid {border};border-radius:6px;padding:6px;white-space:pre-wrap;'
            f'font-size:0.9rem"><b>{escape_html(role)}</b><br>{body_html}</div>')

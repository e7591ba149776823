"""Make model text safe to show as text, in markdown or in HTML.

Model output is data, never markup: a model that writes ``<script>``, ``<img onerror=...>``,
``[click](javascript:...)``, ``**bold**``, ``$x^2$``, ``# Header`` or a code fence must be shown
exactly as it wrote it, and nothing in it may run or render.

- ``escape_markdown(text)``: for ``st.markdown`` / ``st.write`` / widget labels. ``&``, ``<`` and
  ``>`` become HTML entities (html.escape), every other ASCII punctuation character gets a
  backslash (CommonMark allows a backslash before any ASCII punctuation). That covers markdown's
  ``\\ * _ [ ] $ # `` and backtick, and also lists (``-`` ``+`` ``1.``), tables (``|``),
  strikethrough (``~``), images (``!``) and Streamlit's ``:color[...]`` directives.
  Streamlit's renderer still links bare http(s)/www URLs (escapes do not stop its linkify);
  such a link only navigates, it never runs anything. Line breaks are kept as hard breaks and leading indentation as
  non-breaking spaces, so the text keeps its shape and never turns into an indented code block.
  (Streamlit still turns ``:smile:``-style shortcodes into emoji; harmless, and not markup.)
- ``code_span(text)``: for text shown *inside* backticks in markdown. Code spans show their
  content literally, so escaping there would show the backslashes; instead the fence is made
  longer than any run of backticks in the text.
- ``escape_html(text)``: for ``st.html`` or ``st.markdown(..., unsafe_allow_html=True)``. Every
  character that means something in HTML or markdown becomes a numeric character reference,
  which both renderers show as the character itself and neither treats as syntax.
"""

from __future__ import annotations

import re
import string

# Markdown: entities for the HTML-significant characters, a backslash for the rest.
_MARKDOWN_TABLE = {ord(c): "\\" + c for c in string.punctuation}
_MARKDOWN_TABLE.update({ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"})

# HTML: numeric references for HTML's five plus markdown's specials (safe inside markdown too).
_HTML_CHARS = "&<>\"'\\*_[]$#`~|{}()!:=+-^"
_HTML_TABLE = {ord(c): f"&#{ord(c)};" for c in _HTML_CHARS}

_LEADING_WS = re.compile(r"^[ \t]+", re.MULTILINE)


def escape_markdown(text: str | None) -> str:
    """Text that st.markdown shows literally: no emphasis, links, math, headers, code or HTML."""
    if not text:
        return ""
    escaped = text.replace("\r\n", "\n").replace("\r", "\n").translate(_MARKDOWN_TABLE)
    if "\n" in escaped or escaped[:1] in (" ", "\t"):
        escaped = _LEADING_WS.sub(_nbsp, escaped)
        escaped = escaped.replace("\n", "  \n")  # a hard line break, not a soft one
    return escaped


def escape_html(text: str | None) -> str:
    """Text that is inert inside HTML (element content or a quoted attribute) and in markdown."""
    if not text:
        return ""
    return text.translate(_HTML_TABLE)


def code_span(text: str | None) -> str:
    """A markdown code span showing `text` verbatim (newlines become spaces, as in any span)."""
    text = (text or "").replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    if not text:
        return "` `"
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_BACKTICKS = re.compile(r"`+")


def _nbsp(match: re.Match[str]) -> str:
    return match.group(0).replace("\t", "    ").replace(" ", "&nbsp;")

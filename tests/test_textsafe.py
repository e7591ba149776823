"""Model text rendered through a real CommonMark renderer (markdown-it-py, with GFM tables,
strikethrough, autolinks and dollar math switched on) must come out as exactly the text."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import linkify_it  # noqa: F401 - markdown-it's linkify needs it; imported so a missing one fails here
import markdown_it
import pytest
from mdit_py_plugins import dollarmath

from playground.textsafe import escape_html, escape_markdown

NASTY = [
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    "[click me](javascript:alert(1)) and ![img](http://evil.example/x.png)",
    "**bold** __also__ *em* _em_ ~~gone~~",
    "$x^2$ and $$\\int f$$ cost $5 or $6",
    "# Header\n## Sub\nSetext\n---\n===",
    "```python\nprint('hi')\n```\n`inline`",
    "    indented code block\n\ttabbed",
    "- item\n+ item\n* item\n1. one\n2) two",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "> quote\n>> deeper",
    "visit https://evil.example or www.evil.example now",
    "back\\slash \\*not em\\* and &amp; &lt;tag&gt; &#60;",
    ":red[coloured] :material/home: {braces} <http://auto.link>",
    "<div>\n\n*inside*\n\n</div>",
    "line one\nline two\r\nline three\rfour",
    "trailing spaces  \nand\\\nbackslash break",
    "[ref]: http://evil.example\n[ref]",
    "plain text, nothing special.",
    "",
]


class _Text(HTMLParser):
    """Collects text and the tags seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "br":
            self.text.append("\n")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        self.text.append(data)


def _renderer():
    md = markdown_it.MarkdownIt("commonmark", {"linkify": True}).enable(["table", "strikethrough", "linkify"])
    return md.use(dollarmath.dollarmath_plugin, allow_space=True, double_inline=True)


def _visible(rendered: str) -> tuple[str, set[str]]:
    parser = _Text()
    parser.feed(rendered)
    text = "".join(parser.text)
    # Paragraph ends and soft breaks are whitespace, not content; compare line by line.
    return text, parser.tags


def _normalise(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    return [line.rstrip().replace("\t", "    ") for line in text.split("\n") if line.strip()]


@pytest.mark.parametrize("text", NASTY)
def test_markdown_renders_the_text_verbatim(text):
    rendered = _renderer().render(escape_markdown(text))
    visible, tags = _visible(rendered)
    assert tags <= {"p", "br"}, (text, rendered)
    assert _normalise(visible) == _normalise(text), rendered


def test_markdown_unescaped_would_render_markup():
    # The check above can fail: the same renderer turns raw model text into markup.
    for text in NASTY[2:7]:
        _, tags = _visible(_renderer().render(text))
        assert tags - {"p", "br"}, text


def test_markdown_keeps_indentation_and_lines():
    escaped = escape_markdown("a\n    b")
    assert "&nbsp;&nbsp;&nbsp;&nbsp;b" in escaped
    assert "  \n" in escaped
    assert "<" not in escape_markdown("<b>") and "&lt;b&gt;" in escape_markdown("<b>")


def test_escape_markdown_of_none_and_empty():
    assert escape_markdown(None) == "" and escape_markdown("") == ""
    assert escape_html(None) == "" and escape_html("") == ""


@pytest.mark.parametrize("text", NASTY)
def test_html_is_inert_as_html(text):
    escaped = escape_html(text)
    assert not re.search(r"[<>\"']", escaped)
    parser = _Text()
    parser.feed(f'<span title="{escaped}">{escaped}</span>')
    assert parser.tags == {"span"}
    assert "".join(parser.text) == text
    assert html.unescape(escaped) == text


@pytest.mark.parametrize("text", NASTY)
def test_html_is_inert_inside_markdown_with_html_allowed(text):
    # st.markdown(unsafe_allow_html=True) runs markdown over the HTML we build: still only text.
    md = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md = md.use(dollarmath.dollarmath_plugin, allow_space=True, double_inline=True)
    single_line = escape_html(text).replace("\n", "&#10;")
    rendered = md.render(f"<span>{single_line}</span>")
    visible, tags = _visible(rendered)
    assert tags <= {"p", "span"}, rendered
    assert visible.strip("\n") == text.strip("\n") or _normalise(visible) == _normalise(text)


@pytest.mark.parametrize("text", [t for t in NASTY if t] + ["``double``", "`edge`", " spaced ", "a``b`c"])
def test_code_span_shows_text_verbatim(text):
    from playground.textsafe import code_span

    rendered = _renderer().render("Token " + code_span(text) + " here")
    visible, tags = _visible(rendered)
    assert tags <= {"p", "code"}, rendered
    flat = text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    assert visible.strip() == f"Token {flat} here".strip()

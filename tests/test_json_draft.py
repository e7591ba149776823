"""Issue 22, the JSON view keeps what you typed: a draft that does not parse survives a form edit
(and says it is not applied), its error shows the line with a caret under the column, a fixed
draft applies its edits on top of the form's, and Revert is the one way to drop it.
The browser twin is tests/test_browser_json_draft.py."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from playground.json_errors import JSONErrorAt, parse
from tests.apptest_support import open_app, sandbox_stand_in, widget

BROKEN = '{\n  "model": "scripted/scripted-model",\n  "temperature": 0.3\n  "messages": []\n}'


@pytest.fixture
def server(monkeypatch, tmp_path):
    with sandbox_stand_in(tmp_path, monkeypatch, models=[("scripted-model", "scripted")]) as scripted:
        yield scripted


def test_the_line_and_a_caret_under_the_column():
    assert parse(BROKEN) == (None, JSONErrorAt(4, 3, "Expecting ',' delimiter",
                                               '4 |   "messages": []\n  |   ^'))
    assert str(parse("[1, 2,]")[1]) == "Invalid JSON at line 1, column 7: Expecting value\n1 | [1, 2,]\n  |       ^"
    assert parse('{"a": [1, 2]}') == ({"a": [1, 2]}, None)


def test_a_long_line_is_cut_around_the_column():
    """Not "line 1, column 450" and a wall of text: the stretch of the line around the column."""
    text = json.dumps({"messages": [{"role": "user", "content": "word " * 100}]})[:-1] + ' "x"}'
    error = parse(text)[1]
    assert error.line == 1 and error.column == len(text) - 3
    shown, caret = error.excerpt.split("\n")
    assert shown.startswith("1 | …") and len(shown) < 90
    assert shown[caret.index("^")] == '"'  # the caret stands under the character the parser stopped at
    assert shown.endswith('"x"}')


def test_tabs_and_numbers_of_two_digits_keep_the_caret_in_place():
    text = "\n" * 11 + '{\t"a": 1\t"b": 2}'
    error = parse(text)[1]
    shown, caret = error.excerpt.split("\n")
    assert shown.startswith("12 | ") and caret.startswith("   | ")
    assert shown[caret.index("^")] == '"' and shown[caret.index("^") + 1] == "b"


def unescaped(text) -> str:
    """Shown text, the page's markdown escapes removed."""
    return re.sub(r"\\(.)", r"\1", str(text))


def json_text(at: AppTest) -> str:
    return widget(at.text_area, "request_json").value


def test_a_form_edit_keeps_the_broken_draft_and_says_it_is_not_applied(server):
    at = open_app()
    widget(at.text_area, "request_json").set_value(BROKEN).run()
    assert [unescaped(e.value).split("\n")[0] for e in at.error] == [
        "Invalid JSON at line 4, column 3: Expecting ',' delimiter"]
    assert [c.value for c in at.code if c.value.startswith("4 |")] == ['4 |   "messages": []\n  |   ^']
    assert at.button(key="run").disabled

    widget(at.number_input, "p_top_p").set_value(0.5).run()  # a form edit while the draft is broken
    assert not at.exception
    assert json_text(at) == BROKEN  # nothing typed is lost
    assert at.session_state["request"].top_p == 0.5  # the form's edit is taken
    assert [unescaped(w.value) for w in at.warning if str(w.value).startswith("Not applied")] == [
        "Not applied: the request changed since (in the form, or a preset was loaded), and this text is your draft, "
        "kept as you typed it. Once it is fixed, its edits are applied on top of those changes."]
    assert at.button(key="run").disabled

    # fixed: the draft's edits (model, temperature, messages) land on top of the form's top_p
    fixed = json.loads(BROKEN.replace('0.3\n', '0.3,\n').replace('"messages": []',
                                                                    '"messages": [{"role": "user", "content": "Hi"}]'))
    widget(at.text_area, "request_json").set_value(json.dumps(fixed)).run()
    request = at.session_state["request"]
    assert (request.temperature, request.top_p, request.messages[0].content) == (0.3, 0.5, "Hi")
    assert json.loads(json_text(at)) == request.to_wire()  # the view shows the request it made
    assert not [w for w in at.warning if str(w.value).startswith("Not applied")]
    assert not at.error and not at.button(key="run").disabled


def test_revert_drops_the_draft_for_the_request(server):
    at = open_app()
    before = at.session_state["request"]
    widget(at.text_area, "request_json").set_value(BROKEN).run()
    at.button(key="json_revert").click().run()
    assert json.loads(json_text(at)) == before.to_wire()
    assert not at.error
    assert [b.key for b in at.button if b.key == "json_revert"] == []


def test_a_form_json_field_shows_its_broken_line_with_a_caret(server):
    """The form's JSON fields (logit_bias, metadata, ...) name the place the same way as the JSON view."""
    at = open_app()
    widget(at.text_area, "p_logit_bias").set_value('{"42": -100,\n "7" 5}').run()
    assert any("invalid JSON at line 2, column 6" in unescaped(e.value) for e in at.error)
    assert [c.value for c in at.code if c.value.startswith("2 | ")] == ['2 |  "7" 5}\n  |      ^']
    widget(at.text_area, "p_logit_bias").set_value('{"42": -100, "7": 5}').run()
    assert not [c for c in at.code if c.value.startswith("2 | ")]

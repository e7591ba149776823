"""The tools editor: playground.tool_specs (templates, a schema typed as JSON, imported tool lists)
and the editor in the common request form, through AppTest on the Playground and a Compare pane."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from playground.tool_specs import ToolSpecError, from_template, import_tools, merge, parse_parameters
from tests.apptest_support import app_test, open_groups, sandbox_stand_in, whole_app, widget

# --- the library ----------------------------------------------------------------------------------


def test_a_template_gets_a_free_name():
    tool = from_template("get_weather", set())
    assert tool["type"] == "function" and tool["function"]["name"] == "get_weather"
    assert tool["function"]["parameters"]["required"] == ["city"]
    assert from_template("get_weather", {"get_weather", "get_weather_2"})["function"]["name"] == "get_weather_3"
    tool["function"]["parameters"]["required"].append("x")  # a copy: the template is untouched
    assert from_template("get_weather", set())["function"]["parameters"]["required"] == ["city"]


def test_a_broken_schema_is_named_by_line_and_column_with_a_caret():
    text = '{\n  "type": "object",\n  "properties": {"city": {"type": "string"}\n}'
    with pytest.raises(ToolSpecError) as caught:
        parse_parameters(text)
    head, excerpt = str(caught.value).split("\n", 1)
    assert head == "Invalid JSON at line 4, column 2: Expecting ',' delimiter"
    assert excerpt == "4 | }\n  |  ^"


def test_a_schema_that_is_not_a_json_schema_names_the_keyword():
    with pytest.raises(ToolSpecError, match=re.escape("Not a valid JSON Schema: properties.city.type: 'text' is not "
                                                      "valid under any of the given schemas")):
        parse_parameters('{"type": "object", "properties": {"city": {"type": "text"}}}')
    assert parse_parameters("  ") is None
    assert parse_parameters('{"type": "object"}') == {"type": "object"}


FN = {"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}


@pytest.mark.parametrize("pasted", [
    [{"type": "function", "function": FN}],  # chat completions
    [FN],  # functions
    [{"type": "function", **FN}],  # Responses API
    [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}],  # Anthropic
    {"model": "gpt-4o", "messages": [], "tools": [{"type": "function", "function": FN}]},  # a request body
    {"type": "function", "function": FN},  # one tool
])
def test_import_reads_the_usual_shapes(pasted):
    assert import_tools(json.dumps(pasted)) == [{"type": "function", "function": FN}]


@pytest.mark.parametrize("pasted, reason", [
    ('[{"type": "web_search"}]', "item 1: only function tools can be imported, not type 'web_search'"),
    ('[{"name": "get weather"}]', "item 1: 'get weather': a function name is 1 to 64 letters, digits, _ or -"),
    ('[{"name": "a"}, {"name": "a"}]', "a defined more than once"),
    ('[{"name": "a", "parameters": {"type": 5}}]', "item 1 (a): parameters is not a valid JSON Schema: type: 5"),
    ("[]", "the list is empty"),
    ('[{"name": "a",}]', "Invalid JSON at line 1, column 15: Expecting property name enclosed in double quotes"),
])
def test_import_says_what_is_wrong(pasted, reason):
    with pytest.raises(ToolSpecError, match=re.escape(reason)):
        import_tools(pasted)


def test_merge_replaces_a_function_of_the_same_name_in_place():
    old = [{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b"}}]
    new = [{"type": "function", "function": {"name": "b", "description": "new"}},
           {"type": "function", "function": {"name": "c"}}]
    merged, replaced = merge(old, new)
    assert [t["function"] for t in merged] == [{"name": "a"}, {"name": "b", "description": "new"}, {"name": "c"}]
    assert replaced == ["b"]


# --- the editor on the page ------------------------------------------------------------------------


@pytest.fixture
def server(monkeypatch, tmp_path):
    with sandbox_stand_in(tmp_path, monkeypatch, models=[("scripted-model", "scripted")]) as scripted:
        yield scripted


def open_app(prefix: str = "", page: str | None = None) -> AppTest:
    at = app_test(page) if page else whole_app()
    open_groups(at, prefix)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tools_of(at: AppTest, key: str = "request") -> list[dict]:
    return at.session_state[key].to_wire().get("tools") or []


def unescaped(elements) -> list[str]:
    return [re.sub(r"\\(.)", r"\1", str(e.value)) for e in elements]


def test_add_edit_break_fix_and_delete_a_function(server):
    at = open_app()
    widget(at.selectbox, "p_tool_template").set_value("get_weather").run()
    at.button(key="p_tool_add").click().run()
    assert [t["function"]["name"] for t in tools_of(at)] == ["get_weather"]
    assert widget(at.text_input, "p_tool0_name").value == "get_weather"
    assert json.loads(widget(at.text_area, "p_tool0_parameters").value)["required"] == ["city"]
    # a schema with a missing comma: named by line and column, the line shown with a caret, Run disabled
    broken = '{\n  "type": "object",\n  "properties": {"city": {"type": "string"}}\n  "required": ["city"]\n}'
    widget(at.text_area, "p_tool0_parameters").set_value(broken).run()
    assert "Invalid JSON at line 4, column 3: Expecting ',' delimiter" in unescaped(at.error)
    assert '4 |   "required": ["city"]\n  |   ^' in [c.value for c in at.code]
    assert at.button(key="run").disabled
    assert tools_of(at)[0]["function"]["parameters"]["required"] == ["city"]  # the last valid schema kept
    # a keyword the metaschema refuses
    widget(at.text_area, "p_tool0_parameters").set_value('{"type": "object", "required": "city"}').run()
    assert any(text.startswith("Not a valid JSON Schema: required: 'city' is not of type 'array'")
               for text in unescaped(at.error))
    # fixed: the tool is updated and Run enabled
    widget(at.text_area, "p_tool0_parameters").set_value('{"type": "object", "properties": {"q": {"type": "string"}}}')
    widget(at.text_input, "p_tool0_name").set_value("lookup")
    widget(at.text_input, "p_tool0_description").set_value("Look something up.").run()
    assert not at.error
    assert tools_of(at) == [{"type": "function", "function": {
        "name": "lookup", "description": "Look something up.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
    assert not at.button(key="run").disabled
    # the JSON view is the same request
    assert json.loads(widget(at.text_area, "request_json").value)["tools"] == tools_of(at)
    at.button(key="p_tool0_delete").click().run()
    assert tools_of(at) == [] and "tools" not in json.loads(widget(at.text_area, "request_json").value)


def test_import_an_openai_tools_list(server):
    at = open_app()
    widget(at.selectbox, "p_tool_template").set_value("blank").run()
    at.button(key="p_tool_add").click().run()  # a first function, then an import that adds and replaces
    pasted = [{"type": "function", "function": {"name": "my_function", "description": "replaced"}},
              {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    widget(at.text_area, "p_tools_import").set_value(json.dumps(pasted)).run()
    at.button(key="p_tools_import_go").click().run()
    assert [t["function"] for t in tools_of(at)] == [p["function"] for p in pasted]
    assert "Imported 2 function(s): my_function, search (replaced my_function)." in unescaped(at.success)
    assert [widget(at.text_input, f"p_tool{i}_name").value for i in range(2)] == ["my_function", "search"]
    widget(at.text_area, "p_tools_import").set_value('[{"type": "code_interpreter"}]').run()
    at.button(key="p_tools_import_go").click().run()
    assert "item 1: only function tools can be imported, not type 'code_interpreter'" in unescaped(at.error)
    assert len(tools_of(at)) == 2 and not at.button(key="run").disabled  # a failed import blocks nothing


def test_a_compare_pane_has_the_tools_editor(server):
    at = open_app("cmp.0.", page="compare.py")
    at.button(key="cmp.0.p_tool_add").click().run()
    assert not at.exception
    assert [t["function"]["name"] for t in tools_of(at, "cmp.0.request")] == ["get_weather"]

"""The tools of an editor's request, as a user builds them (drawn in the Tools group of the
common request form, so the Playground, each Compare pane and each Experiments variant have it):
one card per function (name, description, its parameters schema as JSON, Delete), a function
added from a template, and tool lists imported from pasted JSON (playground.tool_specs reads
OpenAI's and others' shapes).

A schema that does not parse is named by line and column with the line and a caret under it
(playground.json_errors); one that parses but is not a JSON Schema says which keyword. Either
keeps the last valid tools in the request and Run disabled, like every other field's error.
Widget keys are the editor's: "p_tool<i>_name", "p_tool<i>_description", "p_tool<i>_parameters"
(request_fields.widget_values draws the request into them), "p_tool_template", "p_tools_import".
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.textsafe import escape_markdown
from playground.tool_specs import (
    TEMPLATES,
    ToolSpecError,
    check_name,
    from_template,
    import_tools,
    merge,
    parse_parameters,
)
from playground.ui.common import widget_sync
from playground.ui.common.request_sync import RequestEditor, sync_from_request

ADD = "Add function"
IMPORT = "Import"
_IMPORT_NOTE = "_tools_import_note"  # (level, text) after the last import, under the editor's prefix


def _source(i: int) -> str:
    """Where card i's errors are kept: "Fix function 1 first: ..." (request_editor.where)."""
    return f"p_function_{i + 1}"


def _tools(editor: RequestEditor) -> list[dict[str, Any]]:
    return list(editor.get().to_wire().get("tools") or [])


def _store(editor: RequestEditor, tools: list[dict[str, Any]], source: str) -> bool:
    """Commit the request with these tools (none: the field is not sent); False and the reason
    under `source` when it does not validate."""
    return editor.commit_field("tools", tools or None, source)


def _restart(editor: RequestEditor) -> None:
    """After a card was added, deleted or imported: every card redrawn from the request (its
    positions moved), and the errors of the cards that were there forgotten."""
    for source in [s for s in editor.errors() if s.startswith("p_function_")]:
        editor.set_error(source, None)
    sync_from_request(editor, editor.get())


def on_edit(editor: RequestEditor, i: int) -> None:
    tools, source = _tools(editor), _source(i)
    if i >= len(tools):
        return  # a card of an older view
    value = lambda field: widget_sync.value(editor.key(f"p_tool{i}_{field}"))  # noqa: E731
    name = (value("name") or "").strip()
    try:
        problem = check_name(name)
        if problem:
            raise ToolSpecError(problem)
        others = [(t.get("function") or {}).get("name") for n, t in enumerate(tools) if n != i]
        if name in others:
            raise ToolSpecError(f"{name!r} is already the name of another function")
        parameters = parse_parameters(value("parameters") or "")
    except ToolSpecError as error:
        editor.set_error(source, str(error))
        return
    function = dict(tools[i].get("function") or {}, name=name)
    description = (value("description") or "").strip()
    for field, given in (("description", description or None), ("parameters", parameters)):
        if given is None:
            function.pop(field, None)
        else:
            function[field] = given
    tools[i] = {**tools[i], "type": "function", "function": function}
    _store(editor, tools, source)


def on_delete(editor: RequestEditor, i: int) -> None:
    tools = _tools(editor)
    if i < len(tools) and _store(editor, tools[:i] + tools[i + 1:], "p_tools"):
        _restart(editor)


def on_add(editor: RequestEditor) -> None:
    tools = _tools(editor)
    taken = {(t.get("function") or {}).get("name") for t in tools}
    template = widget_sync.value(editor.key("p_tool_template")) or "blank"
    if _store(editor, [*tools, from_template(template, taken)], "p_tools"):
        _restart(editor)


def on_import(editor: RequestEditor) -> None:
    text = widget_sync.value(editor.key("p_tools_import")) or ""
    note = editor.key(_IMPORT_NOTE)
    try:
        imported = import_tools(text)
    except ToolSpecError as error:
        st.session_state[note] = ("error", str(error))
        return
    tools, replaced = merge(_tools(editor), imported)
    if not _store(editor, tools, "p_tools"):
        st.session_state[note] = ("error", editor.errors().get("p_tools", ""))
        editor.set_error("p_tools", None)
        return
    _restart(editor)
    widget_sync.write(editor.key("p_tools_import"), "")
    names = ", ".join(t["function"]["name"] for t in imported)
    st.session_state[note] = ("success", f"Imported {len(imported)} function(s): {names}"
                              + (f" (replaced {', '.join(replaced)})" if replaced else "") + ".")


def _show_error(editor: RequestEditor, source: str) -> None:
    """An error whose second part is a JSON excerpt with a caret: the caret must line up, so the
    excerpt goes in a code block, not in markdown."""
    message = editor.errors().get(source)
    if message:
        _show_message("error", message)


def _show_message(level: str, message: str) -> None:
    head, _, excerpt = message.partition("\n")
    getattr(st, level)(escape_markdown(head), icon=":material/data_object:" if level == "error" else None)
    if excerpt:
        st.code(excerpt, language=None)


def render(editor: RequestEditor, disabled: bool = False) -> None:
    tools = _tools(editor)
    st.markdown(f"**Functions** ({len(tools)})" if tools else "**Functions**: none yet")
    for i, tool in enumerate(tools):
        _card(editor, i, tool, disabled)
    _show_error(editor, "p_tools")
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    row.selectbox("Template", list(TEMPLATES), key=widget_sync.key(editor.key("p_tool_template")), width=180,
                  format_func=lambda name: "blank function" if name == "blank" else name, disabled=disabled,
                  help="A function to start from: edit its name, description and schema after adding it.")
    row.button(ADD, key=editor.key("p_tool_add"), icon=":material/add:", on_click=on_add, args=(editor,),
               disabled=disabled)
    with st.expander("Import tools (OpenAI JSON)", key=editor.key("p_tools_import_open")):
        st.text_area("Tools to import", key=widget_sync.key(editor.key("p_tools_import")), height=120,
                     placeholder='[{"type": "function", "function": {"name": "...", "parameters": {...}}}]',
                     help="A tools list as OpenAI's chat API takes it, a functions list, Responses-API or "
                          "Anthropic tools (input_schema), or a whole request body: function tools are added, "
                          "one of the same name replaced.", disabled=disabled)
        st.button(IMPORT, key=editor.key("p_tools_import_go"), icon=":material/upload:", on_click=on_import,
                  args=(editor,), disabled=disabled)
        note = st.session_state.pop(editor.key(_IMPORT_NOTE), None)
        if note is not None:
            _show_message(*note)


def _card(editor: RequestEditor, i: int, tool: dict[str, Any], disabled: bool) -> None:
    function = tool.get("function") or {}
    with st.container(border=True, key=editor.key(f"p_tool{i}_card")):
        row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
        row.text_input("Name", key=widget_sync.key(editor.key(f"p_tool{i}_name")), on_change=on_edit,
                       args=(editor, i), disabled=disabled, help="What the model calls it: letters, digits, _ and -.")
        row.button("", key=editor.key(f"p_tool{i}_delete"), icon=":material/delete:", type="tertiary",
                   help=f"Delete {function.get('name', 'this function')}", on_click=on_delete, args=(editor, i),
                   disabled=disabled)
        st.text_input("Description", key=widget_sync.key(editor.key(f"p_tool{i}_description")), on_change=on_edit,
                      args=(editor, i), disabled=disabled, help="When the model should use it: the model reads this.")
        st.text_area("Parameters (JSON Schema)", key=widget_sync.key(editor.key(f"p_tool{i}_parameters")),
                     on_change=on_edit, args=(editor, i), height=180, disabled=disabled,
                     help="The arguments as a JSON Schema object; empty: no parameters schema.")
        _show_error(editor, _source(i))

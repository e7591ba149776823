"""The project's shape, checked on the import graph (grimp reads every import, those inside
functions too): only playground.ui imports Streamlit, the library's arrows go one way, and no
two modules import each other, however indirectly. And on the source: Streamlit's internals are
used in one module only (playground/ui/common/streamlit_internals.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
INTERNALS = "playground.ui.common.streamlit_internals"
# Streamlit's public face: `streamlit` (st.*) and the components API the docs import by name.
PUBLIC_STREAMLIT = ("streamlit", "streamlit.components.v2")
# Streamlit's own CSS classes (.stColumn, .stElementContainer, ...) and test ids are not a public
# API: our CSS and JavaScript use the documented st-key-* classes of keyed elements.
INTERNAL_CSS = re.compile(r"\.st[A-Z][A-Za-z]+|data-testid")

LIBRARY_LAYERS = [  # each may import those below it, never those above
    "playground.ui",
    "playground.experiments",
    "playground.runs",
    "playground.db",  # the store's engines, tables and migrations (runs, experiments and presets use it)
    "playground.analysis",
    "playground.client",
]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("playground", "streamlit", cache_dir=None)


def test_only_the_ui_imports_streamlit(graph: grimp.ImportGraph) -> None:
    importers = {module for module in graph.modules if module.startswith("playground")
                 and any(imported == "streamlit" or imported.startswith("streamlit.")
                         for imported in graph.find_modules_directly_imported_by(module))}
    assert importers, "the check sees the UI's imports"
    assert sorted(m for m in importers if not m.startswith("playground.ui")) == []


def test_the_library_layers_point_one_way(graph: grimp.ImportGraph) -> None:
    assert graph.find_illegal_dependencies_for_layers(layers=LIBRARY_LAYERS, containers=set()) == set()


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    modules = sorted(m for m in graph.modules if m.startswith("playground"))
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i.startswith("playground"))
             for m in modules}
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in edges.get(module, ()):
            if state.get(imported) == 1:
                cycles.append(path[path.index(imported):] + [imported])
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in modules:
        if module not in state:
            visit(module)
    # A package's __init__ that re-exports its own modules is not a cycle between modules.
    real = [c for c in cycles if not all(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(c, c[1:]))]
    assert real == [], "\n".join(" -> ".join(c) for c in real)


def _app_sources(*suffixes: str) -> dict[str, Path]:
    """The app's files that may use Streamlit (playground/ui, pages/, app.py), by module name.
    (The tests may use Streamlit's internals for their own needs: tests/apptest_support.py shares
    AppTest's private component manager, and says why.)"""
    files = [*sorted((REPO / "playground" / "ui").rglob("*")), *sorted((REPO / "pages").glob("*")), REPO / "app.py"]
    return {".".join(f.relative_to(REPO).with_suffix("").parts): f for f in files if f.suffix in suffixes}


def _streamlit_imports(path: Path) -> set[str]:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module)
    return {name for name in imported if name == "streamlit" or name.startswith("streamlit.")}


def _private_attributes(path: Path) -> list[str]:
    """Another object's private attributes (x._name, getattr(x, "_name")); self's and cls's are
    the module's own."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"{ast.unparse(node)} (line {node.lineno})")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant) and str(node.args[1].value).startswith("_")
                and not str(node.args[1].value).startswith("__")):
            found.append(f"{ast.unparse(node)} (line {node.lineno})")
    return found


def test_streamlit_internals_are_used_in_one_module(graph: grimp.ImportGraph) -> None:
    internal_imports = {module: sorted(imported) for module in graph.modules if module.startswith("playground")
                        if (imported := {i for i in graph.find_modules_directly_imported_by(module)
                                         if i.startswith("streamlit.") and not i.startswith(PUBLIC_STREAMLIT[1])})}
    python = _app_sources(".py")
    for module, path in python.items():  # pages/ and app.py are not in the package's graph
        if imported := {i for i in _streamlit_imports(path) if i not in PUBLIC_STREAMLIT}:
            internal_imports.setdefault(module, sorted(imported))
    assert INTERNALS in internal_imports, "the check sees the internals module's imports"
    assert {m: i for m, i in internal_imports.items() if m != INTERNALS} == {}

    private = {module: found for module, path in python.items() if (found := _private_attributes(path))}
    assert INTERNALS in private, "the check sees a private attribute"
    assert {m: found for m, found in private.items() if m != INTERNALS} == {}

    styled = {module: [line.strip() for line in path.read_text().splitlines() if INTERNAL_CSS.search(line)]
              for module, path in _app_sources(".py", ".js", ".css").items() if module != INTERNALS}
    assert {m: lines for m, lines in styled.items() if lines} == {}


STATE_WRITERS = ("state.py",)  # a page package's one owner of its session keys


def _session_state_writes(path: Path) -> list[str]:
    """Lines that write st.session_state: an item or attribute assigned or deleted, or a call
    of setdefault/pop/update/clear/__setitem__ on it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if isinstance(target, (ast.Subscript, ast.Attribute)) and "session_state" in ast.unparse(target.value):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("setdefault", "pop", "update", "clear", "__setitem__", "__delitem__")
                and "session_state" in ast.unparse(node.func.value)):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_session_state_is_written_only_by_a_pages_state_module_or_ui_common() -> None:
    """Each page's session state has one owner (its state.py); ui/common's shared mechanisms
    (the request editor, widget_sync, notices, the live view) and the app's shell and sidebar
    keep their own keys. Reading is free."""
    ui = REPO / "playground" / "ui"
    writers = {}
    for path in sorted(ui.rglob("*.py")):
        relative = path.relative_to(ui)
        allowed = path.name in STATE_WRITERS or relative.parts[0] == "common" or relative.parts in (
            ("shell.py",), ("sidebar.py",))
        if not allowed:
            writers[str(relative)] = _session_state_writes(path)
    assert any("session_state" in p.read_text() for p in ui.rglob("*.py")), "the check sees the UI's files"
    assert {name: lines for name, lines in writers.items() if lines} == {}
    # and it finds a write where there is one
    assert _session_state_writes(ui / "playground" / "state.py")

"""The project's shape, checked on the import graph (grimp reads every import, those inside
functions too): only playground.ui imports Streamlit, the library's arrows go one way, and no
two modules import each other, however indirectly."""

from __future__ import annotations

import grimp
import pytest

LIBRARY_LAYERS = [  # each may import those below it, never those above
    "playground.ui",
    "playground.experiments",
    "playground.runs",
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

"""No import cycles among our modules, type-only and function-level imports included.

The graph is built from the source (the AST, as ``test_layers`` reads it), so an import under
``if TYPE_CHECKING:`` or inside a function counts like any other: a cycle hidden that way is
still two modules that cannot be understood, tested or moved one without the other. Implicit
imports of parent packages are not edges (importing ``a.b`` runs ``a/__init__``, but that is
not ``a.b`` depending on its siblings).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

from twisted.trial import unittest

from tests.test_layers import PACKAGE, moduleName

#: Cycles allowed for now, each named by its sorted modules (none are left). The test
#: fails when one of them is gone (delete its line) as well as on any new cycle.
KNOWN_CYCLES: set[tuple[str, ...]] = set()


def importGraph(files: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``files`` it imports (``from pkg import mod`` names ``pkg.mod``)."""
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    found.add(submodule if submodule in files else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = found & files.keys()
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> set[tuple[str, ...]]:
    """The strongly connected components with more than one module (or a self-import), each as
    its sorted module names (Tarjan's algorithm, iterative: no recursion limit to meet)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    onStack: set[str] = set()
    found: set[tuple[str, ...]] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        onStack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    onStack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in onStack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    onStack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.add(tuple(sorted(component)))
    return found


class ImportCycleTests(unittest.TestCase):
    def test_noImportCycles(self) -> None:
        files = {moduleName(path): path for path in sorted(PACKAGE.rglob("*.py"))}
        found = cycles(importGraph(files))
        self.assertEqual(found - KNOWN_CYCLES, set(), "new import cycles")
        self.assertEqual(KNOWN_CYCLES - found, set(), "fixed: remove from KNOWN_CYCLES")

    def test_checkerSeesTypeOnlyAndLazyCycles(self) -> None:
        """The checker itself: a type-only back-reference and a function-level import close
        cycles; a one-way chain and a package's implicit parent do not."""
        graph = {
            "p": set(),
            "p.a": {"p.b"},
            "p.b": {"p.c"},
            "p.c": {"p.a"},  # e.g. under ``if TYPE_CHECKING:``
            "p.d": {"p.d"},
            "p.e": {"p.a", "p"},
        }
        self.assertEqual(cycles(graph), {("p.a", "p.b", "p.c"), ("p.d",)})

    def test_graphReadsEveryKindOfImport(self) -> None:
        root = Path(self.mktemp())
        (root / "p").mkdir(parents=True)
        sources = {
            "p": "",
            "p.a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.b import X\n",
            "p.b": "def f():\n    import p.c\n",
            "p.c": "from p import a\n",
        }
        files = {}
        for name, text in sources.items():
            path = root / (name.replace(".", "/") + ("/__init__.py" if name == "p" else ".py"))
            path.write_text(text)
            files[name] = path
        graph = importGraph(files)
        self.assertEqual(graph, {"p": set(), "p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}})
        self.assertEqual(cycles(graph), {("p.a", "p.b", "p.c")})

"""The layout's one-way dependencies (docs/architecture.md), checked on the source and at import.

Statically: every ``twisted_exec`` import of every module (type-only imports included) points to
its own layer or one allowed for it. Dynamically: importing the harness library or the rendezvous
loads no executor module, and importing ``wire`` loads nothing else of ours.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from twisted.trial import unittest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "twisted_exec"

#: What the executor package's own modules (service, options, ...) build on: every layer below.
EXECUTOR_STACK = {
    "wire",
    "compat",
    "net",
    "executor.core",
    "executor.resources",
    "executor.methods",
    "executor.transports",
}

# layer -> the layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "wire": set(),
    "compat": {"wire"},
    "net": {"wire"},
    "executor.core": {"wire", "compat", "net"},
    "executor.resources": {"wire", "compat", "net", "executor.core"},
    "executor.methods": {"wire", "compat", "net", "executor.core", "executor.resources"},
    "executor.transports": {"wire", "compat", "net", "executor.core"},
    "executor": EXECUTOR_STACK,
    "rendezvous": {"wire", "net"},
    "harness": {"wire", "net"},
    "cli": {"wire", "net", "harness"},
    # public test doubles may assemble anything
    "testing": EXECUTOR_STACK | {"executor", "rendezvous", "harness"},
    # the package's own __init__/__main__ (entry points)
    "": {"executor"},
}


def layerOf(module: str) -> str:
    rest = module.removeprefix("twisted_exec").lstrip(".")
    best = ""
    for layer in ALLOWED:
        if layer and (rest == layer or rest.startswith(layer + ".")) and len(layer) > len(best):
            best = layer
    return best


def moduleName(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def importsOf(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            found.append(f"<relative import at line {node.lineno}>")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("twisted_exec"):
            found.append(node.module or "")
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.startswith("twisted_exec"))
    return found


def violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = moduleName(path)
        mine = layerOf(me)
        for target in importsOf(path):
            if target.startswith("<"):
                problems.append(f"{me}: {target} (use absolute imports)")
                continue
            theirs = layerOf(target)
            if theirs != mine and theirs not in ALLOWED[mine]:
                problems.append(f"{me} ({mine or 'top'}) imports {target} ({theirs or 'top'})")
    return problems


def loadedBy(statement: str) -> set[str]:
    """Our modules loaded by ``statement`` in a fresh interpreter."""
    code = (
        f"import sys; {statement}; "
        "print('\\n'.join(m for m in sys.modules if m.startswith('twisted_exec')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return set(out.split())


class LayerTests(unittest.TestCase):
    def test_importsPointOneWay(self) -> None:
        self.assertEqual(violations(), [])

    def test_checkerSeesAViolation(self) -> None:
        """The checker itself: a wire module importing the executor is reported."""
        self.assertEqual(layerOf("twisted_exec.wire.frames"), "wire")
        self.assertEqual(layerOf("twisted_exec.executor.core.processor"), "executor.core")
        self.assertEqual(layerOf("twisted_exec.executor.options"), "executor")
        self.assertNotIn("executor.core", ALLOWED["wire"])
        self.assertNotIn("executor", ALLOWED["harness"])

    def test_harnessLoadsNoExecutorModule(self) -> None:
        loaded = loadedBy("import twisted_exec.harness, twisted_exec.cli.main")
        self.assertIn("twisted_exec.harness", loaded)
        self.assertEqual({m for m in loaded if m.startswith("twisted_exec.executor")}, set())

    def test_rendezvousLoadsNoExecutorModule(self) -> None:
        loaded = loadedBy("import twisted_exec.rendezvous")
        self.assertIn("twisted_exec.rendezvous.server", loaded)
        self.assertEqual({m for m in loaded if m.startswith("twisted_exec.executor")}, set())

    def test_wireLoadsNothingElse(self) -> None:
        loaded = loadedBy(
            "import pkgutil, importlib, twisted_exec.wire as w; "
            "[importlib.import_module(m.name) for m in "
            "pkgutil.walk_packages(w.__path__, 'twisted_exec.wire.')]"
        )
        self.assertIn("twisted_exec.wire.frames", loaded)
        self.assertEqual(
            {m for m in loaded if m != "twisted_exec" and not m.startswith("twisted_exec.wire")},
            set(),
        )


class PackagingTests(unittest.TestCase):
    def test_everyPackageIsInstalled(self) -> None:
        """pyproject.toml lists its packages by hand: a package missing there is missing from a
        regular install (``pip install .``), while the suite, run from the checkout, still
        passes."""
        import tomllib

        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        listed = set(pyproject["tool"]["setuptools"]["packages"])
        found = {moduleName(init) for init in PACKAGE.rglob("__init__.py")}
        self.assertEqual(found - listed, set())

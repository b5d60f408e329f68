"""Layers point one way: pure modules load no adapter or driver, and no module imports cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "switchboard"
PURE = (
    "switchboard.model",
    "switchboard.events",
    "switchboard.rules",
    "switchboard.rules.collect",
    "switchboard.engine",
    "switchboard.outgoing",
    "switchboard.submissions",
    "switchboard.sink_registry",
    "switchboard.ports",
    "switchboard.intake",
    "switchboard.processor",
    "switchboard.collections.firing",
    "switchboard.collections.sweeper",
    "switchboard.collections.manifests",
    "switchboard.rules.rerun",
    "switchboard.debounce",
    "switchboard.throttle",
)
FORBIDDEN = (
    "sqlalchemy",
    "pika",
    "ray",
    "switchboard.store",
    "switchboard.sinks",
    "switchboard.source",
    "switchboard.app",
)


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_no_store_sink_source_app_or_driver(module: str) -> None:
    probe = f"import sys, {module}\nprint(' '.join(n for n in {FORBIDDEN!r} if n in sys.modules))\n"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == [], f"importing {module} loads {loaded}"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every switchboard module `module` imports, at module level or inside a function (a
    late import is still a dependency), except under `if TYPE_CHECKING:`; importing a.b.c
    counts as importing the packages a and a.b too, as Python runs their __init__ first."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                name = ".".join([*base, *([node.module] if node.module else [])])
                for alias in node.names:
                    full = f"{name}.{alias.name}"
                    names.add(full if full in known else name)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    result = set()
    for name in names:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if prefix in known and prefix != module and not module.startswith(prefix + "."):
                result.add(prefix)
    return result


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_switchboard_modules_import_each_other_in_a_cycle() -> None:
    known = _modules()
    graph = {module: _imports(module, path, known) for module, path in known.items()}
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

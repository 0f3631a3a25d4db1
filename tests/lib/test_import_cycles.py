"""The house reads from the ground floor up: no module imports, even indirectly, a
module that imports it back.

The graph is built from the source with ``ast``, so imports under ``TYPE_CHECKING`` and
inside functions count too: a loop that only the type checker follows is still a loop
for a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("custom_components/doorstep", "reference_doorbell")

type Graph = dict[str, set[str]]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Every module name the import statement could load (``from a import b`` may
    load the submodule ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph(packages: tuple[str, ...] = PACKAGES, root: Path = ROOT) -> Graph:
    """Module -> the modules of these packages it imports."""
    files = {
        _module_name(p, root): p for package in packages for p in (root / package).rglob("*.py")
    }
    graph: Graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[module] = {
            target
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for target in _targets(module, is_package, node)
            if target in files and target != module
        }
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_packages() -> None:
    """The check below must have something to check."""
    graph = import_graph()
    assert "custom_components.doorstep.media.webrtc" in graph
    assert (
        "custom_components.doorstep.media.sdp" in graph["custom_components.doorstep.media.webrtc"]
    )
    assert "reference_doorbell.api" in graph["reference_doorbell.doorbell"]


def test_a_loop_is_found(tmp_path: Path) -> None:
    """A loop through TYPE_CHECKING and a relative import, as the two old ones were."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n"
    )
    (package / "c.py").write_text("from . import a\n")
    assert cycles(import_graph(("pkg",), tmp_path)) == [["pkg.a", "pkg.b"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package: str) -> None:
    found = cycles(import_graph((package,)))
    assert not found, "import loops: " + "; ".join(" <-> ".join(loop) for loop in found)


def test_reference_doorbell_stands_alone() -> None:
    """``pip install .`` ships only ``reference_doorbell``, so nothing in it may import
    the integration (the requester's archive check included)."""
    offenders = sorted(
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in (ROOT / "reference_doorbell").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and not node.level
            else []
        )
        if name.split(".")[0] == "custom_components"
    )
    assert not offenders, f"reference_doorbell imports the integration at {offenders}"

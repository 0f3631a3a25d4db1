"""The rooms that do the real work must never import Home Assistant."""

import ast
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "doorstep"
HA_FREE_ROOMS = ("device", "media", "sharing")


def _imported_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(), filename=str(source))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _room_files() -> list[Path]:
    return sorted(path for room in HA_FREE_ROOMS for path in (INTEGRATION / room).rglob("*.py"))


def test_rooms_exist() -> None:
    """The check below must have something to check."""
    assert any(path.parent.name == "device" for path in _room_files())


@pytest.mark.parametrize("source", _room_files(), ids=lambda p: str(p.relative_to(INTEGRATION)))
def test_no_homeassistant_import(source: Path) -> None:
    """Any import (top-level, nested, or under TYPE_CHECKING) of homeassistant fails."""
    offenders = {
        name
        for name in _imported_modules(source)
        if name == "homeassistant" or name.startswith("homeassistant.")
    }
    assert not offenders, f"{source} imports {sorted(offenders)}"


def test_relative_imports_stay_inside_the_rooms() -> None:
    """`from .. import x` would reach the HA glue at the top of the integration."""
    for source in _room_files():
        tree = ast.parse(source.read_text())
        depth = len(source.relative_to(INTEGRATION).parts) - 1
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level >= depth + 1:
                pytest.fail(f"{source}:{node.lineno} imports from the integration package")

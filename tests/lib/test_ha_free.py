"""The rooms that do the real work must never import Home Assistant."""

import ast
from pathlib import Path
import sys

import pytest

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "doorstep"
HA_FREE_ROOMS = ("device", "media", "sharing")
# Modules under the rooms: stdlib only, so every room may import them.
GROUND_FLOOR = ("durable.py", "clip_contract.py")


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


@pytest.mark.parametrize("name", GROUND_FLOOR)
def test_ground_floor_imports_only_the_standard_library(name: str) -> None:
    """The rooms import these, so they must not bring Home Assistant (or a room) along."""
    source = INTEGRATION / name
    tree = ast.parse(source.read_text())
    relative = [
        node.lineno for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level
    ]
    assert not relative, f"{name} imports from the integration package (lines {relative})"
    outside = {
        module
        for module in _imported_modules(source)
        if module.split(".")[0] not in sys.stdlib_module_names and module != "__future__"
    }
    assert not outside, f"{name} imports {sorted(outside)}"


@pytest.mark.parametrize("source", _room_files(), ids=lambda p: str(p.relative_to(INTEGRATION)))
def test_rooms_read_only_the_ground_floor(source: Path) -> None:
    """A room imports itself and the ground floor, never another room: what two rooms
    share (the clip contract, durable writes) lives on the floor below both."""
    room = source.relative_to(INTEGRATION).parts[0]
    others = {f"custom_components.doorstep.{other}" for other in HA_FREE_ROOMS if other != room}
    reached = {
        name
        for name in _imported_modules(source)
        if any(name == other or name.startswith(f"{other}.") for other in others)
    }
    assert not reached, f"{source} imports another room: {sorted(reached)}"

"""A stock Home Assistant install: a venv holding only the pinned Home Assistant and its
frontend, as a person who installs Home Assistant Core would have it.

The venv is built once and cached outside the repository (it takes a minute or two).
Before each use, everything installed since it was built is removed again, so a run
always starts from the stock set: Home Assistant must install Doorstep's requirements
(aiortc and what it pulls in) itself, under its own package constraints.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

import homeassistant

from .hass import REPO

CONSTRAINTS = Path(homeassistant.__file__).parent / "package_constraints.txt"
_PRISTINE = ".doorstep-stock-packages-v2"


def _pinned(name: str) -> str:
    text = (REPO / "requirements_test.txt").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(name)}==(\S+)$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"requirements_test.txt pins no {name}")
    return match.group(1)


HA_VERSION = _pinned("homeassistant")
FRONTEND_VERSION = _pinned("home-assistant-frontend")


def default_location() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("DOORSTEP_STOCK_HA", cache / "doorstep" / f"stock-ha-{HA_VERSION}"))


def _pip(venv: Path, *args: str) -> str:
    """This venv's pip, acting on the stock venv (which has no pip of its own)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "--python",
            str(venv / "bin" / "python"),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def _installed(venv: Path) -> dict[str, str]:
    """Installed distributions: normalised name to version."""
    found = {}
    for line in _pip(venv, "list", "--format=freeze").splitlines():
        name, _, version = line.partition("==")
        if name.strip():
            found[name.strip().lower().replace("_", "-")] = version.strip()
    return found


def stock_venv(location: Path | None = None) -> Path:
    """The stock venv, built if missing, reset to the stock packages if it was used.

    Packages Home Assistant added are uninstalled. If it changed the version of one it
    came with (uv installs with --upgrade), the venv is built again from scratch.
    """
    venv = location or default_location()
    pristine_file = venv / _PRISTINE
    if pristine_file.exists():
        pristine = dict(
            line.split("==", 1) for line in pristine_file.read_text(encoding="utf-8").split()
        )
        installed = _installed(venv)
        if any(installed.get(name) != version for name, version in pristine.items()):
            pristine_file.unlink()
    if not pristine_file.exists():
        shutil.rmtree(venv, ignore_errors=True)
        # The interpreter the project's venv was made from: Python >= 3.14.2.
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
        _pip(
            venv,
            "install",
            "--quiet",
            "--constraint",
            str(CONSTRAINTS),
            f"homeassistant=={HA_VERSION}",
            f"home-assistant-frontend=={FRONTEND_VERSION}",
        )
        pristine_file.write_text(
            "".join(f"{name}=={version}\n" for name, version in sorted(_installed(venv).items())),
            encoding="utf-8",
        )
    pristine_names = {
        line.split("==", 1)[0] for line in pristine_file.read_text(encoding="utf-8").split()
    }
    extra = sorted(set(_installed(venv)) - pristine_names)
    if extra:
        _pip(venv, "uninstall", "--yes", "--quiet", *extra)
    return venv


def installed_version(venv: Path, name: str) -> str | None:
    """A distribution's version in the venv, or None when it is not installed."""
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m, sys\n"
            "try: print(m.version(sys.argv[1]))\n"
            "except m.PackageNotFoundError: pass",
            name,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip() or None


def pinned_constraint(name: str) -> str | None:
    """The version Home Assistant's package_constraints.txt pins for ``name``."""
    text = CONSTRAINTS.read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(name)}==(\S+)$", text, re.MULTILINE | re.IGNORECASE)
    return match.group(1) if match else None

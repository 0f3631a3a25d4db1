"""`scripts/demo --smoke` proves the demo a person runs works: it builds the lab, starts
two reference doorbells, the DoorBird emulator and Home Assistant, pairs all three by
real mDNS discovery, rings the front door and the DoorBird, checks the UI answers on the
printed URL, approves the outside requester's request as the owner and sees the
requester verify the footage; subscribes to the reference agency's area feed, sees only
the request around the home appear, approves it and sees the agency verify the upload;
and tears everything down."""

from __future__ import annotations

import os
from pathlib import Path
import re
import subprocess
import sys

import pytest

from scripts.lab.hass import REPO

from .conftest import require_lab

pytestmark = pytest.mark.e2e


def test_demo_smoke(tmp_path: Path) -> None:
    require_lab()
    env = dict(os.environ, DOORSTEP_DEMO_DIR=str(tmp_path / "demo"))
    proc = subprocess.run(
        [str(REPO / "scripts" / "demo"), "--smoke"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    sys.stdout.write(proc.stdout)
    logs = "\n".join(
        f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        for log in sorted((tmp_path / "demo" / "lab").glob("*.log"))
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\n{logs}"
    assert "smoke: OK" in proc.stdout
    # Turning the request on delivered: the requester verified the clips.
    assert "smoke: the requester received and verified the approved footage" in proc.stdout
    # The household subscribed to the reference agency: the area request around the home
    # appeared, the one 60 km away did not, and approving it uploaded verified footage.
    assert "area request RPD-2026-0412 (around this home) is pending" in proc.stdout
    assert "area request RPD-2026-0413 (60 km away) did not match" in proc.stdout
    assert "agency: upload for entry rpd-near: VERIFIED" in proc.stdout
    assert "smoke: the agency received and verified the area request's upload" in proc.stdout
    assert "paired 'Front door'" in proc.stdout
    assert "paired 'Back door'" in proc.stdout
    assert "signed in to 'Side gate'" in proc.stdout
    # Home Assistant's own DoorBird integration offered the same station; the demo
    # ignored that offer, so the Overview has no "1 device to add".
    assert "ignored Home Assistant's own DoorBird offer for 'Side gate'" in proc.stdout
    assert "smoke: no device is left to add under Discovered" in proc.stdout
    assert "smoke: the DoorBird's pushed ring reached event.side_gate_doorbell" in proc.stdout
    # Everything the demo built is gone again.
    built = re.search(r"in namespaces (.+)$", proc.stdout, re.MULTILINE)
    assert built is not None, proc.stdout
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for ns in built.group(1).split(", "):
        assert ns not in listing

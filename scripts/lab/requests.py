"""The demo's outside party: a requester made in Home Assistant's options flow, and a
request for footage filed with the reference requester, as a police portal would."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import sys
from typing import Any

from .hass import HassClient

REQUESTER_NAME = "Station North"
REQUESTER_KIND = "police"


async def create_requester(client: HassClient) -> str:
    """Add a requester through the sharing entry's options flow; returns its token."""
    entries = await client.get("/api/config/config_entries/entry?domain=doorstep")
    sharing = next(entry for entry in entries if entry["source"] == "system")
    flow: dict[str, Any] = await client.post(
        "/api/config/config_entries/options/flow", {"handler": sharing["entry_id"]}
    )
    path = f"/api/config/config_entries/options/flow/{flow['flow_id']}"
    await client.post(path, {"next_step_id": "add_requester"})
    shown = await client.post(path, {"name": REQUESTER_NAME, "kind": REQUESTER_KIND})
    if shown.get("step_id") != "requester_token":
        raise RuntimeError(f"adding a requester did not show a token: {shown}")
    token = str(shown["description_placeholders"]["token"])
    await client.post(path, {})
    return token


def requester_command(hub_url: str, *args: str) -> list[str]:
    """The reference requester's command line against this hub."""
    return [sys.executable, "-m", "reference_doorbell.requester", *args, f"--hub={hub_url}"]


async def file_request(hub_url: str, token_file: Path) -> str:
    """File a request for the last ten minutes of footage; returns the request id."""
    now = datetime.now(UTC)
    process = await asyncio.create_subprocess_exec(
        *requester_command(
            hub_url,
            "file",
            "--json",
            "--reference=CASE-2026-114",
            "--reason=Parcel taken from the porch",
            f"--start={(now - timedelta(minutes=10)).isoformat()}",
            f"--end={now.isoformat()}",
            "--contact=desk@station-north.example",
        ),
        env={"DOORSTEP_REQUESTER_TOKEN": token_file.read_text().strip(), "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the reference requester failed: {err.decode().strip()}")
    return str(json.loads(out.decode().strip().splitlines()[-1])["id"])


async def wait_and_verify(
    hub_url: str, token_file: Path, request_id: str, out_dir: Path, *, patience: float
) -> tuple[bool, list[str]]:
    """As the requester: wait for the householder's answer, then fetch and verify.

    Returns whether the footage verified, and what the reference requester printed.
    """
    env = {"DOORSTEP_REQUESTER_TOKEN": token_file.read_text().strip(), "PATH": "/usr/bin:/bin"}
    lines: list[str] = []
    steps = (
        ("wait", request_id, f"--timeout={patience:g}", "--max-interval=3"),
        ("fetch", request_id, f"--out={out_dir}"),
    )
    for step in steps:
        process = await asyncio.create_subprocess_exec(
            *requester_command(hub_url, *step),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        lines += out.decode(errors="replace").strip().splitlines()
        if process.returncode != 0:
            return False, lines
    return any(line.startswith("VERIFIED:") for line in lines), lines

"""Home Assistant's own LL-HLS path as a peer: a real HA process with a ``generic``
camera whose stream source is the benchmark doorbell's stream (the plain loopback
endpoint, as ``generic`` cannot send the Doorstep bearer token)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
import json
from pathlib import Path
import socket
import sys
from typing import Any
import uuid

import aiohttp

from scripts.lab.hass import HassClient, onboard, wait_http_ready
from scripts.lab.procs import ManagedProcess, python_env, within

from .common import HUB_CORE, REPO

# homeassistant.components.onboarding.STORAGE_VERSION and config_entries' storage
# version in the pinned release.
_ONBOARDING_VERSION = 4
_ENTRIES_VERSION = (1, 5)

_CONFIGURATION = """\
homeassistant:
  name: Bench
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: NL
http:
  server_host: 127.0.0.1
  server_port: {port}
onboarding:
stream:
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(config_dir: Path, port: int, stream_url: str) -> None:
    """A minimal configuration: HTTP on loopback, onboarding, ``stream``, and one
    ``generic`` config entry written straight into storage (its config flow would
    probe the stream and ask for a preview confirmation in the browser)."""
    storage = config_dir / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    (config_dir / "configuration.yaml").write_text(_CONFIGURATION.format(port=port))
    (storage / "onboarding").write_text(
        json.dumps(
            {
                "version": _ONBOARDING_VERSION,
                "minor_version": 1,
                "key": "onboarding",
                "data": {"done": ["core_config"]},
            }
        )
    )
    now = datetime.now(UTC).isoformat()
    entry: dict[str, object] = {
        "created_at": now,
        "modified_at": now,
        "data": {},
        "discovery_keys": {},
        "disabled_by": None,
        "domain": "generic",
        "entry_id": uuid.uuid4().hex,
        "minor_version": 1,
        "options": {
            "stream_source": stream_url,
            "framerate": 2,
            "content_type": "image/jpeg",
            "verify_ssl": False,
            "limit_refetch_to_url_change": False,
            "authentication": "basic",
        },
        "pref_disable_new_entities": False,
        "pref_disable_polling": False,
        "source": "user",
        "subentries": [],
        "title": "Bench door",
        "unique_id": None,
        "version": 1,
    }
    (storage / "core.config_entries").write_text(
        json.dumps(
            {
                "version": _ENTRIES_VERSION[0],
                "minor_version": _ENTRIES_VERSION[1],
                "key": "core.config_entries",
                "data": {"entries": [entry]},
            }
        )
    )


def hass(config_dir: Path, log: Path, *, python: str = sys.executable) -> ManagedProcess:
    """Home Assistant pinned to the hub's core; ``start`` starts it."""
    argv = ["taskset", "-c", str(HUB_CORE), python, "-m", "homeassistant"]
    argv += ["-c", str(config_dir), "--skip-pip", "--log-no-color"]
    return ManagedProcess(name="Home Assistant", argv=argv, log_path=log, env=python_env(REPO))


async def start(proc: ManagedProcess, port: int) -> tuple[str, str]:
    """Start HA, onboard an owner; returns (base URL, access token)."""
    base = f"http://127.0.0.1:{port}"
    proc.start()
    async with aiohttp.ClientSession() as http:
        async with within(90, "Home Assistant answering HTTP", proc):
            await wait_http_ready(http, base, proc)
        token = await onboard(http, base, _owner())
        client = HassClient(session=http, base_url=base, token=token)
        async with within(90, "Home Assistant running", proc):
            await client.wait_running()
            while True:
                states: list[dict[str, Any]] = await client.get("/api/states")
                if any(s["entity_id"].startswith("camera.") for s in states):
                    break
                await asyncio.sleep(0.5)
    return base, token


async def camera_entity(base: str, token: str) -> str:
    async with aiohttp.ClientSession() as http:
        client = HassClient(session=http, base_url=base, token=token)
        states: list[dict[str, Any]] = await client.get("/api/states")
    return str(next(s["entity_id"] for s in states if s["entity_id"].startswith("camera.")))


def _owner() -> Any:
    from scripts.lab.hass import Owner

    return Owner(name="Bench", username="bench", password="bench-password-1")  # noqa: S106

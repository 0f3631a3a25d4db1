"""A DoorBird end to end: the DoorBird emulator (with GStreamer's RTSP server behind it)
in its own namespace on the lab's home LAN, found by real mDNS, signed in through the
config-flow API, a ring pushed over HTTP to Home Assistant, and removal taking the
hub off the station again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
import sys
from typing import Any

import aiohttp
import pytest

from scripts.lab.hass import REPO, HassClient, HassWebSocket
from scripts.lab.netns import DoorbellHost, Topology, ns_argv
from scripts.lab.pairing import wait_for_discovery
from scripts.lab.procs import ManagedProcess, python_env, within
from tests.rtsp_camera import require_gstreamer

pytestmark = pytest.mark.e2e

MAC = "1ccae3a1b2c3"
USERNAME = "ghxxxx0001"
PASSWORD = "lab-bird-pass"
RING_ENTITY = "event.side_gate_doorbell"
CONNECTIVITY_ENTITY = "binary_sensor.side_gate_connectivity"


@pytest.fixture
def station(topology: Topology, lab_dir: Path) -> Iterator[DoorbellHost]:
    """The emulator on a new host of the lab LAN, advertising itself; removed after."""
    require_gstreamer()
    host = topology.add_doorbell()
    argv = [
        sys.executable, "-m", "scripts.lab.doorbird_emulator",
        "--host", host.address,
        "--username", USERNAME,
        "--password", PASSWORD,
        "--name", "Side gate",
        "--advertise",
    ]  # fmt: skip
    process = ManagedProcess(
        name="DoorBird emulator",
        argv=ns_argv(host.ns, *argv),
        log_path=lab_dir / "doorbird.log",
        env=python_env(REPO),
        cwd=REPO,
    )
    process.start()
    try:
        yield host
    finally:
        process.stop(grace=5)
        topology.remove_last_doorbell()


async def _favorites(session: aiohttp.ClientSession, host: DoorbellHost) -> list[str]:
    async with session.get(
        f"http://{host.address}/bha-api/favorites.cgi",
        headers={"Authorization": aiohttp.encode_basic_auth(USERNAME, PASSWORD)},
    ) as response:
        response.raise_for_status()
        data: dict[str, Any] = await response.json()
    return [fav["value"] for fav in data["http"].values()]


async def _state(client: HassClient, entity_id: str) -> dict[str, Any]:
    states = {s["entity_id"]: s for s in await client.get("/api/states")}
    return dict(states.get(entity_id, {}))


async def test_doorbird_found_signed_in_rings_and_is_removed(
    station: DoorbellHost,
    hass_client: HassClient,
    hass_ws: HassWebSocket,
    session: aiohttp.ClientSession,
) -> None:
    async with within(30, "Home Assistant discovers the DoorBird by mDNS"):
        flow = await wait_for_discovery(hass_ws, device_id=MAC)
    path = f"/api/config/config_entries/flow/{flow['flow_id']}"
    result = await hass_client.get(path)
    assert result["step_id"] == "doorbird", result
    result = await hass_client.post(path, {"username": USERNAME, "password": PASSWORD})
    assert result["type"] == "create_entry", result
    entry_id = result["result"]["entry_id"]
    try:
        async with within(15, f"{CONNECTIVITY_ENTITY} turns on"):
            while True:
                if (await _state(hass_client, CONNECTIVITY_ENTITY)).get("state") == "on":
                    break
                await asyncio.sleep(0.2)
        favorites = await _favorites(session, station)
        assert len(favorites) == 2
        assert all("/api/doorstep/push/" in url for url in favorites)

        before = (await _state(hass_client, RING_ENTITY))["state"]
        events = await hass_ws.subscribe("subscribe_events", event_type="state_changed")
        # The station's button (the emulator's lab-only control), pressed from outside.
        async with session.post(f"http://{station.address}/lab/ring") as response:
            assert await response.json() == [200]
        async with within(5, "the ring reaches the event entity"):
            while True:
                data = (await events.get())["data"]
                new_state = data["new_state"] or {}
                if data["entity_id"] == RING_ENTITY and new_state.get("state") not in {
                    before,
                    "unknown",
                    "unavailable",
                }:
                    break
        assert new_state["attributes"]["event_type"] == "ring"
    finally:
        async with session.delete(
            f"{hass_client.base_url}/api/config/config_entries/entry/{entry_id}",
            headers=hass_client.headers,
        ) as response:
            response.raise_for_status()
    assert await _favorites(session, station) == []

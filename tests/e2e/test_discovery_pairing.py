"""Discovery, pairing and rings end to end: a real Home Assistant and a real reference
doorbell on the lab's home LAN, real mDNS between them, driven only through Home
Assistant's REST and websocket APIs and the doorbell's button, as a person would."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from scripts.lab.doorbell import Doorbell
from scripts.lab.hass import HassClient, HassWebSocket
from scripts.lab.netns import Topology
from scripts.lab.procs import within

from .conftest import Paired

pytestmark = pytest.mark.e2e

RING_ENTITY = "event.front_door_doorbell"
CONNECTIVITY_ENTITY = "binary_sensor.front_door_connectivity"
MOTION_ENTITY = "binary_sensor.front_door_motion"
# What Doorstep promises a person: a ring shows up in Home Assistant within a second,
# an outage within 10 s and a recovery within 5 s. Waits run longer than these, so a
# late event fails with its real latency rather than a bare timeout.
RING_DEADLINE = 1.0
OFFLINE_DEADLINE = 10.0
ONLINE_DEADLINE = 5.0


async def wait_for_state(
    events: asyncio.Queue[dict[str, Any]], entity_id: str, accept: set[str]
) -> dict[str, Any]:
    """The first `state_changed` that moves `entity_id` into one of `accept`."""
    while True:
        data = (await events.get())["data"]
        new_state = data["new_state"] or {}
        if data["entity_id"] == entity_id and new_state.get("state") in accept:
            return dict(new_state)


async def wait_for_new_ring(events: asyncio.Queue[dict[str, Any]], previous: str) -> dict[str, Any]:
    """The first `state_changed` that gives the ring entity a new timestamp."""
    while True:
        data = (await events.get())["data"]
        new_state = data["new_state"] or {}
        if data["entity_id"] == RING_ENTITY and new_state.get("state") not in {
            previous,
            "unavailable",
            "unknown",
        }:
            return dict(new_state)


async def current_state(client: HassClient, entity_id: str) -> str:
    state: str = (await client.get(f"/api/states/{entity_id}"))["state"]
    return state


async def test_discovered_and_paired(paired: Paired, hass_client: HassClient) -> None:
    print(f"discovered by mDNS {paired.discovery_seconds:.2f} s after the doorbell answered")
    entries = await hass_client.get("/api/config/config_entries/entry?domain=doorstep")
    entry = next(e for e in entries if e["entry_id"] == paired.entry_id)
    assert entry["title"] == "Front door"
    assert entry["source"] == "zeroconf"
    assert entry["state"] == "loaded"
    # Entities come up once the event stream is connected.
    async with within(15, f"{CONNECTIVITY_ENTITY} turns on"):
        while True:
            states = {s["entity_id"]: s for s in await hass_client.get("/api/states")}
            if states.get(CONNECTIVITY_ENTITY, {}).get("state") == "on":
                break
            await asyncio.sleep(0.2)
    assert states[RING_ENTITY]["attributes"]["event_types"] == ["ring"]
    assert states[MOTION_ENTITY]["state"] == "off"


async def test_rings_reach_the_event_entity(
    paired: Paired,
    front_door: Doorbell,
    hass_client: HassClient,
    hass_ws: HassWebSocket,
    session: aiohttp.ClientSession,
) -> None:
    state_changes = await hass_ws.subscribe("subscribe_events", event_type="state_changed")
    rings = await hass_ws.subscribe("subscribe_events", event_type="doorstep_ring")
    previous = await current_state(hass_client, RING_ENTITY)

    for press in (1, 2):
        pressed_at = time.monotonic()
        await front_door.press(session)
        async with within(10, f"press {press} reaches {RING_ENTITY}"):
            new_state = await wait_for_new_ring(state_changes, previous)
        latency = time.monotonic() - pressed_at
        print(f"press {press}: {RING_ENTITY} changed {latency * 1000:.0f} ms after the press")
        assert latency <= RING_DEADLINE, f"ring took {latency:.2f} s to reach Home Assistant"
        assert new_state["attributes"]["event_type"] == "ring"
        previous = new_state["state"]
        async with within(5, "doorstep_ring on the bus"):
            bus_event = await rings.get()
        assert bus_event["data"]["doorstep_id"] == paired.device_id, bus_event


async def test_outage_and_recovery(
    paired: Paired,
    front_door: Doorbell,
    hass_client: HassClient,
    hass_ws: HassWebSocket,
    session: aiohttp.ClientSession,
) -> None:
    state_changes = await hass_ws.subscribe("subscribe_events", event_type="state_changed")
    assert await current_state(hass_client, CONNECTIVITY_ENTITY) == "on"

    killed_at = time.monotonic()
    front_door.kill()
    async with within(30, f"{CONNECTIVITY_ENTITY} goes offline"):
        await wait_for_state(state_changes, CONNECTIVITY_ENTITY, {"off", "unavailable"})
    offline = time.monotonic() - killed_at
    print(f"doorbell killed: {CONNECTIVITY_ENTITY} went offline after {offline:.2f} s")
    assert offline <= OFFLINE_DEADLINE
    assert await current_state(hass_client, RING_ENTITY) == "unavailable"

    # Same state dir, same address: the doorbell comes back as itself.
    front_door.start()
    async with within(20, "the doorbell answers after its restart", front_door.process):
        await front_door.wait_ready(session)
    answering_at = time.monotonic()
    async with within(30, f"{CONNECTIVITY_ENTITY} comes back"):
        await wait_for_state(state_changes, CONNECTIVITY_ENTITY, {"on"})
    online = time.monotonic() - answering_at
    print(f"doorbell restarted: back online {online:.2f} s after it answered again")
    assert online <= ONLINE_DEADLINE

    # And it still rings.
    previous = await current_state(hass_client, RING_ENTITY)
    await front_door.press(session)
    async with within(10, "a ring after the restart arrives"):
        await wait_for_new_ring(state_changes, previous)


async def test_silent_doorbell_goes_offline_and_back(
    paired: Paired,
    topology: Topology,
    front_door: Doorbell,
    hass_client: HassClient,
    hass_ws: HassWebSocket,
) -> None:
    """Unlike a killed process, a doorbell that loses power sends no TCP reset: Home
    Assistant must notice the silence (no heartbeat for three intervals)."""
    state_changes = await hass_ws.subscribe("subscribe_events", event_type="state_changed")
    async with within(10, f"{CONNECTIVITY_ENTITY} is on"):
        if await current_state(hass_client, CONNECTIVITY_ENTITY) != "on":
            await wait_for_state(state_changes, CONNECTIVITY_ENTITY, {"on"})

    cut_at = time.monotonic()
    topology.set_doorbell_cable(0, plugged=False)
    try:
        async with within(30, f"{CONNECTIVITY_ENTITY} goes offline after the cable is cut"):
            await wait_for_state(state_changes, CONNECTIVITY_ENTITY, {"off", "unavailable"})
        offline = time.monotonic() - cut_at
        print(f"cable pulled: {CONNECTIVITY_ENTITY} went offline after {offline:.2f} s")
        assert offline <= OFFLINE_DEADLINE
    finally:
        topology.set_doorbell_cable(0, plugged=True)
    plugged_at = time.monotonic()
    async with within(30, f"{CONNECTIVITY_ENTITY} comes back after the cable is plugged"):
        await wait_for_state(state_changes, CONNECTIVITY_ENTITY, {"on"})
    online = time.monotonic() - plugged_at
    print(f"cable plugged: back online after {online:.2f} s")
    assert online <= ONLINE_DEADLINE

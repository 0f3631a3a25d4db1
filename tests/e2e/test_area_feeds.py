"""Area feeds end to end: an agency outside the house, two hubs, one home that matches.

The reference agency runs on an outside host (its own namespace, routed from the hub
namespace, not on the home LAN) and serves a signed feed with two area requests for
the last hour: one around the home, one 60 km away. Two Home Assistants in the hub
namespace subscribe to it: hub A (the lab's, with the front door and a fresh ring
clip) and hub B (no doorbells, so no footage). nftables on the hub namespace's end of
the link to the agency counts every packet that leaves through it.

Until the owner approves with step-up, the agency sees only feed fetches, byte for byte
the same from both hubs; hub A holds one pending request (the covering entry), hub B
none, and nothing of the far entry exists anywhere. Then hub A's owner approves with
their password, and the agency receives the upload and verifies it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from scripts.lab.agency import AGENCY_PORT, LabAgency, area_requests, subscribe
from scripts.lab.doorbell import Doorbell
from scripts.lab.hass import (
    HassClient,
    HassWebSocket,
    Owner,
    approve_as_owner,
    hass_process,
    login,
    onboard,
    prepare_config_dir,
    wait_http_ready,
)
from scripts.lab.netns import Topology
from scripts.lab.nft import LinkCounters
from scripts.lab.procs import ManagedProcess, within

from .conftest import HassInstance, Paired, require_tool
from .test_upload_egress import _hub_clips, _wait_for_new_clip

pytestmark = pytest.mark.e2e

HUB_B_PORT = 8124


class AgencyLink(LinkCounters):
    """Counters on the hub namespace's end of the link to the agency."""

    def __init__(self, ns: str, link: str) -> None:
        feed = f'oifname "{link}" tcp dport {AGENCY_PORT}'
        super().__init__(
            ns,
            "feeds",
            outgoing=[
                f'oifname "{link}" counter name "out_all"',
                f'{feed} counter name "out_feed_port"',
                f'{feed} tcp flags & (syn | ack) == syn counter name "out_syn"',
            ],
            incoming=[f'iifname "{link}" counter name "in_all"'],
        )


@pytest.fixture
def hub_b(topology: Topology, lab_dir: Path) -> Iterator[tuple[ManagedProcess, Path, str]]:
    """A second Home Assistant with Doorstep (no doorbells) in the same namespace."""
    config_dir = prepare_config_dir(lab_dir / "config-b")
    yaml = (config_dir / "configuration.yaml").read_text()
    yaml = yaml.replace("\nhttp:\n", f"\nhttp:\n  server_port: {HUB_B_PORT}\n", 1)
    # Without a doorbell nothing loads Doorstep; YAML does (it logs that it wants none).
    (config_dir / "configuration.yaml").write_text(yaml + "\ndoorstep:\n")
    proc = hass_process(config_dir, lab_dir / "hass-b.log", topology.hub_ns)
    proc.start()
    try:
        yield proc, config_dir, f"http://{topology.hub_uplink_address}:{HUB_B_PORT}"
    finally:
        proc.stop()


@pytest.fixture
def agency(
    topology: Topology,
    hass_instance: HassInstance,
    hub_b: tuple[ManagedProcess, Path, str],
    lab_dir: Path,
) -> Iterator[LabAgency]:
    lab = LabAgency(topology=topology, run_dir=lab_dir / "feeds")
    try:
        lab.start(hass_instance.config_dir, hub_b[1])
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def agency_link(topology: Topology, agency: LabAgency) -> Iterator[AgencyLink]:
    require_tool("nft", "nftables")
    assert agency.outside is not None
    link = AgencyLink(topology.hub_ns, agency.outside.hub_link)
    try:
        yield link
    finally:
        link.remove()


async def _pending(client: HassClient) -> str:
    state = await client.get("/api/states/sensor.doorstep_sharing_pending_requests")
    return str(state["state"])


async def test_only_identical_feed_fetches_until_the_owner_approves(
    hass_instance: HassInstance,
    paired: Paired,
    front_door: Doorbell,
    hub_b: tuple[ManagedProcess, Path, str],
    agency: LabAgency,
    agency_link: AgencyLink,
    hass_client: HassClient,
    session: aiohttp.ClientSession,
) -> None:
    proc_b, _config_b, url_b = hub_b
    async with within(90, "hub B HTTP ready", proc_b):
        await wait_http_ready(session, url_b, proc_b)
    client_b = HassClient(
        session=session, base_url=url_b, token=await onboard(session, url_b, Owner())
    )
    async with within(90, "hub B running", proc_b):
        await client_b.wait_running()
        while True:
            entries = await client_b.get("/api/config/config_entries/entry?domain=doorstep")
            if any(entry["source"] == "system" for entry in entries):
                break
            await asyncio.sleep(0.5)

    # A ring at the front door, recorded as a clip on hub A.
    config_dir = hass_instance.config_dir
    before = set(_hub_clips(config_dir))
    await front_door.press(session)
    await _wait_for_new_clip(config_dir, before)
    await asyncio.sleep(1)
    await asyncio.to_thread(agency.publish, datetime.now(UTC))
    await agency.wait_serving()
    pending_before = await _pending(hass_client)
    counted_before = agency_link.read()
    assert counted_before["out_all"] == 0, counted_before

    for client in (hass_client, client_b):
        confirm = await subscribe(client, agency.url, agency.fingerprint)
        assert confirm["description_placeholders"]["agency"] == "Reference Police Department"

    async with within(60, "hub A files the covering area request"):
        while True:
            found = await area_requests(hass_client)
            if "RPD-2026-0412" in found:
                break
            await asyncio.sleep(0.5)
    assert "RPD-2026-0413" not in found
    # Both hubs probed (subscription form) and polled once: four fetches.
    async with within(30, "both hubs have polled"):
        while True:
            if len(agency.fetch_heads()) >= 4:
                break
            await asyncio.sleep(0.5)
    await asyncio.sleep(3)
    assert await area_requests(client_b) == {}
    assert await _pending(client_b) == "0"
    assert int(await _pending(hass_client)) == int(pending_before) + 1

    heads = agency.fetch_heads()
    counted = agency_link.read()
    print(f"\nagency link before approval: {counted}; {len(heads)} fetches")
    assert len(heads) == 4, heads
    # Every fetch, from either hub, was the same bytes: nothing tells the homes apart.
    assert len(set(heads)) == 1, heads
    assert heads[0].startswith(b"GET /feed.json HTTP/1.1\r\n")
    assert b"Cookie" not in heads[0]
    # Everything that left through the link was TCP to the feed's port, in exactly as
    # many connections as the agency counted fetches.
    assert counted["out_all"] == counted["out_feed_port"] > 0, counted
    assert counted["out_syn"] == len(heads), counted
    assert agency.process is not None
    assert "upload for entry" not in agency.process.log_text()

    # The owner approves with step-up, as the card does; the upload arrives and verifies.
    request_id = found["RPD-2026-0412"]
    token = await login(session, hass_instance.base_url, Owner())
    person = await HassWebSocket.connect(session, hass_instance.base_url, token)
    try:
        approved = await approve_as_owner(person, request_id, Owner())
    finally:
        await person.close()
    assert approved.get("state") == "approved", approved
    log = await agency.wait_verified("rpd-near", 60)
    assert "upload for entry rpd-near: VERIFIED" in log
    assert f"Request    {request_id}" in log
    after = agency_link.read()
    print(f"agency link after approval: {after}")
    assert after["out_all"] > counted["out_all"]

"""The sharing issue's no-egress proof, end to end.

The reference requester runs as an "outside" host: its own namespace, routed from the
hub over a link of its own (not the home LAN), serving HTTPS with a certificate from a
private CA that the hub trusts through ``doorstep/trusted_requesters.pem``. It files a
request for upload delivery. Then, for two minutes, Chromium plays the front door live
through Home Assistant and the doorbell rings every few seconds (so clips are
recorded), while nftables in the hub namespace counts every packet that leaves through
the link to the requester: exactly 0. Then the owner, an admin person, turns the
request's switch on through Home Assistant's REST API, and the requester receives and
verifies exactly the clips the gate froze (ids and SHA-256 from the audit log).
"""

from __future__ import annotations

import asyncio
from base64 import b64decode
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
import hashlib
import json
import os
from pathlib import Path
import subprocess
import sys
import time
from typing import Any

import aiohttp
from playwright.async_api import async_playwright
import pytest

from reference_doorbell.release_check import verify_archive
from scripts.lab.certs import TestCa
from scripts.lab.doorbell import Doorbell
from scripts.lab.forward import TcpForwarder
from scripts.lab.hass import (
    HASS_PORT,
    REPO,
    HassClient,
    HassWebSocket,
    Owner,
    approve_as_owner,
    login,
)
from scripts.lab.netns import Topology, ns_argv
from scripts.lab.nft import LinkCounters
from scripts.lab.outside import OutsideHost
from scripts.lab.pairing import discover_and_pair
from scripts.lab.procs import ManagedProcess, python_env, within
from scripts.lab.requests import create_requester

from .conftest import BROWSER_GID, HassInstance, Paired, require_tool, run_async
from .test_live_view import (  # noqa: F401 (fixtures, used by name)
    CHROMIUM_ARGS,
    WATCH_VIDEO,
    PacketCounters,
    packet_counters,
)

pytestmark = pytest.mark.e2e

CAMERA = "camera.front_door"
DASHBOARD_PATH = "/lovelace/doorbells"
WATCH_SECONDS = 120.0
RING_EVERY = 12.0
UPLOAD_PORT = 8443
# The live-view test's flags, but with every host name unresolvable except loopback.
BROWSER_ARGS = [
    *(arg for arg in CHROMIUM_ARGS if not arg.startswith("--host-resolver-rules=")),
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
API = "/api/doorstep/v1"


@pytest.fixture
def back_door(
    topology: Topology, hass_instance: HassInstance, paired: Paired, lab_dir: Path
) -> Iterator[Doorbell]:
    """A second doorbell on the home LAN, discovered and paired for this test only."""
    host = topology.add_doorbell()
    bell = Doorbell(
        name="Back door",
        address=host.address,
        ns=host.ns,
        state_dir=lab_dir / "back-door",
        log_path=lab_dir / "back-door.log",
    )
    entry_id: str | None = None
    try:
        bell.start()

        async def pair_back_door() -> str:
            async with aiohttp.ClientSession() as session:
                client = HassClient(
                    session=session, base_url=hass_instance.base_url, token=hass_instance.token
                )
                pairing = await discover_and_pair(client, bell)
            assert pairing.result["type"] == "create_entry", pairing.result
            return pairing.entry_id

        entry_id = run_async(pair_back_door)
        yield bell
    finally:
        if entry_id is not None:

            async def remove_entry() -> None:
                url = f"{hass_instance.base_url}/api/config/config_entries/entry/{entry_id}"
                async with (
                    aiohttp.ClientSession() as session,
                    session.delete(
                        url, headers={"Authorization": f"Bearer {hass_instance.token}"}
                    ) as resp,
                ):
                    resp.raise_for_status()

            run_async(remove_entry)
        bell.stop()
        topology.remove_last_doorbell()


@pytest.fixture
def outside(topology: Topology) -> Iterator[OutsideHost]:
    host = OutsideHost(topology=topology)
    host.build()
    try:
        yield host
    finally:
        host.teardown()


class RequesterLink(LinkCounters):
    """Counters on the hub's end of the link to the requester: every IP packet each way."""

    def __init__(self, hub_ns: str, link: str) -> None:
        super().__init__(
            hub_ns,
            "egress",
            outgoing=[f'oifname "{link}" counter name "hub_to_requester"'],
            incoming=[f'iifname "{link}" counter name "requester_to_hub"'],
        )


class BrowserStrayDestinations:
    """Where the browser tried to send packets outside the live-view test's lab nets.

    The live-view guard counts and drops such packets; this set says where they were
    headed. The hub offers WebRTC candidates on each of its private addresses, the one
    on its link to the requester included, so Chromium's connectivity checks try that
    address too (and are dropped in the root namespace, never reaching the hub).
    """

    def __init__(self, gid: int, lab_nets: str) -> None:
        self._table = f"ds{os.getpid()}stray"
        subprocess.run(
            ["nft", "-f", "-"],
            input=f"""
table inet {self._table} {{
  set v4 {{ type ipv4_addr; flags dynamic; }}
  set v6 {{ type ipv6_addr; flags dynamic; }}
  chain output {{
    type filter hook output priority -20; policy accept;
    meta skgid {gid} ip daddr != {{ 127.0.0.0/8, {lab_nets} }} update @v4 {{ ip daddr }}
    meta skgid {gid} ip6 daddr != ::1 update @v6 {{ ip6 daddr }}
  }}
}}
""",
            text=True,
            capture_output=True,
            check=True,
        )

    def read(self) -> set[str]:
        found: set[str] = set()
        for name in ("v4", "v6"):
            listing = json.loads(
                subprocess.run(
                    ["nft", "-j", "list", "set", "inet", self._table, name],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            for item in listing["nftables"]:
                for element in item.get("set", {}).get("elem", []):
                    found.add(str(element))
        return found

    def remove(self) -> None:
        subprocess.run(
            ["nft", "delete", "table", "inet", self._table], capture_output=True, check=False
        )


@pytest.fixture
def browser_strays(topology: Topology) -> Iterator[BrowserStrayDestinations]:
    require_tool("nft", "nftables")
    strays = BrowserStrayDestinations(BROWSER_GID, f"{topology.lan}, {topology.uplink}")
    try:
        yield strays
    finally:
        strays.remove()


@pytest.fixture
def requester_link(topology: Topology, outside: OutsideHost) -> Iterator[RequesterLink]:
    require_tool("nft", "nftables")
    link = RequesterLink(topology.hub_ns, outside.hub_link)
    try:
        yield link
    finally:
        link.remove()


def _requester_argv(ns: str, *args: str) -> list[str]:
    return ns_argv(ns, sys.executable, "-m", "reference_doorbell.requester", *args)


def _hub_clips(config_dir: Path) -> dict[str, Path]:
    return {path.stem: path for path in (config_dir / "doorstep" / "clips").rglob("*.mp4")}


async def _wait_for_new_clip(config_dir: Path, before: set[str]) -> None:
    async with within(60, "a ring is recorded as a clip"):
        while True:
            if set(_hub_clips(config_dir)) - before:
                return
            await asyncio.sleep(0.5)


def _approved_clips(config_dir: Path, request_id: str) -> list[tuple[str, str]]:
    lines = (config_dir / "doorstep" / "audit.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    [approved] = [e for e in entries if e["kind"] == "approved" and e["request"] == request_id]
    return [(clip["id"], clip["sha256"]) for clip in approved["details"]["clips"]]


async def _switch_for(client: HassClient, request_id: str) -> str:
    async with within(20, "the request's switch appears"):
        while True:
            for state in await client.get("/api/states"):
                if (
                    state["entity_id"].startswith("switch.")
                    and state["attributes"].get("request_id") == request_id
                ):
                    return str(state["entity_id"])
            await asyncio.sleep(0.5)


async def test_nothing_reaches_the_requester_until_a_person_approves(
    hass_instance: HassInstance,
    paired: Paired,
    topology: Topology,
    front_door: Doorbell,
    back_door: Doorbell,
    outside: OutsideHost,
    requester_link: RequesterLink,
    packet_counters: PacketCounters,  # noqa: F811
    browser_strays: BrowserStrayDestinations,
    chromium_in_group: Path,
    hass_client: HassClient,
    session: aiohttp.ClientSession,
    lab_dir: Path,
    tmp_path: Path,
) -> None:
    config_dir = hass_instance.config_dir
    # The requester's TLS: a private CA the owner chose to trust, as a police portal's.
    ca = TestCa.create(tmp_path / "ca", "Station North CA")
    server = ca.issue(tmp_path / "ca", [outside.address])
    (config_dir / "doorstep").mkdir(exist_ok=True)
    (config_dir / "doorstep" / "trusted_requesters.pem").write_bytes(ca.cert_path.read_bytes())
    token = await create_requester(hass_client)
    requester_env = python_env(REPO) | {"DOORSTEP_REQUESTER_TOKEN": token}
    hub_from_outside = f"http://{outside.hub_address}:{HASS_PORT}"

    # Footage to ask for: a ring at each door, each recorded as a clip.
    bells = [front_door, back_door]
    for bell in bells:
        before = set(_hub_clips(config_dir))
        await bell.press(session)
        await _wait_for_new_clip(config_dir, before)

    out_dir = tmp_path / "received"
    receiver = ManagedProcess(
        name="requester receive",
        argv=_requester_argv(
            outside.ns,
            "receive",
            f"--listen={outside.address}:{UPLOAD_PORT}",
            f"--cert={server.cert}",
            f"--key={server.key}",
            f"--out={out_dir}",
            f"--hub={hub_from_outside}",
            "--timeout=600",
        ),
        log_path=lab_dir / "requester-receive.log",
        env=requester_env,
        cwd=REPO,
    )
    receiver.start()
    try:
        async with within(60, "the requester listens", receiver):
            while "listening on" not in receiver.log_text():
                assert receiver.running(), receiver.log_tail()
                await asyncio.sleep(0.2)
        now = datetime.now(UTC)
        filed = await asyncio.to_thread(
            subprocess.run,
            _requester_argv(
                outside.ns,
                "file",
                f"--hub={hub_from_outside}",
                "--json",
                "--reference=CASE-2026-200",
                "--reason=Package taken from the porch",
                f"--start={(now - timedelta(minutes=10)).isoformat()}",
                f"--end={now.isoformat()}",
                "--contact=desk@station-north.example",
                f"--upload-url=https://{outside.address}:{UPLOAD_PORT}/evidence",
            ),
            env=requester_env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert filed.returncode == 0, filed.stderr
        request_id = str(json.loads(filed.stdout.strip().splitlines()[-1])["id"])
        switch = await _switch_for(hass_client, request_id)
        state = await hass_client.get(f"/api/states/{switch}")
        assert state["state"] == "off"
        assert state["attributes"]["delivery_status"] == "awaiting_approval"

        # The filing's own TCP teardown has settled: from here on, count.
        await asyncio.sleep(2)
        link_before = requester_link.read()
        lab_before = packet_counters.read()
        assert link_before["requester_to_hub"] > 0  # the counters see this link
        watched = await _watch_and_ring(
            hass_instance, topology, chromium_in_group, bells, session, config_dir
        )
        link_after = requester_link.read()
        lab_after = packet_counters.read()

        print(
            f"\n{WATCH_SECONDS:.0f} s pending: {watched}, requester link "
            f"{link_before} -> {link_after}, lab {lab_before} -> {lab_after}"
        )
        # Live view played throughout (at least a frame a second on average), and the
        # rings were recorded.
        assert watched["frames"] > WATCH_SECONDS, watched
        assert watched["new_clips"] >= 2, watched
        assert link_after["hub_to_requester"] == link_before["hub_to_requester"]
        assert link_after["requester_to_hub"] == link_before["requester_to_hub"]
        # Nothing else left the lab either: no DNS, nothing routed out of the hub or a
        # doorbell, nothing up the uplink. The browser's only stray packets (dropped in
        # the root namespace) were ICE checks to the hub's own address on the link.
        for name in ("browser_dns", "lab_outside", "uplink_outside"):
            assert lab_after[name] == lab_before[name], (name, lab_before, lab_after)
        assert browser_strays.read() <= {outside.hub_address}, browser_strays.read()
        assert receiver.running(), receiver.log_tail()

        # A person who is an admin logs in and approves the preview with their password,
        # as in the card (the switch no longer approves).
        person = await HassWebSocket.connect(
            session,
            hass_client.base_url,
            await login(session, hass_client.base_url, Owner()),
        )
        try:
            approved = await approve_as_owner(person, request_id, Owner())
        finally:
            await person.close()
        assert approved["state"] == "approved", approved
        async with within(90, "the requester receives and verifies the upload", receiver):
            assert receiver.popen is not None
            await asyncio.to_thread(receiver.popen.wait)
        assert receiver.popen is not None
        assert receiver.popen.returncode == 0, receiver.log_tail()
    finally:
        receiver.stop()

    frozen = _approved_clips(config_dir, request_id)
    # Both doors' clips from before the request; none recorded while it waited.
    assert len(frozen) >= 2, frozen
    key = await _requester_key(hass_client, token)
    manifest = verify_archive((out_dir / f"{request_id}.tar").read_bytes(), key)
    assert manifest["request_id"] == request_id
    assert [(c["id"], c["sha256"]) for c in manifest["clips"]] == frozen
    hub_clips = _hub_clips(config_dir)
    for clip_id, sha256 in frozen:
        received = (out_dir / request_id / "clips" / f"{clip_id}.mp4").read_bytes()
        assert hashlib.sha256(received).hexdigest() == sha256
        assert hub_clips[clip_id].read_bytes() == received
    # The positive control: the same counters saw the upload once it was allowed.
    assert requester_link.read()["hub_to_requester"] > link_after["hub_to_requester"]
    state = await hass_client.get(f"/api/states/{switch}")
    assert state["attributes"]["delivery_status"] == "delivered"
    assert state["attributes"]["status"] == "fulfilled"


async def _requester_key(client: HassClient, token: str) -> bytes:
    async with client.session.get(
        f"{client.base_url}{API}/key", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        resp.raise_for_status()
        body: dict[str, Any] = await resp.json()
    return b64decode(body["public_key"])


async def _watch_and_ring(
    hass_instance: HassInstance,
    topology: Topology,
    chromium: Path,
    bells: list[Doorbell],
    session: aiohttp.ClientSession,
    config_dir: Path,
) -> dict[str, Any]:
    """Play the front door live in Chromium for WATCH_SECONDS; every RING_EVERY seconds
    one of the doors rings, in turn."""
    forwarder = TcpForwarder("127.0.0.1", 0, topology.hub_uplink_address, HASS_PORT)
    await forwarder.start()
    url = f"http://127.0.0.1:{forwarder.bound_port}"
    owner = Owner()
    clips_before = set(_hub_clips(config_dir))
    rings = 0
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(chromium), args=BROWSER_ARGS
            )
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                await context.grant_permissions(["camera", "microphone"], origin=url)
                page = await context.new_page()
                await page.goto(f"{url}{DASHBOARD_PATH}")
                await page.locator("input[name=username]").fill(owner.username)
                await page.locator("input[name=password]").fill(owner.password)
                await page.keyboard.press("Enter")
                await page.wait_for_url(f"**{DASHBOARD_PATH}", timeout=30_000)
                await page.wait_for_function(f"({WATCH_VIDEO})() >= 0", timeout=30_000)
                started = time.monotonic()
                next_ring = started
                while (elapsed := time.monotonic() - started) < WATCH_SECONDS:
                    if time.monotonic() >= next_ring:
                        await bells[rings % len(bells)].press(session)
                        rings += 1
                        next_ring += RING_EVERY
                    await asyncio.sleep(min(1.0, max(0.0, WATCH_SECONDS - elapsed)))
                frames = int(await page.evaluate(f"({WATCH_VIDEO})()"))
            finally:
                await browser.close()
    finally:
        await forwarder.close()
    return {
        "frames": frames,
        "rings": rings,
        "new_clips": len(set(_hub_clips(config_dir)) - clips_before),
    }

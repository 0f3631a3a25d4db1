"""An ONVIF doorbell end to end: the ONVIF emulator (SOAP with WS-Security digest auth,
GStreamer's RTSP server behind it) in its own namespace on the lab's home LAN, added
through the config-flow API by host and credentials, a button press pulled from its
pull point to the event entity, a clip recorded from its RTSP stream, and a police
request for that footage approved by the owner as the card does and verified by the
reference requester; then the owner watches it live in Chromium on the lab dashboard,
with nothing leaving the lab."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import os
from pathlib import Path
import sys
from typing import Any

import aiohttp
import pytest

from scripts.lab.browser import logged_in_page
from scripts.lab.hass import (
    REPO,
    HassClient,
    HassWebSocket,
    Owner,
    approve_as_owner,
    login,
)
from scripts.lab.netns import DoorbellHost, Topology, ns_argv
from scripts.lab.procs import ManagedProcess, python_env, within
from scripts.lab.requests import file_request, wait_and_verify
from tests.rtsp_camera import require_gstreamer

from .conftest import HassInstance
from .test_live_view import CHROMIUM_ARGS, PEER_STATS, RECORD_PEERS, PacketCounters, egress_guard

pytestmark = pytest.mark.e2e

MAC = "02005e102030"
USERNAME = "onvif-admin"
PASSWORD = "lab-onvif:pass"
RING_ENTITY = "event.onvif_door_station_doorbell"
CONNECTIVITY_ENTITY = "binary_sensor.onvif_door_station_connectivity"
CAMERA = "camera.onvif_door_station"
# The lab dashboard's third live card shows camera.side_gate; the test renames the ONVIF
# camera to it, as an owner would point a card at their camera.
DASHBOARD_CAMERA = "camera.side_gate"
DASHBOARD_PATH = "/lovelace/doorbells"
MIN_FRAMES = 30
# The emulator's picture (GStreamer's test pattern) is 320x240; the reference doorbells
# on the same dashboard send 640 wide, so the size picks the ONVIF card's <video>.
WATCH_ONVIF_VIDEO = """
() => {
  const videos = [];
  const collect = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "VIDEO") videos.push(el);
      if (el.shadowRoot) collect(el.shadowRoot);
    }
  };
  const state = window.__onvifVideo;
  if (state && state.video.isConnected) return state.frames;
  collect(document);
  const video = videos.find((v) => v.videoWidth === 320 && v.videoHeight === 240);
  if (!video) return -1;
  const fresh = { video, frames: 0 };
  window.__onvifVideo = fresh;
  const onFrame = () => {
    fresh.frames += 1;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  return 0;
}
"""


@pytest.fixture
def onvif_device(topology: Topology, lab_dir: Path) -> Iterator[DoorbellHost]:
    """The emulator on a new host of the lab LAN (port 80, RTSP on 554); removed after."""
    require_gstreamer()
    host = topology.add_doorbell()
    argv = [
        sys.executable, "-m", "scripts.lab.onvif_emulator",
        "--host", host.address,
        "--username", USERNAME,
        "--password", PASSWORD,
    ]  # fmt: skip
    process = ManagedProcess(
        name="ONVIF emulator",
        argv=ns_argv(host.ns, *argv),
        log_path=lab_dir / "onvif.log",
        env=python_env(REPO),
        cwd=REPO,
    )
    process.start()
    try:
        yield host
    finally:
        process.stop(grace=5)
        topology.remove_last_doorbell()


async def _state(client: HassClient, entity_id: str) -> dict[str, Any]:
    states = {s["entity_id"]: s for s in await client.get("/api/states")}
    return dict(states.get(entity_id, {}))


async def _add_through_the_flow(client: HassClient, host: DoorbellHost) -> dict[str, Any]:
    """The owner's path in the UI: Add device, ONVIF, host and credentials."""
    menu = await client.post(
        "/api/config/config_entries/flow", {"handler": "doorstep", "show_advanced_options": False}
    )
    assert menu["type"] == "menu", menu
    assert "onvif" in menu["menu_options"], menu
    path = f"/api/config/config_entries/flow/{menu['flow_id']}"
    form = await client.post(path, {"next_step_id": "onvif"})
    assert form["step_id"] == "onvif", form
    fields = {"host": host.address, "port": 80, "username": USERNAME}
    async with within(20, "the ONVIF device answers the flow"):
        while True:
            wrong = await client.post(path, {**fields, "password": "not-it"})
            if wrong.get("errors") != {"base": "cannot_connect"}:
                break
            await asyncio.sleep(0.5)
    assert wrong["errors"] == {"base": "invalid_auth"}, wrong
    result: dict[str, Any] = await client.post(path, {**fields, "password": PASSWORD})
    return result


async def _clips(ws: HassWebSocket) -> set[str]:
    folder = await ws.call(
        "media_source/browse_media", media_content_id=f"media-source://doorstep/{MAC}"
    )
    return {child["media_content_id"] for child in folder.get("children") or []}


async def _live_view_in_chromium(
    topology: Topology, chromium: Path, counters: PacketCounters
) -> tuple[int, list[dict[str, Any]], dict[str, int]]:
    """The owner logs in to the dashboard in Chromium; its card plays the ONVIF camera.

    Returns the frames the page presented, WebRTC's peer statistics and the packet
    counters of the browser's egress guard (see test_live_view.py).
    """
    async with logged_in_page(
        chromium=chromium,
        args=CHROMIUM_ARGS,
        hub_address=topology.hub_uplink_address,
        path=DASHBOARD_PATH,
        owner=Owner(),
        init_scripts=[RECORD_PEERS],
    ) as opened:
        page = opened.page
        await page.wait_for_function(f"({WATCH_ONVIF_VIDEO})() >= 0", timeout=30_000)
        await page.wait_for_function(
            f"({WATCH_ONVIF_VIDEO})() > {MIN_FRAMES}", timeout=20_000, polling=100
        )
        frames = int(await page.evaluate("window.__onvifVideo.frames"))
        peers: list[dict[str, Any]] = await page.evaluate(PEER_STATS)
    return frames, peers, counters.read()


async def test_onvif_added_rings_records_and_its_footage_is_shared(
    onvif_device: DoorbellHost,
    hass_instance: HassInstance,
    hass_client: HassClient,
    hass_ws: HassWebSocket,
    session: aiohttp.ClientSession,
    lab_dir: Path,
    topology: Topology,
    chromium_in_group: Path,
) -> None:
    result = await _add_through_the_flow(hass_client, onvif_device)
    assert result["type"] == "create_entry", result
    entry_id = result["result"]["entry_id"]
    try:
        async with within(20, f"{CONNECTIVITY_ENTITY} turns on"):
            while True:
                if (await _state(hass_client, CONNECTIVITY_ENTITY)).get("state") == "on":
                    break
                await asyncio.sleep(0.2)
        # Let the relay gather some pre-roll from the RTSP stream.
        await asyncio.sleep(3)
        known_clips = await _clips(hass_ws)
        before = (await _state(hass_client, RING_ENTITY))["state"]
        events = await hass_ws.subscribe("subscribe_events", event_type="state_changed")
        # The button (the emulator's lab-only control), pressed from outside; the hub
        # learns of it through its pull-point subscription.
        async with session.post(f"http://{onvif_device.address}/lab/ring") as response:
            assert await response.json() == {"heard": 1}
        async with within(15, "the ring reaches the event entity"):
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

        async with within(90, "the ring's clip is recorded"):
            while True:
                if new := await _clips(hass_ws) - known_clips:
                    break
                await asyncio.sleep(1)
        clip_id = next(iter(new)).rsplit("/", 1)[1]

        created = await hass_ws.call(
            "doorstep/sharing/requester/create", name="Station East", kind="police"
        )
        token_file = lab_dir / "onvif-requester-token"
        token_file.write_text(created["token"] + "\n", encoding="utf-8")
        request_id = await file_request(hass_instance.base_url, token_file)

        # Only a person in an interactive session, with a fresh password, approves.
        person_token = await login(session, hass_instance.base_url, Owner())
        person = await HassWebSocket.connect(session, hass_instance.base_url, person_token)
        try:
            preview = await person.call("doorstep/sharing/preview", request_id=request_id)
            assert clip_id in {clip["id"] for clip in preview["clips"]}, preview
            approved = await approve_as_owner(person, request_id, Owner())
        finally:
            await person.close()
        assert approved.get("state") == "approved", approved
        evidence = lab_dir / "onvif-evidence"
        verified, lines = await wait_and_verify(
            hass_instance.base_url, token_file, request_id, evidence, patience=30
        )
        assert verified, lines
        assert (evidence / request_id / "clips" / f"{clip_id}.mp4").stat().st_size > 0

        await hass_ws.call(
            "config/entity_registry/update", entity_id=CAMERA, new_entity_id=DASHBOARD_CAMERA
        )
        with egress_guard(topology, f"ds{os.getpid()}onvif") as counters:
            frames, peers, packets = await _live_view_in_chromium(
                topology, chromium_in_group, counters
            )
        print(f"\nONVIF live view: {frames} frames, peers {peers}, packets {packets}")
        assert frames > MIN_FRAMES
        live = [peer for peer in peers if peer["framesDecoded"] > MIN_FRAMES]
        assert live, peers
        assert all(peer["codec"] == "video/H264" for peer in live), peers
        # The browser's traffic stayed in the lab (and the guard saw it there).
        assert packets["browser_outside"] == 0, packets
        assert packets["browser_dns"] == 0, packets
        assert packets["browser_lab"] > 0, packets
    finally:
        async with session.delete(
            f"{hass_client.base_url}/api/config/config_entries/entry/{entry_id}",
            headers=hass_client.headers,
        ) as response:
            response.raise_for_status()

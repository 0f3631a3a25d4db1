"""Live view and snapshots through the camera entity, with a real aiortc browser stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.doorstep.const import CONF_ALLOW_REMOTE_LIVE_VIEW, CONF_HOME_NETWORKS, DOMAIN
from custom_components.doorstep.live_view import Whereabouts, home_network_policy
from custom_components.doorstep.media import ProfileDecision
from custom_components.doorstep.repairs import async_update_profile_issue, profile_issue_id
from reference_doorbell.blockcode import decode_blockcode
from reference_doorbell.doorbell import Doorbell

from .conftest import wait_for

# The test client connects from 127.0.0.1: a browser on the hub, counted as home.
pytestmark = pytest.mark.usefixtures("hub_browsers_at_home")

CAMERA = "camera.front_door"
VIEWERS = "sensor.front_door_live_viewers"
OUTSIDE = "203.0.113.7"


@pytest.fixture(autouse=True)
def _loopback_ice() -> Iterator[None]:
    """The test harness fakes network adapters; let aiortc gather on loopback only."""
    with patch("aioice.ice.get_host_addresses", return_value=["127.0.0.1"]):
        yield


def _outside_browser() -> Any:
    """Judge the browser outside; how that judgement is made is test_remote_access.py's."""
    return patch(
        "custom_components.doorstep.live_view.client_whereabouts",
        return_value=Whereabouts.OUTSIDE_ADDRESS,
    )


async def _offer(pc: RTCPeerConnection) -> str:
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription.sdp


async def _send_offer(ws: Any, sdp: str) -> list[dict[str, Any]]:
    """Send a WebRTC offer over Home Assistant's websocket API and collect its replies."""
    await ws.send_json_auto_id({"type": "camera/webrtc/offer", "entity_id": CAMERA, "offer": sdp})
    result = await ws.receive_json()
    assert result["success"], result
    messages = []
    async with asyncio.timeout(10):
        while True:
            event = (await ws.receive_json())["event"]
            messages.append(event)
            if event["type"] in ("answer", "error"):
                return messages


def test_home_network_rule() -> None:
    """Private, link-local and added networks may watch; others only when allowed."""
    assert home_network_policy({}).allows("192.168.1.20")
    assert home_network_policy({}).allows("fe80::1")
    assert not home_network_policy({}).allows(OUTSIDE)
    assert home_network_policy({CONF_HOME_NETWORKS: ["203.0.113.0/24"]}).allows(OUTSIDE)
    assert home_network_policy({CONF_ALLOW_REMOTE_LIVE_VIEW: True}).allows(OUTSIDE)


async def test_snapshot_on_home_network(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
) -> None:
    """A browser at home gets the doorbell's JPEG."""
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy/{CAMERA}")
    assert response.status == 200
    body = await response.read()
    assert body[:2] == b"\xff\xd8"


async def test_snapshot_refused_outside_home(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
) -> None:
    """Invariant I3: no snapshot leaves for a browser outside the home network."""
    client = await hass_client()
    with _outside_browser():
        response = await client.get(f"/api/camera_proxy/{CAMERA}")
    assert response.status == 403


async def test_live_view_end_to_end(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
) -> None:
    """An aiortc browser stand-in gets H.264 frames whose burned-in counter advances."""
    ws = await hass_ws_client(hass)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    frames: list[int] = []

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def read() -> None:
            while len(frames) < 10:
                frame = await track.recv()
                code = decode_blockcode(frame.to_ndarray(format="rgb24"))
                if code is not None:
                    frames.append(code[0])

        hass.async_create_background_task(read(), "test viewer")

    try:
        messages = await _send_offer(ws, await _offer(pc))
        answer = messages[-1]
        assert answer["type"] == "answer", messages
        assert "H264" in answer["answer"]
        await pc.setRemoteDescription(RTCSessionDescription(answer["answer"], "answer"))
        await wait_for(hass, lambda: len(frames) >= 10, within=20)
        assert frames == sorted(frames)
        assert frames[-1] > frames[0]
        await wait_for(hass, lambda: hass.states.get(VIEWERS).state == "1")  # type: ignore[union-attr]
    finally:
        await pc.close()
    # The browser hung up: its session closes and the count drops.
    await wait_for(hass, lambda: hass.states.get(VIEWERS).state == "0", within=15)  # type: ignore[union-attr]


async def test_viewer_survives_doorbell_outage(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
) -> None:
    """The doorbell vanishes mid-stream: the picture freezes, then goes live again by itself."""
    ws = await hass_ws_client(hass)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    counters: list[int] = []

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def read() -> None:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return  # the test hung up
                code = decode_blockcode(frame.to_ndarray(format="rgb24"))
                if code is not None:
                    counters.append(code[0])

        hass.async_create_background_task(read(), "test viewer")

    try:
        messages = await _send_offer(ws, await _offer(pc))
        await pc.setRemoteDescription(RTCSessionDescription(messages[-1]["answer"], "answer"))
        await wait_for(hass, lambda: len(counters) >= 5, within=20)

        await doorbell.stop()
        await asyncio.sleep(1.5)
        frozen_at = len(counters)
        await doorbell.start()
        back = asyncio.get_running_loop().time()
        # Live again: frames with new counters arrive without a new offer.
        await wait_for(hass, lambda: len(counters) >= frozen_at + 5, within=10)
        recovered_in = asyncio.get_running_loop().time() - back
        assert recovered_in < 5, f"live again only after {recovered_in:.1f} s"
    finally:
        await pc.close()


async def test_live_view_refused_outside_home(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
) -> None:
    """Invariant I3: an offer from outside gets a clear error and no session."""
    ws = await hass_ws_client(hass)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        with _outside_browser():
            messages = await _send_offer(ws, await _offer(pc))
    finally:
        await pc.close()
    assert messages[-1]["type"] == "error"
    assert messages[-1]["code"] == "doorstep_outside_home_network"
    assert len(loaded_entry.runtime_data.sessions) == 0


@pytest.mark.parametrize(
    "sdp",
    [
        "",
        "not sdp at all",
        "v=0\r\n" + "a=x\r\n" * 100_000,
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
    ],
    ids=["empty", "garbage", "oversized", "no-video"],
)
async def test_bad_offers_get_clear_errors(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
    sdp: str,
) -> None:
    """Malformed SDP is refused with a message, and no peer connection is left behind."""
    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id({"type": "camera/webrtc/offer", "entity_id": CAMERA, "offer": sdp})
    result = await ws.receive_json()
    if result["success"]:
        messages = []
        async with asyncio.timeout(10):
            while not messages or messages[-1]["type"] not in ("answer", "error"):
                messages.append((await ws.receive_json())["event"])
        assert messages[-1]["type"] == "error"
        assert messages[-1]["message"]
    assert len(loaded_entry.runtime_data.sessions) == 0


async def test_client_configuration_has_no_ice_servers_of_ours(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """Doorstep adds no STUN or TURN server to what the browser is told."""
    camera = loaded_entry.runtime_data  # the relay and sessions exist while loaded
    assert camera.sessions is not None
    entity = hass.data["camera"].get_entity(CAMERA)
    assert entity._async_get_webrtc_client_configuration().configuration.ice_servers == []


async def test_profile_that_needs_transcoding_raises_issue(
    hass: HomeAssistant,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A High-profile (or B-frame) stream gets a repair issue; a baseline one clears it."""
    high = ProfileDecision("High", "640028", 1920, 1080, True, "High profile needs decoding")
    async_update_profile_issue(hass, loaded_entry, high)
    issue_id = profile_issue_id(doorbell.device_id)
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {
        "name": "Front door",
        "profile": "High",
    }
    baseline = ProfileDecision("Constrained Baseline", "42e01f", 640, 360, False, "ok")
    async_update_profile_issue(hass, loaded_entry, baseline)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_real_stream_is_passthrough(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The reference doorbell's baseline stream raises no profile issue."""
    subscription = loaded_entry.runtime_data.relay.subscribe(name="test", viewer=False)
    try:
        await asyncio.wait_for(subscription.get(), 10)
    finally:
        subscription.close()
    assert issue_registry.async_get_issue(DOMAIN, profile_issue_id(doorbell.device_id)) is None

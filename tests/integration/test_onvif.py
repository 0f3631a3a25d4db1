"""An ONVIF camera or doorbell in Home Assistant, against Doorstep's ONVIF emulator (SOAP,
WS-Security digest auth, a pull-point subscription) with GStreamer's RTSP server as its
video: the config flow's checks, entities, rings and motion, a clip on a ring, live view
over WebRTC, reauth and reconfigure, and no credentials in diagnostics or the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import json
import logging
import socket
from typing import Any
from unittest.mock import patch

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.doorstep.const import (
    CONF_DEVICE_ID,
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    CONF_RING_COOLDOWN,
    DOMAIN,
    EVENT_RING,
)
from custom_components.doorstep.device import DRIVER_ONVIF, KEY_DRIVER
from custom_components.doorstep.media import ClipStore
from custom_components.doorstep.recording import DATA_CLIPS
from scripts.lab.onvif_emulator import OnvifEmulator
from tests.rtsp_camera import RtspCameraProcess, require_gstreamer

from .conftest import wait_for

# The test client connects from 127.0.0.1 and stands for a browser at home.
pytestmark = pytest.mark.usefixtures("hub_browsers_at_home")

USERNAME = "onvif-user"
PASSWORD = "0nv1f:p@ss"
MAC = "02005e102030"
DOORBELL = "event.gate_doorbell"
MOTION = "binary_sensor.gate_motion"
CAMERA = "camera.gate"


@pytest.fixture(autouse=True)
def _loopback_ice() -> Iterator[None]:
    """The test harness fakes network adapters; let aiortc gather on loopback only."""
    with patch("aioice.ice.get_host_addresses", return_value=["127.0.0.1"]):
        yield


@pytest.fixture
async def device(socket_enabled: None) -> AsyncIterator[OnvifEmulator]:
    emulator = OnvifEmulator(username=USERNAME, password=PASSWORD, rtsp_port=_closed_port())
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def rtsp_camera(device: OnvifEmulator) -> AsyncIterator[RtspCameraProcess]:
    """The device's video, at the port and path its GetStreamUri names."""
    require_gstreamer()
    camera = RtspCameraProcess(path=device.rtsp_path, username=USERNAME, password=PASSWORD)
    await camera.start()
    device.rtsp_port = camera.port
    try:
        yield camera
    finally:
        await camera.stop()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _entry(device: OnvifEmulator, **extra: object) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="Gate",
        unique_id=MAC,
        data={
            KEY_DRIVER: DRIVER_ONVIF,
            CONF_HOST: "127.0.0.1",
            CONF_PORT: device.port,
            CONF_DEVICE_ID: MAC,
            CONF_USERNAME: USERNAME,
            CONF_PASSWORD: PASSWORD,
            CONF_NAME: "Gate",
            **extra,
        },
        options={CONF_PRE_ROLL: 1, CONF_POST_ROLL: 1},
    )


async def _onvif_form(hass: HomeAssistant) -> ConfigFlowResult:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert "onvif" in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "onvif"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "onvif"
    return result


async def test_flow_checks_the_device_before_adding_it(
    hass: HomeAssistant, device: OnvifEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing there, no usable ONVIF answer (XML that does not parse, a SOAP fault, an
    answer far too large), a wrong password: each its own error; then the device is
    added under its MAC, and a second time is refused."""
    caplog.set_level(logging.DEBUG)
    result = await _onvif_form(hass)
    flow_id = result["flow_id"]
    fields = {CONF_HOST: "127.0.0.1", CONF_USERNAME: USERNAME, CONF_PASSWORD: PASSWORD}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**fields, CONF_PORT: _closed_port()}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    for misbehave in ("malformed", "fault", "oversized"):
        device.misbehave = misbehave
        result = await hass.config_entries.flow.async_configure(
            flow_id, {**fields, CONF_PORT: device.port}
        )
        assert result["errors"] == {"base": "not_onvif"}, misbehave
    device.misbehave = None
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**fields, CONF_PORT: device.port, CONF_PASSWORD: "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        result = await hass.config_entries.flow.async_configure(
            flow_id, {**fields, CONF_USERNAME: f" {USERNAME} ", CONF_PORT: device.port}
        )
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "ONVIF Door Station"
    assert result["result"].unique_id == MAC
    assert result["data"] == {
        KEY_DRIVER: DRIVER_ONVIF,
        CONF_NAME: "ONVIF Door Station",
        CONF_DEVICE_ID: MAC,
        CONF_HOST: "127.0.0.1",
        CONF_PORT: device.port,
        CONF_USERNAME: USERNAME,
        CONF_PASSWORD: PASSWORD,
    }
    result = await _onvif_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**fields, CONF_PORT: device.port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert PASSWORD not in caplog.text


async def test_rings_and_motion_reach_home_assistant(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    device: OnvifEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pulled from the device's pull point: the doorbell event entity fires, motion turns
    on and off; diagnostics and the log show no credentials; unloading unsubscribes."""
    caplog.set_level(logging.DEBUG)
    entry = _entry(device)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: entry.runtime_data.coordinator.data.connected)
    await wait_for(hass, lambda: bool(device.subscriptions))
    entities = {
        registered.entity_id
        for registered in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    }
    assert {DOORBELL, MOTION, CAMERA, "event.gate_motion"} <= entities
    assert hass.states.get(DOORBELL).state == "unknown"  # type: ignore[union-attr]

    rings = async_capture_events(hass, EVENT_RING)
    assert device.press_button() == 1
    await wait_for(hass, lambda: hass.states.get(DOORBELL).state != "unknown")  # type: ignore[union-attr]
    assert hass.states.get(DOORBELL).attributes["event_type"] == "ring"  # type: ignore[union-attr]
    assert len(rings) == 1
    device.set_motion(True)
    await wait_for(hass, lambda: hass.states.get(MOTION).state == "on")  # type: ignore[union-attr]
    device.set_motion(False)
    await wait_for(hass, lambda: hass.states.get(MOTION).state == "off")  # type: ignore[union-attr]

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["driver"] == DRIVER_ONVIF
    assert diagnostics["capabilities"]["has_button"] is True
    assert diagnostics["device"]["manufacturer"] == "Doorstep Lab"
    for key in (CONF_HOST, CONF_USERNAME, CONF_PASSWORD):
        assert diagnostics["entry"]["data"][key] == "**REDACTED**"
    dumped = json.dumps(diagnostics)
    assert PASSWORD not in dumped
    assert USERNAME not in dumped

    # The snapshot comes from the device's snapshot URI.
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy/{CAMERA}")
    assert response.status == 200
    assert (await response.read()).startswith(b"\xff\xd8")

    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert device.unsubscribed
    assert device.subscriptions == []
    assert PASSWORD not in caplog.text
    assert "0nv1f%3Ap%40ss" not in caplog.text


async def test_a_camera_without_a_button_gets_no_doorbell(
    hass: HomeAssistant, device: OnvifEmulator
) -> None:
    device.button = False
    entry = _entry(device)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entities = {
        registered.entity_id
        for registered in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    }
    assert DOORBELL not in entities
    assert MOTION in entities
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_a_ring_records_a_clip_and_live_view_plays(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    device: OnvifEmulator,
    rtsp_camera: RtspCameraProcess,
) -> None:
    """Live video from the profile's RTSP stream: a browser stand-in gets frames, and a
    ring pulled from the device cuts a clip."""
    entry = _entry(device)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: entry.runtime_data.coordinator.data.connected)
    await wait_for(hass, lambda: bool(device.subscriptions))

    ws = await hass_ws_client(hass)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sizes: list[tuple[int, int]] = []

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def read() -> None:
            while len(sizes) < 5:
                frame = await track.recv()
                sizes.append((frame.width, frame.height))

        hass.async_create_background_task(read(), "test viewer")

    try:
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        await ws.send_json_auto_id(
            {"type": "camera/webrtc/offer", "entity_id": CAMERA, "offer": pc.localDescription.sdp}
        )
        assert (await ws.receive_json())["success"]
        async with asyncio.timeout(15):
            while (event := (await ws.receive_json())["event"])["type"] not in ("answer", "error"):
                pass
        assert event["type"] == "answer", event
        await pc.setRemoteDescription(RTCSessionDescription(event["answer"], "answer"))
        await wait_for(hass, lambda: len(sizes) >= 5, within=20)
    finally:
        await pc.close()
    assert set(sizes) == {(320, 240)}

    store: ClipStore = hass.data[DATA_CLIPS]
    await asyncio.sleep(2)  # some pre-roll
    device.press_button()
    await wait_for(hass, lambda: len(store.list_clips()) == 1, within=20)
    clip = store.list_clips()[0]
    assert clip.doorbell_id == MAC
    assert clip.size > 0
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_an_event_flood_rings_once_within_the_cooldown(
    hass: HomeAssistant, device: OnvifEmulator
) -> None:
    """A hundred presses queued on the pull point: one ring let through."""
    entry = _entry(device)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_RING_COOLDOWN: 30})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: bool(device.subscriptions))
    rings = async_capture_events(hass, EVENT_RING)
    for _ in range(100):
        device.press_button()
    await wait_for(hass, lambda: len(rings) == 1)
    # The rest of the queue is pulled and dropped by the cooldown.
    await asyncio.sleep(1)
    await hass.async_block_till_done()
    assert len(rings) == 1
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_wrong_password_starts_reauth(hass: HomeAssistant, device: OnvifEmulator) -> None:
    """The device refuses the stored password: sign in again, as the same device."""
    entry = _entry(device)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_PASSWORD: "old"})
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
    fields = {CONF_HOST: "127.0.0.1", CONF_PORT: device.port, CONF_USERNAME: USERNAME}
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {**fields, CONF_PASSWORD: "still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        result = await hass.config_entries.flow.async_configure(
            flows[0]["flow_id"], {**fields, CONF_PASSWORD: PASSWORD}
        )
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_PASSWORD] == PASSWORD


async def test_reconfigure_follows_the_same_device_only(
    hass: HomeAssistant, device: OnvifEmulator
) -> None:
    """The device moved (here: another port); a different device there is refused."""
    entry = _entry(device, port=device.port + 1)
    entry.add_to_hass(hass)
    other = OnvifEmulator(username=USERNAME, password=PASSWORD, mac="02:00:5e:ff:ff:ff")
    await other.start()
    try:
        result = await entry.start_reconfigure_flow(hass)
        assert result["step_id"] == "onvif"
        fields = {CONF_HOST: "127.0.0.1", CONF_USERNAME: USERNAME, CONF_PASSWORD: PASSWORD}
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**fields, CONF_PORT: other.port}
        )
        assert result["errors"] == {"base": "wrong_device"}
        with patch("custom_components.doorstep.async_setup_entry", return_value=True):
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], {**fields, CONF_PORT: device.port}
            )
            await hass.async_block_till_done()
    finally:
        await other.stop()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_PORT] == device.port

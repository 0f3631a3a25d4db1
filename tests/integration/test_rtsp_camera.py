"""An RTSP camera added by hand, end to end in Home Assistant, against GStreamer's real
RTSP server on loopback: the config flow's checks, the entities a camera without a
button gets, live view over WebRTC, continuous recording, and no password anywhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import io
import json
import logging
import socket
from typing import Any
from unittest.mock import patch

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
import av
from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_NAME, CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
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
    CONF_RECORD_CONTINUOUS,
    CONF_SEGMENT_LENGTH,
    DOMAIN,
)
from custom_components.doorstep.device import DRIVER_RTSP, KEY_DRIVER, rtsp_device_id
from custom_components.doorstep.media import REASON_CONTINUOUS, ClipStore
from custom_components.doorstep.recording import DATA_CLIPS
from custom_components.doorstep.repairs import profile_issue_id
from tests.rtsp_camera import RtspCameraProcess, require_gstreamer

from .conftest import wait_for

# The test client connects from 127.0.0.1: a browser on the hub, counted as home.
pytestmark = pytest.mark.usefixtures("hub_browsers_at_home")

USERNAME = "viewer"
PASSWORD = "s3cret:p@ss"
CAMERA = "camera.porch"


@pytest.fixture(autouse=True)
def _loopback_ice() -> Iterator[None]:
    """The test harness fakes network adapters; let aiortc gather on loopback only."""
    with patch("aioice.ice.get_host_addresses", return_value=["127.0.0.1"]):
        yield


@pytest.fixture
def camera_profile(request: pytest.FixtureRequest) -> str:
    """The H.264 profile the camera sends; a test chooses another by parametrizing."""
    return str(getattr(request, "param", "constrained-baseline"))


@pytest.fixture
async def rtsp_camera(
    socket_enabled: None, camera_profile: str
) -> AsyncIterator[RtspCameraProcess]:
    require_gstreamer()
    server = RtspCameraProcess(username=USERNAME, password=PASSWORD, profile=camera_profile)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def camera_entry(hass: HomeAssistant, rtsp_camera: RtspCameraProcess) -> MockConfigEntry:
    """What the flow stores for the camera, not yet set up."""
    device_id = rtsp_device_id(rtsp_camera.url)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Porch",
        unique_id=device_id,
        data={
            KEY_DRIVER: DRIVER_RTSP,
            CONF_URL: rtsp_camera.url,
            CONF_USERNAME: USERNAME,
            CONF_PASSWORD: PASSWORD,
            CONF_DEVICE_ID: device_id,
            CONF_NAME: "Porch",
        },
    )
    entry.add_to_hass(hass)
    return entry


async def _rtsp_form(hass: HomeAssistant) -> ConfigFlowResult:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert "rtsp" in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "rtsp"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "rtsp"
    return result


def _suggested(result: ConfigFlowResult) -> dict[str, Any]:
    """The values the form shows again."""
    return {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema  # type: ignore[union-attr]
        if key.description and "suggested_value" in key.description
    }


async def _with_patched_setup(hass: HomeAssistant, flow_id: str, data: dict[str, Any]) -> Any:
    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        return await hass.config_entries.flow.async_configure(flow_id, data)


async def test_flow_checks_the_stream_before_adding_the_camera(
    hass: HomeAssistant, rtsp_camera: RtspCameraProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Not RTSP, then a wrong password, each a clear error; then the camera is added with
    its credentials stored apart from the URL, and the same stream cannot be added twice."""
    caplog.set_level(logging.DEBUG)
    result = await _rtsp_form(hass)
    flow_id = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_NAME: "Porch", CONF_URL: f"http://127.0.0.1:{rtsp_camera.port}/door"}
    )
    assert result["errors"] == {CONF_URL: "not_rtsp"}

    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            CONF_NAME: "Porch",
            CONF_URL: rtsp_camera.url,
            CONF_USERNAME: USERNAME,
            CONF_PASSWORD: "wrong",
        },
    )
    assert result["errors"] == {"base": "invalid_auth"}
    shown = _suggested(result)
    assert shown[CONF_URL] == rtsp_camera.url
    assert shown[CONF_USERNAME] == USERNAME
    assert CONF_PASSWORD not in shown

    result = await _with_patched_setup(
        hass,
        flow_id,
        {
            CONF_NAME: " Porch ",
            CONF_URL: rtsp_camera.url,
            CONF_USERNAME: USERNAME,
            CONF_PASSWORD: PASSWORD,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Porch"
    assert result["data"] == {
        KEY_DRIVER: DRIVER_RTSP,
        CONF_URL: rtsp_camera.url,
        CONF_USERNAME: USERNAME,
        CONF_PASSWORD: PASSWORD,
        CONF_DEVICE_ID: rtsp_device_id(rtsp_camera.url),
        CONF_NAME: "Porch",
    }
    assert result["result"].unique_id == rtsp_device_id(rtsp_camera.url)

    # The same stream again, this time with the credentials pasted into the URL.
    result = await _rtsp_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "",
            CONF_URL: f"rtsp://{USERNAME}:s3cret%3Ap%40ss@127.0.0.1:{rtsp_camera.port}/door",
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert PASSWORD not in caplog.text
    assert "s3cret" not in caplog.text


async def test_flow_refuses_a_stream_without_video(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    require_gstreamer()
    server = RtspCameraProcess(no_video=True)
    await server.start()
    try:
        result = await _rtsp_form(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_NAME: "Garden", CONF_URL: server.url}
        )
    finally:
        await server.stop()
    assert result["errors"] == {"base": "no_video"}


async def test_flow_cannot_connect_and_wrong_path(
    hass: HomeAssistant, rtsp_camera: RtspCameraProcess
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    result = await _rtsp_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_NAME: "", CONF_URL: f"rtsp://127.0.0.1:{closed_port}/door"}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "",
            CONF_URL: f"rtsp://127.0.0.1:{rtsp_camera.port}/garden",
            CONF_USERNAME: USERNAME,
            CONF_PASSWORD: PASSWORD,
        },
    )
    assert result["errors"] == {CONF_URL: "stream_not_found"}


async def test_a_camera_is_a_camera(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    rtsp_camera: RtspCameraProcess,
    camera_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Camera, connectivity, viewers and storage; no doorbell or motion entity; diagnostics
    and the log without the URL's secrets; removal needs nothing from the camera."""
    caplog.set_level(logging.DEBUG)
    assert await hass.config_entries.async_setup(camera_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: camera_entry.runtime_data.coordinator.data.connected)

    entities = {
        entry.entity_id
        for entry in er.async_entries_for_config_entry(er.async_get(hass), camera_entry.entry_id)
    }
    assert entities == {
        CAMERA,
        "binary_sensor.porch_connectivity",
        "sensor.porch_live_viewers",
        "sensor.porch_clip_storage",
    }
    assert hass.states.get("binary_sensor.porch_connectivity").state == "on"  # type: ignore[union-attr]
    assert hass.states.get(CAMERA).state == "idle"  # type: ignore[union-attr]

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, camera_entry)
    assert diagnostics["driver"] == DRIVER_RTSP
    assert diagnostics["capabilities"]["has_button"] is False
    assert diagnostics["device"]["model"] == "RTSP camera"
    for key in (CONF_URL, CONF_USERNAME, CONF_PASSWORD):
        assert diagnostics["entry"]["data"][key] == "**REDACTED**"
    dumped = json.dumps(diagnostics)
    assert PASSWORD not in dumped
    assert str(rtsp_camera.port) not in dumped

    # The stream reaches the relay; the source's log lines name the camera, not its URL.
    subscription = camera_entry.runtime_data.relay.subscribe(name="test", viewer=False)
    try:
        async with asyncio.timeout(15):
            packet = await subscription.get()
    finally:
        subscription.close()
    assert packet.is_keyframe
    assert PASSWORD not in caplog.text

    # No snapshot of its own: the camera's picture is a still from the stream.
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy/{CAMERA}")
    assert response.status == 200
    jpeg = await response.read()
    assert jpeg.startswith(b"\xff\xd8")
    with av.open(io.BytesIO(jpeg)) as container:
        picture = next(container.decode(video=0))
    assert (picture.width, picture.height) == (320, 240)
    assert "s3cret" not in caplog.text

    assert await hass.config_entries.async_remove(camera_entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("camera_profile", "passthrough"),
    [("constrained-baseline", True), ("main-b-frames", False)],
    indirect=["camera_profile"],
)
async def test_live_view_of_an_rtsp_camera(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    rtsp_camera: RtspCameraProcess,
    camera_entry: MockConfigEntry,
    passthrough: bool,
) -> None:
    """An aiortc browser stand-in gets decodable frames of the camera's picture: passed
    through as it is, or, with B-frames, re-encoded with a repair that
    says so, exactly as for a Doorstep doorbell."""
    assert await hass.config_entries.async_setup(camera_entry.entry_id)
    await hass.async_block_till_done()
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
        assert "H264" in event["answer"]
        await pc.setRemoteDescription(RTCSessionDescription(event["answer"], "answer"))
        await wait_for(hass, lambda: len(sizes) >= 5, within=20)
    finally:
        await pc.close()
    assert set(sizes) == {(320, 240)}
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, profile_issue_id(rtsp_device_id(rtsp_camera.url))
    )
    assert (issue is None) is passthrough


async def test_continuous_recording_of_an_rtsp_camera(
    hass: HomeAssistant, rtsp_camera: RtspCameraProcess, camera_entry: MockConfigEntry
) -> None:
    """With no events to cut clips on, continuous recording still writes segments."""
    hass.config_entries.async_update_entry(
        camera_entry,
        options={
            CONF_PRE_ROLL: 1,
            CONF_POST_ROLL: 1,
            CONF_RECORD_CONTINUOUS: True,
            CONF_SEGMENT_LENGTH: 10,
        },
    )
    assert await hass.config_entries.async_setup(camera_entry.entry_id)
    await hass.async_block_till_done()
    store: ClipStore = hass.data[DATA_CLIPS]
    await asyncio.sleep(3)
    # Unloading saves the segment in progress.
    assert await hass.config_entries.async_unload(camera_entry.entry_id)
    await hass.async_block_till_done()
    segments = [clip for clip in store.list_clips() if clip.reason == REASON_CONTINUOUS]
    assert len(segments) == 1
    assert segments[0].doorbell_id == rtsp_device_id(rtsp_camera.url)
    assert segments[0].duration.total_seconds() > 0


async def test_reconfigure_checks_the_new_password_and_keeps_the_device(
    hass: HomeAssistant, rtsp_camera: RtspCameraProcess, camera_entry: MockConfigEntry
) -> None:
    """The camera's password changed: a wrong one is refused, the right one is stored,
    and the entry (so its entities and clips) stays the same device."""
    hass.config_entries.async_update_entry(
        camera_entry, data={**camera_entry.data, CONF_PASSWORD: "old"}
    )
    result = await camera_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_rtsp"
    assert _suggested(result)[CONF_URL] == rtsp_camera.url
    assert CONF_PASSWORD not in _suggested(result)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_URL: rtsp_camera.url, CONF_USERNAME: USERNAME, CONF_PASSWORD: "still wrong"},
    )
    assert result["errors"] == {"base": "invalid_auth"}
    # The reload that follows runs under the patch too, so nothing is left running.
    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {CONF_URL: rtsp_camera.url, CONF_USERNAME: USERNAME, CONF_PASSWORD: PASSWORD},
        )
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert camera_entry.data[CONF_PASSWORD] == PASSWORD
    assert camera_entry.data[CONF_DEVICE_ID] == rtsp_device_id(rtsp_camera.url)

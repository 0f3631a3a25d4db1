"""A DoorBird's sound both ways through Home Assistant, as for Doorstep doorbells: the
station's G.711 microphone (in its RTSP stream) heard in a live view as Opus, and the
live view's microphone talked through to the station's speaker (``audio-transmit.cgi``,
G.711 µ-law), refused with a clear message while someone else holds the speaker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from fractions import Fraction
from typing import Any
from unittest.mock import patch

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
import av
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator, WebSocketGenerator

from custom_components.doorstep.const import CONF_DEVICE_ID, CONF_PUSH_SECRET, DOMAIN
from custom_components.doorstep.device import DRIVER_DOORBIRD, KEY_DRIVER, DoorBirdClient
from scripts.lab.doorbird_emulator import DoorBirdEmulator
from tests.rtsp_camera import RtspCameraProcess, require_gstreamer

from .conftest import wait_for

# The test client connects from 127.0.0.1 and stands for a browser at home.
pytestmark = pytest.mark.usefixtures("hub_browsers_at_home")

USERNAME = "ghxxxx0001"
PASSWORD = "bird-pass"
MAC = "1ccae3a1b2c3"
CAMERA = "camera.front_bird"
TALKING = "binary_sensor.front_bird_talking"
BROWSER_RATE = 48_000
FRAME = 960
VOICE_HZ = 440
STATION_HZ = 800  # the lab RTSP server's µ-law tone


@pytest.fixture(autouse=True)
def _loopback_ice() -> Iterator[None]:
    with patch("aioice.ice.get_host_addresses", return_value=["127.0.0.1"]):
        yield


class Voice(MediaStreamTrack):
    """A browser microphone saying a steady 440 Hz, in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._position = 0

    async def recv(self) -> av.AudioFrame:
        await asyncio.sleep(FRAME / BROWSER_RATE)
        n = np.arange(self._position, self._position + FRAME)
        pcm = (np.sin(2 * np.pi * VOICE_HZ * n / BROWSER_RATE) * 10000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = BROWSER_RATE
        frame.pts = self._position
        frame.time_base = Fraction(1, BROWSER_RATE)
        self._position += FRAME
        return frame


def _peak_hz(pcm: np.ndarray[Any, Any], rate: int) -> float:
    window = pcm.astype(np.float64) * np.hanning(pcm.size)
    return float(np.argmax(np.abs(np.fft.rfft(window)))) * rate / pcm.size


@pytest.fixture
async def station(socket_enabled: None) -> AsyncIterator[DoorBirdEmulator]:
    emulator = DoorBirdEmulator(username=USERNAME, password=PASSWORD)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def camera(station: DoorBirdEmulator) -> AsyncIterator[RtspCameraProcess]:
    """The station's RTSP stream: H.264 and its microphone as G.711 µ-law."""
    require_gstreamer()
    server = RtspCameraProcess(
        path="/mpeg/media.amp", username=USERNAME, password=PASSWORD, sound="pcmu"
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    station: DoorBirdEmulator,
    camera: RtspCameraProcess,
) -> AsyncIterator[MockConfigEntry]:
    for component in (DOMAIN, "camera"):
        assert await async_setup_component(hass, component, {})
    await hass.async_block_till_done()
    client = await hass_client_no_auth()
    await hass.config.async_update(internal_url=str(client.make_url("/")).rstrip("/"))
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Front bird",
        unique_id=MAC,
        data={
            KEY_DRIVER: DRIVER_DOORBIRD,
            CONF_HOST: "127.0.0.1",
            CONF_PORT: station.port,
            "rtsp_port": camera.port,
            CONF_DEVICE_ID: MAC,
            CONF_USERNAME: USERNAME,
            CONF_PASSWORD: PASSWORD,
            CONF_PUSH_SECRET: "secret",
            CONF_NAME: "Front bird",
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: entry.runtime_data.coordinator.data.connected, within=10)
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def _open_live_view(ws: Any, pc: RTCPeerConnection) -> str:
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver(Voice(), direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    await ws.send_json_auto_id(
        {"type": "camera/webrtc/offer", "entity_id": CAMERA, "offer": pc.localDescription.sdp}
    )
    assert (await ws.receive_json())["success"]
    session_id = None
    while True:
        event = (await ws.receive_json())["event"]
        if event["type"] == "session":
            session_id = event["session_id"]
        if event["type"] == "error":
            raise AssertionError(event)
        if event["type"] == "answer":
            assert "a=sendrecv" in event["answer"].split("m=audio", 1)[1]
            await pc.setRemoteDescription(RTCSessionDescription(event["answer"], "answer"))
            assert session_id is not None
            return session_id


async def _talk(ws: Any, session_id: str, talking: bool) -> dict[str, Any]:
    await ws.send_json_auto_id(
        {
            "type": "doorstep/live/talk",
            "entity_id": CAMERA,
            "session_id": session_id,
            "talking": talking,
        }
    )
    while True:
        message = dict(await ws.receive_json())
        if message.get("type") == "result":
            return message


async def test_hear_the_station_and_talk_through_it(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    station: DoorBirdEmulator,
    loaded_entry: MockConfigEntry,
) -> None:
    ws = await hass_ws_client(hass)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    heard: list[np.ndarray[Any, Any]] = []

    @pc.on("track")
    def on_track(track: Any) -> None:
        if track.kind != "audio":
            return

        async def listen() -> None:
            while sum(piece.size for piece in heard) < BROWSER_RATE:
                frame = await track.recv()
                heard.append(frame.to_ndarray().reshape(-1))

        hass.async_create_background_task(listen(), "test listener")

    try:
        session_id = await _open_live_view(ws, pc)
        # The station's µ-law tone, relayed as Opus: one second of it, at its pitch.
        await wait_for(hass, lambda: sum(p.size for p in heard) >= BROWSER_RATE, within=20)
        pcm = np.concatenate(heard)[-BROWSER_RATE // 2 :]
        # aiortc decodes Opus to interleaved stereo: take one channel.
        assert abs(_peak_hz(pcm[::2], BROWSER_RATE) - STATION_HZ) < 15

        # Someone else (the DoorBird app, another hub) holds the speaker: a clear refusal.
        async with aiohttp.ClientSession() as other_session:
            other = await DoorBirdClient(
                other_session, "127.0.0.1", USERNAME, PASSWORD, port=station.port
            ).open_talk(name="the DoorBird app")
            refused = await _talk(ws, session_id, True)
            await other.close()
        assert not refused["success"]
        assert refused["error"]["translation_key"] == "doorbell_busy_talking"
        await station.wait_for_talk_end()

        result = await _talk(ws, session_id, True)
        assert result["success"], result
        await wait_for(hass, lambda: hass.states.get(TALKING).state == "on")  # type: ignore[union-attr]
        await wait_for(hass, lambda: station.talking)
        await asyncio.sleep(1.5)
        result = await _talk(ws, session_id, False)
        assert result["success"], result
        await station.wait_for_talk_end()
        await wait_for(hass, lambda: hass.states.get(TALKING).state == "off")  # type: ignore[union-attr]
    finally:
        await pc.close()
    spoken = station.talks[-1]
    assert spoken.size > 8000  # more than a second at 8 kHz
    assert abs(_peak_hz(spoken[-4000:], 8000) - VOICE_HZ) < 15

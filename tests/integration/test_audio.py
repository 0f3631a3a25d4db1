"""Sound both ways through Home Assistant: camera/webrtc/offer with audio, the card's
doorstep/live/talk command, the talking sensors, the one-talker floor and the home
network rule, with a real reference doorbell (tone microphone, WAV speaker)."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
import re
from typing import Any
from unittest.mock import patch

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
import av
from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_get_translations
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator, WebSocketGenerator

from custom_components.doorstep.const import (
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    CONF_RECORD_AUDIO,
    DOMAIN,
)
from custom_components.doorstep.live_card import LIVE_CARD_FILE
from custom_components.doorstep.recording import DATA_CLIPS
from reference_doorbell.audio import FRAME_SAMPLES, SAMPLE_RATE, read_wav
from reference_doorbell.doorbell import Doorbell

from .conftest import wait_for
from .test_camera import CAMERA, VIEWERS, _outside_browser

TALKING = "binary_sensor.front_door_talking"


@pytest.fixture
def doorbell_settings(tmp_path: Path) -> dict[str, Any]:
    return {
        "microphone": "tone",
        "speaker_file": tmp_path / "speaker.wav",
        "width": 160,
        "height": 96,
    }


@pytest.fixture(autouse=True)
def _loopback_ice() -> Iterator[None]:
    with patch("aioice.ice.get_host_addresses", return_value=["127.0.0.1"]):
        yield


class ToneTrack(MediaStreamTrack):
    """A browser microphone playing a steady 440 Hz tone."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._position = 0

    async def recv(self) -> av.AudioFrame:
        import asyncio

        await asyncio.sleep(FRAME_SAMPLES / SAMPLE_RATE)
        n = np.arange(self._position, self._position + FRAME_SAMPLES)
        pcm = (np.sin(2 * np.pi * 440 * n / SAMPLE_RATE) * 10000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._position
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._position += FRAME_SAMPLES
        return frame


async def _open_live_view(ws: Any, pc: RTCPeerConnection) -> tuple[str, str]:
    """Negotiate like the card does; returns (session id, answer SDP)."""
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver(ToneTrack(), direction="sendrecv")
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
            await pc.setRemoteDescription(RTCSessionDescription(event["answer"], "answer"))
            assert session_id is not None
            return session_id, event["answer"]


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
        if message.get("type") == "result":  # candidates of the offer may come first
            return message


async def test_talk_button_through_home_assistant(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
    tmp_path: Path,
) -> None:
    assert hass.states.get(TALKING).state == "off"  # type: ignore[union-attr]
    ws = await hass_ws_client(hass)
    other_ws = await hass_ws_client(hass)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    other_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        session_id, answer = await _open_live_view(ws, pc)
        assert "opus" in answer.lower()
        audio_section = answer.split("m=audio", 1)[1].split("m=video", 1)[0]
        assert "a=sendrecv" in audio_section
        other_id, _ = await _open_live_view(other_ws, other_pc)
        await wait_for(hass, lambda: pc.connectionState == "connected", within=15)
        await wait_for(hass, lambda: other_pc.connectionState == "connected", within=15)
        session = loaded_entry.runtime_data.sessions.get(session_id)
        assert session is not None
        await wait_for(hass, lambda: session.forwarder is not None, within=10)

        result = await _talk(ws, session_id, True)
        assert result["success"], result
        assert result["result"] == {"talking": True}
        await wait_for(hass, lambda: hass.states.get(TALKING).state == "on")  # type: ignore[union-attr]
        assert hass.states.get(VIEWERS).attributes["talking"] is True  # type: ignore[union-attr]
        assert doorbell.talk is not None
        await wait_for(hass, lambda: doorbell.talk is not None and doorbell.talk.talking)

        # A second person gets a clear "someone else is talking".
        refused = await _talk(other_ws, other_id, True)
        assert not refused["success"]
        assert refused["error"]["code"] == "talk_refused"
        assert refused["error"]["translation_key"] == "someone_else_talking"

        # The doorbell's speaker hears the browser's tone.
        await wait_for(hass, lambda: doorbell.talk is not None and doorbell.talk.talks >= 1)
        await wait_for(
            hass,
            lambda: doorbell.talk is not None and doorbell.talk.sink.samples_written > SAMPLE_RATE,  # type: ignore[attr-defined]
            within=10,
        )
        # The viewer leaves while talking: the floor is free and the sensors say so.
        await pc.close()
        await wait_for(hass, lambda: hass.states.get(TALKING).state == "off", within=15)  # type: ignore[union-attr]
        assert hass.states.get(VIEWERS).attributes["talking"] is False  # type: ignore[union-attr]
        await wait_for(hass, lambda: doorbell.talk is not None and not doorbell.talk.talking)
        played = read_wav(tmp_path / "speaker.wav")
        window = played[-SAMPLE_RATE // 2 :].astype(np.float64) * np.hanning(SAMPLE_RATE // 2)
        peak = np.argmax(np.abs(np.fft.rfft(window))) * SAMPLE_RATE / window.size
        assert abs(peak - 440) < 20
        again = await _talk(other_ws, other_id, True)
        assert again["success"], again
    finally:
        await pc.close()
        await other_pc.close()


async def test_talk_refused_outside_home_network(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
) -> None:
    ws = await hass_ws_client(hass)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        session_id, _ = await _open_live_view(ws, pc)
        await wait_for(hass, lambda: pc.connectionState == "connected", within=15)
        with _outside_browser():
            refused = await _talk(ws, session_id, True)
        assert not refused["success"]
        assert refused["error"]["code"] == "home_network_only"
        assert refused["error"]["translation_key"] == "talk_outside_home_network"
        assert doorbell.talk is not None
        assert not doorbell.talk.talking
        assert hass.states.get(TALKING).state == "off"  # type: ignore[union-attr]
    finally:
        await pc.close()


async def test_unknown_session_is_a_clear_error(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
) -> None:
    ws = await hass_ws_client(hass)
    refused = await _talk(ws, "no-such-session", True)
    assert refused["error"]["translation_key"] == "unknown_webrtc_session"


async def test_live_card_module_is_served(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
) -> None:
    """The live player card is served, and its peer connection has no ICE servers."""
    client = await hass_client()
    response = await client.get("/doorstep/frontend/doorstep-live-card.js")
    assert response.status == 200
    source = await response.text()
    assert 'const CARD_TYPE = "doorstep-live-card";' in source
    assert "const configuration = { iceServers: [] };" in source
    assert "new RTCPeerConnection(configuration)" in source
    assert source.count("new RTCPeerConnection(") == 1
    assert '"camera/webrtc/offer"' in source
    assert '"doorstep/live/talk"' in source
    # The header names the door: the `name` option, else the camera's friendly name;
    # `show_name: false` hides it. The editor offers the same three settings.
    assert "config.show_name !== false" in source
    assert "attributes?.friendly_name" in source
    assert 'const EDITOR_TYPE = "doorstep-live-card-editor";' in source
    assert "window.customElements.define(EDITOR_TYPE, DoorstepLiveCardEditor)" in source


async def test_live_card_texts_are_served_translated(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Every text the live card asks for is in the translations Home Assistant serves
    to the frontend (``frontend/get_translations``, category ``common``)."""
    source = LIVE_CARD_FILE.read_text()
    asked = set(re.findall(r'_t\(\s*"(card_live_[a-z0-9_]+)"', source))
    assert {"card_live_start", "card_live_talk", "card_live_editor_show_name"} <= asked
    texts = await async_get_translations(hass, "en", "common", [DOMAIN])
    served = {key.rsplit(".", 1)[-1] for key in texts if key.startswith(f"component.{DOMAIN}.")}
    assert asked <= served, asked - served
    assert texts[f"component.{DOMAIN}.common.card_live_start"] == "Start live view"


@pytest.mark.parametrize("record_audio", [False, True])
async def test_clips_carry_sound_only_when_record_audio_is_on(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry, record_audio: bool
) -> None:
    """Record audio is off unless the owner turns it on; then clips have the tones."""
    options: dict[str, Any] = {CONF_PRE_ROLL: 1, CONF_POST_ROLL: 2}
    if record_audio:
        options[CONF_RECORD_AUDIO] = True
    hass.config_entries.async_update_entry(paired_entry, options=options)
    assert await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: paired_entry.runtime_data.coordinator.data.connected)
    recorder = paired_entry.runtime_data.recorder
    assert recorder is not None
    assert recorder.config.audio is record_audio
    store = hass.data[DATA_CLIPS]
    await wait_for(hass, lambda: recorder.stats.packets > 20, within=10)
    await doorbell.ring()
    await wait_for(hass, lambda: len(store.list_clips()) == 1, within=15)
    clip = store.list_clips()[0]
    with av.open(str(store.root / f"{clip.id}.mp4")) as container:
        kinds = sorted(s.type for s in container.streams)
        frames = (
            sum(1 for _ in container.decode(container.streams.audio[0]))
            if container.streams.audio
            else 0
        )
    assert kinds == (["audio", "video"] if record_audio else ["video"])
    assert (frames > 50) is record_audio
    assert await hass.config_entries.async_unload(paired_entry.entry_id)

"""Talk-back to a DoorBird: the hub's talk path, G.711 µ-law over ``audio-transmit.cgi``,
measured at the emulated station's speaker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any
import wave

import aiohttp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
import av
import numpy as np
import pytest

from custom_components.doorstep.device import (
    DRIVER_DOORBIRD,
    KEY_DRIVER,
    CannotConnect,
    DoorBirdDoorbell,
    InvalidAuth,
    TalkBackError,
    TalkBusy,
    create_doorbell,
)
from custom_components.doorstep.device.doorbird_talk import MULAW_RATE, DoorBirdTalkChannel
from custom_components.doorstep.media import StreamSource
from custom_components.doorstep.media.audio import (
    AudioRelay,
    OpusPacketEncoder,
    TalkFloor,
    TalkForwarder,
)
from scripts.lab.doorbird_emulator import DoorBirdEmulator
from tests.rtsp_camera import RtspCameraProcess, require_gstreamer
from tests.signals import best_correlation, sweep

USERNAME = "ghxxxx0001"
PASSWORD = "door:bird@pass"
BROWSER_RATE = 48_000
FRAME = 960  # 20 ms, as aiortc hands the browser's microphone over


class Microphone(MediaStreamTrack):
    """A browser microphone as aiortc decodes it: 20 ms frames of 48 kHz PCM, then the end."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray[Any, np.dtype[np.int16]]) -> None:
        super().__init__()
        self._pcm = pcm
        self._position = 0
        self.speaking = asyncio.Event()
        self.finished = asyncio.Event()

    async def recv(self) -> av.AudioFrame:
        await self.speaking.wait()
        if self._position >= self._pcm.size:
            self.finished.set()
            raise MediaStreamError
        await asyncio.sleep(0)
        piece = self._pcm[self._position : self._position + FRAME]
        frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = BROWSER_RATE
        frame.pts = self._position
        frame.time_base = Fraction(1, BROWSER_RATE)
        self._position += FRAME
        return frame


@pytest.fixture
async def station(tmp_path: Path) -> AsyncIterator[DoorBirdEmulator]:
    emulator = DoorBirdEmulator(
        username=USERNAME, password=PASSWORD, speaker_wav=tmp_path / "speaker.wav"
    )
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def _doorbell(
    session: aiohttp.ClientSession, station: DoorBirdEmulator, password: str = PASSWORD
) -> DoorBirdDoorbell:
    doorbell = create_doorbell(
        session,
        {
            KEY_DRIVER: DRIVER_DOORBIRD,
            "host": "127.0.0.1",
            "port": station.port,
            "username": USERNAME,
            "password": password,
            "push_secret": "secret",
            "device_id": "1ccae3a1b2c3",
        },
    )
    assert isinstance(doorbell, DoorBirdDoorbell)
    return doorbell


def _voice() -> np.ndarray[Any, np.dtype[np.int16]]:
    """Silence, the sweep, silence: what the person says, at the browser's rate."""
    quiet = np.zeros(BROWSER_RATE // 5, dtype=np.int16)
    return np.concatenate([quiet, sweep(BROWSER_RATE), quiet])


def _opus_packets(pcm: np.ndarray[Any, np.dtype[np.int16]]) -> list[bytes]:
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = BROWSER_RATE
    return OpusPacketEncoder().encode(frame)


async def test_the_station_has_a_speaker_and_a_microphone(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    capabilities = _doorbell(session, station).capabilities
    assert capabilities.has_talk_back
    assert capabilities.microphone == "pcm_mulaw"


async def test_the_hub_hears_the_station(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    """The station's µ-law tone in its RTSP stream reaches a listener as Opus, still 800 Hz."""
    require_gstreamer()
    camera = RtspCameraProcess(
        path="/mpeg/media.amp", username=USERNAME, password=PASSWORD, sound="pcmu"
    )
    await camera.start()
    doorbell = create_doorbell(
        session,
        {
            KEY_DRIVER: DRIVER_DOORBIRD,
            "host": "127.0.0.1",
            "port": station.port,
            "rtsp_port": camera.port,
            "username": USERNAME,
            "password": PASSWORD,
            "push_secret": "secret",
        },
    )
    spec = doorbell.stream()
    assert spec.url is not None
    relay = AudioRelay("door")
    listener = relay.subscribe("ear")
    source = StreamSource.from_url(
        spec.url, name="door", options=spec.options, on_audio=relay.publish
    )
    decoder = av.CodecContext.create("opus", "r")
    assert isinstance(decoder, av.AudioCodecContext)
    heard: list[np.ndarray[Any, Any]] = []
    packets = source.packets()
    try:
        async with asyncio.timeout(20):
            async for _video in packets:
                while (sound := listener.get_nowait()) is not None:
                    assert sound.format.codec == "opus"
                    for frame in decoder.decode(av.Packet(sound.payload)):
                        heard.append(frame.to_ndarray().reshape(-1))
                if sum(piece.size for piece in heard) >= 48_000:
                    break
    finally:
        await packets.aclose()
        relay.close()
        await camera.stop()
    assert relay.format is not None
    assert (relay.format.codec, relay.format.sample_rate) == ("pcm_mulaw", 8000)
    pcm = np.concatenate(heard)[-48_000:].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(pcm.size)))
    peak_hz = float(np.argmax(spectrum)) * 48_000 / pcm.size
    assert abs(peak_hz - 800) < 10, f"loudest frequency heard {peak_hz:.1f} Hz"


async def test_the_persons_voice_reaches_the_speaker(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    """Browser PCM -> the hub's Opus talk path -> µ-law POST -> the station's speaker."""
    doorbell = _doorbell(session, station)
    floor = TalkFloor(lambda session_id: doorbell.open_talk(name=session_id))
    microphone = Microphone(_voice())
    # The forwarder reads the track from the start but sends only once the floor is
    # taken: the person starts speaking after pressing the button.
    forwarder = TalkForwarder(microphone, "viewer")
    await floor.take("viewer", forwarder)
    assert station.talking
    microphone.speaking.set()
    async with asyncio.timeout(10):
        await microphone.finished.wait()
    await floor.release("viewer")
    await forwarder.close()
    await station.wait_for_talk_end()

    heard = station.talks[-1]
    assert forwarder.error is None
    score = best_correlation(sweep(MULAW_RATE), heard)
    assert score > 0.9, f"sweep correlation at the speaker {score:.3f}"
    # About the 1.4 s that was said, at 8 kHz (the encoder holds back at most a frame).
    assert abs(heard.size - round(1.4 * MULAW_RATE)) < 0.05 * MULAW_RATE
    assert station.speaker_wav is not None
    with wave.open(str(station.speaker_wav), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (MULAW_RATE, 1, 2)
        assert wav.getnframes() == heard.size


async def test_one_talker_at_a_time(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    """Another hub (or the DoorBird app) talking: the station says busy, nothing breaks."""
    first = await _doorbell(session, station).open_talk(name="other hub")
    with pytest.raises(TalkBusy):
        await _doorbell(session, station).open_talk(name="this hub")
    assert station.talk_refusals == 1
    await first.close()
    await station.wait_for_talk_end()
    second = await _doorbell(session, station).open_talk(name="this hub")
    assert station.talking
    await second.close()


async def test_wrong_password(session: aiohttp.ClientSession, station: DoorBirdEmulator) -> None:
    with pytest.raises(InvalidAuth):
        await _doorbell(session, station, "wrong").open_talk(name="hub")
    assert not station.talking


async def test_nobody_listening(session: aiohttp.ClientSession) -> None:
    gone = DoorBirdEmulator(username=USERNAME, password=PASSWORD)
    await gone.start()
    await gone.stop()
    with pytest.raises(CannotConnect):
        await _doorbell(session, gone).open_talk(name="hub")


async def test_malformed_frames_are_dropped_and_the_talk_goes_on(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    channel = await _doorbell(session, station).open_talk(name="hub")
    assert isinstance(channel, DoorBirdTalkChannel)
    with pytest.raises(TalkBackError) as err:
        await channel.send(b"\x00" * 2000)
    assert err.value.code == "frame_too_large"
    await channel.send(b"")
    await channel.send(b"\xff\xfe\xfd not opus at all")
    assert channel.dropped_packets == 2
    for packet in _opus_packets(_voice()):
        await channel.send(packet)
    await channel.close()
    await station.wait_for_talk_end()
    score = best_correlation(sweep(MULAW_RATE), station.talks[-1])
    assert score > 0.9, f"sweep correlation after bad frames {score:.3f}"


async def test_station_gone_mid_talk_ends_it_and_frees_the_floor(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    doorbell = _doorbell(session, station)
    floor = TalkFloor(lambda session_id: doorbell.open_talk(name=session_id))
    changes: list[str | None] = []
    released = asyncio.Event()

    def _changed() -> None:
        changes.append(floor.holder)
        if floor.holder is None:
            released.set()

    floor.add_listener(_changed)
    endless = np.tile(sweep(BROWSER_RATE), 30)
    microphone = Microphone(endless)
    forwarder = TalkForwarder(microphone, "viewer")
    await floor.take("viewer", forwarder)
    microphone.speaking.set()
    await asyncio.sleep(0.2)
    station.drop_talker()
    async with asyncio.timeout(10):
        await released.wait()
    assert changes == ["viewer", None]
    assert forwarder.error is not None
    assert not forwarder.talking
    await forwarder.close()
    await station.wait_for_talk_end()
    # The floor is free again, and the station takes the next talk.
    channel = await doorbell.open_talk(name="again")
    assert station.talking
    await channel.close()

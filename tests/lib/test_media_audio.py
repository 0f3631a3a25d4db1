"""Sound both ways through the hub's media room, with a real reference doorbell (tone
microphone, WAV speaker) and an aiortc peer standing in for the browser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
import itertools
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
import av
import numpy as np
import pytest

from custom_components.doorstep.device import DoorstepDoorbell, TalkBackError, TalkBusy
from custom_components.doorstep.device.client import DoorstepClient
from custom_components.doorstep.media import MediaRelay, StreamSource
from custom_components.doorstep.media.audio import AudioRelay, OpusPacketEncoder, TalkFloor
from custom_components.doorstep.media.exceptions import SubscriptionClosed, TalkFloorTaken
from custom_components.doorstep.media.packet import AudioFormat, AudioPacket
from custom_components.doorstep.media.webrtc import WebRTCSession
from reference_doorbell.audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    TONE_FREQUENCIES,
    dominant_frequency,
    read_wav,
    tone_index_at,
)
from reference_doorbell.doorbell import Doorbell, DoorbellConfig

from .test_media_webrtc import FAST_BACKOFF, until

pytestmark = pytest.mark.usefixtures("loopback_host_addresses")


@pytest.fixture(autouse=True)
def loopback_host_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aioice.ice.get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def _config(tmp_path: Path, **overrides: Any) -> DoorbellConfig:
    values: dict[str, Any] = {
        "name": "Front door",
        "state_dir": tmp_path / "bell",
        "host": "127.0.0.1",
        "port": 0,
        "advertise": False,
        "width": 160,
        "height": 96,
        "microphone": "tone",
        "speaker_file": tmp_path / "speaker.wav",
    }
    values.update(overrides)
    return DoorbellConfig(**values)


@pytest.fixture
async def bell(tmp_path: Path) -> AsyncIterator[Doorbell]:
    doorbell = Doorbell(_config(tmp_path))
    await doorbell.start()
    yield doorbell
    await doorbell.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def _driver(bell: Doorbell, session: aiohttp.ClientSession) -> DoorstepDoorbell:
    client = DoorstepClient(session, "127.0.0.1", bell.port, fingerprint=bell.fingerprint)
    client.set_token(await client.pair(bell.pairing_code, "audio tests"))
    doorbell = DoorstepDoorbell(client)
    await doorbell.connect()
    return doorbell


class Hub:
    """The media room wired as the integration wires it."""

    def __init__(self, doorbell: DoorstepDoorbell) -> None:
        caps = doorbell.capabilities
        self.audio = AudioRelay("front") if caps.microphone else None
        self.floor = (
            TalkFloor(lambda sid: doorbell.open_talk(name=sid)) if caps.has_talk_back else None
        )
        assert isinstance(doorbell.client, DoorstepClient)
        source = StreamSource.from_doorbell(
            doorbell.client,
            backoff=FAST_BACKOFF,
            on_audio=self.audio.publish if self.audio is not None else None,
        )
        self.relay = MediaRelay(source.packets, name="front", grace_period=0)
        self.sessions: list[WebRTCSession] = []

    def session(self) -> WebRTCSession:
        created = WebRTCSession(self.relay, audio=self.audio, talk=self.floor)
        self.sessions.append(created)
        return created

    async def close(self) -> None:
        for created in self.sessions:
            await created.close()
        await self.relay.close()
        if self.audio is not None:
            self.audio.close()


@pytest.fixture
async def hub(bell: Doorbell, session: aiohttp.ClientSession) -> AsyncIterator[Hub]:
    made = Hub(await _driver(bell, session))
    yield made
    await made.close()


class ChirpTrack(MediaStreamTrack):
    """A browser's microphone: a known sweep, 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray[Any, np.dtype[np.int16]]) -> None:
        super().__init__()
        self._pcm = pcm
        self._position = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self._position / SAMPLE_RATE
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        piece = np.zeros(FRAME_SAMPLES, np.int16)
        chunk = self._pcm[self._position % self._pcm.size :][:FRAME_SAMPLES]
        piece[: chunk.size] = chunk
        frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._position
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._position += FRAME_SAMPLES
        return frame


def _chirp(seconds: float) -> np.ndarray[Any, np.dtype[np.int16]]:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (np.sin(2 * np.pi * (300 * t + 700 * t * t / seconds)) * 12000).astype(np.int16)


class Browser:
    """An aiortc peer offering video and audio, like Chromium with a microphone."""

    def __init__(self, microphone: MediaStreamTrack | None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        if microphone is not None:
            self.pc.addTransceiver(microphone, direction="sendrecv")
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.heard: list[np.ndarray[Any, np.dtype[np.int16]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        for receiver in self.pc.getReceivers():
            if receiver.track is not None and receiver.track.kind == "audio":
                self._tasks.append(asyncio.create_task(self._listen(receiver.track)))

    async def _listen(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.AudioFrame)
            for out in resampler.resample(frame):
                self.heard.append(out.to_ndarray().reshape(-1).astype(np.int16))

    def sound(self) -> np.ndarray[Any, np.dtype[np.int16]]:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, np.int16)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()


@pytest.fixture
async def browsers() -> AsyncIterator[Callable[..., Browser]]:
    made: list[Browser] = []

    def make(microphone: MediaStreamTrack | None = None) -> Browser:
        browser = Browser(microphone)
        made.append(browser)
        return browser

    yield make
    for browser in made:
        await browser.close()


async def _connect(hub: Hub, browser: Browser) -> tuple[WebRTCSession, str]:
    live = hub.session()
    answer = await live.handle_offer(await browser.offer())
    await browser.accept(answer)
    # Connected before anything else happens, so no ICE task starts during teardown.
    await until(lambda: browser.pc.connectionState == "connected")
    return live, answer


def _audio_direction(answer: str) -> str | None:
    section = answer.split("m=audio", 1)
    if len(section) < 2:
        return None
    for direction in ("sendrecv", "sendonly", "recvonly", "inactive"):
        if f"a={direction}" in section[1].split("m=video", 1)[0]:
            return direction
    return None


def _tones_in_order(pcm: np.ndarray[Any, np.dtype[np.int16]]) -> list[int]:
    heard: list[int] = []
    for start in range(0, pcm.size - FRAME_SAMPLES, FRAME_SAMPLES):
        window = pcm[start : start + FRAME_SAMPLES]
        if np.sqrt(np.mean(window.astype(np.float64) ** 2)) < 2000:
            continue
        index = tone_index_at(dominant_frequency(window))
        if index is not None and (not heard or heard[-1] != index):
            heard.append(index)
    return heard


def _correlation(sent: np.ndarray[Any, Any], got: np.ndarray[Any, Any]) -> float:
    """The best normalised cross-correlation of ``sent`` anywhere inside ``got``."""
    a, b = sent.astype(np.float64), got.astype(np.float64)
    if b.size < a.size:
        a, b = b, a
    corr = np.correlate(b, a, mode="valid")
    best = int(np.argmax(np.abs(corr)))
    window = b[best : best + a.size]
    return float(abs(corr[best]) / (np.linalg.norm(a) * np.linalg.norm(window) + 1e-9))


async def test_listener_hears_the_tone_sequence_in_order(
    hub: Hub, browsers: Callable[..., Browser]
) -> None:
    browser = browsers()
    _live, answer = await _connect(hub, browser)
    assert _audio_direction(answer) == "sendonly"  # the browser offered recvonly
    await until(lambda: sum(p.size for p in browser.heard) > 2.5 * SAMPLE_RATE, within=20)
    heard = _tones_in_order(browser.sound())
    assert len(heard) >= 5, heard
    for a, b in itertools.pairwise(heard):
        assert b == (a + 1) % len(TONE_FREQUENCIES), heard
    assert hub.audio is not None
    assert hub.audio.stats.transcoded == 0  # Opus passed through


async def test_talk_reaches_the_doorbell_speaker(
    hub: Hub, bell: Doorbell, browsers: Callable[..., Browser], tmp_path: Path
) -> None:
    sent = _chirp(1.0)
    browser = browsers(ChirpTrack(sent))
    live, answer = await _connect(hub, browser)
    assert _audio_direction(answer) == "sendrecv"
    await until(lambda: live.forwarder is not None and live.forwarder.frames_in > 10)
    await live.start_talking()
    assert live.talking
    assert bell.talk is not None
    await until(lambda: bell.talk is not None and bell.talk.talking)
    await asyncio.sleep(2.2)
    await live.stop_talking()
    await until(lambda: bell.talk is not None and not bell.talk.talking)
    played = read_wav(tmp_path / "speaker.wav")
    assert played.size > 1.5 * SAMPLE_RATE
    # The sweep repeats; a whole period of it must be in what the speaker played.
    assert _correlation(sent, played) > 0.7


async def test_one_talker_at_a_time_and_leaving_frees_the_floor(
    hub: Hub, bell: Doorbell, browsers: Callable[..., Browser]
) -> None:
    first_browser = browsers(ChirpTrack(_chirp(0.5)))
    second_browser = browsers(ChirpTrack(_chirp(0.5)))
    first, _ = await _connect(hub, first_browser)
    second, _ = await _connect(hub, second_browser)
    await until(lambda: first.forwarder is not None and second.forwarder is not None)
    await first.start_talking()
    with pytest.raises(TalkFloorTaken):
        await second.start_talking()
    # The viewer leaves while talking: the floor and the doorbell's speaker are free.
    await first.close()
    assert hub.floor is not None
    assert hub.floor.holder is None
    await until(lambda: bell.talk is not None and not bell.talk.talking)
    await second.start_talking()
    assert second.talking


async def test_another_hub_talking_is_refused_by_the_doorbell(
    hub: Hub, bell: Doorbell, session: aiohttp.ClientSession, browsers: Callable[..., Browser]
) -> None:
    other_hub = await _driver(bell, session)
    other = await other_hub.open_talk(name="other hub")
    try:
        browser = browsers(ChirpTrack(_chirp(0.5)))
        live, _ = await _connect(hub, browser)
        await until(lambda: live.forwarder is not None)
        with pytest.raises(TalkBusy):
            await live.start_talking()
        assert not live.talking
    finally:
        await other.close()


async def test_v10_doorbell_answers_without_audio(
    tmp_path: Path, session: aiohttp.ClientSession, browsers: Callable[..., Browser]
) -> None:
    bell = Doorbell(_config(tmp_path, microphone=None, speaker_file=None))
    await bell.start()
    v10 = Hub(await _driver(bell, session))
    try:
        assert v10.audio is None
        assert v10.floor is None
        browser = browsers(ChirpTrack(_chirp(0.5)))
        live, answer = await _connect(v10, browser)
        # Neither the doorbell's sound nor the browser's microphone is taken.
        assert _audio_direction(answer) in {None, "inactive"}
        assert live.audio_track is None
        assert live.forwarder is None
        with pytest.raises(Exception, match="no speaker"):
            await live.start_talking()
    finally:
        await v10.close()
        await bell.stop()


async def test_speaker_only_doorbell_takes_the_microphone_but_sends_no_sound(
    tmp_path: Path, session: aiohttp.ClientSession, browsers: Callable[..., Browser]
) -> None:
    bell = Doorbell(_config(tmp_path, microphone=None))
    await bell.start()
    speaker_only = Hub(await _driver(bell, session))
    try:
        live, answer = await _connect(speaker_only, browsers(ChirpTrack(_chirp(0.5))))
        assert _audio_direction(answer) == "recvonly"
        assert live.audio_track is None
    finally:
        await speaker_only.close()
        await bell.stop()


def _aac_packets(seconds: float) -> list[AudioPacket]:
    encoder = av.CodecContext.create("aac", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate = 44_100
    encoder.layout = "mono"
    encoder.format = "fltp"
    pcm = np.sin(2 * np.pi * 1000 * np.arange(round(seconds * 44_100)) / 44_100)
    packets: list[AudioPacket] = []
    fmt: AudioFormat | None = None
    for start in range(0, pcm.size - 1024, 1024):
        frame = av.AudioFrame.from_ndarray(
            pcm[start : start + 1024].astype(np.float32).reshape(1, -1),
            format="fltp",
            layout="mono",
        )
        frame.sample_rate = 44_100
        frame.pts = start
        for p in encoder.encode(frame):
            if fmt is None:
                extradata = encoder.extradata
                fmt = AudioFormat("aac", 44_100, 1, bytes(extradata) if extradata else None)
            packets.append(AudioPacket(bytes(p), start * 48_000 // 44_100, fmt))
    return packets


async def test_other_codecs_are_transcoded_once_for_all_listeners() -> None:
    relay = AudioRelay("cam")
    first = relay.subscribe("a")
    second = relay.subscribe("b")
    for packet in _aac_packets(1.0):
        relay.publish(packet)
    assert relay.stats.transcoded > 0
    got = [first.get_nowait() for _ in range(first.queued)]
    assert got
    assert all(p is not None and p.format.codec == "opus" for p in got)
    decoder = av.CodecContext.create("libopus", "r")
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    pcm = np.concatenate(
        [
            out.to_ndarray().reshape(-1)
            for p in got
            if p is not None
            for f in decoder.decode(av.Packet(p.payload))
            for out in resampler.resample(f)
        ]
    ).astype(np.int16)
    assert abs(dominant_frequency(pcm[-9600:]) - 1000) < 60
    assert second.queued == first.queued or second.dropped > 0
    relay.close()


async def test_a_slow_listener_drops_its_oldest_sound_and_garbage_is_dropped() -> None:
    relay = AudioRelay("cam", max_queued=5)
    slow = relay.subscribe("slow")
    opus = AudioFormat("opus", 48_000, 1)
    for n in range(12):
        relay.publish(AudioPacket(bytes([n]), n * 960, opus))
    assert slow.queued == 5
    assert slow.dropped == 7
    assert (await slow.get()).payload == bytes([7])
    # A source that claims AAC but sends garbage: dropped, no crash, relay carries on.
    relay.publish(AudioPacket(b"\xff\x00garbage", 0, AudioFormat("aac", 44_100, 1)))
    relay.close()
    drained = [slow.get_nowait() for _ in range(slow.queued)]
    assert len(drained) == 4
    with pytest.raises(SubscriptionClosed):
        await slow.get()


async def test_talk_channel_refuses_an_oversized_packet(
    bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    doorbell = await _driver(bell, session)
    channel = await doorbell.open_talk(name="test")
    try:
        with pytest.raises(TalkBackError) as err:
            await channel.send(bytes(2000))
        assert err.value.code == "frame_too_large"
        # The talk itself goes on.
        for payload in OpusPacketEncoder().encode(_frame(_chirp(0.1))):
            await channel.send(payload)
    finally:
        await channel.close()


def _frame(pcm: np.ndarray[Any, np.dtype[np.int16]]) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    return frame


async def _record_one_clip(
    bell: Doorbell, session: aiohttp.ClientSession, tmp_path: Path, *, audio: bool
) -> Path:
    from datetime import UTC, datetime

    from custom_components.doorstep.media import ClipStore, Recorder, RecorderConfig

    doorbell = await _driver(bell, session)
    sound = AudioRelay("front")
    source = StreamSource.from_doorbell(
        doorbell.client, backoff=FAST_BACKOFF, on_audio=sound.publish
    )
    relay = MediaRelay(source.packets, grace_period=0)
    store = ClipStore(tmp_path / f"clips-{audio}")
    saved: asyncio.Queue[Any] = asyncio.Queue()
    recorder = Recorder(
        store,
        "front",
        RecorderConfig(pre_roll=1.0, post_roll=1.5, audio=audio),
        on_clip=saved.put_nowait,
    )
    try:
        recorder.attach(relay)
        recorder.attach_audio(sound)
        await until(lambda: recorder.stats.packets > 20)
        recorder.trigger(datetime.now(UTC), "ring")
        async with asyncio.timeout(10):
            record = await saved.get()
    finally:
        await recorder.close()
        await relay.close()
        sound.close()
    return store.root / f"{record.id}.mp4"


async def test_clips_carry_sound_only_with_record_audio(
    bell: Doorbell, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    silent = await _record_one_clip(bell, session, tmp_path, audio=False)
    with av.open(str(silent)) as container:
        assert [s.type for s in container.streams] == ["video"]
    with_sound = await _record_one_clip(bell, session, tmp_path, audio=True)
    with av.open(str(with_sound)) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "video"]
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        pcm = np.concatenate(
            [
                out.to_ndarray().reshape(-1)
                for frame in container.decode(stream)
                for out in resampler.resample(frame)
            ]
        ).astype(np.int16)
        video_seconds = float(container.streams.video[0].duration or 0) * float(
            container.streams.video[0].time_base or 0
        )
    # The doorbell's tones, in order, across the clip's pre-roll and post-roll.
    heard = _tones_in_order(pcm)
    assert len(heard) >= 4, heard
    for a, b in itertools.pairwise(heard):
        assert b == (a + 1) % len(TONE_FREQUENCIES), heard
    assert pcm.size / SAMPLE_RATE > 1.5
    assert abs(pcm.size / SAMPLE_RATE - video_seconds) < 1.0, (pcm.size, video_seconds)

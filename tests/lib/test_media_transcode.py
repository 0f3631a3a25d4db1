"""The transcoding fallback: High profile with B-frames in, constrained baseline out.

The input is real x264 output (the reference doorbell's encoder in its ``high`` mode),
the decoder and encoder are PyAV's real ones, and the viewer is a real aiortc peer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
import io
import itertools
import logging
from pathlib import Path
import random
import threading
from typing import Any

import aiohttp
from aiortc.codecs.h264 import H264Encoder
import av
import pytest

from custom_components.doorstep.device.client import DoorstepClient
from custom_components.doorstep.media import (
    MediaRelay,
    SessionManager,
    StreamSource,
    Transcoder,
    TranscodeSettings,
    VideoPacket,
    live as live_module,
    live_packets,
    live_view_source,
    transcode as transcode_module,
)
from custom_components.doorstep.media.h264 import ProfileMonitor, parameter_sets, parse_sps
from reference_doorbell.blockcode import decode_blockcode, encode_blockcode
from reference_doorbell.doorbell import Doorbell, DoorbellConfig
from reference_doorbell.encoding import EncoderSettings, StreamProfile, TsEncoder
from reference_doorbell.sources import SyntheticCamera
from tests.lib.test_media_webrtc import (  # noqa: F401 - fixtures used by name
    FAST_BACKOFF,
    NetworkLog,
    PeerLog,
    Viewer,
    loopback_host_addresses,
    network_log,
    peers,
    viewers,
)

_TRANSCODE_THREAD = "doorstep transcode"


def encoded_packets(
    count: int,
    *,
    profile: StreamProfile = "high",
    width: int = 320,
    height: int = 180,
    fps: int = 15,
) -> list[VideoPacket]:
    """``count`` frames of the synthetic scene with the block code, as the source would
    hand them over (Annex-B, 90 kHz, MPEG-TS demuxed)."""
    encoder = TsEncoder(EncoderSettings(width=width, height=height, fps=fps, profile=profile))
    camera = SyntheticCamera("test", width, height)
    stream = b""
    for index in range(count):
        frame = camera.read()
        encode_blockcode(frame, index, 0)
        stream += b"".join(chunk.data for chunk in encoder.encode(frame))
    encoder.close()
    container = av.open(io.BytesIO(stream), format="mpegts")
    try:
        return [
            VideoPacket(bytes(p), p.pts, p.dts, p.is_keyframe)
            for p in container.demux(video=0)
            if p.size
        ]
    finally:
        container.close()


def decode(packets: Iterable[VideoPacket]) -> list[int | None]:
    """The block-code counters of the pictures a plain H.264 decoder gets out of these."""
    decoder = av.CodecContext.create("h264", "r")
    counters: list[int | None] = []
    for packet in packets:
        for frame in decoder.decode(av.Packet(packet.payload)):
            assert isinstance(frame, av.VideoFrame)
            code = decode_blockcode(frame.to_ndarray(format="rgb24"))
            counters.append(None if code is None else code[0])
    return counters


def transcode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(_TRANSCODE_THREAD)]


async def paced(packets: list[VideoPacket], interval: float = 0.0) -> AsyncIterator[VideoPacket]:
    for packet in packets:
        yield packet
        await asyncio.sleep(interval)


async def take(stream: AsyncIterator[VideoPacket], count: int) -> list[VideoPacket]:
    got: list[VideoPacket] = []
    async with asyncio.timeout(30):
        async for packet in stream:
            got.append(packet)
            if len(got) >= count:
                break
    return got


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - a worker thread has no event to await
            await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def high_packets() -> list[VideoPacket]:
    return encoded_packets(45)


def test_reference_doorbell_high_mode_really_needs_transcoding(
    high_packets: list[VideoPacket],
) -> None:
    """The test input is what it claims: High profile, B-frames, flagged for transcoding."""
    monitor = ProfileMonitor()
    for packet in high_packets:
        monitor.observe(
            packet.payload, is_keyframe=packet.is_keyframe, pts=packet.pts, dts=packet.dts
        )
    assert monitor.decision is not None
    assert monitor.decision.profile == "high"
    assert monitor.decision.needs_transcode
    assert any(p.pts != p.dts for p in high_packets)  # frames are reordered


# --- The transcoder on its own -------------------------------------------------------------


async def test_high_profile_comes_out_as_constrained_baseline(
    high_packets: list[VideoPacket],
) -> None:
    # Paced like a camera, so the transcoder never has to skip a frame to keep up.
    stream = live_packets(paced(high_packets, 1 / 30), name="test")
    try:
        out = await take(stream, 40)
    finally:
        await stream.aclose()

    # Constrained baseline, SPS/PPS in band with the first keyframe, and no reordering.
    assert out[0].is_keyframe
    sps, pps = parameter_sets(out[0].payload)
    assert sps is not None
    assert pps is not None
    info = parse_sps(sps)
    assert info.profile_name == "constrained baseline"
    assert (info.width, info.height) == (320, 180)
    assert all(p.pts == p.dts for p in out)
    stamps = [p.dts or 0 for p in out]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    # Keyframes at most two seconds apart (15 fps input: 40 frames is 2.7 s).
    keyframes = [p.dts or 0 for p in out if p.is_keyframe]
    assert len(keyframes) >= 2
    assert all(b - a <= 2 * 90_000 for a, b in itertools.pairwise(keyframes))
    # Every picture decodes, in presentation order, with its original counter.
    counters = decode(out)
    assert counters == list(range(len(counters)))
    assert len(counters) >= 39
    await until(lambda: not transcode_threads())


async def test_baseline_passes_through_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Transcoder] = []
    original_init = Transcoder.__init__

    def counting_init(self: Transcoder, *args: Any, **kwargs: Any) -> None:
        started.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(Transcoder, "__init__", counting_init)
    packets = encoded_packets(20, profile="baseline")
    stream = live_packets(paced(packets), name="test")
    try:
        out = await take(stream, 20)
    finally:
        await stream.aclose()
    assert started == []
    assert [p.payload for p in out] == [p.payload for p in packets]
    assert [p.pts for p in out] == [p.pts for p in packets]


async def test_forced_transcoding_reencodes_even_baseline() -> None:
    """The benchmark's knob: same picture, different bytes."""
    packets = encoded_packets(20, profile="baseline")
    stream = live_packets(paced(packets, 1 / 30), name="test", force_transcode=True)
    try:
        out = await take(stream, 15)
    finally:
        await stream.aclose()
    assert [p.payload for p in out] != [p.payload for p in packets[: len(out)]]
    assert decode(out) == list(range(len(out)))


async def test_back_to_passthrough_when_the_doorbell_is_fixed(
    high_packets: list[VideoPacket],
) -> None:
    """The owner switches the doorbell to baseline: from its first keyframe on, packets
    pass through untouched again, later in time than anything transcoded, and the
    transcoding thread is gone."""
    baseline = encoded_packets(20, profile="baseline")
    offset = 100 * 90_000
    fixed = [replace(p, pts=(p.pts or 0) + offset, dts=(p.dts or 0) + offset) for p in baseline]
    stream = live_packets(paced([*high_packets, *fixed], 1 / 30), name="test")
    try:
        async with asyncio.timeout(30):
            out = [packet async for packet in stream]  # the upstream ends: so does this
        assert not transcode_threads()
    finally:
        await stream.aclose()
    tail = out[-len(fixed) :]
    assert [p.payload for p in tail] == [p.payload for p in fixed]
    stamps = [p.dts or 0 for p in out]
    assert all(b > a for a, b in itertools.pairwise(stamps))


async def test_failed_encoder_restarts_at_the_next_keyframe(
    high_packets: list[VideoPacket],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """libx264 failing (the boundary here) ends that transcoder; live view starts a new
    one at the next keyframe instead of going dark, and says so once."""
    original_encode = transcode_module._BaselineEncoder.encode
    calls = 0

    def failing_once(self: Any, *args: Any, **kwargs: Any) -> list[VideoPacket]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("encoder exploded")
        return original_encode(self, *args, **kwargs)

    monkeypatch.setattr(transcode_module._BaselineEncoder, "encode", failing_once)
    stream = live_packets(paced(high_packets, 1 / 30), name="test")
    try:
        async with asyncio.timeout(30):
            out = [packet async for packet in stream]
    finally:
        await stream.aclose()
    counters = decode(out)
    assert out[0].is_keyframe
    assert counters[0] == 30  # the second GOP: the first one was lost with the encoder
    assert counters == list(range(30, 30 + len(counters)))
    failures = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and "transcoding failed" in r.getMessage()
    ]
    assert len(failures) == 1
    assert not transcode_threads()


async def test_bad_input_neither_crashes_nor_leaks_the_thread(
    high_packets: list[VideoPacket],
) -> None:
    rng = random.Random(7)
    garbage = [
        VideoPacket(rng.randbytes(rng.randint(1, 4000)), i * 6000, i * 6000, i % 5 == 0)
        for i in range(30)
    ]
    truncated = [
        VideoPacket(p.payload[: len(p.payload) // 3], p.pts, p.dts, p.is_keyframe)
        for p in high_packets[:10]
    ]
    # Garbage, damaged pictures, then good video again with later timestamps.
    recovered = [
        VideoPacket(p.payload, p.pts + 900_000, p.dts + 900_000, p.is_keyframe)  # type: ignore[operator]
        for p in high_packets
    ]
    transcoder = Transcoder(name="bad input")
    out: list[VideoPacket] = []

    async def read() -> None:
        async for packet in transcoder.packets():
            out.append(packet)

    reader = asyncio.get_running_loop().create_task(read())
    for packet in [*garbage, *truncated, *recovered]:
        transcoder.submit(packet)
        await until(lambda: transcoder.pending_packets == 0)
    await until(lambda: len(out) >= 30)
    assert transcoder.running
    # The good video after the bad comes out decodable, from its first keyframe on.
    good = [p for p in out if p.dts is not None and p.dts >= 900_000]
    assert good[0].is_keyframe
    counters = decode(good)
    assert counters[:5] == [0, 1, 2, 3, 4]
    transcoder.finish()
    await asyncio.wait_for(reader, 10)
    await transcoder.close()
    assert not transcoder.running
    assert not transcode_threads()


async def test_undecodable_stream_only_ends_cleanly() -> None:
    transcoder = Transcoder(name="noise")
    for i in range(50):
        transcoder.submit(VideoPacket(b"\x00\x00\x00\x01\x65" + bytes(200), i, i, True))
    transcoder.finish()
    out = [packet async for packet in transcoder.packets()]
    assert out == []
    await transcoder.close()
    assert not transcoder.running


async def test_stalled_consumer_keeps_memory_bounded(high_packets: list[VideoPacket]) -> None:
    settings = TranscodeSettings(max_pending_packets=8, max_output_packets=4)
    transcoder = Transcoder(name="stalled", settings=settings)
    try:
        # Nobody reads: ten times more input than the transcoder may hold.
        for round_ in range(10):
            for packet in high_packets:
                shift = round_ * 10 * 90_000
                transcoder.submit(
                    VideoPacket(
                        packet.payload, packet.pts + shift, packet.dts + shift, packet.is_keyframe
                    )  # type: ignore[operator]
                )
                assert transcoder.pending_packets <= settings.max_pending_packets
                await asyncio.sleep(0.002)
            await until(
                lambda: (
                    transcoder.pending_packets == 0
                    or transcoder.queued_output >= settings.max_output_packets
                )
            )
        # The output filled up and stayed at its bound; the thread waits, input is shed.
        assert transcoder.queued_output == settings.max_output_packets
        assert transcoder.pending_packets <= settings.max_pending_packets
        assert transcoder.stats.packets_dropped > 0
        assert transcoder.running
    finally:
        await transcoder.close()
    assert not transcode_threads()


async def test_live_stream_with_stalled_consumer_stays_bounded(
    high_packets: list[VideoPacket], monkeypatch: pytest.MonkeyPatch
) -> None:
    """However much the upstream sends, a stalled consumer costs at most the bounds."""
    settings = TranscodeSettings(max_pending_packets=8, max_output_packets=4)
    transcoders: list[Transcoder] = []
    original_init = Transcoder.__init__

    def recording_init(self: Transcoder, *args: Any, **kwargs: Any) -> None:
        transcoders.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(Transcoder, "__init__", recording_init)
    pulled = 0

    async def upstream() -> AsyncIterator[VideoPacket]:
        nonlocal pulled
        for round_ in range(10):
            shift = round_ * 10 * 90_000
            for packet in high_packets:
                pulled += 1
                yield replace(packet, pts=(packet.pts or 0) + shift, dts=(packet.dts or 0) + shift)
                await asyncio.sleep(0.002)

    stream = live_packets(upstream(), name="test", settings=settings, max_queued=5)
    try:
        first = await take(stream, 1)
        assert first[0].is_keyframe
        await until(lambda: pulled == 10 * len(high_packets))  # the consumer stalls
        [transcoder] = transcoders
        await until(lambda: transcoder.queued_output == settings.max_output_packets)
        assert transcoder.pending_packets <= settings.max_pending_packets
        assert transcoder.stats.packets_dropped > 0
    finally:
        await stream.aclose()
    await until(lambda: not transcode_threads())


# --- Through the relays to a real WebRTC viewer ---------------------------------------------


@pytest.fixture
async def high_bell(tmp_path: Path) -> AsyncIterator[Doorbell]:
    """A reference doorbell sending High profile with B-frames, and its block code."""
    doorbell = Doorbell(
        DoorbellConfig(
            name="Side door",
            state_dir=tmp_path / "bell",
            host="127.0.0.1",
            port=0,
            advertise=False,
            stream_profile="high",
        )
    )
    await doorbell.start()
    try:
        yield doorbell
    finally:
        await doorbell.stop()


async def test_high_profile_doorbell_plays_in_a_webrtc_viewer(
    high_bell: Doorbell,
    session: aiohttp.ClientSession,
    viewers: Callable[[], Any],  # noqa: F811
    network_log: NetworkLog,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encodes: list[object] = []
    monkeypatch.setattr(H264Encoder, "encode", lambda self, *a, **k: encodes.append(a))
    client = DoorstepClient(session, "127.0.0.1", high_bell.port, fingerprint=high_bell.fingerprint)
    client.set_token(await client.pair(high_bell.pairing_code, "transcode tests"))
    decisions: list[Any] = []
    source_relay = MediaRelay(
        StreamSource.from_doorbell(
            client, backoff=FAST_BACKOFF, on_profile=decisions.append
        ).packets,
        name="source",
        grace_period=0,
    )
    live_relay = MediaRelay(
        live_view_source(source_relay, name="side"), name="side", grace_period=0
    )
    manager = SessionManager()
    try:
        viewer: Viewer = await viewers()
        session_ = manager.create(live_relay, session_id="one")
        await viewer.accept(await session_.handle_offer(viewer.offer))
        await viewer.wait_frames(20, within=20)

        # The source saw High profile; the viewer decoded frames whose counter advances.
        assert decisions
        assert decisions[0].needs_transcode
        assert len(viewer.counters) >= 15
        assert viewer.counters[-1] > viewer.counters[0]
        assert viewer.counters == sorted(viewer.counters)
        # What went out was our constrained baseline, packetized as is by aiortc.
        gop, _ = live_relay.cached_gop()
        sps, _ = parameter_sets(gop[0].payload)
        assert sps is not None
        assert parse_sps(sps).profile_name == "constrained baseline"
        assert encodes == []
        assert transcode_threads()
        assert network_log.blocked == []
    finally:
        await manager.close_all()
        await live_relay.close()
        await source_relay.close()
    await until(lambda: not transcode_threads())


async def test_passthrough_doorbell_starts_no_transcoder(
    bell: Doorbell, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []
    monkeypatch.setattr(live_module, "Transcoder", lambda *a, **k: started.append(a) or None)
    client = DoorstepClient(session, "127.0.0.1", bell.port, fingerprint=bell.fingerprint)
    client.set_token(await client.pair(bell.pairing_code, "transcode tests"))
    source_relay = MediaRelay(
        StreamSource.from_doorbell(client, backoff=FAST_BACKOFF).packets,
        name="source",
        grace_period=0,
    )
    live_relay = MediaRelay(
        live_view_source(source_relay, name="front"), name="front", grace_period=0
    )
    subscription = live_relay.subscribe(name="test")
    try:
        async with asyncio.timeout(15):
            got = [await subscription.get() for _ in range(20)]
        subscription.close()
        await live_relay.close()
        # Live view gone: its subscription to the doorbell's relay went with it, at once.
        assert source_relay.subscriber_count == 0
    finally:
        subscription.close()
        await live_relay.close()
        await source_relay.close()
    assert started == []
    sps, _ = parameter_sets(got[0].payload)
    assert sps is not None
    assert parse_sps(sps).profile_name == "constrained baseline"

"""The stream source against the real reference doorbell on 127.0.0.1, and local files.

The file tests go through the same PyAV-opens-the-URL path that ``rtsp://`` cameras use
(MP4 additionally exercises the AVCC to Annex-B conversion).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from fractions import Fraction
from pathlib import Path
import threading

import aiohttp
import av
import numpy as np
import pytest

from custom_components.doorstep.device.client import DoorstepClient
from custom_components.doorstep.media import (
    Backoff,
    MediaRelay,
    ProfileDecision,
    StreamSource,
    VideoPacket,
)
from custom_components.doorstep.media.h264 import (
    annexb_join,
    continues_picture,
    is_annexb,
    iter_nal_units,
    parameter_sets,
)
from custom_components.doorstep.media.packet import AudioFormat
from custom_components.doorstep.media.source import _RawPacket, _whole_pictures
from reference_doorbell.doorbell import Doorbell

FAST_BACKOFF = Backoff(initial=0.05, maximum=0.2)


def demux_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("doorstep demux")]


async def take(packets: AsyncIterator[VideoPacket], count: int) -> list[VideoPacket]:
    return [await anext(packets) for _ in range(count)]


def assert_monotonic(packets: list[VideoPacket]) -> None:
    stamps = [p.dts for p in packets if p.dts is not None]
    assert len(stamps) == len(packets)
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


@pytest.fixture
async def client(bell: Doorbell, session: aiohttp.ClientSession) -> DoorstepClient:
    doorstep = DoorstepClient(session, "127.0.0.1", bell.port, fingerprint=bell.fingerprint)
    doorstep.set_token(await doorstep.pair(bell.pairing_code, "media tests"))
    return doorstep


async def test_doorbell_stream_starts_at_a_keyframe_and_passes_through(
    client: DoorstepClient,
) -> None:
    decisions: list[ProfileDecision] = []
    source = StreamSource.from_doorbell(client, backoff=FAST_BACKOFF, on_profile=decisions.append)
    generator = source.packets()
    try:
        async with asyncio.timeout(3):
            first = await anext(generator)
        assert first.is_keyframe
        assert is_annexb(first.payload)
        sps, pps = parameter_sets(first.payload)
        assert sps is not None
        assert pps is not None
        following = await take(generator, 5)
        assert_monotonic([first, *following])
        assert not any(p.is_keyframe for p in following)
    finally:
        await generator.aclose()
    assert source.profile is not None
    assert source.profile.passthrough
    assert source.profile.profile == "constrained baseline"
    assert (source.profile.width, source.profile.height) == (640, 360)
    assert decisions == [source.profile]
    assert source.stats.connects == 1
    assert demux_threads() == []


async def test_reconnects_after_the_doorbell_restarts(
    bell: Doorbell, client: DoorstepClient
) -> None:
    source = StreamSource.from_doorbell(client, backoff=FAST_BACKOFF)
    generator = source.packets()
    try:
        before = await take(generator, 3)
        await bell.stop()
        await bell.start()
        async with asyncio.timeout(5):
            after = await take(generator, 3)
    finally:
        await generator.aclose()
    # Whatever was still in flight may come first; the new connection starts at a keyframe.
    assert source.stats.connects == 2
    assert source.stats.failures >= 1
    assert any(p.is_keyframe for p in after)
    assert_monotonic(before + after)
    assert demux_threads() == []


async def test_relay_over_the_doorbell_stream(client: DoorstepClient) -> None:
    source = StreamSource.from_doorbell(client, backoff=FAST_BACKOFF)
    relay = MediaRelay(source.packets, grace_period=0)
    try:
        first_viewer = relay.subscribe(name="first")
        async with asyncio.timeout(3):
            first = await first_viewer.get()
            await first_viewer.get()
        assert first.is_keyframe
        second_viewer = relay.subscribe(name="second")
        joined = second_viewer.get_nowait()
        assert joined is not None
        assert joined.is_keyframe
        assert joined.replayed
        assert relay.viewer_count == 2
    finally:
        await relay.close()
    assert not relay.upstream_running
    assert demux_threads() == []


async def _failure(source: StreamSource) -> str:
    """Run the source until its first failed connection; return the reason."""
    generator = source.packets()
    consumer = asyncio.create_task(anext(generator))
    try:
        for _ in range(250):
            if source.stats.failures:
                break
            await asyncio.sleep(0.02)
    finally:
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        await generator.aclose()
    assert source.stats.packets == 0
    assert source.stats.last_error is not None
    return source.stats.last_error


async def test_wrong_certificate_is_refused(bell: Doorbell, client: DoorstepClient) -> None:
    impostor = DoorstepClient(
        client.session, "127.0.0.1", bell.port, fingerprint="ab" * 32, token=client.token
    )
    reason = await _failure(StreamSource.from_doorbell(impostor, backoff=FAST_BACKOFF))
    assert "certificate" in reason


async def test_unknown_token_says_pair_again(bell: Doorbell, client: DoorstepClient) -> None:
    stranger = DoorstepClient(
        client.session, "127.0.0.1", bell.port, fingerprint=bell.fingerprint, token="x" * 43
    )
    reason = await _failure(StreamSource.from_doorbell(stranger, backoff=FAST_BACKOFF))
    assert "401" in reason
    assert "pair again" in reason


def write_h264(
    path: Path,
    *,
    profile: str,
    bframes: int,
    frames: int = 20,
    container_format: str = "mpegts",
    parameter_sets_once: bool = False,
) -> None:
    """A tiny H.264 stream. In MPEG-TS (Annex-B) x264 repeats SPS/PPS before every
    keyframe; ``parameter_sets_once`` keeps only the first, as some cameras send them.
    In MP4 the NAL units are length-prefixed and SPS/PPS sit in the avcC box."""
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(
            "libx264",
            rate=30,
            options={
                "profile": profile,
                "preset": "veryfast",
                "x264-params": f"bframes={bframes}:keyint=10:scenecut=0:b-adapt=0:threads=1",
            },
        )
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 30)  # type: ignore[assignment]
        sent_parameter_sets = False

        def mux(packets: list[av.Packet]) -> None:
            nonlocal sent_parameter_sets
            for packet in packets:
                if parameter_sets_once and packet.is_keyframe and sent_parameter_sets:
                    kept = [n for n in iter_nal_units(bytes(packet)) if n[0] & 0x1F not in (7, 8)]
                    stripped = av.Packet(annexb_join(kept))
                    stripped.pts, stripped.dts = packet.pts, packet.dts
                    stripped.time_base, stripped.stream = packet.time_base, packet.stream
                    stripped.is_keyframe = True
                    packet = stripped
                sent_parameter_sets |= bool(packet.is_keyframe)
                container.mux(packet)

        rng = np.random.default_rng(7)
        for index in range(frames):
            image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            mux(stream.encode(frame))
        mux(stream.encode(None))


async def test_parameter_sets_sent_once_precede_every_keyframe_and_the_file_loops(
    tmp_path: Path,
) -> None:
    path = tmp_path / "clip.ts"
    write_h264(path, profile="baseline", bframes=0, parameter_sets_once=True)
    with av.open(str(path)) as written:  # the later keyframes really lack them
        keyframes_with_sps = [
            parameter_sets(bytes(p))[0] is not None
            for p in written.demux(written.streams.video[0])
            if p.size and p.is_keyframe
        ]
    assert keyframes_with_sps == [True, False]
    source = StreamSource.from_url(str(path), backoff=FAST_BACKOFF)
    generator = source.packets()
    try:
        async with asyncio.timeout(5):
            packets = await take(generator, 25)  # past the end: it reopens
    finally:
        await generator.aclose()
    assert all(is_annexb(p.payload) for p in packets)
    keyframes = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keyframes == [0, 10, 20]
    for index in keyframes:
        sps, pps = parameter_sets(packets[index].payload)
        assert sps is not None  # put in front from the stream's extradata
        assert pps is not None
    assert_monotonic(packets)
    assert source.stats.connects == 2
    assert source.profile is not None
    assert source.profile.passthrough
    assert demux_threads() == []


async def test_b_frames_in_a_camera_stream_need_transcoding(tmp_path: Path) -> None:
    path = tmp_path / "main_b.ts"
    write_h264(path, profile="main", bframes=2)
    decisions: list[ProfileDecision] = []
    source = StreamSource.from_url(str(path), backoff=FAST_BACKOFF, on_profile=decisions.append)
    generator = source.packets()
    try:
        async with asyncio.timeout(5):
            await take(generator, 10)
    finally:
        await generator.aclose()
    assert source.profile is not None
    assert source.profile.needs_transcode
    assert "B-frames" in source.profile.reason
    assert decisions[-1] == source.profile


async def test_length_prefixed_h264_is_refused_with_a_reason(tmp_path: Path) -> None:
    """MP4's avcC layout is not converted: nothing Doorstep opens sends it."""
    path = tmp_path / "clip.mp4"
    write_h264(path, profile="baseline", bframes=0, container_format="mp4")
    reason = await _failure(StreamSource.from_url(str(path), backoff=FAST_BACKOFF))
    assert "length-prefixed H.264 (MP4)" in reason
    assert demux_threads() == []


async def test_unreadable_url_fails_and_retries(tmp_path: Path) -> None:
    source = StreamSource.from_url(str(tmp_path / "missing.ts"), backoff=FAST_BACKOFF)
    reason = await _failure(source)
    assert "No such file" in reason or "FileNotFound" in reason
    assert demux_threads() == []


def test_rtsp_urls_default_to_tcp() -> None:
    source = StreamSource.from_url("rtsp://127.0.0.1:8554/doorbell")
    assert source._options == {"rtsp_transport": "tcp"}
    forced = StreamSource.from_url("rtsp://127.0.0.1/x", options={"rtsp_transport": "udp"})
    assert forced._options == {"rtsp_transport": "udp"}
    with pytest.raises(ValueError, match="exactly one"):
        StreamSource(name="none")


def test_backoff_doubles_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=3.0)
    assert [backoff.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.delay(10_000) == 3.0


def sliced_pictures(frames: int = 6) -> list[tuple[bytes, bool]]:
    """Pictures of two slices each from libx264 (as with its sliced threads), Annex-B."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = 64, 64
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, 15)  # type: ignore[assignment]
    codec.options = {
        "profile": "baseline",
        "preset": "ultrafast",
        "x264-params": "slices=2:keyint=3:scenecut=0:threads=1",
    }
    pictures: list[tuple[bytes, bool]] = []
    rng = np.random.default_rng(3)
    for index in range(frames + 1):
        frame = None
        if index < frames:
            image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
        pictures += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(frame)]
    return pictures


def split_at_second_slice(picture: bytes) -> tuple[bytes, bytes]:
    """The picture as an RTSP demuxer may hand it out: up to the second slice, and the
    rest (which then repeats the parameter sets, as GStreamer's payloader sends them)."""
    nals = list(iter_nal_units(picture))
    slices = [i for i, nal in enumerate(nals) if nal[0] & 0x1F in (1, 5)]
    assert len(slices) == 2, [nal[0] & 0x1F for nal in nals]
    head, tail = nals[: slices[1]], nals[slices[1] :]
    parameter_sets_again = [nal for nal in nals if nal[0] & 0x1F in (7, 8)]
    return annexb_join(head), annexb_join([*parameter_sets_again, *tail])


async def test_slices_of_one_picture_are_joined_and_sound_is_not_held() -> None:
    pictures = sliced_pictures()
    assert any(key for _, key in pictures)
    assert not all(key for _, key in pictures)
    sound = AudioFormat(codec="opus", sample_rate=48_000, channels=1)
    raw: list[_RawPacket] = []
    for index, (picture, key) in enumerate(pictures):
        first, second = split_at_second_slice(picture)
        assert not continues_picture(first)
        assert continues_picture(second)
        stamp = index * 6000
        raw.append(_RawPacket(first, stamp, stamp, key))
        # Sound that arrives between a picture's slices goes on at once.
        raw.append(_RawPacket(b"opus", stamp, stamp, False, audio=sound))
        raw.append(_RawPacket(second, stamp, stamp, key))
    heard: list[str] = []

    async def packets() -> AsyncGenerator[_RawPacket]:
        for packet in raw:
            heard.append("video" if packet.audio is None else "audio")
            yield packet

    out: list[tuple[str, _RawPacket]] = []
    async for packet in _whole_pictures(packets()):
        out.append((heard[-1], packet))
    video = [p for _, p in out if p.audio is None]
    assert len(video) == len(pictures)
    for index, (packet, (picture, key)) in enumerate(zip(video, pictures, strict=True)):
        assert packet.pts == packet.dts == index * 6000
        assert packet.is_keyframe is key
        slices = [n for n in iter_nal_units(packet.payload) if n[0] & 0x1F in (1, 5)]
        expected = [n for n in iter_nal_units(picture) if n[0] & 0x1F in (1, 5)]
        assert slices == expected
    # Each sound packet left right after it was read, before its picture was complete.
    audio_at = [i for i, (_, p) in enumerate(out) if p.audio is not None]
    assert all(out[i][0] == "audio" for i in audio_at)
    assert len(audio_at) == len(pictures)


async def test_whole_pictures_pass_unchanged() -> None:
    pictures = [(p, k) for p, k in sliced_pictures()]
    raw = [_RawPacket(p, i, i, k) for i, (p, k) in enumerate(pictures)]

    async def packets() -> AsyncGenerator[_RawPacket]:
        for packet in raw:
            yield packet

    assert [p async for p in _whole_pictures(packets())] == raw

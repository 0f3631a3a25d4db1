"""Snapshots and the shared H.264 / MPEG-TS live stream of the reference doorbell."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import io
from pathlib import Path

import aiohttp
import av
import numpy as np
import pytest

from reference_doorbell.audio import FRAME_SAMPLES, SAMPLE_RATE
from reference_doorbell.blockcode import RGBFrame, decode_blockcode
from reference_doorbell.doorbell import Doorbell, DoorbellConfig
from reference_doorbell.encoding import Chunk, EncoderSettings, TsEncoder
from reference_doorbell.sources import FileSource, SyntheticCamera, V4L2Source
from reference_doorbell.video import StreamViewer

TS_PACKET = 188


@pytest.fixture
async def bell(tmp_path: Path) -> AsyncIterator[Doorbell]:
    config = DoorbellConfig(
        name="Front door", state_dir=tmp_path, host="127.0.0.1", port=0, advertise=False
    )
    doorbell = Doorbell(config)
    await doorbell.start()
    yield doorbell
    await doorbell.stop()


@pytest.fixture
async def token(bell: Doorbell) -> AsyncIterator[str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"https://127.0.0.1:{bell.port}/v1/pair",
            json={"code": bell.pairing_code},
            ssl=aiohttp.Fingerprint(bytes.fromhex(bell.fingerprint)),
        ) as resp,
    ):
        yield (await resp.json())["token"]


def open_ts(data: bytes) -> av.container.InputContainer:
    """Open whole TS packets of ``data`` for reading."""
    return av.open(
        io.BytesIO(data[: len(data) // TS_PACKET * TS_PACKET]), mode="r", format="mpegts"
    )


def rgb(frame: av.VideoFrame) -> RGBFrame:
    return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def nal_types(annexb: bytes) -> list[int]:
    """NAL unit types of an Annex B byte stream, in order."""
    types = []
    i = annexb.find(b"\x00\x00\x01")
    while i != -1:
        types.append(annexb[i + 3] & 0x1F)
        i = annexb.find(b"\x00\x00\x01", i + 3)
    return types


async def read_stream(bell: Doorbell, token: str, min_bytes: int) -> bytes:
    data = bytearray()
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"https://127.0.0.1:{bell.port}/v1/stream.ts",
            headers={"Authorization": f"Bearer {token}"},
            ssl=aiohttp.Fingerprint(bytes.fromhex(bell.fingerprint)),
        ) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "video/mp2t"
        async for piece in resp.content.iter_any():
            data += piece
            if len(data) >= min_bytes:
                break
    return bytes(data)


async def wait_until_idle(bell: Doorbell) -> None:
    for _ in range(100):
        if not bell.video.encoding:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("encoder still running without viewers")


async def test_start_leaves_encoder_idle(bell: Doorbell) -> None:
    assert not bell.video.encoding
    assert bell.video.viewer_count == 0


async def test_snapshot_is_a_jpeg_with_a_block_code(bell: Doorbell, token: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"https://127.0.0.1:{bell.port}/v1/snapshot.jpg",
            headers={"Authorization": f"Bearer {token}"},
            ssl=aiohttp.Fingerprint(bytes.fromhex(bell.fingerprint)),
        ) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/jpeg"
        jpeg = await resp.read()
    assert jpeg[:2] == b"\xff\xd8"
    assert jpeg[-2:] == b"\xff\xd9"
    with av.open(io.BytesIO(jpeg), mode="r") as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (640, 360)
    assert decode_blockcode(rgb(frame)) is not None
    # A snapshot does not start the encoder.
    assert not bell.video.encoding


async def test_stream_is_constrained_baseline_starting_at_keyframe(
    bell: Doorbell, token: str
) -> None:
    data = await read_stream(bell, token, min_bytes=25_000)
    assert data[0] == 0x47
    with open_ts(data) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.profile == "Constrained Baseline"
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 360)
        packets = [p for p in container.demux(stream) if p.size]
    assert packets[0].is_keyframe
    first = nal_types(bytes(packets[0]))
    # SPS (7) and PPS (8) in band, before the IDR slice (5).
    assert first.index(7) < first.index(8) < first.index(5)
    with open_ts(data) as container:
        codes = [decode_blockcode(rgb(f)) for f in container.decode(video=0)]
    assert codes
    assert None not in codes
    counters = [c[0] for c in codes if c is not None]
    assert counters == list(range(counters[0], counters[0] + len(counters)))
    await wait_until_idle(bell)


async def test_viewers_share_one_encoder_and_each_starts_at_keyframe(
    bell: Doorbell, token: str
) -> None:
    async def late_viewer() -> bytes:
        # Joins a stream that is already running, between two regular keyframes.
        await asyncio.sleep(0.3)
        return await read_stream(bell, token, 25_000)

    first, second = await asyncio.gather(read_stream(bell, token, 40_000), late_viewer())
    counters = []
    for data in (first, second):
        with open_ts(data) as container:
            packets = [p for p in container.demux(video=0) if p.size]
        assert packets[0].is_keyframe
        with open_ts(data) as container:
            codes = [decode_blockcode(rgb(f)) for f in container.decode(video=0)]
        seen = [c[0] for c in codes if c is not None]
        assert seen == list(range(seen[0], seen[0] + len(seen)))
        counters.append(set(seen))
    # One encoder: both viewers saw the same captured frames. Two encoders would each
    # have taken their own frames, and the counters would not overlap.
    assert counters[0] & counters[1]
    await wait_until_idle(bell)
    assert bell.video.viewer_count == 0


async def test_snapshot_while_streaming_uses_live_frame(bell: Doorbell, token: str) -> None:
    viewer = bell.video.add_viewer()
    try:
        assert bell.video.encoding
        assert await viewer.next()
        jpeg = await bell.video.snapshot()
        assert jpeg[:2] == b"\xff\xd8"
    finally:
        bell.video.remove_viewer(viewer)
    await wait_until_idle(bell)


async def test_stop_ends_open_streams(tmp_path: Path) -> None:
    bell = Doorbell(DoorbellConfig(state_dir=tmp_path, host="127.0.0.1", port=0, advertise=False))
    await bell.start()
    viewer = bell.video.add_viewer()
    assert await viewer.next()
    await bell.stop()
    assert await viewer.next() is None
    assert not bell.video.encoding


def _chunk(keyframe: bool, tag: int = 0) -> Chunk:
    return Chunk(bytes([tag]) * 4, keyframe)


async def test_viewer_starts_at_keyframe_and_skips_ahead_when_slow() -> None:
    viewer = StreamViewer(max_chunks=3)
    assert viewer.push(_chunk(False, 1)) is False
    for tag in (2, 3, 4):
        viewer.push(_chunk(tag == 2, tag))
    assert await viewer.next() == b"\x02" * 4 + b"\x03" * 4 + b"\x04" * 4
    for tag in (5, 6, 7):
        viewer.push(_chunk(False, tag))
    # Full: the backlog is dropped and the viewer waits for the next keyframe.
    assert viewer.push(_chunk(False, 8)) is True
    assert viewer.dropped == 3
    viewer.push(_chunk(False, 9))
    viewer.push(_chunk(True, 10))
    assert await viewer.next() == b"\x0a" * 4
    viewer.close()
    assert await viewer.next() is None


def test_encoder_repeats_headers_before_every_idr() -> None:
    settings = EncoderSettings(width=160, height=96, fps=10, keyframe_interval=0.5)
    camera = SyntheticCamera("Test", settings.width, settings.height)
    encoder = TsEncoder(settings)
    try:
        chunks = [c for i in range(16) for c in encoder.encode(camera.read(), i == 7)]
    finally:
        encoder.close()
    assert all(len(c.data) % TS_PACKET == 0 and c.data[0] == 0x47 for c in chunks)
    keyframes = [i for i, c in enumerate(chunks) if c.keyframe]
    # Every 5 frames (0.5 s at 10 fps) plus the forced one at frame 7.
    assert keyframes == [0, 5, 7, 12]
    with open_ts(b"".join(c.data for c in chunks)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    for packet in packets:
        types = nal_types(bytes(packet))
        if packet.is_keyframe:
            assert types.index(7) < types.index(8) < types.index(5)
        else:
            assert 5 not in types
            assert 7 not in types


def _sound(frames: int) -> np.ndarray:
    """``frames`` 20 ms frames of a quiet tone, as the microphone hands them over."""
    samples = np.arange(frames * FRAME_SAMPLES)
    return (np.sin(samples * 2 * np.pi * 440 / SAMPLE_RATE) * 3000).astype(np.int16)


def _demuxed(chunks: list[Chunk]) -> tuple[list[int], int]:
    """Video frame numbers (pts in frames) and the count of Opus packets in ``chunks``."""
    video: list[int] = []
    sound = 0
    with open_ts(b"".join(c.data for c in chunks)) as container:
        for packet in container.demux():
            if not packet.size:
                continue
            if packet.stream.type == "video":
                assert packet.pts is not None
                assert packet.time_base is not None
                video.append(round(packet.pts * packet.time_base * 10))
            else:
                sound += 1
    return video, sound


def test_sound_and_video_leave_the_muxer_without_waiting_for_the_next_frame() -> None:
    # 10 fps: a frame period is five sound frames. Sound muxed on its own beat must not
    # wait for the next video frame, nor hold that frame back until the next one.
    settings = EncoderSettings(width=160, height=96, fps=10, keyframe_interval=0.5)
    camera = SyntheticCamera("Test", settings.width, settings.height)
    encoder = TsEncoder(settings, audio=True)
    chunks: list[Chunk] = []
    try:
        for _frame in range(3):
            chunks += encoder.encode(camera.read())
            for _beat in range(5):
                chunks += encoder.encode_sound(_sound(1))
        # Five sound frames after the third video frame, the muxer has let out that frame
        # and every sound frame but the newest, which it holds until a later packet
        # arrives (20 ms); batching sound with the video held each frame until the next.
        video, sound = _demuxed(chunks)
        first = video[0]
        assert [v - first for v in video] == [0, 1, 2]
        assert sound == 15 - 1
    finally:
        encoder.close()


def test_keyframe_chunks_start_with_the_tables_when_sound_is_muxed_between_frames() -> None:
    settings = EncoderSettings(width=160, height=96, fps=10, keyframe_interval=0.5)
    camera = SyntheticCamera("Test", settings.width, settings.height)
    encoder = TsEncoder(settings, audio=True)
    chunks: list[Chunk] = []
    try:
        for frame in range(12):
            chunks += encoder.encode(camera.read(), frame == 7)
            for _beat in range(5):
                chunks += encoder.encode_sound(_sound(1))
    finally:
        encoder.close()
    keyframes = [i for i, c in enumerate(chunks) if c.keyframe]
    # Frame 0, frame 5 on the 0.5 s beat, the forced one at 7 (the beat restarts there).
    assert len(keyframes) == 3
    for index in keyframes:
        # A viewer that joins at a keyframe chunk decodes from its first video packet.
        with open_ts(b"".join(c.data for c in chunks[index:])) as container:
            first = next(p for p in container.demux(video=0) if p.size)
            assert first.is_keyframe
            assert 5 in nal_types(bytes(first))
    # As many keyframe chunks as IDRs in the stream: none hides in a chunk not marked.
    with open_ts(b"".join(c.data for c in chunks)) as container:
        idrs = [p for p in container.demux(video=0) if p.size and 5 in nal_types(bytes(p))]
    assert len(idrs) == len(keyframes)


def _write_clip(path: Path, frames: int) -> None:
    """A short MPEG-4 Part 2 clip: deliberately not H.264, so it must be re-encoded."""
    camera = SyntheticCamera("Clip", 320, 240)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(camera.read(), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_file_source_loops_and_rescales(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    _write_clip(clip, frames=4)
    source = FileSource(clip, 160, 96)
    try:
        frames = [source.read() for _ in range(10)]
    finally:
        source.close()
    assert all(f.shape == (96, 160, 3) for f in frames)


async def test_doorbell_streams_a_video_file_as_h264(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    _write_clip(clip, frames=5)
    bell = Doorbell(
        DoorbellConfig(
            state_dir=tmp_path / "state",
            host="127.0.0.1",
            port=0,
            advertise=False,
            video_file=clip,
            width=320,
            height=240,
        )
    )
    await bell.start()
    try:
        viewer = bell.video.add_viewer()
        data = b""
        while len(data) < 6000:
            piece = await viewer.next()
            assert piece is not None
            data += piece
        bell.video.remove_viewer(viewer)
        with open_ts(data) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.profile == "Constrained Baseline"
            frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (320, 240)
        # No block code is burned into real footage unless asked for.
        assert decode_blockcode(rgb(frame)) is None
    finally:
        await bell.stop()


def test_v4l2_without_support_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(V4L2Source, "available", staticmethod(lambda: False))
    with pytest.raises(RuntimeError, match="no v4l2 input"):
        V4L2Source("/dev/video0", 640, 360, 15)

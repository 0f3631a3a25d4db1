"""Shared helpers for the recorder tests: synthetic H.264 streams and MP4 inspection.
(Named test_media_recorder_* to stay inside the recorder tests' area; it holds no tests.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
import functools
from pathlib import Path

import av
import numpy as np

from custom_components.doorstep.media import VIDEO_CLOCK_RATE, VideoPacket

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FPS = 10
GOP = 5  # frames: a keyframe every 0.5 s keeps the duration checks tight
WIDTH, HEIGHT = 64, 48
TICKS = VIDEO_CLOCK_RATE // FPS


@dataclass
class FakeClock:
    """Wall time for the recorder, advanced by the test as it feeds packets."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@functools.cache
def _encoded(frames: int) -> tuple[tuple[bytes, bool], ...]:
    """``frames`` frames of baseline H.264 (SPS/PPS before every IDR), encoded once."""
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height = WIDTH, HEIGHT
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, FPS)  # type: ignore[assignment]  # the stub is too narrow
    codec.options = {
        "profile": "baseline",
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0:"
        "repeat-headers=1:threads=1",
    }
    rng = np.random.default_rng(7)
    out: list[tuple[bytes, bool]] = []
    for index in range(frames):
        image = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        out.extend((bytes(p), p.is_keyframe) for p in codec.encode(frame))
    out.extend((bytes(p), p.is_keyframe) for p in codec.encode(None))
    assert len(out) == frames
    return tuple(out)


def synthetic_stream(seconds: float, *, first_dts: int = 0) -> list[VideoPacket]:
    """Real H.264 packets for ``seconds`` of video at FPS, dts from ``first_dts``."""
    frames = round(seconds * FPS)
    return [
        VideoPacket(payload, first_dts + i * TICKS, first_dts + i * TICKS, key)
        for i, (payload, key) in enumerate(_encoded(frames))
    ]


@dataclass
class Feeder:
    """Feeds packets to a recorder in stream order, moving the fake clock along."""

    recorder: object
    clock: FakeClock
    packets: list[VideoPacket]
    position: int = 0
    fed: list[VideoPacket] = field(default_factory=list)

    def seconds(self, seconds: float) -> None:
        self.frames(round(seconds * FPS))

    def frames(self, count: int) -> None:
        for packet in self.packets[self.position : self.position + count]:
            self.recorder.feed(packet)  # type: ignore[attr-defined]
            self.fed.append(packet)
            self.clock.advance(1 / FPS)
        self.position += count

    @property
    def last_dts(self) -> int:
        dts = self.fed[-1].dts
        assert dts is not None
        return dts


@dataclass(frozen=True)
class Mp4Facts:
    frames: int
    first_is_keyframe: bool
    duration: float
    extradata: bytes
    width: int
    height: int


def avcc_parameter_sets(extradata: bytes) -> tuple[list[bytes], list[bytes]]:
    """The SPS and PPS NAL units in an MP4's ``avcC`` record (ISO 14496-15 5.3.3.1).

    Doorstep itself never reads avcC (it handles Annex-B only); the test reads the
    recorder's MP4 with it to see that the doorbell's own parameter sets went in.
    """
    assert extradata[0] == 1, "not an avcC record"
    position = 5
    found: list[list[bytes]] = []
    for count_mask in (0x1F, 0xFF):  # numOfSequenceParameterSets, numOfPictureParameterSets
        count = extradata[position] & count_mask
        position += 1
        units = []
        for _ in range(count):
            size = int.from_bytes(extradata[position : position + 2], "big")
            units.append(extradata[position + 2 : position + 2 + size])
            position += 2 + size
        found.append(units)
    return found[0], found[1]


def inspect_mp4(path: Path) -> Mp4Facts:
    """Open with PyAV, decode every frame, and report what a player would see."""
    with av.open(str(path), format="mp4") as container:
        stream = container.streams.video[0]
        extradata = bytes(stream.codec_context.extradata or b"")
        assert stream.duration is not None
        assert stream.time_base is not None
        duration = float(stream.duration * stream.time_base)
        frames = list(container.decode(stream))
    return Mp4Facts(
        frames=len(frames),
        first_is_keyframe=bool(frames and frames[0].key_frame),
        duration=duration,
        extradata=extradata,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
    )

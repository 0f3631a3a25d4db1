"""H.264 in MPEG-TS, and JPEG snapshots, with PyAV.

The stream follows protocol section 4: constrained baseline (x264's ``baseline`` profile
is the constrained one), no B-frames, an IDR at a fixed interval, SPS/PPS repeated in
band before every IDR. The muxer flushes after every packet, so each encoded frame comes
out as its own run of whole 188-byte TS packets, and a run that holds an IDR starts with
PAT/PMT. That is what lets a new viewer join at any keyframe run.

With a microphone, sound is muxed on its own 20 ms beat (:meth:`TsEncoder.encode_sound`),
not once per video frame. The muxer interleaves by time and holds the last packet it was
given until a later one arrives, so a packet waits for the next one of either stream:
20 ms at most, where batching sound with the video held the video a whole frame period
and sound up to one.

``profile="high"`` breaks the baseline rule on purpose: High profile with B-frames, the
way many off-the-shelf cameras ship, so the hub's transcoding fallback can be exercised.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
import math
import threading
from typing import Any, Final, Literal

import av
from av.video.frame import PictureType

from .audio import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from .blockcode import RGBFrame

type StreamProfile = Literal["baseline", "high"]
STREAM_PROFILES: Final[tuple[StreamProfile, ...]] = ("baseline", "high")
# With B-frames the picture order differs from the decode order; two B-frames between
# references is what typical camera firmware uses.
_HIGH_PROFILE_B_FRAMES: Final = 2
# FFmpeg's MPEG-TS muxer defaults: the PIDs of the tables it writes before a keyframe
# (PAT, SDT, PMT), and the first elementary stream's PID, which is the video's.
_TS_PACKET: Final = 188
_TABLE_PIDS: Final = frozenset({0x0000, 0x0011, 0x1000})
_VIDEO_PID: Final = 0x0100


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """How the live stream is encoded."""

    width: int = 640
    height: int = 360
    fps: int = 15
    keyframe_interval: float = 2.0
    # superfast is within a few percent of veryfast's size on this kind of picture at
    # roughly 25% less CPU; two doorbells must fit next to Home Assistant on two cores.
    preset: str = "superfast"
    crf: int = 23
    threads: int = 1
    # "baseline" is the protocol's stream; "high" (with B-frames) needs the hub to transcode.
    profile: StreamProfile = "baseline"

    @property
    def gop(self) -> int:
        """Frames from one IDR to the next."""
        return max(1, math.floor(self.fps * self.keyframe_interval))


@dataclass(frozen=True, slots=True)
class Chunk:
    """The transport stream bytes of one encoded frame."""

    data: bytes
    keyframe: bool


class _Collector:
    """The file object PyAV writes the transport stream into."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class TsEncoder:
    """Encodes RGB frames to H.264 and muxes them into MPEG-TS, with the microphone's
    sound when it has one.

    Thread-safe: the doorbell's video worker encodes frames while its sound worker muxes
    sound; a lock keeps them out of the muxer at the same time.
    """

    def __init__(self, settings: EncoderSettings, *, audio: bool = False) -> None:
        self._settings = settings
        self._out = _Collector()
        self._lock = threading.Lock()
        # pes_payload_size=0: each Opus packet gets its own PES instead of waiting to fill
        # one of 2930 bytes (about a second of speech), which would be a second of delay.
        # max_interleave_delta=1 (µs): hand on the oldest queued packet as soon as a later
        # one is queued, instead of waiting (up to 10 s by default) until every stream has
        # one, which held sound until the next video frame.
        self._container = av.open(
            self._out,
            mode="w",
            format="mpegts",
            container_options={
                "flush_packets": "1",
                "pes_payload_size": "0",
                "max_interleave_delta": "1",
            },
        )
        self._stream = self._container.add_stream(
            "libx264",
            rate=settings.fps,
            time_base=Fraction(1, settings.fps),
            options=_x264_options(settings),
        )
        self._stream.width = settings.width
        self._stream.height = settings.height
        self._stream.pix_fmt = "yuv420p"
        self._pts = 0
        # Protocol v1.1: the microphone as a second elementary stream, Opus, mono, 48 kHz.
        self._audio: Any = None
        self._audio_pts = 0
        if audio:
            # Constant 72 kbit/s: every 20 ms packet is 180 bytes, above the 170 bytes
            # below which the muxer keeps a sound packet back until the next one (its
            # PES payload size rounds up to one TS packet), so each leaves at once. On a
            # home network 40 kbit/s more is nothing; 20 ms less is what it buys.
            self._audio = self._container.add_stream(
                "libopus", rate=SAMPLE_RATE, options={"vbr": "off"}
            )
            self._audio.layout = "mono"
            self._audio.bit_rate = 72_000

    def encode(
        self, frame: RGBFrame, force_keyframe: bool = False, pcm: Pcm | None = None
    ) -> list[Chunk]:
        """Encode one frame (and sound, when given); returns the stream bytes the muxer
        let out, in chunks where a keyframe's chunk starts with its PAT/PMT.

        ``pcm`` is a whole number of 20 ms frames. The bytes of this frame may come out
        with the next call (see the module docstring).
        """
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        video_frame.pts = self._pts
        self._pts += 1
        if force_keyframe:
            video_frame.pict_type = PictureType.I
        # Encoding needs no lock: only this thread touches the video encoder.
        packets = self._stream.encode(video_frame)
        with self._lock:
            if pcm is not None and self._audio is not None:
                self._mux_audio(pcm)
            for packet in packets:
                self._container.mux(packet)
            return _split_at_keyframe(self._out.take())

    def encode_sound(self, pcm: Pcm) -> list[Chunk]:
        """Mux sound captured since the last call (whole 20 ms frames); returns the stream
        bytes the muxer let out, which may include a held video frame."""
        with self._lock:
            if self._audio is not None:
                self._mux_audio(pcm)
            return _split_at_keyframe(self._out.take())

    def _mux_audio(self, pcm: Pcm) -> None:
        for start in range(0, pcm.size - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            piece = pcm[start : start + FRAME_SAMPLES].reshape(1, -1)
            audio_frame = av.AudioFrame.from_ndarray(piece, format="s16", layout="mono")
            audio_frame.sample_rate = SAMPLE_RATE
            audio_frame.pts = self._audio_pts
            self._audio_pts += FRAME_SAMPLES
            for packet in self._audio.encode(audio_frame):
                self._container.mux(packet)

    def close(self) -> None:
        """Release the encoder; frames still inside it are dropped."""
        with self._lock:
            self._container.close()


def _split_at_keyframe(data: bytes) -> list[Chunk]:
    """``data`` as chunks, the keyframe's (if any) starting with the tables before it.

    The muxer marks a keyframe's first TS packet as a random access point; it writes the
    PAT and PMT (and now and then the SDT) just before it.
    """
    if not data:
        return []
    start = None
    for offset in range(0, len(data) - _TS_PACKET + 1, _TS_PACKET):
        if _pid(data, offset) == _VIDEO_PID and _random_access(data, offset):
            start = offset
            break
    if start is None:
        return [Chunk(data, keyframe=False)]
    while start >= _TS_PACKET and _pid(data, start - _TS_PACKET) in _TABLE_PIDS:
        start -= _TS_PACKET
    chunks = [Chunk(data[:start], keyframe=False)] if start else []
    chunks.append(Chunk(data[start:], keyframe=True))
    return chunks


def _pid(data: bytes, offset: int) -> int:
    return ((data[offset + 1] & 0x1F) << 8) | data[offset + 2]


def _random_access(data: bytes, offset: int) -> bool:
    has_adaptation = data[offset + 3] & 0x20
    return bool(has_adaptation and data[offset + 4] > 0 and data[offset + 5] & 0x40)


def _x264_options(settings: EncoderSettings) -> dict[str, str]:
    gop = settings.gop
    params = [
        f"keyint={gop}",
        f"min-keyint={gop}",
        "scenecut=0",  # IDRs only on the fixed beat (or when we force one)
        "repeat-headers=1",  # SPS/PPS in band before every IDR
        f"threads={settings.threads}",
    ]
    options = {
        "preset": settings.preset,
        "crf": str(settings.crf),
        "forced-idr": "1",  # a forced keyframe must be an IDR, not an open-GOP I
    }
    if settings.profile == "high":
        # zerolatency would turn B-frames off, which is the whole point here; a short
        # lookahead keeps the added delay to a few frames.
        params += [
            f"bframes={_HIGH_PROFILE_B_FRAMES}",
            "b-adapt=0",
            "b-pyramid=none",
            "rc-lookahead=4",
            "sync-lookahead=0",
        ]
        options["profile"] = "high"
    else:
        params.append("bframes=0")
        options["profile"] = "baseline"
        options["tune"] = "zerolatency"
    options["x264-params"] = ":".join(params)
    return options


def encode_jpeg(frame: RGBFrame, quality: int = 4) -> bytes:
    """Encode one RGB frame as a baseline JPEG.

    ``quality`` is MJPEG's qscale, 2 (best) to 31 (worst). PyAV's own MJPEG encoder is
    used so the doorbell needs no imaging library.
    """
    height, width = frame.shape[:2]
    context = av.CodecContext.create("mjpeg", "w")
    assert isinstance(context, av.VideoCodecContext)
    context.width = width
    context.height = height
    context.pix_fmt = "yuvj420p"
    context.qscale = True
    # FF_QP2LAMBDA: libavcodec expects the quantiser scaled by 118.
    context.global_quality = quality * 118
    video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuvj420p")
    packets = [*context.encode(video_frame), *context.encode(None)]
    return b"".join(bytes(p) for p in packets)

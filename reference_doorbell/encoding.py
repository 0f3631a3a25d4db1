"""H.264 in MPEG-TS, and JPEG snapshots, with PyAV.

The stream follows protocol section 4: constrained baseline (x264's ``baseline`` profile
is the constrained one), no B-frames, an IDR at a fixed interval, SPS/PPS repeated in
band before every IDR. The muxer flushes after every packet, so each encoded frame comes
out as its own run of whole 188-byte TS packets, and a run that holds an IDR starts with
PAT/PMT. That is what lets a new viewer join at any keyframe run.

``profile="high"`` breaks the baseline rule on purpose: High profile with B-frames, the
way many off-the-shelf cameras ship, so the hub's transcoding fallback can be exercised.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
import math
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
    """Encodes RGB frames to H.264 and muxes them into MPEG-TS, one chunk per frame.

    Not thread-safe: one thread at a time (the doorbell's video worker) may use it.
    """

    def __init__(self, settings: EncoderSettings, *, audio: bool = False) -> None:
        self._settings = settings
        self._out = _Collector()
        # pes_payload_size=0: each Opus packet gets its own PES instead of waiting to fill
        # one of 2930 bytes (about a second of speech), which would be a second of delay.
        self._container = av.open(
            self._out,
            mode="w",
            format="mpegts",
            container_options={"flush_packets": "1", "pes_payload_size": "0"},
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
            self._audio = self._container.add_stream("libopus", rate=SAMPLE_RATE)
            self._audio.layout = "mono"
            self._audio.bit_rate = 32_000

    def encode(
        self, frame: RGBFrame, force_keyframe: bool = False, pcm: Pcm | None = None
    ) -> list[Chunk]:
        """Encode one frame and the sound captured with it; returns the chunks produced.

        ``pcm`` is a whole number of 20 ms frames. The muxer interleaves by time, so the
        sound comes out together with the video frame that follows it.
        """
        if pcm is not None and self._audio is not None:
            self._mux_audio(pcm)
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        video_frame.pts = self._pts
        self._pts += 1
        if force_keyframe:
            video_frame.pict_type = PictureType.I
        chunks: list[Chunk] = []
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
            chunks.append(Chunk(self._out.take(), packet.is_keyframe))
        return chunks

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
        self._container.close()


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

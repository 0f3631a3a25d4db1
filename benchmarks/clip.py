"""A pre-encoded clip, replayed by the benchmark doorbell in real time.

Why: on this machine the reference doorbell's encoder (synthetic scene, RGB to YUV,
x264 superfast, one thread) costs about 36 ms of CPU per 1080p frame, more than one
core at 30 fps, so a live 1080p30 doorbell cannot run next to a hub and its viewers on
two cores. The clip is encoded once with the reference encoder's exact settings and the
same synthetic scene, so the stream has the reference doorbell's bitrate, GOP and
profile; the benchmark doorbell then only remuxes it to MPEG-TS.

The block code in the clip carries the clip frame index (and index x frame period as
its time). The replaying encoder logs the wall-clock time at which it hands out each
frame, at the point where the live pipeline stamps its capture time; latency is then
receive time minus that emission time (encode time is therefore not included).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import io
from pathlib import Path
import time
from typing import Any

import av
from av.rational import AVRational

from reference_doorbell.blockcode import encode_blockcode
from reference_doorbell.encoding import Chunk, EncoderSettings, TsEncoder
from reference_doorbell.sources import SyntheticCamera

CLIP_SECONDS = 10
_EMISSION_LOG_LIMIT = 200_000


def clip_path(cache: Path, width: int, height: int, fps: int) -> Path:
    """Where the clip for this format is cached."""
    return cache / f"clip-{width}x{height}-{fps}.ts"


def encode_clip(path: Path, width: int, height: int, fps: int) -> Path:
    """Encode ``CLIP_SECONDS`` of the synthetic scene with the reference encoder."""
    if path.exists():
        return path
    camera = SyntheticCamera("Bench door", width, height)
    encoder = TsEncoder(EncoderSettings(width=width, height=height, fps=fps))
    frame_us = 1_000_000 // fps
    parts: list[bytes] = []
    start = time.monotonic()
    for index in range(CLIP_SECONDS * fps):
        # The scene moves with wall time; pace it so the clip moves as live video does.
        frame = camera.read()
        encode_blockcode(frame, index, index * frame_us)
        parts.extend(chunk.data for chunk in encoder.encode(frame))
        camera._start = start - (index + 1) / fps
    encoder.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(parts))
    tmp.replace(path)
    return path


@dataclass(frozen=True, slots=True)
class ClipFrame:
    """One access unit of the clip (Annex B, SPS/PPS in band before each IDR)."""

    data: bytes
    keyframe: bool


def load_clip(path: Path) -> tuple[list[ClipFrame], Any]:
    """The clip's access units and its input container (whose stream is the template)."""
    container = av.open(io.BytesIO(path.read_bytes()), "r", format="mpegts")
    frames = [
        ClipFrame(bytes(packet), bool(packet.is_keyframe))
        for packet in container.demux(video=0)
        if packet.size
    ]
    return frames, container


class EmissionLog:
    """(clip index, wall-clock microseconds) of every frame handed out."""

    def __init__(self) -> None:
        self.entries: deque[tuple[int, int]] = deque(maxlen=_EMISSION_LOG_LIMIT)

    def add(self, index: int) -> None:
        self.entries.append((index, time.time_ns() // 1000))


class ReplayEncoder:
    """Stands in for ``TsEncoder`` in the reference ``VideoPipeline``.

    Each ``encode`` call hands out the next clip frame, remuxed into MPEG-TS with a
    continuous timeline. A forced keyframe (a viewer joined the doorbell) skips ahead to
    the next IDR of the clip, as the live encoder would emit one at once.
    """

    def __init__(self, settings: EncoderSettings, clip: Path, log: EmissionLog) -> None:
        self._frames, self._input = load_clip(clip)
        self._keyframes = [i for i, f in enumerate(self._frames) if f.keyframe]
        self._log = log
        self._fps = settings.fps
        self._out = io.BytesIO()
        self._container = av.open(
            self._out, mode="w", format="mpegts", container_options={"flush_packets": "1"}
        )
        self._stream = self._container.add_stream_from_template(self._input.streams.video[0])
        self._index = 0
        self._pts = 0

    def encode(self, frame: Any, force_keyframe: bool = False, pcm: Any = None) -> list[Chunk]:
        """Hand out the next clip frame (``frame`` and the sound ``pcm`` are ignored: the
        live-view benchmark is video only)."""
        if force_keyframe and not self._frames[self._index].keyframe:
            later = [k for k in self._keyframes if k > self._index]
            self._index = later[0] if later else self._keyframes[0]
        clip_frame = self._frames[self._index]
        self._log.add(self._index)
        packet = av.Packet(clip_frame.data)
        packet.pts = packet.dts = self._pts
        packet.time_base = AVRational(1, self._fps)
        packet.is_keyframe = clip_frame.keyframe
        packet.stream = self._stream
        self._container.mux(packet)
        self._pts += 1
        self._index = (self._index + 1) % len(self._frames)
        data = self._out.getvalue()
        self._out.seek(0)
        self._out.truncate()
        return [Chunk(data, clip_frame.keyframe)]

    def close(self) -> None:
        self._container.close()
        self._input.close()


class BlankSource:
    """A frame source that costs nothing: the replayed clip ignores the picture."""

    def __init__(self) -> None:
        import numpy as np

        self._frame = np.zeros((48, 80, 3), dtype=np.uint8)

    @property
    def live(self) -> bool:
        return False

    def open(self) -> None:
        """Nothing to open."""

    def read(self) -> Any:
        return self._frame

    def close(self) -> None:
        """Nothing to close."""


def main() -> None:
    """``python -m benchmarks.clip WIDTH HEIGHT FPS PATH``: encode one clip."""
    import sys

    width, height, fps = (int(v) for v in sys.argv[1:4])
    encode_clip(Path(sys.argv[4]), width, height, fps)


if __name__ == "__main__":
    main()

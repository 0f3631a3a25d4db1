"""The fallback for streams browsers cannot take as they are: re-encode to baseline.

Passthrough is the rule (DESIGN.md). A doorbell or camera that sends High profile, or
main profile with B-frames, would leave browsers with a black or stuttering picture, so
its live view is decoded and encoded again as constrained baseline H.264 with libx264
(``ultrafast``, ``zerolatency``: no B-frames, no lookahead, SPS/PPS before every IDR).

PyAV blocks and burns CPU, so a :class:`Transcoder` runs in its own thread. Memory is
bounded at every step: packets waiting for the thread are capped (overflow drops to the
next keyframe, where decoding can resume), a thread that falls behind skips encoding
frames instead of queueing them, and a stalled consumer stops the thread, which then
sheds input the same way.

``live`` decides when to use it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from fractions import Fraction
import logging
import math
import statistics
import threading
from typing import Any, Final

import av
from av.video.frame import PictureType

from .exceptions import TranscodeError
from .packet import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, VideoPacket
from .thread_bridge import THREAD_POLL, ThreadBridge, describe_error

_LOGGER = logging.getLogger(__name__)

# Frame intervals remembered to estimate the input frame rate (for x264's rate control).
_RATE_WINDOW: Final = 15
_DEFAULT_FPS: Final = 15.0
_MIN_FPS: Final = 1.0
_MAX_FPS: Final = 60.0
_RATE_SETTLED_AFTER: Final = 8
_RATE_TOLERANCE: Final = 0.25


@dataclass(frozen=True, slots=True)
class TranscodeSettings:
    """How the fallback encodes, and how much it may hold."""

    preset: str = "ultrafast"
    # Browsers that lose a packet wait for the next keyframe; never more than this.
    keyframe_interval: float = 2.0
    # Baseline at ultrafast needs more bits than the camera's High profile for the same
    # picture; 0.1 bit per pixel looks clean for a doorbell's mostly static scene.
    bits_per_pixel: float = 0.1
    min_bitrate: int = 250_000
    max_bitrate: int = 8_000_000
    # ...but never far above what the camera itself sends: ultrafast baseline needs
    # about twice the bits of a camera's High profile, and more would be waste.
    input_headroom: float = 2.0
    # x264 threads; 0 lets it choose (sliced threads under zerolatency: no added delay).
    threads: int = 0
    # Encoded input waiting for the thread: about one second at 30 fps.
    max_pending_packets: int = 30
    max_pending_bytes: int = 8 * 1024 * 1024
    # Re-encoded packets the consumer has not taken yet.
    max_output_packets: int = 30

    def bitrate(
        self, width: int, height: int, fps: float, input_bitrate: float | None = None
    ) -> int:
        """Target bits per second for this picture size, frame rate and input."""
        wanted = width * height * fps * self.bits_per_pixel
        if input_bitrate:
            wanted = min(wanted, input_bitrate * self.input_headroom)
        return int(min(self.max_bitrate, max(self.min_bitrate, wanted)))


@dataclass(slots=True)
class TranscodeStats:
    """Counters for diagnostics and benchmarks."""

    packets_in: int = 0
    # Encoded input thrown away: queue overflow, or waiting for a keyframe after a gap.
    packets_dropped: int = 0
    frames_decoded: int = 0
    frames_encoded: int = 0
    # Decoded pictures not encoded because the thread was behind.
    frames_skipped: int = 0
    decode_errors: int = 0
    packets_out: int = 0
    width: int = 0
    height: int = 0
    bitrate: int = 0


class Transcoder:
    """Decode H.264 access units and encode them again as constrained baseline.

    Feed it with :meth:`submit` (never blocks, may drop), read :meth:`packets`, and
    :meth:`close` it. Must be created inside a running event loop.
    """

    def __init__(self, *, name: str = "camera", settings: TranscodeSettings | None = None) -> None:
        self._name = name
        self._settings = settings or TranscodeSettings()
        self.stats = TranscodeStats()
        # Input side, shared with the thread under the condition's lock.
        self._cond = threading.Condition()
        self._pending: deque[VideoPacket] = deque()
        self._pending_bytes = 0
        self._input_waits_for_keyframe = True
        self._finished_input = False
        # Output side.
        self._bridge = ThreadBridge[VideoPacket](
            self._work,
            thread_name=f"doorstep transcode {name}",
            max_pending=self._settings.max_output_packets,
            error_type=TranscodeError,
            describe=self._describe_error,
        )
        self._bridge.start()

    @property
    def pending_packets(self) -> int:
        """Encoded input waiting for the thread."""
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        """Bytes of encoded input waiting for the thread."""
        return self._pending_bytes

    @property
    def queued_output(self) -> int:
        """Re-encoded packets waiting for the consumer."""
        return self._bridge.queued

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        return self._bridge.alive

    def submit(self, packet: VideoPacket) -> bool:
        """Hand one access unit to the thread; False when it was dropped instead."""
        settings = self._settings
        with self._cond:
            if self._bridge.stopping or self._finished_input:
                return False
            self.stats.packets_in += 1
            if self._input_waits_for_keyframe and not packet.is_keyframe:
                self.stats.packets_dropped += 1
                return False
            full = self._pending and (
                len(self._pending) >= settings.max_pending_packets
                or self._pending_bytes + packet.size > settings.max_pending_bytes
            )
            if full:
                if not packet.is_keyframe:
                    # What follows would reference this picture: skip to the next keyframe.
                    self.stats.packets_dropped += 1
                    self._input_waits_for_keyframe = True
                    return False
                # Everything waiting is older than this keyframe: start over from it.
                self.stats.packets_dropped += len(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
            self._input_waits_for_keyframe = False
            self._pending.append(packet)
            self._pending_bytes += packet.size
            self._cond.notify()
            return True

    def finish(self) -> None:
        """No more input: the thread ends after what is already queued."""
        with self._cond:
            self._finished_input = True
            self._cond.notify_all()

    def packets(self) -> AsyncGenerator[VideoPacket]:
        """Re-encoded packets until the input is finished; :class:`TranscodeError` if the
        thread failed."""
        return self._bridge.items()

    async def close(self, grace: float = 5.0) -> None:
        """Stop the thread and wait (up to ``grace`` seconds) until it has."""
        self._bridge.request_stop()
        with self._cond:
            self._pending.clear()
            self._pending_bytes = 0
            self._cond.notify_all()
        await self._bridge.stop(grace)

    # --- worker thread ------------------------------------------------------------------

    def _describe_error(self, err: Exception) -> str:
        _LOGGER.debug("%s: transcoding failed", self._name, exc_info=err)
        return describe_error(err)

    def _take(self) -> VideoPacket | None:
        with self._cond:
            while not self._pending:
                if self._bridge.stopping or self._finished_input:
                    return None
                self._cond.wait(THREAD_POLL)
            if self._bridge.stopping:
                return None
            packet = self._pending.popleft()
            self._pending_bytes -= packet.size
            return packet

    def _work(self) -> None:
        decoder = av.CodecContext.create("h264", "r")
        assert isinstance(decoder, av.VideoCodecContext)
        # Frame threads would each hold a picture back; one thread keeps latency minimal.
        decoder.thread_count = 1
        encoder = _BaselineEncoder(self._settings, self.stats)
        rate = _InputRate()
        resync = False
        try:
            while (packet := self._take()) is not None:
                if resync and not packet.is_keyframe:
                    self.stats.packets_dropped += 1
                    continue
                resync = False
                rate.observe(packet.dts if packet.dts is not None else packet.pts, packet.size)
                try:
                    frames = decoder.decode(_to_av_packet(packet))
                except av.error.FFmpegError:
                    # Damaged input: what follows references it, so wait for a keyframe.
                    self.stats.decode_errors += 1
                    resync = True
                    continue
                for frame in frames:
                    self.stats.frames_decoded += 1
                    if self.pending_packets > 1 and not encoder.keyframe_due(frame):
                        self.stats.frames_skipped += 1
                        continue
                    out_packets = encoder.encode(frame, rate, replayed=packet.replayed)
                    for out in out_packets:
                        if not self._bridge.post(out):
                            return
                        self.stats.packets_out += 1
        finally:
            # PyAV frees codec contexts when the last reference goes; this is that.
            encoder.close()
            del decoder


class _BaselineEncoder:
    """libx264 for constrained baseline; made again when the picture size changes, and
    once when the input's rates become known (the bitrate follows them)."""

    def __init__(self, settings: TranscodeSettings, stats: TranscodeStats) -> None:
        self._settings = settings
        self._stats = stats
        self._context: av.VideoCodecContext | None = None
        self._size = (0, 0)
        self._last_pts: int | None = None
        self._last_keyframe_pts: int | None = None
        self._bitrate = 0
        self._rate_settled = False

    def keyframe_due(self, frame: av.VideoFrame) -> bool:
        """Whether this picture must become a keyframe (so it may not be skipped)."""
        if self._context is None or self._size != _even_size(frame):
            return True
        pts = self._next_pts(frame)
        last = self._last_keyframe_pts
        interval = round(self._settings.keyframe_interval * VIDEO_CLOCK_RATE)
        return last is None or pts - last >= interval

    def encode(
        self, frame: av.VideoFrame, rate: _InputRate, *, replayed: bool
    ) -> list[VideoPacket]:
        size = _even_size(frame)
        # The first picture comes before the input's rates are known, and the bitrate
        # depends on them: open again once, when they are clear and differ much.
        settled = rate.settled and not self._rate_settled
        bitrate = self._settings.bitrate(*size, rate.fps, rate.bitrate)
        rate_changed = settled and abs(bitrate - self._bitrate) > _RATE_TOLERANCE * self._bitrate
        if self._context is None or size != self._size or rate_changed:
            self._open(size, rate.fps, bitrate)
        self._rate_settled = self._rate_settled or rate.settled
        context = self._context
        assert context is not None
        force = self.keyframe_due(frame)
        pts = self._next_pts(frame)
        picture = frame.reformat(width=size[0], height=size[1], format="yuv420p")
        picture.pts = pts
        picture.time_base = VIDEO_TIME_BASE
        # A decoded I picture keeps its type, and libx264 would obey it: only our own
        # schedule may place keyframes.
        picture.pict_type = PictureType.I if force else PictureType.NONE
        self._last_pts = pts
        out: list[VideoPacket] = []
        for packet in context.encode(picture):
            stamp = packet.pts if packet.pts is not None else pts
            if packet.is_keyframe:
                self._last_keyframe_pts = stamp
            out.append(
                VideoPacket(bytes(packet), stamp, stamp, packet.is_keyframe, replayed=replayed)
            )
        self._stats.frames_encoded += 1
        return out

    def close(self) -> None:
        self._context = None

    def _next_pts(self, frame: av.VideoFrame) -> int:
        """The frame's time on the 90 kHz clock, strictly after the previous one."""
        pts = frame.pts
        if pts is not None and frame.time_base is not None and frame.time_base != VIDEO_TIME_BASE:
            pts = int(pts * frame.time_base * VIDEO_CLOCK_RATE)
        last = self._last_pts
        if pts is None:
            return 0 if last is None else last + 1
        return pts if last is None or pts > last else last + 1

    def _open(self, size: tuple[int, int], fps: float, bitrate: int) -> None:
        self.close()
        settings = self._settings
        width, height = size
        kbps = max(1, bitrate // 1000)
        gop = max(1, math.floor(fps * settings.keyframe_interval))
        context = av.CodecContext.create("libx264", "w")
        assert isinstance(context, av.VideoCodecContext)
        context.width = width
        context.height = height
        context.pix_fmt = "yuv420p"
        context.time_base = VIDEO_TIME_BASE
        context.framerate = Fraction(round(fps * 1000), 1000)
        context.bit_rate = bitrate
        context.options = {
            "preset": settings.preset,
            "tune": "zerolatency",
            "profile": "baseline",  # x264's baseline is constrained baseline
            "forced-idr": "1",
            "x264-params": ":".join(
                [
                    f"keyint={gop}",
                    "scenecut=0",
                    "bframes=0",
                    "repeat-headers=1",  # SPS/PPS in band before every IDR
                    f"vbv-maxrate={kbps}",
                    f"vbv-bufsize={kbps}",  # one second of buffer: steady on Wi-Fi
                    f"threads={settings.threads}",
                ]
            ),
        }
        context.open()
        self._context = context
        self._size = size
        self._bitrate = bitrate
        self._last_keyframe_pts = None
        self._stats.width, self._stats.height, self._stats.bitrate = width, height, bitrate


class _InputRate:
    """The input's frame rate (median spacing of decode timestamps) and bitrate."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._gaps: deque[int] = deque(maxlen=_RATE_WINDOW)
        self._sizes: deque[int] = deque(maxlen=_RATE_WINDOW)

    def observe(self, stamp: int | None, size: int) -> None:
        if stamp is None:
            return
        if self._last is not None and stamp > self._last:
            self._gaps.append(stamp - self._last)
            self._sizes.append(size)
        self._last = stamp

    @property
    def settled(self) -> bool:
        """Enough intervals seen for the estimates to be trusted."""
        return len(self._gaps) >= _RATE_SETTLED_AFTER

    @property
    def fps(self) -> float:
        if not self._gaps:
            return _DEFAULT_FPS
        return min(_MAX_FPS, max(_MIN_FPS, VIDEO_CLOCK_RATE / statistics.median(self._gaps)))

    @property
    def bitrate(self) -> float | None:
        """Bits per second over the window, or None before it is known."""
        if not self.settled:
            return None
        return sum(self._sizes) * 8 * VIDEO_CLOCK_RATE / sum(self._gaps)


def _even_size(frame: av.VideoFrame) -> tuple[int, int]:
    # 4:2:0 needs even dimensions; losing one pixel row beats failing to encode.
    return max(2, frame.width & ~1), max(2, frame.height & ~1)


def _to_av_packet(packet: VideoPacket) -> av.Packet[Any]:
    out = av.Packet(packet.payload)
    out.pts = packet.pts
    out.dts = packet.dts
    out.time_base = packet.time_base
    return out

"""Remux Annex-B H.264 packets into an MP4 file, without decoding or re-encoding.

Blocking: the recorder drives one writer from its own worker thread, never from the
event loop. The file is written under a temporary name; the clip store renames it once
it is complete, so a half-written clip never looks like a finished one.

FFmpeg's MP4 muxer is given the stream's parameter sets from the first keyframe (PyAV
extracts them into the stream's extradata before the header is written) and turns them
into the ``avcC`` box, and it rewrites each access unit from start codes to length
prefixes: the file then plays in browsers as ``avc1``. ``faststart`` puts the index
before the media data so a browser can start playing while it downloads.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path
from typing import Any, Final

import av

from .exceptions import BitstreamError, InvalidSps, RecordingError, StorageFull
from .h264 import parameter_sets, parse_sps
from .packet import (
    AUDIO_CLOCK_RATE,
    AUDIO_TIME_BASE,
    VIDEO_CLOCK_RATE,
    VIDEO_TIME_BASE,
    AudioPacket,
    VideoPacket,
)

_LOGGER = logging.getLogger(__name__)

# Until two packets have been seen there is no frame interval to measure.
_FALLBACK_FRAME_TICKS: Final = VIDEO_CLOCK_RATE // 15
_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
_CONTAINER_OPTIONS: Final = {"movflags": "+faststart"}
_OPUS_FRAME: Final = AUDIO_CLOCK_RATE // 50


def recording_error(err: BaseException, what: str) -> RecordingError:
    """The typed error for a failed write: :class:`StorageFull` when the disk is full."""
    if isinstance(err, RecordingError):
        return err
    if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
        return StorageFull(f"{what}: the disk is full ({err.strerror or err})")
    return RecordingError(f"{what}: {type(err).__name__}: {err}")


class ClipWriter:
    """Writes one MP4 file at ``path``; not thread-safe (one worker thread uses it).

    The first packet written must be a keyframe carrying SPS and PPS (earlier packets
    are skipped). Packets must come in decode order; one whose ``dts`` does not increase
    is skipped rather than failing the whole clip. After the first error the writer
    removes its file and ignores further writes; :meth:`finish` raises that error.
    """

    def __init__(self, path: Path, *, audio: bool = False) -> None:
        self.path = path
        # "Record audio" (off by default): the file gets an Opus track next to the video.
        self._with_audio = audio
        self._audio_stream: Any = None
        self._last_audio_pts: int | None = None
        self.audio_packets_written = 0
        self._container: Any = None
        self._stream: Any = None
        self._held: VideoPacket | None = None
        self._base_dts = 0
        self._last_duration = _FALLBACK_FRAME_TICKS
        self._error: RecordingError | None = None
        self._done = False
        self.packets_written = 0
        self.packets_skipped = 0

    @property
    def error(self) -> RecordingError | None:
        """The first error, if writing failed."""
        return self._error

    @property
    def started(self) -> bool:
        """True once the first keyframe has opened the file."""
        return self._container is not None

    def write(self, packets: list[VideoPacket] | tuple[VideoPacket, ...]) -> None:
        """Append packets; raises the typed error the first time writing fails."""
        if self._error is not None or self._done:
            return
        try:
            for packet in packets:
                self._write_one(packet)
        except (OSError, av.FFmpegError, BitstreamError, ValueError) as err:
            raise self._fail(err) from err

    def write_audio(self, packets: list[AudioPacket] | tuple[AudioPacket, ...]) -> None:
        """Append Opus packets (only to a file opened with ``audio=True``, once its first
        keyframe has opened it); sound from before the first picture is dropped."""
        if self._error is not None or self._done or self._audio_stream is None:
            return
        base = self._base_dts * AUDIO_CLOCK_RATE // VIDEO_CLOCK_RATE
        try:
            for packet in packets:
                if packet.pts is None or packet.format.codec != "opus":
                    continue
                pts = packet.pts - base
                if pts < 0 or (self._last_audio_pts is not None and pts <= self._last_audio_pts):
                    continue
                out = av.Packet(packet.payload)
                out.stream = self._audio_stream
                out.time_base = AUDIO_TIME_BASE
                out.pts = out.dts = pts
                out.duration = packet.duration or _OPUS_FRAME
                self._container.mux(out)
                self._last_audio_pts = pts
                self.audio_packets_written += 1
        except (OSError, av.FFmpegError, ValueError) as err:
            raise self._fail(err) from err

    def finish(self) -> int:
        """Write the index, close and fsync the file; returns its size in bytes."""
        if self._error is not None:
            raise self._error
        if self._done:
            raise RecordingError(f"{self.path.name} is already finished")
        try:
            if self._container is None:
                raise RecordingError("no keyframe arrived, so there is nothing to save")
            if self._held is not None:
                self._mux(self._held, self._last_duration)
                self._held = None
            container, self._container = self._container, None
            container.close()
            self._done = True
            return _fsync_size(self.path)
        except (OSError, av.FFmpegError, RecordingError, ValueError) as err:
            raise self._fail(err) from err

    def abort(self) -> None:
        """Give up: close without caring about errors and remove the file."""
        self._done = True
        self._close_quietly()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # --- internals -----------------------------------------------------------------

    def _write_one(self, packet: VideoPacket) -> None:
        dts = packet.dts
        if dts is None:
            self.packets_skipped += 1
            return
        if self._container is None:
            if not packet.is_keyframe:
                self.packets_skipped += 1
                return
            self._open(packet)
            self._base_dts = dts
        held = self._held
        if held is not None:
            assert held.dts is not None
            if dts <= held.dts:
                self.packets_skipped += 1
                return
            # Each sample's duration is the gap to the next one; holding one packet back
            # is what lets the file's length come out right.
            self._last_duration = dts - held.dts
            self._mux(held, self._last_duration)
        self._held = packet

    def _open(self, keyframe: VideoPacket) -> None:
        sps, pps = parameter_sets(keyframe.payload)
        if sps is None or pps is None:
            raise RecordingError("the first keyframe carries no SPS/PPS")
        try:
            info = parse_sps(sps)
            width, height = info.width, info.height
        except InvalidSps:
            width = height = 0  # the decoder still finds the size in the bitstream
        container = av.open(
            str(self.path), "w", format="mp4", container_options=dict(_CONTAINER_OPTIONS)
        )
        try:
            stream = container.add_mux_stream("h264", width=width, height=height)
            stream.time_base = VIDEO_TIME_BASE
            if self._with_audio:
                # An encoder-backed stream, though nothing is encoded: PyAV gives a mux
                # stream no way to carry Opus's header (OpusHead), and libopus's encoder
                # writes one when the file starts. The doorbell's packets are muxed as
                # they are.
                audio = container.add_stream("libopus", rate=AUDIO_CLOCK_RATE)
                audio.layout = "mono"
                audio.time_base = AUDIO_TIME_BASE
                self._audio_stream = audio
        except BaseException:
            container.close()
            raise
        self._container = container
        self._stream = stream

    def _mux(self, packet: VideoPacket, duration: int) -> None:
        assert packet.dts is not None
        dts = packet.dts - self._base_dts
        pts = dts if packet.pts is None else packet.pts - self._base_dts
        out = av.Packet(packet.payload)
        out.stream = self._stream
        out.time_base = VIDEO_TIME_BASE
        out.dts = dts
        out.pts = max(pts, dts)  # a muxer refuses pts < dts; it only happens on bad input
        out.duration = duration
        out.is_keyframe = packet.is_keyframe
        self._container.mux(out)
        self.packets_written += 1

    def _fail(self, err: BaseException) -> RecordingError:
        error = recording_error(err, f"writing {self.path.name} failed")
        self._error = error
        self.abort()
        _LOGGER.debug("%s", error)
        return error

    def _close_quietly(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            # The file is deleted next; a second failure while closing it adds nothing.
            with contextlib.suppress(Exception):
                container.close()


def _fsync_size(path: Path) -> int:
    """fsync ``path`` (so the rename that publishes it never points at missing data)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)

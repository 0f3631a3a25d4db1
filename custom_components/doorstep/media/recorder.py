"""Local recording: a pre-roll ring, event clips and optional continuous segments.

The recorder is a non-viewer subscriber of a doorbell's relay. Every packet goes into
the pre-roll ring; a ring or motion (:meth:`Recorder.trigger`) opens a clip that starts
with the pre-roll and runs until the post-roll has passed in stream time. Another
trigger while the clip is open moves its end instead of starting a second clip.

Clip boundaries are decided on the event loop, in the 90 kHz stream time the source
provides, so a clip's length is exactly what the stream says regardless of how the
packets were delivered. The file work (muxing, fsync, rename) happens on the recorder's
own single worker thread, in submission order, so the loop never waits for the disk.
The clip closes on the first packet past its end; if the stream stalls instead, a timer
closes it with what it has shortly after the post-roll should have ended.

A failed write (a full disk above all) removes the partial file, is reported through
``on_error`` as a :class:`RecordingError` / :class:`StorageFull`, and ends only that
clip: the next event tries again. A failed continuous segment is retried at a keyframe
``segment_retry`` seconds later (doubling while failures go on), not at its planned end.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
import functools
import logging
from typing import Any, Final

from .audio import AudioRelay, AudioSubscription

# ClipStore is re-exported: the sharing glue imports it from here.
from .clips import ClipRecord, ClipStore as ClipStore
from .exceptions import RecordingError, SubscriptionClosed
from .h264 import annexb_join, parameter_sets
from .packet import AUDIO_CLOCK_RATE, VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, AudioPacket, VideoPacket
from .recorder_preroll import PreRollBuffer, preroll_byte_budget
from .recorder_writer import ClipWriter, recording_error
from .relay import MediaRelay, Subscription

_LOGGER = logging.getLogger(__name__)

type Clock = Callable[[], datetime]
type ClipListener = Callable[[ClipRecord], None]
type ErrorListener = Callable[[RecordingError], None]

REASON_CONTINUOUS: Final = "continuous"
# A jump this big in stream time is an outage (the source maps reconnects onto wall
# time): video from before it does not belong in front of video after it.
_GAP_TICKS: Final = 5 * VIDEO_CLOCK_RATE
# With no packet for this long the pre-roll is stale: an event then starts a clip at the
# next keyframe instead of replaying video from before the stream stopped.
_STALE_STREAM_SECONDS: Final = 3.0
_FALLBACK_FRAME_TICKS: Final = VIDEO_CLOCK_RATE // 15


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ticks(seconds: float) -> int:
    return round(seconds * VIDEO_CLOCK_RATE)


def _span(ticks: int) -> timedelta:
    return timedelta(seconds=ticks / VIDEO_CLOCK_RATE)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecorderConfig:
    """Recording options (seconds unless said otherwise)."""

    pre_roll: float = 10.0
    post_roll: float = 10.0
    # Constant motion must not make one endless file: a clip this long is closed at the
    # next keyframe and the recording carries on in a new clip.
    max_clip: float = 300.0
    # Sizes the pre-roll's byte budget (bits per second, generous for a doorbell).
    max_bitrate: int = 8_000_000
    max_preroll_bytes: int = 32 * 1024 * 1024
    continuous: bool = False
    segment: float = 600.0
    # After a segment fails (a full disk, mostly), the next one is tried at the first
    # keyframe this long after the failure rather than at the failed one's planned end,
    # so freeing space loses little video. Each further failure in a row doubles the
    # wait, up to the segment length, so a disk that stays full is not hammered.
    segment_retry: float = 10.0
    # How long a stalled stream may keep a clip open past its post-roll.
    stall_grace: float = 0.5
    # "Record audio": clips and segments carry the doorbell's sound. Off by default,
    # because recording sound on a public street is restricted in many places.
    audio: bool = False
    # Packets handed to the worker thread but not yet written; beyond this the disk is
    # too slow and the clip is given up rather than growing memory.
    max_pending_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.pre_roll < 0 or self.post_roll <= 0:
            raise ValueError("pre-roll must be >= 0 and post-roll > 0 seconds")
        if min(self.max_clip, self.segment, self.stall_grace, self.segment_retry) <= 0:
            raise ValueError(
                "clip length, segment length, stall grace and segment retry must be positive"
            )
        if self.max_pending_bytes < 1:
            raise ValueError("max_pending_bytes must be positive")
        preroll_byte_budget(self.pre_roll, self.max_bitrate, self.max_preroll_bytes)

    @property
    def preroll_bytes(self) -> int:
        """The pre-roll ring's byte cap."""
        return preroll_byte_budget(self.pre_roll, self.max_bitrate, self.max_preroll_bytes)


@dataclass(slots=True)
class RecorderStats:
    """Counters for diagnostics and the benchmark."""

    packets: int = 0
    packets_dropped: int = 0
    clips_written: int = 0
    segments_written: int = 0
    bytes_written: int = 0
    failures: int = 0
    last_error: str | None = None


@dataclass(eq=False, slots=True)
class _Recording:
    """One clip or segment on its way to disk (loop-side view)."""

    id: str
    reason: str
    writer: ClipWriter
    continuous: bool
    # Stream time ``anchor_dts`` happened at wall time ``anchor_wall``: how the file's
    # stream times become the record's start and end.
    anchor_dts: int | None = None
    anchor_wall: datetime | None = None
    # Event clips: the first dts past the post-roll, or before any packet has arrived,
    # the wall time the post-roll ends.
    end_dts: int | None = None
    end_wall: datetime | None = None
    start_dts: int | None = None
    last_dts: int | None = None
    last_duration: int = _FALLBACK_FRAME_TICKS
    triggers: int = 1
    last_audio_pts: int | None = None
    failed: bool = False
    # The stream time when writing failed (segments retry from there).
    failed_dts: int | None = None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def wall(self, dts: int) -> datetime:
        assert self.anchor_dts is not None
        assert self.anchor_wall is not None
        return self.anchor_wall + _span(dts - self.anchor_dts)


class Recorder:
    """Records one doorbell into a :class:`ClipStore`.

    Use on the event loop: :meth:`attach` to a relay (or call :meth:`feed` yourself),
    :meth:`trigger` on rings and motion, and :meth:`close` when done. ``on_clip`` and
    ``on_error`` are called on the loop.
    """

    def __init__(
        self,
        store: ClipStore,
        doorbell_id: str,
        config: RecorderConfig | None = None,
        *,
        clock: Clock | None = None,
        on_clip: ClipListener | None = None,
        on_error: ErrorListener | None = None,
    ) -> None:
        self._store = store
        self._doorbell_id = doorbell_id
        self._config = config or RecorderConfig()
        self._clock = clock or _utcnow
        self._on_clip = on_clip
        self._on_error = on_error
        self._ring = PreRollBuffer(self._config.pre_roll, self._config.preroll_bytes)
        # One thread, so the jobs of one file run in the order they were submitted.
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"doorstep recorder {doorbell_id}"
        )
        self._clip: _Recording | None = None
        self._segment: _Recording | None = None
        self._parameter_sets: bytes | None = None
        self._last_dts: int | None = None
        self._last_arrival: float | None = None
        self._pending_bytes = 0
        self._segment_failures = 0  # in a row: sets how long the next retry waits
        self._inflight: set[asyncio.Future[Any]] = set()
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        # Sound of the last pre-roll (plus a margin), for a clip that opens now.
        self._audio_ring: deque[AudioPacket] = deque()
        self._audio_subscription: AudioSubscription | None = None
        self._audio_task: asyncio.Task[None] | None = None
        self._closed = False
        self.stats = RecorderStats()

    @property
    def doorbell_id(self) -> str:
        """The doorbell this recorder records."""
        return self._doorbell_id

    @property
    def config(self) -> RecorderConfig:
        """The options in force."""
        return self._config

    @property
    def preroll(self) -> PreRollBuffer:
        """The pre-roll ring (read it, do not push to it)."""
        return self._ring

    @property
    def recording(self) -> bool:
        """True while an event clip is open."""
        return self._clip is not None

    @property
    def pending_bytes(self) -> int:
        """Bytes handed to the worker thread and not yet written."""
        return self._pending_bytes

    @property
    def memory_bytes(self) -> int:
        """Video held in memory: the pre-roll plus what waits for the disk."""
        return self._ring.bytes + self._pending_bytes

    # --- lifecycle ---------------------------------------------------------------------

    def attach(self, relay: MediaRelay) -> None:
        """Subscribe to ``relay`` (as a non-viewer) and record what it sends."""
        if self._task is not None or self._closed:
            raise RuntimeError("the recorder is already attached or closed")
        subscription = relay.subscribe(name=f"recorder {self._doorbell_id}", viewer=False)
        self._subscription = subscription
        self._task = asyncio.get_running_loop().create_task(
            self._consume(subscription), name=f"doorstep recorder {self._doorbell_id}"
        )

    def attach_audio(self, relay: AudioRelay) -> None:
        """Record ``relay``'s sound with the video (only when ``config.audio``)."""
        if not self._config.audio or self._audio_task is not None or self._closed:
            return
        subscription = relay.subscribe(f"recorder {self._doorbell_id}")
        self._audio_subscription = subscription
        self._audio_task = asyncio.get_running_loop().create_task(
            self._consume_audio(subscription), name=f"doorstep recorder sound {self._doorbell_id}"
        )

    async def _consume_audio(self, subscription: AudioSubscription) -> None:
        while True:
            try:
                packet = await subscription.get()
            except SubscriptionClosed:
                return
            try:
                self.feed_audio(packet)
            except Exception:
                _LOGGER.exception("%s: recording sound failed", self._doorbell_id)

    def feed_audio(self, packet: AudioPacket) -> None:
        """Take the next Opus packet of the doorbell's sound (only kept with ``audio``)."""
        if self._closed or not self._config.audio or packet.pts is None:
            return
        self._audio_ring.append(packet)
        keep = (self._config.pre_roll + 2.0) * AUDIO_CLOCK_RATE
        while self._audio_ring and packet.pts - (self._audio_ring[0].pts or 0) > keep:
            self._audio_ring.popleft()
        for recording in (self._clip, self._segment):
            if recording is not None:
                self._submit_audio(recording, [packet])

    def _submit_audio(self, recording: _Recording, packets: Sequence[AudioPacket]) -> None:
        """Sound from the recording's first picture to its end, in order, once."""
        if recording.failed or recording.start_dts is None:
            return
        start = recording.start_dts * AUDIO_CLOCK_RATE // VIDEO_CLOCK_RATE
        end = (
            None
            if recording.end_dts is None
            else recording.end_dts * AUDIO_CLOCK_RATE // VIDEO_CLOCK_RATE
        )
        accepted = [
            p
            for p in packets
            if p.pts is not None
            and p.pts >= start
            and (end is None or p.pts < end)
            and (recording.last_audio_pts is None or p.pts > recording.last_audio_pts)
        ]
        if not accepted:
            return
        recording.last_audio_pts = accepted[-1].pts
        future = self._run(recording.writer.write_audio, accepted)
        future.add_done_callback(functools.partial(self._write_done, recording, 0))

    async def close(self) -> None:
        """Stop recording; open clips are saved with what they have."""
        if self._closed:
            return
        self._closed = True
        if self._audio_task is not None:
            self._audio_task.cancel()
            await asyncio.wait([self._audio_task])
        if self._audio_subscription is not None:
            self._audio_subscription.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        if self._subscription is not None:
            self._subscription.close()
        for recording in (self._clip, self._segment):
            if recording is not None:
                self._close_recording(recording)
        await self.drain()
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def drain(self) -> None:
        """Wait until every write and clip handed to the worker thread is done."""
        while self._inflight:
            # Not gather(): with every future already done it returns without yielding,
            # so the done callbacks that empty the set would never get to run.
            await asyncio.wait(list(self._inflight))

    async def _consume(self, subscription: Subscription) -> None:
        async for packet in subscription:
            try:
                self.feed(packet)
            except Exception:
                # A recorder bug must not end recording for good.
                _LOGGER.exception("%s: recording a packet failed", self._doorbell_id)

    # --- events ------------------------------------------------------------------------

    def trigger(self, event_time: datetime, reason: str) -> None:
        """A ring or motion at ``event_time``: open a clip, or extend the open one."""
        if event_time.tzinfo is None:
            raise ValueError("event_time must be timezone-aware")
        if self._closed:
            return
        config = self._config
        now = self._clock()
        event_time = min(event_time, now)  # a clock ahead of ours must not move the end
        self._forget_stale_stream()
        clip = self._clip
        event_dts = self._event_dts(event_time, now)
        if clip is not None:
            clip.triggers += 1
            new_end_wall = event_time + timedelta(seconds=config.post_roll)
            if clip.end_dts is None:
                assert clip.end_wall is not None
                clip.end_wall = max(clip.end_wall, new_end_wall)
            else:
                if event_dts is None:  # the stream went quiet: go by the clip's anchor
                    assert clip.anchor_dts is not None
                    assert clip.anchor_wall is not None
                    new_end = clip.anchor_dts + _ticks(
                        (new_end_wall - clip.anchor_wall).total_seconds()
                    )
                else:
                    new_end = event_dts + _ticks(config.post_roll)
                clip.end_dts = max(clip.end_dts, new_end)
            self._arm_clip_timer(clip)
            return
        if event_dts is None:
            # No live stream: the clip starts at the next keyframe, if one comes in time.
            clip = self._new_recording(reason, event_time)
            clip.end_wall = event_time + timedelta(seconds=config.post_roll)
        else:
            preroll = self._ring.since(event_dts - _ticks(config.pre_roll))
            start_dts = preroll[0].dts if preroll and preroll[0].dts is not None else event_dts
            start_wall = event_time + _span(start_dts - event_dts)
            clip = self._new_recording(reason, start_wall)
            clip.anchor_dts, clip.anchor_wall = event_dts, event_time
            clip.end_dts = event_dts + _ticks(config.post_roll)
            end_dts = clip.end_dts
            self._submit(clip, [p for p in preroll if p.dts is not None and p.dts < end_dts])
            self._submit_audio(clip, list(self._audio_ring))
        self._clip = clip
        _LOGGER.debug(
            "%s: %s at %s, recording clip %s", self._doorbell_id, reason, event_time, clip.id
        )
        if (
            clip.end_dts is not None
            and self._last_dts is not None
            and self._last_dts >= clip.end_dts
        ):
            self._close_recording(clip)  # the event is older than the post-roll
        else:
            self._arm_clip_timer(clip)

    def feed(self, packet: VideoPacket) -> None:
        """Take the next packet of the stream (the relay subscription calls this)."""
        if self._closed:
            return
        normalised = _normalise(packet)
        if normalised is None or (
            self._last_dts is not None
            and normalised.dts is not None
            and normalised.dts <= self._last_dts
        ):
            self.stats.packets_dropped += 1
            return
        packet = normalised
        dts = packet.dts
        assert dts is not None
        if self._last_dts is not None and dts - self._last_dts > _GAP_TICKS:
            self._ring.clear()
            if self._segment is not None:
                self._close_recording(self._segment)
        if packet.is_keyframe:
            packet = self._with_parameter_sets(packet)
        self._last_dts = dts
        self._last_arrival = asyncio.get_running_loop().time()
        self.stats.packets += 1
        if self._clip is not None:
            self._feed_clip(self._clip, packet)
        if self._config.continuous:
            self._feed_segment(packet)
        self._ring.push(packet)

    # --- clips and segments ---------------------------------------------------------------

    def _feed_clip(self, clip: _Recording, packet: VideoPacket) -> None:
        dts = packet.dts
        assert dts is not None
        if clip.anchor_dts is None:
            # The first packet after an event that found no stream: from now on the
            # clip's end is measured in stream time like any other.
            now = self._clock()
            assert clip.end_wall is not None
            clip.anchor_dts, clip.anchor_wall = dts, now
            clip.end_dts = dts + max(0, _ticks((clip.end_wall - now).total_seconds()))
        assert clip.end_dts is not None
        if dts >= clip.end_dts:
            self._close_recording(clip)
            return
        if (
            packet.is_keyframe
            and clip.start_dts is not None
            and dts - clip.start_dts >= _ticks(self._config.max_clip)
        ):
            self._close_recording(clip)
            clip = self._continue_clip(clip, packet)
        self._submit(clip, [packet])

    def _continue_clip(self, previous: _Recording, keyframe: VideoPacket) -> _Recording:
        assert keyframe.dts is not None
        clip = self._new_recording(previous.reason, previous.wall(keyframe.dts))
        clip.anchor_dts, clip.anchor_wall = previous.anchor_dts, previous.anchor_wall
        clip.end_dts = previous.end_dts
        self._clip = clip
        self._arm_clip_timer(clip)
        return clip

    def _feed_segment(self, packet: VideoPacket) -> None:
        dts = packet.dts
        assert dts is not None
        segment = self._segment
        if segment is not None and packet.is_keyframe and self._segment_over(segment, dts):
            self._close_recording(segment)
            segment = None
        if segment is None:
            if not packet.is_keyframe:
                return
            now = self._clock()
            segment = self._new_recording(REASON_CONTINUOUS, now, continuous=True)
            segment.anchor_dts, segment.anchor_wall = dts, now
            self._segment = segment
            self._arm_segment_timer(segment)
        self._submit(segment, [packet])

    def _segment_over(self, segment: _Recording, dts: int) -> bool:
        """True when ``segment`` has its length, or failed long enough ago to retry."""
        if segment.failed_dts is not None:
            wait = self._config.segment_retry * 2 ** max(0, self._segment_failures - 1)
            return dts - segment.failed_dts >= _ticks(min(wait, self._config.segment))
        return segment.start_dts is not None and dts - segment.start_dts >= _ticks(
            self._config.segment
        )

    def _new_recording(
        self, reason: str, start_wall: datetime, *, continuous: bool = False
    ) -> _Recording:
        clip_id = self._store.new_clip_id(start_wall)
        writer = ClipWriter(self._store.temp_path(clip_id), audio=self._config.audio)
        return _Recording(clip_id, reason, writer, continuous)

    def _submit(self, recording: _Recording, packets: Sequence[VideoPacket]) -> None:
        """Hand packets to the worker thread (the loop keeps the bookkeeping)."""
        if recording.failed:
            return
        accepted: list[VideoPacket] = []
        for packet in packets:
            dts = packet.dts
            assert dts is not None
            if recording.start_dts is None:
                if not packet.is_keyframe:
                    continue  # a file must start with a picture it can decode
                recording.start_dts = dts
            elif recording.last_dts is not None:
                if dts <= recording.last_dts:
                    continue
                recording.last_duration = dts - recording.last_dts
            recording.last_dts = dts
            accepted.append(packet)
        if not accepted:
            return
        size = sum(packet.size for packet in accepted)
        if self._pending_bytes + size > self._config.max_pending_bytes:
            self._fail(recording, RecordingError("the disk is too slow to keep up; clip dropped"))
            return
        self._pending_bytes += size
        future = self._run(recording.writer.write, accepted)
        future.add_done_callback(functools.partial(self._write_done, recording, size))

    def _write_done(self, recording: _Recording, size: int, future: asyncio.Future[Any]) -> None:
        self._pending_bytes -= size
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self._fail(recording, recording_error(error, "recording failed"))

    def _close_recording(self, recording: _Recording) -> None:
        """Detach ``recording`` and have the worker finish (or drop) its file."""
        if recording.timer is not None:
            recording.timer.cancel()
            recording.timer = None
        if self._clip is recording:
            self._clip = None
        if self._segment is recording:
            self._segment = None
        if recording.failed or recording.start_dts is None or recording.last_dts is None:
            # Nothing worth keeping (or the writer already gave up): remove any file.
            self._run(recording.writer.abort)
            return
        start = recording.wall(recording.start_dts)
        end = recording.wall(recording.last_dts + recording.last_duration)
        future = self._run(
            self._finish_blocking,
            recording.writer,
            recording.id,
            recording.reason,
            recording.triggers,
            start,
            end,
        )
        future.add_done_callback(functools.partial(self._finished, recording))

    def _finish_blocking(
        self,
        writer: ClipWriter,
        clip_id: str,
        reason: str,
        triggers: int,
        start: datetime,
        end: datetime,
    ) -> ClipRecord:
        """On the worker thread: close the file and publish it in the store."""
        try:
            size = writer.finish()
            record = ClipRecord(clip_id, self._doorbell_id, start, end, size, reason, triggers)
            return self._store.commit(record)
        except RecordingError:
            writer.abort()
            self._store.discard(clip_id)
            raise

    def _finished(self, recording: _Recording, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self._fail(recording, recording_error(error, "saving the clip failed"))
            return
        record: ClipRecord = future.result()
        if recording.continuous:
            self.stats.segments_written += 1
            self._segment_failures = 0
        else:
            self.stats.clips_written += 1
        self.stats.bytes_written += record.size
        _LOGGER.debug("%s: saved clip %s (%d bytes)", self._doorbell_id, record.id, record.size)
        if self._on_clip is not None:
            try:
                self._on_clip(record)
            except Exception:
                _LOGGER.exception("%s: clip listener failed", self._doorbell_id)

    def _fail(self, recording: _Recording, error: RecordingError) -> None:
        """Give up on one recording, once; it is reported and its file removed."""
        if recording.failed:
            return
        recording.failed = True
        if recording.continuous:
            self._segment_failures += 1
            recording.failed_dts = self._last_dts if self._last_dts is not None else 0
        self._run(recording.writer.abort)
        self.stats.failures += 1
        self.stats.last_error = str(error)
        _LOGGER.warning("%s: %s", self._doorbell_id, error)
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception:
                _LOGGER.exception("%s: error listener failed", self._doorbell_id)

    # --- timers --------------------------------------------------------------------------

    def _arm_clip_timer(self, clip: _Recording) -> None:
        """Close ``clip`` if the stream stalls past its post-roll."""
        if clip.timer is not None:
            clip.timer.cancel()
        delay = self._remaining(clip) + self._config.stall_grace
        clip.timer = asyncio.get_running_loop().call_later(delay, self._clip_timer, clip)

    def _clip_timer(self, clip: _Recording) -> None:
        clip.timer = None
        if clip is not self._clip:
            return
        if self._idle() < self._config.stall_grace and self._remaining(clip) > 0:
            # Packets still flow (slower than real time): the stream decides the end.
            self._arm_clip_timer(clip)
            return
        _LOGGER.debug("%s: stream stalled, closing clip %s", self._doorbell_id, clip.id)
        self._close_recording(clip)

    def _arm_segment_timer(self, segment: _Recording) -> None:
        segment.timer = asyncio.get_running_loop().call_later(
            _STALE_STREAM_SECONDS, self._segment_timer, segment
        )

    def _segment_timer(self, segment: _Recording) -> None:
        segment.timer = None
        if segment is not self._segment:
            return
        if self._idle() < _STALE_STREAM_SECONDS:
            self._arm_segment_timer(segment)
        else:
            self._close_recording(segment)

    def _remaining(self, clip: _Recording) -> float:
        """Seconds of post-roll still to come."""
        if clip.end_dts is not None and self._last_dts is not None:
            return max(0.0, (clip.end_dts - self._last_dts) / VIDEO_CLOCK_RATE)
        if clip.end_wall is not None:
            return max(0.0, (clip.end_wall - self._clock()).total_seconds())
        return 0.0

    def _idle(self) -> float:
        if self._last_arrival is None:
            return float("inf")
        return asyncio.get_running_loop().time() - self._last_arrival

    # --- helpers -------------------------------------------------------------------------

    def _event_dts(self, event_time: datetime, now: datetime) -> int | None:
        """Where ``event_time`` falls in stream time (None without a live stream)."""
        if self._last_dts is None:
            return None
        lag = max(0.0, (now - event_time).total_seconds())
        return self._last_dts - _ticks(lag)

    def _forget_stale_stream(self) -> None:
        if self._last_dts is not None and self._idle() > _STALE_STREAM_SECONDS:
            self._ring.clear()
            self._last_dts = None

    def _with_parameter_sets(self, keyframe: VideoPacket) -> VideoPacket:
        """Remember the stream's SPS/PPS, and put them in front of a keyframe that lacks
        them: every clip starts with a keyframe, and its ``avcC`` is built from it."""
        sps, pps = parameter_sets(keyframe.payload)
        if sps is not None and pps is not None:
            self._parameter_sets = annexb_join([sps, pps])
            return keyframe
        if self._parameter_sets is None:
            return keyframe
        return replace(keyframe, payload=self._parameter_sets + keyframe.payload)

    def _run(self, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().run_in_executor(self._executor, func, *args)
        self._inflight.add(future)
        future.add_done_callback(self._retire)
        return future

    def _retire(self, future: asyncio.Future[Any]) -> None:
        self._inflight.discard(future)
        if not future.cancelled() and future.exception() is not None:
            # Read here so an abort that failed is logged once, not as "never retrieved".
            _LOGGER.debug("%s: worker job failed: %r", self._doorbell_id, future.exception())


def _normalise(packet: VideoPacket) -> VideoPacket | None:
    """The packet with a dts, on the 90 kHz clock; None when it has no time at all."""
    dts = packet.dts if packet.dts is not None else packet.pts
    if dts is None:
        return None
    if packet.time_base == VIDEO_TIME_BASE:
        return packet if packet.dts is not None else replace(packet, dts=dts)
    scale = packet.time_base * VIDEO_CLOCK_RATE
    pts = None if packet.pts is None else round(packet.pts * scale)
    return replace(packet, pts=pts, dts=round(dts * scale), time_base=VIDEO_TIME_BASE)

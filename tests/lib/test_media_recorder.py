"""The recorder: pre-roll ring, event clips, extension, continuous segments, disk full.

Most tests feed real H.264 (a few frames encoded once with libx264 baseline) straight
into ``Recorder.feed`` with a fake wall clock, so clip boundaries are checked in stream
time without waiting for real time. One test records from the reference doorbell over
loopback through the relay, as the integration does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
import errno
import itertools
from pathlib import Path
import time

import aiohttp
from hypothesis import given, settings, strategies as st
import pytest

from custom_components.doorstep.device.client import DoorstepClient
from custom_components.doorstep.media import (
    VIDEO_CLOCK_RATE,
    Backoff,
    ClipRecord,
    ClipStore,
    ClipWriter,
    MediaRelay,
    PreRollBuffer,
    Recorder,
    RecorderConfig,
    RecordingError,
    StorageFull,
    StreamSource,
    VideoPacket,
)
from custom_components.doorstep.media.h264 import parameter_sets
from custom_components.doorstep.media.recorder_preroll import preroll_byte_budget
from reference_doorbell.doorbell import Doorbell

from .test_media_recorder_helpers import (
    FPS,
    HEIGHT,
    TICKS,
    WIDTH,
    FakeClock,
    Feeder,
    avcc_parameter_sets,
    inspect_mp4,
    synthetic_stream,
)

GOP_SECONDS = 0.5


def fake_packet(index: int, *, keyframe: bool, size: int = 100) -> VideoPacket:
    return VideoPacket(b"\x00" * size, index * TICKS, index * TICKS, keyframe)


# --- pre-roll ring -------------------------------------------------------------------------


def test_preroll_keeps_the_window_and_starts_on_a_keyframe() -> None:
    ring = PreRollBuffer(seconds=2.0, max_bytes=10**9)
    for index in range(300):
        ring.push(fake_packet(index, keyframe=index % 5 == 0))
        assert ring.packets()[0].is_keyframe
        if index >= 30:
            # At least the window, less than the window plus one GOP.
            assert 2.0 <= ring.seconds < 2.0 + GOP_SECONDS
    assert len(ring) <= 25


def test_preroll_drops_packets_until_the_first_keyframe() -> None:
    ring = PreRollBuffer(seconds=1.0, max_bytes=10**6)
    for index in range(3):
        ring.push(fake_packet(index, keyframe=False))
    assert len(ring) == 0
    assert ring.dropped_packets == 3
    ring.push(fake_packet(3, keyframe=True))
    assert len(ring) == 1


def test_preroll_byte_cap_drops_whole_gops() -> None:
    ring = PreRollBuffer(seconds=10.0, max_bytes=2_000)
    for index in range(100):
        ring.push(fake_packet(index, keyframe=index % 5 == 0, size=100))
        assert ring.bytes <= 2_000
        assert ring.packets()[0].is_keyframe
    assert ring.seconds < 2.0  # the bytes, not the 10 s, were the binding limit


def test_preroll_gop_bigger_than_the_cap_waits_for_the_next_keyframe() -> None:
    ring = PreRollBuffer(seconds=10.0, max_bytes=250)
    ring.push(fake_packet(0, keyframe=True))
    ring.push(fake_packet(1, keyframe=False))
    ring.push(fake_packet(2, keyframe=False))  # 300 bytes in one GOP: nothing fits
    assert len(ring) == 0
    ring.push(fake_packet(3, keyframe=False))
    assert len(ring) == 0
    ring.push(fake_packet(4, keyframe=True))
    assert [p.dts for p in ring.packets()] == [4 * TICKS]


def test_preroll_since_starts_at_the_keyframe_before() -> None:
    ring = PreRollBuffer(seconds=5.0, max_bytes=10**6)
    for index in range(30):
        ring.push(fake_packet(index, keyframe=index % 5 == 0))
    assert ring.since(17 * TICKS)[0].dts == 15 * TICKS
    assert ring.since(15 * TICKS)[0].dts == 15 * TICKS
    assert ring.since(-1)[0].dts == 0  # before the ring: all of it


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 5_000), st.booleans(), st.integers(1, 20)), max_size=200),
    st.floats(0, 5),
    st.integers(1, 30_000),
)
def test_preroll_invariants(
    steps: list[tuple[int, bool, int]], seconds: float, max_bytes: int
) -> None:
    ring = PreRollBuffer(seconds, max_bytes)
    dts = 0
    for size, keyframe, step in steps:
        dts += step * 900
        ring.push(VideoPacket(b"x" * size, dts, dts, keyframe))
        held = ring.packets()
        assert ring.bytes == sum(p.size for p in held) <= max(max_bytes, 0)
        if held:
            assert held[0].is_keyframe
            # Never more than needed: the second keyframe is still inside the window.
            keyframes = [p.dts for p in held if p.is_keyframe]
            if len(keyframes) >= 2:
                assert keyframes[1] is not None
                assert keyframes[1] > dts - round(seconds * VIDEO_CLOCK_RATE)


def test_preroll_budget_is_bitrate_times_seconds_with_a_hard_cap() -> None:
    assert preroll_byte_budget(10, 8_000_000, 10**9) == 12_000_000  # 1 MB/s over 10 s + 2 s
    assert preroll_byte_budget(10, 8_000_000, 5_000_000) == 5_000_000
    assert RecorderConfig(pre_roll=4, max_bitrate=800_000).preroll_bytes == 600_000
    with pytest.raises(ValueError, match="post-roll"):
        RecorderConfig(post_roll=0)
    with pytest.raises(ValueError, match="bitrate"):
        RecorderConfig(max_bitrate=0)


# --- event clips ----------------------------------------------------------------------------


class Harness:
    """A recorder on a temporary clip store, with its callbacks collected."""

    def __init__(self, root: Path, config: RecorderConfig, seconds: float = 20.0) -> None:
        self.store = ClipStore(root)
        self.clock = FakeClock()
        self.clips: list[ClipRecord] = []
        self.errors: list[RecordingError] = []
        self.events: list[str] = []
        self.recorder = Recorder(
            self.store,
            "front",
            config,
            clock=self.clock,
            on_clip=self._clip,
            on_error=self.errors.append,
        )
        self.feeder = Feeder(self.recorder, self.clock, synthetic_stream(seconds))

    def _clip(self, record: ClipRecord) -> None:
        self.events.append(f"clip {record.id}")
        self.clips.append(record)

    def trigger(self, reason: str = "ring") -> None:
        self.recorder.trigger(self.clock(), reason)

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.store.root.iterdir() if p.name.endswith(".part"))


@pytest.fixture
async def harness_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(config: RecorderConfig, seconds: float = 20.0) -> Harness:
        harness = Harness(tmp_path / f"clips{len(made)}", config, seconds)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.recorder.close()


async def test_event_clip_is_a_playable_mp4_of_pre_and_post_roll(
    harness_factory: Callable[..., Harness],
) -> None:
    h = harness_factory(RecorderConfig(pre_roll=2.0, post_roll=2.0))
    h.feeder.seconds(5.05)  # trigger just after a keyframe: the start lands a GOP early
    trigger_dts = h.feeder.last_dts
    trigger_wall = h.clock()
    h.trigger()
    h.feeder.seconds(3)
    await h.recorder.drain()

    assert len(h.clips) == 1
    record = h.clips[0]
    assert record.doorbell_id == "front"
    assert record.reason == "ring"
    path = h.store.root / f"{record.id}.mp4"
    assert path.stat().st_size == record.size
    assert path.stat().st_mode & 0o777 == 0o600
    assert h.leftovers() == []

    facts = inspect_mp4(path)
    assert facts.first_is_keyframe
    assert (facts.width, facts.height) == (WIDTH, HEIGHT)
    # Starts at the last keyframe at or before trigger - 2 s, ends 2 s after the trigger.
    expected_start = (trigger_dts - 2 * VIDEO_CLOCK_RATE) // (5 * TICKS) * (5 * TICKS)
    expected = (trigger_dts + 2 * VIDEO_CLOCK_RATE - expected_start) / VIDEO_CLOCK_RATE
    assert facts.duration == pytest.approx(expected, abs=1 / FPS)
    assert 4.0 <= facts.duration < 4.0 + GOP_SECONDS + 1 / FPS
    assert facts.frames == round(facts.duration * FPS)
    # The avcC record carries the stream's own parameter sets: no transcoding happened.
    sps, pps = avcc_parameter_sets(facts.extradata)
    first_sps, first_pps = parameter_sets(h.feeder.packets[0].payload)
    assert sps == [first_sps]
    assert pps == [first_pps]
    # Wall times line up with the clock the events came in on.
    assert record.end - record.start == pytest.approx(timedelta(seconds=facts.duration), abs=0.15)
    assert abs((trigger_wall - record.start).total_seconds() - 2.0) <= GOP_SECONDS + 0.15
    # The sharing gate sees it.
    assert [c.id for c in h.store.clips_in_window(record.start, record.end, None)] == [record.id]


async def test_second_trigger_extends_the_open_clip(
    harness_factory: Callable[..., Harness],
) -> None:
    h = harness_factory(RecorderConfig(pre_roll=1.0, post_roll=2.0))
    h.feeder.seconds(3)
    h.trigger("motion")
    h.feeder.seconds(1.5)
    second_dts = h.feeder.last_dts
    h.trigger("ring")
    h.feeder.seconds(1.5)  # past the first post-roll, inside the second
    await h.recorder.drain()
    assert h.clips == []
    assert h.recorder.recording
    h.feeder.seconds(1)
    await h.recorder.drain()

    assert len(h.clips) == 1
    record = h.clips[0]
    assert record.triggers == 2
    assert record.reason == "motion"
    facts = inspect_mp4(h.store.root / f"{record.id}.mp4")
    assert facts.first_is_keyframe
    last_frame_dts = second_dts + 2 * VIDEO_CLOCK_RATE - TICKS
    assert facts.duration >= (last_frame_dts - (3 - 1) * VIDEO_CLOCK_RATE) / VIDEO_CLOCK_RATE
    assert h.recorder.stats.clips_written == 1


async def test_clip_is_finished_by_the_first_packet_past_the_post_roll(
    harness_factory: Callable[..., Harness],
) -> None:
    h = harness_factory(RecorderConfig(pre_roll=1.0, post_roll=1.0))
    h.feeder.seconds(2)
    h.trigger()
    # The frame the trigger came with and the 9 after it are the 1 s post-roll.
    h.feeder.frames(FPS - 1)
    await h.recorder.drain()
    assert h.clips == []
    h.feeder.frames(1)  # the first frame past the end closes the clip
    await h.recorder.drain()  # only the worker's close/fsync/rename stand between
    assert len(h.clips) == 1
    assert not h.recorder.recording


async def test_stalled_stream_still_finishes_the_clip_soon_after_the_post_roll(
    harness_factory: Callable[..., Harness],
) -> None:
    post_roll = 0.3
    h = harness_factory(RecorderConfig(pre_roll=1.0, post_roll=post_roll, stall_grace=0.1))
    h.feeder.seconds(2)
    done = asyncio.Event()
    h.recorder._on_clip = lambda record: done.set()
    started = time.monotonic()
    h.trigger()
    # No packet comes after the trigger: a timer has to close the clip.
    async with asyncio.timeout(3):
        await done.wait()
    elapsed = time.monotonic() - started
    # Loose on purpose (shared CI cores): the post-roll plus the grace plus disk work.
    assert elapsed < post_roll + 1.0
    assert h.leftovers() == []


async def test_long_events_are_split_at_keyframes(harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(RecorderConfig(pre_roll=0.5, post_roll=3.0, max_clip=1.0))
    h.feeder.seconds(1)
    h.trigger()
    h.feeder.seconds(4)
    await h.recorder.drain()
    assert len(h.clips) >= 3
    for earlier, later in itertools.pairwise(h.clips):
        assert later.start == earlier.end  # no frame lost or doubled between parts
    for record in h.clips:
        facts = inspect_mp4(h.store.root / f"{record.id}.mp4")
        assert facts.first_is_keyframe
        assert facts.duration <= 1.0 + GOP_SECONDS


async def test_trigger_before_the_stream_starts_records_from_the_first_keyframe(
    harness_factory: Callable[..., Harness],
) -> None:
    h = harness_factory(RecorderConfig(pre_roll=2.0, post_roll=1.0))
    h.trigger()
    h.feeder.packets = h.feeder.packets[2:]  # join mid-GOP: two frames are undecodable
    h.feeder.seconds(2)
    await h.recorder.drain()
    assert len(h.clips) == 1
    facts = inspect_mp4(h.store.root / f"{h.clips[0].id}.mp4")
    assert facts.first_is_keyframe
    assert facts.duration == pytest.approx(1.0 - 3 / FPS, abs=1 / FPS)


async def test_trigger_with_no_stream_at_all_leaves_nothing(
    harness_factory: Callable[..., Harness],
) -> None:
    h = harness_factory(RecorderConfig(post_roll=0.1, stall_grace=0.05))
    h.trigger()
    await asyncio.sleep(0.3)
    await h.recorder.drain()
    assert not h.recorder.recording
    assert h.clips == []
    assert h.errors == []
    assert list(h.store.root.iterdir()) == []


async def test_continuous_recording_in_segments(harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(RecorderConfig(continuous=True, segment=1.0))
    h.feeder.seconds(3.2)
    await h.recorder.close()
    segments = [c for c in h.clips if c.reason == "continuous"]
    assert len(segments) == 4  # 1 s, 1 s, 1 s and the 0.2 s left open at close
    assert h.recorder.stats.segments_written == 4
    for earlier, later in itertools.pairwise(segments):
        assert later.start == earlier.end
    total = 0.0
    for record in segments:
        facts = inspect_mp4(h.store.root / f"{record.id}.mp4")
        assert facts.first_is_keyframe
        total += facts.duration
    assert total == pytest.approx(3.2, abs=1e-6)


# --- disk full --------------------------------------------------------------------------------


def _failing_mux(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Make the disk full while the returned flag list holds True."""
    real_mux = ClipWriter._mux
    full = [False]

    def mux(writer: ClipWriter, packet: VideoPacket, duration: int) -> None:
        if full[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_mux(writer, packet, duration)

    monkeypatch.setattr(ClipWriter, "_mux", mux)
    return full


async def _feed_in_steps(h: Harness, seconds: float, step: float = 0.1) -> None:
    """Feed with the worker's results taken in between, as a live stream would."""
    for _ in range(round(seconds / step)):
        h.feeder.seconds(step)
        await h.recorder.drain()


async def test_failed_segment_is_retried_soon_not_at_its_planned_end(
    harness_factory: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Space freed a moment after a full disk: recording resumes after the retry delay,
    not after the rest of a long segment."""
    h = harness_factory(RecorderConfig(continuous=True, segment=60.0, segment_retry=0.5))
    full = _failing_mux(monkeypatch)
    await _feed_in_steps(h, 1.0)
    full[0] = True
    await _feed_in_steps(h, 0.2)
    assert len(h.errors) == 1
    assert isinstance(h.errors[0], StorageFull)
    assert h.leftovers() == []
    full[0] = False
    await _feed_in_steps(h, 2.0)
    await h.recorder.close()
    assert len(h.errors) == 1
    [segment] = h.clips
    # Writing failed at 1.0 s (the writer holds one frame back); the first keyframe at
    # least 0.5 s later is the one at 1.5 s. Without the retry, nothing until 60 s.
    assert segment.duration.total_seconds() == pytest.approx(3.2 - 1.5, abs=1e-6)
    assert inspect_mp4(h.store.root / f"{segment.id}.mp4").first_is_keyframe


async def test_segment_retries_back_off_while_the_disk_stays_full(
    harness_factory: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waits of 0.5, 1, 2, then 4 s between tries: four failures in eight seconds where a
    fixed delay would make eight."""
    h = harness_factory(RecorderConfig(continuous=True, segment=60.0, segment_retry=0.5))
    full = _failing_mux(monkeypatch)
    full[0] = True
    await _feed_in_steps(h, 8.0)
    # Failures at 0.1, 1.1, 2.6 and 5.1 s (each try starts at a keyframe, every 0.5 s).
    assert len(h.errors) == 4
    assert h.clips == []
    assert h.leftovers() == []
    # Space again: the next try, at the first keyframe 4 s after the last failure
    # (9.5 s), saves a segment.
    full[0] = False
    await _feed_in_steps(h, 4.5)
    await h.recorder.close()
    assert len(h.errors) == 4
    [segment] = h.clips
    assert segment.duration.total_seconds() == pytest.approx(12.5 - 9.5, abs=1e-6)


async def test_disk_full_while_writing_removes_the_partial_and_reports(
    harness_factory: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness_factory(RecorderConfig(pre_roll=1.0, post_roll=1.0))
    real_mux = ClipWriter._mux
    partials: list[bool] = []

    def full_disk(writer: ClipWriter, packet: VideoPacket, duration: int) -> None:
        if writer.packets_written >= 8:
            partials.append(writer.path.exists())
            raise OSError(errno.ENOSPC, "No space left on device")
        real_mux(writer, packet, duration)

    monkeypatch.setattr(ClipWriter, "_mux", full_disk)
    h.feeder.seconds(2)
    h.trigger()
    h.feeder.seconds(0.5)
    await h.recorder.drain()

    assert partials == [True]  # there was a partial file, and it is gone now
    assert len(h.errors) == 1
    assert isinstance(h.errors[0], StorageFull)
    assert h.leftovers() == []
    assert list(h.store.root.iterdir()) == []
    assert h.recorder.stats.failures == 1

    # The rest of this event goes nowhere and reports nothing more...
    h.feeder.seconds(1)
    await h.recorder.drain()
    assert len(h.errors) == 1
    assert h.clips == []
    # ...and once there is space again, the next event is recorded.
    monkeypatch.setattr(ClipWriter, "_mux", real_mux)
    h.trigger()
    h.feeder.seconds(1.5)
    await h.recorder.drain()
    assert len(h.clips) == 1
    assert inspect_mp4(h.store.root / f"{h.clips[0].id}.mp4").first_is_keyframe


async def test_disk_full_while_publishing_removes_every_file(
    harness_factory: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    from custom_components.doorstep.media import clips as clips_module

    def full_disk(path: Path, data: bytes) -> None:
        path.write_bytes(data[:3])  # a torn sidecar
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(clips_module, "write_synced", full_disk)
    h = harness_factory(RecorderConfig(pre_roll=1.0, post_roll=1.0))
    h.feeder.seconds(2)
    h.trigger()
    h.feeder.seconds(1.2)
    await h.recorder.drain()
    assert [type(e) for e in h.errors] == [StorageFull]
    assert list(h.store.root.iterdir()) == []
    assert h.store.list_clips() == []


async def test_other_write_errors_are_reported_as_recording_errors(
    harness_factory: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(writer: ClipWriter, packet: VideoPacket, duration: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(ClipWriter, "_mux", broken)
    h = harness_factory(RecorderConfig(pre_roll=1.0, post_roll=0.5))
    h.feeder.seconds(2)
    h.trigger()
    h.feeder.seconds(1)
    await h.recorder.drain()
    assert len(h.errors) == 1
    assert type(h.errors[0]) is RecordingError
    assert list(h.store.root.iterdir()) == []


# --- the writer on its own ---------------------------------------------------------------------


def test_writer_skips_to_the_first_keyframe_and_drops_time_going_backwards(
    tmp_path: Path,
) -> None:
    packets = synthetic_stream(2)
    writer = ClipWriter(tmp_path / "clip.mp4.part")
    writer.write(packets[2:6])  # two before the keyframe at index 5 are skipped
    writer.write([packets[4]])  # older than what was written
    writer.write(packets[6:])
    size = writer.finish()
    facts = inspect_mp4(writer.path)
    assert size == writer.path.stat().st_size
    assert facts.first_is_keyframe
    assert facts.frames == 15
    assert writer.packets_skipped == 4


def test_writer_without_a_keyframe_saves_nothing(tmp_path: Path) -> None:
    writer = ClipWriter(tmp_path / "clip.mp4.part")
    writer.write(synthetic_stream(1)[1:4])
    with pytest.raises(RecordingError):
        writer.finish()
    assert not writer.path.exists()


# --- from the reference doorbell -----------------------------------------------------------------


@pytest.fixture
async def client(bell: Doorbell, session: aiohttp.ClientSession) -> DoorstepClient:
    doorstep = DoorstepClient(session, "127.0.0.1", bell.port, fingerprint=bell.fingerprint)
    doorstep.set_token(await doorstep.pair(bell.pairing_code, "recorder tests"))
    return doorstep


async def test_records_a_clip_from_the_reference_doorbell(
    client: DoorstepClient, tmp_path: Path
) -> None:
    store = ClipStore(tmp_path / "clips")
    source = StreamSource.from_doorbell(client, backoff=Backoff(initial=0.05, maximum=0.2))
    relay = MediaRelay(source.packets, grace_period=0)
    saved: asyncio.Queue[ClipRecord] = asyncio.Queue()
    recorder = Recorder(
        store, "front", RecorderConfig(pre_roll=0.5, post_roll=1.0), on_clip=saved.put_nowait
    )
    try:
        recorder.attach(relay)
        assert relay.viewer_count == 0  # the recorder does not count as a live viewer
        async with asyncio.timeout(5):
            while recorder.stats.packets < 10:  # noqa: ASYNC110 - polling a counter
                await asyncio.sleep(0.05)
        recorder.trigger(datetime.now(UTC), "ring")
        async with asyncio.timeout(5):
            record = await saved.get()
    finally:
        await recorder.close()
        await relay.close()
    facts = inspect_mp4(store.root / f"{record.id}.mp4")
    assert facts.first_is_keyframe
    assert (facts.width, facts.height) == (640, 360)
    assert facts.frames > 10
    assert facts.duration >= 1.0
    assert store.list_clips() == [record]

"""Recorder benchmark: how soon a clip is on disk after its post-roll, and what the
pre-roll costs in memory.

    python -m benchmarks.recorder            both measurements at 720p30 and 1080p30
    python -m benchmarks.recorder --quick    fewer events and shorter windows
    scripts/bench --only recorder            the same, then the report

The source is the benchmark's pre-encoded clip (``benchmarks/clip.py``: the reference
doorbell's encoder settings, bitrate and GOP), replayed in real time as the relay would
hand it to the recorder: one access unit every frame period, on a continuous 90 kHz
timeline. Each measurement runs in a child process of its own so that its resident
memory is its own; the clips are written under the user's cache directory, on the same
disk as a Home Assistant config directory, so ``fsync`` costs what it costs there.

Clip cut time is measured from the end of the post-roll on the stream's schedule (the
moment the first packet past the post-roll is due) to the recorder's ``on_clip``
callback, which runs once the MP4 is closed, fsynced and renamed into place. It therefore
includes waiting for that packet, the late frames of a loaded machine, the faststart
rewrite of the file, both fsyncs and the hop back to the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import shutil
import sys
import tempfile
import time
from typing import Any

from benchmarks.clip import CLIP_SECONDS, clip_path, encode_clip, load_clip
from benchmarks.common import (
    REPO,
    load_rooms_without_home_assistant,
    sample_process,
    summary,
    write_json,
)

RESOLUTIONS = {"720p30": (1280, 720, 30), "1080p30": (1920, 1080, 30)}
CUT_TARGET_S = 1.0
PRE_ROLLS = (10, 30)
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "doorstep-bench"


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Replay:
    """The clip's access units, looped onto one increasing 90 kHz timeline."""

    frames: list[tuple[bytes, bool]]
    fps: int

    @classmethod
    def load(cls, label: str) -> Replay:
        width, height, fps = RESOLUTIONS[label]
        frames, container = load_clip(clip_path(CACHE, width, height, fps))
        container.close()
        return cls([(frame.data, frame.keyframe) for frame in frames], fps)

    @property
    def bitrate(self) -> float:
        """Bits per second of the stream."""
        return sum(len(data) for data, _ in self.frames) * 8 * self.fps / len(self.frames)

    def packet(self, index: int) -> Any:
        from custom_components.doorstep.media.packet import VideoPacket

        data, keyframe = self.frames[index % len(self.frames)]
        dts = index * 90_000 // self.fps
        # A fresh copy, as a demuxer hands out: a shared object would make the pre-roll
        # ring look free in the memory figures.
        payload = bytes(memoryview(data))
        return VideoPacket(payload=payload, pts=dts, dts=dts, is_keyframe=keyframe)


class Pacer:
    """Hands out frame indexes at the stream's real-time schedule."""

    def __init__(self, fps: int) -> None:
        self._fps = fps
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self.index = 0
        self.late_frames = 0

    def due(self, index: int) -> float:
        """Loop time at which frame ``index`` is due."""
        return self._start + index / self._fps

    async def next(self) -> int:
        delay = self.due(self.index) - self._loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -1 / self._fps:
            self.late_frames += 1
        index = self.index
        self.index += 1
        return index


# --- children ----------------------------------------------------------------------------


async def child_memory(label: str, pre_roll: float | None, seconds: float) -> dict[str, Any]:
    """Replay for ``seconds``, into a recorder (pre-roll only, no event) or into nothing."""
    load_rooms_without_home_assistant()
    from custom_components.doorstep.media.clips import ClipStore
    from custom_components.doorstep.media.recorder import Recorder, RecorderConfig

    replay = Replay.load(label)
    work = Path(tempfile.mkdtemp(prefix="doorstep-recbench-", dir=CACHE))
    recorder = None
    if pre_roll is not None:
        recorder = Recorder(ClipStore(work), "bench", RecorderConfig(pre_roll=pre_roll))
    pacer = Pacer(replay.fps)
    samples: list[tuple[float, int, int]] = []
    ring_peak = 0
    next_sample = 0.0
    try:
        while pacer.index < seconds * replay.fps:
            index = await pacer.next()
            if recorder is not None:
                recorder.feed(replay.packet(index))
                ring_peak = max(ring_peak, recorder.preroll.bytes)
            elapsed = index / replay.fps
            if elapsed >= next_sample:
                rss = sample_process(os.getpid()).rss_bytes
                ring = recorder.preroll.bytes if recorder is not None else 0
                samples.append((round(elapsed, 2), rss, ring))
                next_sample += 0.5
    finally:
        if recorder is not None:
            ring_seconds = recorder.preroll.seconds
            ring_cap = recorder.config.preroll_bytes
            await recorder.close()
        shutil.rmtree(work, ignore_errors=True)
    result: dict[str, Any] = {
        "label": label,
        "pre_roll_s": pre_roll,
        "seconds": seconds,
        "bitrate_bps": replay.bitrate,
        "rss_end_bytes": samples[-1][1],
        "rss_peak_bytes": max(rss for _, rss, _ in samples),
        # Once the ring is full: the second half of the run.
        "rss_steady_bytes": _mean([rss for t, rss, _ in samples if t >= seconds / 2]),
        "samples": samples,
        "late_frames": pacer.late_frames,
    }
    if recorder is not None:
        result |= {
            "ring_peak_bytes": ring_peak,
            "ring_end_seconds": ring_seconds,
            "ring_cap_bytes": ring_cap,
            # What the window itself holds at the stream's bitrate.
            "window_bytes": replay.bitrate / 8 * (pre_roll or 0),
        }
    return result


async def child_cut(label: str, events: int, pre_roll: float, post_roll: float) -> dict[str, Any]:
    """Trigger ``events`` clips one after another and time each one's finish."""
    load_rooms_without_home_assistant()
    from custom_components.doorstep.media.clips import ClipRecord, ClipStore
    from custom_components.doorstep.media.recorder import Recorder, RecorderConfig

    replay = Replay.load(label)
    work = Path(tempfile.mkdtemp(prefix="doorstep-recbench-", dir=CACHE))
    loop = asyncio.get_running_loop()
    saved: asyncio.Queue[tuple[float, ClipRecord]] = asyncio.Queue()
    recorder = Recorder(
        ClipStore(work),
        "bench",
        RecorderConfig(pre_roll=pre_roll, post_roll=post_roll),
        on_clip=lambda record: saved.put_nowait((loop.time(), record)),
    )
    pacer = Pacer(replay.fps)
    post_roll_frames = round(post_roll * replay.fps)
    cuts: list[dict[str, Any]] = []

    async def feed_forever() -> None:
        while True:
            recorder.feed(replay.packet(await pacer.next()))

    feeder = loop.create_task(feed_forever())
    try:
        await asyncio.sleep(pre_roll + 0.5)  # fill the pre-roll first
        for _ in range(events):
            # Just after a packet was fed, so the event sits exactly on that packet.
            await asyncio.sleep(0)
            last = pacer.index - 1
            recorder.trigger(datetime.now(UTC), "ring")
            end_due = pacer.due(last + post_roll_frames)
            finished_at, record = await asyncio.wait_for(saved.get(), post_roll + 30)
            cuts.append(
                {
                    "cut_s": finished_at - end_due,
                    "clip_s": record.duration.total_seconds(),
                    "size_bytes": record.size,
                }
            )
            log(f"{label}: clip {len(cuts)}/{events} cut in {cuts[-1]['cut_s'] * 1000:.0f} ms")
            # A clip cannot start before the previous one has closed; leave a frame or two.
            await asyncio.sleep(0.1)
    finally:
        feeder.cancel()
        await asyncio.wait([feeder])
        await recorder.close()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "label": label,
        "pre_roll_s": pre_roll,
        "post_roll_s": post_roll,
        "bitrate_bps": replay.bitrate,
        "events": cuts,
        "cut_s": summary([cut["cut_s"] for cut in cuts]),
        "clip_s": summary([cut["clip_s"] for cut in cuts]),
        "size_bytes": summary([cut["size_bytes"] for cut in cuts]),
        "late_frames": pacer.late_frames,
        "failures": recorder.stats.failures,
    }


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


# --- orchestration -----------------------------------------------------------------------


async def _run_child(*args: str) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.recorder",
        "--child",
        *args,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    stdout, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"recorder benchmark child {args} failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


async def main_async(args: argparse.Namespace) -> None:
    started = time.monotonic()
    labels: list[str] = args.resolutions
    for label in labels:
        width, height, fps = RESOLUTIONS[label]
        encode_clip(clip_path(CACHE, width, height, fps), width, height, fps)
    data: dict[str, Any] = {
        "machine": {
            "cores": os.cpu_count(),
            "load_average_start": os.getloadavg(),
        },
        "settings": {
            "events": args.events,
            "pre_roll_s": args.pre_roll,
            "post_roll_s": args.post_roll,
            "memory_seconds": args.memory_seconds,
            "clip_loop_s": CLIP_SECONDS,
            "target_cut_s": CUT_TARGET_S,
        },
    }
    # Memory first, every configuration at once: replaying costs little CPU and each
    # child's resident set is its own.
    log(f"memory: {len(labels) * (1 + len(PRE_ROLLS))} children for {args.memory_seconds:.0f} s")
    jobs = [
        _run_child("memory", label, "none" if pre is None else str(pre), str(args.memory_seconds))
        for label in labels
        for pre in (None, *PRE_ROLLS)
    ]
    memory = await asyncio.gather(*jobs)
    data["memory"] = memory
    data["cut"] = {}
    for label in labels:
        log(f"cut time: {label}, {args.events} events")
        data["cut"][label] = await _run_child(
            "cut", label, str(args.events), str(args.pre_roll), str(args.post_roll)
        )
    data["machine"]["load_average_end"] = os.getloadavg()
    data["duration_s"] = time.monotonic() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "recorder.json", data)
    from benchmarks.recorder_report import plot

    plot(data, out / "recorder.png")
    log(f"wrote {out / 'recorder.json'} and recorder.png ({data['duration_s']:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer events, shorter windows")
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--pre-roll", type=float, default=10.0)
    parser.add_argument("--post-roll", type=float, default=5.0)
    parser.add_argument("--memory-seconds", type=float, default=max(PRE_ROLLS) + 10.0)
    parser.add_argument(
        "--resolutions", nargs="+", default=list(RESOLUTIONS), choices=list(RESOLUTIONS)
    )
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks"))
    args = parser.parse_args()
    if args.child:
        kind, label, *rest = args.child
        if kind == "memory":
            pre = None if rest[0] == "none" else float(rest[0])
            result = asyncio.run(child_memory(label, pre, float(rest[1])))
        else:
            result = asyncio.run(child_cut(label, int(rest[0]), float(rest[1]), float(rest[2])))
        print(json.dumps(result), flush=True)
        return
    if args.quick:
        args.events, args.memory_seconds = 5, 15.0
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

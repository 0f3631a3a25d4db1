"""Small helpers shared by the benchmark processes: clocks, /proc sampling, JSON lines,
block-code reading from decoded frames, and statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import json
import math
import os
from pathlib import Path
import sys
import time
from typing import Any

import av
import numpy as np

from reference_doorbell.blockcode import ROWS, block_size, decode_blockcode

REPO = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
HUB_CORE = 0
VIEWER_CORE = 1
# Debian's Chromium, the browser viewer (never a Playwright download).
CHROMIUM = Path("/usr/bin/chromium")


def now_us() -> int:
    """Wall-clock microseconds: the clock the doorbell stamps capture times with."""
    return time.time_ns() // 1000


def announce(**fields: Any) -> None:
    """One JSON line on stdout: how a child tells the orchestrator it is ready."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def patch_loopback_ice(address: str = "127.0.0.1") -> None:
    """aioice gathers from every interface; the benchmark must only ever use loopback
    (or, to reach Janus, the benchmark's own veth pair)."""
    import aioice.ice  # only the processes that run aiortc need it

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]


@dataclass(frozen=True, slots=True)
class ProcSample:
    """CPU time (all threads) and memory of one process at one moment."""

    at: float
    cpu_seconds: float
    rss_bytes: int


def sample_process(pid: int) -> ProcSample:
    """Read /proc/<pid>/stat (utime + stime) and /proc/<pid>/statm (resident pages)."""
    at = time.monotonic()
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    # The command name may contain spaces; fields resume after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    resident = int(Path(f"/proc/{pid}/statm").read_text(encoding="ascii").split()[1])
    return ProcSample(at, cpu, resident * PAGE_SIZE)


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it (a browser's helpers, say)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii")
        except FileNotFoundError, ProcessLookupError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


class OtherLoad:
    """CPU used by processes outside this run (other work on the machine) between
    creation and :meth:`cores`, for phases without a fixed window, like join loops.

    Only processes alive at both ends count, so short-lived ones are missed: a lower
    bound.
    """

    def __init__(self) -> None:
        self._at = time.monotonic()
        self._first = self._sample()

    @staticmethod
    def _sample() -> dict[int, float]:
        ours = set(process_tree(os.getpid()))
        seconds: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in ours:
                continue
            try:
                seconds[int(entry.name)] = sample_process(int(entry.name)).cpu_seconds
            except FileNotFoundError, ProcessLookupError, ValueError:
                continue
        return seconds

    def cores(self) -> float:
        """Core-seconds per second those processes used since creation."""
        last = self._sample()
        used = sum(last[pid] - cpu for pid, cpu in self._first.items() if pid in last)
        return max(0.0, used) / max(1e-9, time.monotonic() - self._at)


def machine_busy_seconds() -> tuple[float, float]:
    """Core-seconds since boot all cores spent busy, and lost to the hypervisor (steal),
    from /proc/stat."""
    fields = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS


def cpu_rate(first: ProcSample, last: ProcSample) -> float:
    """Core-seconds per second between two samples."""
    return (last.cpu_seconds - first.cpu_seconds) / max(1e-9, last.at - first.at)


def read_frame_code(frame: av.VideoFrame) -> tuple[int, int] | None:
    """The block code of a decoded frame, read from the luma plane only.

    Converting a whole 1080p frame to RGB would cost the viewer more than decoding it;
    the code's white and black blocks are just as clear in luma.
    """
    width, height = frame.width, frame.height
    band = block_size(width) * ROWS
    if band > height:
        return None
    plane = frame.planes[0]
    luma = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
    top = luma[:band, :width]
    return decode_blockcode(np.repeat(top[:, :, np.newaxis], 3, axis=2))


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0-100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, mean, p50, p95, p99 and max of ``values``."""
    return {
        "n": len(values),
        "mean": (sum(values) / len(values)) if values else None,
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` atomically, so a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(path)


def load_rooms_without_home_assistant() -> None:
    """Make ``custom_components.doorstep.media`` / ``.device`` importable without running
    the integration's ``__init__`` (which imports Home Assistant).

    The media and device rooms are HA-free by design; the hub benchmark measures them
    as such, so Home Assistant's own import cost and memory are not in its figures.
    """
    import importlib.util
    import types

    name = "custom_components.doorstep"
    if name in sys.modules:
        return
    import custom_components

    package = types.ModuleType(name)
    package.__path__ = [str(REPO / "custom_components" / "doorstep")]
    package.__spec__ = importlib.util.spec_from_loader(name, loader=None, is_package=True)
    sys.modules[name] = package
    custom_components.doorstep = package  # type: ignore[attr-defined,unused-ignore]

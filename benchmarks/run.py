"""Run the live-view benchmark: hub (passthrough and forced transcoding; aiortc viewers
and one headless Chromium), direct reader, Janus and Home Assistant's LL-HLS, at 720p30
and 1080p30, and write ``docs/benchmarks/live_view.json``.

Every process is a child of this one (and dies with it), pinned with ``taskset``: the
hub (and each peer server in its turn) on core 0, viewers, the doorbell and feeders on
core 1. All traffic is on loopback, except Janus's, which crosses one veth pair into a
namespace this run creates (see :mod:`benchmarks.janus_peer`).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path
import platform
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

import aiohttp

from scripts.lab.procs import ManagedProcess, ProcessFailed, python_env

from . import hass_peer, janus_peer
from .clip import clip_path
from .common import (
    CHROMIUM,
    HUB_CORE,
    REPO,
    VIEWER_CORE,
    OtherLoad,
    ProcSample,
    cpu_rate,
    machine_busy_seconds,
    now_us,
    process_tree,
    sample_process,
)

STEPS = (1, 2, 4, 8, 16)
# Re-encoding takes most of the hub's core at 1080p30; more viewers than this only
# measure a saturated core.
TRANSCODE_STEPS = (1, 2, 4)
RESOLUTIONS = {"720p30": (1280, 720, 30), "1080p30": (1920, 1080, 30)}
HUB_GRACE = 2.0


@dataclass(kw_only=True)
class Settings:
    """Durations and sample sizes of one run (``--quick`` shortens them)."""

    window: float = 10.0
    settle: float = 2.0
    warm_joins: int = 20
    cold_joins: int = 3
    hls_seconds: float = 30.0
    peers: bool = True
    chromium: bool = True
    # Only the Chromium viewer's figures (with one aiortc viewer to keep the relay warm).
    only_chromium: bool = False
    passthrough: bool = True
    transcode: bool = True
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="doorstep-bench-")))
    clips: Path = field(
        default_factory=lambda: (
            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "doorstep-bench"
        )
    )


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


class Lab:
    """The children of one run; all are stopped when it ends."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.children: list[ManagedProcess] = []
        self._started = 0

    def spawn(self, name: str, argv: list[str], core: int | None = None) -> ManagedProcess:
        if core is not None:
            argv = ["taskset", "-c", str(core), *argv]
        # A fresh log per child: announcements are read from it.
        self._started += 1
        log_path = self.work / f"{self._started:02d}-{name}.log"
        proc = ManagedProcess(name=name, argv=argv, log_path=log_path, env=python_env(REPO))
        proc.start()
        self.children.append(proc)
        return proc

    def python(self, name: str, module: str, *args: str, core: int | None) -> ManagedProcess:
        return self.spawn(name, [sys.executable, "-m", module, *args], core)

    def stop(self, proc: ManagedProcess, grace: float = 15.0) -> None:
        proc.stop(grace)
        if proc in self.children:
            self.children.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.children):
            proc.stop(5.0)
        self.children.clear()


async def announced(proc: ManagedProcess, within: float = 60.0) -> dict[str, Any]:
    """The first JSON line a child prints."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for line in proc.log_text().splitlines():
            if line.startswith("{"):
                parsed: dict[str, Any] = json.loads(line)
                return parsed
        if not proc.running():
            raise proc.fail("exited before it was ready")
        await asyncio.sleep(0.1)
    raise proc.fail("not ready in time")


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        return await resp.json()


@dataclass
class Window:
    """One measurement window: wall-clock bounds and per-process CPU/RSS."""

    start_us: int
    end_us: int
    cpu: dict[str, float]
    rss_mb: dict[str, float]
    rss_max_mb: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "start_us": self.start_us,
            "end_us": self.end_us,
            "seconds": (self.end_us - self.start_us) / 1e6,
            "cpu_cores": self.cpu,
            "rss_mb": self.rss_mb,
            "rss_max_mb": self.rss_max_mb,
            **self.extra,
        }


async def measure(procs: dict[str, int | Iterable[int]], seconds: float) -> Window:
    """CPU (core-seconds per second) and RSS of named processes over ``seconds``.

    A name may stand for several processes (all viewers); their figures are summed.
    """
    pids = {name: [p] if isinstance(p, int) else list(p) for name, p in procs.items()}

    def sample() -> dict[str, list[ProcSample]]:
        out: dict[str, list[ProcSample]] = {}
        for name, group in pids.items():
            out[name] = []
            for pid in group:
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    out[name].append(sample_process(pid))
        return out

    first = sample()
    (busy_first, steal_first), busy_at = machine_busy_seconds(), time.monotonic()
    start = now_us()
    rss: dict[str, list[float]] = {name: [] for name in pids}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        for name, samples in sample().items():
            rss[name].append(sum(s.rss_bytes for s in samples) / 2**20)
    last = sample()
    busy_last, steal_last = machine_busy_seconds()
    elapsed = max(1e-9, time.monotonic() - busy_at)
    busy = (busy_last - busy_first) / elapsed
    steal = (steal_last - steal_first) / elapsed
    end = now_us()
    cpu = {
        name: sum(cpu_rate(a, b) for a, b in zip(first[name], last[name], strict=False))
        for name in pids
    }
    window = Window(
        start,
        end,
        cpu,
        {name: sum(v) / len(v) if v else 0.0 for name, v in rss.items()},
        {name: max(v) if v else 0.0 for name, v in rss.items()},
    )
    # Whatever else ran meanwhile: other work on the machine, plus kernel time (softirq)
    # that /proc does not charge to any process.
    window.extra["machine_busy_cores"] = busy
    window.extra["steal_cores"] = steal
    window.extra["other_cores"] = max(0.0, busy - sum(cpu.values()))
    return window


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


# --- one resolution ----------------------------------------------------------------------


@dataclass
class Doorbell:
    proc: ManagedProcess
    port: int
    fingerprint: str
    code: str
    plain_port: int

    @property
    def plain(self) -> str:
        return f"http://127.0.0.1:{self.plain_port}"


async def start_doorbell(lab: Lab, settings: Settings, label: str, mode: str) -> Doorbell:
    width, height, fps = RESOLUTIONS[label]
    proc = lab.python(
        f"doorbell-{label}",
        "benchmarks.doorbell_proc",
        "--state-dir",
        str(settings.work / f"bell-{label}"),
        "--width",
        str(width),
        "--height",
        str(height),
        "--fps",
        str(fps),
        "--mode",
        mode,
        "--clip",
        str(clip_path(settings.clips, width, height, fps)),
        core=VIEWER_CORE,
    )
    info = await announced(proc)
    return Doorbell(proc, info["port"], info["fingerprint"], info["code"], info["plain_port"])


async def wait_connected(http: aiohttp.ClientSession, hub: str, count: int) -> None:
    """Until the hub has ``count`` sessions that are connected and delivering."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stats = await get_json(http, hub)
        live = [s for s in stats["sessions"] if s["connected"] and s["delivered"] > 0]
        if len(live) >= count:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{count} viewers did not connect to the hub within 60 s")


def viewer_layout(step: int, previous: int) -> int:
    """How many viewers the process added at this step holds."""
    return step - previous


async def run_steps(
    lab: Lab,
    settings: Settings,
    tag: str,
    mode: str,
    url: str,
    server_pid: int,
    doorbell: Doorbell,
    extra_procs: dict[str, int],
    *,
    ice_address: str = "127.0.0.1",
    hub_stats: str | None = None,
    on_first_step: Any = None,
    after_first_step: Any = None,
    audience: tuple[int, ...] = STEPS,
) -> tuple[list[dict[str, Any]], list[Path]]:
    """Grow the audience (1, 2, 4, 8, 16 by default) and measure a window at each size."""
    steps: list[dict[str, Any]] = []
    outs: list[Path] = []
    viewers: list[ManagedProcess] = []
    previous = 0
    async with aiohttp.ClientSession() as http:
        for step in audience:
            count = viewer_layout(step, previous)
            out = settings.work / f"{tag}-viewers-{step}.json"
            outs.append(out)
            # The first process holds the one decoding probe; the others only count.
            viewers.append(
                lab.python(
                    f"{tag}-viewers-{step}",
                    "benchmarks.viewer_proc",
                    mode,
                    "--url",
                    url,
                    "--ice-address",
                    ice_address,
                    "--count",
                    str(count),
                    "--decode",
                    "1" if step == 1 else "0",
                    "--join-spread",
                    "2.0",
                    "--name",
                    f"{tag}{step}",
                    "--out",
                    str(out),
                    core=VIEWER_CORE,
                )
            )
            if step == 1 and on_first_step is not None:
                await on_first_step()
            if hub_stats is not None:
                await wait_connected(http, hub_stats, step)
            else:
                await asyncio.sleep(6.0)  # joins are spread over 2 s; ICE and DTLS follow
            await asyncio.sleep(settings.settle)
            before = await get_json(http, hub_stats) if hub_stats is not None else None
            window = await measure(
                {
                    "server": server_pid,
                    "doorbell": doorbell.proc.pid or 0,
                    "viewers": [v.pid or 0 for v in viewers],
                    **extra_procs,
                },
                settings.window,
            )
            if hub_stats is not None:
                window.extra["hub_stats_before"] = before
                window.extra["hub_stats_after"] = await get_json(http, hub_stats)
            window.extra["viewers"] = step
            steps.append(window.to_json())
            log(
                f"  {tag} {step:2d} viewers: server {window.cpu['server']:.3f} cores, "
                f"RSS {window.rss_mb['server']:.1f} MB, viewer core {window.cpu['viewers']:.2f}"
            )
            if step == 1 and after_first_step is not None:
                await after_first_step()
            previous = step
    for proc in viewers:
        lab.stop(proc)
    return steps, outs


def chromium_unavailable() -> str | None:
    """Why the Chromium viewer cannot run on this machine, or None if it can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (Debian package chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed"
    return None


class ChromiumViewer:
    """The headless Chromium viewer's three phases against one hub
    (see :mod:`benchmarks.chromium_peer`); each is a fresh browser process."""

    def __init__(self, lab: Lab, settings: Settings, label: str, hub_url: str) -> None:
        self.lab, self.settings, self.label, self.hub_url = lab, settings, label, hub_url
        self.result: dict[str, Any] = {"available": True}

    def _spawn(self, mode: str, *args: str) -> tuple[ManagedProcess, Path]:
        out = self.settings.work / f"chromium-{mode}-{self.label}.json"
        proc = self.lab.python(
            f"chromium-{mode}-{self.label}",
            "benchmarks.chromium_peer",
            mode,
            "--url",
            self.hub_url,
            "--out",
            str(out),
            *args,
            core=VIEWER_CORE,
        )
        return proc, out

    async def cold(self) -> None:
        """New pages while the relay and doorbell are idle (the gaps outlast the grace)."""
        log(f"{self.label}: Chromium cold joins ({self.settings.cold_joins})")
        proc, out = self._spawn(
            "cold",
            "--joins",
            str(self.settings.cold_joins),
            "--gap-min",
            str(HUB_GRACE + 2.0),
            "--join-spread",
            "0.5",
        )
        other = OtherLoad()
        await wait_exit(proc, 30 + self.settings.cold_joins * 25)
        self.result["cold"] = read_json(out)
        self.result["cold_other_cores"] = other.cores()

    async def warm(self) -> None:
        """Joins at random GOP phases while one aiortc viewer, like the hub steps'
        first (it decodes every frame), keeps the relay running.

        Not inside the 1-viewer step, as the aiortc warm joins are: a browser decoding
        next to that step's probe can leave the probe behind for the step's window.
        """
        keeper = self.lab.python(
            f"keeper-{self.label}",
            "benchmarks.viewer_proc",
            "hub",
            "--url",
            self.hub_url,
            "--count",
            "1",
            "--join-spread",
            "0",
            "--out",
            str(self.settings.work / f"keeper-{self.label}.json"),
            core=VIEWER_CORE,
        )
        try:
            async with aiohttp.ClientSession() as http:
                await wait_connected(http, f"{self.hub_url}/stats", 1)
            await self._warm_joins()
        finally:
            self.lab.stop(keeper)

    async def _warm_joins(self) -> None:
        log(f"{self.label}: Chromium warm joins at random GOP phases ({self.settings.warm_joins})")
        proc, out = self._spawn(
            "warm", "--joins", str(self.settings.warm_joins), "--gap-min", "0.3"
        )
        other = OtherLoad()
        await wait_exit(proc, 30 + self.settings.warm_joins * 5)
        self.result["warm"] = read_json(out)
        self.result["warm_other_cores"] = other.cores()

    async def latency_window(self, hub_pid: int, doorbell: Doorbell) -> None:
        """Chromium alone watching the hub for one window, reading every frame's code."""
        log(f"{self.label}: Chromium latency window")
        proc, out = self._spawn("watch", "--name", f"chromium-{self.label}")
        try:
            await announced(proc)
            async with aiohttp.ClientSession() as http:
                await wait_connected(http, f"{self.hub_url}/stats", 1)
            await asyncio.sleep(self.settings.settle + 1.0)
            window = await measure(
                {
                    "hub": hub_pid,
                    "doorbell": doorbell.proc.pid or 0,
                    # The Python driver, Playwright's driver and every Chromium process.
                    "viewers": process_tree(proc.pid or 0),
                },
                self.settings.window,
            )
            self.result["latency_window"] = window.to_json()
        except (ProcessFailed, TimeoutError) as err:
            self.result["watch_error"] = str(err)
        finally:
            # At SIGTERM the page hands over its frames; give it time to.
            self.lab.stop(proc, 30.0)
        self.result["watch"] = read_json(out)


async def bench_hub_chromium_only(
    lab: Lab, settings: Settings, label: str, doorbell: Doorbell, hub_url: str, hub_pid: int
) -> dict[str, Any]:
    """``--only chromium``: the Chromium viewer's phases, as in the full run."""
    chromium = ChromiumViewer(lab, settings, label, hub_url)
    await chromium.cold()
    await chromium.latency_window(hub_pid, doorbell)
    await chromium.warm()
    return chromium.result


async def join_loop(
    lab: Lab,
    name: str,
    target: list[str],
    *,
    joins: int,
    gap_min: float,
    join_spread: float,
    out: Path,
    seconds_per_join: float,
) -> None:
    """One decoding peer joins ``joins`` times (``viewer_proc joinloop``) on the viewers'
    core, against ``target`` (its --url and, for Janus, --via arguments); the results
    are in ``out``."""
    proc = lab.python(
        name,
        "benchmarks.viewer_proc",
        "joinloop",
        *target,
        "--joins",
        str(joins),
        "--gap-min",
        str(gap_min),
        "--join-spread",
        str(join_spread),
        "--out",
        str(out),
        core=VIEWER_CORE,
    )
    await wait_exit(proc, 20 + joins * seconds_per_join)


async def measure_direct_reader(
    lab: Lab,
    settings: Settings,
    name: str,
    doorbell: Doorbell,
    out: Path,
    *,
    core: int,
    role: str,
) -> Window:
    """Read the doorbell's stream directly (no hub) on ``core`` for one window, and
    measure the doorbell and the reader (named ``role`` in the window)."""
    reader = lab.python(
        name,
        "benchmarks.viewer_proc",
        "direct",
        "--plain",
        doorbell.plain,
        "--doorbell-port",
        str(doorbell.port),
        "--fp",
        doorbell.fingerprint,
        "--out",
        str(out),
        core=core,
    )
    await asyncio.sleep(settings.settle + 2.0)
    try:
        return await measure(
            {"doorbell": doorbell.proc.pid or 0, role: reader.pid or 0}, settings.window
        )
    finally:
        lab.stop(reader)


async def bench_hub(lab: Lab, settings: Settings, label: str, doorbell: Doorbell) -> dict[str, Any]:
    hub = lab.python(
        f"hub-{label}",
        "benchmarks.hub_proc",
        "--doorbell-port",
        str(doorbell.port),
        "--fp",
        doorbell.fingerprint,
        "--code",
        doorbell.code,
        "--grace",
        str(HUB_GRACE),
        core=HUB_CORE,
    )
    hub_url = f"http://127.0.0.1:{(await announced(hub))['port']}"
    hub_pid = hub.pid or 0
    result: dict[str, Any] = {}

    idle = await measure({"hub": hub_pid, "doorbell": doorbell.proc.pid or 0}, 3.0)
    result["idle"] = idle.to_json()
    reason = chromium_unavailable() if settings.chromium else "not asked for (--no-chromium)"
    if settings.only_chromium:
        result["chromium"] = (
            {"available": False, "reason": reason}
            if reason is not None
            else await bench_hub_chromium_only(lab, settings, label, doorbell, hub_url, hub_pid)
        )
        lab.stop(hub)
        return result
    chromium = ChromiumViewer(lab, settings, label, hub_url) if reason is None else None

    log(f"{label}: cold joins (relay and doorbell idle between joins)")
    cold_out = settings.work / f"cold-{label}.json"
    await join_loop(
        lab,
        f"cold-{label}",
        ["--url", hub_url],
        joins=settings.cold_joins,
        gap_min=HUB_GRACE + 2.0,
        join_spread=0.5,
        out=cold_out,
        seconds_per_join=8,
    )
    result["cold"] = read_json(cold_out)
    if chromium is not None:
        await chromium.cold()

    direct_out = settings.work / f"direct-{label}.json"
    marker_out = settings.work / f"marker-{label}.json"
    warm_out = settings.work / f"warm-{label}.json"

    async def latency_phase() -> None:
        """Before the steps: the browser-like probe alone, then the direct reader alone,
        then Chromium alone (two 1080p decoders at once would fill the viewers' core and
        skew both)."""
        marker = lab.python(
            f"marker-{label}",
            "benchmarks.viewer_proc",
            "hub",
            "--url",
            hub_url,
            "--marker",
            "--name",
            "marker",
            "--out",
            str(marker_out),
            core=VIEWER_CORE,
        )
        async with aiohttp.ClientSession() as http:
            await wait_connected(http, f"{hub_url}/stats", 1)
        await asyncio.sleep(settings.settle + 1.0)
        window = await measure(
            {"hub": hub_pid, "doorbell": doorbell.proc.pid or 0, "viewers": marker.pid or 0},
            settings.window,
        )
        result["latency_window_hub"] = window.to_json()
        lab.stop(marker)
        window = await measure_direct_reader(
            lab, settings, f"direct-{label}", doorbell, direct_out, core=VIEWER_CORE, role="viewers"
        )
        result["latency_window_direct"] = window.to_json()
        if chromium is not None:
            await chromium.latency_window(hub_pid, doorbell)

    async def warm_joins() -> None:
        """With the step-1 viewer keeping the relay warm."""
        async with aiohttp.ClientSession() as http:
            await wait_connected(http, f"{hub_url}/stats", 1)
        log(f"{label}: warm joins at random GOP phases ({settings.warm_joins})")
        await join_loop(
            lab,
            f"warm-{label}",
            ["--url", hub_url],
            joins=settings.warm_joins,
            gap_min=0.3,
            join_spread=2.0,
            out=warm_out,
            seconds_per_join=4,
        )

    log(f"{label}: latency phase (browser-like probe, direct reader, Chromium)")
    await latency_phase()
    if chromium is not None:
        await chromium.warm()
    await asyncio.sleep(HUB_GRACE + 1.0)  # the relay stops: step 1 starts like a new audience
    log(f"{label}: hub steps {STEPS}")
    steps, outs = await run_steps(
        lab,
        settings,
        f"hub-{label}",
        "hub",
        hub_url,
        hub_pid,
        doorbell,
        {},
        hub_stats=f"{hub_url}/stats",
        on_first_step=warm_joins,
    )
    result["steps"] = steps
    result["viewer_files"] = [read_json(p) for p in outs]
    result["direct"] = read_json(direct_out)
    result["marker"] = read_json(marker_out)
    result["warm"] = read_json(warm_out)
    result["chromium"] = (
        chromium.result if chromium is not None else {"available": False, "reason": reason}
    )
    lab.stop(hub)
    return result


async def bench_hub_transcode(
    lab: Lab, settings: Settings, label: str, doorbell: Doorbell
) -> dict[str, Any]:
    """The same hub with the transcoding fallback forced on: decode and re-encode to
    constrained baseline before the live relay, then the usual fan-out."""
    # The passthrough hub's pairing used up the code the doorbell started with.
    async with aiohttp.ClientSession() as http:
        code = (await get_json(http, f"{doorbell.plain}/code"))["code"]
    hub = lab.python(
        f"hub-transcode-{label}",
        "benchmarks.hub_proc",
        "--doorbell-port",
        str(doorbell.port),
        "--fp",
        doorbell.fingerprint,
        "--code",
        str(code),
        "--grace",
        str(HUB_GRACE),
        "--transcode",
        core=HUB_CORE,
    )
    hub_url = f"http://127.0.0.1:{(await announced(hub))['port']}"
    log(f"{label}: hub with forced transcoding, steps {TRANSCODE_STEPS}")
    steps, outs = await run_steps(
        lab,
        settings,
        f"transcode-{label}",
        "hub",
        hub_url,
        hub.pid or 0,
        doorbell,
        {},
        hub_stats=f"{hub_url}/stats",
        audience=TRANSCODE_STEPS,
    )
    lab.stop(hub)
    return {"steps": steps, "viewer_files": [read_json(p) for p in outs]}


async def wait_exit(proc: ManagedProcess, within: float) -> None:
    """Let a child finish by itself; stop it after ``within`` seconds."""
    deadline = time.monotonic() + within
    while proc.running() and time.monotonic() < deadline:  # noqa: ASYNC110 - a child, no event
        await asyncio.sleep(0.2)
    if proc.running():
        proc.stop(5.0)


async def bench_janus(
    lab: Lab, settings: Settings, label: str, doorbell: Doorbell
) -> dict[str, Any]:
    reason = janus_peer.available()
    if reason is not None:
        return {"available": False, "reason": reason}
    net = janus_peer.JanusNet.create()
    try:
        folder = janus_peer.write_config(settings.work / f"janus-{label}", 18088, 30500, net)
        janus = lab.spawn(
            f"janus-{label}",
            net.exec_argv(["taskset", "-c", str(HUB_CORE), *janus_peer.argv(folder)]),
        )
        await asyncio.sleep(1.5)
        if not janus.running():
            return {"available": False, "reason": f"janus exited: {janus.log_tail(10)}"}
        feeder = lab.python(
            f"janus-feeder-{label}",
            "benchmarks.janus_peer",
            "--source",
            f"{doorbell.plain}/stream.ts",
            "--destination",
            net.janus_address,
            "--rtp-port",
            "30500",
            core=VIEWER_CORE,
        )
        await announced(feeder)
        # `ip netns exec` execs taskset, which execs janus: the pid is Janus's own.
        warm_out = settings.work / f"janus-warm-{label}.json"

        async def warm_joins() -> None:
            log(f"{label}: Janus warm joins at random GOP phases ({settings.warm_joins})")
            await asyncio.sleep(4.0)  # the first viewer is connected and watching
            await join_loop(
                lab,
                f"janus-warm-{label}",
                [
                    "--via",
                    "janus",
                    "--url",
                    f"http://{net.janus_address}:18088/janus",
                    "--ice-address",
                    net.root_address,
                ],
                joins=settings.warm_joins,
                gap_min=0.3,
                join_spread=2.0,
                out=warm_out,
                seconds_per_join=5,
            )

        log(f"{label}: Janus steps {STEPS}")
        steps, outs = await run_steps(
            lab,
            settings,
            f"janus-{label}",
            "janus",
            f"http://{net.janus_address}:18088/janus",
            janus.pid or 0,
            doorbell,
            {"feeder": feeder.pid or 0},
            ice_address=net.root_address,
            on_first_step=warm_joins,
        )
        lab.stop(feeder)
        lab.stop(janus)
        return {
            "available": True,
            "steps": steps,
            "viewer_files": [read_json(p) for p in outs],
            "warm": read_json(warm_out),
        }
    finally:
        net.remove()


async def bench_hass(
    lab: Lab, settings: Settings, label: str, doorbell: Doorbell, python: str, tag: str
) -> dict[str, Any]:
    """One Home Assistant with a generic camera on the doorbell; one LL-HLS viewer."""
    config = settings.work / f"hass-{tag}-{label}"
    port = hass_peer.free_port()
    hass_peer.prepare(config, port, f"{doorbell.plain}/stream.ts")
    proc = hass_peer.hass(config, settings.work / f"hass-{tag}-{label}.log", python=python)
    lab.children.append(proc)
    try:
        base, token = await hass_peer.start(proc, port)
        entity = await hass_peer.camera_entity(base, token)
        out = settings.work / f"hls-{tag}-{label}.json"
        viewer = lab.python(
            f"hls-{tag}-{label}",
            "benchmarks.hls_proc",
            "--base",
            base,
            "--token",
            token,
            "--entity",
            entity,
            "--out",
            str(out),
            core=VIEWER_CORE,
        )
        # LL-HLS needs a first full segment (6 s) before parts flow steadily.
        warmup = max(0.0, settings.hls_seconds - settings.window)
        await asyncio.sleep(warmup)
        window = await measure(
            {
                "server": proc.pid or 0,
                "doorbell": doorbell.proc.pid or 0,
                "viewers": viewer.pid or 0,
            },
            settings.window,
        )
        lab.stop(viewer)
        errors = [
            line
            for line in proc.log_text().splitlines()
            if "Error" in line or "TypeError" in line or "Uncaught" in line
        ]
        return {
            "available": True,
            "python": python,
            "window": window.to_json(),
            "viewer_file": read_json(out),
            "log_errors": errors[-20:],
        }
    except Exception as err:  # the peer failing is a result, not a crash of the run
        return {"available": False, "reason": f"{type(err).__name__}: {err}"}
    finally:
        lab.stop(proc)


async def bench_resolution(lab: Lab, settings: Settings, label: str) -> dict[str, Any]:
    result: dict[str, Any] = {"label": label, "format": RESOLUTIONS[label]}
    doorbell = await start_doorbell(lab, settings, label, "replay")
    try:
        if settings.passthrough:
            result["hub"] = await bench_hub(lab, settings, label, doorbell)
        if settings.transcode:
            result["hub_transcode"] = await bench_hub_transcode(lab, settings, label, doorbell)
        if settings.peers:
            result["janus"] = await bench_janus(lab, settings, label, doorbell)
            # Home Assistant 2026.10.4 pins the same av (19.0.0) as the project's venv,
            # so its stream runs from that venv, exactly as a user's HA would.
            log(f"{label}: Home Assistant LL-HLS")
            result["hass"] = await bench_hass(lab, settings, label, doorbell, sys.executable, "ha")
        async with aiohttp.ClientSession() as http:
            result["emissions"] = (await get_json(http, f"{doorbell.plain}/emissions"))["entries"]
    finally:
        lab.stop(doorbell.proc)
    return result


async def encoder_check(lab: Lab, settings: Settings, label: str) -> dict[str, Any]:
    """The reference doorbell as shipped (live x264), alone on the viewers' core, read by
    the direct reader on the other core: its encoding CPU and the frame rate it holds."""
    doorbell = await start_doorbell(lab, settings, label, "live")
    out = settings.work / f"live-direct-{label}.json"
    try:
        window = await measure_direct_reader(
            lab, settings, f"live-direct-{label}", doorbell, out, core=HUB_CORE, role="reader"
        )
        return {"window": window.to_json(), "reader": read_json(out)}
    finally:
        lab.stop(doorbell.proc)


def machine_info() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {
            name: importlib.metadata.version(name)
            for name in ("homeassistant", "aiortc", "av", "aioice", "home-assistant-frontend")
        },
        "load_average_start": os.getloadavg(),
    }


async def encode_clips(settings: Settings, labels: list[str]) -> None:
    """Encode missing clips, both at once (one per core)."""
    procs = []
    for label in labels:
        width, height, fps = RESOLUTIONS[label]
        path = clip_path(settings.clips, width, height, fps)
        if not path.exists():
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "benchmarks.clip",
                    str(width),
                    str(height),
                    str(fps),
                    str(path),
                    env=python_env(REPO),
                )
            )
    for proc in procs:
        if await proc.wait() != 0:
            raise RuntimeError("encoding a clip failed")


async def main_async(args: argparse.Namespace) -> None:
    only_chromium = args.only == "chromium"
    settings = Settings(
        peers=not (args.no_peers or only_chromium or args.transcode_only),
        chromium=not args.no_chromium,
        only_chromium=only_chromium,
        passthrough=not args.transcode_only,
        transcode=not (args.no_transcode or only_chromium),
    )
    if args.quick:
        settings.window, settings.warm_joins, settings.cold_joins = 4.0, 6, 2
        settings.hls_seconds = 20.0
    labels = args.resolutions
    lab = Lab(settings.work)
    started = time.monotonic()
    # The report dates the run from this, not from the raw file's mtime (a checkout or a
    # copy changes that).
    data: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {},
    }
    data["settings"] = {
        "window_s": settings.window,
        "settle_s": settings.settle,
        "warm_joins": settings.warm_joins,
        "cold_joins": settings.cold_joins,
        "hub_grace_s": HUB_GRACE,
        "steps": STEPS,
        "transcode_steps": TRANSCODE_STEPS if settings.transcode else (),
        "quick": args.quick,
        "only": args.only,
        "chromium": settings.chromium,
    }
    log(f"work dir {settings.work}; load average {os.getloadavg()}")
    try:
        await encode_clips(settings, labels)
        data["runs"] = {}
        for label in labels:
            data["runs"][label] = await bench_resolution(lab, settings, label)
        data["live_encoder"] = {}
        for label in labels if settings.passthrough and not only_chromium else ():
            log(f"{label}: the reference doorbell's live encoder")
            data["live_encoder"][label] = await encoder_check(lab, settings, label)
    finally:
        lab.stop_all()
    data["machine"]["load_average_end"] = os.getloadavg()
    data["duration_s"] = time.monotonic() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "live_view.json"
    raw.write_text(json.dumps(data))
    log(f"raw results in {raw} ({data['duration_s']:.0f} s)")
    if not args.keep:
        shutil.rmtree(settings.work, ignore_errors=True)


def _stop_on_sigterm(*_: object) -> None:
    # Unwind like Ctrl-C, so children are stopped and the Janus namespace is removed.
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows (development)")
    parser.add_argument("--no-peers", action="store_true", help="only the hub")
    parser.add_argument("--no-chromium", action="store_true", help="no Chromium viewer")
    parser.add_argument(
        "--only",
        choices=("chromium",),
        help="only the hub's Chromium viewer (cold, latency window, warm joins)",
    )
    parser.add_argument("--no-transcode", action="store_true", help="skip forced transcoding")
    parser.add_argument(
        "--transcode-only",
        action="store_true",
        help="only the hub with forced transcoding (development; the report needs a full run)",
    )
    parser.add_argument(
        "--resolutions", nargs="+", default=list(RESOLUTIONS), choices=list(RESOLUTIONS)
    )
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks"))
    parser.add_argument("--keep", action="store_true", help="keep the work dir and logs")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

"""The hub fed by an RTSP camera, next to the same hub fed by the Doorstep protocol, and
write ``docs/benchmarks/rtsp.json``.

The camera is GStreamer's RTSP server (``scripts/lab/rtsp_camera.py`` under the system
Python) re-serving the benchmark doorbell's own stream without decoding it, so both
hubs relay exactly the same frames (the block code included, which keeps the probe's
latency readable). The hub opens it through the RTSP driver (``RtspCamera.stream()``),
as the integration does for a camera added by hand. Per resolution, in one run and with
the same doorbell: the Doorstep-protocol hub and the RTSP hub at 1, 2, 4, 8 and 16
viewers, then both with forced transcoding at 1, 2 and 4, measured exactly as in
:mod:`benchmarks.run` (same steps, windows, pinning and viewer processes).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import time
from typing import Any

import aiohttp

from scripts.lab.procs import ManagedProcess

from .common import HUB_CORE, REPO, VIEWER_CORE
from .run import (
    HUB_GRACE,
    RESOLUTIONS,
    STEPS,
    TRANSCODE_STEPS,
    Doorbell,
    Lab,
    Settings,
    announced,
    encode_clips,
    get_json,
    log,
    machine_info,
    run_steps,
    start_doorbell,
)

SYSTEM_PYTHON = "/usr/bin/python3"
CAMERA_SCRIPT = REPO / "scripts" / "lab" / "rtsp_camera.py"
CAMERA_PATH = "/bench"


def gstreamer_unavailable() -> str | None:
    """Why the RTSP camera cannot run here, or None."""
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import GstRtspServer"
    )
    try:
        # A fixed argv: the system interpreter and a constant probe.
        subprocess.run([SYSTEM_PYTHON, "-c", probe], check=True, capture_output=True)  # noqa: S603
    except OSError, subprocess.CalledProcessError:
        return "GStreamer's RTSP server is not installed for the system Python"
    return None


async def start_camera(lab: Lab, label: str, doorbell: Doorbell) -> tuple[ManagedProcess, str]:
    """The RTSP camera, on the viewers' core with the doorbell it re-serves."""
    proc = lab.spawn(
        f"rtsp-camera-{label}",
        [
            SYSTEM_PYTHON,
            str(CAMERA_SCRIPT),
            "--address",
            "127.0.0.1",
            "--port",
            "0",
            "--path",
            CAMERA_PATH,
            "--http-ts",
            f"{doorbell.plain}/stream.ts",
        ],
        core=VIEWER_CORE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if found := re.search(r"^ready (\d+)$", proc.log_text(), re.MULTILINE):
            return proc, f"rtsp://127.0.0.1:{found.group(1)}{CAMERA_PATH}"
        if not proc.running():
            raise proc.fail("exited before it was ready")
        await asyncio.sleep(0.1)
    raise proc.fail("not ready in time")


async def hub_steps(
    lab: Lab,
    settings: Settings,
    tag: str,
    upstream: list[str],
    doorbell: Doorbell,
    extra_procs: dict[str, int],
    *,
    transcode: bool,
) -> dict[str, Any]:
    """One hub process over one upstream, through the viewer steps."""
    hub = lab.python(
        f"hub-{tag}",
        "benchmarks.hub_proc",
        *upstream,
        "--grace",
        str(HUB_GRACE),
        *(["--transcode"] if transcode else []),
        core=HUB_CORE,
    )
    hub_url = f"http://127.0.0.1:{(await announced(hub))['port']}"
    audience = TRANSCODE_STEPS if transcode else STEPS
    log(f"{tag}: steps {audience}")
    steps, outs = await run_steps(
        lab,
        settings,
        tag,
        "hub",
        hub_url,
        hub.pid or 0,
        doorbell,
        extra_procs,
        hub_stats=f"{hub_url}/stats",
        audience=audience,
    )
    lab.stop(hub)
    return {"steps": steps, "viewer_files": [read_json(p) for p in outs]}


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


async def doorstep_upstream(doorbell: Doorbell) -> list[str]:
    """Arguments that pair a new hub with the doorbell (each pairing uses up the code)."""
    async with aiohttp.ClientSession() as http:
        code = (await get_json(http, f"{doorbell.plain}/code"))["code"]
    return [
        "--doorbell-port",
        str(doorbell.port),
        "--fp",
        doorbell.fingerprint,
        "--code",
        str(code),
    ]


async def bench_resolution(lab: Lab, settings: Settings, label: str) -> dict[str, Any]:
    result: dict[str, Any] = {"label": label, "format": RESOLUTIONS[label]}
    doorbell = await start_doorbell(lab, settings, label, "replay")
    camera, url = await start_camera(lab, label, doorbell)
    rtsp = ["--rtsp-url", url]
    # The camera pulls the doorbell's stream only while the RTSP hub watches; its CPU is
    # listed in every window, next to the doorbell's.
    extra = {"camera": camera.pid or 0}
    try:
        # Alternating the two upstreams keeps slow drifts of the machine's load from
        # landing on one of them.
        for transcode in (False, True):
            suffix = "-transcode" if transcode else ""
            result[f"doorstep{suffix.replace('-', '_')}"] = await hub_steps(
                lab,
                settings,
                f"doorstep{suffix}-{label}",
                await doorstep_upstream(doorbell),
                doorbell,
                extra,
                transcode=transcode,
            )
            await asyncio.sleep(HUB_GRACE + 1.0)
            result[f"rtsp{suffix.replace('-', '_')}"] = await hub_steps(
                lab,
                settings,
                f"rtsp{suffix}-{label}",
                rtsp,
                doorbell,
                extra,
                transcode=transcode,
            )
            await asyncio.sleep(HUB_GRACE + 1.0)
        async with aiohttp.ClientSession() as http:
            result["emissions"] = (await get_json(http, f"{doorbell.plain}/emissions"))["entries"]
    finally:
        lab.stop(camera)
        lab.stop(doorbell.proc)
    return result


async def main_async(args: argparse.Namespace) -> None:
    settings = Settings(peers=False, chromium=False)
    if args.quick:
        settings.window = 4.0
    started = time.monotonic()
    data: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "window_s": settings.window,
            "settle_s": settings.settle,
            "hub_grace_s": HUB_GRACE,
            "steps": STEPS,
            "transcode_steps": TRANSCODE_STEPS,
            "quick": args.quick,
        },
    }
    out = Path(args.out)
    reason = gstreamer_unavailable()
    if reason is not None:
        log(f"RTSP benchmark not measured: {reason}")
        data["unavailable"] = reason
    else:
        lab = Lab(settings.work)
        log(f"work dir {settings.work}; load average {os.getloadavg()}")
        try:
            await encode_clips(settings, args.resolutions)
            data["runs"] = {}
            for label in args.resolutions:
                data["runs"][label] = await bench_resolution(lab, settings, label)
        finally:
            lab.stop_all()
            if not args.keep:
                shutil.rmtree(settings.work, ignore_errors=True)
    data["machine"]["load_average_end"] = os.getloadavg()
    data["duration_s"] = time.monotonic() - started
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "rtsp.json"
    raw.write_text(json.dumps(data))
    log(f"raw results in {raw} ({data['duration_s']:.0f} s)")


def _stop_on_sigterm(*_: object) -> None:
    # Unwind like Ctrl-C, so every child is stopped.
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows (development)")
    parser.add_argument(
        "--resolutions", nargs="+", default=list(RESOLUTIONS), choices=list(RESOLUTIONS)
    )
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks"))
    parser.add_argument("--keep", action="store_true", help="keep the work dir and logs")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

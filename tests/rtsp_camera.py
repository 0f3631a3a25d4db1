"""Run scripts/lab/rtsp_camera.py (GStreamer's RTSP server) as a real camera on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
import subprocess

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "lab" / "rtsp_camera.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def require_gstreamer() -> None:
    """Skip (with the fix) when the system Python lacks GStreamer's RTSP server."""
    check = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0');"
            "from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        check=False,
    )
    if check.returncode != 0:
        pytest.skip("GStreamer's RTSP server is missing: run scripts/system-packages")


class RtspCameraProcess:
    """One GStreamer RTSP server process; :meth:`stop` kills it like a pulled plug."""

    def __init__(
        self,
        *,
        path: str = "/door",
        username: str | None = None,
        password: str | None = None,
        profile: str = "constrained-baseline",
        no_video: bool = False,
        sound: str = "none",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.path = path
        self.username = username
        self.password = password
        self.profile = profile
        self.no_video = no_video
        self.sound = sound
        # (certificate, key) as PEM files: the server speaks rtsps:// only.
        self.tls = tls
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """The stream's URL without credentials."""
        scheme = "rtsps" if self.tls is not None else "rtsp"
        return f"{scheme}://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> None:
        """Start (again, on the same port once it had one) and wait until it listens."""
        args = [str(SCRIPT), "--address", "127.0.0.1", "--port", str(self.port)]
        args += ["--path", self.path, "--profile", self.profile]
        if self.username is not None and self.password is not None:
            args += ["--username", self.username, "--password", self.password]
        if self.no_video:
            args.append("--no-video")
        args += ["--sound", self.sound]
        if self.tls is not None:
            args += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        self._process = await asyncio.create_subprocess_exec(
            SYSTEM_PYTHON, *args, stdout=asyncio.subprocess.PIPE
        )
        assert self._process.stdout is not None
        async with asyncio.timeout(15):
            line = await self._process.stdout.readline()
        if not line.startswith(b"ready "):
            await self.stop()
            raise RuntimeError(f"the RTSP server did not start: {line!r}")
        self.port = int(line.split()[1])

    async def stop(self) -> None:
        """Kill the server at once: clients see the connection drop mid-stream."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.kill()
        await process.wait()

"""A reference doorbell process on the lab LAN, and the local controls a person uses."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
import json
from pathlib import Path
import sys
from typing import Any

import aiohttp

from reference_doorbell.identity import STATE_FILE

from .hass import REPO
from .procs import ManagedProcess, python_env

DOORBELL_PORT = 8443


@dataclass(kw_only=True)
class Doorbell:
    """One `python -m reference_doorbell` run; restartable with the same state dir."""

    name: str
    address: str
    state_dir: Path
    log_path: Path
    ns: str | None = None
    port: int = DOORBELL_PORT
    ring_every: float | None = None
    # "high" sends High profile with B-frames, which the hub has to transcode.
    profile: str = "baseline"
    # Sound (protocol v1.1): the synthetic tone microphone, and a WAV file as speaker.
    tone_microphone: bool = True
    speaker_file: Path | None = None
    process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"https://{self.address}:{self.port}"

    def argv(self) -> list[str]:
        argv = [
            sys.executable, "-m", "reference_doorbell",
            "--name", self.name,
            "--state-dir", str(self.state_dir),
            "--host", self.address,
            "--port", str(self.port),
            "--mdns-interface", self.address,
        ]  # fmt: skip
        if self.ring_every is not None:
            argv += ["--ring-every", str(self.ring_every)]
        if self.profile != "baseline":
            argv += ["--profile", self.profile]
        if self.tone_microphone:
            argv.append("--tone-mic")
        if self.speaker_file is not None:
            argv += ["--speaker-file", str(self.speaker_file)]
        if self.ns is not None:
            argv = ["ip", "netns", "exec", self.ns, *argv]
        return argv

    def start(self) -> None:
        self.process = ManagedProcess(
            name=f"doorbell {self.name!r}",
            argv=self.argv(),
            log_path=self.log_path,
            env=python_env(REPO),
            cwd=REPO,
        )
        self.process.start()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5)

    async def wait_ready(self, session: aiohttp.ClientSession) -> Any:
        """Wait until `GET /v1/info` answers and return its JSON; raise if the process
        exits first. Bound it with `procs.within`."""
        assert self.process is not None
        while True:
            if not self.process.running():
                raise self.process.fail("exited during start")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(
                    f"{self.base_url}/v1/info", ssl=False, timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    if resp.status == 200:
                        return await resp.json()
            await asyncio.sleep(0.1)

    def pairing_code(self) -> str:
        """The code the doorbell shows now (it changes after each successful pairing)."""
        state = json.loads((self.state_dir / STATE_FILE).read_text(encoding="utf-8"))
        return str(state["pairing_code"])

    async def press(self, session: aiohttp.ClientSession) -> None:
        """Press the button through the doorbell's local HTTP control."""
        # The doorbell's certificate is self-signed and this is a local control on a
        # LAN the lab built itself; the hub side is what pins the certificate.
        async with session.post(f"{self.base_url}/v1/button/ring", ssl=False) as resp:
            resp.raise_for_status()

    def curl_press(self) -> str:
        """The command a person types to press this doorbell's button."""
        return f"curl -k -X POST {self.base_url}/v1/button/ring"

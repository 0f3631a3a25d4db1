"""Child processes of a lab run: started with a log file, always stopped.

Each child gets its own session (so a Ctrl-C in the terminal reaches only the lab
runner, which then stops the children in order) and a parent-death signal (so a crashed
or SIGKILLed runner never leaves Home Assistant or a doorbell running).

Start children from the main thread: Linux sends the parent-death signal when the
*thread* that forked exits, so a child started from a worker thread would die with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import ctypes
from dataclasses import dataclass, field
import os
from pathlib import Path
import signal
import subprocess
from typing import IO

_PR_SET_PDEATHSIG = 1
# Looked up in the parent: the child between fork and exec must not load libraries.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ProcessFailed(RuntimeError):
    """A child exited early or never became ready; the message carries its log tail."""


@dataclass(kw_only=True)
class ManagedProcess:
    """One child process whose stdout and stderr go to `log_path`."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Append, so a restarted doorbell keeps one log across its lives.
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def fail(self, what: str) -> ProcessFailed:
        """An exception that says what went wrong and shows the end of the log."""
        state = "running" if self.running() else f"exited with {self.popen and self.popen.poll()}"
        return ProcessFailed(
            f"{self.name}: {what} ({state}); log {self.log_path}:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """Stop at once, like pulling the plug."""
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._close_log()

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def python_env(repo: Path) -> dict[str, str]:
    """The environment for the repo's Python programs: unbuffered, repo importable."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(repo) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    return env


@contextlib.asynccontextmanager
async def within(
    seconds: float, what: str, proc: ManagedProcess | None = None
) -> AsyncIterator[None]:
    """`asyncio.timeout`, but a timeout says what did not happen and shows the log."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as err:
        if proc is not None:
            raise proc.fail(f"{what}: not within {seconds:g} s") from err
        raise TimeoutError(f"{what}: not within {seconds:g} s") from err

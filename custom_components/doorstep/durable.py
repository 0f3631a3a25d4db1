"""Files that survive a crash whole or not at all: the ground floor ``media`` and
``sharing`` both build on.

It imports nothing but the standard library, so either room can use it without reaching
into the other or into the Home Assistant glue. Everything here blocks.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_all(fd: int, data: bytes) -> None:
    """Write every byte: ``os.write`` may write fewer than it was given."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def sync_directory(path: Path) -> None:
    """Make a rename or a new entry in ``path`` survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Create or truncate ``path``, write ``data`` and fsync it (not yet its directory)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(
    path: Path, data: bytes, *, temp: Path | None = None, mode: int = 0o600
) -> None:
    """Put ``data`` at ``path`` so that a crash or a full disk leaves the old file or
    the new one, never a mix: write a temporary file, fsync it, rename it over ``path``
    and fsync the directory. On failure the temporary file is removed and the error
    raised."""
    temp = temp or path.with_name(f".{path.name}.tmp")
    try:
        write_synced(temp, data, mode=mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)

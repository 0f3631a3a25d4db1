"""The ground floor's durable writes: partial writes, full disks, crash-safe renames."""

from __future__ import annotations

import errno
import os
from pathlib import Path
import stat

import pytest

from custom_components.doorstep.durable import (
    replace_atomically,
    sync_directory,
    write_all,
    write_synced,
)


@pytest.fixture
def one_byte_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``os.write`` that writes a single byte per call, as a slow pipe or disk may."""
    real_write = os.write
    calls: list[int] = []

    def write(fd: int, data: bytes | memoryview) -> int:
        calls.append(fd)
        return real_write(fd, bytes(data[:1]))

    monkeypatch.setattr(os, "write", write)
    return calls


def _full_disk_after(monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    """``os.write`` that accepts ``room`` bytes in all, then fails with ENOSPC."""
    real_write = os.write
    left = room

    def write(fd: int, data: bytes | memoryview) -> int:
        nonlocal left
        if left <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = real_write(fd, bytes(data[:left]))
        left -= written
        return written

    monkeypatch.setattr(os, "write", write)


def test_write_all_loops_over_partial_writes(tmp_path: Path, one_byte_writes: list[int]) -> None:
    path = tmp_path / "file"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        write_all(fd, b"hello")
    finally:
        os.close(fd)
    assert path.read_bytes() == b"hello"
    assert len(one_byte_writes) == 5


def test_write_synced_writes_everything_and_fsyncs(
    tmp_path: Path, one_byte_writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"a longer old content")
    synced: list[bytes] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(path.read_bytes())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_synced(path, b"new")
    assert path.read_bytes() == b"new"
    assert synced == [b"new"]  # fsynced once, with every byte already written


def test_replace_atomically_writes_whole_file_despite_partial_writes(
    tmp_path: Path, one_byte_writes: list[int]
) -> None:
    path = tmp_path / "key.pem"
    replace_atomically(path, b"0123456789" * 10)
    assert path.read_bytes() == b"0123456789" * 10
    assert len(one_byte_writes) == 100
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


def test_replace_atomically_fsyncs_file_then_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    replace_atomically(path, b"{}")
    assert events == ["file", "rename", "dir"]


@pytest.mark.parametrize("room", [0, 1, 7])
def test_full_disk_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"the old key, whole")
    _full_disk_after(monkeypatch, room)
    with pytest.raises(OSError, match="No space left") as caught:
        replace_atomically(path, b"a new key that does not fit")
    assert caught.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"the old key, whole"
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


def test_full_disk_on_a_new_file_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _full_disk_after(monkeypatch, 3)
    with pytest.raises(OSError, match="No space left"):
        replace_atomically(tmp_path / "new", b"does not fit")
    assert list(tmp_path.iterdir()) == []


def test_replace_atomically_uses_the_given_temp(tmp_path: Path) -> None:
    temp = tmp_path / "clip.json.part"
    replace_atomically(tmp_path / "clip.json", b"{}", temp=temp)
    assert not temp.exists()
    assert (tmp_path / "clip.json").read_bytes() == b"{}"


def test_sync_directory_rejects_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        sync_directory(path)

"""The audit log: chain, tamper detection, fsync before return, and disk-full rollback."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from custom_components.doorstep.sharing import AuditKind, AuditLog, AuditWriteError

from .test_sharing_fixtures import FakeClock

RID = "01JNQ7Z0000000000000000000"


async def filled_log(path: Path, count: int = 5) -> AuditLog:
    log = await AuditLog.open(path, clock=FakeClock())
    for n in range(count):
        await log.append(AuditKind.FILED, RID, f"requester:{n}", {"n": n})
    return log


async def test_chain_links_every_entry(tmp_path: Path) -> None:
    log = await filled_log(tmp_path / "audit.jsonl")
    lines = (tmp_path / "audit.jsonl").read_bytes().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == list(range(5))
    assert entries[0]["prev"] == "0" * 64
    assert set(entries[0]) == {"seq", "time", "kind", "request", "actor", "details", "prev"}
    assert await log.verify() is None
    assert await log.export() == (tmp_path / "audit.jsonl").read_bytes()


async def test_reopen_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    await filled_log(path, 3)
    log = await AuditLog.open(path)
    ref = await log.append(AuditKind.APPROVED, RID, "user:a")
    assert ref.seq == 3
    assert await log.contains(ref)
    assert await log.verify() is None


def _edit_field(lines: list[bytes]) -> None:
    entry = json.loads(lines[2])
    entry["actor"] = "user:someone-else"
    lines[2] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()


def _reformat(lines: list[bytes]) -> None:
    lines[2] = json.dumps(json.loads(lines[2]), indent=1).replace("\n", "").encode()


@pytest.mark.parametrize(
    ("tamper", "broken_at"),
    [
        (_edit_field, 3),  # the edit itself hashes fine; the next entry's prev does not
        (_reformat, 2),
        (lambda lines: lines.pop(1), 1),
        (lambda lines: lines.insert(1, lines.pop(3)), 1),
        (lambda lines: lines.__setitem__(0, b"not json"), 0),
        (lambda lines: lines.__setitem__(4, lines[4].replace(b"filed", b"nope!")), 4),
    ],
)
async def test_tampering_is_found(tmp_path: Path, tamper: Any, broken_at: int) -> None:
    path = tmp_path / "audit.jsonl"
    log = await filled_log(path)
    lines = path.read_bytes().splitlines()
    tamper(lines)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    assert await log.verify() == broken_at


async def test_truncation_is_found_with_an_anchor(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = await filled_log(path)
    anchor = log.head
    assert await log.verify(anchor) is None
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]))
    assert await log.verify() is None  # a bare chain cannot see a cut tail...
    assert await log.verify(anchor) == 3  # ...an anchor kept elsewhere can


async def test_fsync_before_return(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        # Record what was on disk at the moment of the fsync.
        size = os.fstat(fd).st_size if Path(target).is_file() else -1
        synced.append(f"{target}:{size}")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    log = await AuditLog.open(path)
    ref = await log.append(AuditKind.FILED, RID, "requester:x")
    size = path.stat().st_size
    assert f"{path}:{size}" in synced  # the file, with the whole line in it
    assert f"{tmp_path}:-1" in synced  # the directory, because the file was new
    synced.clear()
    await log.append(AuditKind.APPROVED, RID, "user:a")
    assert synced == [f"{path}:{path.stat().st_size}"]
    assert ref.offset == 0


def _enospc_after(monkeypatch: pytest.MonkeyPatch, partial: int) -> None:
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        if b'"prev":' in bytes(data):
            if partial:
                real_write(fd, bytes(data)[:partial])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize("partial", [0, 1, 40])
async def test_enospc_leaves_no_partial_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, partial: int
) -> None:
    path = tmp_path / "audit.jsonl"
    log = await filled_log(path, 2)
    before = path.read_bytes()
    head = log.head
    _enospc_after(monkeypatch, partial)
    with pytest.raises(AuditWriteError):
        await log.append(AuditKind.APPROVED, RID, "user:a")
    assert path.read_bytes() == before
    assert log.head == head
    monkeypatch.undo()
    ref = await log.append(AuditKind.APPROVED, RID, "user:a")
    assert ref.seq == 2
    assert await log.verify() is None


async def test_failed_rollback_blocks_further_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    log = await filled_log(path, 1)
    _enospc_after(monkeypatch, 10)

    def no_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with pytest.raises(AuditWriteError):
        await log.append(AuditKind.APPROVED, RID, "user:a")
    monkeypatch.undo()
    with pytest.raises(AuditWriteError, match="torn"):
        await log.append(AuditKind.APPROVED, RID, "user:a")
    # Reopening repairs the torn tail (that line was never acknowledged).
    reopened = await AuditLog.open(path)
    assert await reopened.verify() is None
    await reopened.append(AuditKind.APPROVED, RID, "user:a")
    assert await reopened.verify() is None


async def test_refuses_to_append_after_outside_change(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = await filled_log(path, 1)
    with path.open("ab") as handle:
        handle.write(b'{"forged":true}\n')
    with pytest.raises(AuditWriteError):
        await log.append(AuditKind.FILED, RID, "requester:x")


async def test_missing_file(tmp_path: Path) -> None:
    log = await AuditLog.open(tmp_path / "none.jsonl")
    assert await log.verify() is None
    assert await log.export() == b""
    assert log.head == (0, "0" * 64)

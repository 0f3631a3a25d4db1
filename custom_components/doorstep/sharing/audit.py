"""The append-only, hash-chained audit log.

One JSON object per line. Each carries ``prev``, the SHA-256 of the previous line's bytes
(64 zeros for the first), so editing, dropping or reordering any line breaks the chain
at that point.

Durability: :meth:`AuditLog.append` returns only after the line is written and the file
fsynced (and, when the file was just created, its directory too). If any of that fails
the file is truncated back to where it was, so no partial line survives, and
:class:`AuditWriteError` is raised; callers treat that as "the step did not happen".

Blocking I/O runs in a worker thread via :func:`asyncio.to_thread`; an asyncio lock
serialises appends so the chain has a single writer. The ``*_blocking`` methods exist
for the HA glue's executor and for tests; they must not be called on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from custom_components.doorstep.durable import sync_directory, write_all

from .exceptions import AuditCorruptError, AuditWriteError
from .models import AuditRef

_LOGGER = logging.getLogger(__name__)

GENESIS = "0" * 64
_FIELDS = frozenset({"seq", "time", "kind", "request", "actor", "details", "prev"})


class AuditKind(StrEnum):
    FILED = "filed"
    APPROVED = "approved"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"
    REFUSED = "refused"
    DELIVERED = "delivered"
    DOWNLOADED = "downloaded"


_KINDS = frozenset(kind.value for kind in AuditKind)


def _digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def encode_entry(entry: dict[str, Any]) -> bytes:
    """Canonical form of one entry: what is hashed is exactly what is on disk."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class AuditLog:
    """An append-only JSON-lines audit log with a SHA-256 chain. Use :meth:`open`."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime]) -> None:
        self._path = path
        self._clock = clock
        self._lock = asyncio.Lock()
        self._size = 0
        self._next_seq = 0
        self._prev = GENESIS
        # Set when a failed append could not be rolled back: appending after a torn line
        # would bury it inside the chain, so refuse until the log is reopened (and repaired).
        self._broken = False

    @property
    def path(self) -> Path:
        return self._path

    @property
    def head(self) -> tuple[int, str]:
        """(number of entries, digest of the last line): an anchor against truncation."""
        return self._next_seq, self._prev

    @classmethod
    async def open(cls, path: Path, *, clock: Callable[[], datetime] | None = None) -> AuditLog:
        return await asyncio.to_thread(cls.open_blocking, path, clock=clock)

    @classmethod
    def open_blocking(cls, path: Path, *, clock: Callable[[], datetime] | None = None) -> AuditLog:
        log = cls(path, clock=clock or (lambda: datetime.now(UTC)))
        log._load()
        return log

    def _load(self) -> None:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as err:
            raise AuditCorruptError(f"cannot read audit log: {err}") from err
        if data and not data.endswith(b"\n"):
            # A torn tail can only come from a crash mid-append; such a line was never
            # acknowledged, so dropping it loses nothing anyone relied on.
            keep = data.rfind(b"\n") + 1
            _LOGGER.warning("audit log %s: dropping a torn last line", self._path)
            try:
                with self._path.open("r+b") as handle:
                    handle.truncate(keep)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as err:
                raise AuditCorruptError(f"cannot repair audit log: {err}") from err
            data = data[:keep]
        lines = data.splitlines()
        self._size = len(data)
        self._next_seq = len(lines)
        self._prev = _digest(lines[-1]) if lines else GENESIS

    async def append(
        self,
        kind: AuditKind,
        request_id: str | None,
        actor: str,
        details: dict[str, Any] | None = None,
    ) -> AuditRef:
        """Append one entry durably and return where it sits. Raises AuditWriteError."""
        async with self._lock:
            return await asyncio.to_thread(self._append_blocking, kind, request_id, actor, details)

    def _append_blocking(
        self,
        kind: AuditKind,
        request_id: str | None,
        actor: str,
        details: dict[str, Any] | None,
    ) -> AuditRef:
        if self._broken:
            raise AuditWriteError("audit log has a torn line; reopen it to repair")
        seq = self._next_seq
        entry = {
            "seq": seq,
            "time": self._clock().astimezone(UTC).isoformat(timespec="milliseconds"),
            "kind": kind.value,
            "request": request_id,
            "actor": actor,
            "details": details or {},
            "prev": self._prev,
        }
        line = encode_entry(entry)
        try:
            self._ensure_file()
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except OSError as err:
            raise AuditWriteError(f"cannot open audit log: {err}") from err
        try:
            offset = os.fstat(fd).st_size
            if offset != self._size:
                raise AuditWriteError("audit log changed on disk behind our back")
            try:
                write_all(fd, line + b"\n")
                os.fsync(fd)
            except OSError as err:
                self._roll_back(fd, offset)
                raise AuditWriteError(f"cannot write audit log: {err}") from err
        finally:
            os.close(fd)
        self._size = offset + len(line) + 1
        self._next_seq += 1
        self._prev = _digest(line)
        return AuditRef(seq=seq, offset=offset, digest=self._prev)

    def _ensure_file(self) -> None:
        if self._path.exists():
            return
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # Without this a crash could lose the new file's directory entry, and with it
        # every line we later fsync into the file.
        sync_directory(self._path.parent)

    def _roll_back(self, fd: int, offset: int) -> None:
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        except OSError:
            _LOGGER.exception("audit log %s: cannot remove a partial line", self._path)
            self._broken = True

    async def contains(self, ref: AuditRef) -> bool:
        """Whether the entry ``ref`` names is on disk, byte for byte."""
        return await asyncio.to_thread(self.contains_blocking, ref)

    def contains_blocking(self, ref: AuditRef) -> bool:
        try:
            with self._path.open("rb") as handle:
                handle.seek(ref.offset)
                line = handle.readline()
        except OSError:
            return False
        return line.endswith(b"\n") and _digest(line[:-1]) == ref.digest

    async def verify(self, anchor: tuple[int, str] | None = None) -> int | None:
        """Index of the first broken entry, or None when the whole chain holds.

        ``anchor`` is a :attr:`head` saved elsewhere; with it, cutting entries off the
        end is detected too (the index is then where the missing entries start).
        """
        return await asyncio.to_thread(self.verify_blocking, anchor)

    def verify_blocking(self, anchor: tuple[int, str] | None = None) -> int | None:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            data = b""
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        prev = GENESIS
        for index, line in enumerate(lines):
            if not _entry_ok(line, index, prev):
                return index
            prev = _digest(line)
        if tail:
            return len(lines)
        if anchor is not None:
            count, digest = anchor
            if len(lines) < count:
                return len(lines)
            if count > 0 and _digest(lines[count - 1]) != digest:
                return count - 1
        return None

    async def export(self) -> bytes:
        """The log exactly as stored, for the householder to keep or hand over."""
        return await asyncio.to_thread(self.export_blocking)

    def export_blocking(self) -> bytes:
        try:
            return self._path.read_bytes()
        except FileNotFoundError:
            return b""

    def entries_blocking(self) -> list[dict[str, Any]]:
        """Parsed entries, for display. Unparseable lines are skipped (verify() names them)."""
        result: list[dict[str, Any]] = []
        for line in self.export_blocking().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                result.append(entry)
        return result


def _entry_ok(line: bytes, index: int, prev: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return (
        isinstance(entry, dict)
        and set(entry) == _FIELDS
        and type(entry["seq"]) is int
        and entry["seq"] == index
        and entry["prev"] == prev
        and entry["kind"] in _KINDS
        # Re-encoding must give the same bytes, or the line was edited by hand.
        and encode_entry(entry) == line
    )

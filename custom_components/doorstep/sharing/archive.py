"""The release archive: an uncompressed tar, streamed member by member.

Layout: ``manifest.json``, ``manifest.json.sig`` (raw 64-byte Ed25519 signature), then
``clips/<id>.mp4`` in manifest order. Tar rather than zip because every header can be
written before its data without seeking, the total size is known up front (so HTTP can
send Content-Length), and MP4 does not compress anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
import tarfile

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.json.sig"
CONTENT_TYPE = "application/x-tar"


def member_header(name: str, size: int, mtime: datetime) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime.timestamp())
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT, encoding="ascii", errors="strict")


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def archive_size(member_sizes: Iterable[int]) -> int:
    """Exact byte count of an archive with members of these sizes (short ASCII names)."""
    return sum(BLOCK + size + (-size % BLOCK) for size in member_sizes) + len(END_OF_ARCHIVE)

"""The release archive: an uncompressed tar, streamed member by member.

Layout: ``manifest.json``, ``manifest.json.sig`` (raw 64-byte Ed25519 signature), then
``clips/<id>.mp4`` in manifest order. Tar rather than zip because every header can be
written before its data without seeking, the total size is known up front (so HTTP can
send Content-Length), and MP4 does not compress anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
import hashlib
import io
import tarfile
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .exceptions import InvalidManifest
from .manifest import verify_manifest

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


def verify_archive(data: bytes, public_key: Ed25519PublicKey | bytes) -> dict[str, Any]:
    """Check a release end to end, as a requester would: signature, then every clip.

    Returns the manifest. Raises InvalidManifest on any mismatch, including members the
    manifest does not name.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = {m.name: m for m in tar.getmembers()}

            def read(name: str) -> bytes:
                member = members.get(name)
                handle = tar.extractfile(member) if member is not None else None
                if handle is None:
                    raise InvalidManifest(f"archive lacks {name}")
                return handle.read()

            manifest = verify_manifest(read(MANIFEST_NAME), read(SIGNATURE_NAME), public_key)
            expected = {MANIFEST_NAME, SIGNATURE_NAME}
            for clip in manifest["clips"]:
                name = clip["file"]
                expected.add(name)
                body = read(name)
                if len(body) != clip["size"] or hashlib.sha256(body).hexdigest() != clip["sha256"]:
                    raise InvalidManifest(f"{name} does not match the manifest")
            if set(members) != expected:
                raise InvalidManifest("archive holds members the manifest does not name")
    except (tarfile.TarError, KeyError, TypeError) as err:
        raise InvalidManifest(f"not a valid release archive: {err}") from err
    return manifest

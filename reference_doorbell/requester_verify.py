"""Checking a release archive, and keeping it, the way a careful requester would.

The checks themselves are :mod:`.release_check`'s: the signature over the manifest, the
key id, then every clip's size and SHA-256, and no extra members. The hub's tests check
its archives with the same module, so the requester and the hub agree on one format.
This module adds what a requester needs around that: a verdict to print, and files on
disk that say plainly whether they verified.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import re
import tarfile

from .release_check import MANIFEST_NAME, SIGNATURE_NAME, ReleaseInvalid, verify_archive

# What may become a file name on our disk, whatever a (signed) manifest says.
_REQUEST_ID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
_CLIP_FILE_RE = re.compile(r"clips/[0-7][0-9A-HJKMNP-TV-Z]{25}\.mp4")


@dataclass(frozen=True, slots=True)
class ClipLine:
    file: str
    size: int
    sha256: str
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of checking one archive. ``ok`` is False on any mismatch at all."""

    ok: bool
    reason: str | None = None
    request_id: str | None = None
    reference: str | None = None
    approved_at: str | None = None
    key_id: str | None = None
    clips: tuple[ClipLine, ...] = ()

    def lines(self) -> list[str]:
        """The report printed to the terminal."""
        if not self.ok:
            return [f"VERIFICATION FAILED: {self.reason}", "Do not rely on these files."]
        out = [
            f"Request    {self.request_id}",
            f"Reference  {self.reference}",
            f"Approved   {self.approved_at}",
            f"Signature  OK (hub key {self.key_id})",
        ]
        out.extend(
            f"  {clip.file}  {clip.size} bytes  {clip.start} to {clip.end}  "
            f"sha256 {clip.sha256}  OK"
            for clip in self.clips
        )
        count = len(self.clips)
        out.append(f"VERIFIED: {count} clip{'' if count == 1 else 's'} match the signed manifest")
        return out


def verify(data: bytes, public_key: bytes, expected_request_id: str | None = None) -> Verdict:
    """Check ``data`` against the hub's raw Ed25519 public key."""
    try:
        manifest = verify_archive(data, public_key)
    except ReleaseInvalid as err:
        return Verdict(False, str(err))
    request_id = manifest.get("request_id")
    if not isinstance(request_id, str) or _REQUEST_ID_RE.fullmatch(request_id) is None:
        return Verdict(False, "manifest names no valid request id")
    if expected_request_id is not None and request_id != expected_request_id:
        return Verdict(False, f"archive is for request {request_id}, not {expected_request_id}")
    clips = []
    for clip in manifest["clips"]:
        if not isinstance(clip, dict) or _CLIP_FILE_RE.fullmatch(str(clip.get("file"))) is None:
            return Verdict(False, "manifest names a clip file in an unexpected form")
        clips.append(
            ClipLine(
                str(clip["file"]),
                int(clip["size"]),
                str(clip["sha256"]),
                str(clip.get("start")),
                str(clip.get("end")),
            )
        )
    return Verdict(
        True,
        request_id=request_id,
        reference=str(manifest.get("requester_reference")),
        approved_at=str(manifest.get("approved_at")),
        key_id=str(manifest.get("hub_key_id")),
        clips=tuple(clips),
    )


def keep(archive: Path, verdict: Verdict, out_dir: Path, fallback_name: str) -> Path:
    """File the downloaded archive under a name that says whether it verified.

    Verified: ``<id>.tar`` plus ``<id>/`` holding the manifest, its signature and
    ``clips/<clip>.mp4``. Not verified: ``<name>.unverified.tar`` and nothing unpacked, so
    nobody opens a clip that failed its check by mistake.
    """
    if not verdict.ok or verdict.request_id is None:
        target = out_dir / f"{fallback_name}.unverified.tar"
        os.replace(archive, target)
        return target
    target = out_dir / f"{verdict.request_id}.tar"
    os.replace(archive, target)
    unpacked = out_dir / verdict.request_id
    (unpacked / "clips").mkdir(parents=True, exist_ok=True)
    names = [MANIFEST_NAME, SIGNATURE_NAME, *(clip.file for clip in verdict.clips)]
    with tarfile.open(target, mode="r:") as tar:
        for name in names:
            handle = tar.extractfile(name)
            assert handle is not None  # verify() already read every one of these
            # Names are fixed or matched _CLIP_FILE_RE: nothing here can leave `unpacked`.
            (unpacked / name).write_bytes(handle.read())
    return target


def read_archive(path: Path) -> bytes:
    # The hub's checker works on bytes; archives of doorbell clips fit in memory.
    return path.read_bytes()

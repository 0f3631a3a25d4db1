"""Manifest signing and verification, the hub key on disk, and the release archive."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
import stat
import tarfile

import pytest

from custom_components.doorstep.sharing import (
    Actor,
    HubKey,
    SharingError,
    build_manifest,
    key_id_of,
)
from custom_components.doorstep.sharing.manifest import sign_manifest
from reference_doorbell import release_check
from reference_doorbell.release_check import ReleaseInvalid, verify_archive, verify_manifest
from tests.approval import approve_seen

from .test_sharing_fixtures import Hub, make_hub, request_fields


@pytest.fixture
async def approved(tmp_path: Path) -> tuple[Hub, bytes]:
    hub = make_hub(tmp_path)
    request = await hub.gate.file_request(hub.requester_id, request_fields(hub.clock.now))
    request = await approve_seen(
        hub.gate, request.id, Actor("admin", is_admin=True, verified_by="password")
    )
    return hub, build_manifest(request, request.frozen_clips, hub.key.key_id)


async def test_round_trip(approved: tuple[Hub, bytes]) -> None:
    hub, manifest = approved
    signature = sign_manifest(manifest, hub.key)
    parsed = verify_manifest(manifest, signature, hub.key.public_key)
    assert parsed == verify_manifest(manifest, signature, hub.key.public_bytes())
    assert parsed["hub_key_id"] == hub.key.key_id
    assert len(hub.key.key_id) == 16
    assert set(parsed) == {
        "format",
        "request_id",
        "requester_reference",
        "window",
        "approved_at",
        "hub_key_id",
        "clips",
    }
    assert {"id", "file", "sha256", "size", "start", "end"} == set(parsed["clips"][0])
    # Canonical: re-encoding the parsed manifest gives the signed bytes back.
    assert json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode() == manifest


async def test_tampering_fails(approved: tuple[Hub, bytes]) -> None:
    hub, manifest = approved
    signature = sign_manifest(manifest, hub.key)
    edited = manifest.replace(b"CASE-2025-0042", b"CASE-2025-0043")
    with pytest.raises(ReleaseInvalid):
        verify_manifest(edited, signature, hub.key.public_key)
    with pytest.raises(ReleaseInvalid):
        verify_manifest(manifest, bytes([signature[0] ^ 1]) + signature[1:], hub.key.public_key)
    with pytest.raises(ReleaseInvalid):
        verify_manifest(manifest, signature, HubKey.generate().public_key)
    with pytest.raises(ReleaseInvalid):
        verify_manifest(manifest, signature, b"short")


async def test_signed_with_another_key_id_fails(approved: tuple[Hub, bytes]) -> None:
    _hub, manifest = approved
    other = HubKey.generate()
    # A valid signature by a key that is not the one the manifest names.
    with pytest.raises(ReleaseInvalid, match="another hub key"):
        verify_manifest(manifest, sign_manifest(manifest, other), other.public_key)


async def test_archive_tampering_fails(approved: tuple[Hub, bytes]) -> None:
    hub, _ = approved
    request = hub.gate.requests()[0]
    assert request.pickup is not None
    data = b"".join(
        [c async for c in await hub.gate.open_pickup(hub.gate.pickup_token(request.id) or "")]
    )
    verify_archive(data, hub.key.public_key)
    # Flip one byte of clip data: the manifest still verifies, the hash does not.
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = next(m for m in tar.getmembers() if m.name.startswith("clips/"))
        offset = member.offset_data
    flipped = data[:offset] + bytes([data[offset] ^ 1]) + data[offset + 1 :]
    with pytest.raises(ReleaseInvalid, match="does not match"):
        verify_archive(flipped, hub.key.public_key)
    with pytest.raises(ReleaseInvalid):
        verify_archive(data[:1000], hub.key.public_key)


def test_key_persists(tmp_path: Path) -> None:
    path = tmp_path / "hub_key.pem"
    key = HubKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = HubKey.load_or_create(path)
    assert again.key_id == key.key_id == key_id_of(key.public_key)
    # The requester's checker derives the same id from the public key alone.
    assert release_check.key_id_of(key.public_key) == key.key_id
    assert not list(tmp_path.glob(".*.tmp"))


def test_key_is_whole_when_the_disk_takes_one_byte_per_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:1])))
    key = HubKey.load_or_create(tmp_path / "hub_key.pem")
    monkeypatch.undo()
    assert HubKey.load_or_create(tmp_path / "hub_key.pem").key_id == key.key_id


def test_bad_key_file(tmp_path: Path) -> None:
    path = tmp_path / "hub_key.pem"
    path.write_bytes(b"not a key")
    with pytest.raises(SharingError):
        HubKey.load_or_create(path)

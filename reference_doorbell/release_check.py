"""Checking a Doorstep release archive: the requester's side of docs/protocol.md.

Standard library and ``cryptography`` only, so a requester that installs
``reference_doorbell`` on its own can check what a hub sends: the Ed25519 signature over
the manifest, the key id, then every clip's size and SHA-256, and no extra members. The
hub's tests check every archive the hub makes with this module, so the two sides agree
on one format.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MANIFEST_FORMAT = "doorstep-manifest/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.json.sig"


class ReleaseInvalid(Exception):
    """The archive, its manifest or its signature does not check out; the message says
    which part."""


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def verify_manifest(
    manifest_bytes: bytes, signature: bytes, public_key: Ed25519PublicKey | bytes
) -> dict[str, Any]:
    """Check the signature and key id, and return the parsed manifest."""
    if isinstance(public_key, bytes):
        try:
            public_key = Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError as err:
            raise ReleaseInvalid("public key is not a raw Ed25519 key") from err
    try:
        public_key.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise ReleaseInvalid("manifest signature does not verify") from None
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as err:
        raise ReleaseInvalid("manifest is not JSON") from err
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ReleaseInvalid("not a Doorstep manifest")
    if manifest.get("hub_key_id") != key_id_of(public_key):
        raise ReleaseInvalid("manifest names another hub key")
    if not isinstance(manifest.get("clips"), list):
        raise ReleaseInvalid("manifest lists no clips")
    return manifest


def verify_archive(data: bytes, public_key: Ed25519PublicKey | bytes) -> dict[str, Any]:
    """Check a release end to end: signature, then every clip.

    Returns the manifest. Raises :class:`ReleaseInvalid` on any mismatch, including
    members the manifest does not name.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = {m.name: m for m in tar.getmembers()}

            def read(name: str) -> bytes:
                member = members.get(name)
                handle = tar.extractfile(member) if member is not None else None
                if handle is None:
                    raise ReleaseInvalid(f"archive lacks {name}")
                return handle.read()

            manifest = verify_manifest(read(MANIFEST_NAME), read(SIGNATURE_NAME), public_key)
            expected = {MANIFEST_NAME, SIGNATURE_NAME}
            for clip in manifest["clips"]:
                name = clip["file"]
                expected.add(name)
                body = read(name)
                if len(body) != clip["size"] or hashlib.sha256(body).hexdigest() != clip["sha256"]:
                    raise ReleaseInvalid(f"{name} does not match the manifest")
            if set(members) != expected:
                raise ReleaseInvalid("archive holds members the manifest does not name")
    except (tarfile.TarError, KeyError, TypeError) as err:
        raise ReleaseInvalid(f"not a valid release archive: {err}") from err
    return manifest

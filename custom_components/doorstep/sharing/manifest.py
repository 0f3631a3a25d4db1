"""The signed manifest that travels with every release: the chain of custody.

Canonical JSON (sorted keys, no spaces, ASCII) so the signed bytes are reproducible by
anyone who wants to re-derive them. It names clips by id and hash only: no doorbell
ids, no user ids, nothing about the household beyond the footage itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .exceptions import InvalidManifest
from .models import FrozenClip, ShareRequest
from .signing import HubKey, key_id_of, verify_signature

MANIFEST_FORMAT = "doorstep-manifest/1"


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def clip_member_name(clip_id: str) -> str:
    return f"clips/{clip_id}.mp4"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def build_manifest(request: ShareRequest, clips: tuple[FrozenClip, ...], key_id: str) -> bytes:
    """The manifest bytes for an approved request."""
    if request.approved_at is None:
        raise ValueError("manifest for a request that is not approved")
    return canonical_json(
        {
            "format": MANIFEST_FORMAT,
            "request_id": request.id,
            "requester_reference": request.reference,
            "window": {"start": _time(request.window_start), "end": _time(request.window_end)},
            "approved_at": _time(request.approved_at),
            "hub_key_id": key_id,
            "clips": [
                {
                    "id": clip.id,
                    "file": clip_member_name(clip.id),
                    "sha256": clip.sha256,
                    "size": clip.size,
                    "start": _time(clip.start),
                    "end": _time(clip.end),
                }
                for clip in clips
            ],
        }
    )


def sign_manifest(manifest: bytes, key: HubKey) -> bytes:
    return key.sign(manifest)


def verify_manifest(
    manifest_bytes: bytes, signature: bytes, public_key: Ed25519PublicKey | bytes
) -> dict[str, Any]:
    """Check the signature and key id, and return the parsed manifest."""
    if isinstance(public_key, bytes):
        try:
            public_key = Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError as err:
            raise InvalidManifest("public key is not a raw Ed25519 key") from err
    if not verify_signature(manifest_bytes, signature, public_key):
        raise InvalidManifest("manifest signature does not verify")
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as err:
        raise InvalidManifest("manifest is not JSON") from err
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise InvalidManifest("not a Doorstep manifest")
    if manifest.get("hub_key_id") != key_id_of(public_key):
        raise InvalidManifest("manifest names another hub key")
    if not isinstance(manifest.get("clips"), list):
        raise InvalidManifest("manifest lists no clips")
    return manifest

"""The signed manifest that travels with every release: the chain of custody.

Canonical JSON (sorted keys, no spaces, ASCII) so the signed bytes are reproducible by
anyone who wants to re-derive them. It names clips by id and hash only: no doorbell
ids, no user ids, nothing about the household beyond the footage itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
import json
from typing import Any

from .models import FrozenClip, ShareRequest
from .signing import HubKey

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

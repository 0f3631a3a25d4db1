"""The agency's side of docs/feeds.md: its key chain, and writing a signed feed.

Written apart from the hub's reader (``custom_components/doorstep/sharing/feeds.py``),
from the specification, so each side's tests check the other's reading of it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

FEED_VERSION = 1
PAYLOAD_CONTEXT = b"doorstep-feed-v1\n"
KEY_CONTEXT = b"doorstep-feed-key-v1\n"
DEFAULT_LIFETIME = timedelta(days=2)


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class AgencyKeys:
    """The agency's keys, oldest first; the last one signs. Rotation appends a key that
    the current one endorses, so households pinned to any earlier key follow along."""

    private_keys: list[Ed25519PrivateKey]
    endorsements: list[bytes | None] = field(default_factory=list)

    @classmethod
    def generate(cls) -> AgencyKeys:
        return cls([Ed25519PrivateKey.generate()], [None])

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        return self.private_keys[-1]

    def fingerprint(self, index: int = -1) -> str:
        """SHA-256 of the raw public key: what the agency prints in its letter."""
        return hashlib.sha256(_raw(self.private_keys[index])).hexdigest()

    def rotate(self) -> None:
        new = Ed25519PrivateKey.generate()
        self.endorsements.append(self.signing_key.sign(KEY_CONTEXT + _raw(new)))
        self.private_keys.append(new)

    def chain(self) -> list[dict[str, str]]:
        links = []
        for key, endorsement in zip(self.private_keys, self.endorsements, strict=True):
            link = {"public_key": _b64(_raw(key))}
            if endorsement is not None:
                link["endorsement"] = _b64(endorsement)
            links.append(link)
        return links

    def save(self, directory: Path) -> None:
        """Keys as PEM files ``key-0.pem``… and endorsements beside them."""
        directory.mkdir(parents=True, exist_ok=True)
        for index, (key, endorsement) in enumerate(
            zip(self.private_keys, self.endorsements, strict=True)
        ):
            path = directory / f"key-{index}.pem"
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            path.chmod(0o600)
            if endorsement is not None:
                (directory / f"key-{index}.endorsement").write_text(_b64(endorsement))

    @classmethod
    def load(cls, directory: Path) -> AgencyKeys:
        keys: list[Ed25519PrivateKey] = []
        endorsements: list[bytes | None] = []
        index = 0
        while (path := directory / f"key-{index}.pem").exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 key")
            keys.append(key)
            endorsement = directory / f"key-{index}.endorsement"
            endorsements.append(
                base64.b64decode(endorsement.read_text()) if endorsement.exists() else None
            )
            index += 1
        if not keys:
            raise FileNotFoundError(f"no agency keys in {directory}")
        return cls(keys, endorsements)


def circle(lat: float, lon: float, radius_m: float) -> dict[str, Any]:
    return {"circle": {"center": [lat, lon], "radius_m": radius_m}}


def polygon(vertices: Sequence[tuple[float, float]]) -> dict[str, Any]:
    return {"polygon": [[lat, lon] for lat, lon in vertices]}


def area_entry(
    entry_id: str,
    *,
    reference: str,
    reason: str,
    contact: str,
    area: dict[str, Any],
    window_start: datetime,
    window_end: datetime,
    wanted_by: datetime,
    upload_url: str,
) -> dict[str, Any]:
    return {
        "id": entry_id,
        "reference": reference,
        "reason": reason,
        "contact": contact,
        "area": area,
        "window": {"start": iso(window_start), "end": iso(window_end)},
        "wanted_by": iso(wanted_by),
        "upload_url": upload_url,
    }


def withdrawn_entry(entry_id: str) -> dict[str, Any]:
    return {"id": entry_id, "withdrawn": True}


def build_feed(
    keys: AgencyKeys,
    *,
    agency: str,
    entries: Sequence[dict[str, Any]],
    sequence: int,
    kind: str = "police",
    issued_at: datetime | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> bytes:
    """The feed file's bytes, signed with the newest key."""
    issued = issued_at or datetime.now(UTC)
    payload = json.dumps(
        {
            "agency": agency,
            "kind": kind,
            "sequence": sequence,
            "issued_at": iso(issued),
            "expires_at": iso(issued + lifetime),
            "entries": list(entries),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    envelope = {
        "doorstep_feed": FEED_VERSION,
        "keys": keys.chain(),
        "payload": _b64(payload),
        "signature": _b64(keys.signing_key.sign(PAYLOAD_CONTEXT + payload)),
    }
    return json.dumps(envelope, indent=1).encode("ascii") + b"\n"

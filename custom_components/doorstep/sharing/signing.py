"""The hub's Ed25519 key: generation, persistence, and signing of manifests.

Requesters get the public key (or its id) out of band and use it to check that the
manifest, and through its hashes every clip, came from this hub unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from custom_components.doorstep.durable import replace_atomically

from .exceptions import SharingError


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class HubKey:
    """The hub's signing key."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> HubKey:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def public_bytes(self) -> bytes:
        """The raw 32-byte public key, as a requester would store it."""
        return self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, pem: bytes) -> HubKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as err:
            raise SharingError("hub key file is not a PEM private key") from err
        if not isinstance(key, Ed25519PrivateKey):
            raise SharingError("hub key file does not hold an Ed25519 key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> HubKey:
        """Load the key at ``path``, or create it (mode 0600, atomically). Blocking."""
        try:
            return cls.from_pem(path.read_bytes())
        except FileNotFoundError:
            pass
        key = cls.generate()
        # A crash leaves either no key or a whole one, never half.
        replace_atomically(path, key.to_pem())
        return key

"""Requester tokens and pickup-link tokens.

Requester tokens are shown once and stored only as SHA-256. Pickup tokens are random and
compared in constant time. Both are checked against a strict alphabet first, so nothing
odd (NUL, ``/``, ``%``, Unicode lookalikes) gets as far as a comparison or a log line.
"""

from __future__ import annotations

from collections.abc import Iterable
import hashlib
import hmac
import re
import secrets

TOKEN_BYTES = 32
# 32 random bytes in unpadded URL-safe base64 are exactly 43 characters.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_token() -> str:
    """A fresh 256-bit URL-safe token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_well_formed_token(value: object) -> bool:
    return isinstance(value, str) and _TOKEN_RE.fullmatch(value) is not None


def hash_token(token: str) -> str:
    """What is stored for a requester token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def new_requester_token() -> tuple[str, str]:
    """A token to show the householder once, and the hash to keep."""
    token = new_token()
    return token, hash_token(token)


def find_by_secret[T](secret: str, candidates: Iterable[tuple[str, T]]) -> T | None:
    """The candidate whose secret equals ``secret``, comparing every one in constant time.

    The loop never stops early, so how long it takes says nothing about which
    candidate (if any) came close. Callers check the secret's shape first.
    """
    found: T | None = None
    encoded = secret.encode("utf-8")
    for candidate, item in candidates:
        if hmac.compare_digest(encoded, candidate.encode("utf-8")) and found is None:
            found = item
    return found

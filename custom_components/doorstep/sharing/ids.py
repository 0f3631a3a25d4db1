"""Ids for requests and clips: ULIDs, validated strictly before they touch anything.

Ids arrive from outside (URLs, service calls, stored state), and clip ids end up in file
names. A strict whitelist on the exact ULID alphabet is simpler to trust than any
attempt to recognise bad input (``../``, NUL, ``%2e``, fullwidth dots, ...).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
import re
import secrets

from .exceptions import InvalidId

# Crockford base32 as ULIDs spell it: no I, L, O, U. Upper case only, so there is one
# spelling per id. The first character is at most 7: 26 chars hold 130 bits, a ULID 128.
_ULID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def is_valid_id(value: object) -> bool:
    """Return whether ``value`` is a ULID in canonical (upper case) form."""
    # fullmatch, not match + $: a trailing newline must not pass.
    return isinstance(value, str) and _ULID_RE.fullmatch(value) is not None


def check_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it is a valid id, else raise :class:`InvalidId`."""
    if not is_valid_id(value):
        raise InvalidId(f"invalid {what}")
    assert isinstance(value, str)
    return value


def new_id(now: datetime) -> str:
    """A new ULID: 48 bits of milliseconds since the epoch, then 80 random bits."""
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def child_path(root: Path, clip_id: str, suffix: str = ".mp4") -> Path:
    """The path of clip ``clip_id`` under ``root``, refusing anything that is not an id.

    The id check alone already rules out separators; resolving and comparing is a
    second, independent fence in case ``root`` holds a symlink planted later.
    """
    check_id(clip_id, "clip id")
    root_resolved = root.resolve()
    candidate = (root_resolved / f"{clip_id}{suffix}").resolve()
    if candidate.parent != root_resolved:
        raise InvalidId("clip path escapes the clips directory")
    return candidate

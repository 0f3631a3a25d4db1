"""The clip contract: what the media room (which records clips) and the sharing room
(which releases them) both work with. Standard library only, so both rooms read it
from below and neither reaches into the other.

* Ids: ULIDs, validated strictly before they touch anything. Ids arrive from outside
  (URLs, service calls, stored state), and clip ids end up in file names. A strict
  whitelist on the exact ULID alphabet is simpler to trust than any attempt to
  recognise bad input (``../``, NUL, ``%2e``, fullwidth dots, ...).
* :class:`ClipInfo`: what a clip source knows about one clip.
* :class:`ClipSource`: what the sharing gate needs from the recorder's clip store.
* :class:`InvalidId`, and the sharing room's base error it derives from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
import re
import secrets
from typing import BinaryIO, Protocol

# Crockford base32 as ULIDs spell it: no I, L, O, U. Upper case only, so there is one
# spelling per id. The first character is at most 7: 26 chars hold 130 bits, a ULID 128.
_ULID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class SharingError(Exception):
    """Base class for every error the sharing room raises on purpose.

    Defined here only because :class:`InvalidId` is one of them: the sharing room's
    callers catch a malformed id together with its other refusals. The rest of the
    family is in ``sharing.exceptions``.
    """


class InvalidId(SharingError):
    """An id from outside is not a well-formed ULID (or is a path in disguise)."""


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


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """What a clip source knows about one clip."""

    id: str
    doorbell_id: str
    start: datetime
    end: datetime
    size: int


class ClipSource(Protocol):
    """What the sharing gate needs from the recorder, as a Protocol so neither room
    imports the other.

    ``media.clips.ClipStore`` implements it for real; tests use a directory-backed
    stand-in. The methods are blocking (they may scan a directory or open a file): the
    gate only calls them from a worker thread.
    """

    def clips_in_window(
        self, start: datetime, end: datetime, doorbell_ids: tuple[str, ...] | None
    ) -> list[ClipInfo]:
        """Finished clips overlapping [start, end), optionally only from these doorbells.

        Unknown doorbell ids simply match nothing: a requester must not be able to probe
        which doorbells exist.
        """

    def open_clip(self, clip_id: str) -> BinaryIO:
        """Open a finished clip for reading; FileNotFoundError if it is gone.

        ``clip_id`` is always a validated ULID when the gate calls this, but an
        implementation must still refuse any path outside its clips directory.
        """

"""Agencies' signed area-request feeds: the format, its verification, and matching at home.

docs/feeds.md is the format's specification; this module is the hub's reading of it.
A feed is refused as a whole (:class:`FeedRejected`) or accepted as a whole: no entry of
a feed that fails any check is ever applied. Accepted entries are matched against the
home's location and footage here, on the hub; the agency never hears which matched.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import hashlib
import json
import math
import random
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
import probatio

from .area import Area, Circle, Point, Polygon, contains, encircles_pole
from .exceptions import FeedRejected
from .models import Delivery, DeliveryMethod, RequesterKind
from .schema import (
    CLOCK_SKEW,
    MAX_CONTACT,
    MAX_REASON,
    MAX_REFERENCE,
    MAX_WANTED_BY,
    MAX_WINDOW,
    RequestFields,
    https_url,
)

FEED_VERSION = 1
# What a signature covers is prefixed, so a feed signature can never pass for a key
# endorsement, a manifest or anything else the same key might sign.
PAYLOAD_CONTEXT = b"doorstep-feed-v1\n"
KEY_CONTEXT = b"doorstep-feed-key-v1\n"

MAX_FEED_BYTES = 1024 * 1024
MAX_ENTRIES = 1000
MAX_VERTICES = 200
MAX_KEYS = 8
MAX_AGENCY_NAME = 128
MAX_ENTRY_ID = 64
MAX_UPLOAD_URL = 2048
MIN_RADIUS_M = 1.0
MAX_RADIUS_M = 50_000.0
# A feed stays valid for at most this long after it was issued: an old signed copy
# replayed by a mirror goes stale instead of reviving withdrawn requests.
MAX_FEED_LIFETIME = timedelta(days=7)

POLL_MIN_S = 15 * 60
POLL_MAX_S = 30 * 60

_ENTRY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")


# -- keys and fingerprints -------------------------------------------------------------


def fingerprint_of(raw_public_key: bytes) -> str:
    """The SHA-256 of the raw 32-byte Ed25519 public key, as 64 lowercase hex digits."""
    return hashlib.sha256(raw_public_key).hexdigest()


def normalize_fingerprint(text: str) -> str | None:
    """A fingerprint as typed from a letter (spaces, colons, any case), or None."""
    cleaned = re.sub(r"[\s:]", "", text).lower()
    return cleaned if _HEX64_RE.fullmatch(cleaned) else None


def display_fingerprint(fingerprint: str) -> str:
    """Groups of four, as agencies print it and people compare it."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


# -- the verified feed -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One open area request, as the agency signed it."""

    id: str
    reference: str
    reason: str
    contact: str
    area: Area
    window_start: datetime
    window_end: datetime
    wanted_by: datetime
    upload_url: str

    def request_fields(self) -> RequestFields:
        """The ordinary request this entry becomes when it matches at home."""
        return RequestFields(
            reference=self.reference,
            reason=self.reason,
            window_start=self.window_start,
            window_end=self.window_end,
            doorbell_ids=None,
            contact=self.contact,
            wanted_by=self.wanted_by,
            delivery=Delivery(DeliveryMethod.UPLOAD, self.upload_url),
        )


@dataclass(frozen=True, slots=True)
class Feed:
    """A feed that passed every check, signed by ``signer`` (a fingerprint)."""

    agency: str
    kind: RequesterKind
    sequence: int
    issued_at: datetime
    expires_at: datetime
    entries: tuple[FeedEntry, ...]
    withdrawn: frozenset[str]
    signer: str


def _reject(detail: str) -> FeedRejected:
    return FeedRejected("malformed", detail)


def _strict_json(raw: bytes, what: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            # Two readers could pick different copies of a repeated key.
            if key in result:
                raise _reject(f"{what} repeats the key {key!r}")
            result[key] = value
        return result

    def no_constant(name: str) -> Any:
        raise _reject(f"{what} contains {name}")

    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=pairs, parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        if isinstance(err, FeedRejected):
            raise
        raise _reject(f"{what} is not JSON") from None


def _b64(value: Any, what: str, *, max_len: int) -> bytes:
    if not isinstance(value, str) or len(value) > max_len or not value.isascii():
        raise _reject(f"{what} must be base64")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error, ValueError:
        raise _reject(f"{what} must be base64") from None


def _object(
    value: Any, what: str, required: set[str], optional: Iterable[str] = ()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _reject(f"{what} must be an object")
    missing = required - set(value)
    if missing:
        raise _reject(f"{what} lacks {sorted(missing)[0]}")
    extra = set(value) - required - set(optional)
    if extra:
        raise _reject(f"{what} has an unknown field")
    return value


def _text(value: Any, what: str, max_len: int, *, multiline: bool = False) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise _reject(f"{what} must be text of 1 to {max_len} characters")
    breaks = "\n" if multiline else ""
    if not all(ch.isprintable() or ch in breaks for ch in value):
        raise _reject(f"{what} must not contain control characters")
    return value


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40 or not value.isascii():
        raise _reject(f"{what} must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _reject(f"{what} must be an ISO 8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _reject(f"{what} must include a UTC offset")
    return parsed.astimezone(UTC)


def _number(value: Any, what: str, low: float, high: float) -> float:
    # bool is an int in Python, and true is no coordinate.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _reject(f"{what} must be a number")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise _reject(f"{what} must be between {low} and {high}")
    return number


def _https_url(value: Any, what: str) -> str:
    # The same rule as requests filed over HTTP.
    try:
        return https_url(value)
    except probatio.Invalid:
        raise _reject(f"{what} must be an https URL") from None


def _point(value: Any, what: str) -> Point:
    if not isinstance(value, list) or len(value) != 2:
        raise _reject(f"{what} must be [latitude, longitude]")
    return Point(_number(value[0], what, -90, 90), _number(value[1], what, -180, 180))


def _area(value: Any, what: str) -> Area:
    if not isinstance(value, dict) or len(value) != 1:
        raise _reject(f"{what} must hold exactly one of circle, polygon")
    if "circle" in value:
        circle = _object(value["circle"], f"{what}.circle", {"center", "radius_m"})
        return Circle(
            _point(circle["center"], f"{what}.circle.center"),
            _number(circle["radius_m"], f"{what}.circle.radius_m", MIN_RADIUS_M, MAX_RADIUS_M),
        )
    if "polygon" in value:
        ring = value["polygon"]
        if not isinstance(ring, list) or not 3 <= len(ring) <= MAX_VERTICES:
            raise _reject(f"{what}.polygon must have 3 to {MAX_VERTICES} vertices")
        vertices = tuple(_point(item, f"{what}.polygon") for item in ring)
        if encircles_pole(vertices):
            raise _reject(f"{what}.polygon must not encircle a pole")
        return Polygon(vertices)
    raise _reject(f"{what} must hold exactly one of circle, polygon")


_ENTRY_FIELDS = {
    "id",
    "reference",
    "reason",
    "contact",
    "area",
    "window",
    "wanted_by",
    "upload_url",
}


def _entry(value: Any, index: int, now: datetime) -> FeedEntry | str:
    """An open entry, or the id of a withdrawn one."""
    what = f"entries[{index}]"
    if isinstance(value, dict) and value.get("withdrawn") is True:
        withdrawn = _object(value, what, {"id", "withdrawn"})
        return _entry_id(withdrawn["id"], what)
    entry = _object(value, what, _ENTRY_FIELDS)
    window = _object(entry["window"], f"{what}.window", {"start", "end"})
    start = _time(window["start"], f"{what}.window.start")
    end = _time(window["end"], f"{what}.window.end")
    if end <= start or end - start > MAX_WINDOW:
        raise _reject(f"{what}.window must run forwards for at most {MAX_WINDOW.days} days")
    # Footage that does not exist yet is surveillance, not a request for evidence.
    if end > now + CLOCK_SKEW:
        raise _reject(f"{what}.window must not end in the future")
    wanted_by = _time(entry["wanted_by"], f"{what}.wanted_by")
    if wanted_by > now + MAX_WANTED_BY + CLOCK_SKEW:
        raise _reject(f"{what}.wanted_by must be at most {MAX_WANTED_BY.days} days ahead")
    return FeedEntry(
        id=_entry_id(entry["id"], what),
        reference=_text(entry["reference"], f"{what}.reference", MAX_REFERENCE),
        reason=_text(entry["reason"], f"{what}.reason", MAX_REASON, multiline=True),
        contact=_text(entry["contact"], f"{what}.contact", MAX_CONTACT),
        area=_area(entry["area"], f"{what}.area"),
        window_start=start,
        window_end=end,
        wanted_by=wanted_by,
        upload_url=_https_url(entry["upload_url"], f"{what}.upload_url"),
    )


def _entry_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or _ENTRY_ID_RE.fullmatch(value) is None:
        raise _reject(f"{what}.id must be 1 to {MAX_ENTRY_ID} of A-Z, a-z, 0-9, '.', '_', '-'")
    return value


def _signing_key(keys: Any, pinned: str) -> tuple[Ed25519PublicKey, str]:
    """The key that must have signed the payload, reached from the pinned one.

    ``keys`` is the agency's chain, oldest first; each later key is endorsed by the one
    before it. The chain is followed from the household's pinned key to its end, so a
    rotated feed verifies and an older key can never come back.
    """
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise _reject(f"keys must list 1 to {MAX_KEYS} keys")
    raws: list[bytes] = []
    endorsements: list[bytes | None] = []
    for index, item in enumerate(keys):
        what = f"keys[{index}]"
        key = _object(item, what, {"public_key"}, {"endorsement"} if index else set())
        raw = _b64(key["public_key"], f"{what}.public_key", max_len=64)
        if len(raw) != 32:
            raise _reject(f"{what}.public_key must be a raw Ed25519 key")
        raws.append(raw)
        if index:
            if "endorsement" not in key:
                raise _reject(f"{what} lacks endorsement")
            endorsements.append(_b64(key["endorsement"], f"{what}.endorsement", max_len=128))
        else:
            endorsements.append(None)
    fingerprints = [fingerprint_of(raw) for raw in raws]
    if pinned not in fingerprints:
        raise FeedRejected("unknown_key", "the pinned key is not in the feed's key chain")
    start = fingerprints.index(pinned)
    current = Ed25519PublicKey.from_public_bytes(raws[start])
    for raw, endorsement in zip(raws[start + 1 :], endorsements[start + 1 :], strict=True):
        assert endorsement is not None
        try:
            current.verify(endorsement, KEY_CONTEXT + raw)
        except InvalidSignature:
            raise FeedRejected("bad_signature", "a key endorsement does not verify") from None
        current = Ed25519PublicKey.from_public_bytes(raw)
    return current, fingerprints[-1]


def verify_feed(
    raw: bytes, pinned: str, *, now: datetime, last_sequence: int | None = None
) -> Feed:
    """Check a fetched feed completely, or raise :class:`FeedRejected`.

    ``pinned`` is the fingerprint the household trusts (the one it subscribed with, or
    the newest one a verified rotation led to). ``last_sequence`` is the sequence of the
    last feed applied: an older one is a replay.
    """
    payload_bytes, signer = _signed_payload(raw, pinned)
    # Only signed bytes are parsed from here on.
    payload = _object(
        _strict_json(payload_bytes, "payload"),
        "payload",
        {"agency", "kind", "sequence", "issued_at", "expires_at", "entries"},
    )
    sequence = _sequence(payload["sequence"], last_sequence)
    issued_at, expires_at = _lifetime(payload["issued_at"], payload["expires_at"], now)
    kind_value = payload["kind"]
    if kind_value not in {kind.value for kind in RequesterKind}:
        raise _reject("kind must be one of " + ", ".join(kind.value for kind in RequesterKind))
    entries, withdrawn = _entries(payload["entries"], now)
    return Feed(
        agency=_text(payload["agency"], "agency", MAX_AGENCY_NAME),
        kind=RequesterKind(kind_value),
        sequence=sequence,
        issued_at=issued_at,
        expires_at=expires_at,
        entries=entries,
        withdrawn=withdrawn,
        signer=signer,
    )


def _signed_payload(raw: bytes, pinned: str) -> tuple[bytes, str]:
    """The envelope's payload bytes once their signature verifies under a key the pinned
    fingerprint leads to, with that key's fingerprint."""
    if len(raw) > MAX_FEED_BYTES:
        raise FeedRejected("too_large", f"feed is larger than {MAX_FEED_BYTES} bytes")
    envelope = _object(
        _strict_json(raw, "feed"), "feed", {"doorstep_feed", "keys", "payload", "signature"}
    )
    if envelope["doorstep_feed"] != FEED_VERSION or isinstance(envelope["doorstep_feed"], bool):
        raise _reject(f"doorstep_feed must be {FEED_VERSION}")
    key, signer = _signing_key(envelope["keys"], pinned)
    payload_bytes = _b64(envelope["payload"], "payload", max_len=MAX_FEED_BYTES)
    signature = _b64(envelope["signature"], "signature", max_len=128)
    try:
        key.verify(signature, PAYLOAD_CONTEXT + payload_bytes)
    except InvalidSignature:
        raise FeedRejected("bad_signature", "the payload's signature does not verify") from None
    return payload_bytes, signer


def _sequence(value: Any, last_sequence: int | None) -> int:
    """The feed's sequence, refused when it is not a number or older than the last one."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise _reject("sequence must be a whole number from 0")
    if last_sequence is not None and value < last_sequence:
        raise FeedRejected("replayed", f"sequence {value} is older than {last_sequence}")
    return value


def _lifetime(issued: Any, expires: Any, now: datetime) -> tuple[datetime, datetime]:
    """When the feed was issued and until when it holds, checked against ``now``."""
    issued_at = _time(issued, "issued_at")
    expires_at = _time(expires, "expires_at")
    if issued_at > now + CLOCK_SKEW:
        raise _reject("issued_at must not be in the future")
    if expires_at <= issued_at or expires_at - issued_at > MAX_FEED_LIFETIME:
        raise _reject(f"expires_at must follow issued_at by at most {MAX_FEED_LIFETIME.days} days")
    if now >= expires_at:
        raise FeedRejected("stale", "the feed has expired")
    return issued_at, expires_at


def _entries(items: Any, now: datetime) -> tuple[tuple[FeedEntry, ...], frozenset[str]]:
    """The open entries and the ids of withdrawn ones; an id may appear only once."""
    if not isinstance(items, list) or len(items) > MAX_ENTRIES:
        raise _reject(f"entries must be a list of at most {MAX_ENTRIES}")
    entries: list[FeedEntry] = []
    withdrawn: set[str] = set()
    seen: set[str] = set()
    for index, item in enumerate(items):
        parsed = _entry(item, index, now)
        entry_id = parsed if isinstance(parsed, str) else parsed.id
        if entry_id in seen:
            raise _reject(f"entries[{index}].id repeats an earlier entry")
        seen.add(entry_id)
        if isinstance(parsed, str):
            withdrawn.add(parsed)
        else:
            entries.append(parsed)
    return tuple(entries), frozenset(withdrawn)


def key_fingerprints(raw: bytes) -> list[str]:
    """The fingerprints in a feed's key chain, oldest first, without verifying anything.

    For the subscription form only: it shows the household what the feed host offered,
    so a typo and a wrong feed can be told apart. Trust still comes from the fingerprint
    the household typed, never from this list.
    """
    if len(raw) > MAX_FEED_BYTES:
        raise FeedRejected("too_large", f"feed is larger than {MAX_FEED_BYTES} bytes")
    envelope = _strict_json(raw, "feed")
    keys = envelope.get("keys") if isinstance(envelope, dict) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise _reject("keys must be a list")
    fingerprints = []
    for index, item in enumerate(keys):
        if not isinstance(item, dict):
            raise _reject(f"keys[{index}] must be an object")
        fingerprints.append(
            fingerprint_of(_b64(item.get("public_key"), f"keys[{index}].public_key", max_len=64))
        )
    return fingerprints


# -- matching at home ------------------------------------------------------------------


def area_covers(area: Area, homes: Iterable[Point]) -> bool:
    """Whether any of the home's places (the house, or a doorbell set elsewhere) is inside."""
    return any(contains(area, home) for home in homes)


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """What applying an accepted feed does, worked out before anything changes."""

    # Entries never seen before, still wanted: each is matched, then filed or dropped.
    new: tuple[FeedEntry, ...]
    # Requests filed from entries the agency has since withdrawn or dropped from its feed.
    withdrawn_request_ids: tuple[str, ...]
    # Entries past their wanted-by time; dropped like non-matches.
    expired: int


def plan_feed(feed: Feed, handled: Mapping[str, str | None], *, now: datetime) -> FeedPlan:
    """Split ``feed`` against the entries already handled.

    ``handled`` maps each entry id this hub has decided on to the request it filed, or
    None when the entry did not match. A handled entry is never filed twice, whatever the
    household did with its request; an entry that left the feed, or was withdrawn,
    closes its request if still pending.
    """
    current = {entry.id for entry in feed.entries}
    new = tuple(
        entry for entry in feed.entries if entry.id not in handled and entry.wanted_by > now
    )
    expired = sum(1 for entry in feed.entries if entry.id not in handled and entry.wanted_by <= now)
    gone = sorted(
        request_id
        for entry_id, request_id in handled.items()
        if request_id is not None and (entry_id in feed.withdrawn or entry_id not in current)
    )
    return FeedPlan(new=new, withdrawn_request_ids=tuple(gone), expired=expired)


def entry_matches(
    entry: FeedEntry,
    homes: Sequence[Point],
    has_footage: Callable[[datetime, datetime], bool],
) -> bool:
    """An entry matches when the home is inside its area and footage exists in its window.

    The area is checked first: it costs nothing, and most entries of any feed are for
    other towns.
    """
    return area_covers(entry.area, homes) and has_footage(entry.window_start, entry.window_end)


# -- polling ---------------------------------------------------------------------------


def poll_delay(rng: random.Random | None = None) -> float:
    """Seconds until the next fetch: uniform in 15 to 30 minutes, so no two hubs (and no
    two polls of one hub) line up in a way the feed host could use to tell them apart."""
    return (rng or random.SystemRandom()).uniform(POLL_MIN_S, POLL_MAX_S)

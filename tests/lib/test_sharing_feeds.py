"""The feed format (docs/feeds.md): the hub's reader against the reference agency's writer.

Nothing of a feed that fails a check is applied, so every refusal here is whole: the
property tests check that a damaged feed never yields an entry the agency did not sign.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
import json
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.doorstep.sharing import RequesterKind
from custom_components.doorstep.sharing.area import Circle, Point, Polygon
from custom_components.doorstep.sharing.exceptions import FeedRejected
from custom_components.doorstep.sharing.feeds import (
    MAX_ENTRIES,
    MAX_FEED_BYTES,
    MAX_VERTICES,
    POLL_MAX_S,
    POLL_MIN_S,
    Feed,
    display_fingerprint,
    entry_matches,
    key_fingerprints,
    normalize_fingerprint,
    plan_feed,
    poll_delay,
    verify_feed,
)
from reference_doorbell.agency_feed import (
    AgencyKeys,
    area_entry,
    build_feed,
    circle,
    polygon,
    withdrawn_entry,
)

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
HOME = Point(47.3779, 8.5403)
KEYS = AgencyKeys.generate()
UPLOAD = "https://evidence.agency.example/upload"


def entry(entry_id: str = "e1", **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "reference": "ZH-2026-117",
        "reason": "Bicycle theft on Bahnhofstrasse between 01:00 and 02:00.",
        "contact": "Kantonspolizei Zürich, +41 44 247 22 11",
        "area": circle(47.378, 8.540, 500),
        "window_start": NOW - timedelta(hours=7),
        "window_end": NOW - timedelta(hours=6),
        "wanted_by": NOW + timedelta(days=14),
        "upload_url": UPLOAD,
    }
    fields.update(overrides)
    return area_entry(entry_id, **fields)


def feed_bytes(
    entries: list[dict[str, Any]] | None = None,
    *,
    keys: AgencyKeys = KEYS,
    sequence: int = 5,
    issued_at: datetime = NOW - timedelta(minutes=10),
    **kwargs: Any,
) -> bytes:
    return build_feed(
        keys,
        agency="Kantonspolizei Zürich",
        entries=[entry()] if entries is None else entries,
        sequence=sequence,
        issued_at=issued_at,
        **kwargs,
    )


def verify(raw: bytes, pinned: str | None = None, **kwargs: Any) -> Feed:
    return verify_feed(raw, pinned or KEYS.fingerprint(), now=NOW, **kwargs)


def reason_of(raw: bytes, pinned: str | None = None, **kwargs: Any) -> str:
    with pytest.raises(FeedRejected) as caught:
        verify(raw, pinned, **kwargs)
    return caught.value.reason


def outcome(raw: bytes) -> Feed | str:
    """The verified feed, or the reason it was refused."""
    try:
        return verify(raw)
    except FeedRejected as err:
        return err.reason


def resign(raw: bytes, change: Any, keys: AgencyKeys = KEYS) -> bytes:
    """Edit the payload, then sign it properly: a well-signed feed that breaks a rule."""
    envelope = json.loads(raw)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    change(payload)
    data = json.dumps(payload).encode()
    envelope["payload"] = base64.b64encode(data).decode()
    envelope["signature"] = base64.b64encode(
        keys.signing_key.sign(b"doorstep-feed-v1\n" + data)
    ).decode()
    return json.dumps(envelope).encode()


# -- accepted feeds --------------------------------------------------------------------


def test_a_valid_feed_reads_back() -> None:
    feed = verify(feed_bytes([entry("e1"), withdrawn_entry("e0")]))
    assert feed.agency == "Kantonspolizei Zürich"
    assert feed.kind is RequesterKind.POLICE
    assert feed.sequence == 5
    assert feed.withdrawn == {"e0"}
    (only,) = feed.entries
    assert only.id == "e1"
    assert only.area == Circle(Point(47.378, 8.540), 500)
    assert only.window_end == NOW - timedelta(hours=6)
    fields = only.request_fields()
    assert fields.delivery.upload_url == UPLOAD
    assert fields.doorbell_ids is None
    assert feed.signer == KEYS.fingerprint()


def test_polygon_entries_read_back() -> None:
    shape = [(47.37, 8.53), (47.37, 8.545), (47.38, 8.545)]
    feed = verify(feed_bytes([entry(area=polygon(shape))]))
    assert feed.entries[0].area == Polygon(tuple(Point(lat, lon) for lat, lon in shape))


def test_fingerprints_as_typed() -> None:
    fingerprint = KEYS.fingerprint()
    shown = display_fingerprint(fingerprint)
    assert len(shown.split()) == 16
    assert normalize_fingerprint(shown.upper()) == fingerprint
    assert normalize_fingerprint(":".join(shown.split())) == fingerprint
    assert normalize_fingerprint(fingerprint[:-1]) is None
    assert normalize_fingerprint("zz" + fingerprint[2:]) is None
    assert key_fingerprints(feed_bytes()) == [fingerprint]


# -- refused feeds ---------------------------------------------------------------------


def test_oversized_feed_is_refused_before_parsing() -> None:
    assert reason_of(b" " * (MAX_FEED_BYTES + 1)) == "too_large"


def test_feed_signed_by_another_key_is_unknown() -> None:
    assert reason_of(feed_bytes(keys=AgencyKeys.generate())) == "unknown_key"


def test_tampered_payload_fails_the_signature() -> None:
    envelope = json.loads(feed_bytes())
    payload = base64.b64decode(envelope["payload"]).replace(b"500", b"900")
    envelope["payload"] = base64.b64encode(payload).decode()
    assert reason_of(json.dumps(envelope).encode()) == "bad_signature"


def test_older_sequence_is_a_replay() -> None:
    assert reason_of(feed_bytes(sequence=4), last_sequence=5) == "replayed"
    assert verify(feed_bytes(sequence=5), last_sequence=5).sequence == 5


def test_expired_feed_is_stale() -> None:
    old = feed_bytes(issued_at=NOW - timedelta(days=3), lifetime=timedelta(days=2))
    assert reason_of(old) == "stale"


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"wanted_by": NOW + timedelta(days=31)}, "far-future wanted_by"),
        ({"window_end": NOW + timedelta(hours=1)}, "footage from the future"),
        ({"window_start": NOW - timedelta(days=9)}, "window over 7 days"),
        ({"reference": "x" * 65}, "long reference"),
        ({"contact": "a\x00b"}, "control character"),
        ({"upload_url": "http://agency.example/upload"}, "plain http upload"),
        ({"area": circle(47.3, 8.5, 60_000)}, "radius over 50 km"),
        ({"area": circle(91, 8.5, 500)}, "latitude out of range"),
        ({"area": polygon([(47.3, 8.5), (47.4, 8.5)])}, "two vertices"),
        (
            {"area": polygon([(47 + i / 1000, 8.5 + (i % 2) / 1000) for i in range(201)])},
            "too many vertices",
        ),
        ({"area": polygon([(80, 0), (80, 90), (80, 180), (80, -90)])}, "ring around the pole"),
        ({"area": {"circle": {"center": [47, 8], "radius_m": True}}}, "boolean radius"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_an_entry_breaking_a_rule_refuses_the_whole_feed(
    overrides: dict[str, Any], why: str
) -> None:
    raw = feed_bytes([entry("good"), entry("bad", **overrides)])
    assert reason_of(raw) == "malformed", why


def test_limits_on_count_and_vertices_are_the_documented_ones() -> None:
    assert MAX_VERTICES == 200
    many = [withdrawn_entry(f"w{i}") for i in range(MAX_ENTRIES + 1)]
    assert reason_of(feed_bytes(many)) == "malformed"
    assert len(verify(feed_bytes(many[:MAX_ENTRIES])).withdrawn) == MAX_ENTRIES


def test_repeated_entry_id_or_key_is_refused() -> None:
    assert reason_of(feed_bytes([entry("e1"), withdrawn_entry("e1")])) == "malformed"
    raw = feed_bytes().replace(b'"sequence"', b'"sequence":1,"sequence"')
    # Only signed bytes are parsed; repeat the key in the envelope instead.
    assert reason_of(b'{"doorstep_feed":1,' + raw.lstrip()[1:]) == "malformed"


def test_unknown_fields_and_versions_are_refused() -> None:
    assert reason_of(resign(feed_bytes(), lambda p: p.update(extra=1))) == "malformed"
    envelope = json.loads(feed_bytes())
    envelope["doorstep_feed"] = 2
    assert reason_of(json.dumps(envelope).encode()) == "malformed"
    assert reason_of(resign(feed_bytes(), lambda p: p.update(kind="army"))) == "malformed"


# -- key rotation ----------------------------------------------------------------------


def test_rotation_is_followed_from_the_pinned_key_and_never_back() -> None:
    keys = AgencyKeys.generate()
    first = keys.fingerprint()
    old_feed = feed_bytes(keys=keys, sequence=1)
    keys.rotate()
    rotated = verify(feed_bytes(keys=keys, sequence=2), first)
    assert rotated.signer == keys.fingerprint() != first
    # A household now pinned to the new key refuses the old key's feeds: no rollback.
    assert reason_of(old_feed, rotated.signer) == "unknown_key"
    keys.rotate()
    assert verify(feed_bytes(keys=keys, sequence=3), first).signer == keys.fingerprint()


def test_a_forged_rotation_fails() -> None:
    keys = AgencyKeys.generate()
    pinned = keys.fingerprint()
    keys.rotate()
    # Someone else's endorsement of the new key: the chain breaks at the new link.
    keys.endorsements[1] = AgencyKeys.generate().signing_key.sign(b"x")
    assert reason_of(feed_bytes(keys=keys), pinned) == "bad_signature"


# -- property tests --------------------------------------------------------------------

_VALID = feed_bytes([entry("e1"), entry("e2", area=circle(-33.9, 151.2, 2000))])
_VALID_FEED = verify(_VALID)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_byte_change_yields_an_unsigned_entry(data: st.DataObject) -> None:
    """Flip, drop or insert bytes anywhere: the feed is refused, or reads exactly as signed."""
    raw = bytearray(_VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "drop":
            del raw[at]
        else:
            raw.insert(at, data.draw(st.integers(0, 255)))
    result = outcome(bytes(raw))
    assert result in {"malformed", "bad_signature", "unknown_key", _VALID_FEED}


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused_cleanly(raw: bytes) -> None:
    with pytest.raises(FeedRejected):
        verify(raw)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.sampled_from(["id", "reference", "area", "window", "wanted_by", "upload_url"]), _json)
def test_a_signed_entry_with_a_wrong_field_refuses_the_feed(field: str, value: Any) -> None:
    """Well signed, badly formed: refused, unless the random value happens to be valid."""

    def change(payload: dict[str, Any]) -> None:
        payload["entries"][0][field] = value

    result = outcome(resign(_VALID, change))
    assert result == "malformed" or (isinstance(result, Feed) and len(result.entries) == 2)


@given(
    days=st.integers(-40, 40),
    withdrawn=st.booleans(),
)
def test_wanted_by_rules(days: int, withdrawn: bool) -> None:
    """Beyond 30 days ahead refuses the feed; already past is accepted and dropped."""
    wanted_by = NOW + timedelta(days=days, minutes=10)
    raw = feed_bytes(
        [entry("e1", wanted_by=wanted_by)] + ([withdrawn_entry("e0")] if withdrawn else [])
    )
    if days >= 30:
        assert reason_of(raw) == "malformed"
        return
    feed = verify(raw)
    plan = plan_feed(feed, {"e0": "01REQUEST"} if withdrawn else {}, now=NOW)
    assert plan.withdrawn_request_ids == (("01REQUEST",) if withdrawn else ())
    if days >= 0:
        assert [e.id for e in plan.new] == ["e1"]
    else:
        assert plan.new == ()
        assert plan.expired == 1


# -- planning and matching -------------------------------------------------------------


def test_plan_files_new_entries_once_and_closes_dropped_ones() -> None:
    feed = verify(feed_bytes([entry("e1"), entry("e2"), withdrawn_entry("e3")]))
    plan = plan_feed(feed, {"e1": "R1", "e3": "R3", "e4": "R4", "e5": None}, now=NOW)
    assert [e.id for e in plan.new] == ["e2"]
    # e3 withdrawn, e4 no longer in the feed; e5 never matched, so nothing to close.
    assert plan.withdrawn_request_ids == ("R3", "R4")


@pytest.mark.parametrize(
    ("area", "footage", "expected"),
    [
        (circle(47.378, 8.540, 500), True, True),
        (circle(47.378, 8.540, 500), False, False),
        (circle(46.949, 7.439, 500), True, False),
        (polygon([(47.37, 8.53), (47.37, 8.55), (47.38, 8.55), (47.38, 8.53)]), True, True),
    ],
    ids=["inside-with-footage", "inside-without-footage", "elsewhere", "polygon"],
)
def test_an_entry_matches_only_inside_with_footage(
    area: dict[str, Any], footage: bool, expected: bool
) -> None:
    (parsed,) = verify(feed_bytes([entry(area=area)])).entries
    asked: list[tuple[datetime, datetime]] = []

    def has_footage(start: datetime, end: datetime) -> bool:
        asked.append((start, end))
        return footage

    assert entry_matches(parsed, [HOME], has_footage) is expected
    if asked:
        assert asked == [(parsed.window_start, parsed.window_end)]


def test_a_doorbell_elsewhere_can_match_when_the_house_does_not() -> None:
    (parsed,) = verify(feed_bytes([entry(area=circle(46.949, 7.439, 500))])).entries
    assert entry_matches(parsed, [HOME, Point(46.9491, 7.4391)], lambda _s, _e: True)


@given(st.randoms(use_true_random=False))
def test_poll_delay_stays_in_15_to_30_minutes(rng: Any) -> None:
    assert POLL_MIN_S <= poll_delay(rng) <= POLL_MAX_S


@given(sequence=st.integers(0, 50), last=st.integers(0, 50))
def test_an_older_sequence_is_always_a_replay(sequence: int, last: int) -> None:
    result = outcome_after(feed_bytes(sequence=sequence), last)
    if sequence < last:
        assert result == "replayed"
    else:
        assert isinstance(result, Feed)
        assert result.sequence == sequence


def outcome_after(raw: bytes, last_sequence: int) -> Feed | str:
    try:
        return verify(raw, last_sequence=last_sequence)
    except FeedRejected as err:
        return err.reason


_CHAIN = AgencyKeys.generate()
_CHAIN_FEEDS: list[bytes] = []
for _ in range(4):
    _CHAIN_FEEDS.append(feed_bytes(keys=_CHAIN, sequence=len(_CHAIN_FEEDS)))
    _CHAIN.rotate()


@settings(max_examples=60)
@given(published=st.integers(0, 3), pinned=st.integers(0, 3))
def test_rotation_verifies_forwards_only(published: int, pinned: int) -> None:
    """A feed from after ``published`` rotations, read by a hub pinned to key ``pinned``:
    accepted (signed by that feed's newest key) when the pin is in its chain, else unknown."""
    result: Feed | str
    try:
        result = verify_feed(_CHAIN_FEEDS[published], _CHAIN.fingerprint(pinned), now=NOW)
    except FeedRejected as err:
        result = err.reason
    if pinned <= published:
        assert isinstance(result, Feed)
        assert result.signer == _CHAIN.fingerprint(published)
    else:
        assert result == "unknown_key"

"""The shared request schema: valid bodies pass, everything else fails with a field name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
from typing import Any

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.doorstep.sharing import (
    DeliveryMethod,
    InvalidRequest,
    parse_request_body,
    validate_request,
)
from custom_components.doorstep.sharing.schema import MAX_BODY_BYTES

from .test_sharing_fixtures import START, request_body

NOW = START


def test_valid_body() -> None:
    fields = validate_request(parse_request_body(json.dumps(request_body(NOW)).encode()), now=NOW)
    assert fields.reference == "CASE-2025-0042"
    assert fields.delivery.method is DeliveryMethod.PICKUP
    assert fields.window_start.tzinfo is UTC
    assert fields.doorbell_ids is None


def test_upload_delivery_and_doorbells() -> None:
    fields = validate_request(
        request_body(
            NOW,
            delivery={"method": "upload", "url": "https://evidence.example:8443/in?case=1"},
            doorbells=["front", "garage-2"],
        ),
        now=NOW,
    )
    assert fields.delivery.upload_url == "https://evidence.example:8443/in?case=1"
    assert fields.doorbell_ids == ("front", "garage-2")


def later(**delta: float) -> str:
    return (NOW + timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"reference": ""}, "reference"),
        ({"reference": "x" * 65}, "reference"),
        ({"reference": "a\nb"}, "reference"),
        ({"reference": 42}, "reference"),
        ({"reason": "   "}, "reason"),
        ({"reason": "bell\x00"}, "reason"),
        ({"contact": None}, "contact"),
        ({"wanted_by": later(days=31)}, "wanted_by"),
        ({"wanted_by": later(seconds=-1)}, "wanted_by"),
        ({"wanted_by": "2025-03-02T00:00:00"}, "wanted_by"),  # no offset
        ({"wanted_by": "soon"}, "wanted_by"),
        ({"window": {"start": later(hours=-1), "end": later(hours=-2)}}, "window.end"),
        ({"window": {"start": later(days=-9), "end": later(hours=-1)}}, "window"),
        ({"window": {"start": later(hours=-1), "end": later(hours=1)}}, "window.end"),
        ({"window": {"start": later(hours=-1)}}, "window.end"),
        ({"window": {"start": later(hours=-2), "end": later(hours=-1), "x": 1}}, "window.x"),
        ({"doorbells": []}, "doorbells"),
        ({"doorbells": ["../front"]}, "doorbells"),
        ({"doorbells": ["front", "front"]}, "doorbells"),
        ({"doorbells": "front"}, "doorbells"),
        ({"delivery": {"method": "email"}}, "delivery.method"),
        ({"delivery": {"method": "upload"}}, "delivery.url"),
        ({"delivery": {"method": "upload", "url": "http://x.example/"}}, "delivery.url"),
        ({"delivery": {"method": "upload", "url": "https://u:p@x.example/"}}, "delivery.url"),
        ({"delivery": {"method": "upload", "url": "https:///nohost"}}, "delivery.url"),
        ({"delivery": {"method": "upload", "url": "https://x.example/ a"}}, "delivery.url"),
        ({"delivery": {"method": "upload", "url": "https://bücher.example/"}}, "delivery.url"),
        ({"delivery": {"method": "upload", "url": "file:///etc/passwd"}}, "delivery.url"),
        ({"delivery": {"method": "pickup", "url": "https://x.example/"}}, "delivery"),
        ({"surprise": 1}, "surprise"),
        ({"Évil\u202e": 1}, "?"),
    ],
)
def test_field_level_errors(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        validate_request(request_body(NOW, **overrides), now=NOW)
    assert err.value.field == field
    assert err.value.message


def test_missing_field() -> None:
    body = request_body(NOW)
    del body["reason"]
    with pytest.raises(InvalidRequest) as err:
        validate_request(body, now=NOW)
    assert err.value.field == "reason"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b"null",
        b"\xff\xfe",
        b'{"a": NaN}',
        b'{"a": 1, "a": 2}',
        b"[" * 20000,
        b"{" + b" " * MAX_BODY_BYTES + b"}",
    ],
)
def test_bad_bodies(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_request_body(raw)
    assert err.value.field == "body"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=8,
)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from([*request_body(NOW), "doorbells", "x"]), json_values))
def test_fuzz_only_invalid_request_escapes(body: dict[str, Any]) -> None:
    try:
        validate_request(body, now=NOW)
    except InvalidRequest as err:
        field = err.field
    else:
        return
    assert field.split(".")[0] in {*request_body(NOW), "doorbells", "x", "body", "?"}


@settings(max_examples=100, deadline=None)
@given(
    key=st.sampled_from(sorted(request_body(NOW))),
    value=json_values,
)
def test_fuzz_one_bad_field(key: str, value: Any) -> None:
    try:
        validate_request(request_body(NOW, **{key: value}), now=NOW)
    except InvalidRequest as err:
        field = err.field
    else:
        return
    assert field.split(".")[0] == key


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_raw_bytes(raw: bytes) -> None:
    try:
        data = parse_request_body(raw)
    except InvalidRequest:
        return
    assert isinstance(data, dict)


@settings(max_examples=100, deadline=None)
@given(
    reference=st.text(st.characters(categories=["L", "N", "P"]), min_size=1, max_size=64),
    hours_back=st.integers(1, 24 * 30),
    span_minutes=st.integers(1, 60 * 24 * 7),
    days_ahead=st.integers(1, 30),
)
def test_fuzz_valid_requests_pass(
    reference: str, hours_back: int, span_minutes: int, days_ahead: int
) -> None:
    end = NOW - timedelta(hours=hours_back)
    start = end - timedelta(minutes=span_minutes)
    body = request_body(
        NOW,
        reference=reference,
        window={"start": start.isoformat(), "end": end.isoformat().replace("+00:00", "Z")},
        wanted_by=(NOW + timedelta(days=days_ahead)).isoformat(),
    )
    fields = validate_request(parse_request_body(json.dumps(body).encode()), now=NOW)
    assert fields.window_end == end
    assert fields.reference == reference


def test_naive_datetime_objects_from_services_are_refused() -> None:
    body = request_body(NOW, wanted_by=datetime(2025, 3, 5))
    with pytest.raises(InvalidRequest) as err:
        validate_request(body, now=NOW)
    assert err.value.field == "wanted_by"

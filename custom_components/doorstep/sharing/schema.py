"""The one validation schema for incoming requests, shared by HTTP and the service.

Both entry points call :func:`validate_request`; the HTTP view first turns raw bytes into
a dict with :func:`parse_request_body`. Every failure is an :class:`InvalidRequest`
naming the field, so the caller can answer 400 with a message a person can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import json
import re
from typing import Any
from urllib.parse import urlsplit

import probatio

from .exceptions import InvalidRequest
from .models import Delivery, DeliveryMethod

MAX_BODY_BYTES = 16 * 1024
MAX_REFERENCE = 64
MAX_REASON = 2000
MAX_CONTACT = 256
MAX_URL = 2048
MAX_DOORBELLS = 16
MAX_WANTED_BY = timedelta(days=30)
MAX_WINDOW = timedelta(days=7)
# Clocks disagree a little; a window may end slightly after our "now".
CLOCK_SKEW = timedelta(minutes=5)

# Same rule as the device protocol's device ids (docs/protocol.md), repeated here because
# this room may not import its siblings through the integration package.
_DOORBELL_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_FIELD_NAME_RE = re.compile(r"[a-z_]{1,32}")


def _text(max_len: int, *, multiline: bool = False) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if not isinstance(value, str):
            raise probatio.Invalid("must be a string")
        if not value.strip():
            raise probatio.Invalid("must not be empty")
        if len(value) > max_len:
            raise probatio.Invalid(f"must be at most {max_len} characters")
        allowed_breaks = "\n" if multiline else ""
        if not all(ch.isprintable() or ch in allowed_breaks for ch in value):
            raise probatio.Invalid("must not contain control characters")
        return value

    return validate


def _timestamp(value: Any) -> datetime:
    """An ISO 8601 time with a UTC offset, returned in UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and len(value) <= 40 and value.isascii():
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise probatio.Invalid("must be an ISO 8601 time") from None
    else:
        raise probatio.Invalid("must be an ISO 8601 time")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise probatio.Invalid("must include a UTC offset, for example 2025-01-31T18:00:00Z")
    return parsed.astimezone(UTC)


def _doorbell_id(value: Any) -> str:
    if not isinstance(value, str) or _DOORBELL_ID_RE.fullmatch(value) is None:
        raise probatio.Invalid("must be a doorbell id (1-32 of a-z, 0-9, -)")
    return value


def _doorbell_ids(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise probatio.Invalid("must be a list of doorbell ids")
    if not 1 <= len(value) <= MAX_DOORBELLS:
        raise probatio.Invalid(f"must list 1 to {MAX_DOORBELLS} doorbells")
    ids = tuple(_doorbell_id(item) for item in value)
    if len(set(ids)) != len(ids):
        raise probatio.Invalid("must not repeat a doorbell")
    return ids


def https_url(value: Any) -> str:
    """An absolute https URL without credentials or fragment."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_URL:
        raise probatio.Invalid(f"must be an https URL of at most {MAX_URL} characters")
    # Non-ASCII hosts must come IDNA-encoded; whitespace and controls never belong.
    if not value.isascii() or any(ch <= " " or ch == "\x7f" for ch in value):
        raise probatio.Invalid("must be an https URL without spaces or non-ASCII characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise probatio.Invalid("must be a valid https URL") from None
    if parts.scheme != "https":
        raise probatio.Invalid("must use https")
    if not parts.hostname:
        raise probatio.Invalid("must name a host")
    if parts.username is not None or parts.password is not None:
        raise probatio.Invalid("must not contain credentials")
    if parts.fragment:
        raise probatio.Invalid("must not contain a fragment")
    if port == 0:
        raise probatio.Invalid("must not use port 0")
    return value


def _delivery(value: Any) -> Delivery:
    if not isinstance(value, Mapping):
        raise probatio.Invalid("must be an object with a method")
    method = value.get("method")
    if method == DeliveryMethod.PICKUP.value:
        extra = set(value) - {"method"}
        if extra:
            raise probatio.Invalid("pickup takes no other fields")
        return Delivery(DeliveryMethod.PICKUP)
    if method == DeliveryMethod.UPLOAD.value:
        extra = set(value) - {"method", "url"}
        if extra:
            raise probatio.Invalid("upload takes only a url")
        if "url" not in value:
            raise probatio.Invalid("required key not provided", path=["url"])
        try:
            url = https_url(value["url"])
        except probatio.Invalid as err:
            raise probatio.Invalid(err.msg, path=["url"]) from None
        return Delivery(DeliveryMethod.UPLOAD, url)
    raise probatio.Invalid("must be pickup or upload", path=["method"])


WINDOW_SCHEMA = probatio.Schema(
    {probatio.Required("start"): _timestamp, probatio.Required("end"): _timestamp},
    extra=probatio.PREVENT_EXTRA,
)

REQUEST_SCHEMA = probatio.Schema(
    {
        probatio.Required("reference"): _text(MAX_REFERENCE),
        probatio.Required("reason"): _text(MAX_REASON, multiline=True),
        probatio.Required("window"): WINDOW_SCHEMA,
        probatio.Optional("doorbells"): _doorbell_ids,
        probatio.Required("contact"): _text(MAX_CONTACT),
        probatio.Required("wanted_by"): _timestamp,
        probatio.Required("delivery"): _delivery,
    },
    extra=probatio.PREVENT_EXTRA,
)


@dataclass(frozen=True, slots=True)
class RequestFields:
    """A validated request, ready for the gate."""

    reference: str
    reason: str
    window_start: datetime
    window_end: datetime
    doorbell_ids: tuple[str, ...] | None
    contact: str
    wanted_by: datetime
    delivery: Delivery


def _field_name(path: list[Any]) -> str:
    # Paths can hold keys an attacker chose; echo only ones that look like our fields.
    parts = [
        str(part) if isinstance(part, int) or _FIELD_NAME_RE.fullmatch(str(part)) else "?"
        for part in path
    ]
    return ".".join(parts) or "body"


def validate_request(data: Any, *, now: datetime) -> RequestFields:
    """Check ``data`` against :data:`REQUEST_SCHEMA` and the clock-relative limits."""
    if not isinstance(data, Mapping):
        raise InvalidRequest("body", "must be a JSON object")
    try:
        clean = REQUEST_SCHEMA(dict(data))
    except probatio.MultipleInvalid as err:
        first = err.errors[0]
        raise InvalidRequest(_field_name(first.path), first.error_message) from None
    except probatio.Invalid as err:
        raise InvalidRequest(_field_name(err.path), err.error_message) from None
    start: datetime = clean["window"]["start"]
    end: datetime = clean["window"]["end"]
    if end <= start:
        raise InvalidRequest("window.end", "must be after window.start")
    if end - start > MAX_WINDOW:
        raise InvalidRequest("window", f"must span at most {MAX_WINDOW.days} days")
    # Footage that does not exist yet is surveillance, not a request for evidence.
    if end > now + CLOCK_SKEW:
        raise InvalidRequest("window.end", "must not be in the future")
    wanted_by: datetime = clean["wanted_by"]
    if wanted_by <= now:
        raise InvalidRequest("wanted_by", "must be in the future")
    if wanted_by > now + MAX_WANTED_BY:
        raise InvalidRequest("wanted_by", f"must be at most {MAX_WANTED_BY.days} days ahead")
    return RequestFields(
        reference=clean["reference"],
        reason=clean["reason"],
        window_start=start,
        window_end=end,
        doorbell_ids=clean.get("doorbells"),
        contact=clean["contact"],
        wanted_by=wanted_by,
        delivery=clean["delivery"],
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        # Two "delivery" keys could mean different things to different parsers.
        if key in result:
            raise InvalidRequest("body", "must not repeat a key")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise InvalidRequest("body", f"must not contain {name}")


def parse_request_body(raw: bytes) -> dict[str, Any]:
    """Turn an HTTP body into a dict for :func:`validate_request`, or raise InvalidRequest."""
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest("body", f"must be at most {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except UnicodeDecodeError, ValueError, RecursionError:
        raise InvalidRequest("body", "must be a JSON object") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body", "must be a JSON object")
    return data

"""Sharing state to and from plain dicts, for Home Assistant's ``Store`` (JSON).

Loading is strict: anything missing, mistyped or inconsistent raises
:class:`CorruptStateError` rather than guessing. A guessed state could release footage
(an approval without its record), so the glue raises a repair issue and releases
nothing instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
import re
from typing import Any

import probatio

from custom_components.doorstep.clip_contract import is_valid_id

from .exceptions import CorruptStateError
from .models import (
    RELEASABLE_STATES,
    AuditRef,
    Delivery,
    DeliveryMethod,
    FrozenClip,
    PickupLink,
    Requester,
    RequesterKind,
    RequestState,
    ShareRequest,
)
from .schema import https_url
from .state import SharingState
from .tokens import hash_token, is_well_formed_token

# 2: pickup tokens are stored as their SHA-256 (``token_hash``), no longer in clear.
STATE_VERSION = 2
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def migrate(version: int, data: dict[str, Any]) -> dict[str, Any]:
    """Bring data saved by an older version to :data:`STATE_VERSION`.

    A newer file than we understand is refused, not misread.
    """
    if version == 1:
        data = _hash_pickup_tokens(data)
        version = 2
    if version == STATE_VERSION:
        return data
    raise CorruptStateError(f"unknown sharing state version {version!r}")


def _hash_pickup_tokens(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 → 2: replace each clear pickup token by its hash; the link keeps working."""
    requests = data.get("requests")
    if not isinstance(requests, list):
        raise CorruptStateError("sharing state has no request list")
    migrated = []
    for item in requests:
        pickup = item.get("pickup") if isinstance(item, dict) else None
        if isinstance(pickup, dict) and "token" in pickup:
            token = pickup["token"]
            if not is_well_formed_token(token):
                raise CorruptStateError("invalid pickup token")
            rest = {key: value for key, value in pickup.items() if key != "token"}
            item = {**item, "pickup": {**rest, "token_hash": hash_token(token)}}
        migrated.append(item)
    return {**data, "version": 2, "requests": migrated}


def state_to_dict(state: SharingState) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "requesters": [_requester_to_dict(r) for r in state.requesters.values()],
        "requests": [_request_to_dict(r) for r in state.requests.values()],
    }


def state_from_dict(data: Any) -> SharingState:
    """Load state saved by :func:`state_to_dict`; CorruptStateError on anything odd."""
    try:
        if not isinstance(data, dict):
            raise CorruptStateError("sharing state is not an object")
        version = data.get("version")
        if type(version) is not int:
            raise CorruptStateError("sharing state has no version")
        data = migrate(version, data)
        state = SharingState()
        for item in _list(data, "requesters"):
            requester = _requester_from_dict(item)
            if requester.id in state.requesters:
                raise CorruptStateError(f"duplicate requester {requester.id}")
            state.requesters[requester.id] = requester
        for item in _list(data, "requests"):
            request = _request_from_dict(item)
            if request.id in state.requests:
                raise CorruptStateError(f"duplicate request {request.id}")
            state.requests[request.id] = request
    except CorruptStateError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CorruptStateError(f"sharing state is malformed: {err!r}") from err
    return state


# -- writing -------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _requester_to_dict(requester: Requester) -> dict[str, Any]:
    return {
        "id": requester.id,
        "name": requester.name,
        "kind": requester.kind.value,
        "token_hash": requester.token_hash,
        "created_at": _time(requester.created_at),
        "revoked": requester.revoked,
    }


def _request_to_dict(request: ShareRequest) -> dict[str, Any]:
    ref = request.approval_audit
    link = request.pickup
    return {
        "id": request.id,
        "requester_id": request.requester_id,
        "reference": request.reference,
        "reason": request.reason,
        "window_start": _time(request.window_start),
        "window_end": _time(request.window_end),
        "doorbell_ids": list(request.doorbell_ids) if request.doorbell_ids is not None else None,
        "contact": request.contact,
        "wanted_by": _time(request.wanted_by),
        "delivery": {"method": request.delivery.method.value, "url": request.delivery.upload_url},
        "filed_at": _time(request.filed_at),
        "state": request.state.value,
        "held_clip_ids": list(request.held_clip_ids),
        "approved_by": request.approved_by,
        "approved_at": _time(request.approved_at),
        "frozen_clips": [
            {
                "id": c.id,
                "sha256": c.sha256,
                "size": c.size,
                "start": _time(c.start),
                "end": _time(c.end),
            }
            for c in request.frozen_clips
        ],
        "approval_audit": (
            {"seq": ref.seq, "offset": ref.offset, "digest": ref.digest} if ref else None
        ),
        "pickup": (
            {
                "token_hash": link.token_hash,
                "expires_at": _time(link.expires_at),
                "max_downloads": link.max_downloads,
                "downloads": link.downloads,
                "revoked": link.revoked,
            }
            if link
            else None
        ),
        "closed_at": _time(request.closed_at),
    }


# -- reading -------------------------------------------------------------------------------


def _get[T](data: Mapping[str, Any], key: str, kind: type[T]) -> T:
    value = data[key]
    # bool is an int in Python; a stored True must not pass as a count.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CorruptStateError(f"{key} has the wrong type")
    return value


def _optional[T](data: Mapping[str, Any], key: str, parse: Callable[[Any], T]) -> T | None:
    value = data[key]
    return None if value is None else parse(value)


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    return _get(data, key, list)


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CorruptStateError("expected an object")
    return value


def _id(value: Any) -> str:
    if not is_valid_id(value):
        raise CorruptStateError("invalid id")
    assert isinstance(value, str)
    return value


def _datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise CorruptStateError("time is not a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise CorruptStateError("time has no UTC offset")
    return parsed


def _sha256(value: Any) -> str:
    if not isinstance(value, str) or _SHA256_RE.fullmatch(value) is None:
        raise CorruptStateError("invalid sha256")
    return value


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise CorruptStateError("invalid count")
    return value


def _requester_from_dict(item: Any) -> Requester:
    item = _dict(item)
    return Requester(
        id=_id(item["id"]),
        name=_get(item, "name", str),
        kind=RequesterKind(item["kind"]),
        token_hash=_sha256(item["token_hash"]),
        created_at=_datetime(item["created_at"]),
        revoked=_get(item, "revoked", bool),
    )


def _frozen_clip(item: Any) -> FrozenClip:
    item = _dict(item)
    return FrozenClip(
        id=_id(item["id"]),
        sha256=_sha256(item["sha256"]),
        size=_count(item["size"]),
        start=_datetime(item["start"]),
        end=_datetime(item["end"]),
    )


def _audit_ref(item: Any) -> AuditRef:
    item = _dict(item)
    return AuditRef(_count(item["seq"]), _count(item["offset"]), _sha256(item["digest"]))


def _pickup(item: Any) -> PickupLink:
    item = _dict(item)
    return PickupLink(
        token_hash=_sha256(item["token_hash"]),
        expires_at=_datetime(item["expires_at"]),
        max_downloads=_count(item["max_downloads"]),
        downloads=_count(item["downloads"]),
        revoked=_get(item, "revoked", bool),
    )


def _delivery(item: Any) -> Delivery:
    item = _dict(item)
    method = DeliveryMethod(item["method"])
    url = item.get("url")
    if method is DeliveryMethod.UPLOAD:
        try:
            return Delivery(method, https_url(url))
        except probatio.Invalid as err:
            raise CorruptStateError("invalid upload url") from err
    if url is not None:
        raise CorruptStateError("pickup delivery with a url")
    return Delivery(method)


def _doorbells(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CorruptStateError("invalid doorbell ids")
    return tuple(value)


def _request_from_dict(item: Any) -> ShareRequest:
    item = _dict(item)
    request = ShareRequest(
        id=_id(item["id"]),
        requester_id=_id(item["requester_id"]),
        reference=_get(item, "reference", str),
        reason=_get(item, "reason", str),
        window_start=_datetime(item["window_start"]),
        window_end=_datetime(item["window_end"]),
        doorbell_ids=_optional(item, "doorbell_ids", _doorbells),
        contact=_get(item, "contact", str),
        wanted_by=_datetime(item["wanted_by"]),
        delivery=_delivery(item["delivery"]),
        filed_at=_datetime(item["filed_at"]),
        state=RequestState(item["state"]),
        held_clip_ids=tuple(_id(v) for v in _list(item, "held_clip_ids")),
        approved_by=_optional(item, "approved_by", lambda v: _get({"v": v}, "v", str)),
        approved_at=_optional(item, "approved_at", _datetime),
        frozen_clips=tuple(_frozen_clip(v) for v in _list(item, "frozen_clips")),
        approval_audit=_optional(item, "approval_audit", _audit_ref),
        pickup=_optional(item, "pickup", _pickup),
        closed_at=_optional(item, "closed_at", _datetime),
    )
    _check_consistent(request)
    return request


def _check_consistent(request: ShareRequest) -> None:
    approved = request.approved_by is not None and request.approved_at is not None
    if request.state in RELEASABLE_STATES and not (approved and request.approval_audit):
        raise CorruptStateError(f"request {request.id} is releasable without an approval")
    if request.state is RequestState.PENDING and (
        request.approved_by or request.approval_audit or request.frozen_clips or request.pickup
    ):
        raise CorruptStateError(f"pending request {request.id} carries approval data")
    if request.pickup is not None and request.delivery.method is not DeliveryMethod.PICKUP:
        raise CorruptStateError(f"request {request.id} has a pickup link but uploads")

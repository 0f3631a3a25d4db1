"""A request's story for the household, read from the audit log: what happened, and when.

The audit log is the record; this only turns its entries into the short events the
card lists under a request (filed, approved, downloaded, uploaded...). Refusals are
left out here: they are about the people who tried, and the audit view shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import urlsplit

from .audit import AuditKind
from .models import DeliveryMethod, RequestState, ShareRequest

type Outcome = Literal["released", "declined", "expired", "revoked"]

CLOSED_STATES = frozenset({RequestState.DECLINED, RequestState.EXPIRED, RequestState.REVOKED})


def outcome(request: ShareRequest) -> Outcome | None:
    """How a closed request ended; None while it is open.

    An approved request that ran to its deadline counts as released: its footage was
    offered (and perhaps picked up) until the link ran out.
    """
    if request.state is RequestState.DECLINED:
        return "declined"
    if request.state is RequestState.REVOKED:
        return "revoked"
    if request.state is RequestState.EXPIRED:
        return "released" if request.approval_audit is not None else "expired"
    return None


def _event(entry: dict[str, Any], upload_host: str | None) -> tuple[str, str | None] | None:
    """The card's event (and its detail token) for one audit entry, or None to skip it."""
    kind = entry.get("kind")
    details = entry.get("details")
    if not isinstance(details, dict):
        details = {}
    if kind in (AuditKind.FILED, AuditKind.DECLINED, AuditKind.EXPIRED, AuditKind.REVOKED):
        return str(kind), None
    if kind == AuditKind.APPROVED:
        return "approved", details.get("verified_by")
    if kind == AuditKind.DOWNLOADED:
        download, of = details.get("download"), details.get("of")
        return "downloaded", f"{download}/{of}" if download is not None else None
    if kind == AuditKind.DELIVERED and details.get("via") == "upload":
        phase = details.get("phase")
        if phase == "started":
            return "upload_started", upload_host
        if phase == "done":
            return "uploaded", upload_host
        if phase == "failed":
            # The entry's error is an English sentence for the log; the card gets a token.
            status = details.get("status")
            return "upload_failed", f"http_{status}" if isinstance(status, int) else "no_response"
    return None


def request_histories(
    entries: Iterable[dict[str, Any]], requests: dict[str, ShareRequest]
) -> dict[str, list[dict[str, Any]]]:
    """Each known request's events, oldest first, from parsed audit entries.

    A pickup request's approval also creates its link, so it adds ``pickup_created``.
    """
    histories: dict[str, list[dict[str, Any]]] = {request_id: [] for request_id in requests}
    for entry in entries:
        request_id = entry.get("request")
        request = requests.get(request_id) if isinstance(request_id, str) else None
        if request is None or not isinstance(entry.get("time"), str):
            continue
        url = request.delivery.upload_url
        found = _event(entry, urlsplit(url).hostname if url is not None else None)
        if found is None:
            continue
        event, detail = found
        history = histories[request.id]
        history.append({"at": entry["time"], "event": event, "detail": detail})
        if event == "approved" and request.delivery.method is DeliveryMethod.PICKUP:
            history.append({"at": entry["time"], "event": "pickup_created", "detail": None})
    return histories

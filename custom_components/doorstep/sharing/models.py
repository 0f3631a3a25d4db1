"""Plain data models of the sharing gate: requesters, requests, clips and actors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal


class RequesterKind(StrEnum):
    """Who is asking; shown to the householder, never used for decisions."""

    POLICE = "police"
    NEIGHBOUR = "neighbour"
    INSURER = "insurer"
    OTHER = "other"


class RequestState(StrEnum):
    """Life of a request. Only PENDING → APPROVED lets bytes out, and only a person does it."""

    PENDING = "pending"
    APPROVED = "approved"
    FULFILLED = "fulfilled"
    DECLINED = "declined"
    EXPIRED = "expired"
    REVOKED = "revoked"


# FULFILLED → REVOKED is allowed on purpose: turning the switch off after a first
# pickup still kills the link's remaining downloads.
ALLOWED_TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    RequestState.PENDING: frozenset(
        {RequestState.APPROVED, RequestState.DECLINED, RequestState.EXPIRED}
    ),
    RequestState.APPROVED: frozenset(
        {RequestState.FULFILLED, RequestState.REVOKED, RequestState.EXPIRED}
    ),
    RequestState.FULFILLED: frozenset({RequestState.REVOKED}),
    RequestState.DECLINED: frozenset(),
    RequestState.EXPIRED: frozenset(),
    RequestState.REVOKED: frozenset(),
}

OPEN_STATES = frozenset({RequestState.PENDING, RequestState.APPROVED})
RELEASABLE_STATES = frozenset({RequestState.APPROVED, RequestState.FULFILLED})

type RequesterStatus = Literal["pending", "fulfilled", "closed"]


def requester_status(
    state: RequestState, *, wanted_by: datetime | None = None, now: datetime | None = None
) -> RequesterStatus:
    """What a requester may learn: declined and expired (and revoked) all read ``closed``,
    so a requester cannot tell who said no, or whether anyone looked.

    A declined request keeps reading ``pending`` until its ``wanted_by``, the moment an
    unanswered one expires: otherwise an early ``closed`` would say someone looked and
    said no. Without ``wanted_by`` and ``now`` the deadline is taken as passed.
    """
    before_deadline = wanted_by is None or now is None or now < wanted_by
    if state is RequestState.PENDING:
        # Past its deadline a pending request is closed, even before the minutely
        # expiry check has caught up with it.
        return "pending" if before_deadline else "closed"
    if state in RELEASABLE_STATES:
        return "fulfilled"
    if state is RequestState.DECLINED and wanted_by is not None and now is not None:
        return "pending" if before_deadline else "closed"
    return "closed"


class DeliveryMethod(StrEnum):
    PICKUP = "pickup"
    UPLOAD = "upload"


@dataclass(frozen=True, slots=True)
class Delivery:
    """How approved clips travel: a pickup link, or an upload to an HTTPS URL."""

    method: DeliveryMethod
    upload_url: str | None = None


@dataclass(frozen=True, slots=True)
class Requester:
    """Someone the householder allows to *ask*. Only the token's SHA-256 is kept."""

    id: str
    name: str
    kind: RequesterKind
    token_hash: str
    created_at: datetime
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, as the HA glue reads it from the call's context.

    ``user_id`` is None for automations, scripts and service calls without a user.
    """

    user_id: str | None
    is_admin: bool = False
    is_system: bool = False
    is_read_only: bool = False
    # How the person proved who they are just now ("password", "password+totp"), from
    # an interactive login session; None for anyone who did not (or could not).
    verified_by: str | None = None

    @property
    def is_person_admin(self) -> bool:
        """Invariant I2: only a real, non-system, non-read-only admin user may approve."""
        return (
            self.user_id is not None
            and self.is_admin
            and not self.is_system
            and not self.is_read_only
        )

    @property
    def may_approve(self) -> bool:
        """Invariant I2: a person who is an admin and proved who they are at this moment."""
        return self.is_person_admin and self.verified_by is not None

    @property
    def label(self) -> str:
        """How the audit log names this actor."""
        return f"user:{self.user_id}" if self.user_id is not None else "automation"


@dataclass(frozen=True, slots=True)
class FrozenClip:
    """A clip as it was at approval: exactly these bytes may go out, nothing else."""

    id: str
    sha256: str
    size: int
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class AuditRef:
    """Where an audit entry sits, so the gate can check it is still on disk."""

    seq: int
    offset: int
    digest: str


@dataclass(frozen=True, slots=True)
class PickupLink:
    """A pickup link: expiring, limited in downloads, revocable.

    Only the token's SHA-256 is kept, so the stored state cannot open the link. The clear
    token lives in the gate's memory for the requester's next status read; after a
    restart the gate issues the requester a fresh token for the same link.
    """

    token_hash: str
    expires_at: datetime
    max_downloads: int
    downloads: int = 0
    revoked: bool = False

    def usable(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at and self.downloads < self.max_downloads


@dataclass(frozen=True, slots=True)
class ShareRequest:
    """One request for footage and everything the gate decided about it."""

    id: str
    requester_id: str
    reference: str
    reason: str
    window_start: datetime
    window_end: datetime
    doorbell_ids: tuple[str, ...] | None
    contact: str
    wanted_by: datetime
    delivery: Delivery
    filed_at: datetime
    state: RequestState = RequestState.PENDING
    # Clips matching at filing time: under legal hold while the request is open.
    held_clip_ids: tuple[str, ...] = ()
    approved_by: str | None = None
    approved_at: datetime | None = None
    frozen_clips: tuple[FrozenClip, ...] = ()
    approval_audit: AuditRef | None = None
    pickup: PickupLink | None = None
    closed_at: datetime | None = None

    def requester_status_at(self, now: datetime) -> RequesterStatus:
        """What the requester may be told at ``now`` (see :func:`requester_status`)."""
        return requester_status(self.state, wanted_by=self.wanted_by, now=now)

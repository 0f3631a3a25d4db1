"""Exceptions raised by the Doorstep sharing library.

Every error a caller must handle derives from :class:`SharingError`, so the Home Assistant
glue can map the whole family to translated errors in one place.
"""

from __future__ import annotations

# The base class and InvalidId sit on the ground floor with the clip contract, which
# raises InvalidId; every other sharing error is defined here.
from custom_components.doorstep.clip_contract import (
    InvalidId as InvalidId,
    SharingError as SharingError,
)


class InvalidRequest(SharingError):
    """An incoming request body (HTTP or service) failed validation.

    ``field`` is a dotted path such as ``window.start`` (or ``body`` for the whole body),
    so the HTTP view can answer 400 with a field-level message.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidToken(SharingError):
    """A requester or pickup token is malformed, unknown, revoked or expired.

    Deliberately one class: the HTTP layer answers 401/404 without saying which.
    """


class UnknownRequest(SharingError):
    """No request with that id (or not one the caller may see)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id


class UnknownRequester(SharingError):
    """No requester with that id."""

    def __init__(self, requester_id: str) -> None:
        super().__init__(requester_id)
        self.requester_id = requester_id


class TooManyPending(SharingError):
    """The requester already has the maximum number of pending requests (HTTP 429)."""


class RequestClosed(SharingError):
    """The request is declined, expired, revoked or otherwise past the asked-for step."""

    def __init__(self, request_id: str, state: str) -> None:
        super().__init__(f"request {request_id} is {state}")
        self.request_id = request_id
        self.state = state


class PreviewStale(SharingError):
    """What approving would release no longer matches what the person was shown.

    The refusal is already in the audit log when this is raised.
    """

    def __init__(self, request_id: str) -> None:
        super().__init__(f"preview of {request_id} is stale")
        self.request_id = request_id


class ApprovalRefused(SharingError):
    """The actor may not approve: not a person, not an admin, a system or read-only user.

    The refusal is already in the audit log when this is raised.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"approval refused: {reason}")
        # A refusal token (sharing.approval.Refusal), also the person's translation key.
        self.reason = reason


class NotReleasable(SharingError):
    """The gate will not release bytes for this request or link right now."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not releasable: {reason}")
        self.reason = reason


class ReleaseStopped(NotReleasable):
    """A release was cut off mid-stream (revoked or expired while streaming)."""


class ClipIntegrityError(SharingError):
    """A frozen clip changed or vanished between approval and delivery."""


class AuditWriteError(SharingError):
    """An audit entry could not be made durable (disk full, I/O error).

    The log is left without a partial line, and the step that needed the entry did not
    happen: nothing is approved or released on the strength of an unwritten entry.
    """


class AuditCorruptError(SharingError):
    """The audit log cannot be read well enough to append to it safely."""


class CorruptStateError(SharingError):
    """Persisted sharing state is unreadable or inconsistent; nothing will be released."""


class InvalidTrustFile(SharingError):
    """The owner's file of extra trusted CA certificates cannot be read or parsed.

    Nothing is uploaded then: trusting less than the owner meant would fail later with a
    more confusing certificate error, and trusting more is not an option.
    """

    def __init__(self, path: object, message: str) -> None:
        super().__init__(f"cannot use {path}: {message}")
        self.path = str(path)
        self.message = message


class FeedRejected(SharingError):
    """An agency's feed was refused as a whole; nothing in it is applied.

    ``reason`` is one of :data:`FEED_REJECTION_REASONS`, a token the Home Assistant glue
    turns into the repair issue's text; ``detail`` is English, for the debug log only.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# Why a feed can be refused, from the cheapest check to the last.
FEED_REJECTION_REASONS = (
    "unreachable",
    "too_large",
    "malformed",
    "unknown_key",
    "bad_signature",
    "replayed",
    "stale",
)

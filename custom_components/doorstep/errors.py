"""The library rooms' errors as Home Assistant errors, each under its own translation key.

Placeholders carry ids, counts and names of fields or error classes, never a library
message: those are English, and the log (or the audit log) already has them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN
from .device import DoorstepError, TalkBackError, TalkBackUnsupported, TalkBusy
from .media import (
    InvalidCandidate,
    InvalidOffer,
    MediaError,
    SessionClosed,
    TalkFloorTaken,
    TooManySessions,
    WebRTCError,
)
from .sharing import (
    ApprovalRefused,
    AuditWriteError,
    ClipIntegrityError,
    CorruptStateError,
    FeedRejected,
    InvalidId,
    InvalidRequest,
    InvalidToken,
    NotReleasable,
    PreviewStale,
    Refusal,
    RequestClosed,
    SharingError,
    TooManyPending,
    UnknownRequest,
    UnknownRequester,
)

type LibraryError = DoorstepError | MediaError | SharingError


def _no_placeholders(_err: Any) -> dict[str, str]:
    return {}


@dataclass(frozen=True, kw_only=True)
class _Translation:
    key: str
    # ServiceValidationError when asking differently would have worked.
    error_type: type[HomeAssistantError] = HomeAssistantError
    placeholders: Callable[[Any], dict[str, str]] = field(default=_no_placeholders)
    # For errors whose instances carry their own key (an approval's refusal reason).
    key_of: Callable[[Any], str | None] = field(default=lambda _err: None)


def _refusal_key(err: ApprovalRefused) -> str | None:
    return err.reason if err.reason in {refusal.value for refusal in Refusal} else None


def _error_class(err: Exception) -> dict[str, str]:
    return {"error": type(err).__name__}


# Looked up along each error's class hierarchy, so a subclass without a key of its own
# (ReleaseStopped, say) takes its parent's, and each room's base class catches the rest.
_TRANSLATIONS: dict[type[Exception], _Translation] = {
    ApprovalRefused: _Translation(
        key="approval_needs_person", error_type=ServiceValidationError, key_of=_refusal_key
    ),
    PreviewStale: _Translation(key="preview_stale", error_type=ServiceValidationError),
    AuditWriteError: _Translation(key="audit_write_failed"),
    ClipIntegrityError: _Translation(key="clip_changed"),
    CorruptStateError: _Translation(key="sharing_state_corrupt"),
    FeedRejected: _Translation(key="feed_rejected"),
    InvalidId: _Translation(key="invalid_id", error_type=ServiceValidationError),
    InvalidRequest: _Translation(
        key="invalid_request",
        error_type=ServiceValidationError,
        placeholders=lambda err: {"field": err.field},
    ),
    InvalidToken: _Translation(key="invalid_token", error_type=ServiceValidationError),
    NotReleasable: _Translation(key="not_releasable"),
    RequestClosed: _Translation(key="request_closed", error_type=ServiceValidationError),
    TooManyPending: _Translation(key="too_many_pending", error_type=ServiceValidationError),
    UnknownRequest: _Translation(
        key="unknown_request",
        error_type=ServiceValidationError,
        placeholders=lambda err: {"request_id": err.request_id},
    ),
    UnknownRequester: _Translation(
        key="unknown_requester",
        error_type=ServiceValidationError,
        placeholders=lambda err: {"requester_id": err.requester_id},
    ),
    SharingError: _Translation(key="sharing_failed", placeholders=_error_class),
    TalkFloorTaken: _Translation(key="someone_else_talking", error_type=ServiceValidationError),
    TalkBusy: _Translation(key="doorbell_busy_talking", error_type=ServiceValidationError),
    TalkBackUnsupported: _Translation(key="no_speaker", error_type=ServiceValidationError),
    TalkBackError: _Translation(key="talk_failed"),
    InvalidCandidate: _Translation(key="invalid_candidate"),
    InvalidOffer: _Translation(key="invalid_offer"),
    SessionClosed: _Translation(key="unknown_webrtc_session"),
    TooManySessions: _Translation(key="too_many_sessions"),
    WebRTCError: _Translation(key="webrtc_failed", placeholders=_error_class),
    MediaError: _Translation(key="media_failed", placeholders=_error_class),
    DoorstepError: _Translation(key="device_failed", placeholders=_error_class),
}


def translated_error(err: LibraryError) -> HomeAssistantError:
    """The Home Assistant error to raise ``from err``."""
    translation = next(_TRANSLATIONS[cls] for cls in type(err).__mro__ if cls in _TRANSLATIONS)
    return translation.error_type(
        translation_domain=DOMAIN,
        translation_key=translation.key_of(err) or translation.key,
        translation_placeholders=translation.placeholders(err) or None,
    )

"""Each library error class reaches people under its own key, with no English placeholder."""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest

from custom_components.doorstep import errors
from custom_components.doorstep.device import CannotConnect, DoorstepError
from custom_components.doorstep.errors import LibraryError, translated_error
from custom_components.doorstep.media import (
    InvalidCandidate,
    InvalidOffer,
    MediaError,
    SessionClosed,
    TooManySessions,
    WebRTCError,
)
from custom_components.doorstep.sharing import (
    ApprovalRefused,
    AuditWriteError,
    ClipIntegrityError,
    CorruptStateError,
    InvalidId,
    InvalidRequest,
    InvalidToken,
    NotReleasable,
    ReleaseStopped,
    RequestClosed,
    SharingError,
    TooManyPending,
    UnknownRequest,
    UnknownRequester,
)

REQUEST_ID = "01JCXZ0000000000000000000A"


@pytest.mark.parametrize(
    ("err", "error_type", "key", "placeholders"),
    [
        (ApprovalRefused("read-only user"), ServiceValidationError, "approval_needs_person", None),
        (AuditWriteError("disk full"), HomeAssistantError, "audit_write_failed", None),
        (ClipIntegrityError("clip x grew"), HomeAssistantError, "clip_changed", None),
        (CorruptStateError("no version"), HomeAssistantError, "sharing_state_corrupt", None),
        (InvalidId("invalid request id"), ServiceValidationError, "invalid_id", None),
        (
            InvalidRequest("window.end", "must not be in the future"),
            ServiceValidationError,
            "invalid_request",
            {"field": "window.end"},
        ),
        (InvalidToken("malformed token"), ServiceValidationError, "invalid_token", None),
        (NotReleasable("pickup link expired"), HomeAssistantError, "not_releasable", None),
        (ReleaseStopped("revoked"), HomeAssistantError, "not_releasable", None),
        (RequestClosed(REQUEST_ID, "declined"), ServiceValidationError, "request_closed", None),
        (TooManyPending("requester"), ServiceValidationError, "too_many_pending", None),
        (
            UnknownRequest(REQUEST_ID),
            ServiceValidationError,
            "unknown_request",
            {"request_id": REQUEST_ID},
        ),
        (
            UnknownRequester(REQUEST_ID),
            ServiceValidationError,
            "unknown_requester",
            {"requester_id": REQUEST_ID},
        ),
        (
            SharingError("hub key file is odd"),
            HomeAssistantError,
            "sharing_failed",
            {"error": "SharingError"},
        ),
        (InvalidCandidate("malformed address"), HomeAssistantError, "invalid_candidate", None),
        (InvalidOffer("the offer is empty"), HomeAssistantError, "invalid_offer", None),
        (SessionClosed("closed"), HomeAssistantError, "unknown_webrtc_session", None),
        (TooManySessions("too many"), HomeAssistantError, "too_many_sessions", None),
        (
            WebRTCError("already has an offer"),
            HomeAssistantError,
            "webrtc_failed",
            {"error": "WebRTCError"},
        ),
        (MediaError("odd"), HomeAssistantError, "media_failed", {"error": "MediaError"}),
        (
            CannotConnect("timed out"),
            HomeAssistantError,
            "device_failed",
            {"error": "CannotConnect"},
        ),
        (DoorstepError("odd"), HomeAssistantError, "device_failed", {"error": "DoorstepError"}),
    ],
)
def test_error_class_has_its_own_key(
    err: LibraryError,
    error_type: type[HomeAssistantError],
    key: str,
    placeholders: dict[str, str] | None,
) -> None:
    """The key and placeholders, and never the library's message, reach Home Assistant."""
    translated = translated_error(err)
    assert type(translated) is error_type
    assert translated.translation_domain == "doorstep"
    assert translated.translation_key == key
    assert translated.translation_placeholders == placeholders
    # Ids, field paths and class names: nothing with a space is a sentence.
    assert not any(" " in value for value in (translated.translation_placeholders or {}).values())


def test_every_key_has_a_message() -> None:
    """A key without a message would show people the bare key."""
    strings = json.loads(
        (Path(errors.__file__).parent / "strings.json").read_text(encoding="utf-8")
    )
    keys = {translation.key for translation in errors._TRANSLATIONS.values()}
    assert keys <= strings["exceptions"].keys()

"""Each library error class reaches people under its own key, with no English placeholder.

The cases come from the error table itself (``errors._TRANSLATIONS``) and from every
error class the three rooms define, so a class added to a room or to the table is
checked without a second table here to keep in step.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from homeassistant.exceptions import ServiceValidationError
import pytest

from custom_components.doorstep import clip_contract, errors
from custom_components.doorstep.device import CannotConnect, DoorstepError, exceptions as device
from custom_components.doorstep.errors import LibraryError, translated_error
from custom_components.doorstep.media import MediaError, WebRTCError, exceptions as media
from custom_components.doorstep.sharing import (
    ApprovalRefused,
    InvalidId,
    InvalidRequest,
    InvalidToken,
    NotReleasable,
    PreviewStale,
    ReleaseStopped,
    RequestClosed,
    SharingError,
    TooManyPending,
    UnknownRequest,
    UnknownRequester,
    exceptions as sharing,
)

REQUEST_ID = "01JCXZ0000000000000000000A"
# Arguments for the classes whose constructor is not (message): each placeholder value
# below is one of these, never the English text.
_ARGUMENTS: dict[str, tuple[Any, ...]] = {
    "InvalidRequest": ("window.end", "must not be in the future"),
    "UnknownRequest": (REQUEST_ID,),
    "UnknownRequester": (REQUEST_ID,),
    "RequestClosed": (REQUEST_ID, "declined"),
    "PreviewStale": (REQUEST_ID,),
    "InvalidCode": (2, "wrong code"),
    "PairingLocked": (30.0, "locked"),
    "FingerprintMismatch": ("aa", "bb", "certificate changed"),
    "InvalidTrustFile": ("/config/trusted.pem", "not PEM"),
    "FeedRejected": ("bad_signature", "the payload's signature does not verify"),
}
# What each placeholder-carrying class must show; every other class shows none, except
# the rooms' catch-all keys, which name the error class.
_PLACEHOLDERS: dict[type[Exception], dict[str, str]] = {
    InvalidRequest: {"field": "window.end"},
    UnknownRequest: {"request_id": REQUEST_ID},
    UnknownRequester: {"requester_id": REQUEST_ID},
}
_CATCH_ALL_KEYS = {"sharing_failed", "webrtc_failed", "media_failed", "device_failed"}
# The errors where asking differently would have worked (ServiceValidationError).
_CALLER_MISTAKES = {
    ApprovalRefused,
    InvalidId,
    InvalidRequest,
    InvalidToken,
    # Looking at the new preview and approving again works.
    PreviewStale,
    RequestClosed,
    TooManyPending,
    UnknownRequest,
    UnknownRequester,
    # Talking again once the other person lets go works.
    media.TalkFloorTaken,
    device.TalkBusy,
    device.TalkBackUnsupported,
}


def _room_errors() -> list[type[Exception]]:
    """Every error class the device, media and sharing rooms and the clip contract
    define."""
    return [
        cls
        for module in (device, media, sharing, clip_contract)
        for _name, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, DoorstepError | MediaError | SharingError)
        and cls.__module__ == module.__name__
    ]


def _example(cls: type[Exception]) -> LibraryError:
    error = cls(*_ARGUMENTS.get(cls.__name__, (f"{cls.__name__} happened",)))
    assert isinstance(error, DoorstepError | MediaError | SharingError)
    return error


def _own_entry(cls: type[Exception]) -> errors._Translation:
    return next(errors._TRANSLATIONS[c] for c in cls.__mro__ if c in errors._TRANSLATIONS)


@pytest.mark.parametrize("cls", list(errors._TRANSLATIONS), ids=lambda cls: cls.__name__)
def test_error_class_has_its_own_key(cls: type[Exception]) -> None:
    """The class's own key, type and placeholders, and never the library's message,
    reach Home Assistant."""
    entry = errors._TRANSLATIONS[cls]
    translated = translated_error(_example(cls))
    assert type(translated) is entry.error_type
    assert (entry.error_type is ServiceValidationError) == (cls in _CALLER_MISTAKES)
    assert translated.translation_domain == "doorstep"
    assert translated.translation_key == entry.key
    expected = _PLACEHOLDERS.get(cls)
    if entry.key in _CATCH_ALL_KEYS:
        expected = {"error": cls.__name__}
    assert translated.translation_placeholders == expected


def test_each_class_in_the_table_has_a_key_of_its_own() -> None:
    keys = [translation.key for translation in errors._TRANSLATIONS.values()]
    assert len(set(keys)) == len(keys)
    # Each room's base class is there, so nothing a room raises goes untranslated.
    assert {DoorstepError, MediaError, SharingError} <= errors._TRANSLATIONS.keys()


@pytest.mark.parametrize("cls", _room_errors(), ids=lambda cls: cls.__name__)
def test_every_room_error_translates_without_english(cls: type[Exception]) -> None:
    """A class without its own entry takes its nearest parent's key; placeholders are
    ids, field paths and class names: nothing with a space is a sentence."""
    translated = translated_error(_example(cls))
    assert translated.translation_key == _own_entry(cls).key
    placeholders = translated.translation_placeholders or {}
    assert not any(" " in value for value in placeholders.values())
    if _own_entry(cls).key in _CATCH_ALL_KEYS:
        assert placeholders == {"error": cls.__name__}


def test_subclasses_take_their_parents_key() -> None:
    assert translated_error(ReleaseStopped("revoked")).translation_key == "not_releasable"
    assert translated_error(NotReleasable("expired")).translation_key == "not_releasable"
    cannot_connect = translated_error(CannotConnect("timed out"))
    assert cannot_connect.translation_key == "device_failed"
    assert cannot_connect.translation_placeholders == {"error": "CannotConnect"}
    webrtc = translated_error(WebRTCError("already has an offer"))
    assert webrtc.translation_placeholders == {"error": "WebRTCError"}


def test_every_key_has_a_message() -> None:
    """A key without a message would show people the bare key."""
    strings = json.loads(
        (Path(errors.__file__).parent / "strings.json").read_text(encoding="utf-8")
    )
    keys = {translation.key for translation in errors._TRANSLATIONS.values()}
    assert keys <= strings["exceptions"].keys()

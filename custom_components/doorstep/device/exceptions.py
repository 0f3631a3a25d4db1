"""Exceptions raised by the Doorstep device library.

Every error a caller must handle derives from :class:`DoorstepError`, so the Home Assistant
glue can map the whole family in one place.
"""

from __future__ import annotations


class DoorstepError(Exception):
    """Base class for every error this library raises on purpose."""


class CannotConnect(DoorstepError):
    """The device could not be reached, timed out, failed TLS or answered 5xx."""


class InvalidAuth(DoorstepError):
    """The device rejected our token; the hub has to pair again."""


class InvalidCode(DoorstepError):
    """The pairing code was wrong (or not a code at all)."""

    def __init__(self, attempts_left: int | None, message: str | None = None) -> None:
        super().__init__(message or f"invalid pairing code (attempts left: {attempts_left})")
        # None when the device never saw the code (rejected locally) or did not say.
        self.attempts_left = attempts_left


class PairingLocked(DoorstepError):
    """Too many wrong codes: the device refuses pairing for a while."""

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message or f"pairing locked, retry after {retry_after:g} s")
        self.retry_after = retry_after


class FingerprintMismatch(DoorstepError):
    """The device presented a certificate other than the pinned one."""

    def __init__(self, expected: str, actual: str | None, message: str | None = None) -> None:
        super().__init__(
            message or f"certificate fingerprint mismatch: expected {expected}, got {actual}"
        )
        self.expected = expected
        # None when the TLS layer did not tell us what it saw.
        self.actual = actual


class ProtocolError(DoorstepError):
    """The device answered something the protocol does not allow."""


class NoSnapshotYet(DoorstepError):
    """The device has no picture to give right now, though nothing is wrong with it.

    A DoorBird's ``image.cgi`` answers 204 to a user without the "watch always"
    permission outside the minute after a ring.
    """


class TalkBackUnsupported(DoorstepError):
    """The device has no speaker the hub can talk through."""


class TalkBusy(DoorstepError):
    """Someone else is talking through the device right now."""


class TalkBackError(DoorstepError):
    """The device ended or refused talk-back (``code`` is the protocol's error code)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code

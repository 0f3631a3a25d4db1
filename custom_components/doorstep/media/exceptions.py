"""Errors raised by the media room.

Callers (the camera entity, the recorder) map these to Home Assistant errors in one
place; nothing here knows about Home Assistant.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base class for every error the media room raises on purpose."""


class BitstreamError(MediaError):
    """H.264 bytes that cannot be parsed (truncated NAL units, bad length prefixes)."""


class InvalidSps(BitstreamError):
    """A sequence parameter set that is truncated, malformed or out of range."""


class SubscriptionClosed(MediaError):
    """The subscription (or the whole relay) was closed; no more packets will come."""


class StreamError(MediaError):
    """One connection to a video source failed; the source reconnects by itself."""

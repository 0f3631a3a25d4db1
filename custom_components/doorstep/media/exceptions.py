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


class StreamUnreachable(StreamError):
    """Nothing answered at the stream's address, or it stopped answering."""


class StreamRefused(StreamError):
    """The server wants other credentials than the ones given."""


class StreamNotFound(StreamError):
    """The server answers, but has no stream at that path."""


class NotAStream(StreamError):
    """What answered does not speak the stream's protocol (an RTSP URL that is not RTSP)."""


class NoVideo(StreamError):
    """The stream has no video track, or no video the hub can relay (not H.264)."""


class TranscodeError(StreamError):
    """The transcoding fallback failed; live view starts it again at the next keyframe."""


class WebRTCError(MediaError):
    """A live-view session could not be set up or was used wrongly.

    The message is written for a person: the camera entity shows it as it is.
    """


class InvalidOffer(WebRTCError):
    """An SDP offer that Doorstep will not hand to aiortc, and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidCandidate(WebRTCError):
    """A trickled ICE candidate that is not well-formed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SessionClosed(WebRTCError):
    """The session is closed (or was never opened); start a new one."""


class TooManySessions(WebRTCError):
    """The hub already serves as many live viewers as it allows."""


class RecordingError(MediaError):
    """A clip or segment could not be written; the recorder goes on with later events.

    The partial file is already gone when this is raised or reported.
    """


class StorageFull(RecordingError):
    """The disk (or the user's quota) is full: the HA glue raises a repair issue."""


class InvalidClipId(MediaError):
    """A clip id from outside that is not a well-formed id; no file was touched."""


class ClipHeld(MediaError):
    """The clip is under legal hold (an open sharing request) and cannot be deleted."""


class TalkFloorTaken(MediaError):
    """Someone else on this hub is talking through the doorbell."""

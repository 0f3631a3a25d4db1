"""Live video for Doorstep, free of Home Assistant.

``source`` reads H.264 from a doorbell (or an RTSP camera) without decoding it,
``relay`` fans it out to viewers and the recorder with bounded memory, and ``h264``
holds the little bitstream parsing that passthrough needs. ``webrtc`` serves one aiortc
peer connection per browser (``sdp`` checks offers first, ``network`` says what counts
as the home network).
"""

from .exceptions import (
    BitstreamError,
    InvalidCandidate,
    InvalidOffer,
    InvalidSps,
    MediaError,
    SessionClosed,
    StreamError,
    SubscriptionClosed,
    TooManySessions,
    WebRTCError,
)
from .h264 import ProfileDecision, SpsInfo, decide_profile, parse_sps
from .network import NetworkPolicy
from .packet import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, VideoPacket
from .relay import MediaRelay, Subscription, SubscriptionStats
from .sdp import OfferLimits, OfferSummary, validate_offer
from .source import Backoff, SourceStats, StreamEndpoint, StreamSource
from .webrtc import LocalCandidate, RelayVideoTrack, SessionManager, SessionStats, WebRTCSession

__all__ = [
    "VIDEO_CLOCK_RATE",
    "VIDEO_TIME_BASE",
    "Backoff",
    "BitstreamError",
    "InvalidCandidate",
    "InvalidOffer",
    "InvalidSps",
    "LocalCandidate",
    "MediaError",
    "MediaRelay",
    "NetworkPolicy",
    "OfferLimits",
    "OfferSummary",
    "ProfileDecision",
    "RelayVideoTrack",
    "SessionClosed",
    "SessionManager",
    "SessionStats",
    "SourceStats",
    "SpsInfo",
    "StreamEndpoint",
    "StreamError",
    "StreamSource",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionStats",
    "TooManySessions",
    "VideoPacket",
    "WebRTCError",
    "WebRTCSession",
    "decide_profile",
    "parse_sps",
    "validate_offer",
]

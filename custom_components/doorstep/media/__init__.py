"""Live video for Doorstep, free of Home Assistant.

``source`` reads H.264 from a doorbell (or an RTSP camera) without decoding it,
``relay`` fans it out to viewers and the recorder with bounded memory, and ``h264``
holds the little bitstream parsing that passthrough needs.
"""

from .exceptions import BitstreamError, InvalidSps, MediaError, StreamError, SubscriptionClosed
from .h264 import ProfileDecision, SpsInfo, decide_profile, parse_sps
from .packet import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, VideoPacket
from .relay import MediaRelay, Subscription, SubscriptionStats
from .source import Backoff, SourceStats, StreamEndpoint, StreamSource

__all__ = [
    "VIDEO_CLOCK_RATE",
    "VIDEO_TIME_BASE",
    "Backoff",
    "BitstreamError",
    "InvalidSps",
    "MediaError",
    "MediaRelay",
    "ProfileDecision",
    "SourceStats",
    "SpsInfo",
    "StreamEndpoint",
    "StreamError",
    "StreamSource",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionStats",
    "VideoPacket",
    "decide_profile",
    "parse_sps",
]

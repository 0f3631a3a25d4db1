"""Live video for Doorstep, free of Home Assistant.

``source`` reads H.264 from a doorbell (or an RTSP camera) without decoding it,
``relay`` fans it out to viewers and the recorder with bounded memory, and ``h264``
holds the little bitstream parsing that passthrough needs. ``webrtc`` serves one aiortc
peer connection per browser (``sdp`` checks offers first, ``network`` says what counts
as the home network). ``transcode`` re-encodes the rare stream browsers cannot play
as it is (High profile, B-frames) to constrained baseline, for live view only; ``live``
decides when, between the doorbell's relay and live view's.
``recorder`` keeps a pre-roll and writes event clips (and, if
asked, continuous segments) into a ``clips.ClipStore``, which ``retention`` trims.
"""

from .answer import LocalCandidate
from .clips import ClipRecord, ClipStore
from .exceptions import (
    BitstreamError,
    ClipHeld,
    InvalidCandidate,
    InvalidClipId,
    InvalidOffer,
    InvalidSps,
    MediaError,
    NotAStream,
    NoVideo,
    RecordingError,
    SessionClosed,
    StorageFull,
    StreamError,
    StreamNotFound,
    StreamRefused,
    StreamUnreachable,
    SubscriptionClosed,
    TalkFloorTaken,
    TooManySessions,
    TranscodeError,
    WebRTCError,
)
from .h264 import ProfileDecision, SpsInfo, decide_profile, parse_sps
from .live import live_packets, live_view_source
from .network import NetworkPolicy
from .packet import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, VideoPacket
from .probe import StreamProbe, probe_stream
from .recorder import REASON_CONTINUOUS, Recorder, RecorderConfig, RecorderStats
from .recorder_preroll import PreRollBuffer
from .recorder_writer import ClipWriter
from .relay import MediaRelay, Subscription, SubscriptionStats
from .retention import plan_retention
from .sdp import OfferLimits, OfferSummary, validate_offer
from .source import Backoff, SourceStats, StreamEndpoint, StreamSource
from .still import keyframe_to_jpeg, still_from_relay
from .transcode import Transcoder, TranscodeSettings, TranscodeStats
from .webrtc import RelayVideoTrack, SessionManager, SessionStats, WebRTCSession

__all__ = [
    "REASON_CONTINUOUS",
    "VIDEO_CLOCK_RATE",
    "VIDEO_TIME_BASE",
    "Backoff",
    "BitstreamError",
    "ClipHeld",
    "ClipRecord",
    "ClipStore",
    "ClipWriter",
    "InvalidCandidate",
    "InvalidClipId",
    "InvalidOffer",
    "InvalidSps",
    "LocalCandidate",
    "MediaError",
    "MediaRelay",
    "NetworkPolicy",
    "NoVideo",
    "NotAStream",
    "OfferLimits",
    "OfferSummary",
    "PreRollBuffer",
    "ProfileDecision",
    "Recorder",
    "RecorderConfig",
    "RecorderStats",
    "RecordingError",
    "RelayVideoTrack",
    "SessionClosed",
    "SessionManager",
    "SessionStats",
    "SourceStats",
    "SpsInfo",
    "StorageFull",
    "StreamEndpoint",
    "StreamError",
    "StreamNotFound",
    "StreamProbe",
    "StreamRefused",
    "StreamSource",
    "StreamUnreachable",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionStats",
    "TalkFloorTaken",
    "TooManySessions",
    "TranscodeError",
    "TranscodeSettings",
    "TranscodeStats",
    "Transcoder",
    "VideoPacket",
    "WebRTCError",
    "WebRTCSession",
    "decide_profile",
    "keyframe_to_jpeg",
    "live_packets",
    "live_view_source",
    "parse_sps",
    "plan_retention",
    "probe_stream",
    "still_from_relay",
    "validate_offer",
]

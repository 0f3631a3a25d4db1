"""The hub's side of the negotiation: which H.264 profile to prefer, and what the
answer aiortc wrote says (the codec it chose, the candidates it gathered).

The answer is read with ``aiortc.sdp.SessionDescription``, the parser that wrote it, so
what the hub reports is what aiortc negotiated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiortc.sdp import (
    H264Profile,
    SessionDescription,
    candidate_to_sdp,
    parse_h264_profile_level_id,
)

from .exceptions import InvalidOffer


@dataclass(frozen=True, slots=True)
class LocalCandidate:
    """A hub candidate for the browser (``RTCIceCandidateInit`` in browser terms)."""

    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None


def h264_preference_order(offered: Iterable[str], source_profile_level_id: str | None) -> list[str]:
    """Supported profile-level-ids, the one matching the source first.

    The profile byte and constraint flags decide compatibility, not the level, so the
    source's ``42c01e`` still prefers a constrained baseline codec.
    """
    order = ["42e01f", "42001f"]
    if source_profile_level_id is not None:
        try:
            source_profile, _level = parse_h264_profile_level_id(source_profile_level_id)
        except ValueError:
            source_profile = None
        if source_profile == H264Profile.PROFILE_BASELINE:
            order = ["42001f", "42e01f"]
    offered_set = {o.lower() for o in offered}
    return sorted(order, key=lambda p: (p not in offered_set, order.index(p)))


def check_negotiated(answer: SessionDescription) -> None:
    """Make sure the first video section of the answer sends H.264 first."""
    video = next((media for media in answer.media if media.kind == "video"), None)
    first = video.fmt[0] if video is not None and video.fmt else None
    codec = next((c for c in video.rtp.codecs if c.payloadType == first), None) if video else None
    if codec is None or codec.name.upper() != "H264":
        raise InvalidOffer("no H.264 video could be negotiated with the browser")


def local_candidates(answer: SessionDescription) -> list[LocalCandidate]:
    """The answer's candidates, each with the mid and index of its media section."""
    return [
        LocalCandidate(f"candidate:{candidate_to_sdp(candidate)}", media.rtp.muxId or None, index)
        for index, media in enumerate(answer.media)
        for candidate in media.ice_candidates
    ]

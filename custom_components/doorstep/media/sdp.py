"""Check a browser's SDP offer before a peer connection sees it.

aiortc's parser (``aiortc.sdp.SessionDescription.parse``) is pure but trusts its input:
a stray line ends in an ``AssertionError``, a ``KeyError`` or a ``StopIteration``, and
some values it takes as they come fail only later, inside the peer connection, after
sockets were opened. Offers come from any client that reaches Home Assistant, so they
are bounded first (size, lines, media sections, candidates), then parsed by aiortc, then
held to what the hub relies on; every refusal says in plain words what is wrong.
Candidates are checked by :mod:`.candidates`.
"""

from __future__ import annotations

from dataclasses import dataclass
import itertools
import re
from typing import Final

from aiortc.codecs import CODECS
from aiortc.rtcdtlstransport import X509_DIGEST_ALGORITHMS
from aiortc.rtcpeerconnection import find_common_codecs, is_codec_compatible
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.sdp import (
    MediaDescription,
    SessionDescription,
)

from .candidates import first_problem, parse_candidate, split_lines
from .exceptions import InvalidCandidate, InvalidOffer


@dataclass(frozen=True, slots=True)
class OfferLimits:
    """Bounds on what an offer may contain. Real browser offers are far below them: Chrome's
    audio+video offer is about 6 KiB with 2 m-lines and a handful of candidates."""

    max_bytes: int = 64 * 1024
    max_media: int = 4
    max_candidates: int = 64
    max_line_length: int = 4096
    max_formats: int = 64


DEFAULT_LIMITS: Final = OfferLimits()

MEDIA_KINDS: Final = frozenset({"audio", "video", "application"})
# ice-char strings of RFC 8839's lengths (ufrag 4-256, pwd 22-256)
_UFRAG: Final = re.compile(r"[A-Za-z0-9+/]{4,256}")
_PWD: Final = re.compile(r"[A-Za-z0-9+/]{22,256}")
# BUNDLE groups list mids separated by spaces, so a mid must be one short token.
_MID: Final = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]{1,32}")
_LINE: Final = re.compile(r"[a-z]=.*")


@dataclass(frozen=True, slots=True)
class H264Format:
    """One H.264 payload type in the offer; ``supported`` when aiortc can send it."""

    payload_type: int
    profile_level_id: str
    packetization_mode: int
    supported: bool


@dataclass(frozen=True, slots=True)
class MediaSection:
    """What the checks learnt about one m-line."""

    index: int
    kind: str
    mid: str
    direction: str
    codecs: tuple[str, ...]
    h264: tuple[H264Format, ...]


@dataclass(frozen=True, slots=True)
class OfferSummary:
    """An offer that passed :func:`validate_offer`."""

    media: tuple[MediaSection, ...]
    video: MediaSection
    candidate_count: int

    @property
    def h264_profiles(self) -> tuple[str, ...]:
        """The supported profile-level-ids the browser offered for our video."""
        return tuple(f.profile_level_id for f in self.video.h264 if f.supported)


def validate_offer(sdp: object, limits: OfferLimits = DEFAULT_LIMITS) -> OfferSummary:
    """Check an offer; raise :class:`InvalidOffer` saying what is wrong.

    Returns what the session needs to know: the media sections and the video section
    that will carry the doorbell.
    """
    if not isinstance(sdp, str):
        raise InvalidOffer("the offer is not text")
    if not sdp.strip():
        raise InvalidOffer("the offer is empty")
    size = len(sdp.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise InvalidOffer(
            f"the offer is {size} bytes; offers larger than {limits.max_bytes} bytes are refused"
        )
    if not sdp.isascii():
        raise InvalidOffer("the offer contains non-ASCII characters")
    lines = split_lines(sdp)
    candidate_count = _check_lines(lines, limits)
    description = _parse(sdp)
    if description is None:
        raise InvalidOffer(_blame(lines))
    media = tuple(_check_media(m, i, limits) for i, m in enumerate(description.media))
    mids = [section.mid for section in media]
    if len(set(mids)) < len(mids):
        raise InvalidOffer(f"the offer uses a mid twice ({', '.join(mids)})")
    # aiortc moves bundled sections onto the first mid's transport; an unknown mid
    # leaves them with none, and it crashes later.
    for group in description.group:
        if group.semantic == "BUNDLE" and any(str(mid) not in mids for mid in group.items):
            raise InvalidOffer("a=group:BUNDLE names a mid that no media section has")
    return OfferSummary(media=media, video=_video(media), candidate_count=candidate_count)


def _check_lines(lines: list[str], limits: OfferLimits) -> int:
    """Limits and candidates, before aiortc reads anything; returns the candidate count."""
    if lines[0] != "v=0":
        raise InvalidOffer("the offer does not start with v=0")
    media = candidates = 0
    for number, line in enumerate(lines, start=1):
        problem = first_problem(
            (
                (len(line) <= limits.max_line_length, f"is longer than {limits.max_line_length}"),
                (line.isprintable(), "contains control characters"),
                (_LINE.fullmatch(line) is not None, "is not of the form x=value"),
            )
        )
        if problem is not None:
            raise InvalidOffer(f"line {number} of the offer {problem}")
        media += line.startswith("m=")
        if media > limits.max_media:
            raise InvalidOffer(f"the offer has more than {limits.max_media} media sections")
        if line.startswith("a=candidate:"):
            candidates += 1
            if candidates > limits.max_candidates:
                raise InvalidOffer(
                    f"the offer has more than {limits.max_candidates} ICE candidates"
                )
            try:
                parse_candidate(line)
            except InvalidCandidate as err:
                raise InvalidOffer(f"line {number} of the offer: {err.reason}") from None
    if not media:
        raise InvalidOffer("the offer has no media sections (m-lines)")
    return candidates


def _parse(sdp: str) -> SessionDescription | None:
    try:
        return SessionDescription.parse(sdp)
    except Exception:  # aiortc asserts, unpacks and looks up without checking first
        return None


def _blame(lines: list[str]) -> str:
    """Why aiortc could not parse the offer: the first line that fails with the least
    context aiortc needs (a session line alone, a media line under its m-line, a=fmtp
    with its a=rtpmap)."""
    mline: list[str] = []
    rtpmaps: dict[str, list[str]] = {}
    for number, line in enumerate(lines[1:], start=2):
        context = ["v=0", *mline]
        if line.startswith("m="):
            context, mline, rtpmaps = ["v=0"], [line], _rtpmaps(lines[number:])
        elif line.startswith("a=fmtp:"):
            payload_type = line.removeprefix("a=fmtp:").split(" ", 1)[0]
            context.extend(rtpmaps.get(payload_type, ()))
        if _parse("\r\n".join([*context, line])) is None:
            excerpt = line if len(line) <= 60 else f"{line[:57]}..."
            return f"line {number} of the offer is malformed: {excerpt}"
    return "the offer could not be parsed"


def _rtpmaps(section: list[str]) -> dict[str, list[str]]:
    """The a=rtpmap lines up to the next m-line, by payload type (the first one wins)."""
    found = list(itertools.takewhile(lambda line: not line.startswith("m="), section))
    return {
        line[len("a=rtpmap:") :].split(" ", 1)[0]: [line]
        for line in reversed(found)
        if line.startswith("a=rtpmap:")
    }


def _check_media(media: MediaDescription, index: int, limits: OfferLimits) -> MediaSection:
    label = f"media section {index + 1} ({media.kind})"
    rtp = media.kind in {"audio", "video"}
    mid = media.rtp.muxId or ""
    problem = first_problem(
        (
            (media.kind in MEDIA_KINDS, f"is of unsupported kind {media.kind!r}"),
            (len(media.fmt) <= limits.max_formats, f"lists more than {limits.max_formats} formats"),
            (not rtp or all(0 <= pt <= 127 for pt in media.fmt), "lists an invalid payload type"),
            (bool(mid), "has no a=mid"),
            (not mid or _MID.fullmatch(mid) is not None, "has a malformed a=mid"),
            (not rtp or media.rtcp_mux, "does not use rtcp-mux, which WebRTC requires"),
        )
    )
    problem = problem or _transport_problem(media) or _number_problem(media)
    if problem is not None:
        raise InvalidOffer(f"{label} {problem}")
    return MediaSection(
        index=index,
        kind=media.kind,
        mid=mid,
        direction=media.direction or "sendrecv",
        codecs=tuple(sorted({codec.name for codec in media.rtp.codecs})),
        h264=_check_codecs(media, label) if rtp else (),
    )


def _transport_problem(media: MediaDescription) -> str | None:
    """What ICE and DTLS need; without it aiortc would fail only once connecting."""
    ufrag = (media.ice.usernameFragment if media.ice else None) or ""
    pwd = (media.ice.password if media.ice else None) or ""
    hashes = [f.algorithm.lower() for f in media.dtls.fingerprints] if media.dtls else []
    return first_problem(
        (
            (bool(ufrag and pwd), "has no ICE credentials (ice-ufrag and ice-pwd)"),
            (not ufrag or _UFRAG.fullmatch(ufrag) is not None, "has a malformed ice-ufrag"),
            (not pwd or _PWD.fullmatch(pwd) is not None, "has a malformed ice-pwd"),
            (media.dtls is not None, "has no DTLS setup role (a=setup)"),
            (
                any(h in X509_DIGEST_ALGORITHMS for h in hashes),
                "has no sha-256/384/512 DTLS fingerprint",
            ),
        )
    )


def _number_problem(media: MediaDescription) -> str | None:
    """Numbers aiortc takes as they come and later packs into fixed-size fields."""
    ssrcs = [s.ssrc for s in media.ssrc] + [int(i) for g in media.ssrc_group for i in g.items]
    return first_problem(
        (
            (0 <= media.port <= 65535, "has a port above 65535"),
            (all(0 <= ssrc < 2**32 for ssrc in ssrcs), "has an a=ssrc beyond 32 bits"),
            (
                all(1 <= e.id <= 255 for e in media.rtp.headerExtensions),
                "has an a=extmap id beyond 255",
            ),
            (0 <= (media.sctp_port or 0) <= 65535, "has an a=sctp-port beyond 65535"),
        )
    )


def _check_codecs(media: MediaDescription, label: str) -> tuple[H264Format, ...]:
    """The offer's H.264 formats; refuses a section with no codec the hub can use."""
    if unlisted := [c.payloadType for c in media.rtp.codecs if c.payloadType not in media.fmt]:
        raise InvalidOffer(
            f"{label} has a=rtpmap for payload type {unlisted[0]}, which the m-line does not list"
        )
    try:
        # What setRemoteDescription negotiates, and how (aiortc's own functions).
        usable = find_common_codecs(CODECS[media.kind], media.rtp.codecs)
    except TypeError:  # int(None) on a packetization-mode given without a value
        raise InvalidOffer(f"{label} has an H.264 packetization-mode without a value") from None
    if not usable:
        raise InvalidOffer(f"{label} offers no codec the hub can use")
    if media.kind != "video":
        return ()
    return tuple(_h264_format(c) for c in media.rtp.codecs if c.name.lower() == "h264")


def _h264_format(codec: RTCRtpCodecParameters) -> H264Format:
    # aiortc assumes constrained baseline level 3.1 when profile-level-id is missing.
    profile_level_id = str(codec.parameters.get("profile-level-id", "42e01f")).lower()
    mode = str(codec.parameters.get("packetization-mode", "0"))
    return H264Format(
        payload_type=codec.payloadType or 0,
        profile_level_id=profile_level_id,
        packetization_mode=int(mode) if mode.isdecimal() and len(mode) < 3 else -1,
        supported=any(is_codec_compatible(ours, codec) for ours in CODECS["video"]),
    )


def _video(media: tuple[MediaSection, ...]) -> MediaSection:
    """The section that will carry the doorbell: aiortc binds its track to the first."""
    video = next((section for section in media if section.kind == "video"), None)
    if video is None:
        raise InvalidOffer("the offer has no video section: the browser must ask for video")
    if not video.h264:
        raise InvalidOffer(
            f"the browser did not offer H.264 video (it offered: {', '.join(video.codecs)}); "
            "Doorstep passes the doorbell's H.264 through without transcoding, so the "
            "browser must support it"
        )
    if not any(f.supported for f in video.h264):
        offered = ", ".join(
            f"profile {f.profile_level_id} mode {f.packetization_mode}" for f in video.h264
        )
        raise InvalidOffer(
            f"the browser offered H.264 only as {offered}; the hub sends constrained "
            "baseline or baseline H.264 with packetization-mode=1"
        )
    if video.direction not in {"recvonly", "sendrecv"}:
        raise InvalidOffer(
            f"the offer's video section is {video.direction}: the browser must receive video"
        )
    return video

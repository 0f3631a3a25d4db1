"""Check a browser's SDP offer before a peer connection sees it, and filter ICE candidates.

aiortc's parser (``aiortc.sdp.SessionDescription.parse``) is pure but trusts its input:
a stray line ends in an ``AssertionError``, a ``KeyError`` or a ``StopIteration``, and
some values it takes as they come fail only later, inside the peer connection, after
sockets were opened. Offers come from any client that reaches Home Assistant, so they
are bounded first (size, lines, media sections, candidates), then parsed by aiortc, then
held to what the hub relies on; every refusal says in plain words what is wrong.

Candidates are parsed by aioice and filtered here (DESIGN.md I3/I4): only ``host``
candidates on a home network address are passed on. Server-reflexive and relay
candidates (which the browser may learn from Home Assistant's default STUN server) and
public addresses are dropped, so the hub never sends a packet outside the home.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import itertools
import re
from typing import Final

from aioice import Candidate
from aiortc import RTCIceCandidate
from aiortc.codecs import CODECS
from aiortc.rtcdtlstransport import X509_DIGEST_ALGORITHMS
from aiortc.rtcicetransport import candidate_from_aioice
from aiortc.rtcpeerconnection import find_common_codecs, is_codec_compatible
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.sdp import (
    H264Profile,
    MediaDescription,
    SessionDescription,
    parse_h264_profile_level_id,
)

from .exceptions import InvalidCandidate, InvalidOffer
from .network import NetworkPolicy


@dataclass(frozen=True, slots=True)
class OfferLimits:
    """Bounds on what an offer may contain. Real browser offers are far below them:
    Chrome's audio+video offer is about 6 KiB with 2 m-lines and a handful of
    candidates."""

    max_bytes: int = 64 * 1024
    max_media: int = 4
    max_candidates: int = 64
    max_line_length: int = 4096
    max_formats: int = 64


DEFAULT_LIMITS: Final = OfferLimits()

CANDIDATE_TYPES: Final = frozenset({"host", "srflx", "prflx", "relay"})
MEDIA_KINDS: Final = frozenset({"audio", "video", "application"})
_ADDRESS: Final = re.compile(r"[0-9A-Za-z.:%\-]{1,255}")
_ICE_CHARS: Final = re.compile(r"[A-Za-z0-9+/]+")
# BUNDLE groups list mids separated by spaces, so a mid must be one short token.
_MID: Final = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]{1,32}")
_LINE: Final = re.compile(r"[a-z]=.*")


def _first_problem(checks: Iterable[tuple[bool, str]]) -> str | None:
    return next((problem for ok, problem in checks if not ok), None)


# --- Candidates ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteCandidate:
    """A browser's ICE candidate as aioice parsed it, within Doorstep's bounds."""

    ice: Candidate

    def to_sdp(self) -> str:
        """The ``candidate:...`` attribute value (without ``a=``)."""
        return f"candidate:{self.ice.to_sdp()}"

    def to_rtc(self, sdp_mid: str | None, sdp_mline_index: int | None) -> RTCIceCandidate:
        """The candidate for ``RTCPeerConnection.addIceCandidate``."""
        rtc = candidate_from_aioice(self.ice)
        rtc.sdpMid, rtc.sdpMLineIndex = sdp_mid, sdp_mline_index
        return rtc


@dataclass(frozen=True, slots=True)
class DroppedCandidate:
    """A candidate that was not passed on, and why."""

    candidate: str
    reason: str


def parse_candidate(text: str) -> RemoteCandidate:
    """Parse ``candidate:...`` (with or without ``a=`` and ``candidate:``).

    Raises :class:`InvalidCandidate` with the reason when it is not well-formed.
    """
    body = text.strip().removeprefix("a=").removeprefix("candidate:")
    fields = body.split()
    if len(fields) < 8:
        raise InvalidCandidate(f"ICE candidate has {len(fields)} fields, needs at least 8")
    if not body.isascii() or not body.isprintable():
        raise InvalidCandidate("ICE candidate contains control or non-ASCII characters")
    try:
        ice = Candidate.from_sdp(body)
    except ValueError as err:
        raise InvalidCandidate(f"ICE candidate is malformed: {err}") from None
    # aioice converts the fields it needs and skips the rest; the hub relies on these.
    problem = _first_problem(
        (
            (
                fields[6] == "typ" and ice.type in CANDIDATE_TYPES,
                "type must be host, srflx, prflx or relay",
            ),
            (ice.transport.lower() in {"udp", "tcp"}, "transport must be UDP or TCP"),
            (1 <= ice.component <= 256, "component must be a number from 1 to 256"),
            (0 <= ice.priority < 2**32, "priority must be a 32-bit number"),
            (0 <= ice.port <= 65535, "port must be a number from 0 to 65535"),
            (0 <= (ice.related_port or 0) <= 65535, "related port is malformed"),
            (_ADDRESS.fullmatch(ice.host) is not None, "address is malformed"),
            (_ADDRESS.fullmatch(ice.related_address or "-") is not None, "raddr is malformed"),
            (len(fields) % 2 == 0, "extension attributes must come in pairs"),
        )
    )
    if problem is not None:
        raise InvalidCandidate(f"ICE candidate {problem}")
    return RemoteCandidate(ice)


def candidate_rejection(candidate: RemoteCandidate, policy: NetworkPolicy) -> str | None:
    """Why the hub must not use this candidate, or None when it may."""
    ice = candidate.ice
    if ice.type != "host":
        return (
            f"{ice.type} candidates are ignored: live video only flows between "
            "host addresses on the home network"
        )
    if ice.transport.lower() != "udp":
        return "only UDP candidates are used"
    if ice.host.lower().endswith(".local"):
        # Chrome hides its IP behind mDNS names. Resolving would mean multicast queries
        # on behalf of any client; the browser's checks reach the hub as peer-reflexive.
        return "mDNS (.local) candidates are not resolved"
    if ice.port == 0:
        return "candidate port 0 cannot be reached"
    if not policy.allows(ice.host):
        return f"{ice.host} is not on the home network"
    return None


def filter_offer_candidates(
    sdp: str, policy: NetworkPolicy
) -> tuple[str, tuple[DroppedCandidate, ...]]:
    """The SDP without the candidates the hub must not use, and what was dropped.

    Offers go through it after :func:`validate_offer`, and the hub's own answer too, so
    both directions follow one rule. A candidate that does not parse is dropped.
    """
    kept: list[str] = []
    dropped: list[DroppedCandidate] = []
    newline = "\r\n" if "\r\n" in sdp else "\n"
    for line in _split_lines(sdp):
        if line.startswith("a=candidate:"):
            try:
                reason = candidate_rejection(parse_candidate(line), policy)
            except InvalidCandidate as err:
                reason = err.reason
            if reason is not None:
                dropped.append(DroppedCandidate(line[2:], reason))
                continue
        kept.append(line)
    return newline.join(kept) + newline, tuple(dropped)


# --- Offers ------------------------------------------------------------------------------


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
    lines = _split_lines(sdp)
    candidate_count = _check_lines(lines, limits)
    description = _parse(sdp, lines)
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


def _split_lines(sdp: str) -> list[str]:
    """Lines without their CR/LF, empty ones skipped (a trailing newline is normal)."""
    return [line.removesuffix("\r") for line in sdp.split("\n") if line.strip("\r")]


def _check_lines(lines: list[str], limits: OfferLimits) -> int:
    """The limits and the candidates, before aiortc reads anything; returns the number
    of candidates."""
    if lines[0] != "v=0":
        raise InvalidOffer("the offer does not start with v=0")
    media = candidates = 0
    for number, line in enumerate(lines, start=1):
        problem = _first_problem(
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


def _parse(sdp: str, lines: list[str]) -> SessionDescription:
    try:
        return SessionDescription.parse(sdp)
    except Exception:  # aiortc asserts, unpacks and looks up without checking first
        raise InvalidOffer(_blame(lines)) from None


def _parses(lines: list[str]) -> bool:
    try:
        SessionDescription.parse("\r\n".join(lines))
    except Exception:  # as in _parse
        return False
    return True


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
        if not _parses([*context, line]):
            excerpt = line if len(line) <= 60 else f"{line[:57]}..."
            return f"line {number} of the offer is malformed: {excerpt}"
    return "the offer could not be parsed"


def _rtpmaps(section: list[str]) -> dict[str, list[str]]:
    """The a=rtpmap lines up to the next m-line, by payload type."""
    found: dict[str, list[str]] = {}
    for line in itertools.takewhile(lambda line: not line.startswith("m="), section):
        if line.startswith("a=rtpmap:"):
            found.setdefault(line.removeprefix("a=rtpmap:").split(" ", 1)[0], [line])
    return found


def _check_media(media: MediaDescription, index: int, limits: OfferLimits) -> MediaSection:
    label = f"media section {index + 1} ({media.kind})"
    rtp = media.kind in {"audio", "video"}
    mid = media.rtp.muxId or ""
    problem = _first_problem(
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
    return _first_problem(
        (
            (bool(ufrag and pwd), "has no ICE credentials (ice-ufrag and ice-pwd)"),
            (not ufrag or _ice_chars(ufrag, 4), "has a malformed ice-ufrag"),
            (not pwd or _ice_chars(pwd, 22), "has a malformed ice-pwd"),
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
    return _first_problem(
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


def _ice_chars(value: str, min_length: int) -> bool:
    return min_length <= len(value) <= 256 and _ICE_CHARS.fullmatch(value) is not None


def _check_codecs(media: MediaDescription, label: str) -> tuple[H264Format, ...]:
    """The offer's H.264 formats; refuses a section with no codec the hub can use."""
    unlisted = [c.payloadType for c in media.rtp.codecs if c.payloadType not in media.fmt]
    if unlisted:
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

"""Check a browser's SDP offer before aiortc sees it, and filter ICE candidates.

aiortc's SDP parser trusts its input: a stray line ends in an ``AssertionError``, a
``StopIteration`` or a ``KeyError`` from deep inside, sometimes after sockets were
opened. Offers come from any client that reaches Home Assistant, so they are checked
here first, line by line, with limits on size, media sections and candidates, and every
refusal says in plain words what is wrong.

The checks are at least as strict as aiortc's parser for every line it interprets, so
an offer that passes here parses there. Lines aiortc ignores are only checked for the
basic ``x=value`` shape.

Candidates are filtered here too (DESIGN.md I3/I4): only ``host`` candidates on a home
network address are passed on. Server-reflexive and relay candidates (which the browser
may learn from Home Assistant's default STUN server) and public addresses are dropped,
so the hub never sends a packet outside the home.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
import re
from typing import Final

from aiortc import RTCRtpSender
from aiortc.sdp import H264Profile, parse_h264_profile_level_id

from .exceptions import InvalidCandidate, InvalidOffer
from .network import NetworkPolicy

# --- Limits --------------------------------------------------------------------------


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

# --- Models ----------------------------------------------------------------------------

CANDIDATE_TYPES: Final = frozenset({"host", "srflx", "prflx", "relay"})
DIRECTIONS: Final = frozenset({"inactive", "sendonly", "recvonly", "sendrecv"})
DTLS_SETUP_VALUES: Final = frozenset({"actpass", "active", "passive"})
FINGERPRINT_HASHES: Final = frozenset({"sha-1", "sha-224", "sha-256", "sha-384", "sha-512"})
MEDIA_KINDS: Final = frozenset({"audio", "video", "application"})
# aiortc converts these fmtp parameters with int(); anything else stays a string.
_FMTP_INT_PARAMETERS: Final = frozenset(
    {"apt", "max-fr", "max-fs", "maxplaybackrate", "minptime", "stereo", "useinbandfec"}
)
_FORBIDDEN_PAYLOAD_TYPES: Final = range(72, 77)  # they collide with RTCP packet types
# aiortc assumes constrained baseline level 3.1 when profile-level-id is missing.
_DEFAULT_PROFILE_LEVEL_ID: Final = "42e01f"


@dataclass(frozen=True, slots=True)
class RemoteCandidate:
    """One ICE candidate as the browser wrote it (RFC 8839 section 5.1)."""

    foundation: str
    component: int
    transport: str
    priority: int
    address: str
    port: int
    type: str
    related_address: str | None = None
    related_port: int | None = None
    tcp_type: str | None = None

    @property
    def is_mdns(self) -> bool:
        """True for an mDNS name (``<uuid>.local``), which Chrome uses to hide its IP."""
        return self.address.lower().endswith(".local")

    def to_sdp(self) -> str:
        """The ``candidate:...`` attribute value (without ``a=``)."""
        text = (
            f"candidate:{self.foundation} {self.component} {self.transport} {self.priority} "
            f"{self.address} {self.port} typ {self.type}"
        )
        if self.related_address is not None:
            text += f" raddr {self.related_address}"
        if self.related_port is not None:
            text += f" rport {self.related_port}"
        if self.tcp_type is not None:
            text += f" tcptype {self.tcp_type}"
        return text


@dataclass(frozen=True, slots=True)
class DroppedCandidate:
    """A remote candidate that was not passed on, and why."""

    candidate: str
    reason: str


@dataclass(frozen=True, slots=True)
class H264Format:
    """One H.264 payload type in the offer."""

    payload_type: int
    profile_level_id: str
    packetization_mode: int
    # True when aiortc has a matching codec (same profile, same packetization mode).
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
    candidates: tuple[RemoteCandidate, ...]


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


# --- Candidates ------------------------------------------------------------------------

_ICE_CHARS: Final = re.compile(r"[A-Za-z0-9+/]+")
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_HEX_PAIRS: Final = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*")
_ADDRESS: Final = re.compile(r"[0-9A-Za-z.:%\-]{1,255}")
# Extension values are byte-strings in RFC 8839; browsers put ICE ufrags there, whose
# characters include "/" and "+", so any visible ASCII is accepted (never whitespace).
_EXTENSION_VALUE: Final = re.compile(r"[\x21-\x7e]{1,256}")


def _int_in(text: str, low: int, high: int) -> int | None:
    if not text.isdecimal() or len(text) > 10:
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_candidate(text: str) -> RemoteCandidate:
    """Parse ``candidate:...`` (with or without ``a=`` and ``candidate:``).

    Raises :class:`InvalidCandidate` with the reason when it is not well-formed.
    """
    body = text.strip()
    if body.startswith("a="):
        body = body[2:]
    if body.startswith("candidate:"):
        body = body[len("candidate:") :]
    fields = body.split()
    if len(fields) < 8:
        raise InvalidCandidate(f"ICE candidate has {len(fields)} fields, needs at least 8")
    foundation, component, transport, priority, address, port, typ, kind = fields[:8]
    if not 1 <= len(foundation) <= 32 or not _ICE_CHARS.fullmatch(foundation):
        raise InvalidCandidate("ICE candidate has a malformed foundation")
    component_id = _int_in(component, 1, 256)
    if component_id is None:
        raise InvalidCandidate("ICE candidate component must be a number from 1 to 256")
    priority_value = _int_in(priority, 0, 2**32 - 1)
    if priority_value is None:
        raise InvalidCandidate("ICE candidate priority must be a 32-bit number")
    if not _ADDRESS.fullmatch(address):
        raise InvalidCandidate("ICE candidate address is malformed")
    port_value = _int_in(port, 0, 65535)
    if port_value is None:
        raise InvalidCandidate("ICE candidate port must be a number from 0 to 65535")
    if typ != "typ" or kind not in CANDIDATE_TYPES:
        raise InvalidCandidate("ICE candidate type must be host, srflx, prflx or relay")
    if transport.lower() not in {"udp", "tcp"}:
        raise InvalidCandidate("ICE candidate transport must be UDP or TCP")
    extensions = fields[8:]
    if len(extensions) % 2:
        raise InvalidCandidate("ICE candidate extension attributes must come in pairs")
    related_address: str | None = None
    related_port: int | None = None
    tcp_type: str | None = None
    for name, value in zip(extensions[::2], extensions[1::2], strict=True):
        if name == "raddr":
            if not _ADDRESS.fullmatch(value):
                raise InvalidCandidate("ICE candidate related address is malformed")
            related_address = value
        elif name == "rport":
            related_port = _int_in(value, 0, 65535)
            if related_port is None:
                raise InvalidCandidate("ICE candidate related port is malformed")
        elif name == "tcptype":
            tcp_type = value
        elif not _TOKEN.fullmatch(name) or not _EXTENSION_VALUE.fullmatch(value):
            raise InvalidCandidate("ICE candidate has a malformed extension attribute")
    return RemoteCandidate(
        foundation=foundation,
        component=component_id,
        transport=transport.lower(),
        priority=priority_value,
        address=address,
        port=port_value,
        type=kind,
        related_address=related_address,
        related_port=related_port,
        tcp_type=tcp_type,
    )


def candidate_rejection(candidate: RemoteCandidate, policy: NetworkPolicy) -> str | None:
    """Why the hub must not use this remote candidate, or None when it may."""
    if candidate.type != "host":
        return (
            f"{candidate.type} candidates are ignored: live video only flows between "
            "host addresses on the home network"
        )
    if candidate.transport != "udp":
        return "only UDP candidates are used"
    if candidate.is_mdns:
        # Resolving would mean multicast queries on behalf of any client; the browser's
        # own checks reach the hub anyway and are accepted as peer-reflexive.
        return "mDNS (.local) candidates are not resolved"
    if candidate.port == 0:
        return "candidate port 0 cannot be reached"
    if not policy.allows(candidate.address):
        return f"{candidate.address} is not on the home network"
    return None


def filter_offer_candidates(
    sdp: str, policy: NetworkPolicy
) -> tuple[str, tuple[DroppedCandidate, ...]]:
    """The offer without the candidates the hub must not use, and what was dropped.

    Call after :func:`validate_offer`, which guarantees every candidate line parses.
    """
    kept: list[str] = []
    dropped: list[DroppedCandidate] = []
    newline = "\r\n" if "\r\n" in sdp else "\n"
    for line in _split_lines(sdp):
        if line.startswith("a=candidate:"):
            reason = candidate_rejection(parse_candidate(line), policy)
            if reason is not None:
                dropped.append(DroppedCandidate(line[2:], reason))
                continue
        kept.append(line)
    return newline.join(kept) + newline, tuple(dropped)


# --- Offer validation ---------------------------------------------------------------------

_LINE: Final = re.compile(r"[a-z]=.*")
_MLINE: Final = re.compile(r"m=([^ ]+) ([0-9]{1,5})(?:/[0-9]{1,3})? ([A-Z/]+) ([^ ].*)")
_CONNECTION: Final = re.compile(r"IN (IP4|IP6) ([^ ]+)")
_RTPMAP: Final = re.compile(r"([0-9]{1,3}) ([A-Za-z0-9_.+\-]+)/([0-9]{1,6})(?:/([0-9]{1,2}))?")
_FMTP: Final = re.compile(r"([0-9]{1,3}) ([^ ].*)")
_EXTMAP: Final = re.compile(r"([0-9]{1,3})(?:/(?:sendonly|recvonly|sendrecv|inactive))? (\S+)")
_SSRC: Final = re.compile(r"([0-9]{1,10}) ([^:\s]+):(.*)")
_SSRC_GROUP: Final = re.compile(r"[A-Za-z0-9\-]+( [0-9]{1,10})+")
_RTCP: Final = re.compile(r"([0-9]{1,5})(?: (IN (?:IP4|IP6) [^ ]+))?")
_RTCP_FB: Final = re.compile(r"(\*|[0-9]{1,3}) \S+( .*)?")
_SCTPMAP: Final = re.compile(r"([0-9]{1,5}) \S.*")


def _split_lines(sdp: str) -> list[str]:
    """Lines without their CR/LF, empty ones skipped (a trailing newline is normal)."""
    return [line.removesuffix("\r") for line in sdp.split("\n") if line.strip("\r")]


@dataclass(slots=True)
class _Section:
    index: int
    kind: str
    port: int
    formats: list[str]
    mid: str | None = None
    direction: str = "sendrecv"
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    fmtp: dict[int, dict[str, str]] = field(default_factory=dict)
    # aiortc reads fmtp after every rtpmap of the section (Firefox lists fmtp first).
    fmtp_lines: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    candidates: list[RemoteCandidate] = field(default_factory=list)
    ufrag: bool = False
    pwd: bool = False
    fingerprint: bool = False
    setup: bool = False
    rtcp_mux: bool = False
    bundles: list[list[str]] = field(default_factory=list)


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
    for number, line in enumerate(lines, start=1):
        if len(line) > limits.max_line_length:
            raise InvalidOffer(
                f"line {number} of the offer is longer than {limits.max_line_length}"
            )
        if not line.isprintable():
            raise InvalidOffer(f"line {number} of the offer contains control characters")
        if not _LINE.fullmatch(line):
            raise InvalidOffer(f"line {number} of the offer is not of the form x=value")
    if lines[0] != "v=0":
        raise InvalidOffer("the offer does not start with v=0")
    session = _Section(index=-1, kind="session", port=0, formats=[])
    sections: list[_Section] = []
    candidate_count = 0
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith("m="):
            if len(sections) >= limits.max_media:
                raise InvalidOffer(
                    f"the offer has more than {limits.max_media} media sections (m-lines)"
                )
            sections.append(_parse_mline(line, len(sections), limits))
            continue
        current = sections[-1] if sections else session
        try:
            _check_line(line, current, sections)
        except InvalidCandidate as err:
            raise InvalidOffer(f"line {number} of the offer: {err.reason}") from None
        except InvalidOffer as err:
            raise InvalidOffer(f"line {number} of the offer: {err.reason}") from None
        if line.startswith("a=candidate:"):
            candidate_count += 1
            if candidate_count > limits.max_candidates:
                raise InvalidOffer(
                    f"the offer has more than {limits.max_candidates} ICE candidates"
                )
    if not sections:
        raise InvalidOffer("the offer has no media sections (m-lines)")
    return _summarise(session, sections, candidate_count)


def _parse_mline(line: str, index: int, limits: OfferLimits) -> _Section:
    match = _MLINE.fullmatch(line)
    if match is None:
        raise InvalidOffer(f"media section {index + 1} has a malformed m-line")
    kind, port, _proto, formats_text = match.groups()
    if kind not in MEDIA_KINDS:
        raise InvalidOffer(f"media section {index + 1} is of unsupported kind {kind!r}")
    if int(port) > 65535:
        raise InvalidOffer(f"media section {index + 1} has a port above 65535")
    formats = formats_text.split()
    if len(formats) > limits.max_formats:
        raise InvalidOffer(
            f"media section {index + 1} lists more than {limits.max_formats} formats"
        )
    if kind != "application":
        for fmt in formats:
            pt = _int_in(fmt, 0, 127)
            if pt is None or pt in _FORBIDDEN_PAYLOAD_TYPES:
                raise InvalidOffer(f"media section {index + 1} lists invalid payload type {fmt!r}")
    return _Section(index=index, kind=kind, port=int(port), formats=formats)


def _check_line(line: str, current: _Section, sections: list[_Section]) -> None:
    kind, value = line[0], line[2:]
    if kind == "c":
        if _CONNECTION.fullmatch(value) is None:
            raise InvalidOffer("malformed c= line")
        return
    if kind == "v":
        raise InvalidOffer("v= may only appear once, at the start")
    if kind != "a":
        return
    name, _, arg = value.partition(":")
    has_arg = ":" in value
    media = current.kind != "session"
    if name == "candidate":
        if not media:
            raise InvalidOffer("ICE candidates must be inside a media section")
        current.candidates.append(parse_candidate(arg))
    elif name == "ice-ufrag":
        if not 4 <= len(arg) <= 256 or not _ICE_CHARS.fullmatch(arg):
            raise InvalidOffer("malformed ice-ufrag")
        current.ufrag = True
    elif name == "ice-pwd":
        if not 22 <= len(arg) <= 256 or not _ICE_CHARS.fullmatch(arg):
            raise InvalidOffer("malformed ice-pwd")
        current.pwd = True
    elif name == "fingerprint":
        parts = arg.split()
        if len(parts) != 2 or parts[0].lower() not in FINGERPRINT_HASHES:
            raise InvalidOffer("malformed DTLS fingerprint")
        if not _HEX_PAIRS.fullmatch(parts[1]):
            raise InvalidOffer("malformed DTLS fingerprint")
        current.fingerprint = True
    elif name == "setup":
        if arg not in DTLS_SETUP_VALUES:
            raise InvalidOffer("DTLS setup must be actpass, active or passive")
        current.setup = True
    elif name == "group" or name == "msid-semantic":
        # aiortc splits the value, so the colon is required even for an empty group.
        if not has_arg or not all(_TOKEN.fullmatch(p) for p in arg.split()):
            raise InvalidOffer(f"malformed a={name}")
        if name == "group" and arg.split()[:1] == ["BUNDLE"]:
            current.bundles.append(arg.split()[1:])
    elif name == "ice-options" or not media:
        return
    elif name == "mid":
        if not 1 <= len(arg) <= 32 or not _TOKEN.fullmatch(arg):
            raise InvalidOffer("malformed a=mid")
        if any(s.mid == arg for s in sections):
            raise InvalidOffer(f"mid {arg!r} is used by two media sections")
        current.mid = arg
    elif name in DIRECTIONS:
        if has_arg:
            raise InvalidOffer(f"a={name} takes no value")
        current.direction = name
    elif name == "rtcp-mux":
        current.rtcp_mux = True
    elif name == "rtpmap":
        _check_rtpmap(arg, current)
    elif name == "fmtp":
        _check_fmtp(arg, current)
    elif name == "extmap":
        match = _EXTMAP.fullmatch(arg)
        if match is None or not 1 <= int(match.group(1)) <= 255:
            raise InvalidOffer("malformed a=extmap")
    elif name == "ssrc":
        ssrc = _SSRC.fullmatch(arg)
        if ssrc is None or int(ssrc.group(1)) >= 2**32:
            raise InvalidOffer("malformed a=ssrc")
    elif name == "ssrc-group":
        if _SSRC_GROUP.fullmatch(arg) is None or any(int(v) >= 2**32 for v in arg.split()[1:]):
            raise InvalidOffer("malformed a=ssrc-group")
    elif name == "rtcp":
        rtcp = _RTCP.fullmatch(arg)
        if rtcp is None or (rtcp.group(2) and not _CONNECTION.fullmatch(rtcp.group(2))):
            raise InvalidOffer("malformed a=rtcp")
    elif name == "rtcp-fb":
        if _RTCP_FB.fullmatch(arg) is None:
            raise InvalidOffer("malformed a=rtcp-fb")
    elif name in {"sctp-port", "max-message-size"}:
        if _int_in(arg, 0, 2**31) is None:
            raise InvalidOffer(f"malformed a={name}")
    elif name == "sctpmap" and _SCTPMAP.fullmatch(arg) is None:
        raise InvalidOffer("malformed a=sctpmap")


def _check_rtpmap(arg: str, current: _Section) -> None:
    match = _RTPMAP.fullmatch(arg)
    if match is None:
        raise InvalidOffer("malformed a=rtpmap")
    pt, encoding, clock_rate, _channels = match.groups()
    if pt not in current.formats:
        raise InvalidOffer(f"a=rtpmap for payload type {pt}, which the m-line does not list")
    current.rtpmap[int(pt)] = (encoding, int(clock_rate))


def _check_fmtp(arg: str, current: _Section) -> None:
    match = _FMTP.fullmatch(arg)
    if match is None:
        raise InvalidOffer("malformed a=fmtp")
    pt_text, parameters_text = match.groups()
    parameters: dict[str, str] = {}
    # Split exactly as aiortc does (no stripping), so both agree on what was offered.
    for item in parameters_text.split(";"):
        key, has_value, val = item.partition("=")
        if key in _FMTP_INT_PARAMETERS and (not has_value or _int_in(val, 0, 2**31) is None):
            raise InvalidOffer(f"fmtp parameter {key} must be a number")
        parameters[key] = val
    current.fmtp_lines.append((int(pt_text), parameters))


def _supported_h264() -> set[tuple[int, H264Profile]]:
    supported: set[tuple[int, H264Profile]] = set()
    for codec in RTCRtpSender.getCapabilities("video").codecs:
        if codec.mimeType.lower() == "video/h264":
            params = codec.parameters
            mode = int(str(params.get("packetization-mode", "0")))
            profile, _level = parse_h264_profile_level_id(str(params["profile-level-id"]))
            supported.add((mode, profile))
    return supported


def _h264_format(pt: int, fmtp: dict[str, str]) -> H264Format:
    # Mirrors aiortc's is_codec_compatible(): what it would reject is unsupported here.
    profile_level_id = fmtp.get("profile-level-id", _DEFAULT_PROFILE_LEVEL_ID)
    mode_text = fmtp.get("packetization-mode", "0")
    mode = int(mode_text) if mode_text.isdecimal() and len(mode_text) < 3 else -1
    try:
        profile, _level = parse_h264_profile_level_id(profile_level_id)
    except ValueError:
        return H264Format(pt, profile_level_id.lower(), mode, supported=False)
    supported = (mode, profile) in _supported_h264()
    return H264Format(pt, profile_level_id.lower(), mode, supported=supported)


def _known_codecs(kind: str) -> set[tuple[str, int]]:
    return {
        (codec.mimeType.split("/", 1)[1].lower(), codec.clockRate)
        for codec in RTCRtpSender.getCapabilities(kind).codecs
        if codec.mimeType.lower() not in {"audio/rtx", "video/rtx"}
    }


def _summarise(session: _Section, sections: list[_Section], candidates: int) -> OfferSummary:
    summaries: list[MediaSection] = []
    for section in sections:
        label = f"media section {section.index + 1} ({section.kind})"
        for pt, parameters in section.fmtp_lines:
            if pt not in section.rtpmap:
                # aiortc looks the codec up by its rtpmap and fails on a miss.
                raise InvalidOffer(f"{label} has a=fmtp for payload type {pt} without a=rtpmap")
            section.fmtp[pt] = parameters
        if section.mid is None:
            raise InvalidOffer(f"{label} has no a=mid")
        if not (section.ufrag or session.ufrag) or not (section.pwd or session.pwd):
            raise InvalidOffer(f"{label} has no ICE credentials (ice-ufrag and ice-pwd)")
        if not (section.fingerprint or session.fingerprint):
            raise InvalidOffer(f"{label} has no DTLS fingerprint")
        if not (section.setup or session.setup):
            raise InvalidOffer(f"{label} has no DTLS setup role (a=setup)")
        h264: tuple[H264Format, ...] = ()
        if section.kind in {"audio", "video"}:
            if not section.rtcp_mux:
                raise InvalidOffer(f"{label} does not use rtcp-mux, which WebRTC requires")
            known = _known_codecs(section.kind)
            usable = False
            for pt, (encoding, clock_rate) in section.rtpmap.items():
                if encoding.lower() == "h264" and section.kind == "video":
                    fmt = _h264_format(pt, section.fmtp.get(pt, {}))
                    h264 += (fmt,)
                    usable = usable or fmt.supported
                elif encoding.lower() != "h264" and (encoding.lower(), clock_rate) in known:
                    usable = True
            if not usable:
                raise InvalidOffer(f"{label} offers no codec the hub can use")
        summaries.append(
            MediaSection(
                index=section.index,
                kind=section.kind,
                mid=section.mid,
                direction=section.direction,
                codecs=tuple(sorted({enc for enc, _rate in section.rtpmap.values()})),
                h264=h264,
                candidates=tuple(section.candidates),
            )
        )
    mids = {s.mid for s in summaries}
    for group in session.bundles:
        # aiortc moves bundled sections onto the first mid's transport; an unknown mid
        # leaves them with none and it crashes later.
        if any(mid not in mids for mid in group):
            raise InvalidOffer("a=group:BUNDLE names a mid that no media section has")
    video = next((s for s in summaries if s.kind == "video"), None)
    if video is None:
        raise InvalidOffer("the offer has no video section: the browser must ask for video")
    # aiortc binds the doorbell's track to the first video section.
    if not any(f.supported for f in video.h264):
        if video.h264:
            offered = ", ".join(
                f"profile {f.profile_level_id} mode {f.packetization_mode}" for f in video.h264
            )
            raise InvalidOffer(
                f"the browser offered H.264 only as {offered}; the hub sends constrained "
                "baseline or baseline H.264 with packetization-mode=1"
            )
        offered = ", ".join(video.codecs) or "none"
        raise InvalidOffer(
            f"the browser did not offer H.264 video (it offered: {offered}); Doorstep passes "
            "the doorbell's H.264 through without transcoding, so the browser must support it"
        )
    if video.direction not in {"recvonly", "sendrecv"}:
        raise InvalidOffer(
            f"the offer's video section is {video.direction}: the browser must receive video"
        )
    return OfferSummary(media=tuple(summaries), video=video, candidate_count=candidates)


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

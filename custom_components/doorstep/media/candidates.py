"""ICE candidates: parsed by aioice, held to Doorstep's bounds, filtered to the home network.

Only ``host`` candidates on a home network address are passed on (DESIGN.md I3/I4).
Server-reflexive and relay candidates (which the browser may learn from Home Assistant's
default STUN server) and public addresses are dropped, so the hub never sends a packet
outside the home. Offers, trickled candidates and the hub's own answer all go through
:func:`candidate_rejection`, so every direction follows one rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import re
from typing import Final

from aioice import Candidate
from aiortc import RTCIceCandidate
from aiortc.rtcicetransport import candidate_from_aioice

from .exceptions import InvalidCandidate
from .network import NetworkPolicy

CANDIDATE_TYPES: Final = frozenset({"host", "srflx", "prflx", "relay"})
_ADDRESS: Final = re.compile(r"[0-9A-Za-z.:%\-]{1,255}")


def first_problem(checks: Iterable[tuple[bool, str]]) -> str | None:
    """The message of the first check that failed, or None when all passed."""
    return next((problem for ok, problem in checks if not ok), None)


def split_lines(sdp: str) -> list[str]:
    """Lines without their CR/LF, empty ones skipped (a trailing newline is normal)."""
    return [line.removesuffix("\r") for line in sdp.split("\n") if line.strip("\r")]


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
    problem = first_problem(
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

    Offers go through it after ``sdp.validate_offer``, and the hub's own answer too, so
    both directions follow one rule. A candidate that does not parse is dropped. The
    rest of the text is kept as it came, which is why this works on lines.
    """
    kept: list[str] = []
    dropped: list[DroppedCandidate] = []
    newline = "\r\n" if "\r\n" in sdp else "\n"
    for line in split_lines(sdp):
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

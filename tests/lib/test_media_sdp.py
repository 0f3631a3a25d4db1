"""Offer validation and candidate filtering, with real browser offers and fuzzing.

The fuzzing property is the one the session relies on: an offer either gets a clear
:class:`InvalidOffer`, or aiortc's own parser takes it without raising.
"""

from __future__ import annotations

import random

from aiortc.sdp import SessionDescription
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.doorstep.media import InvalidOffer, NetworkPolicy, OfferLimits
from custom_components.doorstep.media.answer import (
    check_negotiated,
    h264_preference_order,
    local_candidates,
)
from custom_components.doorstep.media.candidates import (
    candidate_rejection,
    filter_offer_candidates,
    parse_candidate,
)
from custom_components.doorstep.media.exceptions import InvalidCandidate
from custom_components.doorstep.media.sdp import validate_offer

_FINGERPRINT = ":".join(f"{b:02X}" for b in range(32))

# Shaped like Chrome's offer for a recvonly video + audio transceiver (what Home
# Assistant's camera card creates), with its trickled candidates inlined.
CHROME_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 127 125 39 40 45",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=candidate:1467250027 1 udp 2122260223 192.168.1.23 56143 typ host generation 0",
        "a=candidate:2743498372 1 udp 2122194687 fd00::23 50012 typ host generation 0",
        "a=candidate:842163049 1 udp 1686052607 203.0.113.7 56143 typ srflx raddr "
        "192.168.1.23 rport 56143 generation 0",
        "a=candidate:3977246251 1 udp 2122260223 5c1e6a3b-7f51-4ad1-9cb6-1f0a4f9e2b55.local "
        "56144 typ host generation 0",
        "a=ice-ufrag:EsAw",
        "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1",
        "a=ice-options:trickle",
        f"a=fingerprint:sha-256 {_FINGERPRINT}",
        "a=setup:actpass",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:toffset",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:3 urn:3gpp:video-orientation",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 goog-remb",
        "a=rtcp-fb:96 transport-cc",
        "a=rtcp-fb:96 ccm fir",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:102 H264/90000",
        "a=rtcp-fb:102 goog-remb",
        "a=rtcp-fb:102 nack",
        "a=rtcp-fb:102 nack pli",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        "a=rtpmap:103 rtx/90000",
        "a=fmtp:103 apt=102",
        "a=rtpmap:104 H264/90000",
        "a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f",
        "a=rtpmap:105 rtx/90000",
        "a=fmtp:105 apt=104",
        "a=rtpmap:106 H264/90000",
        "a=rtcp-fb:106 nack pli",
        "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "a=rtpmap:107 rtx/90000",
        "a=fmtp:107 apt=106",
        "a=rtpmap:108 H264/90000",
        "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
        "a=rtpmap:109 rtx/90000",
        "a=fmtp:109 apt=108",
        "a=rtpmap:127 H264/90000",
        "a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
        "a=rtpmap:125 rtx/90000",
        "a=fmtp:125 apt=127",
        "a=rtpmap:39 AV1/90000",
        "a=rtpmap:40 rtx/90000",
        "a=fmtp:40 apt=39",
        "a=rtpmap:45 VP9/90000",
        "a=fmtp:45 profile-id=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:EsAw",
        "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1",
        "a=ice-options:trickle",
        f"a=fingerprint:sha-256 {_FINGERPRINT}",
        "a=setup:actpass",
        "a=mid:1",
        "a=extmap:14 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:13 CN/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:126 telephone-event/8000",
        "",
    ]
)

# Shaped like Firefox's: session-level fingerprint, "a=sendrecv" style attributes,
# H.264 listed after VP8/VP9.
FIREFOX_OFFER = "\r\n".join(
    [
        "v=0",
        "o=mozilla...THIS_IS_SDPARTA-99.0 5125837370128925836 0 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        f"a=fingerprint:sha-256 {_FINGERPRINT}",
        "a=group:BUNDLE 0",
        "a=ice-options:trickle",
        "a=msid-semantic:WMS *",
        "m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125 126 127 97 98",
        "c=IN IP4 0.0.0.0",
        "a=candidate:0 1 UDP 2122252543 10.0.0.8 40000 typ host",
        "a=candidate:1 1 TCP 2105524479 10.0.0.8 9 typ host tcptype active",
        "a=candidate:2 1 UDP 8331007 198.51.100.4 61234 typ relay raddr 198.51.100.4 rport 61234",
        "a=recvonly",
        "a=end-of-candidates",
        "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1",
        "a=fmtp:97 profile-level-id=42e01f;level-asymmetry-allowed=1",
        "a=fmtp:120 max-fs=12288;max-fr=60",
        "a=fmtp:124 apt=120",
        "a=fmtp:121 max-fs=12288;max-fr=60",
        "a=fmtp:125 apt=121",
        "a=fmtp:127 apt=126",
        "a=fmtp:98 apt=97",
        "a=ice-pwd:3f4a6e8b2d1c0e9f8a7b6c5d4e3f2a1b",
        "a=ice-ufrag:8b2e4c1a",
        "a=mid:0",
        "a=rtcp-fb:120 nack",
        "a=rtcp-fb:120 nack pli",
        "a=rtcp-fb:120 ccm fir",
        "a=rtcp-fb:126 nack",
        "a=rtcp-fb:126 nack pli",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:120 VP8/90000",
        "a=rtpmap:124 rtx/90000",
        "a=rtpmap:121 VP9/90000",
        "a=rtpmap:125 rtx/90000",
        "a=rtpmap:126 H264/90000",
        "a=rtpmap:127 rtx/90000",
        "a=rtpmap:97 H264/90000",
        "a=rtpmap:98 rtx/90000",
        "a=setup:actpass",
        "a=ssrc:1855234567 cname:{9c6bd0a4-47a7-4a2b-8d5c-2b1b8c4a3f11}",
        "",
    ]
)

BROWSER_OFFERS = {"chrome": CHROME_OFFER, "firefox": FIREFOX_OFFER}
HOME = NetworkPolicy()


def _replace(sdp: str, old: str, new: str) -> str:
    assert old in sdp
    return sdp.replace(old, new)


# --- Real offers ---------------------------------------------------------------------------


@pytest.mark.parametrize("browser", BROWSER_OFFERS)
def test_browser_offers_pass_and_aiortc_parses_them(browser: str) -> None:
    offer = BROWSER_OFFERS[browser]
    summary = validate_offer(offer)
    assert summary.video.mid == "0"
    assert summary.video.direction == "recvonly"
    assert "42e01f" in summary.h264_profiles
    SessionDescription.parse(offer)


def test_chrome_offer_summary() -> None:
    summary = validate_offer(CHROME_OFFER)
    assert [m.kind for m in summary.media] == ["video", "audio"]
    assert summary.candidate_count == 4
    assert set(summary.h264_profiles) == {"42001f", "42e01f"}
    unsupported = {f.profile_level_id for f in summary.video.h264 if not f.supported}
    assert "4d001f" in unsupported  # main profile: aiortc only negotiates baseline


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: "", "empty"),
        (lambda s: "x" * 70_000, "bytes"),
        (lambda s: s.replace("v=0", "v=1"), "v=0"),
        (lambda s: s.replace("a=mid:0", "a=mid:1"), "mid"),
        (lambda s: s.replace("a=rtcp-mux\r\n", ""), "rtcp-mux"),
        (lambda s: s.replace("a=setup:actpass", "a=setup:holdconn"), "setup"),
        (lambda s: s.replace("a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1", "a=ice-pwd:short"), "ice-pwd"),
        (lambda s: s.replace("m=audio", "m=text"), "unsupported kind"),
        (lambda s: s.replace("a=recvonly", "a=sendonly", 1), "must receive video"),
        (lambda s: s + "garbage\r\n", "x=value"),
        (lambda s: s.replace("a=mid:1", "a=mid:1\x00"), "control characters"),
        (lambda s: s.replace("s=-", "s=caf\u00e9"), "non-ASCII"),
        (lambda s: s.replace("a=ssrc", "a=ssrc") + "a=ssrc:12 cname\r\n", "a=ssrc"),
        (lambda s: s.replace("a=fmtp:97 apt=96", "a=fmtp:97 apt=x"), "apt"),
        (lambda s: s.replace("a=rtpmap:39 AV1/90000", "a=rtpmap:200 AV1/90000"), "does not list"),
        (lambda s: s.replace("BUNDLE 0 1", "BUNDLE 7 0 1"), "BUNDLE"),
    ],
)
def test_broken_offers_are_refused_with_a_reason(mutate: object, message: str) -> None:
    assert callable(mutate)
    with pytest.raises(InvalidOffer, match=message):
        validate_offer(mutate(CHROME_OFFER))


def test_offer_without_h264_says_what_was_offered() -> None:
    lines = [
        line
        for line in CHROME_OFFER.split("\r\n")
        if "H264" not in line and not any(f":{pt} " in line for pt in (102, 104, 106, 108, 127))
    ]
    with pytest.raises(InvalidOffer, match=r"did not offer H\.264.*VP8"):
        validate_offer("\r\n".join(lines))


def test_offer_with_only_unusable_h264_explains_the_profile() -> None:
    offer = CHROME_OFFER.replace("packetization-mode=1", "packetization-mode=0")
    with pytest.raises(InvalidOffer, match="packetization-mode=1"):
        validate_offer(offer)


def test_offer_without_video_is_refused() -> None:
    audio_only = CHROME_OFFER[CHROME_OFFER.index("m=audio") :]
    head = CHROME_OFFER[: CHROME_OFFER.index("m=video")].replace("BUNDLE 0 1", "BUNDLE 1")
    with pytest.raises(InvalidOffer, match="no video section"):
        validate_offer(head + audio_only)


def test_limits_on_media_sections_and_candidates() -> None:
    video = CHROME_OFFER[CHROME_OFFER.index("m=video") : CHROME_OFFER.index("m=audio")]
    many = CHROME_OFFER + "".join(video.replace("a=mid:0", f"a=mid:v{i}") for i in range(4))
    with pytest.raises(InvalidOffer, match="more than 4 media sections"):
        validate_offer(many)
    candidate = "a=candidate:1 1 udp 1 192.168.1.2 {port} typ host\r\n"
    flood = CHROME_OFFER.replace(
        "a=ice-ufrag:EsAw\r\n",
        "".join(candidate.format(port=1000 + i) for i in range(70)) + "a=ice-ufrag:EsAw\r\n",
        1,
    )
    with pytest.raises(InvalidOffer, match="more than 64 ICE candidates"):
        validate_offer(flood)
    validate_offer(flood, OfferLimits(max_candidates=100, max_bytes=128 * 1024))


def test_non_text_offer_is_refused() -> None:
    with pytest.raises(InvalidOffer, match="not text"):
        validate_offer(b"v=0")


# --- Candidates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "allowed"),
    [
        ("candidate:1 1 udp 2122260223 192.168.1.23 5000 typ host", True),
        ("candidate:1 1 udp 2122260223 10.1.2.3 5000 typ host", True),
        ("candidate:1 1 udp 2122260223 172.20.0.5 5000 typ host", True),
        ("candidate:1 1 udp 2122260223 fd12:3456::1 5000 typ host", True),
        ("candidate:1 1 udp 2122260223 fe80::1%eth0 5000 typ host", True),
        ("candidate:1 1 udp 2122260223 169.254.7.7 5000 typ host", True),
        ("candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host", True),
        ("candidate:1 1 udp 2122260223 203.0.113.7 5000 typ host", False),
        ("candidate:1 1 udp 2122260223 8.8.8.8 5000 typ host", False),
        ("candidate:1 1 udp 2122260223 100.64.1.1 5000 typ host", False),
        ("candidate:1 1 udp 2122260223 2001:db8::1 5000 typ host", False),
        ("candidate:1 1 udp 2122260223 ::ffff:8.8.8.8 5000 typ host", False),
        ("candidate:1 1 udp 2122260223 224.0.0.251 5000 typ host", False),
        ("candidate:1 1 udp 2122260223 0.0.0.0 5000 typ host", False),
        (
            "candidate:1 1 udp 1686052607 192.168.1.5 5000 typ srflx raddr 192.168.1.5 rport 1",
            False,
        ),
        ("candidate:1 1 udp 1686052607 192.168.1.5 5000 typ prflx", False),
        ("candidate:1 1 udp 8331007 192.168.1.5 5000 typ relay raddr 1.2.3.4 rport 5", False),
        ("candidate:1 1 tcp 2105524479 192.168.1.5 9 typ host tcptype active", False),
        ("candidate:1 1 udp 2122260223 abc.local 5000 typ host", False),
        ("candidate:1 1 udp 2122260223 192.168.1.23 0 typ host", False),
    ],
)
def test_candidate_policy(candidate: str, allowed: bool) -> None:
    parsed = parse_candidate(candidate)
    assert (candidate_rejection(parsed, HOME) is None) is allowed


def test_extra_networks_and_loopback_only_policy() -> None:
    vpn = NetworkPolicy.from_strings(["100.64.0.0/10"])
    assert vpn.allows("100.64.1.1")
    assert vpn.allows("192.168.1.1")
    loopback = NetworkPolicy.loopback_only()
    assert loopback.allows("127.0.0.1")
    assert not loopback.allows("192.168.1.1")
    assert not HOME.allows("not an address")


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "candidate:1 1 udp 1 1.2.3.4 5",
        "candidate:1 x udp 1 1.2.3.4 5 typ host",
        "candidate:1 1 udp -1 1.2.3.4 5 typ host",
        "candidate:1 1 udp 1 1.2.3.4 70000 typ host",
        "candidate:1 1 sctp 1 1.2.3.4 5 typ host",
        "candidate:1 1 udp 1 1.2.3.4 5 type host",
        "candidate:1 1 udp 1 1.2.3.4 5 typ weird",
        "candidate:1 1 udp 1 1.2.3.4 5 typ host raddr",
        "candidate:1 1 udp 1 1.2.3.4 5 typ host rport x",
        "candidate:1 1 udp 1 a/b 5 typ host",
    ],
)
def test_malformed_candidates(candidate: str) -> None:
    with pytest.raises(InvalidCandidate):
        parse_candidate(candidate)


def test_chromium_trickled_candidate_with_ufrag_extension() -> None:
    # Chromium trickles candidates carrying its ICE ufrag, whose characters include "/"
    # and "+"; refusing them would silently drop every trickled candidate.
    text = (
        "candidate:3 1 udp 2122260223 192.168.1.23 54321 typ host generation 0 "
        "ufrag a/B+ network-id 1 network-cost 10"
    )
    parsed = parse_candidate(text)
    assert candidate_rejection(parsed, HOME) is None
    with pytest.raises(InvalidCandidate):
        parse_candidate(text.replace("a/B+", "a\x00b"))


def test_candidate_round_trip() -> None:
    text = "candidate:842163049 1 udp 1686052607 203.0.113.7 56143 typ srflx raddr 10.0.0.2 rport 9"
    assert parse_candidate("a=" + text).to_sdp() == text


@pytest.mark.parametrize("browser", BROWSER_OFFERS)
def test_filter_keeps_only_home_host_candidates(browser: str) -> None:
    offer = BROWSER_OFFERS[browser]
    validate_offer(offer)
    clean, dropped = filter_offer_candidates(offer, HOME)
    kept = [line for line in clean.splitlines() if line.startswith("a=candidate:")]
    assert kept
    for line in kept:
        assert candidate_rejection(parse_candidate(line), HOME) is None
    assert dropped
    assert all(d.reason for d in dropped)
    assert not any("203.0.113.7" in line or "198.51.100.4" in line for line in kept)
    validate_offer(clean)
    SessionDescription.parse(clean)


def test_h264_preference_follows_the_source() -> None:
    assert h264_preference_order(["42e01f", "42001f"], "42c01e")[0] == "42e01f"
    assert h264_preference_order(["42e01f", "42001f"], "42001e")[0] == "42001f"
    assert h264_preference_order(["42e01f", "42001f"], "4d0028")[0] == "42e01f"
    assert h264_preference_order(["42001f"], None)[0] == "42001f"
    assert h264_preference_order(["42e01f"], "zz")[0] == "42e01f"


def test_answer_is_read_with_aiortcs_parser() -> None:
    """The negotiated codec is the first payload type of the first video section, and
    each candidate keeps the mid and index of its section."""
    h264_first = CHROME_OFFER.replace("SAVPF 96 97 102 ", "SAVPF 102 96 97 ")
    check_negotiated(SessionDescription.parse(h264_first))
    with pytest.raises(InvalidOffer, match=r"no H\.264 video could be negotiated"):
        check_negotiated(SessionDescription.parse(CHROME_OFFER))
    with pytest.raises(InvalidOffer, match=r"no H\.264 video could be negotiated"):
        check_negotiated(SessionDescription.parse(CHROME_OFFER[: CHROME_OFFER.index("m=video")]))

    firefox = local_candidates(SessionDescription.parse(FIREFOX_OFFER))
    assert [c.candidate for c in firefox][:2] == [
        "candidate:0 1 UDP 2122252543 10.0.0.8 40000 typ host",
        "candidate:1 1 TCP 2105524479 10.0.0.8 9 typ host tcptype active",
    ]
    assert {(c.sdp_mid, c.sdp_mline_index) for c in firefox} == {("0", 0)}


# --- Fuzzing -------------------------------------------------------------------------------

_HOSTILE_LINES = (
    "a=candidate:1 1 udp 1 8.8.8.8 3478 typ host",
    "a=candidate:1 1 udp 1 192.168.1.9 3478 typ srflx raddr 0.0.0.0 rport 0",
    "a=candidate:x",
    "a=candidate:1 1 udp 99999999999 1.1.1.1 1 typ host",
    "a=fmtp:255 apt=1",
    "a=fmtp:102",
    "a=rtpmap:102 H264",
    "a=rtpmap:102 H264/abc",
    "a=rtpmap:72 H264/90000",
    "a=extmap:1 a b c",
    "a=extmap:x urn:x",
    "a=ssrc:1 cname",
    "a=ssrc:99999999999 cname:x",
    "a=ssrc-group:FID",
    "a=rtcp:abc",
    "a=rtcp:9 IN IP9 x",
    "a=fingerprint:sha-256",
    "a=fingerprint:md5 00:11",
    "a=setup:bogus",
    "a=mid:",
    "a=group:BUNDLE",
    "a=group",
    "a=msid-semantic",
    "a=max-message-size:x",
    "a=sctp-port:-1",
    "a=sctpmap:x",
    "a=recvonly:now",
    "a=rtcp-fb:x",
    "c=IN IP4",
    "c=IN IP7 1.2.3.4",
    "m=video 9 UDP/TLS/RTP/SAVPF",
    "m=video 99999 UDP/TLS/RTP/SAVPF 96",
    "m=video 9 udp/tls 96",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 x",
    "m=audio 9 UDP/TLS/RTP/SAVPF 300",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "m=video 9 UDP/TLS/RTP/SAVPF 102",
    "a=fmtp:102 profile-level-id=zzzzzz;packetization-mode=1",
    "a=fmtp:102 profile-level-id=640c1f;packetization-mode=1",
    "a=fmtp:102 packetization-mode=one",
    "a=ice-ufrag:" + "a" * 300,
    "a=candidate:1 1 udp 1 " + "1" * 300 + " 1 typ host",
    "a=end-of-candidates",
    "v=0",
    "\x00",
    "a=\u2028",
    "x" * 5000,
)


def mutate_offer(base: str, rng: random.Random) -> str:
    """One hostile variation of ``base``: lines dropped, duplicated, swapped, replaced,
    truncated or flipped, hostile lines inserted, line endings mangled."""
    lines = base.split("\r\n")
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(10)
        index = rng.randrange(len(lines))
        if choice == 0:
            del lines[index]
        elif choice == 1:
            lines.insert(index, lines[rng.randrange(len(lines))])
        elif choice == 2:
            other = rng.randrange(len(lines))
            lines[index], lines[other] = lines[other], lines[index]
        elif choice in {3, 4}:
            lines.insert(index, rng.choice(_HOSTILE_LINES))
        elif choice == 5 and lines[index]:
            cut = rng.randrange(len(lines[index]))
            lines[index] = lines[index][:cut]
        elif choice == 6 and lines[index]:
            chars = list(lines[index])
            chars[rng.randrange(len(chars))] = chr(rng.choice([0, 9, 32, 58, 61, 0x7F, 0xE9]))
            lines[index] = "".join(chars)
        elif choice == 7:
            lines[index] = lines[index].replace(" ", rng.choice(["", "  ", "\t"]))
        elif choice == 8:
            return "\r\n".join(lines)[: rng.randrange(1, len(base))]
        else:
            lines.extend(lines[rng.randrange(len(lines)) :] * rng.randint(1, 3))
    return rng.choice(["\r\n", "\r\n", "\r\n", "\n", "\r"]).join(lines)


def _check(offer: object) -> None:
    reason: str | None = None
    try:
        validate_offer(offer)
    except InvalidOffer as err:
        reason = err.reason
    if reason is not None:
        assert reason.strip()
        return
    # What passes must be safe to hand to aiortc.
    assert isinstance(offer, str)
    SessionDescription.parse(offer)
    clean, _dropped = filter_offer_candidates(offer, HOME)
    validate_offer(clean)
    SessionDescription.parse(clean)


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(browser=st.sampled_from(sorted(BROWSER_OFFERS)), rng=st.randoms(use_true_random=False))
def test_fuzz_mutated_browser_offers(browser: str, rng: random.Random) -> None:
    _check(mutate_offer(BROWSER_OFFERS[browser], rng))


_SDP_LINE = st.builds(
    lambda key, value: f"{key}={value}",
    st.sampled_from("vosctmab"),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
)


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(_SDP_LINE | st.sampled_from(_HOSTILE_LINES), max_size=40),
    raw=st.text(max_size=200),
)
def test_fuzz_random_offers(lines: list[str], raw: str) -> None:
    _check("\r\n".join(["v=0", *lines]))
    _check(raw)

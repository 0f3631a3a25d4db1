"""WebRTC live view with real aiortc peers on loopback, fed by the reference doorbell.

Every test here runs under a socket guard: any datagram or connection to an address
that is not loopback is recorded and *not sent*, so a bug cannot put a packet on the
machine's network, and the tests can assert that nothing ever tried.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
import ipaddress
import random
import socket
from typing import Any

import aiohttp
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.codecs.h264 import H264Encoder
from aiortc.exceptions import OperationError
from aiortc.rtcicetransport import RTCIceGatherer
import av
import numpy as np
import pytest

from custom_components.doorstep.device.client import DoorstepClient
from custom_components.doorstep.media import (
    Backoff,
    InvalidOffer,
    LocalCandidate,
    MediaRelay,
    NetworkPolicy,
    SessionManager,
    StreamSource,
    TooManySessions,
    VideoPacket,
    WebRTCError,
    WebRTCSession,
    webrtc as webrtc_module,
)
from custom_components.doorstep.media.exceptions import InvalidCandidate, SessionClosed
from custom_components.doorstep.media.webrtc import RtpTimeline
from reference_doorbell.blockcode import decode_blockcode
from reference_doorbell.doorbell import Doorbell
from tests.lib.test_media_sdp import CHROME_OFFER, FIREFOX_OFFER, mutate_offer

FAST_BACKOFF = Backoff(initial=0.05, maximum=0.2)


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``condition``; the states watched here (aiortc's) have no event to await."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - there is nothing to wait on but time
            await asyncio.sleep(0.02)


# --- Network guard -------------------------------------------------------------------------


def _is_loopback(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@dataclass
class NetworkLog:
    """What the code under test tried to reach; non-loopback attempts are blocked."""

    blocked: list[tuple[str, Any]] = field(default_factory=list)
    binds: list[str] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)

    def blocked_hosts(self) -> set[str]:
        return {str(addr[0]) for _kind, addr in self.blocked}


@pytest.fixture(autouse=True)
def network_log(monkeypatch: pytest.MonkeyPatch) -> NetworkLog:
    log = NetworkLog()
    original_sendto = socket.socket.sendto
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_bind = socket.socket.bind
    original_getaddrinfo = socket.getaddrinfo

    def sendto(self: socket.socket, data: bytes, *args: Any) -> int:
        address = args[-1]
        if not _is_loopback(address[0]):
            log.blocked.append(("sendto", address))
            return len(data)
        return original_sendto(self, data, *args)

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            log.blocked.append(("connect", address))
            raise ConnectionRefusedError("blocked by the test's network guard")
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            log.blocked.append(("connect", address))
            return 111
        return original_connect_ex(self, address)

    def bind(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            log.binds.append(str(address[0]))
        original_bind(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "localhost") and not _is_loopback(host):
            try:
                ipaddress.ip_address(str(host).split("%")[0])
            except ValueError:
                log.lookups.append(str(host))
                raise socket.gaierror("blocked by the test's network guard") from None
        return original_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "bind", bind)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    # If anything ever fell back to aiortc's default ICE servers, this would be the
    # server it asks; the guard then records the attempt.
    monkeypatch.setattr(
        RTCIceGatherer,
        "getDefaultIceServers",
        classmethod(lambda cls: [RTCIceServer("stun:192.0.2.1:3478")]),
    )
    return log


@pytest.fixture(autouse=True)
def loopback_host_addresses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The HA test plugin fakes adapters; aioice must find 127.0.0.1 to bind to."""
    addresses = ["127.0.0.1"]
    monkeypatch.setattr("aioice.ice.get_host_addresses", lambda use_ipv4, use_ipv6: addresses)
    return addresses


@dataclass
class PeerLog:
    created: list[RTCPeerConnection] = field(default_factory=list)
    configurations: list[RTCConfiguration | None] = field(default_factory=list)

    def open(self) -> list[RTCPeerConnection]:
        return [pc for pc in self.created if pc.signalingState != "closed"]


@pytest.fixture(autouse=True)
def peers(monkeypatch: pytest.MonkeyPatch) -> PeerLog:
    """Record every peer connection the hub side creates, and its configuration."""
    log = PeerLog()

    class RecordingPeerConnection(RTCPeerConnection):
        def __init__(self, configuration: RTCConfiguration | None = None) -> None:
            super().__init__(configuration)
            log.created.append(self)
            log.configurations.append(configuration)

    monkeypatch.setattr(webrtc_module, "RTCPeerConnection", RecordingPeerConnection)
    return log


# --- Viewers -------------------------------------------------------------------------------


@dataclass
class Viewer:
    """A browser stand-in: an aiortc peer that receives and decodes video."""

    pc: RTCPeerConnection
    counters: list[int] = field(default_factory=list)
    frames: int = 0
    task: asyncio.Task[None] | None = None

    @classmethod
    async def create(cls) -> Viewer:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        return cls(pc)

    @property
    def offer(self) -> str:
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        self.task = asyncio.get_running_loop().create_task(self._receive())

    async def _receive(self) -> None:
        track = self.pc.getReceivers()[0].track
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.VideoFrame)
            self.frames += 1
            code = decode_blockcode(frame.to_ndarray(format="rgb24").astype(np.uint8))
            if code is not None:
                self.counters.append(code[0])

    async def wait_frames(self, count: int, within: float = 10.0) -> None:
        def enough() -> bool:
            if self.task is not None and self.task.done():
                self.task.result()  # a receive error fails the test at once
            return self.frames >= count

        await until(enough, within)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.pc.close()


@pytest.fixture
async def viewers() -> AsyncIterator[Callable[[], Any]]:
    created: list[Viewer] = []

    async def make() -> Viewer:
        viewer = await Viewer.create()
        created.append(viewer)
        return viewer

    yield make
    await asyncio.gather(*(v.close() for v in created))


@pytest.fixture
async def client(bell: Doorbell, session: aiohttp.ClientSession) -> DoorstepClient:
    doorstep = DoorstepClient(session, "127.0.0.1", bell.port, fingerprint=bell.fingerprint)
    doorstep.set_token(await doorstep.pair(bell.pairing_code, "webrtc tests"))
    return doorstep


def _doorbell_relay(client: DoorstepClient, **kwargs: Any) -> MediaRelay:
    source = StreamSource.from_doorbell(client, backoff=FAST_BACKOFF)
    return MediaRelay(source.packets, name="front", grace_period=0, **kwargs)


@pytest.fixture
async def relay(client: DoorstepClient) -> AsyncIterator[MediaRelay]:
    media_relay = _doorbell_relay(client)
    yield media_relay
    await media_relay.close()


async def _silent_source() -> AsyncIterator[VideoPacket]:
    await asyncio.Event().wait()
    yield VideoPacket(b"", 0, 0, True)  # pragma: no cover - never reached


@pytest.fixture
async def idle_relay() -> AsyncIterator[MediaRelay]:
    """A relay with no video, for signalling-only tests."""
    media_relay = MediaRelay(_silent_source, name="idle", grace_period=0)
    yield media_relay
    await media_relay.close()


@pytest.fixture
async def manager() -> AsyncIterator[SessionManager]:
    sessions = SessionManager()
    yield sessions
    await sessions.close_all()


def _answer_codec(answer: str) -> str:
    lines = answer.splitlines()
    mline = next(line for line in lines if line.startswith("m=video"))
    pt = mline.split()[3]
    rtpmap = next(line for line in lines if line.startswith(f"a=rtpmap:{pt} "))
    return rtpmap.split()[1]


def _candidates(sdp: str) -> list[list[str]]:
    return [line.split() for line in sdp.splitlines() if line.startswith("a=candidate:")]


def _remote_addresses(session: WebRTCSession) -> set[str]:
    pc = session.peer_connection
    assert pc is not None
    transport = pc.getTransceivers()[0].receiver.transport.transport
    return {c.ip for c in transport.getRemoteCandidates()}


# --- Live video ----------------------------------------------------------------------------


async def test_viewer_decodes_doorbell_video_passed_through_as_h264(
    relay: MediaRelay,
    manager: SessionManager,
    viewers: Callable[[], Any],
    peers: PeerLog,
    network_log: NetworkLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encodes: list[object] = []
    monkeypatch.setattr(H264Encoder, "encode", lambda self, *a, **k: encodes.append(a))
    local: list[LocalCandidate] = []
    viewer: Viewer = await viewers()
    session = manager.create(relay, session_id="one", on_local_candidate=local.append)
    answer = await session.handle_offer(viewer.offer)
    assert _answer_codec(answer) == "H264/90000"
    await viewer.accept(answer)
    await viewer.wait_frames(12)

    assert session.connected
    assert manager.connected_count == 1
    assert relay.viewer_count == 1
    # Decoded pictures carry the doorbell's burned-in counter, and it advances.
    assert len(viewer.counters) >= 10
    assert viewer.counters[-1] > viewer.counters[0]
    # Passthrough: packets went out, the encoder never ran.
    assert session.track is not None
    assert session.track.packets >= 12
    assert encodes == []
    # Trickle: the answer's candidates were also reported one by one, all loopback here.
    assert local
    assert all(c.sdp_mid == "0" and c.sdp_mline_index == 0 for c in local)
    assert {c.candidate.split()[4] for c in local} == {"127.0.0.1"}
    # No STUN: the hub's peer connection had no ICE servers, nothing left loopback.
    assert len(peers.configurations) == 1
    configuration = peers.configurations[0]
    assert configuration is not None
    assert configuration.iceServers == []
    assert network_log.blocked == []
    assert network_log.lookups == []

    await manager.close("one")
    assert session.closed
    assert len(manager) == 0
    assert peers.open() == []
    assert relay.viewer_count == 0


async def test_picture_loss_from_the_browser_resends_the_cached_gop(
    relay: MediaRelay, manager: SessionManager, viewers: Callable[[], Any]
) -> None:
    viewer: Viewer = await viewers()
    session = manager.create(relay)
    await viewer.accept(await session.handle_offer(viewer.offer))
    await viewer.wait_frames(3)
    assert session.track is not None
    before = session.track.subscription.stats.keyframe_requests
    pc = session.peer_connection
    assert pc is not None
    hub_ssrc = pc.getSenders()[0]._ssrc
    # A real RTCP PLI from the viewer's receiver, as a browser sends it.
    await viewer.pc.getReceivers()[0]._send_rtcp_pli(hub_ssrc)
    subscription = session.track.subscription
    await until(lambda: subscription.stats.keyframe_requests > before, 3)
    assert session.stats.keyframe_requests >= 1
    frames = viewer.frames
    await viewer.wait_frames(frames + 3)


async def test_eight_viewers_and_a_slow_one_does_not_hold_the_others(
    client: DoorstepClient, manager: SessionManager, viewers: Callable[[], Any]
) -> None:
    relay = _doorbell_relay(client, max_queue_packets=8)
    try:
        group: list[Viewer] = [await viewers() for _ in range(8)]
        sessions = [manager.create(relay) for _ in group]
        for viewer, session in zip(group, sessions, strict=True):
            await viewer.accept(await session.handle_offer(viewer.offer))
        assert manager.viewer_count == 8
        assert relay.viewer_count == 8
        await group[-1].wait_frames(1)

        # The slow viewer's network: every RTP packet takes 200 ms to leave, far slower
        # than the doorbell sends them. (At 50 ms, on Python 3.14, the others' 15 frames
        # could all arrive before the slow viewer's 8-packet queue filled.)
        slow_pc = sessions[0].peer_connection
        assert slow_pc is not None
        dtls = slow_pc.getSenders()[0].transport
        send_rtp = dtls._send_rtp

        async def slow_send_rtp(data: bytes) -> None:
            await asyncio.sleep(0.2)
            await send_rtp(data)

        dtls._send_rtp = slow_send_rtp  # type: ignore[method-assign]
        slow_track = sessions[0].track
        assert slow_track is not None
        start = [v.frames for v in group]
        await asyncio.gather(
            *(v.wait_frames(n + 15, within=15) for v, n in zip(group[1:], start[1:], strict=True))
        )
        for viewer in group[1:]:
            assert viewer.counters[-1] > viewer.counters[0]
        slow = slow_track.subscription
        # Bounded: the slow viewer dropped to keyframes instead of queueing.
        assert slow.queued_packets <= 8
        assert slow.stats.overflows >= 1
        assert relay.upstream_starts == 1
    finally:
        await manager.close_all()
        await relay.close()
    assert relay.viewer_count == 0


async def test_relay_closing_closes_the_session(
    idle_relay: MediaRelay, manager: SessionManager, viewers: Callable[[], Any], peers: PeerLog
) -> None:
    viewer: Viewer = await viewers()
    session = manager.create(idle_relay)
    await viewer.accept(await session.handle_offer(viewer.offer))
    await idle_relay.close()
    # Closing is asynchronous: the manager forgets the session once it has finished.
    await until(lambda: len(manager) == 0, 5)
    assert session.closed
    assert peers.open() == []


async def test_session_that_never_connects_times_out(
    idle_relay: MediaRelay, manager: SessionManager, peers: PeerLog
) -> None:
    # Loopback candidates of a peer that does not exist: ICE keeps waiting for more.
    offer = FIREFOX_OFFER.replace("10.0.0.8 40000", "127.0.0.1 9")
    session = manager.create(idle_relay, connect_timeout=0.2)
    await session.handle_offer(offer)
    await until(lambda: session.closed, 5)
    await session.close()
    assert peers.open() == []
    assert len(manager) == 0
    assert idle_relay.viewer_count == 0


async def test_failed_connection_closes_the_session(
    idle_relay: MediaRelay, manager: SessionManager, viewers: Callable[[], Any], peers: PeerLog
) -> None:
    viewer: Viewer = await viewers()
    session = manager.create(idle_relay)
    await viewer.accept(await session.handle_offer(viewer.offer))
    await until(lambda: session.connected, 5)
    await viewer.close()  # the browser tab goes away: DTLS close_notify, then closed
    await until(lambda: session.closed, 10)
    await session.close()
    assert peers.open() == []


# --- Candidates ----------------------------------------------------------------------------


async def test_offer_candidates_are_filtered(
    idle_relay: MediaRelay, manager: SessionManager, network_log: NetworkLog
) -> None:
    session = manager.create(idle_relay)
    answer = await session.handle_offer(CHROME_OFFER)
    reasons = {d.candidate.split()[4]: d.reason for d in session.stats.dropped_candidates}
    assert "srflx" in reasons["203.0.113.7"]  # Chrome's STUN-learned public address
    assert "mDNS" in reasons["5c1e6a3b-7f51-4ad1-9cb6-1f0a4f9e2b55.local"]
    assert _remote_addresses(session) == {"192.168.1.23", "fd00::23"}
    assert {c[4] for c in _candidates(answer)} == {"127.0.0.1"}
    await asyncio.sleep(0.2)  # let aioice start its checks
    # Checks to the private candidates were attempted (and held back by the test's
    # guard, as this machine may not send there); nothing went anywhere public.
    assert network_log.blocked_hosts() <= {"192.168.1.23", "fd00::23"}
    assert network_log.lookups == []


@pytest.mark.parametrize(("source", "expected"), [(None, "42e01f"), ("42001e", "42001f")])
async def test_answer_prefers_the_profile_the_doorbell_sends(
    idle_relay: MediaRelay, manager: SessionManager, source: str | None, expected: str
) -> None:
    """The doorbell's profile, once known to the manager, decides the answer's H.264."""
    manager.source_profile_level_id = source
    session = manager.create(idle_relay)
    answer = await session.handle_offer(CHROME_OFFER)
    lines = answer.splitlines()
    pt = next(line for line in lines if line.startswith("m=video")).split()[3]
    fmtp = next(line for line in lines if line.startswith(f"a=fmtp:{pt} "))
    assert f"profile-level-id={expected}" in fmtp


async def test_trickled_candidates_are_filtered(
    idle_relay: MediaRelay, manager: SessionManager, network_log: NetworkLog
) -> None:
    session = manager.create(idle_relay)
    await session.handle_offer(FIREFOX_OFFER)
    add = session.add_remote_candidate
    assert not await add("candidate:9 1 udp 2122260223 203.0.113.9 5000 typ host", "0")
    assert not await add("candidate:9 1 udp 2122260223 2001:db8::9 5000 typ host", "0")
    assert not await add(
        "candidate:9 1 udp 1686052607 192.168.1.9 5000 typ srflx raddr 10.0.0.1 rport 1", "0"
    )
    assert not await add("candidate:9 1 udp 8331007 10.0.0.9 5000 typ relay", None, 0)
    assert not await add("candidate:9 1 udp 2122260223 abc.local 5000 typ host", "0")
    assert not await add("", "0")
    assert await add("candidate:9 1 udp 2122260223 192.168.1.77 5000 typ host", "0")
    assert await add("a=candidate:9 1 udp 2122260223 10.9.9.9 5001 typ host", None, 0)
    with pytest.raises(InvalidCandidate):
        await add("candidate:garbage", "0")
    remote = _remote_addresses(session)
    assert {"192.168.1.77", "10.9.9.9", "10.0.0.8"} <= remote
    assert not remote & {"203.0.113.9", "2001:db8::9", "192.168.1.9", "198.51.100.4"}
    await asyncio.sleep(0.2)
    assert not network_log.blocked_hosts() & {"203.0.113.9", "2001:db8::9", "198.51.100.4"}


async def test_candidates_before_the_answer_are_kept_until_it_exists(
    idle_relay: MediaRelay, manager: SessionManager
) -> None:
    session = manager.create(idle_relay)
    assert await session.add_remote_candidate(
        "candidate:9 1 udp 2122260223 192.168.1.78 5000 typ host", "0"
    )
    await session.handle_offer(FIREFOX_OFFER)
    assert "192.168.1.78" in _remote_addresses(session)


async def test_too_many_trickled_candidates(
    idle_relay: MediaRelay, manager: SessionManager
) -> None:
    session = manager.create(idle_relay)
    await session.handle_offer(FIREFOX_OFFER)
    for port in range(64):
        await session.add_remote_candidate(
            f"candidate:9 1 udp 1 203.0.113.1 {port + 1000} typ host", "0"
        )
    with pytest.raises(InvalidCandidate, match="more than 64"):
        await session.add_remote_candidate("candidate:9 1 udp 1 10.0.0.1 9 typ host", "0")


async def test_only_home_addresses_are_gathered_and_offered(
    idle_relay: MediaRelay,
    manager: SessionManager,
    loopback_host_addresses: list[str],
    network_log: NetworkLog,
) -> None:
    # The hub has a public address too (say, a routed IPv6 or a VPS-style setup).
    loopback_host_addresses[:] = ["198.51.100.20", "127.0.0.1", "2001:db8::20"]
    session = manager.create(idle_relay)
    answer = await session.handle_offer(FIREFOX_OFFER)
    assert {c[4] for c in _candidates(answer)} == {"127.0.0.1"}
    assert "198.51.100.20" not in network_log.binds
    assert "2001:db8::20" not in network_log.binds


async def test_checks_from_outside_the_home_are_ignored(
    idle_relay: MediaRelay, manager: SessionManager
) -> None:
    session = manager.create(idle_relay)
    await session.handle_offer(FIREFOX_OFFER)
    pc = session.peer_connection
    assert pc is not None
    connection = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer._connection
    before = set(_remote_addresses(session))
    # A connectivity check from a public address would teach aioice a peer-reflexive
    # candidate to send to; the guard drops it before any answer or pair.
    connection.request_received(object(), ("203.0.113.66", 4000), object())  # type: ignore[arg-type]
    assert session.stats.ignored_checks == 1
    assert _remote_addresses(session) == before
    assert connection.stun_server is None
    assert connection.turn_server is None


# --- Bad offers and lifecycle ------------------------------------------------------------------


async def test_offer_without_h264_is_refused_and_nothing_leaks(
    idle_relay: MediaRelay, manager: SessionManager, peers: PeerLog
) -> None:
    offer = CHROME_OFFER.replace("H264/90000", "H265/90000")
    session = manager.create(idle_relay)
    with pytest.raises(InvalidOffer, match=r"H\.264"):
        await session.handle_offer(offer)
    assert session.closed
    assert len(manager) == 0
    assert peers.created == []
    assert idle_relay.subscriber_count == 0


async def test_aiortc_refusal_becomes_invalid_offer(
    idle_relay: MediaRelay,
    manager: SessionManager,
    peers: PeerLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever aiortc raises inside is reported as InvalidOffer, and cleaned up."""

    async def refuse(self: RTCPeerConnection, description: RTCSessionDescription) -> None:
        raise OperationError("Failed to set remote video description send parameters")

    monkeypatch.setattr(RTCPeerConnection, "setRemoteDescription", refuse)
    session = manager.create(idle_relay)
    with pytest.raises(InvalidOffer, match="could not be used: Failed to set remote"):
        await session.handle_offer(FIREFOX_OFFER)
    assert session.closed
    assert len(peers.created) == 1
    assert peers.open() == []
    assert idle_relay.subscriber_count == 0


async def test_session_rules(idle_relay: MediaRelay, peers: PeerLog) -> None:
    manager = SessionManager(max_sessions=2)
    first = manager.create(idle_relay, session_id="a")
    with pytest.raises(WebRTCError, match="already exists"):
        manager.create(idle_relay, session_id="a")
    manager.create(idle_relay, session_id="b")
    with pytest.raises(TooManySessions):
        manager.create(idle_relay)
    await first.handle_offer(FIREFOX_OFFER)
    with pytest.raises(WebRTCError, match="already has an offer"):
        await first.handle_offer(FIREFOX_OFFER)
    assert manager.get("a") is first
    assert "a" in manager
    await manager.close("unknown")
    await manager.close_all()
    assert len(manager) == 0
    assert peers.open() == []
    with pytest.raises(SessionClosed):
        await first.handle_offer(FIREFOX_OFFER)
    assert not await first.add_remote_candidate("candidate:1 1 udp 1 10.0.0.1 9 typ host")


async def test_cancelled_offer_leaks_nothing(
    idle_relay: MediaRelay, manager: SessionManager, peers: PeerLog
) -> None:
    session = manager.create(idle_relay)
    task = asyncio.get_running_loop().create_task(session.handle_offer(FIREFOX_OFFER))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await session.close()
    assert peers.open() == []
    assert idle_relay.subscriber_count == 0


async def test_fuzzed_offers_through_the_session(
    idle_relay: MediaRelay, peers: PeerLog, network_log: NetworkLog
) -> None:
    """A sample of the SDP fuzz corpus through the real session: only InvalidOffer (or
    another WebRTCError) escapes, and every peer connection is closed afterwards."""
    manager = SessionManager(policy=NetworkPolicy.loopback_only())
    outcomes = {"answered": 0, "refused": 0}
    for seed in range(60):
        rng = random.Random(seed)
        offer = mutate_offer(CHROME_OFFER if seed % 2 else FIREFOX_OFFER, rng)
        session = manager.create(idle_relay)
        try:
            await session.handle_offer(offer)
            outcomes["answered"] += 1
        except WebRTCError:
            outcomes["refused"] += 1
        await session.close()
    await manager.close_all()
    assert outcomes["refused"] > 0
    assert peers.open() == []
    assert idle_relay.subscriber_count == 0
    assert network_log.lookups == []
    assert not {
        h for h in network_log.blocked_hosts() if not h.startswith(("192.168.", "10.", "fd"))
    }


# --- Timestamps ----------------------------------------------------------------------------


def _packet(pts: int, *, replayed: bool = False, key: bool = False) -> VideoPacket:
    return VideoPacket(b"\x00\x00\x00\x01\x09\x10", pts, pts, key, replayed=replayed)


def test_replayed_gop_is_squashed_and_live_keeps_its_spacing() -> None:
    timeline = RtpTimeline()
    gop = [_packet(6000 * i, replayed=True, key=i == 0) for i in range(30)]
    stamps = [timeline.stamp(p) for p in gop]
    assert stamps == list(range(30))
    live = [timeline.stamp(_packet(6000 * i)) for i in range(30, 33)]
    assert live == [29 + 6000, 29 + 12000, 29 + 18000]
    # A picture-loss replay mid-stream goes one tick at a time, then live resumes.
    replay = [timeline.stamp(_packet(6000 * i, replayed=True)) for i in range(25, 33)]
    assert replay == [live[-1] + n for n in range(1, 9)]
    assert timeline.stamp(_packet(6000 * 33)) == replay[-1] + 6000


def test_timeline_never_goes_backwards() -> None:
    timeline = RtpTimeline()
    stamps = [timeline.stamp(_packet(p)) for p in (9000, 3000, 3000, 12000)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)

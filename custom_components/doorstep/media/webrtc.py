"""Live view: one aiortc peer connection per browser, fed from the relay as it is.

How each promise of DESIGN.md is kept, and where aiortc had to be steered:

* **No STUN/TURN.** Every peer connection gets ``RTCConfiguration(iceServers=[])``;
  aiortc would otherwise ask ``stun.l.google.com``. The guard below also clears any
  STUN/TURN server on the ICE agent, should a caller ever pass one.
* **No transcoding.** :class:`RelayVideoTrack` hands aiortc ``av.Packet`` objects, not
  frames. ``RTCRtpSender._next_encoded_frame`` then calls ``H264Encoder.pack``, which
  only splits the Annex-B access unit into RTP payloads (FU-A / STAP-A); nothing is
  decoded or encoded.
* **H.264 forced** with ``RTCRtpTransceiver.setCodecPreferences``: only aiortc's H.264
  codecs (packetization-mode=1), the profile matching the doorbell first, plus RTX.
* **Picture loss answered.** In passthrough aiortc ignores PLI/FIR: its sender only sets
  a "force keyframe" flag that the encoder would read. ``_handle_rtcp_packet`` calls
  ``self._send_keyframe()`` for both PLI and FIR, so the session replaces that method
  on its own sender instance (an instance attribute shadows the class method) with one
  that asks the relay to resend the cached GOP. It is the narrowest hook: RTCP parsing,
  NACK and REMB handling stay aiortc's.
* **LAN only.** aiortc exposes no candidate filter, so the session guards each ICE
  agent (``aioice.Connection``) of its peer connection before gathering starts, with
  per-instance wrappers around three public methods:
  ``get_component_candidates`` binds only to home-network addresses,
  ``add_remote_candidate`` ignores anything but host candidates on the home network,
  and ``request_received`` ignores connectivity checks from outside it (which would
  otherwise become peer-reflexive candidates the hub sends to). Candidates are filtered
  before aiortc sees them as well (:mod:`.candidates`); the guard is the second line.
* **Trickle ICE.** aiortc gathers all local candidates at once, so they are in the
  answer and are also reported one by one through ``on_local_candidate``. Remote
  candidates trickle in through :meth:`WebRTCSession.add_remote_candidate`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
import contextlib
from dataclasses import dataclass, field
import functools
import logging
from typing import TYPE_CHECKING, Any, Final
import uuid

from aioice import Candidate
from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription
import av
from av.rational import AVRational

from .answer import LocalCandidate, check_negotiated, h264_preference_order, local_candidates
from .audio import AudioRelay, RelayAudioTrack, TalkFloor, TalkForwarder
from .candidates import (
    DroppedCandidate,
    RemoteCandidate,
    candidate_rejection,
    filter_offer_candidates,
    parse_candidate,
)
from .exceptions import (
    InvalidCandidate,
    InvalidOffer,
    SessionClosed,
    SubscriptionClosed,
    TooManySessions,
    WebRTCError,
)
from .network import NetworkPolicy
from .packet import VIDEO_TIME_BASE, VideoPacket
from .sdp import DEFAULT_LIMITS, OfferLimits, OfferSummary, validate_offer

if TYPE_CHECKING:
    from .relay import MediaRelay, Subscription

_LOGGER = logging.getLogger(__name__)

type CandidateListener = Callable[[LocalCandidate], None]
type CloseListener = Callable[[WebRTCSession], None]

# A browser that has not connected by then never will (aioice keeps checking forever
# while it still expects trickled candidates).
DEFAULT_CONNECT_TIMEOUT: Final = 30.0
DEFAULT_DISCONNECT_GRACE: Final = 5.0
DEFAULT_MAX_SESSIONS: Final = 32
_GUARD_MARK: Final = "_doorstep_lan_guard"
_LEFTOVER_TIMEOUT: Final = 1.0
_RTP_TIME_BASE: Final = AVRational(VIDEO_TIME_BASE.numerator, VIDEO_TIME_BASE.denominator)


@dataclass(slots=True)
class SessionStats:
    """Counters of one session, for diagnostics and tests."""

    packets_sent: int = 0
    keyframe_requests: int = 0
    remote_candidates_accepted: int = 0
    dropped_candidates: list[DroppedCandidate] = field(default_factory=list)
    ignored_checks: int = 0


# --- The track ---------------------------------------------------------------------------


class RtpTimeline:
    """RTP timestamps for one viewer, from the relay's packet timestamps.

    Live packets keep their real spacing. Packets replayed from the GOP cache (a late
    join, or a picture-loss answer) are squashed one tick apart: they are sent in a
    burst, and stamped with their original spacing a browser would hold the picture
    back by up to a GOP to "play" them in real time.
    """

    def __init__(self) -> None:
        self._last_out: int | None = None
        self._last_source: int | None = None

    def stamp(self, packet: VideoPacket) -> int:
        """The RTP timestamp (90 kHz, from 0) for ``packet``; strictly increasing."""
        source = packet.pts if packet.pts is not None else packet.dts
        if source is not None and packet.time_base != VIDEO_TIME_BASE:
            source = round(source * packet.time_base / VIDEO_TIME_BASE)
        if self._last_out is None:
            out = 0
        elif packet.replayed or source is None or self._last_source is None:
            out = self._last_out + 1
        else:
            # The source already maps reconnects onto one timeline, so any forward step
            # is a real pause; a step back (a restarted relay) continues one tick on.
            out = self._last_out + max(1, source - self._last_source)
        self._last_out = out
        if source is not None:
            self._last_source = source
        return out


class RelayVideoTrack(MediaStreamTrack):
    """A video track that yields the relay's H.264 access units as ``av.Packet``."""

    kind = "video"

    def __init__(self, subscription: Subscription) -> None:
        super().__init__()
        self._subscription = subscription
        self._timeline = RtpTimeline()
        self.packets = 0

    @property
    def subscription(self) -> Subscription:
        """Where the packets come from."""
        return self._subscription

    async def recv(self) -> av.Packet[Any]:
        """The next access unit; ``MediaStreamError`` once the subscription is closed."""
        if self.readyState != "live":
            raise MediaStreamError
        try:
            video = await self._subscription.get()
        except SubscriptionClosed:
            self.stop()
            raise MediaStreamError from None
        packet = av.Packet(video.payload)
        packet.pts = self._timeline.stamp(video)
        packet.dts = packet.pts
        packet.time_base = _RTP_TIME_BASE
        packet.is_keyframe = video.is_keyframe
        self.packets += 1
        return packet

    def stop(self) -> None:
        """End the track and release the relay subscription."""
        self._subscription.close()
        super().stop()


# --- ICE guard ----------------------------------------------------------------------------


def _ice_connections(pc: RTCPeerConnection) -> list[Any]:
    """Every aioice ``Connection`` of the peer connection (bundled ones once)."""
    transports: list[Any] = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport)
    connections: list[Any] = []
    for dtls in transports:
        # aiortc offers no public handle on the ICE agent; _connection is it.
        connection = dtls.transport.iceGatherer._connection
        if all(connection is not c for c in connections):
            connections.append(connection)
    return connections


def _guard_connection(connection: Any, policy: NetworkPolicy, stats: SessionStats) -> None:
    """Keep one aioice ``Connection`` on the home network (see the module docstring)."""
    if getattr(connection, _GUARD_MARK, False):
        return
    setattr(connection, _GUARD_MARK, True)
    # Nothing may ever ask a server outside the home for our address.
    connection.stun_server = None
    connection.turn_server = None

    original_gather = connection.get_component_candidates
    original_add = connection.add_remote_candidate
    original_request = connection.request_received

    @functools.wraps(original_gather)
    async def get_component_candidates(
        component: int, addresses: list[str], *args: Any, **kwargs: Any
    ) -> Any:
        allowed = policy.filter(addresses)
        if len(allowed) < len(addresses):
            _LOGGER.debug("not offering %s", sorted(set(addresses) - set(allowed)))
        return await original_gather(component, allowed, *args, **kwargs)

    @functools.wraps(original_add)
    async def add_remote_candidate(candidate: Candidate | None) -> None:
        if candidate is not None and candidate_rejection(RemoteCandidate(candidate), policy):
            _LOGGER.debug("ICE guard ignored remote candidate %s", candidate)
            return
        await original_add(candidate)

    @functools.wraps(original_request)
    def request_received(message: Any, addr: tuple[str, int], protocol: Any) -> None:
        if not policy.allows(str(addr[0])):
            stats.ignored_checks += 1
            return
        original_request(message, addr, protocol)

    connection.get_component_candidates = get_component_candidates
    connection.add_remote_candidate = add_remote_candidate
    connection.request_received = request_received


# --- The session ---------------------------------------------------------------------------


class WebRTCSession:
    """One browser watching one doorbell.

    Create it, :meth:`handle_offer` once, feed :meth:`add_remote_candidate`, and
    :meth:`close` it (it also closes itself when the connection fails, stays
    disconnected, never connects, or the relay goes away). Only :class:`WebRTCError`
    subclasses leave its methods.
    """

    def __init__(
        self,
        relay: MediaRelay,
        *,
        session_id: str | None = None,
        policy: NetworkPolicy | None = None,
        limits: OfferLimits = DEFAULT_LIMITS,
        profile_level_id: str | None = None,
        on_local_candidate: CandidateListener | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        disconnect_grace: float = DEFAULT_DISCONNECT_GRACE,
        audio: AudioRelay | None = None,
        talk: TalkFloor | None = None,
    ) -> None:
        self._relay = relay
        # Sound (protocol v1.1): the doorbell's microphone, when it has one, and its
        # speaker's floor, when it has one. Either may be absent.
        self._audio = audio
        self._talk = talk
        self._audio_track: RelayAudioTrack | None = None
        self._forwarder: TalkForwarder | None = None
        self.session_id = session_id or uuid.uuid4().hex
        self._policy = policy or NetworkPolicy()
        self._limits = limits
        self._profile_level_id = profile_level_id
        self._on_local_candidate = on_local_candidate
        self._connect_timeout = connect_timeout
        self._disconnect_grace = disconnect_grace
        self._pc: RTCPeerConnection | None = None
        self._track: RelayVideoTrack | None = None
        self._summary: OfferSummary | None = None
        self._remote_set = False
        self._pending: list[RTCIceCandidate] = []
        self._trickled = 0
        self._connected = False
        self._timer: asyncio.TimerHandle | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._close_listeners: list[CloseListener] = []
        self.stats = SessionStats()

    # --- state ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once closing has started."""
        return self._close_task is not None

    @property
    def connected(self) -> bool:
        """True once media has flowed to the browser at least once."""
        return self._connected

    @property
    def peer_connection(self) -> RTCPeerConnection | None:
        """The aiortc peer connection (for diagnostics and tests)."""
        return self._pc

    @property
    def track(self) -> RelayVideoTrack | None:
        """The video track, once the offer was handled."""
        return self._track

    @property
    def audio_track(self) -> RelayAudioTrack | None:
        """The doorbell's sound to this browser, when both sides have sound."""
        return self._audio_track

    @property
    def forwarder(self) -> TalkForwarder | None:
        """This browser's microphone, once its track arrived (sendrecv answers only)."""
        return self._forwarder

    @property
    def talking(self) -> bool:
        """True while this browser's voice goes to the doorbell."""
        return self._talk is not None and self._talk.holder == self.session_id

    async def start_talking(self) -> None:
        """Take the doorbell's floor (the talk button is held).

        Raises :class:`TalkFloorTaken` (someone else on this hub talks), the device's
        own refusal, or :class:`WebRTCError` when this session cannot talk.
        """
        if self.closed:
            raise SessionClosed("this live view session is closed")
        if self._talk is None:
            raise WebRTCError("the doorbell has no speaker")
        if self._forwarder is None:
            raise WebRTCError("the browser sent no microphone track")
        await self._talk.take(self.session_id, self._forwarder)

    async def stop_talking(self) -> None:
        """Let go of the floor (the talk button is released)."""
        if self._talk is not None:
            await self._talk.release(self.session_id)

    def add_close_listener(self, listener: CloseListener) -> Callable[[], None]:
        """Call ``listener(session)`` once when the session closes; returns a remover."""
        self._close_listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._close_listeners.remove(listener)

        return remove

    # --- signalling ----------------------------------------------------------------------

    async def handle_offer(self, offer_sdp: str) -> str:
        """Answer the browser's offer; raises :class:`InvalidOffer` (or another
        :class:`WebRTCError`) and closes the session on any failure."""
        if self.closed:
            raise SessionClosed("this live view session is closed")
        if self._pc is not None:
            raise WebRTCError("this live view session already has an offer")
        try:
            return await self._negotiate(offer_sdp)
        except BaseException as err:
            await self._abort()
            if isinstance(err, WebRTCError | asyncio.CancelledError) or not isinstance(
                err, Exception
            ):
                raise
            _LOGGER.debug("aiortc refused the offer", exc_info=True)
            raise InvalidOffer(f"the offer could not be used: {err or type(err).__name__}") from err

    async def add_remote_candidate(
        self,
        candidate: str,
        sdp_mid: str | None = None,
        sdp_mline_index: int | None = None,
    ) -> bool:
        """Add a trickled browser candidate; True if used, False if dropped by policy.

        Raises :class:`InvalidCandidate` when it is malformed or one too many. An empty
        candidate (end of candidates) is ignored on purpose: the browser's own checks
        may still reach the hub as peer-reflexive candidates, and the connect timeout
        ends a session that never connects.
        """
        if self.closed or not candidate.strip():
            return False
        self._trickled += 1
        if self._trickled > self._limits.max_candidates:
            raise InvalidCandidate(
                f"more than {self._limits.max_candidates} ICE candidates were sent"
            )
        parsed = parse_candidate(candidate)
        reason = candidate_rejection(parsed, self._policy)
        if reason is not None:
            self.stats.dropped_candidates.append(DroppedCandidate(parsed.to_sdp(), reason))
            _LOGGER.debug("%s: dropped candidate %s: %s", self.session_id, candidate, reason)
            return False
        if sdp_mid is None and sdp_mline_index is None:
            sdp_mline_index = 0
        ice = parsed.to_rtc(sdp_mid, sdp_mline_index)
        if not self._remote_set:
            self._pending.append(ice)
            return True
        return await self._add_ice(ice)

    async def close(self) -> None:
        """Close the peer connection and the relay subscription; safe to repeat."""
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(
                self._close(), name=f"doorstep webrtc close {self.session_id}"
            )
        await asyncio.shield(self._close_task)

    # --- internals -----------------------------------------------------------------------

    async def _negotiate(self, offer_sdp: str) -> str:
        summary = validate_offer(offer_sdp, self._limits)
        self._summary = summary
        clean_sdp, dropped = filter_offer_candidates(offer_sdp, self._policy)
        self.stats.dropped_candidates.extend(dropped)
        clean_sdp = _without_end_of_candidates(clean_sdp)

        try:
            subscription = self._relay.subscribe(name=f"webrtc {self.session_id}")
        except SubscriptionClosed as err:
            raise WebRTCError("the doorbell's video is not available") from err
        track = self._track = RelayVideoTrack(subscription)
        track.on("ended", self._schedule_close)

        pc = self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.on("connectionstatechange", self._on_connection_state)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(self._codec_preferences(summary))
        self._guard(pc)
        _hook_picture_loss(transceiver.sender, self._on_picture_loss)
        self._add_audio(pc, summary)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=clean_sdp, type="offer"))
        _refuse_unused_audio(pc, self._audio_track, self._talk is not None)
        # Sections without a track (audio, data) may have brought ICE agents of their own.
        self._guard(pc)
        self._remote_set = True
        pending, self._pending = self._pending, []
        for ice in pending:
            await self._add_ice(ice)

        await pc.setLocalDescription(await pc.createAnswer())
        answer = _answer_sdp(pc, self._policy)
        negotiated = SessionDescription.parse(answer)
        check_negotiated(negotiated)
        candidates = local_candidates(negotiated)
        if not candidates:
            raise WebRTCError("the hub has no address on the home network to offer the browser")
        self._timer = asyncio.get_running_loop().call_later(
            self._connect_timeout, self._on_connect_timeout
        )
        if self._on_local_candidate is not None:
            for local in candidates:
                # After the caller has sent the answer, which it does on return.
                asyncio.get_running_loop().call_soon(self._emit_candidate, local)
        return answer

    def _add_audio(self, pc: RTCPeerConnection, summary: OfferSummary) -> None:
        """Audio in the answer only when the doorbell has sound, and the browser's
        microphone only when the doorbell can play it."""
        if not any(m.kind == "audio" and "opus" in m.codecs for m in summary.media):
            return
        microphone = self._audio is not None
        speaker = self._talk is not None
        if not microphone and not speaker:
            return
        if microphone:
            assert self._audio is not None
            try:
                subscription = self._audio.subscribe(f"webrtc {self.session_id}")
            except SubscriptionClosed:
                microphone = False
            else:
                self._audio_track = RelayAudioTrack(subscription)
        direction = (
            "sendrecv" if microphone and speaker else "sendonly" if microphone else "recvonly"
        )
        audio = pc.addTransceiver(self._audio_track or "audio", direction=direction)
        audio.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.name.lower() == "opus"]
        )
        if speaker:
            pc.on("track", self._on_remote_track)

    def _on_remote_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._forwarder is None and not self.closed:
            self._forwarder = TalkForwarder(track, self.session_id)

    def _codec_preferences(self, summary: OfferSummary) -> list[Any]:
        capabilities = RTCRtpSender.getCapabilities("video").codecs
        h264 = {
            str(c.parameters.get("profile-level-id", "")).lower(): c
            for c in capabilities
            if c.mimeType.lower() == "video/h264"
        }
        order = h264_preference_order(summary.h264_profiles, self._profile_level_id)
        preferred = [h264[p] for p in order if p in h264]
        # RTX lets aiortc answer NACKs on a separate stream, as browsers expect.
        preferred += [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
        return preferred

    def _guard(self, pc: RTCPeerConnection) -> None:
        for connection in _ice_connections(pc):
            _guard_connection(connection, self._policy, self.stats)

    async def _add_ice(self, ice: RTCIceCandidate) -> bool:
        pc = self._pc
        if pc is None or self.closed:
            return False
        try:
            await pc.addIceCandidate(ice)
        except Exception as err:  # aiortc/aioice refusing it is not the caller's bug
            _LOGGER.debug("%s: candidate not added: %s", self.session_id, err)
            return False
        self.stats.remote_candidates_accepted += 1
        return True

    def _emit_candidate(self, candidate: LocalCandidate) -> None:
        if self.closed or self._on_local_candidate is None:
            return
        try:
            self._on_local_candidate(candidate)
        except Exception:
            _LOGGER.exception("%s: local candidate listener failed", self.session_id)

    def _on_picture_loss(self) -> None:
        self.stats.keyframe_requests += 1
        if self._track is not None:
            self._track.subscription.request_keyframe()

    def _on_connection_state(self) -> None:
        pc = self._pc
        if pc is None:
            return
        state = pc.connectionState
        _LOGGER.debug("%s: connection %s", self.session_id, state)
        if state == "connected":
            self._connected = True
            self._cancel_timer()
        elif state in {"failed", "closed"}:
            self._schedule_close()
        elif state == "disconnected":
            # aiortc 1.16 never reports it, but browsers' flaky Wi-Fi is why it exists.
            self._cancel_timer()
            self._timer = asyncio.get_running_loop().call_later(
                self._disconnect_grace, self._schedule_close
            )

    def _on_connect_timeout(self) -> None:
        self._timer = None
        if not self._connected:
            _LOGGER.debug("%s: browser did not connect in time", self.session_id)
            self._schedule_close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule_close(self, *_: object) -> None:
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(
                self._close(), name=f"doorstep webrtc close {self.session_id}"
            )

    async def _abort(self) -> None:
        # Also runs for a cancelled handle_offer; the close task is shielded from that.
        self._schedule_close()
        assert self._close_task is not None
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._close_task)

    async def _close(self) -> None:
        self._cancel_timer()
        # A viewer who leaves while talking lets go of the floor.
        await self.stop_talking()
        if self._forwarder is not None:
            await self._forwarder.close()
        if self._track is not None:
            self._track.stop()
        if self._audio_track is not None:
            self._audio_track.stop()
        pc, self._pending = self._pc, []
        if pc is not None:
            try:
                await pc.close()
            except Exception:
                _LOGGER.exception("%s: closing the peer connection failed", self.session_id)
            await _wait_for_leftover_tasks(pc)
        listeners, self._close_listeners = self._close_listeners, []
        for listener in listeners:
            try:
                listener(self)
            except Exception:
                _LOGGER.exception("%s: close listener failed", self.session_id)


def _refuse_unused_audio(
    pc: RTCPeerConnection, track: RelayAudioTrack | None, speaker: bool
) -> None:
    """aiortc answers an audio section it has no transceiver for with ``recvonly``,
    which would accept the browser's microphone for a doorbell that cannot play it."""
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "audio":
            continue
        ours = track is not None and transceiver.sender.track is track
        if not ours and not (speaker and transceiver.direction == "recvonly"):
            transceiver.direction = "inactive"


async def _wait_for_leftover_tasks(pc: RTCPeerConnection) -> None:
    """Let aiortc's fire-and-forget tasks of this peer connection finish.

    ``setRemoteDescription`` and ``setLocalDescription`` start ``__connect`` with
    ``ensure_future`` and keep no handle. After ``close()`` it ends within a loop
    iteration or two, but "closed" should mean nothing of the session still runs (Home
    Assistant's tests fail on lingering tasks), so those tasks are found by the peer
    connection they belong to and awaited, briefly.
    """
    current = asyncio.current_task()
    leftovers = []
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        if task is not current and frame is not None and frame.f_locals.get("self") is pc:
            leftovers.append(task)
    if leftovers:
        _done, pending = await asyncio.wait(leftovers, timeout=_LEFTOVER_TIMEOUT)
        for task in pending:
            task.cancel()


def _hook_picture_loss(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Route aiortc's PLI/FIR handling to ``callback`` (see the module docstring)."""
    setattr(sender, "_send_keyframe", callback)  # noqa: B010  # shadows the method


def _without_end_of_candidates(sdp: str) -> str:
    # Stripped so that dropping every browser candidate (Chrome's mDNS names, say) does
    # not fail ICE at once: the browser's checks can still arrive as peer-reflexive.
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = [line for line in sdp.split(newline) if line != "a=end-of-candidates"]
    return newline.join(lines)


def _answer_sdp(pc: RTCPeerConnection, policy: NetworkPolicy) -> str:
    """The local answer with any candidate the browser's would be refused for removed
    (the ICE guard already keeps them from being gathered; this keeps them out of the
    text)."""
    answer, _dropped = filter_offer_candidates(str(pc.localDescription.sdp), policy)
    return answer


# --- The manager ----------------------------------------------------------------------------


class SessionManager:
    """The open live-view sessions of one doorbell (or of the whole hub).

    Owns them: closed sessions leave by themselves, :meth:`close_all` on unload.
    """

    def __init__(
        self,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        policy: NetworkPolicy | None = None,
        limits: OfferLimits = DEFAULT_LIMITS,
    ) -> None:
        self._max_sessions = max_sessions
        self._policy = policy or NetworkPolicy()
        self._limits = limits
        self._sessions: dict[str, WebRTCSession] = {}
        # The doorbell's H.264 profile as last seen passing through to live view; new
        # sessions' answers prefer the codec that matches it.
        self.source_profile_level_id: str | None = None

    @property
    def viewer_count(self) -> int:
        """Open sessions, connected or still connecting."""
        return len(self._sessions)

    @property
    def connected_count(self) -> int:
        """Sessions whose browser is connected."""
        return sum(1 for s in self._sessions.values() if s.connected and not s.closed)

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def sessions(self) -> Iterable[WebRTCSession]:
        """A snapshot of the open sessions."""
        return tuple(self._sessions.values())

    def get(self, session_id: str) -> WebRTCSession | None:
        """The open session with this id."""
        return self._sessions.get(session_id)

    def create(
        self,
        relay: MediaRelay,
        *,
        session_id: str | None = None,
        profile_level_id: str | None = None,
        on_local_candidate: CandidateListener | None = None,
        **kwargs: Any,
    ) -> WebRTCSession:
        """A new session, registered until it closes; ``profile_level_id`` defaults to
        :attr:`source_profile_level_id`."""
        if len(self._sessions) >= self._max_sessions:
            raise TooManySessions(
                f"already {len(self._sessions)} live viewers; close one and try again"
            )
        if session_id is not None and session_id in self._sessions:
            raise WebRTCError(f"live view session {session_id!r} already exists")
        kwargs.setdefault("policy", self._policy)
        kwargs.setdefault("limits", self._limits)
        session = WebRTCSession(
            relay,
            session_id=session_id,
            profile_level_id=profile_level_id or self.source_profile_level_id,
            on_local_candidate=on_local_candidate,
            **kwargs,
        )
        self._sessions[session.session_id] = session
        session.add_close_listener(self._forget)
        return session

    async def close(self, session_id: str) -> None:
        """Close one session; unknown ids are ignored (the browser may be faster)."""
        session = self._sessions.get(session_id)
        if session is not None:
            await session.close()

    async def close_all(self) -> None:
        """Close every session and wait until they are closed."""
        sessions = tuple(self._sessions.values())
        if sessions:
            await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        self._sessions.clear()

    def _forget(self, session: WebRTCSession) -> None:
        if self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]

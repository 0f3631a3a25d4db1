"""Sound both ways: the doorbell's microphone to every listener, one person's voice back.

* :class:`AudioRelay` fans the doorbell's sound out like video: one upstream (the
  stream source's sound, handed over by ``StreamSource(on_audio=...)``), any number of
  listeners, each with a bounded queue that drops its oldest packet when the listener
  falls behind (sound has no keyframes; late sound is worth less than current sound).
  Opus passes through untouched. Any other codec is transcoded to Opus once, in the
  relay, for all listeners.
* :class:`RelayAudioTrack` hands aiortc those Opus packets as ``av.Packet``:
  ``RTCRtpSender`` then calls ``OpusEncoder.pack``, which only stamps them.
* :class:`TalkForwarder` reads the browser's microphone track (aiortc decodes what the
  browser sends to frames), encodes 20 ms Opus packets with PyAV and sends them to the
  doorbell's talk channel while its person holds the floor.
* :class:`TalkFloor` is the hub's half of "one talker at a time": one session per
  doorbell may talk; the doorbell refuses a second hub by itself.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass
import logging
from typing import Any, Final, Protocol, Self

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
import av
from av.rational import AVRational

from .exceptions import SubscriptionClosed, TalkFloorTaken
from .packet import AUDIO_CLOCK_RATE, AUDIO_TIME_BASE, AudioFormat, AudioPacket

_LOGGER = logging.getLogger(__name__)

OPUS_FRAME_SAMPLES: Final = 960  # 20 ms at 48 kHz
# Half a second of 20 ms packets: beyond that a listener hears the present, not a backlog.
DEFAULT_MAX_QUEUED: Final = 25
_OPUS_BITRATE: Final = 32_000
_OPUS: Final = "opus"
_RTP_AUDIO_TIME_BASE: Final = AVRational(AUDIO_TIME_BASE.numerator, AUDIO_TIME_BASE.denominator)


class TalkSink(Protocol):
    """Where a talk's Opus packets go (the device's ``TalkChannel``)."""

    async def send(self, packet: bytes) -> None:
        """Play one packet; raises once the device has ended the talk."""

    async def close(self) -> None:
        """Let go of the device's floor."""

    @property
    def closed(self) -> bool:
        """True once the talk is over."""


type OpenTalk = Callable[[str], Awaitable[TalkSink]]


# --- doorbell -> listeners -----------------------------------------------------------


@dataclass(slots=True)
class AudioStats:
    """Counters of the relay, for diagnostics and the benchmark."""

    packets_in: int = 0
    packets_out: int = 0
    transcoded: int = 0
    dropped: int = 0


class AudioSubscription:
    """One listener's bounded queue of Opus packets."""

    def __init__(self, relay: AudioRelay, name: str, max_queued: int) -> None:
        self._relay = relay
        self.name = name
        self._queue: deque[AudioPacket] = deque(maxlen=max_queued)
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dropped = 0

    @property
    def closed(self) -> bool:
        """True once closed by the listener or the relay."""
        return self._closed

    @property
    def queued(self) -> int:
        """Packets waiting."""
        return len(self._queue)

    def push(self, packet: AudioPacket) -> None:
        """Queue a packet; the oldest one goes when the queue is full."""
        if self._closed:
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            self._relay.stats.dropped += 1
        self._queue.append(packet)
        self._wakeup.set()

    async def get(self) -> AudioPacket:
        """The next packet; :class:`SubscriptionClosed` once closed."""
        while not self._queue:
            if self._closed:
                raise SubscriptionClosed(f"audio subscription {self.name!r} is closed")
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()

    def get_nowait(self) -> AudioPacket | None:
        """The next packet if one waits."""
        return self._queue.popleft() if self._queue else None

    def close(self) -> None:
        """Stop listening."""
        if not self._closed:
            self._closed = True
            self._wakeup.set()
            self._relay._forget(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AudioRelay:
    """The doorbell's sound, once, to every listener."""

    def __init__(self, name: str, *, max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        self._name = name
        self._max_queued = max_queued
        self._listeners: set[AudioSubscription] = set()
        self._transcoder: OpusTranscoder | None = None
        self._closed = False
        self.format: AudioFormat | None = None
        self.stats = AudioStats()

    @property
    def listener_count(self) -> int:
        """Open subscriptions."""
        return len(self._listeners)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def subscribe(self, name: str = "listener") -> AudioSubscription:
        """A new listener; :class:`SubscriptionClosed` once the relay is closed."""
        if self._closed:
            raise SubscriptionClosed(f"{self._name}: the sound relay is closed")
        subscription = AudioSubscription(self, name, self._max_queued)
        self._listeners.add(subscription)
        return subscription

    def publish(self, packet: AudioPacket) -> None:
        """One packet from the source (``StreamSource``'s ``on_audio``)."""
        self.stats.packets_in += 1
        self.format = packet.format
        if not self._listeners:
            return  # nobody listens: not even the transcoder needs to run
        out = [packet] if packet.format.codec == _OPUS else self._transcode(packet)
        for opus in out:
            self.stats.packets_out += 1
            for listener in list(self._listeners):
                listener.push(opus)

    def close(self) -> None:
        """End every listener."""
        self._closed = True
        for listener in list(self._listeners):
            listener.close()
        self._transcoder = None

    def _transcode(self, packet: AudioPacket) -> list[AudioPacket]:
        if self._transcoder is None or self._transcoder.source != packet.format:
            _LOGGER.info(
                "%s: the doorbell sends %s sound; re-encoding it to Opus once for all listeners",
                self._name,
                packet.format.codec,
            )
            self._transcoder = OpusTranscoder(packet.format)
        try:
            out = self._transcoder.transcode(packet)
        except (av.FFmpegError, ValueError) as err:
            _LOGGER.debug("%s: undecodable sound packet dropped: %s", self._name, err)
            return []
        self.stats.transcoded += len(out)
        return out

    def _forget(self, subscription: AudioSubscription) -> None:
        self._listeners.discard(subscription)


class OpusTranscoder:
    """Another codec's packets (AAC, G.711 ...) to 20 ms Opus packets, with PyAV."""

    def __init__(self, source: AudioFormat) -> None:
        self.source = source
        decoder = av.CodecContext.create(source.codec, "r")
        assert isinstance(decoder, av.AudioCodecContext)
        decoder.sample_rate = source.sample_rate
        decoder.layout = "stereo" if source.channels == 2 else "mono"
        if source.extradata:
            decoder.extradata = source.extradata
        self._decoder = decoder
        self._encoder = OpusPacketEncoder()
        self._next_pts: int | None = None

    def transcode(self, packet: AudioPacket) -> list[AudioPacket]:
        """Decode one packet and encode what is ready as Opus."""
        av_packet = av.Packet(packet.payload)
        out: list[AudioPacket] = []
        for frame in self._decoder.decode(av_packet):
            for payload in self._encoder.encode(frame):
                if self._next_pts is None:
                    self._next_pts = packet.pts or 0
                out.append(AudioPacket(payload, self._next_pts, _OPUS_FORMAT, OPUS_FRAME_SAMPLES))
                self._next_pts += OPUS_FRAME_SAMPLES
        return out


_OPUS_FORMAT: Final = AudioFormat(_OPUS, AUDIO_CLOCK_RATE, 1)


class OpusPacketEncoder:
    """Any audio frames in, 20 ms mono 48 kHz Opus packets out (libopus via PyAV)."""

    def __init__(self) -> None:
        encoder = av.CodecContext.create("libopus", "w")
        assert isinstance(encoder, av.AudioCodecContext)
        encoder.sample_rate = AUDIO_CLOCK_RATE
        encoder.layout = "mono"
        encoder.format = "s16"
        encoder.bit_rate = _OPUS_BITRATE
        self._encoder = encoder
        self._resampler = av.AudioResampler(
            format="s16", layout="mono", rate=AUDIO_CLOCK_RATE, frame_size=OPUS_FRAME_SAMPLES
        )
        self._pts = 0

    def encode(self, frame: av.AudioFrame) -> list[bytes]:
        """Opus packets for whatever whole 20 ms frames ``frame`` completes."""
        frame.pts = None
        payloads: list[bytes] = []
        for piece in self._resampler.resample(frame):
            piece.pts = self._pts
            self._pts += piece.samples
            payloads += [bytes(p) for p in self._encoder.encode(piece)]
        return payloads


class AudioTimeline:
    """RTP timestamps (48 kHz, from 0) for one listener; packets keep their spacing."""

    def __init__(self) -> None:
        self._last_out: int | None = None
        self._last_source: int | None = None

    def stamp(self, packet: AudioPacket) -> int:
        """Strictly increasing timestamps; a gap in the source stays a gap."""
        step = packet.duration or OPUS_FRAME_SAMPLES
        if self._last_out is None:
            out = 0
        elif packet.pts is None or self._last_source is None:
            out = self._last_out + step
        else:
            out = self._last_out + max(1, packet.pts - self._last_source)
        self._last_out = out
        if packet.pts is not None:
            self._last_source = packet.pts
        return out


class RelayAudioTrack(MediaStreamTrack):
    """An audio track that yields the relay's Opus packets as ``av.Packet``."""

    kind = "audio"

    def __init__(self, subscription: AudioSubscription) -> None:
        super().__init__()
        self._subscription = subscription
        self._timeline = AudioTimeline()
        self.packets = 0

    async def recv(self) -> av.Packet[Any]:
        """The next Opus packet; ``MediaStreamError`` once the subscription is closed."""
        if self.readyState != "live":
            raise MediaStreamError
        try:
            sound = await self._subscription.get()
        except SubscriptionClosed:
            self.stop()
            raise MediaStreamError from None
        packet = av.Packet(sound.payload)
        packet.pts = self._timeline.stamp(sound)
        packet.dts = packet.pts
        packet.time_base = _RTP_AUDIO_TIME_BASE
        self.packets += 1
        return packet

    def stop(self) -> None:
        """End the track and stop listening."""
        self._subscription.close()
        super().stop()


# --- browser -> doorbell -----------------------------------------------------------------


class TalkForwarder:
    """Reads one browser's microphone track; sends it on while a talk is open."""

    def __init__(self, track: MediaStreamTrack, name: str) -> None:
        self._track = track
        self._name = name
        self._sink: TalkSink | None = None
        self._encoder: OpusPacketEncoder | None = None
        self._ended: Callable[[], None] | None = None
        self.frames_in = 0
        self.packets_out = 0
        self.error: str | None = None
        # The track must be read even while nobody talks, or aiortc's queue grows.
        self._task = asyncio.get_running_loop().create_task(
            self._pump(), name=f"doorstep talk {name}"
        )

    @property
    def talking(self) -> bool:
        """True while packets go to the doorbell."""
        return self._sink is not None and not self._sink.closed

    def start(self, sink: TalkSink, on_ended: Callable[[], None]) -> None:
        """Send from now on to ``sink``; ``on_ended`` runs if the doorbell ends the talk."""
        self._sink = sink
        self._encoder = OpusPacketEncoder()
        self._ended = on_ended
        self.error = None

    async def stop(self) -> None:
        """Stop sending and close the talk."""
        sink, self._sink = self._sink, None
        self._ended = None
        if sink is not None:
            await sink.close()

    async def close(self) -> None:
        """Stop sending and stop reading the track (the session closes)."""
        await self.stop()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _pump(self) -> None:
        while True:
            try:
                frame = await self._track.recv()
            except MediaStreamError:
                break
            self.frames_in += 1
            sink, encoder = self._sink, self._encoder
            if sink is None or encoder is None or not isinstance(frame, av.AudioFrame):
                continue
            try:
                for payload in encoder.encode(frame):
                    await sink.send(payload)
                    self.packets_out += 1
            except Exception as err:
                self.error = str(err) or type(err).__name__
                _LOGGER.info("%s: talk-back ended: %s", self._name, self.error)
                ended = self._ended
                await self.stop()
                if ended is not None:
                    ended()
        await self.stop()


class TalkFloor:
    """One talker per doorbell among this hub's sessions."""

    def __init__(self, open_talk: OpenTalk) -> None:
        self._open_talk = open_talk
        self._holder: str | None = None
        self._forwarder: TalkForwarder | None = None
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[], None]] = []

    @property
    def holder(self) -> str | None:
        """The session id of whoever talks now."""
        return self._holder

    def add_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` whenever someone starts or stops talking; returns an undo."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    async def take(self, session_id: str, forwarder: TalkForwarder) -> None:
        """Start ``session_id``'s talk; :class:`TalkFloorTaken` if another one talks.

        The device's own refusal (another hub talks) comes through as the device
        layer's exception.
        """
        async with self._lock:
            if self._holder == session_id:
                return
            if self._holder is not None:
                raise TalkFloorTaken("someone else is talking through the doorbell")
            sink = await self._open_talk(session_id)
            self._holder = session_id
            self._forwarder = forwarder
            forwarder.start(sink, lambda: self._released(session_id))
        self._changed()

    async def release(self, session_id: str) -> None:
        """End ``session_id``'s talk, if it has one."""
        async with self._lock:
            if self._holder != session_id:
                return
            forwarder, self._forwarder = self._forwarder, None
            self._holder = None
            if forwarder is not None:
                await forwarder.stop()
        self._changed()

    def _released(self, session_id: str) -> None:
        # The doorbell ended the talk (an error, or it went away).
        if self._holder == session_id:
            self._holder = None
            self._forwarder = None
            self._changed()

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

"""Read H.264 from a doorbell or an RTSP camera as :class:`VideoPacket` s, forever.

PyAV demuxes (it never decodes) in a worker thread, because its calls block. For a
Doorstep doorbell the bytes are fetched by aiohttp on the event loop, so the pinned
certificate is checked exactly as for every other request, and handed to PyAV through
a bounded pipe. Any other URL (``rtsp://`` cameras added by hand) is opened by PyAV
itself.

A dropped connection is retried with exponential backoff. Timestamps are mapped onto
one monotonic 90 kHz timeline across reconnects, so the relay and its viewers see a
pause (a frozen frame) and then live video again, never time running backwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
import contextlib
from dataclasses import dataclass
import logging
import threading
import time
from typing import Any, Final, Protocol

import aiohttp
import av

from .exceptions import BitstreamError, StreamError
from .h264 import (
    NAL_IDR,
    NAL_SPS,
    ProfileDecision,
    ProfileMonitor,
    continues_picture,
    is_annexb,
)
from .packet import AUDIO_CLOCK_RATE, VIDEO_CLOCK_RATE, AudioFormat, AudioPacket, VideoPacket
from .redact import redact_credentials
from .thread_bridge import ThreadBridge, describe_error

_LOGGER = logging.getLogger(__name__)

type ProfileListener = Callable[[ProfileDecision], None]
type AudioListener = Callable[[AudioPacket], None]
type _OpenContainer = Callable[[], Any]

_PIPE_LIMIT: Final = 1024 * 1024
_MAX_PENDING_PACKETS: Final = 32
_READ_CHUNK: Final = 64 * 1024
# A jump this large within one connection is a wrap or a source restart, not video.
_MAX_TIMESTAMP_GAP: Final = 10 * VIDEO_CLOCK_RATE
# The doorbell's stream is known to be H.264 in MPEG-TS and starts at a keyframe, so
# probing for frame rate and more streams only delays the first picture (about 0.7 s
# with FFmpeg's defaults at 15 fps).
_TS_PROBE_OPTIONS: Final = {"probesize": "32", "analyzeduration": "0", "fpsprobesize": "0"}
_RTSP_DEFAULT_OPTIONS: Final = {"rtsp_transport": "tcp"}


class StreamEndpoint(Protocol):
    """What the source needs from the device client (``device.DoorstepClient``)."""

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session requests go through."""

    def stream_url(self) -> str:
        """URL of ``/v1/stream.ts``."""

    def auth_headers(self) -> dict[str, str]:
        """The bearer token header."""

    def ssl_pin(self) -> aiohttp.Fingerprint:
        """The pinned certificate fingerprint."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``initial`` doubling up to ``maximum`` seconds."""

    initial: float = 0.5
    maximum: float = 3.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt number ``attempt`` (from 0)."""
        return min(self.maximum, self.initial * self.factor ** min(attempt, 32))


@dataclass(slots=True)
class SourceStats:
    """Counters for diagnostics."""

    connects: int = 0
    failures: int = 0
    packets: int = 0
    bytes: int = 0
    audio_packets: int = 0
    connected: bool = False
    last_error: str | None = None


class StreamSource:
    """An endless, reconnecting stream of Annex-B :class:`VideoPacket` s.

    Iterate :meth:`packets` (one consumer at a time; the relay is that consumer). Every
    connection starts at a keyframe, and every keyframe carries SPS and PPS.
    """

    def __init__(
        self,
        *,
        name: str,
        endpoint: StreamEndpoint | None = None,
        url: str | None = None,
        options: Mapping[str, str] | None = None,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        read_timeout: float = 10.0,
        on_profile: ProfileListener | None = None,
        on_audio: AudioListener | None = None,
    ) -> None:
        if (endpoint is None) == (url is None):
            raise ValueError("give exactly one of endpoint and url")
        self._name = name
        self._endpoint = endpoint
        self._url = url
        self._options = dict(options or {})
        self._backoff = backoff or Backoff()
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout
        self._on_profile = on_profile
        # Sound goes to this listener rather than through the iterator, so everything
        # that consumes video (relays, recorder, transcoder) stays as it is.
        self._on_audio = on_audio
        self._monitor = ProfileMonitor()
        self._timeline = _Timeline()
        self.stats = SourceStats()

    @classmethod
    def from_doorbell(
        cls, endpoint: StreamEndpoint, *, name: str = "doorbell", **kwargs: Any
    ) -> StreamSource:
        """A Doorstep doorbell's ``/v1/stream.ts``, fetched with its pinned certificate."""
        return cls(name=name, endpoint=endpoint, **kwargs)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        name: str = "camera",
        options: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> StreamSource:
        """Any URL or path PyAV opens, typically ``rtsp://`` (over TCP unless told)."""
        merged = dict(_RTSP_DEFAULT_OPTIONS) if url.startswith("rtsp") else {}
        merged.update(options or {})
        return cls(name=name, url=url, options=merged, **kwargs)

    @property
    def name(self) -> str:
        """Label for logs."""
        return self._name

    @property
    def profile(self) -> ProfileDecision | None:
        """The passthrough decision, once the first SPS has been seen."""
        return self._monitor.decision

    def __aiter__(self) -> AsyncIterator[VideoPacket]:
        return self.packets()

    async def packets(self) -> AsyncGenerator[VideoPacket]:
        """Packets from the source, reconnecting until the consumer stops iterating."""
        attempt = 0
        while True:
            self._timeline.new_connection()
            error: str
            try:
                # aclosing: a consumer that stops iterating must close this connection
                # now, not whenever the garbage collector finalises the generator.
                async with contextlib.aclosing(self._connection()) as connection:
                    async for packet in connection:
                        if not self.stats.connected:
                            self.stats.connected = True
                            self.stats.connects += 1
                            attempt = 0
                            _LOGGER.debug("%s: streaming", self._name)
                        yield packet
                error = "the stream ended"
            except StreamError as err:
                error = str(err)
            except aiohttp.ServerFingerprintMismatch:
                error = "the device presented a different certificate than the paired one"
            except ValueError as err:  # the endpoint has no token or fingerprint yet
                error = f"not ready to stream: {err}"
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                error = f"{type(err).__name__}: {err}"
            # PyAV's messages quote the URL, and a camera's URL may hold its password.
            error = redact_credentials(error)
            was_connected = self.stats.connected
            self.stats.connected = False
            self.stats.failures += 1
            self.stats.last_error = error
            delay = self._backoff.delay(attempt)
            attempt += 1
            log = _LOGGER.warning if was_connected or attempt == 1 else _LOGGER.debug
            log("%s: %s; reconnecting in %.1f s", self._name, error, delay)
            await asyncio.sleep(delay)

    async def _connection(self) -> AsyncGenerator[VideoPacket]:
        """One connection: raw demuxed packets, mapped and gated to start at a keyframe."""
        raw_packets: AsyncGenerator[_RawPacket] = (
            self._http_packets() if self._endpoint is not None else self._url_packets()
        )
        seen_keyframe = False
        async with contextlib.aclosing(raw_packets):
            async for raw in raw_packets:
                if raw.audio is not None:
                    if seen_keyframe:
                        self._hand_out_audio(raw, raw.audio)
                    continue
                if not seen_keyframe:
                    if not raw.is_keyframe:
                        continue  # undecodable without the keyframe we joined after
                    seen_keyframe = True
                pts, dts = self._timeline.map(raw.pts, raw.dts, time.monotonic())
                packet = VideoPacket(raw.payload, pts, dts, raw.is_keyframe)
                self.stats.packets += 1
                self.stats.bytes += packet.size
                self._check_profile(packet)
                yield packet

    def _hand_out_audio(self, raw: _RawPacket, audio_format: AudioFormat) -> None:
        if self._on_audio is None:
            return
        stamp = self._timeline.peek(raw.pts)
        packet = AudioPacket(
            raw.payload,
            None if stamp is None else stamp * AUDIO_CLOCK_RATE // VIDEO_CLOCK_RATE,
            audio_format,
            None if raw.duration is None else raw.duration * AUDIO_CLOCK_RATE // VIDEO_CLOCK_RATE,
        )
        self.stats.audio_packets += 1
        try:
            self._on_audio(packet)
        except Exception:
            _LOGGER.exception("%s: audio listener failed", self._name)

    def _check_profile(self, packet: VideoPacket) -> None:
        changed = self._monitor.observe(
            packet.payload, is_keyframe=packet.is_keyframe, pts=packet.pts, dts=packet.dts
        )
        decision = self._monitor.decision
        if not changed or decision is None:
            return
        if decision.needs_transcode:
            _LOGGER.warning("%s: %s", self._name, decision.reason)
        else:
            _LOGGER.debug("%s: %s", self._name, decision.reason)
        if self._on_profile is not None:
            try:
                self._on_profile(decision)
            except Exception:
                _LOGGER.exception("%s: profile listener failed", self._name)

    async def _http_packets(self) -> AsyncGenerator[_RawPacket]:
        endpoint = self._endpoint
        assert endpoint is not None
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._open_timeout, sock_read=self._read_timeout
        )
        async with endpoint.session.get(
            endpoint.stream_url(),
            headers=endpoint.auth_headers(),
            ssl=endpoint.ssl_pin(),
            timeout=timeout,
        ) as response:
            if response.status == 401:
                raise StreamError("the doorbell refused the token (HTTP 401): pair again")
            if response.status != 200:
                raise StreamError(f"the doorbell answered HTTP {response.status}")
            loop = asyncio.get_running_loop()
            pipe = _BytePipe(loop, _PIPE_LIMIT)
            feeder = loop.create_task(_feed(response, pipe), name=f"{self._name} stream feed")
            worker = _demux_thread(
                lambda: av.open(pipe, "r", format="mpegts", options=dict(_TS_PROBE_OPTIONS)),
                name=self._name,
            )
            try:
                worker.start()
                async with contextlib.aclosing(worker.items()) as raw_packets:
                    async for raw in raw_packets:
                        yield raw
            finally:
                pipe.close()
                feeder.cancel()
                await worker.stop(self._read_timeout)
                await asyncio.wait([feeder])
                feed_error = None if feeder.cancelled() else feeder.exception()
            # The demuxer saw the pipe run dry; the HTTP side knows why.
            if feed_error is not None:
                raise StreamError(f"reading the stream failed: {feed_error!r}")

    async def _url_packets(self) -> AsyncGenerator[_RawPacket]:
        url = self._url
        assert url is not None
        options = dict(self._options)
        open_timeout, read_timeout = self._open_timeout, self._read_timeout
        worker = _demux_thread(
            lambda: av.open(url, "r", options=options, timeout=(open_timeout, read_timeout)),
            name=self._name,
        )
        try:
            worker.start()
            async with contextlib.aclosing(_whole_pictures(worker.items())) as raw_packets:
                async for raw in raw_packets:
                    yield raw
        finally:
            # PyAV cannot be interrupted from outside; its read timeout bounds the wait.
            await worker.stop(read_timeout + 1.0)


async def _whole_pictures(
    raw_packets: AsyncGenerator[_RawPacket],
) -> AsyncGenerator[_RawPacket]:
    """Join the slices of one picture that the demuxer handed out as separate packets.

    FFmpeg's RTSP demuxer can split a picture made of several slices (x264 with sliced
    threads does that, and cameras do too) into packets with one timestamp. Passed on
    as they are, each would be its own frame: a browser keeps one, and the rest of the
    picture stays green until the next keyframe, while an MP4 gets two samples at one
    time. A picture is complete when a packet starting the next one arrives, so each
    waits for that (one frame interval). Sound is never held back.
    """
    pending: _RawPacket | None = None
    async with contextlib.aclosing(raw_packets) as packets:
        async for raw in packets:
            if raw.audio is not None:
                yield raw
                continue
            if pending is not None and _continues(raw):
                pending = _RawPacket(
                    payload=pending.payload + raw.payload,
                    pts=pending.pts if pending.pts is not None else raw.pts,
                    dts=pending.dts if pending.dts is not None else raw.dts,
                    is_keyframe=pending.is_keyframe or raw.is_keyframe,
                    duration=pending.duration,
                )
                continue
            if pending is not None:
                yield pending
            pending = raw
    if pending is not None:
        yield pending


def _continues(raw: _RawPacket) -> bool:
    try:
        return continues_picture(raw.payload)
    except BitstreamError:
        return False  # let the rest of the pipeline judge a packet it cannot read


async def _feed(response: aiohttp.ClientResponse, pipe: _BytePipe) -> None:
    try:
        async for chunk in response.content.iter_chunked(_READ_CHUNK):
            await pipe.write(chunk)
    finally:
        pipe.finish()


@dataclass(frozen=True, slots=True)
class _RawPacket:
    """A demuxed packet on the source's own timeline (already in 90 kHz units)."""

    payload: bytes
    pts: int | None
    dts: int | None
    is_keyframe: bool
    # Set for a packet of the sound stream (protocol v1.1), None for video.
    audio: AudioFormat | None = None
    duration: int | None = None


class _Timeline:
    """Maps each connection's timestamps onto one monotonic 90 kHz timeline.

    After a reconnect (or a wrap, or a jump) the new timestamps are re-anchored so the
    first new packet follows the last old one by the wall-clock time that passed: a
    receiver then sees the pause as a pause, not as frames arriving late or early.
    """

    def __init__(self) -> None:
        self._offset: int | None = None
        self._last: int | None = None
        self._last_wall = 0.0

    def new_connection(self) -> None:
        self._offset = None

    def map(self, pts: int | None, dts: int | None, now: float) -> tuple[int, int]:
        raw = dts if dts is not None else pts
        if raw is None:
            stamp = self._anchor(now)
            self._offset = None
            self._remember(stamp, now)
            return stamp, stamp
        offset = self._offset
        last = self._last
        if offset is None or (
            last is not None and not last < raw + offset <= last + _MAX_TIMESTAMP_GAP
        ):
            offset = self._offset = self._anchor(now) - raw
        stamp = raw + offset
        self._remember(stamp, now)
        return (stamp if pts is None else pts + offset), stamp

    def peek(self, pts: int | None) -> int | None:
        """Where ``pts`` of another stream of this connection lands, without moving on."""
        if pts is None or self._offset is None:
            return None
        return pts + self._offset

    def _anchor(self, now: float) -> int:
        if self._last is None:
            return 0
        elapsed = round((now - self._last_wall) * VIDEO_CLOCK_RATE)
        return self._last + max(1, elapsed)

    def _remember(self, stamp: int, now: float) -> None:
        self._last = stamp
        self._last_wall = now


class _BytePipe:
    """A blocking file-like reader for PyAV, written from the event loop.

    The writer waits (without blocking the loop) while more than ``limit`` bytes are
    unread, so a stalled demuxer pushes back on the TCP connection instead of growing.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._loop = loop
        self._limit = limit
        self._buffer = bytearray()
        self._cond = threading.Condition()
        self._eof = False
        self._closed = False
        self._writer_waiting = False
        self._space = asyncio.Event()

    async def write(self, data: bytes) -> None:
        while True:
            with self._cond:
                if self._closed or self._eof:
                    return
                if len(self._buffer) < self._limit:
                    self._buffer += data
                    self._cond.notify()
                    return
                self._space.clear()
                self._writer_waiting = True
            await self._space.wait()

    def finish(self) -> None:
        """No more data will come; the reader gets EOF after the buffered bytes."""
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def close(self) -> None:
        """Drop buffered bytes and make the reader see EOF at once."""
        with self._cond:
            self._closed = True
            self._eof = True
            self._buffer.clear()
            self._cond.notify_all()
        self._space.set()

    def read(self, size: int = -1) -> bytes:
        """Called by PyAV in the worker thread; blocks until data or EOF."""
        with self._cond:
            while not self._buffer and not self._eof:
                self._cond.wait()
            if size < 0 or size >= len(self._buffer):
                chunk = bytes(self._buffer)
                self._buffer.clear()
            else:
                chunk = bytes(self._buffer[:size])
                del self._buffer[:size]
            if self._writer_waiting and len(self._buffer) < self._limit:
                self._writer_waiting = False
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                    self._loop.call_soon_threadsafe(self._space.set)
            return chunk


def _demux_thread(open_container: _OpenContainer, *, name: str) -> ThreadBridge[_RawPacket]:
    """PyAV's blocking demuxer in a thread, handing packets to the event loop.

    At most ``_MAX_PENDING_PACKETS`` packets wait in between; beyond that the thread
    waits, which in turn stops it reading and so pushes back on the connection.
    """

    def work() -> None:
        container = open_container()
        try:
            for raw in _demux(container, bridge):
                if not bridge.post(raw):
                    break
        finally:
            container.close()

    bridge = ThreadBridge[_RawPacket](
        work,
        thread_name=f"doorstep demux {name}",
        max_pending=_MAX_PENDING_PACKETS,
        error_type=StreamError,
        describe=_describe_demux_error,
    )
    return bridge


def _describe_demux_error(err: Exception) -> str:
    if isinstance(err, StreamError):
        return str(err)
    if isinstance(err, BitstreamError):
        return f"bad H.264 data: {err}"
    return describe_error(err)


def _demux(container: Any, bridge: ThreadBridge[_RawPacket]) -> Iterator[_RawPacket]:
    """Blocking: the container's H.264 packets as Annex-B, in 90 kHz units."""
    video = next((stream for stream in container.streams if stream.type == "video"), None)
    if video is None:
        raise StreamError("the stream has no video")
    codec = video.codec_context.name
    if codec != "h264":
        raise StreamError(f"the video is {codec}, not H.264")
    parameter_sets = _container_parameter_sets(video.codec_context.extradata)
    time_base = video.time_base
    if time_base is None:
        raise StreamError("the video stream has no time base")
    scale_num = time_base.numerator * VIDEO_CLOCK_RATE
    scale_den = time_base.denominator
    audio, audio_format = _audio_stream(container)

    for packet in container.demux(*((video, audio) if audio is not None else (video,))):
        if bridge.stopping:
            return
        if packet.size == 0:
            continue  # the flush packet at end of stream
        if packet.stream is audio:
            yield _audio_packet(packet, audio_format)
            continue
        data = bytes(packet)
        types = _nal_types(data)
        keyframe = NAL_IDR in types
        if keyframe and NAL_SPS not in types and parameter_sets:
            # Browsers need SPS/PPS with every keyframe; some cameras send them only
            # once, out of band.
            data = parameter_sets + data
        yield _RawPacket(
            data,
            None if packet.pts is None else packet.pts * scale_num // scale_den,
            None if packet.dts is None else packet.dts * scale_num // scale_den,
            keyframe,
        )


def _audio_stream(container: Any) -> tuple[Any, AudioFormat | None]:
    """The first sound stream whose time base is known, and its format."""
    for stream in container.streams:
        if stream.type == "audio" and stream.time_base is not None:
            context = stream.codec_context
            extradata = context.extradata
            return stream, AudioFormat(
                codec=context.name,
                sample_rate=context.sample_rate or AUDIO_CLOCK_RATE,
                channels=context.channels or 1,
                extradata=bytes(extradata) if extradata else None,
            )
    return None, None


def _audio_packet(packet: Any, audio_format: AudioFormat | None) -> _RawPacket:
    """A sound packet, its timestamps scaled to 90 kHz like video's."""
    assert audio_format is not None
    base = packet.stream.time_base
    num, den = base.numerator * VIDEO_CLOCK_RATE, base.denominator
    return _RawPacket(
        bytes(packet),
        None if packet.pts is None else packet.pts * num // den,
        None if packet.dts is None else packet.dts * num // den,
        False,
        audio=audio_format,
        duration=None if not packet.duration else packet.duration * num // den,
    )


def _container_parameter_sets(extradata: bytes | None) -> bytes:
    """SPS+PPS from the codec extradata, as Annex-B (empty when there are none).

    Doorbells send MPEG-TS and cameras RTSP, both Annex-B. Length-prefixed H.264 (an
    ``avcC`` record, as in MP4 files) is refused rather than converted: nothing Doorstep
    opens produces it.
    """
    if not extradata:
        return b""
    if extradata[0] == 1:
        raise StreamError("the video is length-prefixed H.264 (MP4); Annex-B is needed")
    return extradata if is_annexb(extradata) else b""


def _nal_types(data: bytes) -> set[int]:
    """NAL unit types present in an Annex-B access unit (header bytes only)."""
    types: set[int] = set()
    index = data.find(b"\x00\x00\x01")
    while index != -1 and index + 3 < len(data):
        types.add(data[index + 3] & 0x1F)
        index = data.find(b"\x00\x00\x01", index + 3)
    return types

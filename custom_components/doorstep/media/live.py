"""Live view's source: a doorbell's packets as browsers can play them.

:func:`live_view_source` sits between a doorbell's source relay (which the recorder
taps) and its live-view relay (which viewers watch). It passes packets through untouched
while the H.264 profile allows, and switches to a :class:`~.transcode.Transcoder` only
when the profile needs it (or when a benchmark forces it). It keeps its own
:class:`~.h264.ProfileMonitor`, so it follows the stream it actually sees, reconnects
and setting changes included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
import contextlib
from dataclasses import dataclass, replace
import logging
from typing import TYPE_CHECKING

from .exceptions import StreamError, SubscriptionClosed, TranscodeError
from .h264 import ProfileMonitor
from .packet import VideoPacket
from .transcode import Transcoder, TranscodeSettings

if TYPE_CHECKING:
    from .relay import MediaRelay

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _End:
    error: str | None


type PacketSourceFactory = Callable[[], AsyncIterator[VideoPacket]]
type TranscoderListener = Callable[[Transcoder], None]


def live_view_source(
    upstream: MediaRelay,
    *,
    name: str = "camera",
    force_transcode: bool = False,
    settings: TranscodeSettings | None = None,
    on_transcoder: TranscoderListener | None = None,
) -> PacketSourceFactory:
    """A source for the live-view relay: ``upstream``'s packets, transcoded if needed.

    ``force_transcode`` transcodes even a stream that could pass through, and
    ``on_transcoder`` hears of each transcoder started (for its stats); both exist for
    benchmarks, not for users.
    """

    def factory() -> AsyncIterator[VideoPacket]:
        return live_packets(
            _subscribe(upstream, name),
            name=name,
            force_transcode=force_transcode,
            settings=settings,
            on_transcoder=on_transcoder,
        )

    return factory


async def _subscribe(upstream: MediaRelay, name: str) -> AsyncGenerator[VideoPacket]:
    # Not a viewer: the viewer count belongs to the live-view relay.
    with contextlib.closing(upstream.subscribe(name=f"{name} live view", viewer=False)) as sub:
        try:
            async for packet in sub:
                yield packet
        except SubscriptionClosed:
            return


async def live_packets(
    upstream: AsyncIterable[VideoPacket],
    *,
    name: str = "camera",
    force_transcode: bool = False,
    settings: TranscodeSettings | None = None,
    max_queued: int = 30,
    on_transcoder: TranscoderListener | None = None,
) -> AsyncGenerator[VideoPacket]:
    """``upstream`` as browsers can play it: passed through when its profile allows,
    otherwise re-encoded to constrained baseline.

    Timestamps stay monotonic across switches between the two. A switch to transcoding
    found mid-GOP (main profile whose first B-frame just appeared) resumes at the next
    keyframe, since the transcoder can only start decoding there.
    """
    stream = _LiveStream(upstream, name, force_transcode, settings, max_queued, on_transcoder)
    try:
        async for packet in stream.run():
            yield packet
    finally:
        await stream.close()


class _LiveStream:
    """One run of :func:`live_packets`.

    A feeder task reads the upstream and routes each packet: straight to the output
    queue, or into the transcoder, whose output a pump task adds to the same queue. The
    queue is bounded, so a stalled consumer stops the feeder and the upstream (a relay
    subscription) sheds packets, or the transcoder does.
    """

    def __init__(
        self,
        upstream: AsyncIterable[VideoPacket],
        name: str,
        force_transcode: bool,
        settings: TranscodeSettings | None,
        max_queued: int,
        on_transcoder: TranscoderListener | None,
    ) -> None:
        self._upstream = upstream
        self._on_transcoder = on_transcoder
        self._name = name
        self._force = force_transcode
        self._settings = settings
        self._monitor = ProfileMonitor()
        self._output: asyncio.Queue[VideoPacket | _End] = asyncio.Queue(max_queued)
        self._transcoder: Transcoder | None = None
        self._pump: asyncio.Task[None] | None = None
        self._feeder: asyncio.Task[None] | None = None
        self._last_dts: int | None = None
        self._failures = 0
        self.transcoding = False

    async def run(self) -> AsyncGenerator[VideoPacket]:
        self._feeder = asyncio.get_running_loop().create_task(
            self._feed(), name=f"doorstep live view {self._name}"
        )
        while True:
            item = await self._output.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise StreamError(item.error)
                return
            yield self._monotonic(item)

    async def close(self) -> None:
        if self._feeder is not None:
            self._feeder.cancel()
            await asyncio.gather(self._feeder, return_exceptions=True)
        await self._stop_transcoder()

    def _monotonic(self, packet: VideoPacket) -> VideoPacket:
        # The transcoder's output trails its input by the decoder's reorder delay, so the
        # first passthrough packet after a switch could otherwise go back in time.
        dts = packet.dts if packet.dts is not None else packet.pts
        if dts is None:
            return packet
        last = self._last_dts
        if last is not None and dts <= last:
            shift = last + 1 - dts
            packet = replace(
                packet,
                pts=None if packet.pts is None else packet.pts + shift,
                dts=dts + shift,
            )
            dts += shift
        self._last_dts = dts
        return packet

    async def _feed(self) -> None:
        error: str | None = None
        try:
            async for packet in self._upstream:
                await self._route(packet)
        except asyncio.CancelledError:
            # Stopped between two packets: close the upstream now (it may hold a relay
            # subscription), not whenever its generator is collected.
            aclose = getattr(self._upstream, "aclose", None)
            if aclose is not None:
                await aclose()
            raise
        except Exception as err:  # the source's own failure ends this run; the relay retries
            error = f"{type(err).__name__}: {err}"
        else:
            # The stream ended: what the transcoder already holds still goes out.
            if self._transcoder is not None and self._pump is not None:
                self._transcoder.finish()
                await asyncio.gather(self._pump, return_exceptions=True)
        await self._stop_transcoder()
        await self._output.put(_End(error))

    async def _route(self, packet: VideoPacket) -> None:
        self._monitor.observe(
            packet.payload, is_keyframe=packet.is_keyframe, pts=packet.pts, dts=packet.dts
        )
        decision = self._monitor.decision
        wanted = self._force or (decision is not None and decision.needs_transcode)
        if wanted and not self.transcoding:
            _LOGGER.info("%s: live view is re-encoded to constrained baseline", self._name)
            self.transcoding = True
        elif not wanted and self.transcoding and packet.is_keyframe:
            # Back to passthrough, at a picture browsers can start from.
            _LOGGER.info("%s: live view passes the stream through again", self._name)
            self.transcoding = False
            await self._stop_transcoder()
        if not self.transcoding:
            await self._output.put(packet)
            return
        if self._transcoder is None:
            self._start_transcoder()
        assert self._transcoder is not None
        self._transcoder.submit(packet)

    def _start_transcoder(self) -> None:
        transcoder = Transcoder(name=self._name, settings=self._settings)
        self._transcoder = transcoder
        if self._on_transcoder is not None:
            self._on_transcoder(transcoder)
        self._pump = asyncio.get_running_loop().create_task(
            self._drain(transcoder), name=f"doorstep transcode output {self._name}"
        )

    async def _drain(self, transcoder: Transcoder) -> None:
        try:
            async for packet in transcoder.packets():
                self._failures = 0
                await self._output.put(packet)
        except TranscodeError as err:
            # Start afresh at the next keyframe rather than leave viewers with nothing.
            # A stream that fails every time would otherwise log every two seconds.
            self._failures += 1
            log = _LOGGER.warning if self._failures == 1 else _LOGGER.debug
            log("%s: transcoding failed (%s); restarting at the next keyframe", self._name, err)
            if self._transcoder is transcoder:
                self._transcoder = None
            await transcoder.close()

    async def _stop_transcoder(self) -> None:
        transcoder, self._transcoder = self._transcoder, None
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        if transcoder is not None:
            await transcoder.close()

"""Fan one doorbell stream out to any number of viewers with bounded memory.

One upstream connection per doorbell, whatever the number of subscribers: it starts with
the first subscriber and stops a grace period after the last one leaves (a viewer who
reloads the page should not cost a reconnect). The relay keeps the current GOP, from the
last keyframe on, so a subscriber that joins mid-GOP, or a browser that reports picture
loss, gets a decodable picture at once instead of waiting up to two seconds.

Every subscriber has its own bounded queue. Packets are handed over without awaiting, so
a slow subscriber can never hold up the upstream or the others: when its queue is full it
drops packets until the next keyframe, where decoding can resume cleanly.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
import contextlib
from dataclasses import dataclass, replace
import logging
from types import TracebackType
from typing import Final, Self

from .exceptions import SubscriptionClosed
from .packet import VideoPacket

_LOGGER = logging.getLogger(__name__)

type PacketSourceFactory = Callable[[], AsyncIterator[VideoPacket]]
type ViewerListener = Callable[[int], None]

DEFAULT_GRACE_PERIOD: Final = 10.0
# About 4 s at 30 fps: enough to ride out a hiccup, small enough to stay live.
DEFAULT_QUEUE_PACKETS: Final = 120
DEFAULT_QUEUE_BYTES: Final = 4 * 1024 * 1024
# A GOP is at most 2 s by the protocol; these bounds only matter for a broken source.
DEFAULT_CACHE_PACKETS: Final = 300
DEFAULT_CACHE_BYTES: Final = 8 * 1024 * 1024
DEFAULT_RESTART_DELAY: Final = 1.0
# Browsers repeat PLI until a keyframe arrives; replaying the GOP for each repeat would
# keep resetting the queue, so repeats within this window are counted but not answered.
DEFAULT_KEYFRAME_REQUEST_INTERVAL: Final = 0.5


@dataclass(slots=True)
class SubscriptionStats:
    """Counters of one subscription."""

    delivered: int = 0
    dropped: int = 0
    overflows: int = 0
    keyframe_requests: int = 0
    keyframes_resent: int = 0


class Subscription:
    """One consumer of a relay: a viewer's WebRTC track, or the recorder.

    Use ``async for packet in subscription`` (ends when closed) or :meth:`get` (raises
    :class:`SubscriptionClosed` when closed). Always :meth:`close` it, or use it as an
    async context manager.
    """

    def __init__(
        self,
        relay: MediaRelay,
        *,
        name: str,
        viewer: bool,
        max_packets: int,
        max_bytes: int,
    ) -> None:
        if max_packets < 1 or max_bytes < 1:
            raise ValueError("queue bounds must be positive")
        self._relay = relay
        self._name = name
        self._viewer = viewer
        self._max_packets = max_packets
        self._max_bytes = max_bytes
        self._queue: deque[VideoPacket] = deque()
        self._queued_bytes = 0
        self._waiting_for_keyframe = True
        self._wakeup = asyncio.Event()
        self._closed = False
        self._last_keyframe_request: float | None = None
        self.stats = SubscriptionStats()

    @property
    def name(self) -> str:
        """Label for logs and diagnostics."""
        return self._name

    @property
    def viewer(self) -> bool:
        """True for a live viewer, false for internal consumers such as the recorder."""
        return self._viewer

    @property
    def closed(self) -> bool:
        """True once closed by the subscriber or by the relay."""
        return self._closed

    @property
    def queued_packets(self) -> int:
        """Packets waiting to be taken."""
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        """Payload bytes waiting to be taken."""
        return self._queued_bytes

    async def get(self) -> VideoPacket:
        """Wait for the next packet."""
        while not self._queue:
            if self._closed:
                raise SubscriptionClosed(f"subscription {self._name!r} is closed")
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._pop()

    def get_nowait(self) -> VideoPacket | None:
        """The next packet if one is queued, else None."""
        if not self._queue:
            if self._closed:
                raise SubscriptionClosed(f"subscription {self._name!r} is closed")
            return None
        return self._pop()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> VideoPacket:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    def request_keyframe(self) -> bool:
        """Answer picture loss (PLI/FIR): resend the cached GOP to this subscriber only.

        Returns True when the GOP was queued again, False when the request was ignored
        (a repeat inside the rate-limit window, or nothing cached yet; the next keyframe
        will then do).
        """
        if self._closed:
            return False
        self.stats.keyframe_requests += 1
        now = asyncio.get_running_loop().time()
        interval = self._relay.keyframe_request_interval
        last = self._last_keyframe_request
        if last is not None and now - last < interval:
            return False
        self._last_keyframe_request = now
        gop, complete = self._relay.cached_gop()
        if not gop:
            # What is queued cannot be decoded without a keyframe the browser lost.
            self._drop_queue()
            self._waiting_for_keyframe = True
            return False
        self._replay(gop, complete)
        self.stats.keyframes_resent += 1
        return True

    def close(self) -> None:
        """Stop receiving; the relay may stop its upstream after the grace period."""
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        self._relay._unsubscribe(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- called by the relay -----------------------------------------------------------

    def _offer(self, packet: VideoPacket) -> None:
        """Queue a live packet, or drop it; never blocks."""
        if self._closed:
            return
        if self._waiting_for_keyframe:
            if not packet.is_keyframe:
                self.stats.dropped += 1
                return
            self._waiting_for_keyframe = False
        if not self._fits(packet):
            if packet.is_keyframe:
                # Everything queued is older than this keyframe: skip ahead to live.
                self._drop_queue()
            else:
                self.stats.dropped += 1
                self.stats.overflows += 1
                self._waiting_for_keyframe = True
                return
        self._push(packet)

    def _replay(self, gop: tuple[VideoPacket, ...], complete: bool) -> None:
        """Replace the queue with the cached GOP so decoding can start at once."""
        self._drop_queue()
        self._waiting_for_keyframe = False
        for packet in gop:
            if not self._fits(packet):
                # The rest of the GOP would reference what is missing: wait instead.
                self._waiting_for_keyframe = True
                return
            self._push(replace(packet, replayed=True))
        if not complete:
            self._waiting_for_keyframe = True

    def _fits(self, packet: VideoPacket) -> bool:
        if not self._queue:
            # An empty queue takes any one packet, so an oversized keyframe cannot
            # starve the subscriber forever; memory stays bounded by one packet more.
            return True
        return (
            len(self._queue) < self._max_packets
            and self._queued_bytes + packet.size <= self._max_bytes
        )

    def _push(self, packet: VideoPacket) -> None:
        self._queue.append(packet)
        self._queued_bytes += packet.size
        self._wakeup.set()

    def _pop(self) -> VideoPacket:
        packet = self._queue.popleft()
        self._queued_bytes -= packet.size
        self.stats.delivered += 1
        return packet

    def _drop_queue(self) -> None:
        self.stats.dropped += len(self._queue)
        self._queue.clear()
        self._queued_bytes = 0

    def _close_from_relay(self) -> None:
        self._closed = True
        self._drop_queue()
        self._wakeup.set()


class MediaRelay:
    """One upstream per doorbell, fanned out to bounded subscriber queues."""

    def __init__(
        self,
        source: PacketSourceFactory,
        *,
        name: str = "doorbell",
        grace_period: float = DEFAULT_GRACE_PERIOD,
        max_queue_packets: int = DEFAULT_QUEUE_PACKETS,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        max_cache_packets: int = DEFAULT_CACHE_PACKETS,
        max_cache_bytes: int = DEFAULT_CACHE_BYTES,
        restart_delay: float = DEFAULT_RESTART_DELAY,
        keyframe_request_interval: float = DEFAULT_KEYFRAME_REQUEST_INTERVAL,
    ) -> None:
        self._source = source
        self._name = name
        self._grace_period = grace_period
        self._max_queue_packets = max_queue_packets
        self._max_queue_bytes = max_queue_bytes
        self._max_cache_packets = max_cache_packets
        self._max_cache_bytes = max_cache_bytes
        self._restart_delay = restart_delay
        self.keyframe_request_interval = keyframe_request_interval

        self._subscriptions: list[Subscription] = []
        self._upstream: asyncio.Task[None] | None = None
        # Cancelled upstream tasks still winding down; a new upstream waits for them so
        # there is never more than one connection to the device.
        self._retiring: set[asyncio.Task[None]] = set()
        self._grace_timer: asyncio.TimerHandle | None = None
        self._gop: list[VideoPacket] = []
        self._gop_bytes = 0
        self._gop_complete = False
        self._viewer_listeners: list[ViewerListener] = []
        self._closed = False
        self.packets_received = 0
        self.upstream_starts = 0

    @property
    def name(self) -> str:
        """Label for logs and diagnostics."""
        return self._name

    @property
    def viewer_count(self) -> int:
        """Subscriptions that are live viewers (the recorder does not count)."""
        return sum(1 for sub in self._subscriptions if sub.viewer)

    @property
    def subscriber_count(self) -> int:
        """All open subscriptions."""
        return len(self._subscriptions)

    @property
    def upstream_running(self) -> bool:
        """True while the upstream task exists (including its grace period)."""
        return self._upstream is not None and not self._upstream.done()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def cached_gop(self) -> tuple[tuple[VideoPacket, ...], bool]:
        """The packets since the last keyframe, and whether that run is unbroken."""
        return tuple(self._gop), self._gop_complete

    def subscribe(
        self,
        *,
        name: str = "viewer",
        viewer: bool = True,
        max_packets: int | None = None,
        max_bytes: int | None = None,
    ) -> Subscription:
        """Add a subscriber; it starts with the cached GOP when there is one."""
        if self._closed:
            raise SubscriptionClosed(f"relay {self._name!r} is closed")
        subscription = Subscription(
            self,
            name=name,
            viewer=viewer,
            max_packets=max_packets or self._max_queue_packets,
            max_bytes=max_bytes or self._max_queue_bytes,
        )
        self._subscriptions.append(subscription)
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        if self._gop:
            subscription._replay(tuple(self._gop), self._gop_complete)
        self._ensure_upstream()
        if viewer:
            self._notify_viewers()
        return subscription

    def add_viewer_listener(self, listener: ViewerListener) -> Callable[[], None]:
        """Call ``listener(viewer_count)`` whenever it changes; returns a remover."""
        self._viewer_listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._viewer_listeners.remove(listener)

        return remove

    async def close(self) -> None:
        """Close every subscription and stop the upstream; waits until it has stopped."""
        self._closed = True
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        had_viewers = self.viewer_count > 0
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription._close_from_relay()
        self._stop_upstream()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        if had_viewers:
            self._notify_viewers()
        self._viewer_listeners.clear()

    # --- internals ---------------------------------------------------------------------

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription not in self._subscriptions:
            return
        self._subscriptions.remove(subscription)
        if subscription.viewer:
            self._notify_viewers()
        if self._subscriptions or self._closed:
            return
        if self._grace_period <= 0:
            self._stop_upstream()
        else:
            loop = asyncio.get_running_loop()
            self._grace_timer = loop.call_later(self._grace_period, self._grace_expired)

    def _grace_expired(self) -> None:
        self._grace_timer = None
        if not self._subscriptions:
            _LOGGER.debug("%s: no subscribers left, stopping upstream", self._name)
            self._stop_upstream()

    def _ensure_upstream(self) -> None:
        if self._upstream is not None and not self._upstream.done():
            return
        self.upstream_starts += 1
        predecessors = tuple(self._retiring)
        self._upstream = asyncio.get_running_loop().create_task(
            self._run_upstream(predecessors), name=f"doorstep relay {self._name}"
        )

    def _stop_upstream(self) -> None:
        task, self._upstream = self._upstream, None
        if task is not None and not task.done():
            task.cancel()
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        # A stale picture from minutes ago would be worse than none.
        self._reset_gop()

    async def _run_upstream(self, predecessors: tuple[asyncio.Task[None], ...]) -> None:
        if predecessors:
            await asyncio.wait(predecessors)
        while True:
            stream = self._source()
            try:
                async for packet in stream:
                    self._dispatch(packet)
                _LOGGER.debug("%s: source ended; restarting", self._name)
            except Exception:
                # The source reconnects by itself; getting here is a bug in it, and the
                # viewers are better served by a restart than by a dead relay.
                _LOGGER.exception("%s: source failed; restarting", self._name)
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
            await asyncio.sleep(self._restart_delay)

    def _dispatch(self, packet: VideoPacket) -> None:
        self.packets_received += 1
        self._cache(packet)
        for subscription in self._subscriptions:
            subscription._offer(packet)

    def _cache(self, packet: VideoPacket) -> None:
        if packet.is_keyframe:
            self._gop = [packet]
            self._gop_bytes = packet.size
            self._gop_complete = True
            return
        if not self._gop or not self._gop_complete:
            return
        if (
            len(self._gop) >= self._max_cache_packets
            or self._gop_bytes + packet.size > self._max_cache_bytes
        ):
            # Keep the keyframe and what follows it; joiners then wait for the next one.
            self._gop_complete = False
            return
        self._gop.append(packet)
        self._gop_bytes += packet.size

    def _reset_gop(self) -> None:
        self._gop = []
        self._gop_bytes = 0
        self._gop_complete = False

    def _notify_viewers(self) -> None:
        count = self.viewer_count
        for listener in tuple(self._viewer_listeners):
            try:
                listener(count)
            except Exception:
                _LOGGER.exception("%s: viewer listener failed", self._name)

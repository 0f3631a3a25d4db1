"""The relay with synthetic packets: fan-out, GOP cache, bounded queues, lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import itertools
import random

import pytest

from custom_components.doorstep.media import MediaRelay, Subscription, SubscriptionClosed
from custom_components.doorstep.media.packet import VideoPacket

GOP = 10


def frame(index: int, size: int = 100) -> VideoPacket:
    """Frame ``index`` of a stream with a keyframe every GOP frames."""
    label = f"frame {index};".encode()
    return VideoPacket(
        payload=label + b"\x00" * max(0, size - len(label)),
        pts=index * 6000,
        dts=index * 6000,
        is_keyframe=index % GOP == 0,
    )


def index_of(packet: VideoPacket) -> int:
    return int(packet.payload.split(b";")[0].split()[1])


class FakeSource:
    """An upstream the test feeds by hand; counts how often it was started and stopped."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[VideoPacket | Exception] = asyncio.Queue()
        self.starts = 0
        self.stops = 0
        self.running = False
        self.sent = 0

    async def packets(self) -> AsyncIterator[VideoPacket]:
        self.starts += 1
        self.running = True
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.running = False
            self.stops += 1

    async def send(self, relay: MediaRelay, *packets: VideoPacket) -> None:
        """Feed packets and wait until the relay has dispatched them."""
        for packet in packets:
            self.queue.put_nowait(packet)
        self.sent += len(packets)
        await wait_for(lambda: relay.packets_received >= self.sent)


async def wait_for(condition: object, limit: int = 1000) -> None:
    """Yield to the loop until ``condition()`` holds (a bounded number of turns)."""
    assert callable(condition)
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def poll_until(condition: object, seconds: float = 2.0) -> None:
    """Like wait_for, but with real sleeps, for conditions that depend on timers."""
    assert callable(condition)
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


def upstream(relay: MediaRelay) -> bool:
    # A function call, so mypy does not carry narrowing of the property across awaits.
    return relay.upstream_running


def drain(subscription: Subscription) -> list[VideoPacket]:
    packets: list[VideoPacket] = []
    while (packet := subscription.get_nowait()) is not None:
        packets.append(packet)
    return packets


def assert_decodable(packets: list[VideoPacket]) -> None:
    """Starts at a keyframe, and every gap in the sequence ends at a keyframe."""
    assert packets, "nothing delivered"
    assert packets[0].is_keyframe
    for before, after in itertools.pairwise(packets):
        assert index_of(after) == index_of(before) + 1 or after.is_keyframe, (
            f"frame {index_of(after)} follows {index_of(before)} without a keyframe"
        )


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
async def relay(source: FakeSource) -> AsyncIterator[MediaRelay]:
    media_relay = MediaRelay(source.packets, grace_period=0, keyframe_request_interval=0)
    yield media_relay
    await media_relay.close()


async def test_first_subscriber_starts_upstream_and_gets_packets_in_order(
    relay: MediaRelay, source: FakeSource
) -> None:
    assert not upstream(relay)
    subscription = relay.subscribe()
    await wait_for(lambda: source.running)
    assert upstream(relay)
    await source.send(relay, *(frame(i) for i in range(25)))
    assert [index_of(p) for p in drain(subscription)] == list(range(25))
    assert subscription.stats.delivered == 25
    assert subscription.stats.dropped == 0


async def test_subscriber_before_first_keyframe_waits_for_it(
    relay: MediaRelay, source: FakeSource
) -> None:
    subscription = relay.subscribe()
    await wait_for(lambda: source.running)
    await source.send(relay, *(frame(i) for i in range(5, 13)))
    packets = drain(subscription)
    assert [index_of(p) for p in packets] == [10, 11, 12]
    assert subscription.stats.dropped == 5


@pytest.mark.parametrize("seed", range(5))
async def test_joining_at_a_random_point_gets_the_cached_gop_first(
    relay: MediaRelay, source: FakeSource, seed: int
) -> None:
    rng = random.Random(seed)
    first = relay.subscribe(name="first")
    await wait_for(lambda: source.running)
    join_at = rng.randrange(GOP, 4 * GOP)
    await source.send(relay, *(frame(i) for i in range(join_at + 1)))

    late = relay.subscribe(name="late")
    await source.send(relay, *(frame(i) for i in range(join_at + 1, 5 * GOP)))

    packets = drain(late)
    keyframe = join_at - join_at % GOP
    assert packets[0].is_keyframe
    assert index_of(packets[0]) == keyframe
    assert [index_of(p) for p in packets] == list(range(keyframe, 5 * GOP))
    # What came from the cache is marked, so a sender can avoid pacing it.
    assert all(p.replayed for p in packets[: join_at - keyframe + 1])
    assert not any(p.replayed for p in packets[join_at - keyframe + 1 :])
    assert len(drain(first)) == 5 * GOP


async def test_slow_subscriber_drops_to_next_keyframe_and_stays_bounded(
    relay: MediaRelay, source: FakeSource
) -> None:
    slow = relay.subscribe(name="slow", max_packets=5)
    fast = relay.subscribe(name="fast")
    await wait_for(lambda: source.running)
    fast_got: list[VideoPacket] = []
    slow_got: list[VideoPacket] = []
    for index in range(6 * GOP):
        await source.send(relay, frame(index))
        fast_got.extend(drain(fast))
        assert slow.queued_packets <= 5
        if index % 17 == 16:  # the slow one reads now and then
            slow_got.extend(drain(slow))
    slow_got.extend(drain(slow))

    assert [index_of(p) for p in fast_got] == list(range(6 * GOP))
    assert fast.stats.dropped == 0
    assert slow.stats.dropped > 0
    assert slow.stats.overflows > 0
    assert_decodable(slow_got)
    assert slow.stats.delivered + slow.stats.dropped == 6 * GOP


async def test_byte_bound_holds(relay: MediaRelay, source: FakeSource) -> None:
    subscription = relay.subscribe(max_bytes=1000)
    await wait_for(lambda: source.running)
    for index in range(3 * GOP):
        await source.send(relay, frame(index, size=300))
        assert subscription.queued_bytes <= 1000
    assert_decodable(drain(subscription))


async def test_oversized_keyframe_still_gets_through(relay: MediaRelay, source: FakeSource) -> None:
    subscription = relay.subscribe(max_bytes=1000)
    await wait_for(lambda: source.running)
    await source.send(relay, frame(0, size=5000), frame(1))
    packets = drain(subscription)
    assert [index_of(p) for p in packets] == [0]  # frame 1 no longer fits behind it
    await source.send(relay, *(frame(i) for i in range(2, 11)))
    assert [index_of(p) for p in drain(subscription)] == [10]


async def test_eight_subscribers_with_one_stalled(relay: MediaRelay, source: FakeSource) -> None:
    viewers = [relay.subscribe(name=f"viewer {n}", max_packets=8) for n in range(8)]
    assert relay.viewer_count == 8
    await wait_for(lambda: source.running)
    received: list[list[int]] = [[] for _ in viewers]
    for index in range(5 * GOP):
        await source.send(relay, frame(index))
        for n, viewer in enumerate(viewers[1:], start=1):
            received[n].extend(index_of(p) for p in drain(viewer))
    for n in range(1, 8):
        assert received[n] == list(range(5 * GOP))
    stalled = viewers[0]
    assert stalled.queued_packets <= 8
    assert stalled.stats.dropped > 0
    assert source.starts == 1  # one upstream, whatever the number of viewers


async def test_grace_period_keeps_upstream_then_stops_it(source: FakeSource) -> None:
    relay = MediaRelay(source.packets, grace_period=0.05)
    try:
        first = relay.subscribe()
        await wait_for(lambda: source.running)
        first.close()
        assert upstream(relay)  # still inside the grace period
        second = relay.subscribe()
        await asyncio.sleep(0.1)
        assert source.starts == 1
        second.close()
        await poll_until(lambda: not source.running)
        assert not upstream(relay)
        assert source.stops == 1
        assert relay.cached_gop() == ((), False)

        third = relay.subscribe()
        await wait_for(lambda: source.running)
        assert source.starts == 2
        third.close()
    finally:
        await relay.close()
    assert source.stops == 2


async def test_no_grace_stops_at_once(relay: MediaRelay, source: FakeSource) -> None:
    subscription = relay.subscribe()
    await wait_for(lambda: source.running)
    await source.send(relay, frame(0), frame(1))
    subscription.close()
    await wait_for(lambda: not source.running)
    assert source.stops == 1
    assert relay.cached_gop() == ((), False)


async def test_request_keyframe_resends_the_gop(relay: MediaRelay, source: FakeSource) -> None:
    subscription = relay.subscribe()
    await wait_for(lambda: source.running)
    await source.send(relay, *(frame(i) for i in range(15)))
    assert len(drain(subscription)) == 15

    assert subscription.request_keyframe()
    packets = drain(subscription)
    assert [index_of(p) for p in packets] == list(range(10, 15))
    assert packets[0].is_keyframe
    assert all(p.replayed for p in packets)
    await source.send(relay, frame(15))
    assert [index_of(p) for p in drain(subscription)] == [15]
    assert subscription.stats.keyframes_resent == 1


async def test_request_keyframe_is_rate_limited(source: FakeSource) -> None:
    relay = MediaRelay(source.packets, grace_period=0, keyframe_request_interval=60)
    try:
        subscription = relay.subscribe()
        await wait_for(lambda: source.running)
        await source.send(relay, *(frame(i) for i in range(3)))
        drain(subscription)
        assert subscription.request_keyframe()
        assert not subscription.request_keyframe()
        assert subscription.stats.keyframe_requests == 2
        assert subscription.stats.keyframes_resent == 1
        assert len(drain(subscription)) == 3
    finally:
        await relay.close()


async def test_request_keyframe_without_cache_waits_for_next(
    relay: MediaRelay, source: FakeSource
) -> None:
    subscription = relay.subscribe()
    await wait_for(lambda: source.running)
    await source.send(relay, frame(3), frame(4))
    assert not subscription.request_keyframe()
    await source.send(relay, *(frame(i) for i in range(5, 11)))
    assert [index_of(p) for p in drain(subscription)] == [10]


async def test_truncated_cache_makes_joiners_wait(source: FakeSource) -> None:
    relay = MediaRelay(source.packets, grace_period=0, max_cache_packets=3)
    try:
        first = relay.subscribe()
        await wait_for(lambda: source.running)
        await source.send(relay, *(frame(i) for i in range(7)))
        gop, complete = relay.cached_gop()
        assert [index_of(p) for p in gop] == [0, 1, 2]
        assert not complete
        late = relay.subscribe()
        await source.send(relay, *(frame(i) for i in range(7, 12)))
        packets = drain(late)
        assert [index_of(p) for p in packets] == [0, 1, 2, 10, 11]
        assert_decodable(packets)
        assert len(drain(first)) == 12
    finally:
        await relay.close()


async def test_viewer_count_and_listener(relay: MediaRelay, source: FakeSource) -> None:
    counts: list[int] = []
    remove = relay.add_viewer_listener(counts.append)
    recorder = relay.subscribe(name="recorder", viewer=False)
    viewer_a = relay.subscribe()
    viewer_b = relay.subscribe()
    assert relay.viewer_count == 2
    assert relay.subscriber_count == 3
    viewer_a.close()
    viewer_a.close()  # closing twice is harmless
    assert counts == [1, 2, 1]
    remove()
    viewer_b.close()
    assert counts == [1, 2, 1]
    assert relay.viewer_count == 0
    assert upstream(relay)  # the recorder still needs the stream
    recorder.close()


async def test_get_waits_for_packets(relay: MediaRelay, source: FakeSource) -> None:
    subscription = relay.subscribe()
    waiter = asyncio.create_task(subscription.get())
    await wait_for(lambda: source.running)
    await asyncio.sleep(0)
    assert not waiter.done()
    await source.send(relay, frame(0))
    assert index_of(await waiter) == 0


async def test_failing_source_is_restarted(source: FakeSource) -> None:
    relay = MediaRelay(source.packets, grace_period=0, restart_delay=0)
    try:
        subscription = relay.subscribe()
        await wait_for(lambda: source.running)
        await source.send(relay, frame(0))
        source.queue.put_nowait(RuntimeError("boom"))
        await wait_for(lambda: source.starts == 2 and source.running)
        await source.send(relay, frame(1))
        assert [index_of(p) for p in drain(subscription)] == [0, 1]
    finally:
        await relay.close()


async def test_close_ends_everything_and_leaves_no_tasks(source: FakeSource) -> None:
    relay = MediaRelay(source.packets, grace_period=10)
    subscriptions = [relay.subscribe() for _ in range(3)]
    await wait_for(lambda: source.running)
    await source.send(relay, frame(0), frame(1))
    consumer = asyncio.create_task(_consume(subscriptions[0]))
    drain(subscriptions[1])
    waiter = asyncio.create_task(subscriptions[1].get())
    await asyncio.sleep(0)

    await relay.close()

    assert await consumer == 2
    with pytest.raises(SubscriptionClosed):
        await waiter
    with pytest.raises(SubscriptionClosed):
        subscriptions[2].get_nowait()
    assert all(s.closed for s in subscriptions)
    assert not upstream(relay)
    assert source.stops == 1
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(SubscriptionClosed):
        relay.subscribe()
    await relay.close()  # idempotent


async def _consume(subscription: Subscription) -> int:
    count = 0
    async for _ in subscription:
        count += 1
    return count


async def test_subscription_as_context_manager(relay: MediaRelay, source: FakeSource) -> None:
    async with relay.subscribe() as subscription:
        assert relay.viewer_count == 1
    assert subscription.closed
    assert relay.viewer_count == 0

"""The thread-to-loop hand-off shared by the demuxer and the transcoder."""

from __future__ import annotations

import asyncio
import threading

import pytest

from custom_components.doorstep.media.thread_bridge import ThreadBridge


class WorkerFailed(Exception):
    pass


def bridge_running(work_items: list[int], *, max_pending: int = 4) -> ThreadBridge[int]:
    def work() -> None:
        for item in work_items:
            if not bridge.post(item):
                return

    bridge: ThreadBridge[int] = ThreadBridge(
        work,
        thread_name="test worker",
        max_pending=max_pending,
        error_type=WorkerFailed,
    )
    return bridge


async def collect(bridge: ThreadBridge[int], into: list[int]) -> None:
    async for item in bridge.items():
        into.append(item)


async def test_items_arrive_in_order_and_end() -> None:
    bridge = bridge_running(list(range(20)))
    bridge.start()
    assert [item async for item in bridge.items()] == list(range(20))
    assert await bridge.stop(1.0)
    assert not bridge.alive


async def test_a_failing_worker_raises_its_error_after_what_it_posted() -> None:
    def work() -> None:
        bridge.post(1)
        raise ValueError("broken input")

    bridge: ThreadBridge[int] = ThreadBridge(
        work, thread_name="test worker", max_pending=4, error_type=WorkerFailed
    )
    bridge.start()
    got: list[int] = []
    with pytest.raises(WorkerFailed, match="ValueError: broken input"):
        await collect(bridge, got)
    assert got == [1]
    await bridge.stop(1.0)


async def test_the_error_is_described_by_the_caller() -> None:
    def work() -> None:
        raise ValueError("x")

    bridge: ThreadBridge[int] = ThreadBridge(
        work,
        thread_name="test worker",
        max_pending=1,
        error_type=WorkerFailed,
        describe=lambda err: f"described {err}",
    )
    bridge.start()
    with pytest.raises(WorkerFailed, match=r"^described x$"):
        await collect(bridge, [])
    await bridge.stop(1.0)


async def test_the_thread_waits_while_max_pending_items_are_untaken() -> None:
    bridge = bridge_running(list(range(10)), max_pending=3)
    bridge.start()
    await asyncio.sleep(0.3)
    assert bridge.queued == 3  # the rest wait in the thread, not in memory
    assert bridge.alive
    items = bridge.items()
    assert await anext(items) == 0
    await asyncio.sleep(0.1)
    assert bridge.queued == 3
    await items.aclose()
    assert await bridge.stop(2.0)


async def test_stop_ends_a_thread_blocked_on_a_full_queue() -> None:
    bridge = bridge_running(list(range(100)), max_pending=1)
    bridge.start()
    await asyncio.sleep(0.05)
    assert await bridge.stop(2.0)
    assert not bridge.alive
    assert bridge.stopping


async def test_stop_before_start_is_immediate() -> None:
    bridge = bridge_running([1])
    assert await bridge.stop(0.0)
    assert bridge.stopping


async def test_stop_gives_up_after_grace_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    bridge: ThreadBridge[int] = ThreadBridge(
        lambda: release.wait(5), thread_name="stuck worker", max_pending=1, error_type=WorkerFailed
    )
    bridge.start()
    assert not await bridge.stop(0.05)
    assert "stuck worker did not stop in 0.1 s" in caplog.text
    release.set()
    assert await bridge.stop(2.0)


async def test_post_after_stop_is_refused() -> None:
    posted: list[bool] = []
    go = threading.Event()

    def work() -> None:
        go.wait(5)
        posted.append(bridge.post(1))

    bridge: ThreadBridge[int] = ThreadBridge(
        work, thread_name="test worker", max_pending=4, error_type=WorkerFailed
    )
    bridge.start()
    bridge.request_stop()
    go.set()
    assert await bridge.stop(2.0)
    assert posted == [False]
    assert bridge.queued == 0

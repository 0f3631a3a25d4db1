"""EventStream against the real reference doorbell (heartbeat 0.2 s), plus a scripted
WebSocket device for frames a well-behaved doorbell never sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import contextlib
from dataclasses import dataclass, field
import json
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
import pytest

from custom_components.doorstep.device import (
    DoorbellEvent,
    DoorstepClient,
    EventStream,
    EventType,
    FingerprintMismatch,
)

from .conftest import FakeDeviceFactory

if TYPE_CHECKING:
    from reference_doorbell.doorbell import Doorbell

# Generous: these bound how long a broken test hangs, they are not performance targets.
WAIT = 5.0
FAST = {"backoff_min": 0.05, "backoff_max": 0.2, "connect_timeout": 0.5}


@dataclass
class Recorder:
    """Collects every callback and lets a test wait for a condition on them."""

    events: list[DoorbellEvent] = field(default_factory=list)
    connection: list[bool] = field(default_factory=list)
    auth_failed: int = 0
    mismatches: list[FingerprintMismatch] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_event(self, event: DoorbellEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def on_connection_change(self, connected: bool) -> None:
        self.connection.append(connected)
        self._changed.set()

    def on_auth_failed(self) -> None:
        self.auth_failed += 1
        self._changed.set()

    def on_fingerprint_mismatch(self, err: FingerprintMismatch) -> None:
        self.mismatches.append(err)
        self._changed.set()

    async def until(self, condition: Callable[[], bool], within: float = WAIT) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    def types(self) -> list[EventType]:
        return [event.type for event in self.events]


@dataclass
class Running:
    stream: EventStream
    task: asyncio.Task[None]
    rec: Recorder


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll for a condition that no callback announces."""
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110 - there is nothing to wait on but time
            await asyncio.sleep(0.01)


@pytest.fixture
async def start_stream() -> AsyncIterator[Callable[..., Running]]:
    """Start an EventStream task; the fixture cancels whatever is still running."""
    started: list[Running] = []

    def start(client: DoorstepClient, **kwargs: Any) -> Running:
        rec = Recorder()
        options: dict[str, Any] = {
            "on_event": rec.on_event,
            "on_connection_change": rec.on_connection_change,
            "on_auth_failed": rec.on_auth_failed,
            "on_fingerprint_mismatch": rec.on_fingerprint_mismatch,
            **FAST,
            **kwargs,
        }
        stream = EventStream(client, **options)
        running = Running(stream, asyncio.create_task(stream.run()), rec)
        started.append(running)
        return running

    yield start
    for running in started:
        await stop(running)


@pytest.fixture
async def paired(session: aiohttp.ClientSession, bell: Doorbell) -> DoorstepClient:
    client = DoorstepClient(session, "127.0.0.1", bell.port, fingerprint=bell.fingerprint)
    await client.pair(bell.pairing_code, "Home Assistant")
    return client


async def stop(running: Running) -> None:
    running.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running.task


# --- against the reference doorbell ---------------------------------------------------


async def test_ring_and_motion_reach_on_event(
    bell: Doorbell, paired: DoorstepClient, start_stream: Callable[..., Running]
) -> None:
    running = start_stream(paired)
    rec = running.rec
    await rec.until(lambda: rec.connection == [True])
    assert running.stream.connected
    assert rec.types() == [EventType.HELLO]
    assert rec.events[0].motion is False

    # Let a few heartbeats (0.2 s apart) pass: they feed the watchdog, not on_event.
    await asyncio.sleep(0.5)
    await bell.ring()
    await rec.until(lambda: EventType.RING in rec.types())
    await bell.set_motion(True)
    await rec.until(lambda: EventType.MOTION_START in rec.types())
    await bell.set_motion(False)
    await rec.until(lambda: EventType.MOTION_STOP in rec.types())

    assert rec.types() == [
        EventType.HELLO,
        EventType.RING,
        EventType.MOTION_START,
        EventType.MOTION_STOP,
    ]
    ring, start, stop_ = rec.events[1:]
    assert ring.seq > 1, "heartbeats were sent (and numbered) before the ring"
    assert start.seq == ring.seq + 1
    assert stop_.seq == start.seq + 1
    assert (start.motion, stop_.motion, ring.motion) == (True, False, None)
    assert ring.timestamp.tzinfo is not None
    assert rec.connection == [True]
    await stop(running)


async def test_hello_reports_current_motion(
    bell: Doorbell, paired: DoorstepClient, start_stream: Callable[..., Running]
) -> None:
    await bell.set_motion(True)
    rec = start_stream(paired).rec
    await rec.until(lambda: bool(rec.events))
    assert rec.events[0].type is EventType.HELLO
    assert rec.events[0].motion is True


async def test_silent_device_is_disconnected_once_then_reconnects(
    bell: Doorbell, paired: DoorstepClient, start_stream: Callable[..., Running]
) -> None:
    running = start_stream(paired, connect_timeout=0.3)
    rec = running.rec
    await rec.until(lambda: rec.connection == [True])

    bell.suspend_events()
    # Silence timeout is 3 x 0.2 s; WAIT only bounds a broken test.
    await rec.until(lambda: rec.connection == [True, False])
    # While the device stays silent the stream keeps retrying (each new socket gets no
    # hello), but that is still the same outage.
    await asyncio.sleep(0.8)
    assert rec.connection == [True, False]

    bell.resume_events()
    await rec.until(lambda: rec.connection == [True, False, True])
    assert running.stream.connected
    assert rec.types() == [EventType.HELLO, EventType.HELLO]
    await bell.ring()
    await rec.until(lambda: rec.types()[-1] is EventType.RING)


async def test_dropped_connection_reconnects(
    bell: Doorbell, paired: DoorstepClient, start_stream: Callable[..., Running]
) -> None:
    rec = start_stream(paired).rec
    await rec.until(lambda: rec.connection == [True])
    await bell.drop_connections()
    await rec.until(lambda: rec.connection == [True, False, True])
    await bell.drop_connections()
    await rec.until(lambda: rec.connection == [True, False, True, False, True])
    assert rec.types() == [EventType.HELLO] * 3


async def test_revoked_token_calls_on_auth_failed_and_returns(
    bell: Doorbell, paired: DoorstepClient, start_stream: Callable[..., Running]
) -> None:
    running = start_stream(paired)
    rec = running.rec
    await rec.until(lambda: rec.connection == [True])
    bell.revoke_all_tokens()
    async with asyncio.timeout(WAIT):
        await running.task  # run() returns by itself
    assert rec.auth_failed == 1
    assert rec.connection == [True, False]
    assert not running.stream.connected


async def test_factory_reset_reports_mismatch_once_and_keeps_trying(
    bell: Doorbell, paired: DoorstepClient, start_stream: Callable[..., Running]
) -> None:
    running = start_stream(paired, backoff_max=0.1)
    rec = running.rec
    await rec.until(lambda: rec.connection == [True])
    await bell.factory_reset()
    await rec.until(lambda: bool(rec.mismatches))
    assert rec.connection == [True, False]
    # Several retries at backoff_max later: still running, still one report.
    await asyncio.sleep(0.5)
    assert not running.task.done()
    assert len(rec.mismatches) == 1
    mismatch = rec.mismatches[0]
    assert (mismatch.expected, mismatch.actual) == (paired.fingerprint, bell.fingerprint)
    assert rec.auth_failed == 0


async def test_cancel_leaves_nothing_running(
    bell: Doorbell, paired: DoorstepClient, start_stream: Callable[..., Running]
) -> None:
    before = asyncio.all_tasks()
    running = start_stream(paired)
    rec = running.rec
    await rec.until(lambda: rec.connection == [True])
    assert bell.events.session_count == 1

    await stop(running)
    assert running.task.cancelled()
    assert not running.stream.connected
    assert rec.connection == [True], "cancelling reports nothing"
    # The doorbell sees the socket close and its per-hub tasks end.
    await eventually(lambda: not bell.events.session_count and not asyncio.all_tasks() - before)


async def test_cancel_while_retrying(
    session: aiohttp.ClientSession, start_stream: Callable[..., Running]
) -> None:
    with socketless_port() as port:
        client = DoorstepClient(session, "127.0.0.1", port, fingerprint="0" * 64, token="t")
        running = start_stream(client)
        await asyncio.sleep(0.3)
        await stop(running)
    assert running.rec.connection == []


async def test_callback_errors_do_not_stop_the_stream(
    bell: Doorbell,
    paired: DoorstepClient,
    start_stream: Callable[..., Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[EventType] = []

    def explode(event: DoorbellEvent) -> None:
        seen.append(event.type)
        raise RuntimeError("automation bug")

    running = start_stream(paired, on_event=explode)
    await eventually(lambda: EventType.HELLO in seen)
    await bell.ring()
    await bell.ring()
    await eventually(lambda: seen.count(EventType.RING) >= 2)
    assert "automation bug" in caplog.text
    assert not running.task.done()
    assert running.rec.connection == [True]


async def test_backoff_doubles_up_to_the_maximum() -> None:
    unused_session: Any = None
    stream = EventStream(
        DoorstepClient(unused_session, "127.0.0.1", 1, fingerprint="0" * 64, token="t"),
        on_event=lambda _: None,
        on_connection_change=lambda _: None,
        on_auth_failed=lambda: None,
        backoff_min=0.5,
        backoff_max=3.0,
    )
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    stream._sleep = record  # type: ignore[method-assign]
    for _ in range(6):
        await stream._sleep_backoff()
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


# --- scripted devices -----------------------------------------------------------------


@contextlib.contextmanager
def socketless_port() -> Iterator[int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])  # bound, not listening: connections are refused


def ws_route(script: Callable[[web.WebSocketResponse], Any]) -> web.RouteDef:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await script(ws)
        return ws

    return web.get("/v1/events", handler)


def hello(**extra: Any) -> str:
    return json.dumps(
        {"type": "hello", "id": "fd-1", "motion": False, "heartbeat_interval": 1.0} | extra
    )


async def fake_stream_client(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory, *routes: web.RouteDef
) -> DoorstepClient:
    device = await fake_device(list(routes))
    return DoorstepClient(
        session, device.host, device.port, fingerprint=device.fingerprint, token="A" * 43
    )


async def test_malformed_and_unknown_frames_are_ignored(
    session: aiohttp.ClientSession,
    fake_device: FakeDeviceFactory,
    start_stream: Callable[..., Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.doorstep.device.events")
    done = asyncio.Event()

    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_str(hello(seq=0, ts=1_700_000_000.5))
        for junk in [
            "not json",
            "[]",
            '"ring"',
            "[" * 50_000,
            json.dumps({"type": 5, "seq": 1, "ts": 1.0}),
            json.dumps({"type": "ring"}),
            json.dumps({"type": "ring", "seq": "1", "ts": 1.0}),
            json.dumps({"type": "ring", "seq": True, "ts": 1.0}),
            json.dumps({"type": "ring", "seq": -1, "ts": 1.0}),
            json.dumps({"type": "ring", "seq": 1, "ts": "now"}),
            json.dumps({"type": "ring", "seq": 1, "ts": 1e300}),
            '{"type": "ring", "seq": 1, "ts": NaN}',
            json.dumps({"type": "doorbell_on_fire", "seq": 1, "ts": 1.0}),
            hello(),  # only the first frame may be a hello
        ]:
            await ws.send_str(junk)
        await ws.send_bytes(b"\x00binary")
        await ws.send_str(json.dumps({"type": "heartbeat", "seq": 8, "ts": 1.0}))
        await ws.send_str(json.dumps({"type": "ring", "seq": 9, "ts": 1_700_000_001}))
        await done.wait()

    client = await fake_stream_client(session, fake_device, ws_route(script))
    running = start_stream(client)
    rec = running.rec
    try:
        await rec.until(lambda: EventType.RING in rec.types())
    finally:
        done.set()
    assert rec.types() == [EventType.HELLO, EventType.RING]
    assert rec.events[0].timestamp.timestamp() == 1_700_000_000.5
    assert rec.events[1].seq == 9
    assert rec.connection == [True]
    assert "ignoring frame" in caplog.text
    await stop(running)


async def test_first_frame_must_be_hello(
    session: aiohttp.ClientSession,
    fake_device: FakeDeviceFactory,
    start_stream: Callable[..., Running],
) -> None:
    attempts = 0
    first_frames = [
        json.dumps({"type": "ring", "seq": 1, "ts": 1.0}),
        hello(heartbeat_interval=0),
        hello(heartbeat_interval="2"),
        hello(heartbeat_interval=float("inf")),
        hello(motion="no"),
        "garbage",
    ]

    async def script(ws: web.WebSocketResponse) -> None:
        nonlocal attempts
        attempts += 1
        await ws.send_str(first_frames[(attempts - 1) % len(first_frames)])
        await ws.send_str(json.dumps({"type": "ring", "seq": 2, "ts": 1.0}))
        await ws.close()

    client = await fake_stream_client(session, fake_device, ws_route(script))
    running = start_stream(client, backoff_max=0.05)
    await eventually(lambda: attempts > len(first_frames))
    await stop(running)
    assert running.rec.connection == []
    assert running.rec.events == []


async def test_hello_heartbeat_interval_sets_the_silence_timeout(
    session: aiohttp.ClientSession,
    fake_device: FakeDeviceFactory,
    start_stream: Callable[..., Running],
) -> None:
    released = asyncio.Event()

    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_str(hello(heartbeat_interval=0.05))
        await released.wait()  # then silence, with the socket open

    client = await fake_stream_client(session, fake_device, ws_route(script))
    # With the default 2 s interval this would take 6 s; with 0.05 s it takes 0.15 s.
    rec = start_stream(client).rec
    try:
        await rec.until(lambda: rec.connection == [True, False], within=3.0)
    finally:
        released.set()


async def test_upgrade_refused_keeps_retrying(
    session: aiohttp.ClientSession,
    fake_device: FakeDeviceFactory,
    start_stream: Callable[..., Running],
) -> None:
    calls = 0

    async def not_found(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.Response(status=404 if calls % 2 else 503)

    client = await fake_stream_client(session, fake_device, web.get("/v1/events", not_found))
    running = start_stream(client, backoff_max=0.05)
    await eventually(lambda: calls >= 4)
    assert not running.task.done()
    assert running.rec.auth_failed == 0
    await stop(running)

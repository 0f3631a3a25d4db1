"""The ``/v1/events`` WebSocket, kept alive (docs/protocol.md, section 4).

One :class:`EventStream` per doorbell runs as a long-lived task. It reconnects with
backoff, treats a device that stays quiet for ``silence_factor`` heartbeat intervals as
gone, and reports connectivity only on changes, so one outage is one "disconnected".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from datetime import UTC, datetime
import json
import logging
import random
from typing import Any, Final

import aiohttp

from .client import DoorstepClient
from .exceptions import (
    CannotConnect,
    DoorstepError,
    FingerprintMismatch,
    InvalidAuth,
    ProtocolError,
)
from .models import DoorbellEvent, EventType
from .validation import is_finite_number, is_strict_int

_LOGGER = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_INTERVAL: Final = 2.0
# A hello that claims a heartbeat outside this range is broken, not slow or eager.
_MIN_HEARTBEAT_INTERVAL: Final = 0.01
_MAX_HEARTBEAT_INTERVAL: Final = 3600.0
_JITTER: Final = 0.1
_CLOSED_TYPES: Final = frozenset(
    {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED}
)
_FORWARDED: Final = frozenset(
    {EventType.HELLO, EventType.RING, EventType.MOTION_START, EventType.MOTION_STOP}
)


class EventStream:
    """Keeps one doorbell's event WebSocket open and hands events to callbacks.

    Callbacks are plain functions called from the event loop; an exception in one is
    logged and does not stop the stream. Cancelling :meth:`run` closes the socket and
    does not call ``on_connection_change``: whoever cancels knows.
    ``on_fingerprint_mismatch`` is called when a mismatch starts (or the certificate the
    device shows changes again), not on every retry.
    """

    def __init__(
        self,
        client: DoorstepClient,
        *,
        on_event: Callable[[DoorbellEvent], None],
        on_connection_change: Callable[[bool], None],
        on_auth_failed: Callable[[], None],
        on_fingerprint_mismatch: Callable[[FingerprintMismatch], None] | None = None,
        backoff_min: float = 0.5,
        backoff_max: float = 3.0,
        connect_timeout: float = 3.0,
        silence_factor: float = 3.0,
    ) -> None:
        if not 0 < backoff_min <= backoff_max:
            raise ValueError("need 0 < backoff_min <= backoff_max")
        self._client = client
        self._on_event = on_event
        self._on_connection_change = on_connection_change
        self._on_auth_failed = on_auth_failed
        self._on_fingerprint_mismatch = on_fingerprint_mismatch
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._connect_timeout = connect_timeout
        self._silence_factor = silence_factor
        self._connected = False
        self._backoff = backoff_min
        self._reported_mismatch: tuple[str | None] | None = None

    @property
    def connected(self) -> bool:
        """Whether a hello arrived and the device has not fallen silent since."""
        return self._connected

    async def run(self) -> None:
        """Stream until cancelled, or until the device rejects the token."""
        try:
            while True:
                try:
                    ws = await self._client.connect_events(connect_timeout=self._connect_timeout)
                except InvalidAuth:
                    _LOGGER.debug("Event stream of %s: token rejected", self._client.base_url)
                    self._call(self._on_auth_failed)
                    return
                except FingerprintMismatch as err:
                    self._report_mismatch(err)
                    # Retrying fast cannot help: someone has to re-pair or swap back.
                    await self._sleep(self._backoff_max)
                    continue
                except (CannotConnect, ProtocolError) as err:
                    _LOGGER.debug("Event stream of %s: %s", self._client.base_url, err)
                    await self._sleep_backoff()
                    continue

                try:
                    if await self._consume(ws):
                        self._backoff = self._backoff_min
                        self._reported_mismatch = None
                except Exception:
                    # A bug here must cost one connection, not the doorbell's events.
                    _LOGGER.exception("Event stream of %s failed", self._client.base_url)
                finally:
                    # Report before closing: closing a silent socket takes a moment.
                    # (Not on cancellation: whoever cancels already knows.)
                    if not _current_task_cancelling():
                        self._set_connected(False)
                    await _close_quietly(ws)
                await self._sleep_backoff()
        finally:
            self._connected = False

    async def _consume(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Read one connection until it ends; return whether it got as far as hello."""
        try:
            msg = await ws.receive(timeout=self._connect_timeout)
        except TimeoutError, aiohttp.ClientError, OSError:
            _LOGGER.debug("Event stream of %s: no hello", self._client.base_url)
            return False
        hello = _parse_hello(msg.data) if msg.type is aiohttp.WSMsgType.TEXT else None
        if hello is None:
            _LOGGER.debug("Event stream of %s: bad first frame %r", self._client.base_url, msg)
            return False
        event, heartbeat_interval = hello
        silence_timeout = self._silence_factor * heartbeat_interval
        self._set_connected(True)
        self._call(self._on_event, event)

        while True:
            try:
                # Every frame, heartbeat or not, proves the device alive; the receive
                # timeout is the watchdog.
                msg = await ws.receive(timeout=silence_timeout)
            except TimeoutError:
                _LOGGER.debug(
                    "Event stream of %s: silent for %.1f s", self._client.base_url, silence_timeout
                )
                return True
            except (aiohttp.ClientError, OSError) as err:
                _LOGGER.debug("Event stream of %s: %r", self._client.base_url, err)
                return True
            if msg.type is aiohttp.WSMsgType.TEXT:
                parsed = _parse_event(msg.data)
                if parsed is None:
                    _LOGGER.debug("Event stream: ignoring frame %.200r", msg.data)
                elif parsed.type in _FORWARDED:
                    self._call(self._on_event, parsed)
            elif msg.type in _CLOSED_TYPES or msg.type is aiohttp.WSMsgType.ERROR:
                _LOGGER.debug("Event stream of %s ended: %r", self._client.base_url, msg)
                return True
            # Anything else (binary frames) is not in the protocol; ignored.

    def _set_connected(self, connected: bool) -> None:
        if connected != self._connected:
            self._connected = connected
            self._call(self._on_connection_change, connected)

    def _report_mismatch(self, err: FingerprintMismatch) -> None:
        _LOGGER.debug("Event stream of %s: %s", self._client.base_url, err)
        if self._on_fingerprint_mismatch is not None and self._reported_mismatch != (err.actual,):
            self._reported_mismatch = (err.actual,)
            self._call(self._on_fingerprint_mismatch, err)

    async def _sleep_backoff(self) -> None:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)
        await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        # Jitter keeps many hubs (or many doorbells) from retrying in lockstep.
        await asyncio.sleep(delay * random.uniform(1.0, 1.0 + _JITTER))

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            _LOGGER.exception("Error in event stream callback %r", callback)


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _close_quietly(ws: aiohttp.ClientWebSocketResponse) -> None:
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, DoorstepError):
        await ws.close()


def _parse_hello(data: Any) -> tuple[DoorbellEvent, float] | None:
    frame = _load(data)
    if frame is None or frame.get("type") != EventType.HELLO:
        return None
    interval = frame.get("heartbeat_interval", DEFAULT_HEARTBEAT_INTERVAL)
    motion = frame.get("motion")
    if not (
        is_finite_number(interval)
        and _MIN_HEARTBEAT_INTERVAL <= interval <= _MAX_HEARTBEAT_INTERVAL
    ):
        return None
    if not isinstance(motion, bool):
        return None
    # seq and ts are optional on hello: the protocol's example shows neither.
    seq = frame.get("seq", 0)
    ts = frame.get("ts")
    timestamp = datetime.now(UTC) if ts is None else _timestamp(ts)
    if not is_strict_int(seq) or seq < 0 or timestamp is None:
        return None
    return DoorbellEvent(EventType.HELLO, seq, timestamp, motion), float(interval)


def _parse_event(data: Any) -> DoorbellEvent | None:
    frame = _load(data)
    if frame is None:
        return None
    try:
        event_type = EventType(str(frame.get("type")))
    except ValueError:
        return None  # unknown types are how later versions extend the protocol
    if event_type is EventType.HELLO:
        return None  # only the first frame may be a hello
    seq = frame.get("seq")
    timestamp = _timestamp(frame.get("ts"))
    if not is_strict_int(seq) or seq < 0 or timestamp is None:
        return None
    motion = {EventType.MOTION_START: True, EventType.MOTION_STOP: False}.get(event_type)
    return DoorbellEvent(event_type, seq, timestamp, motion)


def _load(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, str):
        return None
    try:
        frame = json.loads(data)
    except ValueError, RecursionError:
        return None
    return frame if isinstance(frame, dict) else None


def _timestamp(ts: Any) -> datetime | None:
    if not is_finite_number(ts):
        return None
    try:
        return datetime.fromtimestamp(ts, UTC)
    except OverflowError, OSError, ValueError:
        return None

"""The ``/v1/events`` WebSocket: hello, then rings, motion and heartbeats.

Each connected hub gets an :class:`EventSession` with its own small queue and sender
task, so a hub that reads slowly delays nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

_LOGGER = logging.getLogger(__name__)

RING = "ring"
MOTION_START = "motion_start"
MOTION_STOP = "motion_stop"
HEARTBEAT = "heartbeat"
# Rings are rare; a queue this long only fills when a hub stopped reading, and then
# dropping events beats growing without bound.
_QUEUE_LIMIT = 64


class EventSession:
    """One hub's event socket."""

    def __init__(self, hub: EventHub, ws: web.WebSocketResponse, token_hash: str) -> None:
        self._hub = hub
        self.ws = ws
        self.token_hash = token_hash
        self._queue: asyncio.Queue[str] = asyncio.Queue(_QUEUE_LIMIT)
        self._seq = 0
        self._hello_sent = False
        self._transport: asyncio.Transport | None = None

    def bind_transport(self, transport: asyncio.Transport | None) -> None:
        """Remember the socket so the session can be cut without a closing handshake."""
        self._transport = transport

    def offer(self, kind: str) -> None:
        """Queue an event for this hub, dropping it if the hub stopped reading."""
        try:
            self._queue.put_nowait(kind)
        except asyncio.QueueFull:
            _LOGGER.debug("Event queue full, dropping %s", kind)

    def abort(self) -> None:
        """Cut the connection abruptly, as a crashing or unplugged device would."""
        if self._transport is not None:
            self._transport.abort()

    async def run_sender(self) -> None:
        """Send hello, then events, and a heartbeat whenever nothing else was sent."""
        while not self.ws.closed:
            if not self._hello_sent:
                if not self._hub.suspended:
                    await self._send_hello()
                    continue
                # Silent from the start: wait (dropping events) until resumed.
                await self._next_event()
                continue
            kind = await self._next_event()
            if self._hub.suspended:
                # A silent device sends nothing at all, not even late events.
                continue
            await self._send(kind)

    async def _next_event(self) -> str:
        try:
            return await asyncio.wait_for(self._queue.get(), self._hub.heartbeat_interval)
        except TimeoutError:
            return HEARTBEAT

    async def _send_hello(self) -> None:
        hello = {
            "type": "hello",
            "id": self._hub.device_id,
            "motion": self._hub.motion,
            "heartbeat_interval": self._hub.heartbeat_interval,
        }
        await self.ws.send_str(json.dumps(hello))
        self._hello_sent = True

    async def _send(self, kind: str) -> None:
        self._seq += 1
        frame: dict[str, Any] = {"type": kind, "seq": self._seq, "ts": time.time()}
        await self.ws.send_str(json.dumps(frame))


class EventHub:
    """All event sockets of one doorbell, and the state they report."""

    def __init__(self, device_id: str, heartbeat_interval: float) -> None:
        self.device_id = device_id
        self.heartbeat_interval = heartbeat_interval
        self.motion = False
        self.suspended = False
        self._sessions: set[EventSession] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def session_count(self) -> int:
        """How many hubs are connected."""
        return len(self._sessions)

    async def wait_idle(self) -> None:
        """Wait until no event socket is open."""
        await self._idle.wait()

    def publish(self, kind: str) -> None:
        """Send an event to every connected hub."""
        for session in self._sessions:
            session.offer(kind)

    async def serve(self, request: web.Request, token_hash: str) -> web.WebSocketResponse:
        """Run one authenticated event socket until either side closes it."""
        # autoping is off so that a suspended device answers no pings either; a hub must
        # notice the silence the same way it would with a hung device.
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1024)
        await ws.prepare(request)
        session = EventSession(self, ws, token_hash)
        session.bind_transport(request.transport)
        self._sessions.add(session)
        self._idle.clear()
        sender = asyncio.create_task(self._guard(session), name="doorbell-event-sender")
        try:
            async for msg in ws:
                if msg.type is WSMsgType.PING and not self.suspended:
                    await ws.pong(msg.data)
                # The hub has nothing to say on this socket; anything else is ignored.
        finally:
            self._sessions.discard(session)
            if not self._sessions:
                self._idle.set()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            if not ws.closed:
                with contextlib.suppress(ConnectionError):
                    await ws.close()
        return ws

    async def _guard(self, session: EventSession) -> None:
        try:
            await session.run_sender()
        except (ConnectionError, RuntimeError) as err:
            # The peer went away mid-send; the reader side notices and cleans up.
            _LOGGER.debug("Event socket ended while sending: %s", err)

    def abort_all(self) -> None:
        """Cut every event socket abruptly."""
        for session in list(self._sessions):
            session.abort()

    def abort_token(self, token_hash: str) -> None:
        """Cut the sockets opened with a token that is no longer valid."""
        for session in list(self._sessions):
            if session.token_hash == token_hash:
                session.abort()

    async def close_all(self) -> None:
        """Close every event socket politely (used when the doorbell stops)."""
        sessions = list(self._sessions)
        for session in sessions:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.ws.close(code=1001, message=b"doorbell stopping")

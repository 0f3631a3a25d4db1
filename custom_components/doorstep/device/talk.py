"""Talk-back as the hub uses it: a channel of Opus packets to one device's speaker."""

from __future__ import annotations

from abc import ABC, abstractmethod
import asyncio
import contextlib
import json
import logging
from typing import Final

import aiohttp

from .exceptions import (
    CannotConnect,
    InvalidAuth,
    ProtocolError,
    TalkBackError,
    TalkBackUnsupported,
    TalkBusy,
)

_LOGGER = logging.getLogger(__name__)

# RFC 6716: no Opus packet is longer than this; the doorbell refuses longer frames.
MAX_OPUS_PACKET: Final = 1275
_MAX_ANSWER_BYTES: Final = 4096


class TalkChannel(ABC):
    """An open talk: the hub holds the device's floor until :meth:`close`."""

    @abstractmethod
    async def send(self, packet: bytes) -> None:
        """Play one Opus packet (48 kHz) on the speaker.

        Raises :class:`TalkBackError` once the device has ended the talk.
        """

    @abstractmethod
    async def close(self) -> None:
        """Let go of the floor; safe to repeat."""

    @property
    @abstractmethod
    def closed(self) -> bool:
        """True once the talk is over, from either side."""


class WebSocketTalkChannel(TalkChannel):
    """Protocol v1.1's ``/v1/talk`` WebSocket (docs/protocol.md section 7)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, name: str) -> None:
        self._ws = ws
        self._name = name
        self._error: TalkBackError | None = None
        self._reader = asyncio.get_running_loop().create_task(
            self._read(), name=f"doorstep talk answers {name}"
        )
        self.sent = 0

    @property
    def closed(self) -> bool:
        """True once either side closed the socket."""
        return self._ws.closed or self._reader.done()

    @property
    def error(self) -> TalkBackError | None:
        """Why the device ended the talk, if it did."""
        return self._error

    async def send(self, packet: bytes) -> None:
        """Send one Opus packet; packets over the protocol's limit are refused here."""
        if len(packet) > MAX_OPUS_PACKET:
            raise TalkBackError("frame_too_large", f"an Opus packet is at most {MAX_OPUS_PACKET}")
        if self.closed:
            raise self._error or TalkBackError("closed", "the talk has ended")
        try:
            await self._ws.send_bytes(packet)
        except (ConnectionError, aiohttp.ClientError) as err:
            raise TalkBackError("closed", f"the talk connection broke: {err}") from err
        self.sent += 1

    async def close(self) -> None:
        """Close the socket, which frees the device's floor."""
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                answer = json.loads(message.data)
            except ValueError:
                continue
            if isinstance(answer, dict) and answer.get("type") == "error":
                code = str(answer.get("error", "error"))
                text = str(answer.get("message", ""))
                _LOGGER.info("%s: the doorbell says about talk-back: %s %s", self._name, code, text)
                self._error = TalkBackError(code, text)


async def open_websocket_talk(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    pin: aiohttp.Fingerprint,
    *,
    name: str,
    connect_timeout: float,
) -> WebSocketTalkChannel:
    """Take the floor on ``/v1/talk``; :class:`TalkBusy` when someone else holds it."""
    try:
        async with asyncio.timeout(connect_timeout):
            ws = await session.ws_connect(
                url,
                headers=headers,
                ssl=pin,
                heartbeat=None,
                max_msg_size=_MAX_ANSWER_BYTES,
                timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
            )
            first = await ws.receive()
    except aiohttp.WSServerHandshakeError as err:
        if err.status == 409:
            raise TalkBusy("someone else is talking through the doorbell") from err
        if err.status == 404:
            raise TalkBackUnsupported("the doorbell has no speaker") from err
        if err.status == 401:
            raise InvalidAuth("the device rejected the token") from err
        raise ProtocolError(f"talk-back upgrade answered {err.status}") from err
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        raise CannotConnect(f"cannot reach the doorbell's speaker: {err!r}") from err
    if first.type is not aiohttp.WSMsgType.TEXT or '"talking"' not in first.data:
        await ws.close()
        raise ProtocolError("the doorbell did not hand over the floor")
    return WebSocketTalkChannel(ws, name)

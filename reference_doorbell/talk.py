"""The talk-back channel of protocol v1.1: ``GET /v1/talk``, one talker at a time.

The hub sends one Opus packet per binary WebSocket frame. The doorbell decodes each and
plays it. It answers in JSON text frames: ``{"type": "talking"}`` once the floor is
taken, and ``{"type": "error", "error": <code>, "message": ...}`` for a frame it cannot
play. A frame it cannot play is skipped; the talk carries on. What would harm the
doorbell (frames over the Opus size limit, sound arriving much faster than it can be
played) ends the talk with a WebSocket close code and the error frame before it.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
import math
import time
from typing import Final

from aiohttp import WSMsgType, web
import numpy as np

from .audio import MAX_OPUS_PACKET, SAMPLE_RATE, BadOpusFrame, OpusPlayer, Pcm, SpeakerSink

_LOGGER = logging.getLogger(__name__)

# How far ahead of real time a talker may send before the doorbell calls it a flood.
MAX_AHEAD_SECONDS: Final = 2.0
# Undecodable frames in a row before the doorbell stops listening to this talker.
MAX_BAD_FRAMES_IN_A_ROW: Final = 50
# A WebSocket message larger than this is refused by aiohttp itself (close code 1009).
_WS_MAX_MESSAGE: Final = 64 * 1024
CLOSE_TOO_BIG: Final = 1009
CLOSE_POLICY: Final = 1008
CLOSE_BAD_DATA: Final = 1007


class Busy(Exception):
    """Someone else holds the floor."""


class TalkFloor:
    """Who is talking through the speaker now; plays what they send."""

    def __init__(self, sink: SpeakerSink) -> None:
        self.sink = sink
        self._holder: str | None = None
        self._listeners: list[Callable[[Pcm], None]] = []
        self._sockets: set[web.WebSocketResponse] = set()
        self.talks = 0

    @property
    def talking(self) -> bool:
        """True while someone holds the floor."""
        return self._holder is not None

    def add_sound_listener(self, listener: Callable[[Pcm], None]) -> Callable[[], None]:
        """Call ``listener(pcm)`` with everything the speaker plays; returns an undo."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _heard(self, pcm: Pcm) -> None:
        for listener in list(self._listeners):
            listener(pcm)

    async def serve(self, request: web.Request, token_hash: str) -> web.WebSocketResponse:
        """Run one talk; raises :class:`Busy` before the upgrade when the floor is held."""
        if self._holder is not None:
            raise Busy
        self._holder = token_hash
        ws = web.WebSocketResponse(max_msg_size=_WS_MAX_MESSAGE)
        self._sockets.add(ws)
        loudest = 0.0
        samples = 0

        def heard(pcm: Pcm) -> None:
            nonlocal loudest, samples
            samples += pcm.size
            if pcm.size:
                loudest = max(loudest, float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))))
            self._heard(pcm)

        player = OpusPlayer(self.sink, heard)
        self.talks += 1
        try:
            await ws.prepare(request)
            await ws.send_json({"type": "talking"})
            _LOGGER.info("Talk-back started from %s", request.remote)
            await self._listen(ws, player)
        finally:
            self._holder = None
            self._sockets.discard(ws)
            player.close()
            # The demo's proof that the doorbell heard you: how much, and how loud.
            _LOGGER.info(
                "Talk-back ended: the speaker played %.1f s of sound in %d frames, "
                "loudest 20 ms at %.0f dBFS",
                samples / SAMPLE_RATE,
                player.frames,
                20 * math.log10(max(loudest, 1.0) / 32768),
            )
        return ws

    async def _listen(self, ws: web.WebSocketResponse, player: OpusPlayer) -> None:
        started = time.monotonic()
        played = 0.0
        bad_in_a_row = 0
        async for message in ws:
            if message.type is not WSMsgType.BINARY:
                continue  # the hub sends nothing else; text is ignored
            payload: bytes = message.data
            if len(payload) > MAX_OPUS_PACKET:
                await _refuse(
                    ws,
                    CLOSE_TOO_BIG,
                    "frame_too_large",
                    f"A talk-back frame is one Opus packet of at most {MAX_OPUS_PACKET} bytes",
                )
                return
            before = player.frames
            try:
                player.play(payload)
            except BadOpusFrame as err:
                bad_in_a_row += 1
                await ws.send_json({"type": "error", "error": "bad_frame", "message": str(err)})
                if bad_in_a_row >= MAX_BAD_FRAMES_IN_A_ROW:
                    await _refuse(
                        ws, CLOSE_BAD_DATA, "bad_stream", "Too many frames that are not Opus"
                    )
                    return
                continue
            bad_in_a_row = 0
            if player.frames > before:
                played += player.last_duration
            if played - (time.monotonic() - started) > MAX_AHEAD_SECONDS:
                await _refuse(
                    ws,
                    CLOSE_POLICY,
                    "too_fast",
                    "Talk-back sound arrives faster than the speaker can play it",
                )
                return

    async def close_all(self) -> None:
        """End every talk (the doorbell stops)."""
        for ws in list(self._sockets):
            await ws.close()


async def _refuse(ws: web.WebSocketResponse, code: int, error: str, message: str) -> None:
    _LOGGER.warning("Talk-back refused: %s", message)
    await ws.send_json({"type": "error", "error": error, "message": message})
    await ws.close(code=code, message=error.encode())


__all__ = ["SAMPLE_RATE", "Busy", "TalkFloor"]

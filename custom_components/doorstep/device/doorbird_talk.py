"""Talk-back to a DoorBird: the hub's Opus, as G.711 µ-law, streamed to ``audio-transmit.cgi``.

DoorBird's LAN-2-LAN API document (revision 0.36) takes the speaker's sound as one long
HTTP POST of ``audio/basic`` (G.711 µ-law, 8000 Hz, mono) with basic auth, and lets only
one client transmit at a time. The document gives no chunked encoding: its client
announces a ``Content-Length`` larger than any talk will be and streams the bytes as they
come, and the talk ends when the client closes the connection. That is what this module
does, over Home Assistant's shared HTTP/1.1 session (the document's example is HTTP/1.0)
with ``Connection: close``.

The hub's talk path hands every :class:`TalkChannel` 20 ms Opus packets at 48 kHz (the
browser's voice, decoded by aiortc and encoded once by ``media.audio``). Here they are
decoded to PCM, resampled to 8 kHz mono and encoded to µ-law, all by PyAV (FFmpeg's
``opus`` decoder, ``AudioResampler`` and ``pcm_mulaw`` encoder).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import logging
from typing import Final

import aiohttp
import av

from .exceptions import CannotConnect, InvalidAuth, TalkBackError, TalkBusy
from .talk import MAX_OPUS_PACKET, TalkChannel

_LOGGER = logging.getLogger(__name__)

TRANSMIT_PATH: Final = "/bha-api/audio-transmit.cgi"
MULAW_RATE: Final = 8000
_OPUS_RATE: Final = 48_000
# The document's own figure: a length no talk reaches, so the station keeps reading.
_ANNOUNCED_LENGTH: Final = "9999999"
# A talk the station takes gets no answer until it ends, so "no answer within this
# window" is how the hub learns it holds the speaker. A refusal (wrong user, someone else
# transmitting) is expected at once, before any sound. The document does not say how a
# station refuses; 401 and 503 ("busy" in its list of codes) are taken, as the emulator
# gives them.
DEFAULT_ANSWER_WINDOW: Final = 0.3
# Two seconds of sound at most wait for a slow station; older sound is dropped first,
# because a late voice at the door is worse than a gap.
_MAX_QUEUED_BYTES: Final = 2 * MULAW_RATE
# 20 ms of µ-law silence opens the body: aiohttp holds the request's headers back until
# the first body bytes, and the station can only refuse a request it has seen.
_LEAD_IN: Final = b"\xff" * (MULAW_RATE // 50)
# Time given to the last queued sound to reach the socket before the connection closes.
_FLUSH_TIMEOUT: Final = 1.0


class MulawEncoder:
    """20 ms Opus packets (48 kHz) in, G.711 µ-law bytes (8 kHz mono) out."""

    def __init__(self) -> None:
        decoder = av.CodecContext.create("opus", "r")
        assert isinstance(decoder, av.AudioCodecContext)
        decoder.sample_rate = _OPUS_RATE
        decoder.layout = "mono"
        self._decoder = decoder
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=MULAW_RATE)
        encoder = av.CodecContext.create("pcm_mulaw", "w")
        assert isinstance(encoder, av.AudioCodecContext)
        encoder.sample_rate = MULAW_RATE
        encoder.layout = "mono"
        encoder.format = "s16"
        self._encoder = encoder
        self._pts = 0

    def encode(self, packet: bytes) -> bytes:
        """The µ-law bytes for one Opus packet; :class:`ValueError` when it is not Opus."""
        out = bytearray()
        try:
            frames = self._decoder.decode(av.Packet(packet))
        except av.FFmpegError as err:
            raise ValueError(f"undecodable Opus packet: {err}") from err
        for frame in frames:
            frame.pts = None
            for piece in self._resampler.resample(frame):
                piece.pts = self._pts
                self._pts += piece.samples
                for encoded in self._encoder.encode(piece):
                    out += bytes(encoded)
        return bytes(out)


class DoorBirdTalkChannel(TalkChannel):
    """One open ``audio-transmit.cgi`` POST; the station's speaker is the hub's until closed."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._encoder = MulawEncoder()
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queued_bytes = 0
        self._body_done = asyncio.Event()
        self._answered = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._status: int | None = None
        self._error: TalkBackError | None = None
        self._closing = False
        self.sent = 0
        self.dropped_packets = 0
        self.dropped_bytes = 0

    @property
    def closed(self) -> bool:
        """True once the hub closed the talk or the station ended it."""
        return self._closing or self._task is None or self._task.done()

    @property
    def status(self) -> int | None:
        """The station's answer, if it gave one (it does only to end or refuse a talk)."""
        return self._status

    def start(
        self, session: aiohttp.ClientSession, url: str, authorization: str
    ) -> asyncio.Task[None]:
        """Open the POST; the returned task ends with the talk."""
        self._task = asyncio.get_running_loop().create_task(
            self._post(session, url, authorization), name=f"doorbird talk {self._name}"
        )
        return self._task

    async def wait_for_answer(self, window: float) -> None:
        """Raise the station's refusal if it gives one within ``window`` seconds."""
        assert self._task is not None
        waiter = asyncio.ensure_future(self._answered.wait())
        try:
            await asyncio.wait({self._task, waiter}, timeout=window)
        finally:
            waiter.cancel()
        if not self._task.done() and not self._answered.is_set():
            return  # no answer: the station is listening
        status = self._status
        await self.close()
        if status == 401:
            raise InvalidAuth("the DoorBird refused the username or password")
        if status == 503:
            raise TalkBusy("someone else is talking through the DoorBird")
        if status == 204:
            raise TalkBackError("not_permitted", "the DoorBird user may not use the speaker")
        if self._error is not None and status is None:
            raise CannotConnect(f"cannot reach the DoorBird's speaker: {self._error}")
        raise TalkBackError("refused", f"audio-transmit.cgi answered {status}")

    async def send(self, packet: bytes) -> None:
        """Queue one Opus packet's sound; a packet that is not Opus is dropped.

        Raises :class:`TalkBackError` once the station ended the talk.
        """
        if self.closed:
            raise self._error or TalkBackError("closed", "the talk has ended")
        if len(packet) > MAX_OPUS_PACKET:
            raise TalkBackError("frame_too_large", f"an Opus packet is at most {MAX_OPUS_PACKET}")
        if not packet:
            # To FFmpeg an empty packet means "flush": never hand it one.
            self.dropped_packets += 1
            return
        try:
            sound = self._encoder.encode(packet)
        except ValueError as err:
            # One bad packet is a click at the door, not a reason to end the talk.
            self.dropped_packets += 1
            _LOGGER.debug("%s: %s", self._name, err)
            return
        if not sound:
            return
        while self._queued_bytes + len(sound) > _MAX_QUEUED_BYTES and not self._chunks.empty():
            oldest = self._chunks.get_nowait()
            if oldest is not None:
                self._queued_bytes -= len(oldest)
                self.dropped_bytes += len(oldest)
        self._queued_bytes += len(sound)
        self._chunks.put_nowait(sound)
        self.sent += 1

    async def close(self) -> None:
        """Send what is queued, then close the connection, which frees the speaker."""
        if self._closing:
            return
        self._closing = True
        self._chunks.put_nowait(None)
        task = self._task
        if task is None:
            return
        try:
            if not task.done():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_FLUSH_TIMEOUT):
                        await self._body_done.wait()
        finally:
            # The station answers only when the connection goes: close it ourselves,
            # even when this close is itself cancelled (its caller went away).
            task.cancel()
        await asyncio.wait({task})

    async def _body(self) -> AsyncIterator[bytes]:
        try:
            yield _LEAD_IN
            while (chunk := await self._chunks.get()) is not None:
                self._queued_bytes -= len(chunk)
                yield chunk
        finally:
            self._body_done.set()

    async def _post(self, session: aiohttp.ClientSession, url: str, authorization: str) -> None:
        headers = {
            "Authorization": authorization,
            "Content-Type": "audio/basic",
            "Content-Length": _ANNOUNCED_LENGTH,
            "Cache-Control": "no-cache",
            # One talk per connection: a connection the station answered early still
            # owes it the rest of an endless body, so it is never reused.
            "Connection": "close",
        }
        try:
            async with session.post(
                url,
                data=self._body(),
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0),
            ) as response:
                self._status = response.status
                self._answered.set()
                _LOGGER.info("%s: the DoorBird ended the talk (%s)", self._name, response.status)
                self._error = TalkBackError("closed", f"the DoorBird answered {response.status}")
        except (aiohttp.ClientError, OSError) as err:
            if not self._closing:
                _LOGGER.info("%s: the talk connection broke: %r", self._name, err)
            self._error = TalkBackError("closed", f"the talk connection broke: {err!r}")
        finally:
            self._body_done.set()


async def open_audio_transmit(
    session: aiohttp.ClientSession,
    base_url: str,
    authorization: str,
    *,
    name: str,
    answer_window: float = DEFAULT_ANSWER_WINDOW,
) -> DoorBirdTalkChannel:
    """Take the station's speaker; :class:`TalkBusy` when another client transmits."""
    channel = DoorBirdTalkChannel(name)
    channel.start(session, f"{base_url}{TRANSMIT_PATH}", authorization)
    await channel.wait_for_answer(answer_window)
    return channel

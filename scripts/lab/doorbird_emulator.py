"""A DoorBird door station emulator: the LAN-2-LAN HTTP API calls Doorstep makes.

It follows DoorBird's public LAN-2-LAN API document (revision 0.36) and has never been
compared with a real DoorBird. What it serves, all behind HTTP basic auth:

- ``/bha-api/info.cgi``: firmware, MAC address (``1CCAE3...``) and model;
- ``/bha-api/image.cgi``: a JPEG, or 204 (no picture for this user now) while
  ``image_available`` is off;
- ``/bha-api/favorites.cgi``: list, ``action=save`` and ``action=remove`` (HTTP favorites);
- ``/bha-api/schedule.cgi``: list, POST of one input's entry, ``action=remove``;
- ``/bha-api/audio-transmit.cgi``: the speaker. One streamed POST of ``audio/basic``
  (G.711 µ-law, 8 kHz) at a time; a second client gets 503 while one talks. What each
  talk carried is kept, decoded to PCM, in :attr:`DoorBirdEmulator.talks` (and in a
  WAV file when ``speaker_wav`` is set), so tests can measure what the station heard.

Live video is a real RTSP server (``scripts/lab/rtsp_camera.py``, GStreamer) that the
caller runs at ``/mpeg/media.amp`` with the same credentials, with the station's
microphone beside the picture as G.711 µ-law (``--sound pcmu``). :meth:`ring` and
:meth:`motion` do what the station does on an event: call every enabled HTTP favorite
the schedule names for that input.

Run as a lab device (``python -m scripts.lab.doorbird_emulator --help``), it also starts
the RTSP server, advertises ``_axis-video._tcp.local.`` with a ``macaddress`` TXT record
as DoorBirds do (only ever on the lab's own interface), and offers the emulator's own
``POST /lab/ring`` and ``POST /lab/motion``: the button and the motion sensor, without
auth, which no real station has.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass, field
import hmac
import json
import logging
from pathlib import Path
from typing import Any, Final
import wave

import aiohttp
from aiohttp import web
import av
import numpy as np
from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from reference_doorbell.encoding import encode_jpeg

_LOGGER = logging.getLogger(__name__)

_MAX_BODY: Final = 64 * 1024


@dataclass(kw_only=True)
class DoorBirdEmulator:
    """One emulated station; :meth:`start` it, then read :attr:`port`."""

    username: str
    password: str
    host: str = "127.0.0.1"
    port: int = 0
    mac: str = "1CCAE3A1B2C3"
    device_type: str = "DoorBird D2101V"
    firmware: str = "000149"
    # Outputs already on the schedule as the station comes from the shop: a push to
    # the DoorBird app goes through DoorBird's cloud.
    cloud_push: bool = False
    favorites: dict[str, dict[str, dict[str, str]]] = field(
        default_factory=lambda: {"http": {}, "sip": {}}
    )
    schedule: list[dict[str, Any]] = field(default_factory=list)
    # What the station's own HTTP calls got back (status codes), newest last.
    calls: list[int] = field(default_factory=list)
    # Every finished talk's sound as 8 kHz mono PCM, oldest first; the last one is also
    # written to this WAV file when it is set.
    talks: list[np.ndarray[Any, np.dtype[np.int16]]] = field(default_factory=list)
    speaker_wav: Path | None = None
    talk_refusals: int = 0
    # Off: image.cgi answers 204, as for a user without "watch always" between rings.
    image_available: bool = True
    _talking: web.Request | None = field(default=None, repr=False)
    _talk_done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _runner: web.AppRunner | None = field(default=None, repr=False)
    _next_id: int = field(default=0, repr=False)
    _jpeg: bytes = field(default=b"", repr=False)

    async def start(self) -> None:
        """Listen on ``host``:``port`` (0 picks a free port)."""
        if self.cloud_push:
            self.schedule.append(
                {
                    "input": "doorbell",
                    "param": "1",
                    "output": [{"event": "notify", "param": "", "enabled": "1"}],
                }
            )
        self._jpeg = encode_jpeg(np.full((240, 320, 3), 90, dtype=np.uint8))
        app = web.Application(middlewares=[self._basic_auth], client_max_size=_MAX_BODY)
        app.router.add_get("/bha-api/info.cgi", self._info)
        app.router.add_get("/bha-api/image.cgi", self._image)
        app.router.add_get("/bha-api/favorites.cgi", self._favorites)
        app.router.add_get("/bha-api/schedule.cgi", self._schedule_get)
        app.router.add_post("/bha-api/schedule.cgi", self._schedule_post)
        app.router.add_post("/bha-api/audio-transmit.cgi", self._audio_transmit)
        app.router.add_post("/lab/ring", self._lab_ring)
        app.router.add_post("/lab/motion", self._lab_motion)
        # No lingering: the station drops the connection of a talk it refused rather than
        # reading the rest of its endless body.
        self._runner = web.AppRunner(app, access_log=None, lingering_time=0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def ring(self) -> list[int]:
        """Someone pressed the button: call what the schedule says for ``doorbell``."""
        return await self._fire("doorbell")

    async def motion(self) -> list[int]:
        """The motion sensor fired."""
        return await self._fire("motion")

    @property
    def talking(self) -> bool:
        """True while a client holds the speaker."""
        return self._talking is not None

    async def wait_for_talk_end(self, within: float = 10.0) -> None:
        """Until the current (or next) talk has ended and its sound is in :attr:`talks`."""
        async with asyncio.timeout(within):
            await self._talk_done.wait()
        self._talk_done.clear()

    def drop_talker(self) -> None:
        """The station goes away mid-talk: the talker's connection is cut."""
        request = self._talking
        if request is not None and request.transport is not None:
            request.transport.abort()

    def http_favorite_urls(self) -> list[str]:
        """Every HTTP favorite's URL."""
        return [fav["value"] for fav in self.favorites["http"].values()]

    async def _fire(self, input_name: str) -> list[int]:
        urls = [
            self.favorites["http"][output["param"]]["value"]
            for entry in self.schedule
            if entry.get("input") == input_name
            for output in entry.get("output", [])
            if output.get("event") == "http"
            and str(output.get("enabled", "1")) != "0"
            and output.get("param") in self.favorites["http"]
        ]
        statuses = []
        async with aiohttp.ClientSession() as session:
            for url in urls:
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
                        statuses.append(r.status)
                except (aiohttp.ClientError, TimeoutError) as err:
                    _LOGGER.info("DoorBird emulator: calling %s failed: %r", url, err)
                    statuses.append(0)
        self.calls.extend(statuses)
        return statuses

    async def _lab_ring(self, _request: web.Request) -> web.Response:
        return web.json_response(await self.ring())

    async def _lab_motion(self, _request: web.Request) -> web.Response:
        return web.json_response(await self.motion())

    @web.middleware
    async def _basic_auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/lab/"):
            response: web.StreamResponse = await handler(request)
            return response
        expected = aiohttp.encode_basic_auth(self.username, self.password)
        if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="BHA"'})
        answer: web.StreamResponse = await handler(request)
        return answer

    async def _info(self, _request: web.Request) -> web.Response:
        version = {
            "FIRMWARE": self.firmware,
            "BUILD_NUMBER": "16203985",
            "PRIMARY_MAC_ADDR": self.mac,
            "RELAYS": ["1"],
            "DEVICE-TYPE": self.device_type,
        }
        return web.json_response({"BHA": {"RETURNCODE": "1", "VERSION": [version]}})

    async def _image(self, _request: web.Request) -> web.Response:
        if not self.image_available:
            return web.Response(status=204)
        return web.Response(body=self._jpeg, content_type="image/jpeg")

    async def _favorites(self, request: web.Request) -> web.Response:
        query = request.query
        action = query.get("action")
        if action is None:
            return web.json_response(self.favorites)
        kind = query.get("type", "")
        if kind not in self.favorites:
            return web.Response(status=400)
        if action == "save":
            value, title = query.get("value", ""), query.get("title", "")
            if not value:
                return web.Response(status=400)
            fav_id = query.get("id")
            if fav_id is None:
                fav_id = str(self._next_id)
                self._next_id += 1
            self.favorites[kind][fav_id] = {"title": title, "value": value}
            return web.Response(headers={"favoriteid": fav_id})
        if action == "remove":
            if self.favorites[kind].pop(query.get("id", ""), None) is None:
                return web.Response(status=404)
            return web.Response()
        return web.Response(status=400)

    async def _audio_transmit(self, request: web.Request) -> web.Response:
        if request.content_type != "audio/basic" or self._talking is not None:
            if request.content_type == "audio/basic":
                self.talk_refusals += 1
            return web.Response(status=400 if request.content_type != "audio/basic" else 503)
        self._talking = request
        received = bytearray()
        try:
            # The client announces a length no talk reaches and ends by closing.
            while chunk := await request.content.readany():
                received += chunk
        except ConnectionError, aiohttp.ClientError, aiohttp.http_exceptions.HttpProcessingError:
            pass
        finally:
            self._talking = None
            self._keep_talk(bytes(received))
        return web.Response()

    def _keep_talk(self, mulaw: bytes) -> None:
        pcm = _decode_mulaw(mulaw)
        self.talks.append(pcm)
        if self.speaker_wav is not None:
            # Written aside, then renamed: a reader never sees half a file.
            partial = self.speaker_wav.with_name(self.speaker_wav.name + ".partial")
            with wave.open(str(partial), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(MULAW_RATE)
                out.writeframes(pcm.astype("<i2").tobytes())
            partial.replace(self.speaker_wav)
        self._talk_done.set()

    async def _schedule_get(self, request: web.Request) -> web.Response:
        if request.query.get("action") == "remove":
            key = (request.query.get("input"), request.query.get("param", ""))
            self.schedule = [e for e in self.schedule if (e.get("input"), e.get("param")) != key]
            return web.Response()
        return web.json_response(self.schedule)

    async def _schedule_post(self, request: web.Request) -> web.Response:
        try:
            entry = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400)
        if not isinstance(entry, dict) or not isinstance(entry.get("output"), list):
            return web.Response(status=400)
        key = (entry.get("input"), entry.get("param", ""))
        self.schedule = [e for e in self.schedule if (e.get("input"), e.get("param")) != key]
        self.schedule.append(entry)
        return web.Response()


MULAW_RATE: Final = 8000


def _decode_mulaw(mulaw: bytes) -> np.ndarray[Any, np.dtype[np.int16]]:
    """G.711 µ-law bytes as 16-bit PCM, decoded by FFmpeg (through PyAV)."""
    if not mulaw:
        return np.zeros(0, dtype=np.int16)
    decoder = av.CodecContext.create("pcm_mulaw", "r")
    assert isinstance(decoder, av.AudioCodecContext)
    decoder.sample_rate = MULAW_RATE
    decoder.layout = "mono"
    frames = [frame.to_ndarray().reshape(-1) for frame in decoder.decode(av.Packet(mulaw))]
    return np.concatenate(frames).astype(np.int16) if frames else np.zeros(0, dtype=np.int16)


SERVICE_TYPE: Final = "_axis-video._tcp.local."
RTSP_SCRIPT: Final = Path(__file__).with_name("rtsp_camera.py")


async def _advertise(station: DoorBirdEmulator, name: str) -> AsyncZeroconf:
    zeroconf = AsyncZeroconf(interfaces=[station.host])
    info = ServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        port=station.port,
        properties={"macaddress": station.mac},
        server=f"bha-{station.mac.lower()}.local.",
        parsed_addresses=[station.host],
    )
    await zeroconf.async_register_service(info)
    return zeroconf


async def _serve(args: argparse.Namespace) -> None:
    station = DoorBirdEmulator(
        username=args.username,
        password=args.password,
        host=args.host,
        port=args.port,
        cloud_push=args.cloud_push,
        speaker_wav=args.speaker_wav,
    )
    await station.start()
    rtsp = await asyncio.create_subprocess_exec(
        "/usr/bin/python3",
        str(RTSP_SCRIPT),
        "--address", args.host,
        "--port", str(args.rtsp_port),
        "--path", "/mpeg/media.amp",
        "--username", args.username,
        "--password", args.password,
        "--sound", "pcmu",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert rtsp.stdout is not None
    ready = await rtsp.stdout.readline()
    if not ready.startswith(b"ready "):
        raise SystemExit(f"the RTSP server did not start: {ready!r}")
    zeroconf = await _advertise(station, args.name) if args.advertise else None
    print(f"ready {station.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        if zeroconf is not None:
            await zeroconf.async_close()
        rtsp.terminate()
        await rtsp.wait()
        await station.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="An emulated DoorBird door station")
    parser.add_argument("--host", required=True, help="the address to listen on")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--rtsp-port", type=int, default=554)
    parser.add_argument("--username", default="ghxxxx0001")
    parser.add_argument("--password", required=True)
    parser.add_argument("--name", default="DoorBird")
    parser.add_argument("--advertise", action="store_true", help="announce it by mDNS")
    parser.add_argument("--cloud-push", action="store_true")
    parser.add_argument(
        "--speaker-wav", type=Path, help="write what each talk played to this WAV file"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()

"""A DoorBird door station emulator: the LAN-2-LAN HTTP API calls Doorstep makes.

It follows DoorBird's public LAN-2-LAN API document (revision 0.36) and has never been
compared with a real DoorBird. What it serves, all behind HTTP basic auth:

- ``/bha-api/info.cgi``: firmware, MAC address (``1CCAE3...``) and model;
- ``/bha-api/image.cgi``: a JPEG;
- ``/bha-api/favorites.cgi``: list, ``action=save`` and ``action=remove`` (HTTP favorites);
- ``/bha-api/schedule.cgi``: list, POST of one input's entry, ``action=remove``.

Live video is a real RTSP server (``scripts/lab/rtsp_camera.py``, GStreamer) that the
caller runs at ``/mpeg/media.amp`` with the same credentials. :meth:`ring` and
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

import aiohttp
from aiohttp import web
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
        app.router.add_post("/lab/ring", self._lab_ring)
        app.router.add_post("/lab/motion", self._lab_motion)
        self._runner = web.AppRunner(app, access_log=None)
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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()

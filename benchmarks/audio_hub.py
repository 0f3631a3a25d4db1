"""The hub's sound path without Home Assistant, in its own process (audio benchmark).

Doorbell -> ``StreamSource(on_audio=...)`` -> ``AudioRelay`` -> one ``WebRTCSession``
per listener, and each session's microphone -> ``TalkForwarder`` -> the doorbell's
``/v1/talk``: the objects the integration wires up. A loopback HTTP API stands in for
Home Assistant's signalling (``/offer``, ``/talk``, ``/close``, ``/stats``).

It also measures what the hub itself adds: the time each Opus packet waits between the
relay receiving it and aiortc taking it for a listener, and the time between aiortc
handing the hub a decoded frame of the talker's voice and the hub sending its Opus
packet to the doorbell.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from typing import Any

import aiohttp
from aiohttp import web

from .common import announce, load_rooms_without_home_assistant, patch_loopback_ice, summary

load_rooms_without_home_assistant()

from custom_components.doorstep.device import DoorstepDoorbell  # noqa: E402
from custom_components.doorstep.device.client import DoorstepClient  # noqa: E402
from custom_components.doorstep.device.talk import WebSocketTalkChannel  # noqa: E402
from custom_components.doorstep.media import (  # noqa: E402
    MediaRelay,
    NetworkPolicy,
    SessionManager,
    StreamSource,
    WebRTCError,
)
from custom_components.doorstep.media.audio import (  # noqa: E402
    AudioRelay,
    AudioSubscription,
    TalkFloor,
    TalkForwarder,
)
from custom_components.doorstep.media.packet import AudioPacket  # noqa: E402

# --- instrumentation (benchmark only) ------------------------------------------------

_published: dict[int, float] = {}
LISTENER_DELAYS: list[float] = []
TALK_DELAYS: list[float] = []
_last_frame_at: dict[int, float] = {}


def _instrument(relay: AudioRelay) -> None:
    publish = relay.publish

    def timed_publish(packet: AudioPacket) -> None:
        _published[id(packet)] = time.monotonic()
        if len(_published) > 4096:
            _published.pop(next(iter(_published)))
        publish(packet)

    relay.publish = timed_publish  # type: ignore[method-assign]
    get = AudioSubscription.get

    async def timed_get(self: AudioSubscription) -> AudioPacket:
        packet = await get(self)
        at = _published.get(id(packet))
        if at is not None:
            LISTENER_DELAYS.append(time.monotonic() - at)
        return packet

    AudioSubscription.get = timed_get  # type: ignore[method-assign]
    init = TalkForwarder.__init__

    def timed_init(self: TalkForwarder, track: Any, name: str) -> None:
        recv = track.recv

        async def timed_recv() -> Any:
            frame = await recv()
            _last_frame_at[0] = time.monotonic()
            return frame

        track.recv = timed_recv
        init(self, track, name)

    TalkForwarder.__init__ = timed_init  # type: ignore[method-assign]
    send = WebSocketTalkChannel.send

    async def timed_send(self: WebSocketTalkChannel, packet: bytes) -> None:
        at = _last_frame_at.get(0)
        await send(self, packet)
        if at is not None:
            TALK_DELAYS.append(time.monotonic() - at)

    WebSocketTalkChannel.send = timed_send  # type: ignore[method-assign]


class Hub:
    """One doorbell's relays, talk floor and sessions."""

    def __init__(self, doorbell: DoorstepDoorbell, client: DoorstepClient) -> None:
        self.audio = AudioRelay("bench")
        _instrument(self.audio)
        self.talk = TalkFloor(lambda sid: doorbell.open_talk(name=sid))
        self.relay = MediaRelay(
            lambda: StreamSource.from_doorbell(
                client, name="bench", on_audio=self.audio.publish
            ).packets(),
            name="bench",
            grace_period=2.0,
        )
        self.sessions = SessionManager(max_sessions=64, policy=NetworkPolicy.loopback_only())

    async def offer(self, request: web.Request) -> web.Response:
        body = await request.json()
        session = self.sessions.create(self.relay, audio=self.audio, talk=self.talk)
        try:
            answer = await session.handle_offer(body["sdp"])
        except WebRTCError as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response({"id": session.session_id, "sdp": answer})

    async def talk_command(self, request: web.Request) -> web.Response:
        body = await request.json()
        session = self.sessions.get(body["id"])
        if session is None:
            return web.json_response({"error": "no such session"}, status=404)
        for _ in range(100):  # the browser's microphone track arrives after connecting
            if session.forwarder is not None:
                break
            await asyncio.sleep(0.05)
        if body["talking"]:
            await session.start_talking()
        else:
            await session.stop_talking()
        return web.json_response({"talking": session.talking})

    async def close(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self.sessions.close(body["id"])
        return web.json_response({"ok": True})

    async def stats(self, request: web.Request) -> web.Response:
        reset = request.query.get("reset") == "1"
        data = {
            "listener_delay_s": summary(LISTENER_DELAYS),
            "talk_delay_s": summary(TALK_DELAYS),
            "audio": {
                "packets_in": self.audio.stats.packets_in,
                "packets_out": self.audio.stats.packets_out,
                "dropped": self.audio.stats.dropped,
                "transcoded": self.audio.stats.transcoded,
            },
        }
        if reset:
            LISTENER_DELAYS.clear()
            TALK_DELAYS.clear()
        return web.json_response(data)


async def run(args: argparse.Namespace) -> None:
    patch_loopback_ice()
    async with aiohttp.ClientSession() as http:
        client = DoorstepClient(http, "127.0.0.1", args.doorbell_port, fingerprint=args.fp)
        client.set_token(await client.pair(args.code, "bench audio hub"))
        doorbell = DoorstepDoorbell(client)
        await doorbell.connect()
        hub = Hub(doorbell, client)
        app = web.Application()
        app.router.add_post("/offer", hub.offer)
        app.router.add_post("/talk", hub.talk_command)
        app.router.add_post("/close", hub.close)
        app.router.add_get("/stats", hub.stats)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        announce(port=int(runner.addresses[0][1]))
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        await hub.sessions.close_all()
        await hub.relay.close()
        hub.audio.close()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--doorbell-port", type=int, required=True)
    parser.add_argument("--fp", required=True)
    parser.add_argument("--code", required=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

"""The hub's media path without Home Assistant, in its own process.

Doorbell -> ``StreamSource`` -> source ``MediaRelay`` -> ``live_view_source`` -> live
``MediaRelay`` -> one ``WebRTCSession`` per viewer, the same objects the integration
wires up in ``__init__.py`` and ``camera.py``. ``--transcode`` forces the transcoding
fallback on, as if the doorbell sent a profile browsers cannot play. ``--rtsp-url``
takes the stream from an RTSP camera instead, through the RTSP driver's ``StreamSpec``,
as the integration does for a camera added by hand. A small
loopback HTTP API stands in for Home Assistant's websocket signalling: viewers POST
their offer and get the answer (aiortc gathers every candidate before answering, so no
trickle is needed on loopback).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict
import signal
from typing import Any

import aiohttp
from aiohttp import web

from .common import announce, load_rooms_without_home_assistant, patch_loopback_ice

load_rooms_without_home_assistant()

from custom_components.doorstep.device import RtspCamera, StreamSpec  # noqa: E402
from custom_components.doorstep.device.client import DoorstepClient  # noqa: E402
from custom_components.doorstep.media import (  # noqa: E402
    MediaRelay,
    NetworkPolicy,
    SessionManager,
    StreamSource,
    Transcoder,
    WebRTCError,
    live_view_source,
)


class Hub:
    """One doorbell's relay and its viewers' sessions."""

    def __init__(
        self, upstream: DoorstepClient | StreamSpec, grace_period: float, transcode: bool
    ) -> None:
        self.source: StreamSource | None = None
        self.transcoder: Transcoder | None = None

        def open_source() -> Any:
            # A new source per upstream start, as the integration does.
            if isinstance(upstream, StreamSpec):
                assert upstream.url is not None
                self.source = StreamSource.from_url(
                    upstream.url, name="bench", options=upstream.options
                )
            else:
                self.source = StreamSource.from_doorbell(upstream, name="bench")
            return self.source.packets()

        def remember(transcoder: Transcoder) -> None:
            self.transcoder = transcoder

        self.source_relay = MediaRelay(open_source, name="bench source", grace_period=grace_period)
        self.relay = MediaRelay(
            live_view_source(
                self.source_relay, name="bench", force_transcode=transcode, on_transcoder=remember
            ),
            name="bench",
            grace_period=grace_period,
        )
        self.sessions = SessionManager(max_sessions=64, policy=NetworkPolicy.loopback_only())

    async def offer(self, request: web.Request) -> web.Response:
        body = await request.json()
        session = self.sessions.create(self.relay)
        try:
            answer = await session.handle_offer(body["sdp"])
        except WebRTCError as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response({"id": session.session_id, "sdp": answer})

    async def close(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self.sessions.close(body["id"])
        return web.json_response({"ok": True})

    async def stats(self, _request: web.Request) -> web.Response:
        subscriptions = []
        for session in self.sessions.sessions():
            track = session.track
            if track is None:
                continue
            stats = track.subscription.stats
            subscriptions.append(
                {
                    "id": session.session_id,
                    "connected": session.connected,
                    "delivered": stats.delivered,
                    "dropped": stats.dropped,
                    "overflows": stats.overflows,
                    "keyframe_requests": stats.keyframe_requests,
                    "queued": track.subscription.queued_packets,
                }
            )
        source = self.source.stats if self.source is not None else None
        transcode = asdict(self.transcoder.stats) if self.transcoder is not None else None
        return web.json_response(
            {
                "viewers": self.relay.viewer_count,
                "relay_packets": self.relay.packets_received,
                "upstream_running": self.relay.upstream_running,
                "upstream_starts": self.relay.upstream_starts,
                "source_packets": source.packets if source else 0,
                "source_bytes": source.bytes if source else 0,
                "sessions": subscriptions,
                "transcode": transcode,
            }
        )


async def run(args: argparse.Namespace) -> None:
    patch_loopback_ice()
    async with aiohttp.ClientSession() as http:
        upstream: DoorstepClient | StreamSpec
        if args.rtsp_url is not None:
            camera = RtspCamera(args.rtsp_url, device_id="bench-rtsp", name="Bench camera")
            await camera.connect()
            upstream = camera.stream()
        else:
            upstream = DoorstepClient(http, "127.0.0.1", args.doorbell_port, fingerprint=args.fp)
            upstream.set_token(await upstream.pair(args.code, "bench hub"))
        hub = Hub(upstream, args.grace, args.transcode)
        app = web.Application()
        app.router.add_post("/offer", hub.offer)
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
        await hub.source_relay.close()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--doorbell-port", type=int)
    parser.add_argument("--fp")
    parser.add_argument("--code")
    parser.add_argument("--rtsp-url", help="an RTSP camera instead of the Doorstep doorbell")
    parser.add_argument("--grace", type=float, default=2.0)
    parser.add_argument(
        "--transcode", action="store_true", help="force the transcoding fallback on"
    )
    args = parser.parse_args()
    if args.rtsp_url is None and None in (args.doorbell_port, args.fp, args.code):
        parser.error("give --doorbell-port, --fp and --code, or --rtsp-url")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

"""The benchmark's doorbell: the reference doorbell in its own process, on loopback.

``--mode replay`` (the default) feeds the reference ``VideoPipeline`` from a clip
encoded once with the reference encoder (see :mod:`benchmarks.clip`); ``--mode live``
runs the reference doorbell exactly as shipped (live x264 encode, real capture times).

Besides the doorbell's own HTTPS API it serves, on a second loopback port, what the
peers and the orchestrator need: the same stream without TLS or token (for Home
Assistant's ``generic`` camera and the Janus feeder), the current pairing code, and the
emission log. Prints one JSON line when ready.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import signal

from aiohttp import web

from reference_doorbell.doorbell import Doorbell, DoorbellConfig
from reference_doorbell.encoding import EncoderSettings
from reference_doorbell.video import VideoPipeline

from .clip import BlankSource, EmissionLog, ReplayEncoder
from .common import announce


def _plain_app(bell: Doorbell, log: EmissionLog) -> web.Application:
    async def stream(request: web.Request) -> web.StreamResponse:
        viewer = bell.video.add_viewer()
        response = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            while (data := await viewer.next()) is not None:
                await response.write(data)
        except ConnectionError:
            pass
        finally:
            bell.video.remove_viewer(viewer)
        return response

    async def code(_request: web.Request) -> web.Response:
        return web.json_response({"code": bell.pairing_code})

    async def emissions(_request: web.Request) -> web.Response:
        return web.json_response({"entries": list(log.entries)})

    app = web.Application()
    app.router.add_get("/stream.ts", stream)
    app.router.add_get("/code", code)
    app.router.add_get("/emissions", emissions)
    return app


async def run(args: argparse.Namespace) -> None:
    config = DoorbellConfig(
        name="Bench door",
        state_dir=args.state_dir,
        host="127.0.0.1",
        port=0,
        advertise=False,
        width=args.width,
        height=args.height,
        fps=args.fps,
    )
    bell = Doorbell(config)
    log = EmissionLog()
    if args.mode == "replay":
        settings = EncoderSettings(width=args.width, height=args.height, fps=args.fps)
        clip = Path(args.clip)
        # VideoPipeline takes its encoder as a factory: the one seam the doorbell offers.
        bell.video = VideoPipeline(
            BlankSource(),
            settings,
            blockcode=False,
            encoder_factory=lambda s: ReplayEncoder(s, clip, log),  # type: ignore[arg-type,return-value]
        )
    await bell.start()
    runner = web.AppRunner(_plain_app(bell, log), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.plain_port)
    await site.start()
    plain_port = int(runner.addresses[0][1])
    announce(
        port=bell.port,
        fingerprint=bell.fingerprint,
        code=bell.pairing_code,
        plain_port=plain_port,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    bell.video.close_viewers()
    await runner.cleanup()
    await bell.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--mode", choices=("replay", "live"), default="replay")
    parser.add_argument("--clip", default="")
    parser.add_argument("--plain-port", type=int, default=0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

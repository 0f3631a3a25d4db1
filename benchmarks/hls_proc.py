"""An LL-HLS viewer of Home Assistant's ``stream`` integration, as fast as LL-HLS allows.

It asks Home Assistant for the camera's HLS URL (websocket ``camera/stream``), then
follows the playlist the way a low-latency player does at its most eager: it requests
each part by its preload hint, which Home Assistant answers the moment the part exists
(a blocking request), and decodes it at once. A real player (hls.js) also holds back
``PART-HOLD-BACK`` (two part targets) and buffers, so real latency is higher than this;
the figure is a lower bound for HA's LL-HLS.

Frames are recorded like the aiortc viewers' (counter, code time, receive time).
"""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path
import re
import signal
from typing import Any

import aiohttp
import av

from scripts.lab.hass import HassClient

from .common import now_us, read_frame_code, write_json

_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="\./segment/(\d+)\.(\d+)\.m4s"')
_SEGMENT_PART = re.compile(r'#EXT-X-PART:.*URI="\./segment/(\d+)\.(\d+)\.m4s"')


class PartDecoder:
    """Decodes fragmented-MP4 parts that share one init segment."""

    def __init__(self, init: bytes) -> None:
        self._init = init
        with av.open(io.BytesIO(init), "r", format="mp4") as container:
            extradata = container.streams.video[0].codec_context.extradata
        self._decoder = av.CodecContext.create("h264", "r")
        self._decoder.extradata = extradata

    def decode(self, part: bytes) -> list[av.VideoFrame]:
        frames: list[av.VideoFrame] = []
        with av.open(io.BytesIO(self._init + part), "r", format="mp4") as container:
            for packet in container.demux(video=0):
                if packet.size:
                    frames.extend(self._decoder.decode(packet))
        return frames


async def follow(
    http: aiohttp.ClientSession, base: str, record: dict[str, Any], stop: asyncio.Event
) -> None:
    """Fetch and decode parts from ``base`` (the playlist's directory) until ``stop``."""
    async with http.get(f"{base}/playlist.m3u8") as resp:
        playlist = await resp.text()
    record["playlist"] = playlist[:4000]
    async with http.get(f"{base}/init.mp4") as resp:
        decoder = PartDecoder(await resp.read())
    # Start at part 0 of the newest segment: segments start at a keyframe, parts do not.
    hint = _HINT.search(playlist)
    parts = _SEGMENT_PART.findall(playlist)
    if hint is None:
        raise RuntimeError(f"no preload hint in the playlist:\n{playlist}")
    sequence = int(hint.group(1))
    part = 0 if parts else int(hint.group(2))
    while not stop.is_set():
        async with http.get(f"{base}/segment/{sequence}.{part}.m4s") as resp:
            status = resp.status
            body = await resp.read() if status == 200 else b""
        if status == 416:  # the segment ended before this part: next segment
            sequence, part = sequence + 1, 0
            continue
        if status != 200:
            record["errors"].append(f"part {sequence}.{part}: HTTP {status}")
            await asyncio.sleep(0.1)
            continue
        record["parts"] += 1
        for frame in decoder.decode(body):
            at = now_us()
            if record["first_frame_us"] is None:
                record["first_frame_us"] = at
            code = read_frame_code(frame)
            if code is None:
                record["undecodable"] += 1
            else:
                record["frames"].append([code[0], code[1], at])
        part += 1


async def run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    record: dict[str, Any] = {
        "name": "ll-hls",
        "decode": True,
        "join_us": now_us(),
        "first_frame_us": None,
        "frames": [],
        "parts": 0,
        "undecodable": 0,
        "errors": [],
        "error": None,
    }
    async with aiohttp.ClientSession() as http:
        client = HassClient(session=http, base_url=args.base, token=args.token)
        ws = await client.websocket()
        try:
            answer = await ws.call("camera/stream", entity_id=args.entity, format="hls")
        finally:
            await ws.close()
        master = f"{args.base}{answer['url']}"
        base = master.rsplit("/", 1)[0]
        task = loop.create_task(follow(http, base, record, stop))
        await stop.wait()
        task.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
        if isinstance(results[0], Exception):
            record["error"] = f"{type(results[0]).__name__}: {results[0]}"
    record["ttff_s"] = (
        (record["first_frame_us"] - record["join_us"]) / 1e6 if record["first_frame_us"] else None
    )
    write_json(Path(args.out), {"mode": "ll-hls", "viewers": [record]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--entity", required=True)
    parser.add_argument("--out", required=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

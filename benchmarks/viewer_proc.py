"""Viewer processes: aiortc receivers of the hub or of Janus, and the direct reader.

Modes:

* ``hub``: ``--count`` aiortc peers watch the hub. The first ``--decode`` of them
  decode every frame and read its block code (the latency probes); the others only
  count the frames aiortc's jitter buffer assembles (decoding 16 streams of 1080p30 in
  Python would need several cores, and the viewers are the instrument, not the system
  under test). Each viewer joins after a random delay, so at a random GOP phase.
* ``joinloop``: one decoding peer joins, waits for its first picture, leaves, and
  does it again at a random GOP phase: the warm time-to-first-frame sample.
* ``janus``: like ``hub``, but the peers watch Janus's streaming plugin.
* ``direct``: the baseline. Reads the doorbell's stream with the hub's own
  ``StreamSource`` (PyAV demux) and decodes it with PyAV, with no relay and no WebRTC.

Every viewer records wall-clock microseconds (the clock the doorbell stamps with) and
the process writes everything to ``--out`` when it gets SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import itertools
from pathlib import Path
import queue
import random
import signal
from typing import Any
import uuid

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError
import aiortc.rtcrtpreceiver
import av

from .common import (
    load_rooms_without_home_assistant,
    now_us,
    patch_loopback_ice,
    read_frame_code,
    write_json,
)

type Signal = Callable[[RTCPeerConnection], Awaitable[Callable[[], Awaitable[None]]]]


def _counting_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: Any,
) -> None:
    """Replaces aiortc's decoder thread in counting viewers: no decode, one marker per
    assembled frame (RTP timestamp, arrival time, size)."""
    while True:
        task = input_q.get()
        if task is None:
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
            return
        _codec, encoded = task
        marker = ("count", int(encoded.timestamp), now_us(), len(encoded.data))
        asyncio.run_coroutine_threadsafe(output_q.put(marker), loop)


_real_worker = aiortc.rtcrtpreceiver.decoder_worker
_counting_pcs: set[int] = set()


def _select_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: Any,
) -> None:
    if id(output_q) in _counting_pcs:
        _counting_worker(loop, input_q, output_q, decode_error)
    else:
        _real_worker(loop, input_q, output_q, decode_error)


class MarkerJitterBuffer(JitterBuffer):
    """Completes a video frame at its marker-bit packet, as browsers' receivers do.

    aiortc's own buffer hands a frame to the decoder only when the first packet of the
    *next* frame arrives, which adds one frame interval (33 ms at 30 fps) to every
    aiortc viewer's latency; that delay belongs to the viewer, not to the hub.
    """

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if frame is None and packet.marker:
            frame = self._complete_at(packet)
        return pli, frame

    def _complete_at(self, marker: Any) -> JitterFrame | None:
        packets = []
        origin = self._origin
        if origin is None:
            return None
        for count in range(self.capacity):
            packet = self._packets[(origin + count) % self.capacity]
            if packet is None or packet.timestamp != marker.timestamp:
                return None  # a gap, or an older frame still waiting: aiortc's rules
            packets.append(packet)
            if packet.sequence_number == marker.sequence_number:
                self.remove(count + 1)
                return JitterFrame(
                    b"".join(getattr(p, "_data", b"") for p in packets), marker.timestamp
                )
        return None


@dataclass
class ViewerRecord:
    """What one viewer saw."""

    name: str
    decode: bool
    join_us: int = 0
    answer_us: int | None = None
    first_frame_us: int | None = None
    # decode: [counter, code_time_us, receive_us]; count: [rtp_timestamp, receive_us, bytes]
    frames: list[list[int]] = field(default_factory=list)
    undecodable: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "decode": self.decode,
            "join_us": self.join_us,
            "answer_us": self.answer_us,
            "first_frame_us": self.first_frame_us,
            "ttff_s": (self.first_frame_us - self.join_us) / 1e6
            if self.first_frame_us is not None
            else None,
            "frames": self.frames,
            "undecodable": self.undecodable,
            "error": self.error,
        }


async def receive(pc: RTCPeerConnection, record: ViewerRecord, first: asyncio.Event) -> None:
    """Record every frame until the track ends."""
    track = pc.getReceivers()[0].track
    while True:
        try:
            item = await track.recv()
        except MediaStreamError:
            return
        at = now_us()
        if record.first_frame_us is None:
            record.first_frame_us = at
            first.set()
        if isinstance(item, tuple):
            record.frames.append([item[1], item[2], item[3]])
            continue
        code = read_frame_code(item) if isinstance(item, av.VideoFrame) else None
        if code is None:
            record.undecodable += 1
        else:
            record.frames.append([code[0], code[1], at])


async def watch(
    record: ViewerRecord,
    signal_fn: Signal,
    stop: asyncio.Event,
    *,
    offerer: bool = True,
    first: asyncio.Event | None = None,
) -> ViewerRecord:
    """One aiortc peer from join to ``stop``; ``first`` is set at its first frame."""
    record.join_us = now_us()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    first = first or asyncio.Event()
    receiver: asyncio.Task[None] | None = None

    @pc.on("track")
    def on_track(track: Any) -> None:
        nonlocal receiver
        if not record.decode:
            # Before aiortc starts the decoder thread, which happens once DTLS is up.
            _counting_pcs.add(id(track._queue))
        if receiver is None:
            receiver = asyncio.get_running_loop().create_task(receive(pc, record, first))

    hangup: Callable[[], Awaitable[None]] | None = None
    try:
        if offerer:
            pc.addTransceiver("video", direction="recvonly")
        hangup = await signal_fn(pc)
        record.answer_us = now_us()
        await stop.wait()
    except Exception as err:
        record.error = f"{type(err).__name__}: {err}"
    finally:
        if hangup is not None:
            with contextlib.suppress(Exception):
                await hangup()
        await pc.close()
        if receiver is not None:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
    return record


def hub_signal(http: aiohttp.ClientSession, hub: str) -> Signal:
    async def signal_fn(pc: RTCPeerConnection) -> Callable[[], Awaitable[None]]:
        await pc.setLocalDescription(await pc.createOffer())
        async with http.post(f"{hub}/offer", json={"sdp": pc.localDescription.sdp}) as resp:
            body = await resp.json()
        if "error" in body:
            raise RuntimeError(body["error"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="answer"))

        async def hangup() -> None:
            async with http.post(f"{hub}/close", json={"id": body["id"]}) as resp:
                await resp.read()

        return hangup

    return signal_fn


def janus_signal(http: aiohttp.ClientSession, janus: str, mountpoint: int) -> Signal:
    """Janus's HTTP API: create a session, attach the streaming plugin, ``watch``
    (Janus offers), answer with ``start``; events arrive by long poll."""

    async def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": uuid.uuid4().hex}
        async with http.post(f"{janus}{path}", json=body) as resp:
            answer: dict[str, Any] = await resp.json()
        if answer.get("janus") == "error":
            raise RuntimeError(f"janus: {answer}")
        return answer

    async def signal_fn(pc: RTCPeerConnection) -> Callable[[], Awaitable[None]]:
        session = (await call("", {"janus": "create"}))["data"]["id"]
        handle = (
            await call(f"/{session}", {"janus": "attach", "plugin": "janus.plugin.streaming"})
        )["data"]["id"]
        await call(
            f"/{session}/{handle}",
            {"janus": "message", "body": {"request": "watch", "id": mountpoint}},
        )
        offer: dict[str, Any] | None = None
        while offer is None:
            async with http.get(f"{janus}/{session}?maxev=1") as resp:
                event = await resp.json()
            for item in event if isinstance(event, list) else [event]:
                if "jsep" in item:
                    offer = item["jsep"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await call(
            f"/{session}/{handle}",
            {
                "janus": "message",
                "body": {"request": "start"},
                "jsep": {"type": "answer", "sdp": pc.localDescription.sdp},
            },
        )

        async def keepalive() -> None:
            while True:
                async with http.get(f"{janus}/{session}?maxev=10") as resp:
                    await resp.read()

        poller = asyncio.get_running_loop().create_task(keepalive())

        async def hangup() -> None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
            await call(f"/{session}", {"janus": "destroy"})

        return hangup

    return signal_fn


async def run_viewers(args: argparse.Namespace, stop: asyncio.Event) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        if args.mode == "janus":
            signal_fn = janus_signal(http, args.url, args.mountpoint)
        else:
            signal_fn = hub_signal(http, args.url)
        offerer = args.mode != "janus"

        async def one(index: int) -> ViewerRecord:
            await asyncio.sleep(random.uniform(0, args.join_spread))
            record = ViewerRecord(f"{args.name}-{index}", index < args.decode)
            return await watch(record, signal_fn, stop, offerer=offerer)

        records = await asyncio.gather(*(one(i) for i in range(args.count)))
    return {"viewers": [r.to_json() for r in records]}


async def run_joinloop(args: argparse.Namespace, stop: asyncio.Event) -> dict[str, Any]:
    joins: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        janus = args.via == "janus"
        signal_fn = (
            janus_signal(http, args.url, args.mountpoint) if janus else hub_signal(http, args.url)
        )
        for index in itertools.count():
            if stop.is_set() or index >= args.joins:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stop.wait(), args.gap_min + random.uniform(0.0, args.join_spread)
                )
            if stop.is_set():
                break
            leave, first = asyncio.Event(), asyncio.Event()
            record = ViewerRecord(f"join-{index}", True)
            task = asyncio.get_running_loop().create_task(
                watch(record, signal_fn, leave, first=first, offerer=not janus)
            )
            # Leave as soon as the first picture is there (or give up after 10 s).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first.wait(), 10)
            leave.set()
            await task
            joins.append({k: v for k, v in record.to_json().items() if k != "frames"})
    return {"joins": joins}


async def run_direct(args: argparse.Namespace, stop: asyncio.Event) -> dict[str, Any]:
    load_rooms_without_home_assistant()
    from custom_components.doorstep.device.client import DoorstepClient
    from custom_components.doorstep.media import StreamSource

    record = ViewerRecord("direct", True, join_us=now_us())
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{args.plain}/code") as resp:
            code = (await resp.json())["code"]
        client = DoorstepClient(http, "127.0.0.1", args.doorbell_port, fingerprint=args.fp)
        client.set_token(await client.pair(code, "bench direct reader"))
        source = StreamSource.from_doorbell(client, name="direct")
        decoder = av.CodecContext.create("h264", "r")

        async def read() -> None:
            async for packet in source.packets():
                for frame in decoder.decode(av.Packet(packet.payload)):
                    at = now_us()
                    if record.first_frame_us is None:
                        record.first_frame_us = at
                    code = read_frame_code(frame)
                    if code is None:
                        record.undecodable += 1
                    else:
                        record.frames.append([code[0], code[1], at])

        reader = asyncio.get_running_loop().create_task(read())
        await stop.wait()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    return {"viewers": [record.to_json()]}


async def main_async(args: argparse.Namespace) -> None:
    patch_loopback_ice(args.ice_address)
    aiortc.rtcrtpreceiver.decoder_worker = _select_worker
    if args.marker:
        aiortc.rtcrtpreceiver.JitterBuffer = MarkerJitterBuffer  # type: ignore[attr-defined]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runners = {
        "hub": run_viewers,
        "janus": run_viewers,
        "joinloop": run_joinloop,
        "direct": run_direct,
    }
    result = await runners[args.mode](args, stop)
    write_json(Path(args.out), {"mode": args.mode, **result})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("hub", "janus", "joinloop", "direct"))
    parser.add_argument("--url", default="")
    parser.add_argument("--plain", default="")
    parser.add_argument("--doorbell-port", type=int, default=0)
    parser.add_argument("--fp", default="")
    parser.add_argument("--ice-address", default="127.0.0.1")
    parser.add_argument("--via", choices=("hub", "janus"), default="hub")
    parser.add_argument("--mountpoint", type=int, default=1)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--decode", type=int, default=1)
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--gap-min", type=float, default=0.2)
    parser.add_argument("--join-spread", type=float, default=2.0)
    parser.add_argument("--name", default="v")
    parser.add_argument(
        "--marker", action="store_true", help="complete frames at the marker bit (browser-like)"
    )
    parser.add_argument("--out", required=True)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

"""A WebRTC viewer in its own process, for tests: prints its offer, reads the answer,
then prints the burned-in frame counters it decodes, one JSON line each.

Run as ``python tests/lib/process_viewer.py FRAMES``; it speaks JSON lines on
stdin/stdout and gathers ICE candidates on loopback only.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from unittest.mock import patch

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from reference_doorbell.blockcode import decode_blockcode


async def main(frames_wanted: int) -> None:
    """Offer, accept, decode, report, leave."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    counters: list[int] = []
    done = asyncio.Event()

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def read() -> None:
            while len(counters) < frames_wanted:
                frame = await track.recv()
                code = decode_blockcode(frame.to_ndarray(format="rgb24"))
                if code is not None:
                    counters.append(code[0])
            done.set()

        asyncio.get_running_loop().create_task(read())

    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    print(json.dumps({"offer": pc.localDescription.sdp}), flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await pc.setRemoteDescription(RTCSessionDescription(json.loads(line)["answer"], "answer"))
    try:
        async with asyncio.timeout(20):
            await done.wait()
    finally:
        print(json.dumps({"counters": counters}), flush=True)
        await pc.close()


if __name__ == "__main__":
    with patch("aioice.ice.get_host_addresses", return_value=["127.0.0.1"]):
        asyncio.run(main(int(sys.argv[1])))

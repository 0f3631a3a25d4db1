"""Try every route to a doorbell's footage, as one client, and report what arrived.

Run inside a lab namespace (``ip netns exec <ns> python -m scripts.lab.probe ...``) as
the client whose view of the hub is being tested: a stranger on the internet, or a
household member at home, directly or through a reverse proxy. It holds the owner's
long-lived token, so anything it is refused is refused by where it stands, not by who
it claims to be. It prints one JSON object; the caller decides what should have
happened.

Routes: the camera proxy (snapshot and MJPEG stream), a WebRTC offer over the websocket (and, when
answered, the video frames that arrive), a clip through the media source (resolve,
then fetch the URL it gives), by its direct URL and as the sharing card's thumbnail,
guessed pickup tokens, and optionally a sharing request's preview (fetching the signed
thumbnail and video URLs it gives) and approving it with the long-lived token and the
owner's password.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
from typing import Any

import aiohttp
import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

API = "/api/doorstep/v1"
JPEG = b"\xff\xd8"
MP4_BRAND = b"ftyp"


def _footage_kind(body: bytes) -> str | None:
    if body.startswith(JPEG):
        return "jpeg"
    if body[4:8] == MP4_BRAND:
        return "mp4"
    if body.startswith(b"PK\x03\x04"):
        return "zip"
    return None


async def _fetch(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> dict[str, Any]:
    """Status, body size and whether the body is footage (JPEG, MP4 or a pickup ZIP)."""
    try:
        async with session.get(url, headers=headers) as resp:
            body = await resp.read()
            return {"status": resp.status, "bytes": len(body), "footage": _footage_kind(body)}
    except aiohttp.ClientError as err:
        return {"status": None, "bytes": 0, "footage": None, "error": type(err).__name__}


async def _mjpeg(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], seconds: float
) -> dict[str, Any]:
    """Read the camera's MJPEG stream for a few seconds; count the JPEG frames in it."""
    body = b""
    status = None
    try:
        async with asyncio.timeout(seconds):
            async with session.get(url, headers=headers) as resp:
                status = resp.status
                async for chunk in resp.content.iter_any():
                    body += chunk
    except TimeoutError, aiohttp.ClientError:
        pass  # a stream that is served never ends; one that is refused may be cut short
    return {"status": status, "bytes": len(body), "jpeg_frames": body.count(JPEG + b"\xff")}


class Websocket:
    """Home Assistant's websocket API, logged in with a token."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._next_id = 0

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, base: str, token: str) -> Websocket:
        ws = await session.ws_connect(f"{base}/api/websocket")
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": token})
        reply = await ws.receive_json()
        if reply["type"] != "auth_ok":
            raise RuntimeError(f"websocket login refused: {reply}")
        return cls(ws)

    async def send(self, message: dict[str, Any]) -> int:
        self._next_id += 1
        await self.ws.send_json({**message, "id": self._next_id})
        return self._next_id

    async def receive(self, msg_id: int) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = await self.ws.receive_json()
            if message.get("id") == msg_id:
                return message

    async def command(self, message: dict[str, Any]) -> dict[str, Any]:
        return await self.receive(await self.send(message))


async def _webrtc(ws: Websocket, camera: str, video_seconds: float) -> dict[str, Any]:
    """Offer to watch; on an answer, count the video frames that arrive."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    frames = 0

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def read() -> None:
            nonlocal frames
            with contextlib.suppress(Exception):
                while True:
                    await track.recv()
                    frames += 1

        asyncio.get_running_loop().create_task(read())

    try:
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        msg_id = await ws.send(
            {"type": "camera/webrtc/offer", "entity_id": camera, "offer": pc.localDescription.sdp}
        )
        result = await ws.receive(msg_id)
        if not result.get("success"):
            return {"reply": "refused", "code": result.get("error", {}).get("code"), "frames": 0}
        async with asyncio.timeout(15):
            while True:
                event = (await ws.receive(msg_id))["event"]
                if event["type"] == "error":
                    return {"reply": "error", "code": event.get("code"), "frames": 0}
                if event["type"] == "answer":
                    break
        await pc.setRemoteDescription(RTCSessionDescription(event["answer"], "answer"))
        await asyncio.sleep(video_seconds)
        return {"reply": "answer", "code": None, "frames": frames}
    finally:
        await pc.close()


def _error_key(reply: dict[str, Any]) -> str | None:
    error: dict[str, Any] = reply.get("error") or {}
    key = error.get("translation_key") or error.get("code")
    return str(key) if key is not None else None


async def _preview(
    session: aiohttp.ClientSession, ws: Websocket, base: str, request_id: str
) -> dict[str, Any]:
    """The sharing card's preview of a request and, when given, its clips' signed URLs."""
    reply = await ws.command({"type": "doorstep/sharing/preview", "request_id": request_id})
    if not reply.get("success"):
        return {"success": False, "error": _error_key(reply), "confirm": None}
    result = reply["result"]
    fetched = []
    for clip in result.get("clips", []):
        fetched.append(await _fetch(session, f"{base}{clip['thumbnail_url']}", {}))
        fetched.append(await _fetch(session, f"{base}{clip['video_url']}", {}))
    return {
        "success": True,
        "error": None,
        "confirm": result.get("confirm"),
        "clip_count": result.get("clip_count"),
        "fetched": fetched,
    }


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    base = args.base.rstrip("/")
    auth = {"Authorization": f"Bearer {args.token}"}
    report: dict[str, Any] = {}
    timeout = aiohttp.ClientTimeout(total=30)
    # Headers the client adds to every request, the websocket's included: a forged
    # X-Forwarded-For, say, claiming a home address.
    extra = dict(item.split(":", 1) for item in args.header)
    extra = {name.strip(): value.strip() for name, value in extra.items()}
    async with aiohttp.ClientSession(timeout=timeout, headers=extra) as session:
        report["snapshot"] = await _fetch(session, f"{base}/api/camera_proxy/{args.camera}", auth)
        report["mjpeg"] = await _mjpeg(
            session, f"{base}/api/camera_proxy_stream/{args.camera}", auth, 3.0
        )
        report["clip"] = await _fetch(session, f"{base}{API}/clips/{args.clip_id}", auth)
        report["thumbnail"] = await _fetch(
            session, f"{base}{API}/clips/{args.clip_id}/thumbnail", auth
        )
        statuses: dict[str, int] = {}
        footage_bytes = 0
        for _ in range(args.pickup_guesses):
            got = await _fetch(session, f"{base}{API}/pickup/{secrets.token_urlsafe(32)}", {})
            statuses[str(got["status"])] = statuses.get(str(got["status"]), 0) + 1
            footage_bytes += got["bytes"] if got["footage"] else 0
        report["pickup_guesses"] = {"statuses": statuses, "footage_bytes": footage_bytes}
        try:
            ws = await Websocket.connect(session, base, args.token)
        except (aiohttp.ClientError, RuntimeError) as err:
            report["websocket"] = {"connected": False, "error": str(err)[:200]}
            return report
        report["websocket"] = {"connected": True}
        try:
            resolved = await ws.command(
                {
                    "type": "media_source/resolve_media",
                    "media_content_id": f"media-source://doorstep/{args.device_id}/{args.clip_id}",
                }
            )
            report["resolve"] = {"success": resolved.get("success", False)}
            if resolved.get("success"):
                url = resolved["result"]["url"]
                report["resolved_fetch"] = await _fetch(session, f"{base}{url}", {})
            report["webrtc"] = await _webrtc(ws, args.camera, args.video_seconds)
            if args.request_id:
                report["preview"] = await _preview(session, ws, base, args.request_id)
                if args.password is not None:
                    # Whatever the preview said, approve as if it had been seen, with
                    # the owner's real password: only the token's kind should stop it.
                    reply = await ws.command(
                        {
                            "type": "doorstep/sharing/approve",
                            "request_id": args.request_id,
                            "confirm": report["preview"].get("confirm") or "0" * 64,
                            "password": args.password,
                        }
                    )
                    report["approve"] = {
                        "success": reply.get("success", False),
                        "error": _error_key(reply),
                    }
        finally:
            await ws.ws.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="Home Assistant's URL as seen from here")
    parser.add_argument("--token", required=True, help="a long-lived access token")
    parser.add_argument("--camera", default="camera.front_door")
    parser.add_argument("--device-id", required=True)
    parser.add_argument("--clip-id", required=True)
    parser.add_argument("--pickup-guesses", type=int, default=20)
    parser.add_argument("--video-seconds", type=float, default=3.0)
    parser.add_argument(
        "--request-id", default=None, help="a sharing request to preview (and to approve)"
    )
    parser.add_argument(
        "--password", default=None, help="with --request-id: try to approve with this password"
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        help="'Name: value' to send with every request (repeatable)",
    )
    parser.add_argument(
        "--local-address",
        default=None,
        help="offer WebRTC candidates on this address only (the lab end of this host)",
    )
    args = parser.parse_args(argv)
    if args.local_address:
        # The stand-in browser offers only its lab address, as a browser on that one
        # network would; aioice would otherwise list every interface of the namespace.
        address = args.local_address
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]
    report = asyncio.run(probe(args))
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A stand-in hub for the reference requester's tests: the requester HTTP contract served
over the real HA-free sharing core (gate, audit log, signing, archives). It holds no tests.

Only what the contract promises is implemented; Home Assistant's own views are tested
in tests/integration.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
import socket
from typing import Any

import aiohttp
from aiohttp import web

from custom_components.doorstep.sharing import (
    CONTENT_TYPE,
    DeliveryMethod,
    InvalidId,
    InvalidRequest,
    InvalidToken,
    NotReleasable,
    TooManyPending,
    UnknownRequest,
    parse_request_body,
    validate_request,
)
from custom_components.doorstep.sharing.schema import MAX_BODY_BYTES
from reference_doorbell.certs import CertFiles, build_certificate, new_key, save_cert_files

from .test_sharing_fixtures import Hub

API = "/api/doorstep/v1"


def make_loopback_tls(directory: Path) -> CertFiles:
    """A self-signed certificate valid for 127.0.0.1, used as its own CA."""
    key = new_key()
    cert = build_certificate("127.0.0.1", key, alt_names=["127.0.0.1"], ca=True)
    return save_cert_files(cert, key, directory)


def free_port() -> int:
    """A loopback port nobody listens on right now (for a server the CLI will start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _error(status: int, error: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status)


@dataclass
class ContractHub:
    """The requester API of the contract, served by the real gate."""

    hub: Hub
    # Flip one byte of the first clip on its way out: a man in the middle, or bad storage.
    tamper_pickup: bool = False
    url: str = ""
    uploads: list[int] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(f"{API}/requests", self._file)
        app.router.add_get(f"{API}/requests/{{request_id}}", self._status)
        app.router.add_get(f"{API}/pickup/{{token}}", self._pickup)
        app.router.add_get(f"{API}/key", self._key)
        return app

    def _requester_id(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            return self.hub.gate.authenticate(token.strip()).id
        except InvalidToken:
            return None

    async def _file(self, request: web.Request) -> web.Response:
        requester_id = self._requester_id(request)
        if requester_id is None:
            return _error(401, "unauthorized")
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, "too_large")
        try:
            fields = validate_request(parse_request_body(raw), now=self.hub.clock())
            filed = await self.hub.gate.file_request(requester_id, fields)
        except InvalidRequest as err:
            return _error(400, "invalid_request", field=err.field, message=err.message)
        except TooManyPending:
            return _error(429, "too_many_requests")
        return web.json_response({"id": filed.id, "status": "pending"}, status=201)

    async def _status(self, request: web.Request) -> web.Response:
        requester_id = self._requester_id(request)
        if requester_id is None:
            return _error(401, "unauthorized")
        try:
            view = self.hub.gate.requester_view(requester_id, request.match_info["request_id"])
        except InvalidId, UnknownRequest:
            return _error(404, "not_found")
        if token := view.pop("pickup_token", None):
            view["pickup_url"] = f"{API}/pickup/{token}"
        return web.json_response(view)

    async def _pickup(self, request: web.Request) -> web.StreamResponse:
        try:
            release = await self.hub.gate.open_pickup(request.match_info["token"])
        except InvalidToken, NotReleasable, UnknownRequest, InvalidId:
            return _error(404, "not_found")
        response = web.StreamResponse(
            headers={"Content-Type": CONTENT_TYPE, "Content-Length": str(release.size)}
        )
        await response.prepare(request)
        try:
            index = 0
            async for chunk in release:
                # Chunks 0 and 1 are the manifest and signature, 2 the first clip's header.
                if self.tamper_pickup and index == 3:
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                await response.write(chunk)
                index += 1
        finally:
            await release.aclose()
        await response.write_eof()
        return response

    async def _key(self, request: web.Request) -> web.Response:
        if self._requester_id(request) is None:
            return _error(401, "unauthorized")
        return web.json_response(
            {
                "key_id": self.hub.key.key_id,
                "public_key": base64.b64encode(self.hub.key.public_bytes()).decode(),
            }
        )

    async def deliver_upload(self, request_id: str, tls: CertFiles) -> int:
        """What the hub's uploader does: POST the released archive to the request's URL."""
        request = self.hub.gate.get(request_id)
        assert request.delivery.method is DeliveryMethod.UPLOAD
        assert request.delivery.upload_url is not None
        release = await self.hub.gate.open_release(request_id)

        async def body() -> AsyncIterator[bytes]:
            async for chunk in release:
                yield chunk

        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    request.delivery.upload_url,
                    data=body(),
                    headers={"Content-Type": CONTENT_TYPE, "Content-Length": str(release.size)},
                    ssl=tls.client_context(),
                ) as response,
            ):
                status = response.status
        finally:
            await release.aclose()
        self.uploads.append(status)
        if 200 <= status < 300:
            await self.hub.gate.complete_upload(request_id)
        return status


async def serve(contract: ContractHub, tls: CertFiles | None) -> web.AppRunner:
    """Start ``contract`` on a loopback port; sets ``contract.url``."""
    runner = web.AppRunner(contract.app(), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(
        runner, "127.0.0.1", 0, ssl_context=tls.server_context() if tls is not None else None
    )
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    contract.url = f"{'https' if tls is not None else 'http'}://127.0.0.1:{port}"
    return runner

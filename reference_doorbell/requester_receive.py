"""A one-shot HTTPS endpoint for upload delivery: the hub POSTs the release archive here.

The first complete upload is checked (signature and every clip) and filed on disk; its
verdict ends the wait. An upload cut off mid-body does not count: the hub retries with
backoff, and the next attempt is awaited. The answer tells the hub whether the archive
verified (200) or not (422), so its own log records what the requester saw.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
import os
from pathlib import Path
import ssl
import tempfile

from aiohttp import ClientPayloadError, web

from .requester_verify import Verdict, keep, read_archive, verify

TAR_TYPE = "application/x-tar"
DEFAULT_MAX_BYTES = 4 * 1024**3
CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class ReceiveConfig:
    host: str
    port: int
    cert: Path
    key: Path
    out_dir: Path
    public_key: bytes
    expected_request_id: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True, slots=True)
class Received:
    verdict: Verdict
    path: Path


class UploadReceiver:
    """Serve until one upload has arrived whole, then report it."""

    def __init__(self, config: ReceiveConfig) -> None:
        self._config = config
        self._runner: web.AppRunner | None = None
        self._result: asyncio.Future[Received] | None = None
        self._busy = asyncio.Lock()
        self.port = 0

    async def start(self) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(self._config.cert, self._config.key)
        except (OSError, ssl.SSLError) as err:
            raise OSError(f"cannot load --cert/--key: {err}") from err
        self._result = asyncio.get_running_loop().create_future()
        app = web.Application(client_max_size=self._config.max_bytes)
        app.router.add_post("/{tail:.*}", self._upload)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._config.host, self._config.port, ssl_context=context)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._config.port
        return self.port

    async def result(self) -> Received:
        """The first complete upload (wrap in ``asyncio.timeout`` to bound the wait)."""
        assert self._result is not None, "start() first"
        return await asyncio.shield(self._result)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _upload(self, request: web.Request) -> web.Response:
        assert self._result is not None
        if self._result.done():
            return web.json_response({"error": "already_received"}, status=409)
        if request.content_type != TAR_TYPE:
            return web.json_response({"error": "unsupported_media_type"}, status=415)
        length = request.content_length
        if length is not None and length > self._config.max_bytes:
            return web.json_response({"error": "too_large"}, status=413)
        # One at a time: two parallel retries must not both be filed.
        async with self._busy:
            if self._result.done():
                return web.json_response({"error": "already_received"}, status=409)
            path = await self._save(request)
            if path is None:
                return web.json_response({"error": "incomplete"}, status=400)
            received = await asyncio.to_thread(self._check, path)
            self._result.set_result(received)
        if received.verdict.ok:
            return web.json_response({"verified": True, "request_id": received.verdict.request_id})
        return web.json_response(
            {"error": "verification_failed", "message": received.verdict.reason}, status=422
        )

    async def _save(self, request: web.Request) -> Path | None:
        """Stream the body to a temporary file; None if it was cut short or too large."""
        fd, name = tempfile.mkstemp(prefix=".upload-", suffix=".tar", dir=self._config.out_dir)
        path = Path(name)
        received = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                async for chunk in request.content.iter_chunked(CHUNK):
                    received += len(chunk)
                    if received > self._config.max_bytes:
                        path.unlink(missing_ok=True)  # noqa: ASYNC240 -- a local temp file, dropped on an error path where awaiting is unsafe
                        return None
                    handle.write(chunk)
        except ClientPayloadError, ConnectionError, asyncio.IncompleteReadError, OSError:
            path.unlink(missing_ok=True)  # noqa: ASYNC240 -- a local temp file, dropped on an error path where awaiting is unsafe
            return None
        except BaseException:
            path.unlink(missing_ok=True)  # noqa: ASYNC240 -- a local temp file, dropped on an error path where awaiting is unsafe
            raise
        if request.content_length is not None and received != request.content_length:
            path.unlink(missing_ok=True)  # noqa: ASYNC240 -- a local temp file, dropped on an error path where awaiting is unsafe
            return None
        return path

    def _check(self, path: Path) -> Received:
        verdict = verify(
            read_archive(path), self._config.public_key, self._config.expected_request_id
        )
        fallback = "upload-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return Received(verdict, keep(path, verdict, self._config.out_dir, fallback))

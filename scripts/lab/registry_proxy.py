"""An HTTP CONNECT proxy that reaches the package registry and nothing else.

The stock-install test lets Home Assistant install Doorstep's requirements itself, so
Home Assistant needs the package registry. It still runs inside the lab's hub namespace
(which has no route out), so that its mDNS stays on the lab's bridge. This proxy, in the
root namespace on the root end of the hub's uplink, is its only way out: it tunnels TLS
to the registry's hosts on port 443 and refuses every other destination. It records
every destination it was asked for, so the test can show that only the registry was.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
import logging

_LOGGER = logging.getLogger(__name__)

# PyPI's index and its file host; uv (Home Assistant's installer) needs both.
REGISTRY_HOSTS = frozenset({"pypi.org", "files.pythonhosted.org"})
_HEADER_LIMIT = 8192
_CHUNK = 65536


@dataclass
class RegistryProxy:
    """Tunnels CONNECT requests for ``allowed`` hosts on port 443; refuses the rest."""

    host: str
    port: int = 0
    allowed: frozenset[str] = REGISTRY_HOSTS
    tunnelled: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._tunnel(reader, writer)
        except ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > _HEADER_LIMIT:
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = request_line.partition(" ")
        target = rest.partition(" ")[0]
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or host not in self.allowed or port != "443":
            self.refused.append(f"{method} {target}")
            _LOGGER.warning("registry proxy refused %s %s", method, target)
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        self.tunnelled.append(host)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, 443)
        except OSError as err:
            _LOGGER.warning("registry proxy could not reach %s: %s", host, err)
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()

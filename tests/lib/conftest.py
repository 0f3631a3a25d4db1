"""Fixtures for the HA-free library tests: a real reference doorbell on loopback, an
aiohttp session, and a scriptable TLS server for answers a well-behaved doorbell never
gives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
import pytest

from reference_doorbell.certs import CertFiles, build_certificate, new_key, save_cert_files

if TYPE_CHECKING:
    from reference_doorbell.doorbell import Doorbell


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """The HA test plugin blocks sockets; these tests only ever talk to 127.0.0.1."""


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def bell(tmp_path: Path) -> AsyncIterator[Doorbell]:
    """A started reference doorbell with a fast heartbeat and a short lockout."""
    from reference_doorbell.doorbell import Doorbell, DoorbellConfig

    doorbell = Doorbell(
        DoorbellConfig(
            name="Front door",
            state_dir=tmp_path / "bell",
            host="127.0.0.1",
            port=0,
            advertise=False,
            heartbeat_interval=0.2,
            lockout_attempts=5,
            lockout_seconds=1.0,
        )
    )
    await doorbell.start()
    try:
        yield doorbell
    finally:
        await doorbell.stop()


@pytest.fixture(scope="session")
def tls_identity(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    """A throwaway self-signed certificate for the fake device."""
    key = new_key()
    return save_cert_files(
        build_certificate("fake doorbell", key), key, tmp_path_factory.mktemp("tls")
    )


@dataclass(frozen=True, slots=True)
class FakeDevice:
    host: str
    port: int
    fingerprint: str


type FakeDeviceFactory = Callable[[list[web.RouteDef]], Awaitable[FakeDevice]]


@pytest.fixture
async def fake_device(tls_identity: CertFiles) -> AsyncIterator[FakeDeviceFactory]:
    """Start an HTTPS server on loopback that answers with the given routes."""
    runners: list[web.AppRunner] = []

    async def start(routes: list[web.RouteDef]) -> FakeDevice:
        app = web.Application()
        app.add_routes(routes)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls_identity.server_context())
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return FakeDevice("127.0.0.1", port, tls_identity.fingerprint)

    yield start
    for runner in runners:
        await runner.cleanup()

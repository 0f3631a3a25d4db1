"""Fetching feeds from the reference agency: conditional, and the same bytes from every hub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
import ssl

from aiohttp import web
import pytest

from custom_components.doorstep.sharing import trusted_context
from custom_components.doorstep.sharing.exceptions import FeedRejected
from custom_components.doorstep.sharing.feed_fetch import USER_AGENT, feed_session, fetch_feed
from custom_components.doorstep.sharing.feeds import MAX_FEED_BYTES, verify_feed
from reference_doorbell.agency import AgencyServer, etag_of
from reference_doorbell.agency_feed import AgencyKeys, area_entry, build_feed, circle
from reference_doorbell.certs import CertFiles

from .conftest import FakeDeviceFactory

KEYS = AgencyKeys.generate()


def write_feed(path: Path, sequence: int) -> bytes:
    now = datetime.now(UTC)
    body = build_feed(
        KEYS,
        agency="Reference Police Department",
        entries=[
            area_entry(
                "e1",
                reference="RPD-1",
                reason="Burglary",
                contact="desk@rpd.example",
                area=circle(47.0, 8.0, 300),
                window_start=now - timedelta(hours=2),
                window_end=now - timedelta(hours=1),
                wanted_by=now + timedelta(days=3),
                upload_url="https://rpd.example/upload/e1",
            )
        ],
        sequence=sequence,
    )
    path.write_bytes(body)
    return body


@pytest.fixture
async def agency(tmp_path: Path, tls_identity: CertFiles) -> AsyncIterator[AgencyServer]:
    write_feed(tmp_path / "feed.json", 1)
    server = AgencyServer(
        feed=tmp_path / "feed.json",
        host="127.0.0.1",
        port=0,
        cert=tls_identity.cert,
        key=tls_identity.key,
        out_dir=tmp_path / "uploads",
    )
    await server.start()
    yield server
    await server.stop()


def url_of(server: AgencyServer) -> str:
    # The test certificate names no host; loopback by IP with the name check relaxed
    # would test less, so the context below trusts the certificate itself.
    return f"https://127.0.0.1:{server.port}/feed.json"


@pytest.fixture
def client_ssl(tls_identity: CertFiles) -> ssl.SSLContext:
    context = trusted_context(tls_identity.cert)
    context.check_hostname = False
    return context


async def test_conditional_fetches_follow_the_etag(
    agency: AgencyServer, client_ssl: ssl.SSLContext, tmp_path: Path
) -> None:
    async with feed_session() as session:
        first = await fetch_feed(session, url_of(agency), etag=None, ssl_context=client_ssl)
        assert first.body is not None
        assert first.etag == etag_of(first.body)
        assert verify_feed(first.body, KEYS.fingerprint(), now=datetime.now(UTC)).sequence == 1
        again = await fetch_feed(session, url_of(agency), etag=first.etag, ssl_context=client_ssl)
        assert again.body is None
        assert again.etag == first.etag
        write_feed(tmp_path / "feed.json", 2)
        changed = await fetch_feed(session, url_of(agency), etag=first.etag, ssl_context=client_ssl)
        assert changed.body is not None
        assert changed.etag != first.etag
    assert agency.log.fetches == 3
    assert agency.log.not_modified == 1


async def test_two_hubs_send_byte_identical_requests(
    agency: AgencyServer, client_ssl: ssl.SSLContext
) -> None:
    heads = []
    for _hub in range(2):
        async with feed_session() as session:
            result = await fetch_feed(session, url_of(agency), etag=None, ssl_context=client_ssl)
            await fetch_feed(session, url_of(agency), etag=result.etag, ssl_context=client_ssl)
        heads.append(agency.log.fetch_heads[-2:])
    assert heads[0] == heads[1]
    first = heads[0][0]
    assert first.startswith(b"GET /feed.json HTTP/1.1\r\n")
    names = [line.split(b":")[0].lower() for line in first.split(b"\r\n")[1:] if line]
    assert names == [b"host", b"user-agent", b"accept", b"accept-encoding", b"connection"]
    assert f"User-Agent: {USER_AGENT}".encode() in first
    assert b"If-None-Match" in heads[0][1]


async def test_no_cookie_is_kept(
    fake_device: FakeDeviceFactory, client_ssl: ssl.SSLContext
) -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.Response(body=b"{}", headers={"ETag": '"x"'})
        response.set_cookie("tracker", "home-42")
        return response

    device = await fake_device([web.get("/feed.json", handler)])
    url = f"https://{device.host}:{device.port}/feed.json"
    async with feed_session() as session:
        await fetch_feed(session, url, etag=None, ssl_context=client_ssl)
        await fetch_feed(session, url, etag=None, ssl_context=client_ssl)
    assert seen == [None, None]


async def test_oversized_and_failing_hosts_are_refused(
    fake_device: FakeDeviceFactory, client_ssl: ssl.SSLContext
) -> None:
    async def huge(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=b" " * (MAX_FEED_BYTES + 10))

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(MAX_FEED_BYTES // 65536 + 2):
            await response.write(b" " * 65536)
        return response

    async def broken(_request: web.Request) -> web.Response:
        return web.Response(status=500)

    async def moved(_request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "https://elsewhere.example/"})

    device = await fake_device(
        [
            web.get("/huge", huge),
            web.get("/chunked", chunked),
            web.get("/broken", broken),
            web.get("/moved", moved),
        ]
    )
    base = f"https://{device.host}:{device.port}"
    async with feed_session() as session:
        for path, reason in [
            ("/huge", "too_large"),
            ("/chunked", "too_large"),
            ("/broken", "unreachable"),
            ("/moved", "unreachable"),
        ]:
            with pytest.raises(FeedRejected) as caught:
                await fetch_feed(session, base + path, etag=None, ssl_context=client_ssl)
            assert caught.value.reason == reason, path
        with pytest.raises(FeedRejected) as caught:
            # Nothing listens on port 9 of loopback.
            await fetch_feed(session, "https://127.0.0.1:9/f", etag=None, ssl_context=client_ssl)
        assert caught.value.reason == "unreachable"


async def test_fetches_go_through_the_proxy_when_set(
    agency: AgencyServer, client_ssl: ssl.SSLContext
) -> None:
    """The proxy option: the hub talks only to the proxy, which tunnels to the feed host."""
    tunnels: list[bytes] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0]
        tunnels.append(request_line)
        host, port = request_line.split()[1].decode().rsplit(":", 1)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    proxy_port = proxy.sockets[0].getsockname()[1]
    try:
        async with feed_session() as session:
            result = await fetch_feed(
                session,
                url_of(agency),
                etag=None,
                ssl_context=client_ssl,
                proxy=f"http://127.0.0.1:{proxy_port}",
            )
    finally:
        proxy.close()
        await proxy.wait_closed()
    assert result.body is not None
    assert tunnels == [f"CONNECT 127.0.0.1:{agency.port} HTTP/1.1".encode()]
    # Through the tunnel the feed host sees the same request as ever.
    assert agency.log.fetch_heads[-1].startswith(b"GET /feed.json HTTP/1.1\r\n")

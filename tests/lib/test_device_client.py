"""DoorstepClient against the real reference doorbell, plus a fake device for answers a
well-behaved doorbell never gives."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
import pytest

from custom_components.doorstep.device import (
    CannotConnect,
    DeviceInfo,
    DoorstepClient,
    FingerprintMismatch,
    InvalidAuth,
    InvalidCode,
    PairingLocked,
    ProtocolError,
)

from .conftest import FakeDeviceFactory

if TYPE_CHECKING:
    from reference_doorbell.doorbell import Doorbell

OTHER_FP = "0" * 64


def client_for(session: aiohttp.ClientSession, bell: Doorbell, **kwargs: Any) -> DoorstepClient:
    kwargs.setdefault("fingerprint", bell.fingerprint)
    return DoorstepClient(session, "127.0.0.1", bell.port, **kwargs)


def wrong_code(bell: Doorbell) -> str:
    return "0" * 6 if bell.pairing_code != "0" * 6 else "1" * 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- against the reference doorbell ---------------------------------------------------


async def test_fetch_fingerprint_is_the_bells(
    session: aiohttp.ClientSession, bell: Doorbell
) -> None:
    client = DoorstepClient(session, "127.0.0.1", bell.port)
    assert client.fingerprint is None
    assert await client.fetch_fingerprint() == bell.fingerprint


async def test_get_info(session: aiohttp.ClientSession, bell: Doorbell) -> None:
    info = await client_for(session, bell).get_info()
    assert info == DeviceInfo(
        device_id=bell.device_id,
        name="Front door",
        model=info.model,
        firmware=info.firmware,
        protocol_version=1,
    )
    assert info.model
    assert info.firmware


async def test_pair_then_snapshot_then_unpair(
    session: aiohttp.ClientSession, bell: Doorbell
) -> None:
    client = client_for(session, bell)
    token = await client.pair(bell.pairing_code, "Home Assistant")
    assert token
    # (client.token is checked through auth_headers; mypy would keep the narrowing.)
    assert client.auth_headers() == {"Authorization": f"Bearer {token}"}

    jpeg = await client.snapshot()
    assert jpeg.startswith(b"\xff\xd8")

    await client.unpair()
    assert client.token is None
    client.set_token(token)
    with pytest.raises(InvalidAuth):
        await client.snapshot()


async def test_pairing_code_is_used_up(session: aiohttp.ClientSession, bell: Doorbell) -> None:
    code = bell.pairing_code
    await client_for(session, bell).pair(code, "Hub one")
    assert bell.pairing_code != code
    with pytest.raises(InvalidCode):
        await client_for(session, bell).pair(code, "Hub two")


async def test_wrong_code_counts_down(session: aiohttp.ClientSession, bell: Doorbell) -> None:
    client = client_for(session, bell)
    with pytest.raises(InvalidCode) as err:
        await client.pair(wrong_code(bell), "Home Assistant")
    assert err.value.attempts_left == 4
    assert client.token is None


@pytest.mark.parametrize("code", ["12345", "123456789", "12a456", "", "١٢٣٤٥٦", "123 456"])
async def test_malformed_code_never_reaches_the_device(
    session: aiohttp.ClientSession, bell: Doorbell, code: str
) -> None:
    client = client_for(session, bell)
    with pytest.raises(InvalidCode) as err:
        await client.pair(code, "Home Assistant")
    assert err.value.attempts_left is None
    # No attempt was used up on the device.
    with pytest.raises(InvalidCode) as err:
        await client.pair(wrong_code(bell), "Home Assistant")
    assert err.value.attempts_left == 4


async def test_lockout_after_five_wrong_codes(
    session: aiohttp.ClientSession, bell: Doorbell
) -> None:
    client = client_for(session, bell)
    for left in (4, 3, 2, 1, 0):
        with pytest.raises(InvalidCode) as wrong:
            await client.pair(wrong_code(bell), "Home Assistant")
        assert wrong.value.attempts_left == left
    # Locked: even the right code is refused.
    with pytest.raises(PairingLocked) as locked:
        await client.pair(bell.pairing_code, "Home Assistant")
    assert 0 < locked.value.retry_after <= 1.0
    assert client.token is None


async def test_wrong_pin_is_fingerprint_mismatch(
    session: aiohttp.ClientSession, bell: Doorbell
) -> None:
    client = client_for(session, bell, fingerprint=OTHER_FP)
    for call in (client.get_info(), client.pair(bell.pairing_code, "Home Assistant")):
        with pytest.raises(FingerprintMismatch) as err:
            await call
        assert err.value.expected == OTHER_FP
        assert err.value.actual == bell.fingerprint
    # The code was never sent, so it is still valid.
    assert await client_for(session, bell).pair(bell.pairing_code, "Home Assistant")


async def test_fingerprint_is_normalized(session: aiohttp.ClientSession, bell: Doorbell) -> None:
    fp = bell.fingerprint
    colons = ":".join(fp[i : i + 2] for i in range(0, 64, 2)).upper()
    client = DoorstepClient(session, "127.0.0.1", bell.port, fingerprint=colons)
    assert client.fingerprint == fp
    assert (await client.get_info()).device_id == bell.device_id


async def test_revoked_token_is_invalid_auth(
    session: aiohttp.ClientSession, bell: Doorbell
) -> None:
    client = client_for(session, bell)
    await client.pair(bell.pairing_code, "Home Assistant")
    bell.revoke_all_tokens()
    with pytest.raises(InvalidAuth):
        await client.snapshot()
    with pytest.raises(InvalidAuth):
        await client.unpair()


async def test_factory_reset_changes_the_certificate(
    session: aiohttp.ClientSession, bell: Doorbell
) -> None:
    client = client_for(session, bell)
    old = bell.fingerprint
    await client.pair(bell.pairing_code, "Home Assistant")
    await bell.factory_reset()
    assert bell.fingerprint != old
    with pytest.raises(FingerprintMismatch) as err:
        await client.snapshot()
    assert err.value.actual == bell.fingerprint
    assert await DoorstepClient(session, "127.0.0.1", bell.port).fetch_fingerprint() == (
        bell.fingerprint
    )


async def test_unreachable_port_is_cannot_connect(session: aiohttp.ClientSession) -> None:
    client = DoorstepClient(session, "127.0.0.1", free_port(), fingerprint=OTHER_FP)
    with pytest.raises(CannotConnect):
        await client.fetch_fingerprint()
    with pytest.raises(CannotConnect):
        await client.get_info()


async def test_plain_tcp_server_is_cannot_connect(session: aiohttp.ClientSession) -> None:
    async def answer_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nnot tls")
        writer.close()

    server = await asyncio.start_server(answer_garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = DoorstepClient(session, "127.0.0.1", port, fingerprint=OTHER_FP)
        with pytest.raises(CannotConnect):
            await client.fetch_fingerprint()
        with pytest.raises(CannotConnect):
            await client.get_info()
    finally:
        server.close()
        await server.wait_closed()


async def test_calls_need_a_pin_and_a_token(session: aiohttp.ClientSession) -> None:
    client = DoorstepClient(session, "127.0.0.1", 1)
    with pytest.raises(ValueError, match="fingerprint"):
        await client.get_info()
    with pytest.raises(ValueError, match="fingerprint"):
        await client.pair("123456", "Home Assistant")
    with pytest.raises(ValueError, match="fingerprint"):
        client.ssl_pin()
    with pytest.raises(ValueError, match="token"):
        client.auth_headers()
    pinned = DoorstepClient(session, "127.0.0.1", 1, fingerprint=OTHER_FP)
    with pytest.raises(ValueError, match="token"):
        await pinned.snapshot()
    with pytest.raises(ValueError, match="fingerprint"):
        DoorstepClient(session, "127.0.0.1", 1, fingerprint="abc")


def test_urls_and_pin() -> None:
    session: Any = object()  # never used by these synchronous helpers
    client = DoorstepClient(session, "fe80::1", 8443, fingerprint=OTHER_FP, token="t")
    assert client.base_url == "https://[fe80::1]:8443"
    assert client.stream_url() == "https://[fe80::1]:8443/v1/stream.ts"
    assert DoorstepClient(session, "10.0.0.2", 1).base_url == "https://10.0.0.2:1"
    assert client.ssl_pin().fingerprint == bytes(32)
    assert (client.host, client.port, client.token) == ("fe80::1", 8443, "t")


# --- malformed answers from a fake device ---------------------------------------------

GOOD_INFO = {"id": "fd-1", "name": "Front door", "model": "M", "fw": "1.0", "v": 1}


def json_route(method: str, path: str, body: Any, status: int = 200) -> web.RouteDef:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    return web.route(method, path, handler)


def raw_route(
    method: str, path: str, body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.RouteDef:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, headers=headers)

    return web.route(method, path, handler)


async def fake_client(
    session: aiohttp.ClientSession,
    fake_device: FakeDeviceFactory,
    *routes: web.RouteDef,
    request_timeout: float = 1.0,
) -> DoorstepClient:
    device = await fake_device(list(routes))
    return DoorstepClient(
        session,
        device.host,
        device.port,
        fingerprint=device.fingerprint,
        token="A" * 43,
        request_timeout=request_timeout,
    )


async def test_fake_device_sanity(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory
) -> None:
    client = await fake_client(session, fake_device, json_route("GET", "/v1/info", GOOD_INFO))
    assert (await client.get_info()).device_id == "fd-1"
    assert await client.fetch_fingerprint() == client.fingerprint


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b"null",
        b"\xff\xfe",
        b"[" * 100_000,
        b'{"id": "fd-1"}',
        *(
            json.dumps({**GOOD_INFO, key: value}).encode()
            for key, value in [
                ("id", "FD 1"),
                ("id", 7),
                ("name", ""),
                ("name", None),
                ("name", "x" * 300),
                ("model", ["M"]),
                ("fw", "1.0\n"),
                ("v", True),
                ("v", "1"),
                ("v", 1.5),
                ("v", 0),
            ]
        ),
    ],
)
async def test_malformed_info_is_protocol_error(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory, body: bytes
) -> None:
    client = await fake_client(session, fake_device, raw_route("GET", "/v1/info", body))
    with pytest.raises(ProtocolError):
        await client.get_info()


async def test_oversized_info_is_protocol_error(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory
) -> None:
    huge = {**GOOD_INFO, "padding": "x" * 70_000}
    client = await fake_client(session, fake_device, json_route("GET", "/v1/info", huge))
    with pytest.raises(ProtocolError, match="large"):
        await client.get_info()


async def test_oversized_chunked_snapshot_is_protocol_error(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory
) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        # Chunked, so no Content-Length gives the size away up front.
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"\xff\xd8")
        chunk = b"\0" * 65536
        for _ in range(6 * 16):
            await response.write(chunk)
        return response

    client = await fake_client(session, fake_device, web.get("/v1/snapshot.jpg", endless))
    with pytest.raises(ProtocolError, match="larger"):
        await client.snapshot()


async def test_snapshot_must_be_jpeg(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory
) -> None:
    client = await fake_client(
        session, fake_device, raw_route("GET", "/v1/snapshot.jpg", b"\x89PNG\r\n")
    )
    with pytest.raises(ProtocolError):
        await client.snapshot()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {"id": "fd-1"}),
        (200, {"id": "fd-1", "token": ""}),
        (200, {"id": "fd-1", "token": "abc\r\nX-Evil: 1" + "a" * 20}),
        (200, {"id": "fd-1", "token": 12345}),
        (200, {"id": "bad id", "token": "A" * 43}),
        (200, ["token"]),
        (401, {"error": "unauthorized"}),
        (401, {"error": "invalid_code", "attempts_left": "3"}),
        (401, {"error": "invalid_code", "attempts_left": -1}),
        (401, {"error": "invalid_code", "attempts_left": True}),
        (429, {"error": "locked"}),
        (429, {"error": "locked", "retry_after": "soon"}),
        (400, {"error": "bad_request"}),
        (404, {"error": "not_found"}),
        (302, {}),
    ],
)
async def test_malformed_pair_answers_are_protocol_errors(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory, status: int, body: Any
) -> None:
    client = await fake_client(session, fake_device, json_route("POST", "/v1/pair", body, status))
    client.set_token(None)
    with pytest.raises(ProtocolError):
        await client.pair("123456", "Home Assistant")
    assert client.token is None


async def test_pair_locked_from_retry_after_header(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory
) -> None:
    client = await fake_client(
        session,
        fake_device,
        raw_route("POST", "/v1/pair", b"locked", 429, {"Retry-After": "7"}),
    )
    with pytest.raises(PairingLocked) as err:
        await client.pair("123456", "Home Assistant")
    assert err.value.retry_after == 7.0


async def test_pair_sends_the_protocols_body(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory
) -> None:
    seen: list[Any] = []

    async def pair(request: web.Request) -> web.Response:
        seen.append((request.content_type, await request.json()))
        return web.json_response({"id": "fd-1", "token": "B" * 43})

    client = await fake_client(session, fake_device, web.post("/v1/pair", pair))
    assert await client.pair(" 01234567 ", "Home Assistant") == "B" * 43
    assert seen == [("application/json", {"code": "01234567", "client": "Home Assistant"})]
    with pytest.raises(ValueError, match="too long"):
        await client.pair("123456", "x" * 2000)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_cannot_connect(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory, status: int
) -> None:
    client = await fake_client(
        session,
        fake_device,
        json_route("GET", "/v1/info", {"error": "oops"}, status),
        json_route("POST", "/v1/pair", {"error": "oops"}, status),
    )
    with pytest.raises(CannotConnect):
        await client.get_info()
    with pytest.raises(CannotConnect):
        await client.pair("123456", "Home Assistant")


async def test_slow_device_times_out(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory
) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response(GOOD_INFO)

    client = await fake_client(session, fake_device, web.get("/v1/info", hang), request_timeout=0.2)
    try:
        with pytest.raises(CannotConnect):
            await client.get_info()
    finally:
        release.set()


async def test_unpair_and_snapshot_401_are_invalid_auth(
    session: aiohttp.ClientSession, fake_device: FakeDeviceFactory
) -> None:
    client = await fake_client(
        session,
        fake_device,
        json_route("DELETE", "/v1/pair", {"error": "unauthorized"}, 401),
        json_route("GET", "/v1/snapshot.jpg", {"error": "unauthorized"}, 401),
    )
    with pytest.raises(InvalidAuth):
        await client.unpair()
    with pytest.raises(InvalidAuth):
        await client.snapshot()

"""The hub's STUN responder, checked with aioice's own STUN parser as the client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import os
import socket
import struct

from aioice import stun
from hypothesis import given, strategies as st
import pytest

from custom_components.doorstep.media.network import PRIVATE_NETWORKS, NetworkPolicy
from custom_components.doorstep.media.stun import (
    BINDING_REQUEST,
    MAGIC_COOKIE,
    StunResponder,
    binding_response,
)


def _request(transaction_id: bytes | None = None) -> bytes:
    return struct.pack("!HHI", BINDING_REQUEST, 0, MAGIC_COOKIE) + (
        transaction_id or os.urandom(12)
    )


@pytest.mark.parametrize("address", ["192.168.1.20", "127.0.0.1", "fe80::1", "fd00::5"])
def test_response_carries_the_observed_address(address: str) -> None:
    """aioice decodes our XOR-MAPPED-ADDRESS back to the sender's address and port."""
    request = _request()
    response = binding_response(request, address, 51000)
    assert response is not None
    message = stun.parse_message(response)
    assert message.message_method == stun.Method.BINDING
    assert message.message_class == stun.Class.RESPONSE
    assert message.transaction_id == request[8:20]
    assert message.attributes["XOR-MAPPED-ADDRESS"] == (address, 51000)


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"\x00" * 19,
        struct.pack("!HHI", 0x0111, 0, MAGIC_COOKIE) + b"\x01" * 12,  # not a request
        struct.pack("!HHI", BINDING_REQUEST, 0, 0xDEADBEEF) + b"\x01" * 12,  # no cookie
        struct.pack("!HHI", BINDING_REQUEST, 8, MAGIC_COOKIE) + b"\x01" * 12,  # lies about length
        _request() + b"x" * 600,
    ],
)
def test_anything_else_is_ignored(datagram: bytes) -> None:
    """Malformed or foreign datagrams get no answer."""
    assert binding_response(datagram, "192.168.1.20", 1) is None


@given(st.binary(max_size=700), st.integers(min_value=0, max_value=65535))
def test_fuzz_never_raises(datagram: bytes, port: int) -> None:
    """Whatever arrives, the responder answers or stays silent; it never raises."""
    binding_response(datagram, "10.0.0.1", port)


@contextlib.asynccontextmanager
async def _responder_and_client(
    policy: NetworkPolicy | None = None,
) -> AsyncIterator[tuple[StunResponder, socket.socket, tuple[str, int]]]:
    """A responder on loopback and a non-blocking UDP client socket for it."""
    responder = StunResponder() if policy is None else StunResponder(policy)
    await responder.start("127.0.0.1", 0)
    try:
        address = responder.address
        assert address is not None
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setblocking(False)
        client.bind(("127.0.0.1", 0))
        try:
            yield responder, client, address
        finally:
            client.close()
    finally:
        responder.close()


async def test_responder_answers_over_udp() -> None:
    """A real UDP round trip on loopback."""
    loop = asyncio.get_running_loop()
    async with _responder_and_client() as (responder, client, address):
        await loop.sock_sendto(client, b"junk", address)
        await loop.sock_sendto(client, _request(), address)
        async with asyncio.timeout(2):
            data = await loop.sock_recv(client, 2048)
        message = stun.parse_message(data)
        assert message.attributes["XOR-MAPPED-ADDRESS"] == client.getsockname()
        assert responder.answered == 1
    assert responder.address is None


async def test_responder_ignores_senders_outside_the_home_network() -> None:
    """A sender the policy does not allow gets no answer, even to a valid request."""
    outside_loopback = NetworkPolicy(base_networks=PRIVATE_NETWORKS)
    loop = asyncio.get_running_loop()
    async with _responder_and_client(outside_loopback) as (responder, client, address):
        await loop.sock_sendto(client, _request(), address)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await loop.sock_recv(client, 2048)
        assert responder.ignored_senders == 1
        assert responder.answered == 0

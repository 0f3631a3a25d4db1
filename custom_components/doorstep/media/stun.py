"""A STUN binding responder on the hub, so browsers need no STUN server outside the house.

Home Assistant hands every browser a STUN server for WebRTC; left alone that is its
public one. Pointing Home Assistant's ``webrtc: ice_servers`` at this responder keeps
that lookup on the home network. It answers only RFC 5389 Binding requests, with the
address it saw the request come from (XOR-MAPPED-ADDRESS), and ignores everything else:
no authentication, no relaying, nothing stored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from typing import Final

_LOGGER = logging.getLogger(__name__)

DEFAULT_STUN_PORT: Final = 3478

MAGIC_COOKIE: Final = 0x2112A442
BINDING_REQUEST: Final = 0x0001
BINDING_SUCCESS: Final = 0x0101
XOR_MAPPED_ADDRESS: Final = 0x0020
SOFTWARE: Final = 0x8022
_HEADER = struct.Struct("!HHI12s")
_SOFTWARE_NAME = b"Doorstep hub"
# A Binding request from a browser is a few dozen bytes; anything large is not one.
MAX_REQUEST_BYTES: Final = 548


def binding_response(request: bytes, address: str, port: int) -> bytes | None:
    """The answer to a Binding request from ``address``:``port``, or None to stay silent."""
    if not 20 <= len(request) <= MAX_REQUEST_BYTES:
        return None
    msg_type, length, cookie, transaction_id = _HEADER.unpack_from(request)
    if msg_type != BINDING_REQUEST or cookie != MAGIC_COOKIE or length != len(request) - 20:
        return None
    if length % 4:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return None
    xor_port = port ^ (MAGIC_COOKIE >> 16)
    if ip.version == 4:
        family = 0x01
        xor_ip = (int(ip) ^ MAGIC_COOKIE).to_bytes(4, "big")
    else:
        family = 0x02
        key = int.from_bytes(struct.pack("!I", MAGIC_COOKIE) + transaction_id, "big")
        xor_ip = (int(ip) ^ key).to_bytes(16, "big")
    mapped = struct.pack("!BBH", 0, family, xor_port) + xor_ip
    software = _SOFTWARE_NAME + b"\0" * (-len(_SOFTWARE_NAME) % 4)
    attributes = (
        struct.pack("!HH", XOR_MAPPED_ADDRESS, len(mapped))
        + mapped
        + struct.pack("!HH", SOFTWARE, len(_SOFTWARE_NAME))
        + software
    )
    return _HEADER.pack(BINDING_SUCCESS, len(attributes), MAGIC_COOKIE, transaction_id) + attributes


class _StunProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        host, port = str(addr[0]), int(addr[1])
        response = binding_response(data, host, port)
        if response is None:
            _LOGGER.debug(
                "Ignored a %d-byte datagram from %s that is no Binding request", len(data), host
            )
            return
        if self.transport is not None:
            self.transport.sendto(response, addr)
            self.answered += 1


class StunResponder:
    """Answers STUN Binding requests on one UDP address until closed."""

    def __init__(self) -> None:
        """Not listening until :meth:`start`."""
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _StunProtocol | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        """Where it listens, once started."""
        if self._transport is None:
            return None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    @property
    def answered(self) -> int:
        """How many requests it answered."""
        return self._protocol.answered if self._protocol else 0

    async def start(self, host: str, port: int = DEFAULT_STUN_PORT) -> None:
        """Listen on ``host``:``port`` (UDP). Raises OSError when the port is taken."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _StunProtocol, local_addr=(host, port)
        )
        self._transport, self._protocol = transport, protocol

    def close(self) -> None:
        """Stop listening."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

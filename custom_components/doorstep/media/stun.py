"""A STUN binding responder on the hub, so browsers need no STUN server outside the house.

Home Assistant hands every browser a STUN server for WebRTC; left alone that is its
public one. Pointing Home Assistant's ``webrtc: ice_servers`` at this responder keeps
that lookup on the home network. It answers only RFC 5389 Binding requests from home
network addresses, with the address it saw the request come from (XOR-MAPPED-ADDRESS),
and ignores everything else: no authentication, no relaying, nothing stored. aioice's
STUN codec reads the requests and writes the answers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from typing import Final

from aioice import stun

from .network import NetworkPolicy

_LOGGER = logging.getLogger(__name__)

DEFAULT_STUN_PORT: Final = 3478
MAGIC_COOKIE: Final = stun.COOKIE
BINDING_REQUEST: Final = stun.Method.BINDING | stun.Class.REQUEST
_COOKIE_BYTES: Final = struct.pack("!I", MAGIC_COOKIE)
_SOFTWARE_NAME: Final = "Doorstep hub"
# A Binding request from a browser is a few dozen bytes; anything large is not one.
MAX_REQUEST_BYTES: Final = 548


def binding_response(request: bytes, address: str, port: int) -> bytes | None:
    """The answer to a Binding request from ``address``:``port``, or None to stay silent."""
    # aioice does not insist on the RFC 5389 cookie or on 4-byte alignment; we do, so
    # that RFC 3489 clients and other protocols on the port get no answer.
    if not stun.HEADER_LENGTH <= len(request) <= MAX_REQUEST_BYTES or len(request) % 4:
        return None
    if request[4:8] != _COOKIE_BYTES:
        return None
    try:
        # The address as the socket saw it (an IPv4-mapped one stays IPv6), without zone.
        ip = ipaddress.ip_address(address.split("%")[0])
        message = stun.parse_message(request)
    except ValueError, struct.error:
        return None
    if message.message_method | message.message_class != BINDING_REQUEST:
        return None
    response = stun.Message(
        stun.Method.BINDING,
        stun.Class.RESPONSE,
        transaction_id=message.transaction_id,
        attributes={"XOR-MAPPED-ADDRESS": (str(ip), port), "SOFTWARE": _SOFTWARE_NAME},
    )
    return bytes(response)


class _StunProtocol(asyncio.DatagramProtocol):
    def __init__(self, policy: NetworkPolicy) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.policy = policy
        self.answered = 0
        self.ignored_senders = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        host, port = str(addr[0]), int(addr[1])
        if not self.policy.allows(host):
            # Telling a stranger its public address is what a public STUN server is for.
            self.ignored_senders += 1
            _LOGGER.debug("Ignored a STUN datagram from %s, outside the home network", host)
            return
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
    """Answers STUN Binding requests from the home network on one UDP address."""

    def __init__(self, policy: NetworkPolicy | None = None) -> None:
        """Not listening until :meth:`start`; answers senders that ``policy`` allows."""
        self._policy = policy or NetworkPolicy()
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

    @property
    def ignored_senders(self) -> int:
        """How many datagrams it ignored because they came from outside the home."""
        return self._protocol.ignored_senders if self._protocol else 0

    async def start(self, host: str, port: int = DEFAULT_STUN_PORT) -> None:
        """Listen on ``host``:``port`` (UDP). Raises OSError when the port is taken."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _StunProtocol(self._policy), local_addr=(host, port)
        )
        self._transport, self._protocol = transport, protocol

    def close(self) -> None:
        """Stop listening."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

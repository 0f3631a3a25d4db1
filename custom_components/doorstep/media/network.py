"""Which IP addresses count as "the home network" for live video.

Live video must stay on the LAN (DESIGN.md, I3/I4), so WebRTC sessions only offer local
candidates from, and only ever send to, addresses in these ranges. Everything else,
including carrier-grade NAT (100.64.0.0/10) and the documentation ranges, is treated as
outside: a home LAN never uses them for the hub, and guessing wrong would leak.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
import ipaddress
from typing import Final

type IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PRIVATE_NETWORKS: Final[tuple[IPNetwork, ...]] = (
    ipaddress.ip_network("10.0.0.0/8"),  # RFC 1918
    ipaddress.ip_network("172.16.0.0/12"),  # RFC 1918
    ipaddress.ip_network("192.168.0.0/16"),  # RFC 1918
    ipaddress.ip_network("fc00::/7"),  # RFC 4193 unique local
)
LINK_LOCAL_NETWORKS: Final[tuple[IPNetwork, ...]] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
)
LOOPBACK_NETWORKS: Final[tuple[IPNetwork, ...]] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
HOME_NETWORKS: Final = PRIVATE_NETWORKS + LINK_LOCAL_NETWORKS + LOOPBACK_NETWORKS


def parse_address(address: str) -> IPAddress | None:
    """The address as an ``ipaddress`` object, or None when it is not a literal IP.

    A zone index (``fe80::1%eth0``) is accepted, and IPv4-mapped IPv6 addresses are
    unwrapped, so ``::ffff:8.8.8.8`` is judged as the public address it is.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """The set of networks that live video may use.

    ``extra_networks`` are networks the owner adds in the options (say a VPN subnet
    that is really part of the home); the built-in private, ULA, link-local and
    loopback ranges are always included.
    """

    extra_networks: tuple[IPNetwork, ...] = field(default=())
    # Tests (and paranoid setups) can narrow the built-in ranges, e.g. to loopback.
    base_networks: tuple[IPNetwork, ...] = field(default=HOME_NETWORKS)

    @classmethod
    def from_strings(cls, networks: Iterable[str]) -> NetworkPolicy:
        """A policy with extra networks given as CIDR strings (``ValueError`` if bad)."""
        return cls(extra_networks=tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    @classmethod
    def loopback_only(cls) -> NetworkPolicy:
        """Only 127.0.0.0/8 and ::1: what tests on a shared machine may touch."""
        return cls(base_networks=LOOPBACK_NETWORKS)

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        """Every allowed network."""
        return self.base_networks + self.extra_networks

    def allows(self, address: str) -> bool:
        """True when ``address`` is a literal IP inside an allowed network."""
        parsed = parse_address(address)
        if parsed is None or parsed.is_unspecified or parsed.is_multicast:
            return False
        return any(parsed in network for network in self.networks)

    def filter(self, addresses: Iterable[str]) -> list[str]:
        """The allowed addresses, in their original order."""
        return [address for address in addresses if self.allows(address)]

"""Advertising the doorbell over mDNS / DNS-SD (protocol section 1)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import contextlib
import ipaddress
import logging

import ifaddr
from zeroconf import InterfaceChoice, IPVersion, NonUniqueNameException, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_doorstep._tcp.local."
MAX_INSTANCE_BYTES = 63


def is_unspecified(host: str) -> bool:
    """True for bind-everything addresses such as ``0.0.0.0`` and ``::``."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return host == ""


def local_addresses() -> list[str]:
    """Every usable address of this machine, for a doorbell bound to all interfaces.

    Loopback and IPv6 link-local addresses are left out: a hub elsewhere on the LAN
    cannot reach them, and link-local ones need a scope id that A/AAAA records lack.
    """
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            address = ipaddress.ip_address(text)
            if address.is_loopback or address.is_link_local or address.is_unspecified:
                continue
            found.append(str(address))
    return found


def choose_addresses(
    advertise: Sequence[str], bind_host: str, interfaces: Sequence[str] | None
) -> list[str]:
    """Pick the addresses for the A/AAAA records, most explicit setting first."""
    if advertise:
        return [str(ipaddress.ip_address(a)) for a in advertise]
    if not is_unspecified(bind_host):
        with contextlib.suppress(ValueError):
            return [str(ipaddress.ip_address(bind_host))]
    if interfaces:
        ips: list[str] = []
        for iface in interfaces:
            with contextlib.suppress(ValueError):
                ips.append(str(ipaddress.ip_address(iface)))
        if ips:
            return ips
    return local_addresses()


class Advertiser:
    """Keeps one ``_doorstep._tcp`` service registered while the doorbell runs."""

    def __init__(
        self,
        instance: str,
        host_label: str,
        port: int,
        addresses: Sequence[str],
        interfaces: Sequence[str] | None,
    ) -> None:
        if not 0 < len(instance.encode()) <= MAX_INSTANCE_BYTES:
            raise ValueError(f"Doorbell name must be 1-{MAX_INSTANCE_BYTES} bytes of UTF-8")
        self._instance = instance
        self._server = f"{host_label}.local."
        self._port = port
        self._addresses = list(addresses)
        self._interfaces = list(interfaces) if interfaces else None
        self._zeroconf: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None
        self._registration: asyncio.Task[None] | None = None
        self.registered = asyncio.Event()

    @property
    def service_name(self) -> str | None:
        """The full service name in use (it can differ if the name was taken)."""
        return self._info.name if self._info is not None else None

    def _make_info(self, txt: dict[str, str], name: str | None = None) -> ServiceInfo:
        return ServiceInfo(
            SERVICE_TYPE,
            name or f"{self._instance}.{SERVICE_TYPE}",
            port=self._port,
            properties=dict(txt),
            server=self._server,
            parsed_addresses=self._addresses,
        )

    def start(self, txt: dict[str, str]) -> None:
        """Start advertising. Probing for name conflicts takes about a second, so it
        runs in the background; ``registered`` is set when it is done."""
        interfaces = self._interfaces if self._interfaces is not None else InterfaceChoice.All
        # With explicit interfaces zeroconf derives the IP version from them itself.
        ip_version: IPVersion | None = None
        if self._interfaces is None:
            versions = {ipaddress.ip_address(a).version for a in self._addresses}
            ip_version = IPVersion.V4Only if versions <= {4} else IPVersion.All
        self._zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=ip_version)
        self._info = self._make_info(txt)
        self._registration = asyncio.create_task(self._register(), name="doorbell-mdns")

    async def _register(self) -> None:
        assert self._zeroconf is not None
        assert self._info is not None
        info = self._info
        try:
            broadcast = await self._zeroconf.async_register_service(info, allow_name_change=True)
            self.registered.set()
            _LOGGER.info("Advertising %s on %s", info.name, ", ".join(self._addresses))
            await broadcast
            if self._info is not info:
                # The TXT record changed while the name was being probed.
                await (await self._zeroconf.async_update_service(self._info))
        except NonUniqueNameException:
            _LOGGER.error("mDNS name %s is taken and could not be changed", self._info.name)

    async def update(self, txt: dict[str, str]) -> None:
        """Change the TXT record, for example after a factory reset changed ``fp``.

        Returns once the new record has been announced.
        """
        if self._zeroconf is None or self._info is None:
            return
        self._info = self._make_info(txt, self._info.name)
        if self._registration is not None and not self._registration.done():
            # Registration is still going on and announces the newest record when it
            # is done; shielded so that a cancelled caller does not cancel it.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._registration)
            return
        if self.registered.is_set():
            # The outer await queues the announcement; the inner one waits until it
            # has gone out, so no zeroconf task outlives this call.
            await (await self._zeroconf.async_update_service(self._info))

    async def stop(self) -> None:
        """Say goodbye on the network and close the sockets."""
        if self._registration is not None:
            if not self.registered.is_set():
                self._registration.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._registration
        if self._zeroconf is not None:
            if self.registered.is_set() and self._info is not None:
                # Wait for the goodbye packets, so hubs forget the doorbell at once.
                await (await self._zeroconf.async_unregister_service(self._info))
            await self._zeroconf.async_close()
        self._zeroconf = None
        self._registration = None

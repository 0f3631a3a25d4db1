"""Who may watch: the home-network rule for live video, snapshots and clips (invariant I3).

"At home" means the browser itself is on the home network, not the last hop before the
hub: a reverse proxy or Home Assistant Cloud's remote UI usually reaches the hub from a
private address while the person is anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
import ipaddress
import logging
from typing import Any, Final

from aiohttp import hdrs, web
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import current_request
from homeassistant.helpers.network import is_cloud_connection

from .const import (
    CONF_ALLOW_REMOTE_LIVE_VIEW,
    CONF_HOME_NETWORKS,
    CONF_HUB_BROWSERS_AT_HOME,
    CONF_KIND,
    DOMAIN,
    KIND_SHARING,
)
from .media import NetworkPolicy
from .media.network import IPAddress, IPNetwork, parse_address

_LOGGER = logging.getLogger(__name__)

# Everything, for owners who allow live view from outside the home network.
_ANYWHERE = ("0.0.0.0/0", "::/0")


def home_network_policy(options: Mapping[str, Any]) -> NetworkPolicy:
    """Where media may flow: private and link-local ranges plus the owner's own networks.

    With live view from outside allowed, any address may be used, still without STUN or
    TURN, so only browsers that reach the hub directly can connect.
    """
    networks = list(options.get(CONF_HOME_NETWORKS, []))
    if options.get(CONF_ALLOW_REMOTE_LIVE_VIEW, False):
        networks.extend(_ANYWHERE)
    return NetworkPolicy.from_strings(networks)


def live_view_settings(options: Mapping[str, Any]) -> tuple[bool, tuple[str, ...]]:
    """The options that decide who may watch, comparable between two moments."""
    return (
        bool(options.get(CONF_ALLOW_REMOTE_LIVE_VIEW, False)),
        tuple(options.get(CONF_HOME_NETWORKS, [])),
    )


def parse_home_networks(text: str) -> list[str]:
    """Turn the options field (comma or newline separated CIDRs) into a clean list.

    Raises ValueError on anything that is not a network.
    """
    networks = []
    for item in text.replace("\n", ",").split(","):
        if item := item.strip():
            networks.append(str(ipaddress.ip_network(item, strict=False)))
    return networks


class Whereabouts(StrEnum):
    """Where a client stands, as far as the hub can tell; every kind but HOME is outside."""

    HOME = "home"
    # An address outside the home networks (after Home Assistant's trusted-proxy handling).
    OUTSIDE_ADDRESS = "outside_address"
    # Home Assistant Cloud's remote UI: the browser is wherever the person is.
    CLOUD = "cloud"
    # A trusted proxy that did not say whom it forwards for.
    PROXY_HID_CLIENT = "proxy_hid_client"
    # Forwarding headers Home Assistant did not act on: a proxy it does not trust, or
    # a trusted one that forwards for a proxy it does not trust.
    UNTRUSTED_PROXY = "untrusted_proxy"
    # A connection from the hub itself (loopback) that names nobody: a browser on the
    # hub, or a tunnel ending there (ssh -R, cloudflared, ngrok, socat) carrying a
    # browser from anywhere. Outside unless the owner says browsers on the hub are home.
    HUB_ITSELF = "hub_itself"


# Headers a reverse proxy adds to say whom it forwards for. Home Assistant acts only on
# X-Forwarded-For, and only from a peer in `http: trusted_proxies`; any of these from
# another peer means a proxy it does not vouch for stands between the hub and the person.
_PROXY_HEADERS: Final = (
    hdrs.X_FORWARDED_FOR,
    hdrs.FORWARDED,
    hdrs.X_FORWARDED_HOST,
    hdrs.X_FORWARDED_PROTO,
    hdrs.X_FORWARDED_PORT,
    hdrs.VIA,
    "X-Real-IP",
    "X-Forwarded-Server",
    "X-Original-Forwarded-For",
    "X-Client-IP",
    "X-Cluster-Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "Fastly-Client-IP",
)


def _peer_address(request: web.Request) -> IPAddress | None:
    """The address at the other end of the TCP connection, before any header is read."""
    if request.transport is None:
        return None
    peer = request.transport.get_extra_info("peername")
    if not peer:
        return None
    return parse_address(str(peer[0]))


def _trusted_proxies(hass: HomeAssistant) -> list[IPNetwork]:
    """The owner's `http: trusted_proxies`, as Home Assistant's HTTP server holds them."""
    server = getattr(hass, "http", None)
    return list(getattr(server, "trusted_proxies", None) or [])


def _forwarded_chain(request: web.Request) -> list[str]:
    """Every X-Forwarded-For entry, left (claimed client) to right (nearest proxy)."""
    return [
        item.strip()
        for header in request.headers.getall(hdrs.X_FORWARDED_FOR, [])
        for item in header.split(",")
    ]


def _first_untrusted_hop(chain: list[str], trusted: list[IPNetwork]) -> int | None:
    """The index of the entry Home Assistant takes as the client, None if one is bad.

    Home Assistant walks X-Forwarded-For from the right past trusted proxies and takes
    the first other entry (the leftmost when all are trusted). When that is not the
    leftmost, the address it took is itself a proxy that forwarded for someone else,
    and nobody vouched for it.
    """
    hops = [parse_address(item) for item in chain]
    for index in range(len(hops) - 1, -1, -1):
        hop = hops[index]
        if hop is None:
            return None
        if not any(hop in network for network in trusted):
            return index
    return 0


def hub_browsers_at_home(hass: HomeAssistant) -> bool:
    """Whether the owner counts connections from the hub itself as the home network
    (an option of the sharing entry, off by default)."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.data.get(CONF_KIND) == KIND_SHARING:
            return bool(entry.options.get(CONF_HUB_BROWSERS_AT_HOME, False))
    return False


def client_whereabouts(
    hass: HomeAssistant, request: web.Request, policy: NetworkPolicy
) -> Whereabouts:
    """Where the browser behind ``request`` is, judged against ``policy``.

    Home Assistant's forwarded middleware has already replaced ``request.remote`` with
    the client it found in X-Forwarded-For when the peer is a trusted proxy (and refused
    the request when an untrusted peer sent that header). What it leaves open, and this
    closes:

    - a Home Assistant Cloud remote-UI request comes from a private address;
    - a trusted proxy that sends no X-Forwarded-For leaves ``request.remote`` at the
      proxy's own (often loopback) address;
    - Home Assistant stops at the first address that is not a trusted proxy, so when an
      untrusted proxy forwards for someone else, that proxy's private address would pass
      for the client's;
    - other forwarding headers (Forwarded, X-Real-IP, ...) from an untrusted peer go
      unread, and the peer's own, often private, address would pass for the client's.

    - a connection from loopback that names nobody started on the hub itself, where a
      TCP tunnel from anywhere (ssh -R, cloudflared, ngrok, socat) ends as readily as a
      local browser: outside, unless the owner counts browsers on the hub as home.

    A proxy on another untrusted address that sends no forwarding header at all cannot
    be told from a browser at that address; docs/privacy.md says so.
    """
    if is_cloud_connection(hass):
        return Whereabouts.CLOUD
    peer = _peer_address(request)
    trusted = _trusted_proxies(hass)
    chain = _forwarded_chain(request)
    if peer is not None and any(peer in network for network in trusted):
        if not chain:
            return Whereabouts.PROXY_HID_CLIENT
        if _first_untrusted_hop(chain, trusted) != 0:
            return Whereabouts.UNTRUSTED_PROXY
    elif any(header in request.headers for header in _PROXY_HEADERS):
        return Whereabouts.UNTRUSTED_PROXY
    elif peer is not None and peer.is_loopback and not hub_browsers_at_home(hass):
        return Whereabouts.HUB_ITSELF
    address = request.remote
    if address is None or not policy.allows(address):
        return Whereabouts.OUTSIDE_ADDRESS
    return Whereabouts.HOME


def browser_may_watch(hass: HomeAssistant, options: Mapping[str, Any]) -> bool:
    """Whether video, a snapshot or a clip may go to the browser behind this call.

    The one place that answers "is this client at home?" for every route to footage
    (camera proxy, WebRTC offer, clip, thumbnail and preview). A call that did not come
    through Home Assistant's HTTP server (a service, an automation, Home Assistant
    itself) has no browser to send to; the image then stays inside Home Assistant. The
    owner's "allow live view from outside the home network" option, and the networks
    they add, count where the caller passes the doorbell's options (live view and
    snapshots); the clip routes pass none, so clips stay at home.
    """
    request = current_request.get()
    if request is None:
        return True
    if options.get(CONF_ALLOW_REMOTE_LIVE_VIEW, False):
        return True
    whereabouts = client_whereabouts(hass, request, home_network_policy(options))
    if whereabouts is not Whereabouts.HOME:
        _LOGGER.info(
            "Refused footage to %s (peer %s): %s",
            request.remote,
            _peer_address(request),
            whereabouts.value,
        )
        return False
    return True

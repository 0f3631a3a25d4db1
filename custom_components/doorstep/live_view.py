"""Who may watch: the home-network rule for live video and snapshots (invariant I3)."""

from __future__ import annotations

from collections.abc import Mapping
import ipaddress
from typing import Any

from homeassistant.helpers.http import current_request

from .const import CONF_ALLOW_REMOTE_LIVE_VIEW, CONF_HOME_NETWORKS
from .media import NetworkPolicy

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


def requester_address() -> str | None:
    """The address of the browser behind the current HTTP or websocket request, if any.

    Home Assistant sets this for every request, and websocket commands run in a task
    copied from the socket's request, so it is the address of the person's browser
    (after Home Assistant's own trusted-proxy handling).
    """
    request = current_request.get()
    return request.remote if request is not None else None


def may_watch(options: Mapping[str, Any], address: str | None) -> bool:
    """Whether video may go to this address under the owner's options.

    No address means the call did not come from a browser (a service or Home
    Assistant itself); the image then stays inside Home Assistant.
    """
    return address is None or home_network_policy(options).allows(address)

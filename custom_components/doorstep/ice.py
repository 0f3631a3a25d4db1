"""Keep the browser's side of live view at home too (invariant I4).

Home Assistant tells every browser to use a STUN server during WebRTC, and unless the
owner configured ``homeassistant: webrtc: ice_servers`` that is its public
stun.home-assistant.io. Doorstep's media never needs it, but the browser would still
contact it. Doorstep runs a STUN responder on the hub and, while Home Assistant's
default is in force, raises a repair issue telling the owner how to point
``ice_servers`` at it.

Considered and not taken: filtering the list inside Doorstep's camera entity. Core
builds that list in a final method and appends its servers after ours, so a filter
would depend on core's internals, and would not cover other integrations' cameras.
"""

from __future__ import annotations

import logging

from homeassistant.components import network
from homeassistant.components.network.const import MDNS_TARGET_IP
from homeassistant.components.web_rtc import DATA_ICE_SERVERS_USER
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .media import NetworkPolicy
from .media.stun import DEFAULT_STUN_PORT, StunResponder

_LOGGER = logging.getLogger(__name__)

ISSUE_PUBLIC_STUN = "public_stun_server"


async def async_start_local_stun(hass: HomeAssistant) -> None:
    """Answer STUN on the hub and tell the owner how to use it instead of the public server."""
    policy = NetworkPolicy()
    responders: list[StunResponder] = []
    errors: list[str] = []
    for host in await _home_addresses(hass, policy):
        responder = StunResponder(policy)
        try:
            await responder.start(host, DEFAULT_STUN_PORT)
        except OSError as err:
            errors.append(f"{host}: {err}")
        else:
            responders.append(responder)
    listening = bool(responders)
    if not listening:
        _LOGGER.warning(
            "Could not start the local STUN responder on UDP port %s (%s); "
            "point ice_servers at another STUN server inside your home instead",
            DEFAULT_STUN_PORT,
            "; ".join(errors),
        )
    else:
        if errors:
            _LOGGER.debug("The local STUN responder could not listen on %s", "; ".join(errors))

        @callback
        def _stop(_event: Event) -> None:
            for responder in responders:
                responder.close()

        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _stop)

    if owner_chose_ice_servers(hass):
        ir.async_delete_issue(hass, DOMAIN, ISSUE_PUBLIC_STUN)
        return
    try:
        hub_ip = await network.async_get_source_ip(hass, target_ip=MDNS_TARGET_IP)
    except HomeAssistantError:
        hub_ip = "HUB-ADDRESS"
    ir.async_create_issue(
        hass,
        DOMAIN,
        ISSUE_PUBLIC_STUN,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_PUBLIC_STUN if listening else f"{ISSUE_PUBLIC_STUN}_no_responder",
        translation_placeholders={"stun_url": f"stun:{hub_ip}:{DEFAULT_STUN_PORT}"},
    )


async def _home_addresses(hass: HomeAssistant, policy: NetworkPolicy) -> list[str]:
    """Where the responder listens: the addresses of the network adapters Home Assistant
    uses (Settings > Network) that are on the home network, and loopback, which never
    leaves the machine. Not 0.0.0.0, which would include a VPN or a public interface."""
    adapters = await network.async_get_adapters(hass)
    addresses = [str(ip) for ip in network.async_get_enabled_source_ips_from_adapters(adapters)]
    return list(dict.fromkeys(["127.0.0.1", *policy.filter(addresses)]))


def owner_chose_ice_servers(hass: HomeAssistant) -> bool:
    """Whether the owner set ICE servers, so Home Assistant hands browsers no public STUN.

    Home Assistant 2026.10 uses its public server only when neither
    `homeassistant: webrtc: ice_servers` nor `web_rtc: ice_servers` names one
    (homeassistant/components/web_rtc: async_get_ice_servers).
    """
    return bool(hass.config.webrtc.ice_servers) or (
        DATA_ICE_SERVERS_USER in hass.data and bool(list(hass.data[DATA_ICE_SERVERS_USER]))
    )

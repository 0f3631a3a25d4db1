"""Where devices that push their events (DoorBird) call the hub.

The URL carries a per-device secret, made when the device was added; the view is
outside Home Assistant's login because door stations cannot log in. A call that names
no known secret, or comes from another address than the device's, changes nothing and
counts as a failed login for Home Assistant's IP ban.
"""

from __future__ import annotations

import hmac
from http import HTTPStatus
import ipaddress
import logging

from aiohttp import web
from homeassistant.components.http.ban import process_wrong_login
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.helpers.network import get_url

from .const import CONF_PUSH_SECRET, DOMAIN
from .data import DoorstepConfigEntry

_LOGGER = logging.getLogger(__name__)

PUSH_PATH = "/api/doorstep/push"


def hub_url(hass: HomeAssistant) -> str | None:
    """The hub's own address on the home network, for devices to call; None if unknown."""
    try:
        return get_url(hass, allow_external=False, allow_cloud=False, prefer_external=False)
    except HomeAssistantError:
        return None


def async_register_push_view(hass: HomeAssistant) -> None:
    """Register the push endpoint once per Home Assistant."""
    hass.http.register_view(PushView())


class PushView(HomeAssistantView):
    """``GET /api/doorstep/push/{secret}?event=doorbell``: a device reports an event."""

    url = PUSH_PATH + "/{secret}"
    name = "api:doorstep:push"
    requires_auth = False

    async def get(self, request: web.Request, secret: str) -> web.Response:
        """Hand the event to the device's driver."""
        hass = request.app[KEY_HASS]
        entry = _entry_for_secret(hass, secret)
        if entry is None or not _from_device(request, entry.runtime_data.doorbell.host):
            await process_wrong_login(request)
            return web.Response(status=HTTPStatus.NOT_FOUND)
        event = request.query.get("event", "")
        if not entry.runtime_data.doorbell.handle_push(event):
            _LOGGER.debug("%s pushed an event Doorstep does not know", entry.title)
            return web.Response(status=HTTPStatus.BAD_REQUEST)
        return web.Response(status=HTTPStatus.OK)


def _entry_for_secret(hass: HomeAssistant, secret: str) -> DoorstepConfigEntry | None:
    found = None
    for entry in hass.config_entries.async_entries(DOMAIN, include_ignore=False):
        stored = entry.data.get(CONF_PUSH_SECRET)
        # Every entry is compared, so the time taken says nothing about which matched.
        if isinstance(stored, str) and hmac.compare_digest(stored.encode(), secret.encode()):
            found = entry
    if found is None or found.state is not ConfigEntryState.LOADED:
        return None
    return found


def _from_device(request: web.Request, host: str) -> bool:
    """Whether the caller is the device; a host name cannot be checked, and passes."""
    try:
        expected = ipaddress.ip_address(host)
    except ValueError:
        return True
    try:
        return request.remote is not None and ipaddress.ip_address(request.remote) == expected
    except ValueError:
        return False

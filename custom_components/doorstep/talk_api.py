"""``doorstep/live/talk``: the card's push-to-talk button.

The card holds a live view opened through Home Assistant's own ``camera/webrtc/offer``
command, which tells it the session id. While the button is held it sends
``talking: true`` for that session, and ``talking: false`` when it is let go; the hub
then forwards that browser's microphone track to the doorbell's speaker, or stops.
"""

from __future__ import annotations

from typing import Any

from homeassistant.auth.permissions.const import POLICY_READ
from homeassistant.components import websocket_api
from homeassistant.components.websocket_api import ActiveConnection
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, Unauthorized
from homeassistant.helpers import config_validation as cv, entity_registry as er
import probatio

from .const import DOMAIN
from .data import DoorstepConfigEntry
from .device import DoorstepError
from .errors import translated_error
from .live_view import browser_may_watch
from .media import MediaError

COMMAND_TALK = "doorstep/live/talk"


@callback
def async_register_talk_commands(hass: HomeAssistant) -> None:
    """Register the push-to-talk command."""
    websocket_api.async_register_command(hass, ws_talk)


def _send(connection: ActiveConnection, msg_id: int, code: str, err: HomeAssistantError) -> None:
    connection.send_error(
        msg_id,
        code,
        str(err),
        translation_key=err.translation_key,
        translation_domain=err.translation_domain,
        translation_placeholders=err.translation_placeholders,
    )


def _error(key: str) -> HomeAssistantError:
    return HomeAssistantError(translation_domain=DOMAIN, translation_key=key)


def _entry_of(hass: HomeAssistant, entity_id: str) -> DoorstepConfigEntry | None:
    entity = er.async_get(hass).async_get(entity_id)
    if entity is None or entity.platform != DOMAIN or entity.config_entry_id is None:
        return None
    entry = hass.config_entries.async_get_entry(entity.config_entry_id)
    if entry is None or entry.domain != DOMAIN or not hasattr(entry, "runtime_data"):
        return None
    return entry


@websocket_api.websocket_command(
    {
        probatio.Required("type"): COMMAND_TALK,
        probatio.Required("entity_id"): cv.entity_id,
        probatio.Required("session_id"): str,
        probatio.Required("talking"): bool,
    }
)
@websocket_api.async_response
async def ws_talk(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """Start or stop forwarding one live view's microphone to the doorbell."""
    entity_id: str = msg["entity_id"]
    if not connection.user.permissions.check_entity(entity_id, POLICY_READ):
        raise Unauthorized(entity_id=entity_id, permission=POLICY_READ)
    entry = _entry_of(hass, entity_id)
    if entry is None:
        _send(connection, msg["id"], "not_found", _error("talk_unknown_camera"))
        return
    data = entry.runtime_data
    # I3: talk-back, like the sound and picture it answers, stays on the home network.
    if not browser_may_watch(hass, entry.options):
        _send(connection, msg["id"], "home_network_only", _error("talk_outside_home_network"))
        return
    session = data.sessions.get(msg["session_id"])
    if session is None:
        _send(connection, msg["id"], "not_found", _error("unknown_webrtc_session"))
        return
    try:
        if msg["talking"]:
            await session.start_talking()
        else:
            await session.stop_talking()
    except (DoorstepError, MediaError) as err:
        _send(connection, msg["id"], "talk_refused", translated_error(err))
        return
    connection.send_result(msg["id"], {"talking": session.talking})

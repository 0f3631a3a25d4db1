"""One Decline button per pending footage request."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_KIND, DOMAIN, KIND_SHARING
from .sharing import RequestClosed, RequestState, SharingError
from .sharing_hub import SharingConfigEntry, SharingHub, async_actor_from_context
from .switch import sharing_device_info

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SharingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Keep one Decline button per pending request."""
    if entry.data.get(CONF_KIND) != KIND_SHARING:
        return
    hub = entry.runtime_data
    shown: dict[str, DeclineRequestButton] = {}
    registry = er.async_get(hass)

    @callback
    def sync() -> None:
        pending = {r.id for r in hub.gate.requests() if r.state is RequestState.PENDING}
        new = [DeclineRequestButton(hub, request_id) for request_id in pending - shown.keys()]
        for button in new:
            shown[button.request_id] = button
        if new:
            async_add_entities(new)
        for request_id in list(shown.keys() - pending):
            button = shown.pop(request_id)
            if button.registry_entry is not None:
                registry.async_remove(button.entity_id)

    sync()
    entry.async_on_unload(hub.add_listener(sync))


class DeclineRequestButton(ButtonEntity):
    """Say no. The requester sees only 'closed', the same as an expiry."""

    _attr_has_entity_name = True
    _attr_translation_key = "decline_request"
    _attr_should_poll = False

    def __init__(self, hub: SharingHub, request_id: str) -> None:
        """Named after the requester and their reference."""
        self._hub = hub
        self.request_id = request_id
        request = hub.gate.get(request_id)
        requester = hub.gate.requester(request.requester_id)
        self._attr_unique_id = f"decline_request_{request_id}"
        self._attr_device_info = sharing_device_info()
        self._attr_translation_placeholders = {
            "requester": requester.name,
            "reference": request.reference,
        }

    async def async_press(self) -> None:
        """Decline the request."""
        actor = await async_actor_from_context(self.hass, self._context, self.entity_id)
        try:
            await self._hub.gate.decline(self.request_id, actor)
        except RequestClosed:
            return
        except SharingError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="sharing_failed",
                translation_placeholders={"error": str(err)},
            ) from err

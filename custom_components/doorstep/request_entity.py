"""What the per-request switch and Decline button share: naming, device, and keeping one
entity per request as requests come and go."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN, KIND_SHARING
from .sharing import ShareRequest
from .sharing_hub import SharingConfigEntry, SharingHub


def sharing_device_info() -> DeviceInfo:
    """The 'Doorstep sharing' service device that holds the request entities."""
    return DeviceInfo(
        identifiers={(DOMAIN, KIND_SHARING)},
        name="Doorstep sharing",
        entry_type=DeviceEntryType.SERVICE,
    )


class RequestEntity(Entity):
    """An entity about one footage request, named after its requester and reference."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    # Set by subclasses: the start of the unique id, also the translation key.
    kind: str

    def __init__(self, hub: SharingHub, request_id: str) -> None:
        """Name and identify the entity from the request."""
        self._hub = hub
        self.request_id = request_id
        request = hub.gate.get(request_id)
        requester = hub.gate.requester(request.requester_id)
        self._attr_unique_id = f"{self.kind}_{request_id}"
        self._attr_translation_key = self.kind
        self._attr_device_info = sharing_device_info()
        self._attr_translation_placeholders = {
            "requester": requester.name,
            "reference": request.reference,
        }

    @property
    def _request(self) -> ShareRequest:
        return self._hub.gate.get(self.request_id)


def async_keep_request_entities[T: RequestEntity](
    hass: HomeAssistant,
    entry: SharingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    wanted: Callable[[SharingHub], Iterable[str]],
    make: Callable[[SharingHub, str], T],
) -> None:
    """One entity per request id in ``wanted``: add new ones, drop gone ones, refresh the rest."""
    hub = entry.runtime_data
    shown: dict[str, T] = {}
    registry = er.async_get(hass)

    @callback
    def sync() -> None:
        ids = set(wanted(hub))
        new = [make(hub, request_id) for request_id in ids - shown.keys()]
        for entity in new:
            shown[entity.request_id] = entity
        if new:
            async_add_entities(new)
        for request_id in list(shown.keys() - ids):
            gone = shown.pop(request_id)
            if gone.registry_entry is not None:
                registry.async_remove(gone.entity_id)
        for entity in shown.values():
            if entity.hass is not None:
                entity.async_write_ha_state()

    sync()
    entry.async_on_unload(hub.add_listener(sync))

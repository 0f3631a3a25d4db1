"""Sensors: how many people are watching a doorbell live."""

from __future__ import annotations

from typing import cast

from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_KIND, KIND_SHARING
from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry, DoorstepData
from .entity import DoorstepEntity
from .request_entity import sharing_device_info
from .sharing import RequestState
from .sharing_hub import SharingHub

PARALLEL_UPDATES = 0

PENDING_REQUESTS = SensorEntityDescription(
    key="pending_requests",
    translation_key="pending_requests",
    state_class=SensorStateClass.MEASUREMENT,
)

LIVE_VIEWERS = SensorEntityDescription(
    key="live_viewers",
    translation_key="live_viewers",
    state_class=SensorStateClass.MEASUREMENT,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DoorstepConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A doorbell gets its live viewers sensor; the sharing entry its pending count."""
    if entry.data.get(CONF_KIND) == KIND_SHARING:
        hub = cast(SharingHub, entry.runtime_data)
        async_add_entities([PendingRequestsSensor(hub)])
        return
    async_add_entities([LiveViewersSensor(entry.runtime_data.coordinator, entry.runtime_data)])


class LiveViewersSensor(DoorstepEntity, SensorEntity):
    """Counts browsers receiving this doorbell's live video through the hub."""

    def __init__(self, coordinator: DoorstepCoordinator, data: DoorstepData) -> None:
        """Follow the relay's viewer count."""
        super().__init__(coordinator, LIVE_VIEWERS)
        self._data = data

    async def async_added_to_hass(self) -> None:
        """Update whenever a viewer joins or leaves."""
        await super().async_added_to_hass()
        self.async_on_remove(self._data.relay.add_viewer_listener(self._viewers_changed))

    @callback
    def _viewers_changed(self, _count: int) -> None:
        self.async_write_ha_state()

    @property
    def available(self) -> bool:
        """Always known: nobody watching an offline doorbell is still a count."""
        return True

    @property
    def native_value(self) -> int:
        """Viewers right now."""
        return self._data.relay.viewer_count


class PendingRequestsSensor(SensorEntity):
    """How many footage requests wait for the household's answer."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description = PENDING_REQUESTS

    def __init__(self, hub: SharingHub) -> None:
        """Counts the gate's pending requests."""
        self._hub = hub
        self._attr_unique_id = "sharing_pending_requests"
        self._attr_device_info = sharing_device_info()

    async def async_added_to_hass(self) -> None:
        """Recount on every change."""
        self.async_on_remove(self._hub.add_listener(self.async_write_ha_state))

    @property
    def native_value(self) -> int:
        """Requests still pending."""
        return sum(1 for r in self._hub.gate.requests() if r.state is RequestState.PENDING)

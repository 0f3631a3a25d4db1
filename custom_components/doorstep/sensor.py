"""Sensors: how many people are watching a doorbell live."""

from __future__ import annotations

from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry, DoorstepData
from .entity import DoorstepEntity

PARALLEL_UPDATES = 0

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
    """Add the live viewers sensor."""
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

"""Binary sensors: motion, and whether the doorbell is connected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import DoorbellState
from .data import DoorstepConfigEntry
from .device import Capabilities
from .entity import DoorstepEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class DoorstepBinarySensorEntityDescription(BinarySensorEntityDescription):
    """How a binary sensor reads the doorbell's state."""

    value_fn: Callable[[DoorbellState], bool]
    supported_fn: Callable[[Capabilities], bool] = lambda _capabilities: True
    # The connectivity sensor must stay available to be able to say "disconnected".
    always_available: bool = False


BINARY_SENSOR_DESCRIPTIONS: tuple[DoorstepBinarySensorEntityDescription, ...] = (
    DoorstepBinarySensorEntityDescription(
        key="motion",
        device_class=BinarySensorDeviceClass.MOTION,
        value_fn=lambda state: state.motion,
        supported_fn=lambda capabilities: capabilities.has_motion,
    ),
    DoorstepBinarySensorEntityDescription(
        key="connectivity",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: state.connected,
        always_available=True,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DoorstepConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors of one doorbell."""
    coordinator = entry.runtime_data.coordinator
    capabilities = entry.runtime_data.doorbell.capabilities
    async_add_entities(
        DoorstepBinarySensorEntity(coordinator, description)
        for description in BINARY_SENSOR_DESCRIPTIONS
        if description.supported_fn(capabilities)
    )


class DoorstepBinarySensorEntity(DoorstepEntity, BinarySensorEntity):
    """A binary sensor fed by the doorbell's event stream."""

    entity_description: DoorstepBinarySensorEntityDescription

    @property
    def available(self) -> bool:
        """Connectivity is always known; everything else needs the connection."""
        return self.entity_description.always_available or super().available

    @property
    def is_on(self) -> bool:
        """Read the value from the coordinator's latest state."""
        return self.entity_description.value_fn(self.coordinator.data)

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

from .coordinator import DoorbellState, DoorstepCoordinator
from .data import DoorstepConfigEntry
from .device import Capabilities
from .entity import DoorstepEntity
from .media.audio import TalkFloor

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
    entities: list[BinarySensorEntity] = [
        DoorstepBinarySensorEntity(coordinator, description)
        for description in BINARY_SENSOR_DESCRIPTIONS
        if description.supported_fn(capabilities)
    ]
    if (talk := entry.runtime_data.talk) is not None:
        entities.append(DoorstepTalkingSensor(coordinator, talk))
    async_add_entities(entities)


TALKING = BinarySensorEntityDescription(key="talking", translation_key="talking")


class DoorstepTalkingSensor(DoorstepEntity, BinarySensorEntity):
    """On while someone talks through the doorbell's speaker from this hub."""

    def __init__(self, coordinator: DoorstepCoordinator, talk: TalkFloor) -> None:
        """Follows the doorbell's talk floor."""
        super().__init__(coordinator, TALKING)
        self._talk = talk

    async def async_added_to_hass(self) -> None:
        """Write the state whenever someone starts or stops talking."""
        await super().async_added_to_hass()
        self.async_on_remove(self._talk.add_listener(self.async_write_ha_state))

    @property
    def available(self) -> bool:
        """Known on the hub whether or not the doorbell is online."""
        return True

    @property
    def is_on(self) -> bool:
        """Someone holds the floor."""
        return self._talk.holder is not None


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

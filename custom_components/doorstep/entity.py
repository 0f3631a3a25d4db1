"""Base entity for Doorstep doorbells."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import DoorstepCoordinator


class DoorstepEntity(CoordinatorEntity[DoorstepCoordinator]):
    """An entity of one doorbell; unavailable while its event stream is down."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: DoorstepCoordinator, description: EntityDescription) -> None:
        """Name the entity after its description, under the doorbell's device."""
        super().__init__(coordinator)
        self.entity_description = description
        device = coordinator.device
        self._attr_unique_id = f"{device.device_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, device.device_id)},
            name=device.name,
            manufacturer=device.manufacturer,
            model=device.model,
            sw_version=device.firmware,
        )

    @property
    def available(self) -> bool:
        """Available while the doorbell's event stream is connected."""
        return self.coordinator.data.connected

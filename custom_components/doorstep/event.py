"""Event entities: the doorbell button and motion, for devices that have them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.event import (
    DoorbellEventType,
    EventDeviceClass,
    EventEntity,
    EventEntityDescription,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry
from .device import Capabilities, EventType
from .entity import DoorstepEntity

# Push only: nothing here is polled, and entity updates are unbounded.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class DoorstepEventEntityDescription(EventEntityDescription):
    """Which frames of the doorbell's event stream an event entity reports."""

    reports: frozenset[EventType]
    supported_fn: Callable[[Capabilities], bool]


EVENT_DESCRIPTIONS: tuple[DoorstepEventEntityDescription, ...] = (
    DoorstepEventEntityDescription(
        key="doorbell",
        translation_key="doorbell",
        device_class=EventDeviceClass.DOORBELL,
        # Home Assistant's standard doorbell event type, which its `doorbell.rang`
        # trigger reads; the protocol's frame has the same name.
        event_types=[DoorbellEventType.RING],
        reports=frozenset({EventType.RING}),
        supported_fn=lambda capabilities: capabilities.has_button,
    ),
    DoorstepEventEntityDescription(
        key="motion",
        translation_key="motion",
        device_class=EventDeviceClass.MOTION,
        event_types=[EventType.MOTION_START.value, EventType.MOTION_STOP.value],
        reports=frozenset({EventType.MOTION_START, EventType.MOTION_STOP}),
        supported_fn=lambda capabilities: capabilities.has_motion,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DoorstepConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the event entities of one doorbell."""
    coordinator = entry.runtime_data.coordinator
    capabilities = entry.runtime_data.doorbell.capabilities
    async_add_entities(
        DoorstepEventEntity(coordinator, description)
        for description in EVENT_DESCRIPTIONS
        if description.supported_fn(capabilities)
    )


class DoorstepEventEntity(DoorstepEntity, EventEntity):
    """Reports each matching frame from the doorbell once."""

    entity_description: DoorstepEventEntityDescription

    def __init__(
        self, coordinator: DoorstepCoordinator, description: DoorstepEventEntityDescription
    ) -> None:
        """Frames that arrived before the entity existed are not news to it."""
        super().__init__(coordinator, description)
        self._last_reported = coordinator.data.last_event

    @callback
    def _handle_coordinator_update(self) -> None:
        event = self.coordinator.data.last_event
        if (
            event is not None
            and event is not self._last_reported
            and event.type in self.entity_description.reports
        ):
            self._last_reported = event
            self._trigger_event(event.type.value, {"device_time": event.timestamp.isoformat()})
        # Written on every update so that availability follows the connection.
        self.async_write_ha_state()

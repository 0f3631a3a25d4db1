"""Sensors: how many people are watching a doorbell live, how much disk its clips use,
and how many footage requests wait for an answer."""

from __future__ import annotations

from typing import cast

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_KIND, KIND_SHARING, SIGNAL_CLIPS_CHANGED
from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry, DoorstepData
from .entity import DoorstepEntity
from .media.clips import ClipStore
from .recording import DATA_CLIPS
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

CLIP_STORAGE = SensorEntityDescription(
    key="clip_storage",
    translation_key="clip_storage",
    device_class=SensorDeviceClass.DATA_SIZE,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfInformation.BYTES,
    suggested_unit_of_measurement=UnitOfInformation.MEGABYTES,
    suggested_display_precision=1,
    entity_category=EntityCategory.DIAGNOSTIC,
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
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        [
            LiveViewersSensor(coordinator, entry.runtime_data),
            ClipStorageSensor(coordinator, hass.data[DATA_CLIPS]),
        ]
    )


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


class ClipStorageSensor(DoorstepEntity, SensorEntity):
    """Disk used by this doorbell's clips and continuous segments, held ones included.

    Updated whenever a clip is saved or retention deletes some, so an automation can
    warn before the retention limit starts removing the oldest footage.
    """

    def __init__(self, coordinator: DoorstepCoordinator, store: ClipStore) -> None:
        """Sum this doorbell's clips in the shared store."""
        super().__init__(coordinator, CLIP_STORAGE)
        self._store = store
        self._doorbell_id = coordinator.device.device_id

    async def async_added_to_hass(self) -> None:
        """Recount when clips change."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(self.hass, SIGNAL_CLIPS_CHANGED, self._clips_changed)
        )

    @callback
    def _clips_changed(self, doorbell_id: str | None) -> None:
        if doorbell_id is None or doorbell_id == self._doorbell_id:
            self.async_write_ha_state()

    @property
    def available(self) -> bool:
        """Clips on disk are known whether or not the doorbell is online."""
        return True

    @property
    def native_value(self) -> int:
        """Bytes on disk."""
        return self._store.doorbell_bytes(self._doorbell_id)


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

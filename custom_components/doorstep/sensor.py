"""Sensors: how many people are watching a doorbell live, how much disk its clips use,
and how many footage requests wait for an answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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

type Unsubscribe = Callable[[], None]


@dataclass(frozen=True, slots=True)
class DoorbellSensorSource:
    """What a doorbell's sensors read: its runtime data and the shared clip store."""

    hass: HomeAssistant
    data: DoorstepData
    clips: ClipStore

    @property
    def doorbell_id(self) -> str:
        """The doorbell these sensors belong to."""
        return self.data.device.device_id


@dataclass(frozen=True, kw_only=True)
class DoorstepSensorEntityDescription(SensorEntityDescription):
    """How a doorbell sensor reads its value, and what tells it the value changed.

    Neither value comes from the event stream, so the coordinator's updates do not
    cover them: ``subscribe_fn`` connects the sensor to whatever does change them.
    """

    value_fn: Callable[[DoorbellSensorSource], int]
    subscribe_fn: Callable[[DoorbellSensorSource, Callable[[], None]], Unsubscribe]
    attributes_fn: Callable[[DoorbellSensorSource], dict[str, object]] | None = None


def _on_viewers_changed(source: DoorbellSensorSource, update: Callable[[], None]) -> Unsubscribe:
    unsubscribes = [source.data.relay.add_viewer_listener(lambda _count: update())]
    if source.data.talk is not None:
        unsubscribes.append(source.data.talk.add_listener(update))

    def unsubscribe() -> None:
        for undo in unsubscribes:
            undo()

    return unsubscribe


def _viewer_attributes(source: DoorbellSensorSource) -> dict[str, object]:
    # Whether one of the viewers is talking through the doorbell right now.
    talk = source.data.talk
    return {"talking": talk is not None and talk.holder is not None}


def _on_clips_changed(source: DoorbellSensorSource, update: Callable[[], None]) -> Unsubscribe:
    @callback
    def clips_changed(doorbell_id: str | None) -> None:
        # None: retention went through every doorbell's clips.
        if doorbell_id is None or doorbell_id == source.doorbell_id:
            update()

    return async_dispatcher_connect(source.hass, SIGNAL_CLIPS_CHANGED, clips_changed)


SENSOR_DESCRIPTIONS: tuple[DoorstepSensorEntityDescription, ...] = (
    # Browsers receiving this doorbell's live video through the hub.
    DoorstepSensorEntityDescription(
        key="live_viewers",
        translation_key="live_viewers",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda source: source.data.relay.viewer_count,
        subscribe_fn=_on_viewers_changed,
        attributes_fn=_viewer_attributes,
    ),
    # Disk used by this doorbell's clips and continuous segments, held ones included,
    # so an automation can warn before retention starts removing the oldest footage.
    DoorstepSensorEntityDescription(
        key="clip_storage",
        translation_key="clip_storage",
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEGABYTES,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda source: source.clips.doorbell_bytes(source.doorbell_id),
        subscribe_fn=_on_clips_changed,
    ),
)

PENDING_REQUESTS = SensorEntityDescription(
    key="pending_requests",
    translation_key="pending_requests",
    state_class=SensorStateClass.MEASUREMENT,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DoorstepConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A doorbell gets its live viewers and clip storage sensors; the sharing entry its
    pending count."""
    if entry.data.get(CONF_KIND) == KIND_SHARING:
        hub = cast(SharingHub, entry.runtime_data)
        async_add_entities([PendingRequestsSensor(hub)])
        return
    source = DoorbellSensorSource(hass, entry.runtime_data, hass.data[DATA_CLIPS])
    async_add_entities(
        DoorstepSensorEntity(entry.runtime_data.coordinator, description, source)
        for description in SENSOR_DESCRIPTIONS
    )


class DoorstepSensorEntity(DoorstepEntity, SensorEntity):
    """A doorbell sensor described by a :class:`DoorstepSensorEntityDescription`."""

    entity_description: DoorstepSensorEntityDescription

    def __init__(
        self,
        coordinator: DoorstepCoordinator,
        description: DoorstepSensorEntityDescription,
        source: DoorbellSensorSource,
    ) -> None:
        """Read from ``source`` as the description says."""
        super().__init__(coordinator, description)
        self._source = source

    async def async_added_to_hass(self) -> None:
        """Write the state whenever what the value is read from changes."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.entity_description.subscribe_fn(self._source, self.async_write_ha_state)
        )

    @property
    def available(self) -> bool:
        """Both values are known on the hub whether or not the doorbell is online."""
        return True

    @property
    def native_value(self) -> int:
        """The description's reading of the source."""
        return self.entity_description.value_fn(self._source)

    @property
    def extra_state_attributes(self) -> dict[str, object] | None:
        """What the description adds to the value (live viewers: ``talking``)."""
        attributes_fn = self.entity_description.attributes_fn
        return attributes_fn(self._source) if attributes_fn is not None else None


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

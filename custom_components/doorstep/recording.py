"""Home Assistant glue for local recording: one clip store, a recorder per doorbell,
retention that respects legal holds, and a repair issue when the disk is full."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
import logging
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import (
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    CONF_RECORD_AUDIO,
    CONF_RECORD_CLIPS,
    CONF_RECORD_CONTINUOUS,
    CONF_SEGMENT_LENGTH,
    DEFAULT_POST_ROLL,
    DEFAULT_PRE_ROLL,
    DEFAULT_SEGMENT_LENGTH,
    DOMAIN,
    MAX_SEGMENT_LENGTH,
    MIN_SEGMENT_LENGTH,
    RETENTION_MAX_AGE,
    RETENTION_MAX_BYTES,
    SIGNAL_CLIPS_CHANGED,
    STORAGE_DIR,
)
from .device import DoorbellEvent, EventType
from .media import MediaRelay, Recorder, RecorderConfig, RecordingError, StorageFull
from .media.clips import ClipRecord, ClipStore
from .sharing_hub import DATA_SHARING

_LOGGER = logging.getLogger(__name__)

DATA_CLIPS: HassKey[ClipStore] = HassKey(f"{DOMAIN}_clips")
ISSUE_STORAGE_FULL = "storage_full"
RETENTION_INTERVAL = timedelta(hours=1)
# Events that start (or extend) a clip.
RECORDED_EVENTS = frozenset({EventType.RING, EventType.MOTION_START})


async def async_setup_recording(hass: HomeAssistant) -> Callable[[], None]:
    """Open the clip store and schedule retention; returns the canceller of the schedule."""
    root = Path(hass.config.path(STORAGE_DIR, "clips"))

    def _open() -> ClipStore:
        root.mkdir(parents=True, exist_ok=True)
        return ClipStore(root)

    hass.data[DATA_CLIPS] = await hass.async_add_executor_job(_open)

    async def _retention(_now: datetime | None = None) -> None:
        await async_apply_retention(hass)

    return async_track_time_interval(hass, _retention, RETENTION_INTERVAL)


async def async_apply_retention(hass: HomeAssistant) -> list[ClipRecord]:
    """Delete old clips and segments, oldest first, but never one a footage request holds."""
    store = hass.data[DATA_CLIPS]
    hub = hass.data.get(DATA_SHARING)
    if hub is None:
        # Without the gate we cannot know what is on legal hold: keep everything.
        return []
    held = hub.gate.held_clip_ids()
    deleted = await hass.async_add_executor_job(
        store.apply_retention, RETENTION_MAX_AGE, RETENTION_MAX_BYTES, held
    )
    if deleted:
        _LOGGER.debug("Retention deleted %d clips", len(deleted))
        async_dispatcher_send(hass, SIGNAL_CLIPS_CHANGED, None)
    return deleted


def records_events(options: Mapping[str, Any]) -> bool:
    """True when rings and motion save clips (the default)."""
    return bool(options.get(CONF_RECORD_CLIPS, True))


def records_continuously(options: Mapping[str, Any]) -> bool:
    """True when the doorbell is recorded all the time, in segments (off by default)."""
    return bool(options.get(CONF_RECORD_CONTINUOUS, False))


def segment_length(options: Mapping[str, Any]) -> int:
    """Seconds per continuous segment, kept within bounds even if storage was edited."""
    try:
        seconds = int(options.get(CONF_SEGMENT_LENGTH, DEFAULT_SEGMENT_LENGTH))
    except TypeError, ValueError:
        seconds = DEFAULT_SEGMENT_LENGTH
    return min(MAX_SEGMENT_LENGTH, max(MIN_SEGMENT_LENGTH, seconds))


def recorder_config(options: Mapping[str, Any]) -> RecorderConfig | None:
    """The recorder settings of a doorbell, or None when it records nothing."""
    events = records_events(options)
    continuous = records_continuously(options)
    if not events and not continuous:
        return None
    return RecorderConfig(
        # Segments alone need no pre-roll: the ring then holds only the current GOP.
        pre_roll=float(options.get(CONF_PRE_ROLL, DEFAULT_PRE_ROLL)) if events else 0.0,
        post_roll=float(options.get(CONF_POST_ROLL, DEFAULT_POST_ROLL)),
        continuous=continuous,
        segment=float(segment_length(options)),
        audio=bool(options.get(CONF_RECORD_AUDIO, False)),
    )


def start_recorder(
    hass: HomeAssistant,
    device_id: str,
    config: RecorderConfig,
    relay: MediaRelay,
    *,
    events: bool = True,
) -> tuple[Recorder, Callable[[DoorbellEvent], None]]:
    """A recorder on the relay, and the event hook that triggers it (a no-op when
    ``events`` is off and only continuous segments are recorded)."""

    @callback
    def clip_saved(record: ClipRecord) -> None:
        ir.async_delete_issue(hass, DOMAIN, ISSUE_STORAGE_FULL)
        async_dispatcher_send(hass, SIGNAL_CLIPS_CHANGED, record.doorbell_id)

    @callback
    def failed(error: RecordingError) -> None:
        if isinstance(error, StorageFull):
            ir.async_create_issue(
                hass,
                DOMAIN,
                ISSUE_STORAGE_FULL,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_STORAGE_FULL,
                translation_placeholders={"path": hass.config.path(STORAGE_DIR, "clips")},
            )
        else:
            _LOGGER.warning("Recording a clip failed: %s", error)

    recorder = Recorder(
        hass.data[DATA_CLIPS], device_id, config, on_clip=clip_saved, on_error=failed
    )
    recorder.attach(relay)

    @callback
    def on_event(event: DoorbellEvent) -> None:
        if events and event.type in RECORDED_EVENTS:
            # The hub's clock, not the doorbell's: clips are cut on the hub's timeline.
            recorder.trigger(dt_util.utcnow(), event.type.value)

    return recorder, on_event

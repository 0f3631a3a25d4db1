"""Continuous recording in Home Assistant, against the real reference doorbell.

Segments are real MP4 files cut from the doorbell's live stream; the only thing replaced
is the disk, and only in the full-disk test (``ClipWriter.write`` raising ENOSPC).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
import errno
from unittest.mock import patch

import av
from homeassistant.components import media_source
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.doorstep.const import (
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    CONF_RECORD_CLIPS,
    CONF_RECORD_CONTINUOUS,
    CONF_SEGMENT_LENGTH,
    DOMAIN,
)
from custom_components.doorstep.media import REASON_CONTINUOUS
from custom_components.doorstep.media.clips import ClipRecord, ClipStore
from custom_components.doorstep.recording import (
    DATA_CLIPS,
    ISSUE_STORAGE_FULL,
    async_apply_retention,
)
from custom_components.doorstep.sharing_hub import DATA_SHARING
from reference_doorbell.doorbell import Doorbell

from .conftest import wait_for

SEGMENT = 10  # the shortest the options allow
# Segments are cut at the first keyframe past their length; the doorbell sends one every 2 s.
KEYFRAME_INTERVAL = 2.0
STORAGE_SENSOR = "sensor.front_door_clip_storage"


async def _setup(hass: HomeAssistant, entry: MockConfigEntry, **options: object) -> ClipStore:
    hass.config_entries.async_update_entry(
        entry, options={CONF_PRE_ROLL: 1, CONF_POST_ROLL: 1, **options}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: entry.runtime_data.coordinator.data.connected)
    return hass.data[DATA_CLIPS]


def _segments(store: ClipStore) -> list[ClipRecord]:
    return [clip for clip in store.list_clips() if clip.reason == REASON_CONTINUOUS]


def _video_seconds(store: ClipStore, clip: ClipRecord) -> float:
    """What the file on disk says, not what the sidecar says."""
    with av.open(str(store.clip_path(clip.id))) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None
        assert stream.time_base is not None
        return float(stream.duration * stream.time_base)


async def test_options_flow_offers_continuous_recording_off_by_default(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """The form defaults to off; the segment length is bounded and stored in seconds."""
    await _setup(hass, paired_entry)
    result = await hass.config_entries.options.async_init(paired_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    schema = result["data_schema"]
    assert schema is not None
    # Fields without a default (the doorbell's own place) stay empty, as in the form.
    defaults = {str(key): key.default() for key in schema.schema if callable(key.default)}
    assert defaults[CONF_RECORD_CONTINUOUS] is False
    with pytest.raises(probatio.Invalid):
        schema({CONF_RECORD_CONTINUOUS: True, CONF_SEGMENT_LENGTH: SEGMENT - 1})
    with pytest.raises(probatio.Invalid):
        schema({CONF_RECORD_CONTINUOUS: True, CONF_SEGMENT_LENGTH: 3601})

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {**defaults, CONF_RECORD_CONTINUOUS: True, CONF_SEGMENT_LENGTH: 120},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert paired_entry.options[CONF_RECORD_CONTINUOUS] is True
    assert paired_entry.options[CONF_SEGMENT_LENGTH] == 120
    assert await hass.config_entries.async_unload(paired_entry.entry_id)


async def test_segments_have_the_chosen_length_and_are_browsable(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """Option on: back-to-back segments of the chosen length, in their own folder,
    counted by the clip storage sensor; a ring still makes its own event clip."""
    store = await _setup(
        hass, paired_entry, **{CONF_RECORD_CONTINUOUS: True, CONF_SEGMENT_LENGTH: SEGMENT}
    )
    await asyncio.sleep(2)
    await doorbell.ring()
    await wait_for(hass, lambda: len(_segments(store)) >= 1, within=SEGMENT + 15)
    finished_by_length = _segments(store)
    for segment in finished_by_length:
        assert SEGMENT <= segment.duration.total_seconds() <= SEGMENT + KEYFRAME_INTERVAL
        assert _video_seconds(store, segment) == pytest.approx(
            segment.duration.total_seconds(), abs=0.2
        )
    await wait_for(hass, lambda: len(store.list_clips()) > len(_segments(store)), within=10)

    # Every write handed to the recorder's worker done, and its callbacks run.
    recorder = paired_entry.runtime_data.recorder
    assert recorder is not None
    await recorder.drain()
    await hass.async_block_till_done()
    state = hass.states.get(STORAGE_SENSOR)
    assert state is not None
    assert state.attributes["device_class"] == "data_size"
    assert float(state.state) == pytest.approx(store.total_bytes() / 1e6, abs=0.05)

    # Unloading saves the segment in progress. (Each segment's wall-clock start is taken
    # when its first packet arrives, so on a loaded machine neighbours may be a second
    # apart on paper; the library's tests check the timeline with a fake clock.)
    assert await hass.config_entries.async_unload(paired_entry.entry_id)
    await hass.async_block_till_done()
    segments = _segments(store)
    assert len(segments) == len(finished_by_length) + 1
    assert _video_seconds(store, segments[-1]) > 0

    assert await async_setup_component(hass, "media_source", {})
    await hass.async_block_till_done()
    folder = await media_source.async_browse_media(
        hass, f"media-source://{DOMAIN}/{doorbell.device_id}"
    )
    assert folder.children is not None
    continuous = f"{doorbell.device_id}/continuous"
    event_clips = [clip for clip in store.list_clips() if clip.reason != REASON_CONTINUOUS]
    assert [child.identifier for child in folder.children] == [
        continuous,
        *(f"{doorbell.device_id}/{clip.id}" for clip in reversed(event_clips)),
    ]
    assert folder.children[0].title == "Continuous recording"
    assert folder.children[1].title.split(" · ")[1] == "Ring"
    days_folder = await media_source.async_browse_media(
        hass, f"media-source://{DOMAIN}/{continuous}"
    )

    # Grouped by day in Home Assistant's time zone (one day, unless the test ran over
    # midnight there).
    def day_of(segment: ClipRecord) -> str:
        return dt_util.as_local(segment.start).date().isoformat()

    days = sorted({day_of(segment) for segment in segments}, reverse=True)
    assert [child.identifier for child in days_folder.children or []] == [
        f"{continuous}/{day}" for day in days
    ]
    listed = []
    for day in days:
        day_folder = await media_source.async_browse_media(
            hass, f"media-source://{DOMAIN}/{continuous}/{day}"
        )
        listed += [child.identifier for child in day_folder.children or []]
    assert listed == [
        f"{continuous}/{day_of(segment)}/{segment.id}" for segment in reversed(segments)
    ]
    played = await media_source.async_resolve_media(
        hass, f"media-source://{DOMAIN}/{listed[-1]}", None
    )
    assert played.url.endswith(segments[0].id)


async def test_no_segments_when_the_option_is_off(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """The default: a ring saves its clip and nothing else is recorded."""
    store = await _setup(hass, paired_entry)
    await asyncio.sleep(1.5)
    await doorbell.ring()
    await wait_for(hass, lambda: len(store.list_clips()) == 1, within=15)
    assert await hass.config_entries.async_unload(paired_entry.entry_id)
    await hass.async_block_till_done()
    assert [clip.reason for clip in store.list_clips()] == ["ring"]


async def test_segments_only_ignore_rings(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """Continuous on, event clips off: a ring adds no clip of its own."""
    store = await _setup(
        hass,
        paired_entry,
        **{CONF_RECORD_CLIPS: False, CONF_RECORD_CONTINUOUS: True, CONF_SEGMENT_LENGTH: SEGMENT},
    )
    await asyncio.sleep(1.5)
    await doorbell.ring()
    await asyncio.sleep(3)
    assert await hass.config_entries.async_unload(paired_entry.entry_id)
    await hass.async_block_till_done()
    clips = store.list_clips()
    assert len(clips) == 1
    assert clips[0].reason == REASON_CONTINUOUS


async def test_retention_keeps_segments_a_request_holds(
    hass: HomeAssistant,
    doorbell: Doorbell,
    paired_entry: MockConfigEntry,
) -> None:
    """With every limit at zero, retention deletes all segments except the held one."""
    store = await _setup(
        hass, paired_entry, **{CONF_RECORD_CONTINUOUS: True, CONF_SEGMENT_LENGTH: SEGMENT}
    )
    # Setting up the first doorbell creates the household's sharing entry.
    await wait_for(hass, lambda: DATA_SHARING in hass.data)
    await wait_for(hass, lambda: len(_segments(store)) >= 1, within=SEGMENT + 15)
    assert await hass.config_entries.async_unload(paired_entry.entry_id)
    await hass.async_block_till_done()
    first, *rest = _segments(store)
    assert rest, "unloading saves the segment in progress"

    # Ask for a window inside the first segment only.
    response = await hass.services.async_call(
        DOMAIN,
        "request_clip",
        {
            "reference": "HOLD-1",
            "reason": "Held footage",
            "window_start": first.start + timedelta(seconds=1),
            "window_end": first.end - timedelta(seconds=1),
            "contact": "desk@example.org",
            "wanted_by": first.end + timedelta(days=7),
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    request = hass.data[DATA_SHARING].gate.get(str(response["request_id"]))
    assert request.held_clip_ids == (first.id,)

    with (
        patch("custom_components.doorstep.recording.RETENTION_MAX_AGE", timedelta(0)),
        patch("custom_components.doorstep.recording.RETENTION_MAX_BYTES", 0),
    ):
        deleted = await async_apply_retention(hass)
    assert {clip.id for clip in deleted} == {clip.id for clip in rest}
    assert [clip.id for clip in store.list_clips()] == [first.id]
    assert store.clip_path(first.id).stat().st_size == first.size


async def test_full_disk_loses_only_the_partial_segment(
    hass: HomeAssistant,
    doorbell: Doorbell,
    paired_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """ENOSPC mid-segment: a repair issue, the partial file gone, earlier segments intact;
    once there is room again the next segment is saved and the issue goes away."""
    store = await _setup(
        hass, paired_entry, **{CONF_RECORD_CONTINUOUS: True, CONF_SEGMENT_LENGTH: SEGMENT}
    )
    await wait_for(hass, lambda: len(_segments(store)) >= 1, within=SEGMENT + 15)
    saved = _segments(store)
    saved_sizes = {clip.id: store.clip_path(clip.id).stat().st_size for clip in saved}

    full = OSError(errno.ENOSPC, "No space left on device")
    with patch(
        "custom_components.doorstep.media.recorder_writer.ClipWriter.write", side_effect=full
    ):
        await wait_for(
            hass,
            lambda: issue_registry.async_get_issue(DOMAIN, ISSUE_STORAGE_FULL) is not None,
            within=5,
        )
    await asyncio.sleep(0.5)
    assert not list(store.root.glob("*.part"))
    assert _segments(store) == saved
    assert {clip.id: store.clip_path(clip.id).stat().st_size for clip in saved} == saved_sizes

    await wait_for(hass, lambda: len(_segments(store)) > len(saved), within=2 * SEGMENT + 15)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, ISSUE_STORAGE_FULL) is None
    assert await hass.config_entries.async_unload(paired_entry.entry_id)

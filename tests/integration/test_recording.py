"""Recording in Home Assistant: clips on rings, and a repair issue when the disk is full."""

from __future__ import annotations

import asyncio
import errno
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.doorstep.const import (
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    CONF_RECORD_CLIPS,
    DOMAIN,
)
from custom_components.doorstep.recording import DATA_CLIPS, ISSUE_STORAGE_FULL
from reference_doorbell.doorbell import Doorbell

from .conftest import wait_for


async def _setup(hass: HomeAssistant, entry: MockConfigEntry, **options: object) -> None:
    hass.config_entries.async_update_entry(
        entry, options={CONF_PRE_ROLL: 1, CONF_POST_ROLL: 1, **options}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: entry.runtime_data.coordinator.data.connected)


async def test_full_disk_raises_issue_and_recovers(
    hass: HomeAssistant,
    doorbell: Doorbell,
    paired_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """ENOSPC while writing: no partial clip, a repair issue; the next clip clears it."""
    await _setup(hass, paired_entry)
    store = hass.data[DATA_CLIPS]
    await asyncio.sleep(1.5)
    full = OSError(errno.ENOSPC, "No space left on device")
    with patch(
        "custom_components.doorstep.media.recorder_writer.ClipWriter.write", side_effect=full
    ):
        await doorbell.ring()
        await wait_for(
            hass,
            lambda: issue_registry.async_get_issue(DOMAIN, ISSUE_STORAGE_FULL) is not None,
            within=15,
        )
    assert store.list_clips() == []
    assert not list(store.root.glob("*.part"))

    await asyncio.sleep(3)  # past the failed clip's post-roll
    await doorbell.ring()
    await wait_for(hass, lambda: len(store.list_clips()) == 1, within=15)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, ISSUE_STORAGE_FULL) is None
    assert await hass.config_entries.async_unload(paired_entry.entry_id)


async def test_recording_can_be_turned_off(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """With recording off, a ring saves nothing and the doorbell's stream stays closed."""
    await _setup(hass, paired_entry, **{CONF_RECORD_CLIPS: False})
    await doorbell.ring()
    await asyncio.sleep(2.5)
    assert hass.data[DATA_CLIPS].list_clips() == []
    assert not paired_entry.runtime_data.relay.upstream_running
    assert await hass.config_entries.async_unload(paired_entry.entry_id)

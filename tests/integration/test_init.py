"""Setting up, unloading and removing a doorbell."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNKNOWN
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.doorstep.const import (
    CONF_ALLOW_REMOTE_LIVE_VIEW,
    CONF_FINGERPRINT,
    CONF_HOME_NETWORKS,
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    CONF_RECORD_CLIPS,
    CONF_RECORD_CONTINUOUS,
    CONF_RING_COOLDOWN,
    CONF_SEGMENT_LENGTH,
    DEFAULT_SEGMENT_LENGTH,
    DOMAIN,
)
from custom_components.doorstep.repairs import identity_issue_id
from reference_doorbell.doorbell import Doorbell

from .conftest import wait_for


async def test_setup_and_unload(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """The entry loads, connects, registers the device, and unloads cleanly."""
    assert await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    assert paired_entry.state is ConfigEntryState.LOADED
    await wait_for(hass, lambda: paired_entry.runtime_data.coordinator.data.connected)

    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, doorbell.device_id), paired_entry.entry_id
    )
    assert device is not None
    assert device.name == "Front door"
    assert device.model == "Doorstep Reference Doorbell"
    assert device.sw_version

    # The household's sharing entry is made once, beside the first doorbell.
    sharing = [
        e for e in hass.config_entries.async_entries(DOMAIN) if e.data.get("kind") == "sharing"
    ]
    assert len(sharing) == 1
    assert sharing[0].state is ConfigEntryState.LOADED

    assert await hass.config_entries.async_unload(paired_entry.entry_id)
    await hass.async_block_till_done()
    assert paired_entry.state is ConfigEntryState.NOT_LOADED
    # The event stream is gone: nothing listens to the doorbell any more.
    await wait_for(hass, lambda: doorbell.event_client_count == 0)


async def test_setup_retries_when_doorbell_is_offline(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """An unreachable doorbell means 'not ready', which Home Assistant retries."""
    await doorbell.stop()
    await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    assert paired_entry.state is ConfigEntryState.SETUP_RETRY


async def test_setup_refuses_a_different_certificate(
    hass: HomeAssistant,
    doorbell: Doorbell,
    paired_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A reset (or impostor) doorbell is not trusted: a repair issue, and no connection."""
    pinned = paired_entry.data[CONF_FINGERPRINT]
    await doorbell.factory_reset()
    await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    assert paired_entry.state is ConfigEntryState.SETUP_RETRY
    assert paired_entry.data[CONF_FINGERPRINT] == pinned
    issue = issue_registry.async_get_issue(DOMAIN, identity_issue_id(doorbell.device_id))
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["name"] == "Front door"


async def test_revoked_token_starts_reauth(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """When the doorbell stops accepting the hub, the owner is asked to pair again."""
    doorbell.revoke_all_tokens()
    await doorbell.drop_connections()
    await wait_for(
        hass,
        lambda: any(
            flow["context"]["source"] == "reauth"
            for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        ),
    )
    assert not loaded_entry.runtime_data.coordinator.data.connected


async def test_remove_entry_unpairs(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """Removing the doorbell from Home Assistant makes the doorbell forget the hub's token."""
    assert doorbell.paired_client_count == 1
    await hass.config_entries.async_remove(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert doorbell.paired_client_count == 0


async def test_remove_entry_with_doorbell_offline(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """Removal still works when the doorbell cannot be told."""
    await doorbell.stop()
    await hass.config_entries.async_remove(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.config_entries.async_get_entry(loaded_entry.entry_id) is None


async def test_entities_do_not_start_unavailable(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """Setup waits briefly for the doorbell: no spurious unavailable → unknown change is logged."""
    seen: list[str] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        if event.data["entity_id"] == "event.front_door_doorbell" and event.data["new_state"]:
            seen.append(event.data["new_state"].state)

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    assert await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    assert seen == [STATE_UNKNOWN]
    assert await hass.config_entries.async_unload(paired_entry.entry_id)


async def test_changed_options_reload_the_entry(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """Live view and recording read their options at setup, so saving new ones reloads."""
    before = loaded_entry.runtime_data
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_RING_COOLDOWN: 10,
            CONF_ALLOW_REMOTE_LIVE_VIEW: False,
            CONF_HOME_NETWORKS: "",
            CONF_RECORD_CLIPS: False,
            CONF_PRE_ROLL: 5,
            CONF_POST_ROLL: 15,
            CONF_RECORD_CONTINUOUS: False,
            CONF_SEGMENT_LENGTH: DEFAULT_SEGMENT_LENGTH,
        },
    )
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert loaded_entry.runtime_data is not before
    assert loaded_entry.runtime_data.recorder is None
    await wait_for(hass, lambda: loaded_entry.runtime_data.coordinator.data.connected)

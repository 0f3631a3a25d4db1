"""Entities, bus events and the device trigger, driven by a real doorbell."""

from __future__ import annotations

from typing import Any

from homeassistant.components import automation
from homeassistant.components.device_automation import (
    DeviceAutomationType,
    async_get_device_automations,
)
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.doorstep.const import CONF_RING_COOLDOWN, DOMAIN, EVENT_RING
from reference_doorbell.doorbell import Doorbell

from .conftest import wait_for

DOORBELL = "event.front_door_doorbell"
MOTION_EVENT = "event.front_door_motion"
MOTION = "binary_sensor.front_door_motion"
CONNECTIVITY = "binary_sensor.front_door_connectivity"


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


async def test_entities_are_registered(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """Each entity has a stable unique id under the doorbell's device."""
    registry = er.async_get(hass)
    expected = {
        DOORBELL: f"{doorbell.device_id}_doorbell",
        MOTION_EVENT: f"{doorbell.device_id}_motion",
        MOTION: f"{doorbell.device_id}_motion",
        CONNECTIVITY: f"{doorbell.device_id}_connectivity",
    }
    for entity_id, unique_id in expected.items():
        entry = registry.async_get(entity_id)
        assert entry is not None, entity_id
        assert entry.unique_id == unique_id
    connectivity = registry.async_get(CONNECTIVITY)
    assert connectivity is not None
    assert connectivity.entity_category is not None
    assert _state(hass, DOORBELL) == STATE_UNKNOWN
    assert _state(hass, CONNECTIVITY) == STATE_ON
    assert _state(hass, MOTION) == STATE_OFF


async def test_ring_reaches_entity_and_bus(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """A press becomes an event entity state and a doorstep_ring bus event."""
    rings = async_capture_events(hass, EVENT_RING)
    await doorbell.ring()
    await wait_for(hass, lambda: len(rings) == 1)
    state = hass.states.get(DOORBELL)
    assert state is not None
    assert state.attributes["event_type"] == "ring"
    assert state.attributes["event_types"] == ["ring"]
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, doorbell.device_id), loaded_entry.entry_id
    )
    assert device is not None
    assert rings[0].data["device_id"] == device.id
    assert rings[0].data["doorstep_id"] == doorbell.device_id
    assert rings[0].data["name"] == "Front door"

    first = state.state
    await doorbell.ring()
    await wait_for(hass, lambda: len(rings) == 2)
    assert _state(hass, DOORBELL) != first


async def test_motion(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """Motion turns the binary sensor on and off and is reported as events."""
    await doorbell.set_motion(True)
    await wait_for(hass, lambda: _state(hass, MOTION) == STATE_ON)
    state = hass.states.get(MOTION_EVENT)
    assert state is not None
    assert state.attributes["event_type"] == "motion_start"
    await doorbell.set_motion(False)
    await wait_for(hass, lambda: _state(hass, MOTION) == STATE_OFF)
    state = hass.states.get(MOTION_EVENT)
    assert state is not None
    assert state.attributes["event_type"] == "motion_stop"


async def test_silent_doorbell_goes_unavailable_and_recovers(
    hass: HomeAssistant,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Silence makes the entities unavailable; the doorbell's return brings them back.

    Each transition is logged once.
    """
    doorbell.suspend_events()
    await wait_for(hass, lambda: _state(hass, DOORBELL) == STATE_UNAVAILABLE)
    assert _state(hass, MOTION) == STATE_UNAVAILABLE
    assert _state(hass, CONNECTIVITY) == STATE_OFF
    doorbell.resume_events()
    await wait_for(hass, lambda: _state(hass, CONNECTIVITY) == STATE_ON)
    assert _state(hass, DOORBELL) != STATE_UNAVAILABLE
    assert caplog.text.count("Front door is unavailable") == 1
    assert caplog.text.count("Front door is back online") == 1

    # A ring after the outage still arrives.
    rings = async_capture_events(hass, EVENT_RING)
    await doorbell.ring()
    await wait_for(hass, lambda: len(rings) == 1)


async def test_dropped_connection_reconnects(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """A closed socket is reopened and rings flow again."""
    await doorbell.drop_connections()
    rings = async_capture_events(hass, EVENT_RING)
    await wait_for(hass, lambda: doorbell.event_client_count == 1)
    await doorbell.ring()
    await wait_for(hass, lambda: len(rings) == 1)


async def test_ring_cooldown(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """With a cooldown, a burst of presses is reported once."""
    hass.config_entries.async_update_entry(loaded_entry, options={CONF_RING_COOLDOWN: 60})
    rings = async_capture_events(hass, EVENT_RING)
    for _ in range(3):
        await doorbell.ring()
    await doorbell.set_motion(True)  # a later frame: once it is seen, the rings were too
    await wait_for(hass, lambda: _state(hass, MOTION) == STATE_ON)
    assert len(rings) == 1


async def test_device_trigger(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """'Doorbell pressed' is offered for the device and fires an automation."""
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, doorbell.device_id), loaded_entry.entry_id
    )
    assert device is not None
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, [device.id])
    ours = [t for t in triggers[device.id] if t["domain"] == DOMAIN]
    assert ours == [
        {
            "platform": "device",
            "domain": DOMAIN,
            "device_id": device.id,
            "type": "pressed",
            "metadata": {},
        }
    ]

    calls = await _automation(
        hass, {"trigger": "device", "domain": DOMAIN, "device_id": device.id, "type": "pressed"}
    )
    await doorbell.ring()
    await wait_for(hass, lambda: len(calls) == 1)


async def test_doorbell_rang_trigger(
    hass: HomeAssistant, doorbell: Doorbell, loaded_entry: MockConfigEntry
) -> None:
    """Home Assistant's own `doorbell.rang` trigger fires for a press, not for motion."""
    calls = await _automation(hass, {"trigger": "doorbell.rang", "target": {"entity_id": DOORBELL}})
    await doorbell.set_motion(True)
    await wait_for(hass, lambda: _state(hass, MOTION) == STATE_ON)
    await hass.async_block_till_done()
    assert calls == []
    await doorbell.ring()
    await wait_for(hass, lambda: len(calls) == 1)
    await hass.async_block_till_done()
    assert len(calls) == 1


async def _automation(hass: HomeAssistant, trigger: dict[str, Any]) -> list[ServiceCall]:
    """An automation on ``trigger``; the returned list collects each time it ran."""
    calls: list[ServiceCall] = []
    hass.services.async_register("test", "automation", calls.append)
    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {automation.DOMAIN: {"triggers": trigger, "actions": {"action": "test.automation"}}},
    )
    return calls

"""The ring blueprint (blueprints/automation/doorstep/ring_notify.yaml), run by Home
Assistant's own automation and blueprint integrations: a real ring from the reference
doorbell notifies each chosen companion-app phone, with the snapshot at home and a plain
"home network only" message away, and an Answer action opening the live card's view."""

from __future__ import annotations

from pathlib import Path
import shutil

from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service

from reference_doorbell.doorbell import Doorbell

from .conftest import wait_for

BLUEPRINT = (
    Path(__file__).parents[2] / "blueprints" / "automation" / "doorstep" / "ring_notify.yaml"
)


def _phone(hass: HomeAssistant, name: str, tracker_state: str) -> str:
    """A companion-app device with a device tracker in the given state; its device id."""
    entry = MockConfigEntry(domain="mobile_app", title=name)
    entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={("mobile_app", name)}, name=name
    )
    tracker = er.async_get(hass).async_get_or_create(
        "device_tracker", "mobile_app", name, config_entry=entry, device_id=device.id
    )
    hass.states.async_set(tracker.entity_id, tracker_state)
    return device.id


async def _automation(hass: HomeAssistant, phones: list[str], **extra: object) -> None:
    target = Path(hass.config.path("blueprints", "automation", "doorstep"))
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(BLUEPRINT, target / BLUEPRINT.name)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "id": "doorstep_ring",
                "use_blueprint": {
                    "path": "doorstep/ring_notify.yaml",
                    "input": {
                        "doorbell": "event.front_door_doorbell",
                        "camera": "camera.front_door",
                        "phones": phones,
                        **extra,
                    },
                },
            }
        },
    )
    await hass.async_block_till_done()


@pytest.mark.usefixtures("loaded_entry")
async def test_ring_notifies_phones_at_home_with_picture_and_away_without(
    hass: HomeAssistant, doorbell: Doorbell
) -> None:
    anna = _phone(hass, "Anna phone", "home")
    ben = _phone(hass, "Ben phone", "not_home")
    anna_calls: list[ServiceCall] = async_mock_service(hass, "notify", "mobile_app_anna_phone")
    ben_calls: list[ServiceCall] = async_mock_service(hass, "notify", "mobile_app_ben_phone")
    await _automation(hass, [anna, ben])

    await doorbell.ring()
    await wait_for(hass, lambda: bool(anna_calls) and bool(ben_calls))

    at_home = anna_calls[0].data
    assert at_home["data"]["image"] == "/api/camera_proxy/camera.front_door"
    assert at_home["data"]["actions"] == [
        {"action": "URI", "title": "Answer", "uri": "/lovelace/answer"}
    ]
    assert at_home["message"] == "Someone is at the door."
    away = ben_calls[0].data
    assert "image" not in away["data"]
    assert "only available on the home network" in away["message"]
    assert away["data"]["actions"][0]["uri"] == "/lovelace/answer"
    assert len(anna_calls) == len(ben_calls) == 1


@pytest.mark.usefixtures("loaded_entry")
async def test_picture_away_and_answer_path_are_the_owners_choice(
    hass: HomeAssistant, doorbell: Doorbell
) -> None:
    ben = _phone(hass, "Ben phone", "not_home")
    calls: list[ServiceCall] = async_mock_service(hass, "notify", "mobile_app_ben_phone")
    await _automation(hass, [ben], picture_away=True, answer_path="/lovelace/front")

    await doorbell.ring()
    await wait_for(hass, lambda: bool(calls))
    await hass.async_block_till_done()
    assert len(calls) == 1
    assert calls[0].data["data"]["image"] == "/api/camera_proxy/camera.front_door"
    assert calls[0].data["data"]["actions"][0]["uri"] == "/lovelace/front"

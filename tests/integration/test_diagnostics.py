"""Diagnostics leave out the pairing secrets."""

from __future__ import annotations

from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.const import CONF_FINGERPRINT, CONF_TOKEN
from reference_doorbell.doorbell import Doorbell


async def test_diagnostics_redacts_pairing(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
) -> None:
    """Token, fingerprint and address are redacted; device and connection are shown."""
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    data = diagnostics["entry"]["data"]
    for key in (CONF_TOKEN, CONF_FINGERPRINT, CONF_HOST):
        assert data[key] == "**REDACTED**"
    text = str(diagnostics)
    assert loaded_entry.data[CONF_TOKEN] not in text
    assert doorbell.fingerprint not in text
    assert diagnostics["device"]["device_id"] == doorbell.device_id
    assert diagnostics["device"]["model"] == "Doorstep Reference Doorbell"
    assert diagnostics["state"]["connected"] is True
    recording = diagnostics["recording"]
    assert recording["config"]["continuous"] is False
    assert recording["stats"]["failures"] == 0

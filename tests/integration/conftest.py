"""Fixtures for tests against a real Home Assistant core and a real reference doorbell.

The doorbell runs in-process on 127.0.0.1 and speaks the real protocol over real TLS,
so nothing between Home Assistant and the device is mocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.doorstep.const import (
    CONF_DEVICE_ID,
    CONF_FINGERPRINT,
    CONF_KIND,
    CONF_TOKEN,
    DOMAIN,
    KIND_SHARING,
    SHARING_UNIQUE_ID,
)
from custom_components.doorstep.device import SERVICE_TYPE, DoorstepClient
from reference_doorbell.doorbell import Doorbell, DoorbellConfig

# Short enough that an outage is noticed within a second (3 heartbeats of silence).
HEARTBEAT = 0.2


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> Iterator[None]:
    """Let Home Assistant load custom_components/doorstep."""
    return


@pytest.fixture
def doorbell_settings() -> dict[str, Any]:
    """Settings a test module overrides (as a fixture of this name) to change the
    doorbell, for example ``{"stream_profile": "high"}``."""
    return {}


@pytest.fixture
async def doorbell(
    socket_enabled: None, tmp_path: Path, doorbell_settings: dict[str, Any]
) -> AsyncIterator[Doorbell]:
    """A real reference doorbell on loopback, stopped after the test."""
    settings: dict[str, Any] = {
        "name": "Front door",
        "state_dir": tmp_path / "front-door",
        "host": "127.0.0.1",
        "port": 0,
        "advertise": False,
        "heartbeat_interval": HEARTBEAT,
        "lockout_attempts": 5,
        "lockout_seconds": 60.0,
    } | doorbell_settings
    bell = Doorbell(DoorbellConfig(**settings))
    await bell.start()
    yield bell
    await bell.stop()


def zeroconf_info(bell: Doorbell, **txt_overrides: str) -> ZeroconfServiceInfo:
    """What Home Assistant's zeroconf integration hands the flow for this doorbell."""
    properties = {
        "id": bell.device_id,
        "v": "1",
        "model": "Doorstep Reference Doorbell",
        "fw": "1.0.0",
        "fp": bell.fingerprint,
    } | txt_overrides
    return ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"),
        ip_addresses=[ip_address("127.0.0.1")],
        hostname="front-door.local.",
        name=f"{bell.name}.{SERVICE_TYPE}",
        port=bell.port,
        type=SERVICE_TYPE,
        properties=properties,
    )


async def pair_token(hass: HomeAssistant, bell: Doorbell) -> str:
    """Pair with the doorbell as the config flow would, for tests that start paired."""
    client = DoorstepClient(
        async_get_clientsession(hass), "127.0.0.1", bell.port, fingerprint=bell.fingerprint
    )
    return await client.pair(bell.pairing_code, "tests")


@pytest.fixture
async def paired_entry(hass: HomeAssistant, doorbell: Doorbell) -> MockConfigEntry:
    """A config entry for the doorbell, paired for real but not yet set up."""
    token = await pair_token(hass, doorbell)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=doorbell.name,
        unique_id=doorbell.device_id,
        data={
            CONF_HOST: "127.0.0.1",
            CONF_PORT: doorbell.port,
            CONF_DEVICE_ID: doorbell.device_id,
            CONF_FINGERPRINT: doorbell.fingerprint,
            CONF_TOKEN: token,
        },
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, paired_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The paired doorbell set up, with its event stream connected; unloaded after the test."""
    assert await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: paired_entry.runtime_data.coordinator.data.connected)
    yield paired_entry
    # Some tests remove the entry themselves.
    if hass.config_entries.async_get_entry(paired_entry.entry_id) is not None:
        await hass.config_entries.async_unload(paired_entry.entry_id)
        await hass.async_block_till_done()


async def wait_for(hass: HomeAssistant, check: Callable[[], bool], within: float = 5.0) -> None:
    """Let real network I/O happen until the condition holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
        await hass.async_block_till_done()


@pytest.fixture(autouse=True)
def _ephemeral_stun_port() -> Iterator[None]:
    """The hub's STUN responder binds a free port in tests, never the real 3478."""
    with patch("custom_components.doorstep.ice.DEFAULT_STUN_PORT", 0):
        yield


@pytest.fixture(autouse=True)
def _private_config_dir(hass: HomeAssistant, tmp_path: Path) -> None:
    """Doorstep writes under the config dir (audit log, keys, clips): keep each test's apart."""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    hass.config.config_dir = str(config_dir)


@pytest.fixture
async def sharing_entry(
    hass: HomeAssistant, socket_enabled: None
) -> AsyncIterator[MockConfigEntry]:
    """The household's sharing entry, set up."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Doorstep sharing",
        unique_id=SHARING_UNIQUE_ID,
        data={CONF_KIND: KIND_SHARING},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    if hass.config_entries.async_get_entry(entry.entry_id) is not None:
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()

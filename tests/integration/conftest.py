"""Fixtures for tests against a real Home Assistant core and a real reference doorbell.

The doorbell runs in-process on 127.0.0.1 and speaks the real protocol over real TLS,
so nothing between Home Assistant and the device is mocked.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
import hashlib
import hmac
from ipaddress import ip_address
import json
from pathlib import Path
import struct
import time
from typing import Any
from unittest.mock import patch

from aiohttp.test_utils import TestClient
from homeassistant.auth.mfa_modules import auth_mfa_module_from_config
from homeassistant.auth.providers.homeassistant import HassAuthProvider
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    MockHAClientWebSocket,
    WebSocketGenerator,
)

from custom_components.doorstep.const import (
    CONF_DEVICE_ID,
    CONF_FINGERPRINT,
    CONF_HUB_BROWSERS_AT_HOME,
    CONF_KIND,
    CONF_TOKEN,
    DOMAIN,
    KIND_SHARING,
    SHARING_UNIQUE_ID,
)
from custom_components.doorstep.device import SERVICE_TYPE, DoorstepClient
from custom_components.doorstep.sharing import RequesterKind
from custom_components.doorstep.sharing_hub import SharingHub
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
def hub_browsers_at_home(hass: HomeAssistant) -> MockConfigEntry:
    """The household's sharing entry, added but not set up (Home Assistant sets it up
    with the integration, as it would the one Doorstep makes itself), with browsers on
    the hub counted as home: the test client connects from 127.0.0.1 and stands for a
    browser at home. Without this, 127.0.0.1 is outside (it may be a tunnel)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Doorstep sharing",
        unique_id=SHARING_UNIQUE_ID,
        data={CONF_KIND: KIND_SHARING},
        options={CONF_HUB_BROWSERS_AT_HOME: True},
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
async def sharing_entry(
    hass: HomeAssistant, socket_enabled: None, hub_browsers_at_home: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The household's sharing entry (browsers on the hub count as home), set up."""
    entry = hub_browsers_at_home
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    if hass.config_entries.async_get_entry(entry.entry_id) is not None:
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


# -- a person who can approve: an admin in a login session with a password ------------------

# The admin's Home Assistant password in these tests (the step-up checks it with bcrypt).
OWNER_PASSWORD = "correct horse battery staple"


@pytest.fixture
async def owner_password(hass: HomeAssistant, local_auth: HassAuthProvider) -> str:
    """Give the test admin (username "admin", the hass_access_token login) a password."""
    await local_auth.async_add_auth("admin", OWNER_PASSWORD)
    return OWNER_PASSWORD


@pytest.fixture
async def person_ws(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    sharing_entry: MockConfigEntry,
    owner_password: str,
) -> MockHAClientWebSocket:
    """The admin's browser: a normal (interactive) session whose user has a password."""
    return await hass_ws_client(hass)


async def ws_call(ws: MockHAClientWebSocket, type_: str, **data: Any) -> dict[str, Any]:
    """Send a command and return its answer, skipping any subscription events between."""
    await ws.send_json_auto_id({"type": type_, **data})
    while True:
        response: dict[str, Any] = await ws.receive_json()
        if response.get("type") != "event":
            return response


async def approve_in_card(
    ws: MockHAClientWebSocket,
    request_id: str,
    password: str = OWNER_PASSWORD,
    code: str | None = None,
) -> dict[str, Any]:
    """What the card does: fetch the preview, then approve it with the person's proof."""
    preview = await ws_call(ws, "doorstep/sharing/preview", request_id=request_id)
    assert preview["success"] is True, preview
    data: dict[str, Any] = {
        "request_id": request_id,
        "confirm": preview["result"]["confirm"],
        "password": password,
    }
    if code is not None:
        data["code"] = code
    return await ws_call(ws, "doorstep/sharing/approve", **data)


# -- TOTP two-factor login, with Home Assistant's own totp module ---------------------------

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def totp_code(secret: str, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits): what an authenticator app shows now."""
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


async def enable_totp(hass: HomeAssistant, user_id: str) -> None:
    """Turn on Home Assistant's totp module and set it up for ``user_id``."""
    module = await auth_mfa_module_from_config(hass, {"type": "totp"})
    hass.auth._mfa_modules[module.id] = module
    await module.async_setup_user(user_id, {"secret": TOTP_SECRET})


# -- the requester side of sharing, for the sharing, websocket and permission tests -------

API = "/api/doorstep/v1"


def hub_of(entry: MockConfigEntry) -> SharingHub:
    """The sharing hub behind a set-up sharing entry."""
    hub = entry.runtime_data
    assert isinstance(hub, SharingHub)
    return hub


def requester_headers(entry: MockConfigEntry, name: str = "Station North") -> dict[str, str]:
    """The Authorization header of a new police requester."""
    _requester, token = hub_of(entry).gate.create_requester(name, RequesterKind.POLICE)
    return {"Authorization": f"Bearer {token}"}


def request_body(**changes: Any) -> dict[str, Any]:
    """A valid request body (a window two to three hours ago), with ``changes``."""
    now = dt_util.utcnow()
    body: dict[str, Any] = {
        "reference": "CASE-114",
        "reason": "Parcel theft on the 24th",
        "window": {
            "start": (now - timedelta(hours=3)).isoformat(),
            "end": (now - timedelta(hours=2)).isoformat(),
        },
        "contact": "desk@station-north.example",
        "wanted_by": (now + timedelta(days=7)).isoformat(),
        "delivery": {"method": "pickup"},
    }
    body.update(changes)
    return body


def audit_entries(hass: HomeAssistant) -> list[dict[str, Any]]:
    """The audit log as it is on disk."""
    path = Path(hass.config.path("doorstep", "audit.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def switch_id(hass: HomeAssistant, request_id: str) -> str:
    """The entity id of a request's switch."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "switch", DOMAIN, f"share_request_{request_id}"
    )
    assert entity_id is not None
    return entity_id


async def file_request(client: Any, headers: dict[str, str], **changes: Any) -> str:
    """File a request over the requester API; its id (it reads pending)."""
    response = await client.post(f"{API}/requests", json=request_body(**changes), headers=headers)
    assert response.status == 201, await response.text()
    data = await response.json()
    assert data["status"] == "pending"
    return str(data["id"])


@pytest.fixture
async def requester_client(hass_client_no_auth: ClientSessionGenerator) -> TestClient:
    """An HTTP client with no Home Assistant login, as a requester has."""
    return await hass_client_no_auth()


@pytest.fixture
def police(sharing_entry: MockConfigEntry) -> dict[str, str]:
    """The Authorization header of the police requester "Station North"."""
    return requester_headers(sharing_entry)


@pytest.fixture
async def pending_request(requester_client: TestClient, police: dict[str, str]) -> str:
    """One request filed by "Station North", pending."""
    return await file_request(requester_client, police)

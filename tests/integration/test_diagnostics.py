"""Diagnostics of both kinds of entry leave out secrets and footage."""

from __future__ import annotations

import json

from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.const import CONF_FINGERPRINT, CONF_TOKEN
from custom_components.doorstep.sharing import Actor, RequesterKind
from reference_doorbell.doorbell import Doorbell

from .conftest import API, hub_of, request_body


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


async def test_sharing_diagnostics_give_counts_not_secrets(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
) -> None:
    """The sharing entry's diagnostics count requests and requesters by state and kind,
    check the audit chain, and carry no token, name, reference, reason or contact."""
    # Diagnostics registers its views; do it before a client freezes the router.
    assert await async_setup_component(hass, "diagnostics", {})
    hub = hub_of(sharing_entry)
    requester, token = hub.gate.create_requester("Station North", RequesterKind.POLICE)
    revoked, _ = hub.gate.create_requester("Old Insurer", RequesterKind.INSURER)
    hub.gate.revoke_requester(revoked.id)
    client = await hass_client_no_auth()
    filed = []
    for reference in ("CASE-114", "CASE-115"):
        response = await client.post(
            f"{API}/requests",
            json=request_body(reference=reference),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 201
        filed.append((await response.json())["id"])
    await hub.gate.decline(filed[1], Actor(user_id="owner", is_admin=True, verified_by="password"))

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, sharing_entry)

    assert diagnostics["requests"]["by_state"] == {
        "pending": 1,
        "approved": 0,
        "fulfilled": 0,
        "declined": 1,
        "expired": 0,
        "revoked": 0,
    }
    assert diagnostics["requests"]["by_delivery"] == {"pickup": 2}
    assert diagnostics["requesters"] == {
        "active": 1,
        "revoked": 1,
        "by_kind": {"police": 1, "insurer": 1},
    }
    assert diagnostics["clips"] == {"count": 0, "bytes": 0}
    assert diagnostics["audit_log"]["entries"] >= 3
    assert diagnostics["audit_log"]["first_broken_entry"] is None
    text = json.dumps(diagnostics)
    body = request_body()
    for secret in (
        token,
        hub.gate.requester(requester.id).token_hash,
        "Station North",
        "Old Insurer",
        "CASE-114",
        body["reason"],
        body["contact"],
        *filed,
    ):
        assert secret not in text

"""The sharing gate inside Home Assistant: requests in, the per-request switch, pickups out.

Invariants I1 and I2 are checked here at the Home Assistant boundary: only an admin
person's switch flip releases anything, every refusal is audited, and the requester
learns nothing beyond pending / fulfilled / closed.
"""

from __future__ import annotations

import asyncio
from base64 import b64decode
from datetime import timedelta
import hashlib
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import media_source, persistent_notification
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.const import (
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    DOMAIN,
    EVENT_SHARE_REQUESTED,
    KIND_SHARING,
)
from custom_components.doorstep.recording import DATA_CLIPS
from custom_components.doorstep.sharing import RequesterKind
from custom_components.doorstep.sharing_hub import SharingHub
from reference_doorbell.doorbell import Doorbell
from reference_doorbell.release_check import verify_archive

from .conftest import wait_for

API = "/api/doorstep/v1"


def _hub(entry: MockConfigEntry) -> SharingHub:
    hub = entry.runtime_data
    assert isinstance(hub, SharingHub)
    return hub


def _token(entry: MockConfigEntry, name: str = "Station North") -> dict[str, str]:
    _requester, token = _hub(entry).gate.create_requester(name, RequesterKind.POLICE)
    return {"Authorization": f"Bearer {token}"}


def _body(**changes: Any) -> dict[str, Any]:
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


def _audit(hass: HomeAssistant) -> list[dict[str, Any]]:
    path = Path(hass.config.path("doorstep", "audit.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def _switch_id(hass: HomeAssistant, request_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "switch", DOMAIN, f"share_request_{request_id}"
    )
    assert entity_id is not None
    return entity_id


async def _file(client: Any, headers: dict[str, str], **changes: Any) -> str:
    response = await client.post(f"{API}/requests", json=_body(**changes), headers=headers)
    assert response.status == 201, await response.text()
    data = await response.json()
    assert data["status"] == "pending"
    return str(data["id"])


async def test_request_arrives_as_an_off_switch(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
) -> None:
    """A filed request shows up off, with its details, a count, an event and a notification."""
    events = []
    hass.bus.async_listen(EVENT_SHARE_REQUESTED, events.append)
    client = await hass_client_no_auth()
    request_id = await _file(client, _token(sharing_entry))
    await hass.async_block_till_done()

    state = hass.states.get(_switch_id(hass, request_id))
    assert state is not None
    assert state.state == "off"
    assert state.name.endswith("Share clips with Station North (CASE-114)")
    assert state.attributes["reason"] == "Parcel theft on the 24th"
    assert state.attributes["kind"] == "police"
    assert state.attributes["clips"] == []
    assert hass.states.get("sensor.doorstep_sharing_pending_requests").state == "1"  # type: ignore[union-attr]
    assert events[0].data["reference"] == "CASE-114"
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    assert f"doorstep_request_{request_id}" in notifications
    assert [entry["kind"] for entry in _audit(hass)] == ["filed"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer nope"}, 401), ({"Authorization": "Basic x"}, 401)],
)
async def test_bad_tokens_are_refused_and_counted(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
    headers: dict[str, str],
    status: int,
) -> None:
    """401 for a missing or wrong token, reported to Home Assistant's IP ban."""
    client = await hass_client_no_auth()
    with patch("custom_components.doorstep.http.process_wrong_login") as wrong_login:
        response = await client.post(f"{API}/requests", json=_body(), headers=headers)
    assert response.status == status
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert wrong_login.await_count == 1
    assert _hub(sharing_entry).gate.requests() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (json.dumps(_body(reference="")).encode(), "reference"),
        (json.dumps({k: v for k, v in _body().items() if k != "reason"}).encode(), "reason"),
        (
            json.dumps(_body(delivery={"method": "upload", "url": "http://x"})).encode(),
            "delivery.url",
        ),
        (json.dumps(_body(surprise=1)).encode(), "surprise"),
    ],
)
async def test_malformed_bodies_get_field_errors(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
    body: bytes,
    field: str,
) -> None:
    """400 names the field; nothing is filed."""
    client = await hass_client_no_auth()
    response = await client.post(f"{API}/requests", data=body, headers=_token(sharing_entry))
    assert response.status == 400
    data = await response.json()
    assert data["error"] == "invalid_request"
    assert data["field"].startswith(field.split(".")[0])
    assert data["message"]
    assert _hub(sharing_entry).gate.requests() == []


async def test_oversized_body_and_pending_cap(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
) -> None:
    """Over 16 KiB is 413; beyond the pending cap is 429."""
    client = await hass_client_no_auth()
    headers = _token(sharing_entry)
    response = await client.post(f"{API}/requests", data=b"x" * (16 * 1024 + 1), headers=headers)
    assert response.status == 413
    statuses = []
    for number in range(7):
        response = await client.post(
            f"{API}/requests", json=_body(reference=f"CASE-{number}"), headers=headers
        )
        statuses.append(response.status)
    assert statuses.count(201) == 5
    assert statuses[5:] == [429, 429]


async def test_requester_sees_only_its_own_requests(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
) -> None:
    """Another requester's id, a malformed id and an unknown id all read as not found."""
    client = await hass_client_no_auth()
    request_id = await _file(client, _token(sharing_entry))
    other = _token(sharing_entry, "Neighbour")
    for path in (request_id, "../../etc/passwd", "01ARZ3NDEKTSV4RRFFQ69G5FAV"):
        response = await client.get(f"{API}/requests/{path}", headers=other)
        assert response.status == 404, path


async def test_approval_needs_an_admin_person(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
    sharing_entry: MockConfigEntry,
) -> None:
    """Invariant I2, then I1: automations and read-only users can't; an admin can, once."""
    client = await hass_client_no_auth()
    headers = _token(sharing_entry)
    request_id = await _file(client, headers)
    switch = _switch_id(hass, request_id)

    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": switch}, blocking=True, context=Context()
        )
    assert refused.value.translation_key == "approval_needs_person"
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            "switch",
            "turn_on",
            {"entity_id": switch},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    assert hass.states.get(switch).state == "off"  # type: ignore[union-attr]
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    assert status == {"id": request_id, "status": "pending"}

    admin = Context(user_id=hass_admin_user.id)
    for _ in range(20):  # replays change nothing
        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": switch}, blocking=True, context=admin
        )
    assert hass.states.get(switch).state == "on"  # type: ignore[union-attr]
    kinds = [entry["kind"] for entry in _audit(hass)]
    assert kinds.count("approved") == 1
    assert "refused" in kinds

    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    assert status["status"] == "fulfilled"
    pickup = await client.get(status["pickup_url"])
    assert pickup.status == 200
    archive = await pickup.read()
    key = await (await client.get(f"{API}/key", headers=headers)).json()
    manifest = verify_archive(archive, b64decode(key["public_key"]))
    assert manifest["request_id"] == request_id
    assert "downloaded" in [entry["kind"] for entry in _audit(hass)]


async def test_switch_off_revokes_the_pickup(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    hass_admin_user: MockUser,
    sharing_entry: MockConfigEntry,
) -> None:
    """Turning the switch off before pickup kills the link."""
    client = await hass_client_no_auth()
    headers = _token(sharing_entry)
    request_id = await _file(client, headers)
    switch = _switch_id(hass, request_id)
    admin = Context(user_id=hass_admin_user.id)
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": switch}, blocking=True, context=admin
    )
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": switch}, blocking=True, context=admin
    )
    assert (await client.get(status["pickup_url"])).status == 404
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    assert status == {"id": request_id, "status": "closed"}


async def test_decline_looks_like_expiry(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A requester cannot tell a decline from an expiry."""
    client = await hass_client_no_auth()
    headers = _token(sharing_entry)
    declined = await _file(client, headers, reference="A")
    expired = await _file(
        client,
        headers,
        reference="B",
        wanted_by=(dt_util.utcnow() + timedelta(seconds=2)).isoformat(),
    )
    await hass.services.async_call(
        DOMAIN, "decline_request", {"request_id": declined}, blocking=True
    )
    freezer.tick(timedelta(minutes=1))
    await _hub(sharing_entry).gate.expire_due()
    views = [
        await (await client.get(f"{API}/requests/{rid}", headers=headers)).json()
        for rid in (declined, expired)
    ]
    assert [set(view) for view in views] == [{"id", "status"}, {"id", "status"}]
    assert [view["status"] for view in views] == ["closed", "closed"]


async def test_requests_survive_a_restart(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
) -> None:
    """Pending requests come back after the entry (or Home Assistant) restarts."""
    client = await hass_client_no_auth()
    request_id = await _file(client, _token(sharing_entry))
    assert await hass.config_entries.async_reload(sharing_entry.entry_id)
    await hass.async_block_till_done()
    assert _hub(sharing_entry).gate.get(request_id).state.value == "pending"
    assert hass.states.get(_switch_id(hass, request_id)) is not None


async def test_corrupt_store_releases_nothing(
    hass: HomeAssistant,
    socket_enabled: None,
    hass_storage: dict[str, Any],
    issue_registry: ir.IssueRegistry,
) -> None:
    """A corrupt stored state keeps sharing off and raises a repair issue."""
    hass_storage["doorstep.sharing"] = {
        "version": 1,
        "minor_version": 1,
        "key": "doorstep.sharing",
        "data": {"requests": "garbage"},
    }
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id="doorstep_sharing", data={"kind": KIND_SHARING}
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert issue_registry.async_get_issue(DOMAIN, "sharing_state_corrupt") is not None


async def test_audit_log_services_and_local_requests(
    hass: HomeAssistant, sharing_entry: MockConfigEntry
) -> None:
    """request_clip files through the same schema; the log verifies and exports."""
    now = dt_util.utcnow()
    response = await hass.services.async_call(
        DOMAIN,
        "request_clip",
        {
            "requester": "Neighbour's hub",
            "kind": "neighbour",
            "reference": "PARCEL-7",
            "reason": "A parcel went missing",
            "window_start": now - timedelta(hours=2),
            "window_end": now - timedelta(hours=1),
            "contact": "next door",
            "wanted_by": now + timedelta(days=2),
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["status"] == "pending"
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN,
            "request_clip",
            {
                "reference": "X",
                "reason": "future footage",
                "window_start": now + timedelta(hours=1),
                "window_end": now + timedelta(hours=2),
                "contact": "x",
                "wanted_by": now + timedelta(days=2),
            },
            blocking=True,
        )
    result = await hass.services.async_call(
        DOMAIN, "verify_audit_log", {}, blocking=True, return_response=True
    )
    assert result == {"valid": True, "first_broken_entry": None}
    exported = await hass.services.async_call(
        DOMAIN, "export_audit_log", {}, blocking=True, return_response=True
    )
    assert exported is not None
    assert Path(str(exported["path"])).read_bytes().count(b"\n") == 1

    # Tampering is found.
    path = Path(hass.config.path("doorstep", "audit.jsonl"))
    text = path.read_text()
    assert '"filed"' in text
    path.write_text(text.replace('"filed"', '"FILED"', 1))
    result = await hass.services.async_call(
        DOMAIN, "verify_audit_log", {}, blocking=True, return_response=True
    )
    assert result is not None
    assert result["valid"] is False


async def test_ring_clip_is_held_then_released_exactly(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    hass_client: ClientSessionGenerator,
    hass_admin_user: MockUser,
    doorbell: Doorbell,
    paired_entry: MockConfigEntry,
) -> None:
    """A ring records a clip; a request holds it; approval releases exactly those bytes."""
    hass.config_entries.async_update_entry(
        paired_entry, options={CONF_PRE_ROLL: 1, CONF_POST_ROLL: 1}
    )
    assert await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = paired_entry.runtime_data.coordinator
    await wait_for(hass, lambda: coordinator.data.connected)
    store = hass.data[DATA_CLIPS]
    # Let the pre-roll fill, then ring.
    await asyncio.sleep(2)
    await doorbell.ring()
    await wait_for(hass, lambda: len(store.list_clips()) == 1, within=15)
    clip = store.list_clips()[0]
    assert clip.doorbell_id == doorbell.device_id

    # The household can watch it in the media browser.
    assert await async_setup_component(hass, "media_source", {})
    await hass.async_block_till_done()
    folder = await media_source.async_browse_media(
        hass, f"media-source://{DOMAIN}/{doorbell.device_id}"
    )
    assert [child.identifier for child in folder.children] == [f"{doorbell.device_id}/{clip.id}"]
    played = await media_source.async_resolve_media(
        hass, f"media-source://{DOMAIN}/{doorbell.device_id}/{clip.id}", None
    )
    viewer = await hass_client()
    response = await viewer.get(played.url)
    assert response.status == 200
    assert (await response.read())[4:8] == b"ftyp"

    sharing = next(
        e for e in hass.config_entries.async_entries(DOMAIN) if e.data.get("kind") == KIND_SHARING
    )
    client = await hass_client_no_auth()
    headers = _token(sharing)
    now = dt_util.utcnow()
    request_id = await _file(
        client,
        headers,
        window={"start": (now - timedelta(minutes=5)).isoformat(), "end": now.isoformat()},
    )
    hub = _hub(sharing)
    assert clip.id in hub.gate.held_clip_ids()
    # Retention cannot touch a held clip, even when it is over every limit.
    assert (
        await hass.async_add_executor_job(
            store.apply_retention, timedelta(0), 0, hub.gate.held_clip_ids()
        )
        == []
    )
    state = hass.states.get(_switch_id(hass, request_id))
    assert state is not None
    assert [c["id"] for c in state.attributes["clips"]] == [clip.id]

    admin = Context(user_id=hass_admin_user.id)
    await hass.services.async_call(
        "switch",
        "turn_on",
        {"entity_id": _switch_id(hass, request_id)},
        blocking=True,
        context=admin,
    )
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    archive = await (await client.get(status["pickup_url"])).read()
    key = await (await client.get(f"{API}/key", headers=headers)).json()
    manifest = verify_archive(archive, b64decode(key["public_key"]))
    assert [c["id"] for c in manifest["clips"]] == [clip.id]
    clip_bytes = await hass.async_add_executor_job(store.clip_path(clip.id).read_bytes)
    assert manifest["clips"][0]["sha256"] == hashlib.sha256(clip_bytes).hexdigest()
    assert await hass.config_entries.async_unload(paired_entry.entry_id)


async def test_decline_button_closes_and_removes_the_entities(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    hass_admin_user: MockUser,
    sharing_entry: MockConfigEntry,
) -> None:
    """Pressing Decline closes the request; its switch and button go away."""
    client = await hass_client_no_auth()
    headers = _token(sharing_entry)
    request_id = await _file(client, headers)
    registry = er.async_get(hass)
    button = registry.async_get_entity_id("button", DOMAIN, f"decline_request_{request_id}")
    assert button is not None
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": button},
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )
    await hass.async_block_till_done()
    assert registry.async_get_entity_id("button", DOMAIN, f"decline_request_{request_id}") is None
    assert registry.async_get_entity_id("switch", DOMAIN, f"share_request_{request_id}") is None
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    assert status == {"id": request_id, "status": "closed"}
    assert "declined" in [entry["kind"] for entry in _audit(hass)]


async def test_request_expires_on_its_own(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Past its wanted-by time a request closes without anyone touching it."""
    client = await hass_client_no_auth()
    headers = _token(sharing_entry)
    request_id = await _file(
        client, headers, wanted_by=(dt_util.utcnow() + timedelta(seconds=30)).isoformat()
    )
    await hass.async_block_till_done()
    switch_id = _switch_id(hass, request_id)
    notice = f"doorstep_request_{request_id}"
    assert notice in persistent_notification._async_get_or_create_notifications(hass)

    freezer.tick(timedelta(seconds=20))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(switch_id) is not None  # not yet due

    freezer.tick(timedelta(minutes=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(switch_id) is None
    assert hass.states.get("sensor.doorstep_sharing_pending_requests").state == "0"  # type: ignore[union-attr]
    assert notice not in persistent_notification._async_get_or_create_notifications(hass)
    assert [entry["kind"] for entry in _audit(hass)] == ["filed", "expired"]
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    assert status == {"id": request_id, "status": "closed"}

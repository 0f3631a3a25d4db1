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

from aiohttp.test_utils import TestClient
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
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    MockHAClientWebSocket,
    WebSocketGenerator,
)

from custom_components.doorstep.const import (
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    DOMAIN,
    EVENT_SHARE_REQUESTED,
    KIND_SHARING,
)
from custom_components.doorstep.recording import DATA_CLIPS
from custom_components.doorstep.sharing import Actor, state_to_dict
from reference_doorbell.doorbell import Doorbell
from reference_doorbell.release_check import verify_archive
from tests.approval import approve_seen

from .conftest import (
    API,
    OWNER_PASSWORD,
    approve_in_card,
    audit_entries,
    file_request,
    hub_of,
    request_body,
    requester_headers,
    switch_id,
    wait_for,
    ws_call,
)


async def test_request_arrives_as_an_off_switch(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    requester_client: TestClient,
    police: dict[str, str],
) -> None:
    """A filed request shows up off, with its details, a count, an event and a notification."""
    events = []
    hass.bus.async_listen(EVENT_SHARE_REQUESTED, events.append)
    # Filed only now, after the listener is in place.
    request_id = await file_request(requester_client, police)
    await hass.async_block_till_done()

    state = hass.states.get(switch_id(hass, request_id))
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
    assert [entry["kind"] for entry in audit_entries(hass)] == ["filed"]


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
        response = await client.post(f"{API}/requests", json=request_body(), headers=headers)
    assert response.status == status
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert wrong_login.await_count == 1
    assert hub_of(sharing_entry).gate.requests() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (json.dumps(request_body(reference="")).encode(), "reference"),
        (json.dumps({k: v for k, v in request_body().items() if k != "reason"}).encode(), "reason"),
        (
            json.dumps(request_body(delivery={"method": "upload", "url": "http://x"})).encode(),
            "delivery.url",
        ),
        (json.dumps(request_body(surprise=1)).encode(), "surprise"),
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
    response = await client.post(
        f"{API}/requests", data=body, headers=requester_headers(sharing_entry)
    )
    assert response.status == 400
    data = await response.json()
    assert data["error"] == "invalid_request"
    assert data["field"].startswith(field.split(".")[0])
    assert data["message"]
    assert hub_of(sharing_entry).gate.requests() == []


async def test_oversized_body_and_pending_cap(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    requester_client: TestClient,
    police: dict[str, str],
) -> None:
    """Over 16 KiB is 413; beyond the pending cap is 429."""
    client, headers = requester_client, police
    response = await client.post(f"{API}/requests", data=b"x" * (16 * 1024 + 1), headers=headers)
    assert response.status == 413
    statuses = []
    for number in range(7):
        response = await client.post(
            f"{API}/requests", json=request_body(reference=f"CASE-{number}"), headers=headers
        )
        statuses.append(response.status)
    assert statuses.count(201) == 5
    assert statuses[5:] == [429, 429]


async def test_requester_sees_only_its_own_requests(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    requester_client: TestClient,
    pending_request: str,
) -> None:
    """Another requester's id, a malformed id and an unknown id all read as not found."""
    client, request_id = requester_client, pending_request
    other = requester_headers(sharing_entry, "Neighbour")
    for path in (request_id, "../../etc/passwd", "01ARZ3NDEKTSV4RRFFQ69G5FAV"):
        response = await client.get(f"{API}/requests/{path}", headers=other)
        assert response.status == 404, path


async def test_switch_never_approves_the_card_does(
    hass: HomeAssistant,
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    requester_client: TestClient,
    police: dict[str, str],
    pending_request: str,
) -> None:
    """Invariant I2, then I1: the switch refuses everyone (pointing to the card, audited);
    the card's approval with the person's password releases, once."""
    client, headers, request_id = requester_client, police, pending_request
    switch = switch_id(hass, request_id)

    for context in (Context(), Context(user_id=hass_admin_user.id)):
        with pytest.raises(ServiceValidationError) as refused:
            await hass.services.async_call(
                "switch", "turn_on", {"entity_id": switch}, blocking=True, context=context
            )
        assert refused.value.translation_key == "approve_in_card"
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            "switch",
            "turn_on",
            {"entity_id": switch},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    assert hass.states.get(switch).state == "off"  # type: ignore[union-attr]
    refusals = [entry for entry in audit_entries(hass) if entry["kind"] == "refused"]
    assert [entry["details"] for entry in refusals] == [
        {"action": "switch on", "reason": "approve_in_card"}
    ] * 2
    assert [entry["actor"] for entry in refusals] == ["automation", f"user:{hass_admin_user.id}"]
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    assert status == {"id": request_id, "status": "pending"}

    preview = await ws_call(person_ws, "doorstep/sharing/preview", request_id=request_id)
    confirm = preview["result"]["confirm"]
    for _ in range(3):  # replays change nothing
        approved = await ws_call(
            person_ws,
            "doorstep/sharing/approve",
            request_id=request_id,
            confirm=confirm,
            password=OWNER_PASSWORD,
        )
        assert approved["success"] is True, approved
    assert hass.states.get(switch).state == "on"  # type: ignore[union-attr]
    kinds = [entry["kind"] for entry in audit_entries(hass)]
    assert kinds.count("approved") == 1
    (approval,) = [e for e in audit_entries(hass) if e["kind"] == "approved"]
    assert approval["details"]["verified_by"] == "password"

    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    assert status["status"] == "fulfilled"
    pickup = await client.get(status["pickup_url"])
    assert pickup.status == 200
    archive = await pickup.read()
    key = await (await client.get(f"{API}/key", headers=headers)).json()
    manifest = verify_archive(archive, b64decode(key["public_key"]))
    assert manifest["request_id"] == request_id
    assert "downloaded" in [entry["kind"] for entry in audit_entries(hass)]


async def test_switch_off_revokes_the_pickup(
    hass: HomeAssistant,
    hass_admin_user: MockUser,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    requester_client: TestClient,
    police: dict[str, str],
    pending_request: str,
) -> None:
    """Turning the switch off before pickup kills the link."""
    client, headers, request_id = requester_client, police, pending_request
    switch = switch_id(hass, request_id)
    admin = Context(user_id=hass_admin_user.id)
    assert (await approve_in_card(person_ws, request_id))["success"] is True
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": switch}, blocking=True, context=admin
    )
    assert (await client.get(status["pickup_url"])).status == 404
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    assert status == {"id": request_id, "status": "closed"}


async def _requester_sees(client: Any, headers: dict[str, str], request_id: str) -> list[Any]:
    """Everything a requester can ask about its request, as (status code, body) pairs,
    with the request's own id blanked so two requests compare field by field."""
    seen: list[Any] = []
    status = await client.get(f"{API}/requests/{request_id}", headers=headers)
    body = await status.json()
    seen.append(("status", status.status, {**body, "id": None}))
    guessed = await client.get(f"{API}/pickup/{'A' * 43}")
    seen.append(("pickup", guessed.status, await guessed.json()))
    key = await client.get(f"{API}/key", headers=headers)
    seen.append(("key", key.status, sorted(await key.json())))
    return seen


async def test_decline_reads_exactly_like_expiry_until_the_deadline(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Two requesters, the same request: one is declined at once, the other never
    answered. Every response either can get is the same, moment by moment: "pending"
    until wanted_by, "closed" after, and the same room left to ask again."""
    client = await hass_client_no_auth()
    declined_by = requester_headers(sharing_entry, "Station North")
    ignored_by = requester_headers(sharing_entry, "Station South")
    wanted_by = (dt_util.utcnow() + timedelta(hours=2)).isoformat()
    declined = await file_request(client, declined_by, wanted_by=wanted_by)
    ignored = await file_request(client, ignored_by, wanted_by=wanted_by)
    await hass.services.async_call(
        DOMAIN, "decline_request", {"request_id": declined}, blocking=True
    )
    await hass.async_block_till_done()

    timeline: list[tuple[list[Any], list[Any]]] = []
    for step in (timedelta(0), timedelta(minutes=30), timedelta(minutes=89)):
        freezer.tick(step)
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        timeline.append(
            (
                await _requester_sees(client, declined_by, declined),
                await _requester_sees(client, ignored_by, ignored),
            )
        )
    # Filing more before the deadline: the decline freed no slot the other lacks.
    answers = []
    for headers in (declined_by, ignored_by):
        codes = []
        for _ in range(5):
            response = await client.post(
                f"{API}/requests", json=request_body(wanted_by=wanted_by), headers=headers
            )
            codes.append((response.status, sorted(await response.json())))
        answers.append(codes)
    assert answers[0] == answers[1]
    assert [code for code, _ in answers[0]] == [201, 201, 201, 201, 429]

    freezer.tick(timedelta(minutes=31))  # past wanted_by
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    timeline.append(
        (
            await _requester_sees(client, declined_by, declined),
            await _requester_sees(client, ignored_by, ignored),
        )
    )
    for seen_declined, seen_ignored in timeline:
        assert seen_declined == seen_ignored
    statuses = [seen[0][0][2]["status"] for seen in timeline]
    assert statuses == ["pending", "pending", "pending", "closed"]
    assert hub_of(sharing_entry).gate.get(declined).state.value == "declined"
    assert hub_of(sharing_entry).gate.get(ignored).state.value == "expired"


async def test_requests_survive_a_restart(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    pending_request: str,
) -> None:
    """Pending requests come back after the entry (or Home Assistant) restarts."""
    request_id = pending_request
    assert await hass.config_entries.async_reload(sharing_entry.entry_id)
    await hass.async_block_till_done()
    assert hub_of(sharing_entry).gate.get(request_id).state.value == "pending"
    assert hass.states.get(switch_id(hass, request_id)) is not None


async def test_version_1_store_is_migrated_to_hashed_pickup_tokens(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    sharing_entry: MockConfigEntry,
    requester_client: TestClient,
    police: dict[str, str],
    pending_request: str,
) -> None:
    """A store saved before pickup tokens were hashed (Store version 1, clear token) is
    migrated on load and rewritten at once; the requester's old link still works."""
    hub = hub_of(sharing_entry)
    await approve_seen(
        hub.gate, pending_request, Actor(user_id="owner", is_admin=True, verified_by="password")
    )
    token = hub.gate.pickup_token(pending_request)
    assert token is not None
    old = state_to_dict(hub.gate.state)
    old["version"] = 1
    for item in old["requests"]:
        if item["pickup"] is not None:
            item["pickup"]["token"] = token
            del item["pickup"]["token_hash"]
    assert await hass.config_entries.async_unload(sharing_entry.entry_id)
    await hass.async_block_till_done()
    injected = {"version": 1, "minor_version": 1, "key": "doorstep.sharing", "data": old}
    hass_storage["doorstep.sharing"] = injected

    assert await hass.config_entries.async_setup(sharing_entry.entry_id)
    await hass.async_block_till_done()
    stored = hass_storage["doorstep.sharing"]
    # Written anew (the mock store replaces the entry on a write), not only migrated in
    # memory: the clear token must not wait on disk for the next change.
    assert stored is not injected
    assert stored["version"] == 2
    assert stored["data"]["version"] == 2
    assert token not in json.dumps(stored)
    assert hashlib.sha256(token.encode()).hexdigest() in json.dumps(stored)
    pickup = await requester_client.get(f"{API}/pickup/{token}")
    assert pickup.status == 200
    key = await (await requester_client.get(f"{API}/key", headers=police)).json()
    manifest = verify_archive(await pickup.read(), b64decode(key["public_key"]))
    assert manifest["request_id"] == pending_request


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
    hass_ws_client: WebSocketGenerator,
    owner_password: str,
    hub_browsers_at_home: MockConfigEntry,
    doorbell: Doorbell,
    paired_entry: MockConfigEntry,
) -> None:
    """A ring records a clip; a request holds it; the preview shows it (a still and the
    video, through signed links); approval releases exactly those bytes."""
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
    headers = requester_headers(sharing)
    now = dt_util.utcnow()
    request_id = await file_request(
        client,
        headers,
        window={"start": (now - timedelta(minutes=5)).isoformat(), "end": now.isoformat()},
    )
    hub = hub_of(sharing)
    assert clip.id in hub.gate.held_clip_ids()
    # Retention cannot touch a held clip, even when it is over every limit.
    assert (
        await hass.async_add_executor_job(
            store.apply_retention, timedelta(0), 0, hub.gate.held_clip_ids()
        )
        == []
    )
    state = hass.states.get(switch_id(hass, request_id))
    assert state is not None
    assert [c["id"] for c in state.attributes["clips"]] == [clip.id]

    ws = await hass_ws_client(hass)
    preview = (await ws_call(ws, "doorstep/sharing/preview", request_id=request_id))["result"]
    clip_bytes = await hass.async_add_executor_job(store.clip_path(clip.id).read_bytes)
    assert preview["clip_count"] == 1
    assert preview["total_bytes"] == len(clip_bytes) == clip.size
    assert preview["has_audio"] is False
    assert preview["destination"] == {"method": "pickup"}
    assert preview["total_duration_s"] == round(clip.duration.total_seconds(), 1)
    (shown,) = preview["clips"]
    assert (shown["id"], shown["doorbell"]) == (clip.id, doorbell.device_id)
    # The signed links work without a header (for <img> and <video>), the plain paths don't.
    anonymous = await hass_client_no_auth()
    still = await anonymous.get(shown["thumbnail_url"])
    assert still.status == 200
    assert still.content_type == "image/jpeg"
    assert (await still.read()).startswith(b"\xff\xd8\xff")
    video = await anonymous.get(shown["video_url"])
    assert video.status == 200
    assert await video.read() == clip_bytes
    for path in (shown["thumbnail_url"], shown["video_url"]):
        assert (await anonymous.get(path.partition("?")[0])).status == 401

    approved = await ws_call(
        ws,
        "doorstep/sharing/approve",
        request_id=request_id,
        confirm=preview["confirm"],
        password=owner_password,
    )
    assert approved["success"] is True, approved
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    archive = await (await client.get(status["pickup_url"])).read()
    key = await (await client.get(f"{API}/key", headers=headers)).json()
    manifest = verify_archive(archive, b64decode(key["public_key"]))
    assert [c["id"] for c in manifest["clips"]] == [clip.id]
    assert manifest["clips"][0]["sha256"] == hashlib.sha256(clip_bytes).hexdigest()
    assert await hass.config_entries.async_unload(paired_entry.entry_id)


async def test_decline_button_closes_and_removes_the_entities(
    hass: HomeAssistant,
    hass_admin_user: MockUser,
    sharing_entry: MockConfigEntry,
    requester_client: TestClient,
    police: dict[str, str],
    pending_request: str,
) -> None:
    """Pressing Decline closes the request; its switch and button go away."""
    client, headers, request_id = requester_client, police, pending_request
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
    # To the requester a decline reads "pending" until the request's deadline.
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    assert status == {"id": request_id, "status": "pending"}
    assert "declined" in [entry["kind"] for entry in audit_entries(hass)]


async def test_request_expires_on_its_own(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    requester_client: TestClient,
    police: dict[str, str],
) -> None:
    """Past its wanted-by time a request closes without anyone touching it."""
    client, headers = requester_client, police
    request_id = await file_request(
        client, headers, wanted_by=(dt_util.utcnow() + timedelta(seconds=30)).isoformat()
    )
    await hass.async_block_till_done()
    the_switch = switch_id(hass, request_id)
    notice = f"doorstep_request_{request_id}"
    assert notice in persistent_notification._async_get_or_create_notifications(hass)

    freezer.tick(timedelta(seconds=20))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(the_switch) is not None  # not yet due

    freezer.tick(timedelta(minutes=1))
    async_fire_time_changed(hass)
    # The minutely expiry check runs as a background task (its audit write included).
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(the_switch) is None
    assert hass.states.get("sensor.doorstep_sharing_pending_requests").state == "0"  # type: ignore[union-attr]
    assert notice not in persistent_notification._async_get_or_create_notifications(hass)
    assert [entry["kind"] for entry in audit_entries(hass)] == ["filed", "expired"]
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    assert status == {"id": request_id, "status": "closed"}

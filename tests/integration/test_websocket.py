"""The sharing card's websocket commands: the live list, decisions, requesters.

Every decision goes through the same gate as the switch, as the connection's user, and
every refusal is in the audit log, including the read-only user's that Home Assistant
core would stop before Doorstep sees it on the switch.
"""

from __future__ import annotations

from base64 import b64decode
from typing import Any

from aiohttp.test_utils import TestClient
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    MockHAClientWebSocket,
    WebSocketGenerator,
)

from custom_components.doorstep.sharing import RequesterKind
from reference_doorbell.release_check import verify_archive

from .conftest import (
    API,
    OWNER_PASSWORD,
    approve_in_card,
    audit_entries,
    file_request,
    hub_of,
    requester_headers,
    switch_id,
)

UNKNOWN_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
MALFORMED_IDS = ["../../etc/passwd", "01arz3ndektsv4rrffq69g5fav", "", UNKNOWN_ID + "\n", "x" * 500]


async def _call(ws: MockHAClientWebSocket, type_: str, **data: Any) -> dict[str, Any]:
    await ws.send_json_auto_id({"type": type_, **data})
    response: dict[str, Any] = await ws.receive_json()
    return response


# What the approve command needs besides the request id, when the test is not about it.
PROOF = {"confirm": "0" * 64, "password": OWNER_PASSWORD}


@pytest.fixture
async def admin_ws(person_ws: MockHAClientWebSocket) -> MockHAClientWebSocket:
    """The admin's browser session (the admin has a password, so the step-up can pass)."""
    return person_ws


@pytest.fixture
async def read_only_ws(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    hass_read_only_access_token: str,
    sharing_entry: MockConfigEntry,
) -> MockHAClientWebSocket:
    return await hass_ws_client(hass, hass_read_only_access_token)


async def test_subscribe_lists_requests_live(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    admin_ws: MockHAClientWebSocket,
    requester_client: TestClient,
    police: dict[str, str],
) -> None:
    """Empty first; a filed request appears with its entities; a decision updates it."""
    subscribed = await _call(admin_ws, "doorstep/sharing/subscribe")
    assert subscribed["success"] is True
    first = await admin_ws.receive_json()
    assert first["event"] == {"available": True, "requests": [], "closed": []}

    # Filed only now, after the listener is in place.
    request_id = await file_request(requester_client, police)
    await hass.async_block_till_done()
    # Events follow the request and its entities' registration; the latest has them all.
    latest: dict[str, Any] = {"requests": []}

    def entities_known() -> bool:
        return bool(latest["requests"]) and None not in (
            latest["requests"][0]["switch_entity_id"],
            latest["requests"][0]["decline_entity_id"],
        )

    while not entities_known():
        latest = (await admin_ws.receive_json())["event"]
    (listed,) = latest["requests"]
    assert listed["id"] == request_id
    assert listed["requester"] == {"name": "Station North", "kind": "police"}
    assert listed["reference"] == "CASE-114"
    assert listed["reason"] == "Parcel theft on the 24th"
    assert listed["contact"] == "desk@station-north.example"
    assert listed["state"] == "pending"
    assert listed["clips"] == []
    assert set(listed["window"]) == {"start", "end"}
    assert listed["switch_entity_id"] == switch_id(hass, request_id)
    assert listed["decline_entity_id"].startswith("button.")

    assert listed["outcome"] is None
    assert listed["closed_at"] is None
    assert [event["event"] for event in listed["history"]] == ["filed"]

    # The subscription's update may arrive before the command's own answer.
    approved = await approve_in_card(admin_ws, request_id)
    assert approved["success"] is True, approved
    assert approved["result"]["state"] == "approved"
    assert [(e["event"], e["detail"]) for e in approved["result"]["history"]] == [
        ("filed", None),
        ("approved", "password"),
        ("pickup_created", None),
    ]
    assert hass.states.get(switch_id(hass, request_id)).state == "on"  # type: ignore[union-attr]


async def test_approve_as_admin_releases_to_the_requester(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    admin_ws: MockHAClientWebSocket,
    requester_client: TestClient,
    police: dict[str, str],
    pending_request: str,
) -> None:
    """The card's approval is the switch's: audited once, then the pickup verifies."""
    client, headers, request_id = requester_client, police, pending_request
    first = await approve_in_card(admin_ws, request_id)
    assert first["success"] is True, first
    for _ in range(2):  # replays change nothing
        response = await _call(admin_ws, "doorstep/sharing/approve", request_id=request_id, **PROOF)
        assert response["success"] is True, response
    kinds = [entry["kind"] for entry in audit_entries(hass)]
    assert kinds == ["filed", "approved"]
    approval = audit_entries(hass)[1]
    assert approval["actor"].startswith("user:")

    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    archive = await (await client.get(status["pickup_url"])).read()
    key = await (await client.get(f"{API}/key", headers=headers)).json()
    assert verify_archive(archive, b64decode(key["public_key"]))["request_id"] == request_id


async def test_read_only_user_is_refused_and_audited(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    read_only_ws: MockHAClientWebSocket,
    pending_request: str,
) -> None:
    """Approve, decline and revoke: refused, translated, on record, nothing changed."""
    request_id = pending_request
    approve = await _call(read_only_ws, "doorstep/sharing/approve", request_id=request_id, **PROOF)
    assert approve["success"] is False
    assert approve["error"]["code"] == "unauthorized"
    assert approve["error"]["translation_key"] == "approval_needs_admin"
    assert "audit log" in approve["error"]["message"]
    for command in ("decline", "revoke"):
        refused = await _call(read_only_ws, f"doorstep/sharing/{command}", request_id=request_id)
        assert refused["success"] is False
        assert refused["error"]["code"] == "unauthorized"
        assert refused["error"]["translation_key"] == "read_only_user"
        assert "audit log" in refused["error"]["message"]
    assert hub_of(sharing_entry).gate.get(request_id).state.value == "pending"
    refusals = [entry for entry in audit_entries(hass) if entry["kind"] == "refused"]
    assert [entry["details"].get("action", "approve") for entry in refusals] == [
        "approve",
        "decline",
        "revoke",
    ]
    assert all(entry["request"] == request_id for entry in refusals)
    assert [entry["details"]["reason"] for entry in refusals] == [
        "approval_needs_admin",
        "read-only user",
        "read-only user",
    ]


async def test_decline_and_revoke(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    admin_ws: MockHAClientWebSocket,
    requester_client: TestClient,
    police: dict[str, str],
) -> None:
    """Decline closes a pending request; revoke closes an approval; closed stays closed."""
    client, headers = requester_client, police
    declined = await file_request(client, headers, reference="A")
    approved = await file_request(client, headers, reference="B")

    response = await _call(admin_ws, "doorstep/sharing/decline", request_id=declined)
    assert response["result"] == {"id": declined, "state": "declined"}
    again = await _call(admin_ws, "doorstep/sharing/approve", request_id=declined, **PROOF)
    assert again["success"] is False
    assert again["error"]["code"] == "not_allowed"
    assert again["error"]["translation_key"] == "request_closed"

    assert (await approve_in_card(admin_ws, approved))["success"]
    cannot_decline = await _call(admin_ws, "doorstep/sharing/decline", request_id=approved)
    assert cannot_decline["error"]["translation_key"] == "request_closed"
    revoked = await _call(admin_ws, "doorstep/sharing/revoke", request_id=approved)
    assert revoked["result"] == {"id": approved, "state": "revoked"}
    status = await (await client.get(f"{API}/requests/{approved}", headers=headers)).json()
    assert status == {"id": approved, "status": "closed"}
    assert [(e["kind"], e["details"].get("reason")) for e in audit_entries(hass)] == [
        ("filed", None),
        ("filed", None),
        ("declined", None),
        # Approving the declined request is refused, and on record.
        ("refused", "request_closed"),
        ("approved", None),
        ("revoked", None),
    ]


@pytest.mark.parametrize("command", ["approve", "decline", "revoke"])
@pytest.mark.parametrize("request_id", MALFORMED_IDS)
async def test_malformed_request_ids_change_nothing(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
    admin_ws: MockHAClientWebSocket,
    command: str,
    request_id: str,
) -> None:
    """A clear, translated invalid_format error; the pending request is untouched."""
    client = await hass_client_no_auth()
    filed = await file_request(client, requester_headers(sharing_entry))
    extra = PROOF if command == "approve" else {}
    response = await _call(admin_ws, f"doorstep/sharing/{command}", request_id=request_id, **extra)
    assert response["success"] is False
    assert response["error"]["code"] == "invalid_format"
    assert response["error"]["translation_key"] == "invalid_request_id"
    assert "Nothing was changed" in response["error"]["message"]
    assert hub_of(sharing_entry).gate.get(filed).state.value == "pending"
    entries = audit_entries(hass)
    if command == "approve":
        # Every refused approval is on record, without the id the caller typed.
        assert [(e["kind"], e["request"], e["details"]) for e in entries[1:]] == [
            ("refused", None, {"action": "approve", "reason": "invalid_request_id"})
        ]
        entries = entries[:1]
    assert [entry["kind"] for entry in entries] == ["filed"]


@pytest.mark.parametrize(
    "body",
    [{}, {"request_id": 12}, {"request_id": None}, {"request_id": ["x"]}, {"id_": "x"}],
)
async def test_malformed_bodies_are_rejected_by_the_schema(
    hass: HomeAssistant, admin_ws: MockHAClientWebSocket, body: dict[str, Any]
) -> None:
    response = await _call(admin_ws, "doorstep/sharing/approve", **body)
    assert response["success"] is False
    assert response["error"]["code"] == "invalid_format"


async def test_unknown_request_is_not_found(
    hass: HomeAssistant, admin_ws: MockHAClientWebSocket
) -> None:
    response = await _call(admin_ws, "doorstep/sharing/approve", request_id=UNKNOWN_ID, **PROOF)
    assert response["error"]["code"] == "not_found"
    assert response["error"]["translation_key"] == "unknown_request"


async def test_requester_management_for_admins(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
    admin_ws: MockHAClientWebSocket,
) -> None:
    """Create shows the token once and it works; the list never shows it; revoke stops it."""
    created = await _call(
        admin_ws, "doorstep/sharing/requester/create", name="  Station South ", kind="police"
    )
    assert created["success"] is True, created
    token = created["result"]["token"]
    requester = created["result"]["requester"]
    assert requester["name"] == "Station South"
    assert created["result"]["key_id"] == hub_of(sharing_entry).key.key_id

    client = await hass_client_no_auth()
    headers = {"Authorization": f"Bearer {token}"}
    await file_request(client, headers)

    listed = await _call(admin_ws, "doorstep/sharing/requesters")
    assert [r["name"] for r in listed["result"]["requesters"]] == ["Station South"]
    assert token not in str(listed)

    revoked = await _call(
        admin_ws, "doorstep/sharing/requester/revoke", requester_id=requester["id"]
    )
    assert revoked["result"]["revoked"] is True
    response = await client.post(f"{API}/requests", json={}, headers=headers)
    assert response.status == 401


@pytest.mark.parametrize(
    ("data", "code", "key"),
    [
        ({"name": "", "kind": "police"}, "invalid_format", "invalid_requester_name"),
        ({"name": "   ", "kind": "police"}, "invalid_format", "invalid_requester_name"),
        ({"name": "x" * 101, "kind": "police"}, "invalid_format", "invalid_requester_name"),
        ({"name": "bell\x07", "kind": "police"}, "invalid_format", "invalid_requester_name"),
        ({"name": "Ok", "kind": "spy"}, "invalid_format", None),
        ({"kind": "police"}, "invalid_format", None),
    ],
)
async def test_bad_requester_bodies_create_nothing(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    admin_ws: MockHAClientWebSocket,
    data: dict[str, Any],
    code: str,
    key: str | None,
) -> None:
    response = await _call(admin_ws, "doorstep/sharing/requester/create", **data)
    assert response["success"] is False
    assert response["error"]["code"] == code
    assert response["error"].get("translation_key") == key
    assert hub_of(sharing_entry).gate.state.requesters == {}


@pytest.mark.parametrize(
    ("requester_id", "code", "key"),
    [
        ("../x", "invalid_format", "invalid_requester_id"),
        (UNKNOWN_ID, "not_found", "unknown_requester"),
    ],
)
async def test_revoking_a_bad_requester_id(
    hass: HomeAssistant,
    admin_ws: MockHAClientWebSocket,
    requester_id: str,
    code: str,
    key: str,
) -> None:
    response = await _call(admin_ws, "doorstep/sharing/requester/revoke", requester_id=requester_id)
    assert response["error"]["code"] == code
    assert response["error"]["translation_key"] == key


async def test_requester_management_refuses_non_admins_on_record(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    read_only_ws: MockHAClientWebSocket,
) -> None:
    """List, create and revoke: refused for a read-only user, each refusal audited."""
    existing, _token_value = hub_of(sharing_entry).gate.create_requester(
        "Neighbour", RequesterKind.NEIGHBOUR
    )
    calls = [
        ("doorstep/sharing/requesters", {}),
        ("doorstep/sharing/requester/create", {"name": "Spy", "kind": "other"}),
        ("doorstep/sharing/requester/revoke", {"requester_id": existing.id}),
    ]
    for type_, data in calls:
        response = await _call(read_only_ws, type_, **data)
        assert response["success"] is False
        assert response["error"]["code"] == "unauthorized"
        assert response["error"]["translation_key"] == "requesters_need_admin"
    assert [r.name for r in hub_of(sharing_entry).gate.state.requesters.values()] == ["Neighbour"]
    assert not hub_of(sharing_entry).gate.requester(existing.id).revoked
    refusals = [entry for entry in audit_entries(hass) if entry["kind"] == "refused"]
    assert [entry["details"]["action"] for entry in refusals] == [
        "requesters",
        "requester/create",
        "requester/revoke",
    ]
    assert all(entry["request"] is None for entry in refusals)


async def test_commands_when_sharing_is_not_running(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    admin_ws: MockHAClientWebSocket,
    pending_request: str,
) -> None:
    """The list says sharing stopped and follows it back; decisions meanwhile say why not."""
    request_id = pending_request
    await hass.async_block_till_done()
    assert (await _call(admin_ws, "doorstep/sharing/subscribe"))["success"] is True
    assert len((await admin_ws.receive_json())["event"]["requests"]) == 1

    await hass.config_entries.async_unload(sharing_entry.entry_id)
    await hass.async_block_till_done()
    event: dict[str, Any] = {}
    while event.get("available", True):
        event = (await admin_ws.receive_json())["event"]
    assert event == {"available": False, "requests": [], "closed": []}
    refused = await _call(admin_ws, "doorstep/sharing/approve", request_id=request_id, **PROOF)
    while refused.get("type") == "event":
        refused = await admin_ws.receive_json()
    assert refused["success"] is False
    assert refused["error"]["code"] == "not_found"
    assert refused["error"]["translation_key"] == "sharing_unavailable"

    # A new gate after the entry comes back: the same subscription lists the request.
    assert await hass.config_entries.async_setup(sharing_entry.entry_id)
    await hass.async_block_till_done()
    while not event.get("requests"):
        event = (await admin_ws.receive_json())["event"]
    assert event["available"] is True
    assert [r["id"] for r in event["requests"]] == [request_id]


async def test_card_module_is_served(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, sharing_entry: MockConfigEntry
) -> None:
    """The card's JavaScript is served and defines the custom element."""
    client = await hass_client()
    response = await client.get("/doorstep/frontend/doorstep-sharing-card.js")
    assert response.status == 200
    text = await response.text()
    assert 'const CARD_TYPE = "doorstep-sharing-card";' in text
    assert "customElements.define(CARD_TYPE, DoorstepSharingCard)" in text
    assert "doorstep/sharing/subscribe" in text

"""Who may do what: every Doorstep endpoint and action against every kind of caller."""

from __future__ import annotations

from typing import Any

from aiohttp import WSMsgType
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.doorstep.const import DOMAIN
from custom_components.doorstep.sharing import Actor, RequesterKind
from custom_components.doorstep.sharing_hub import DATA_SHARING
from tests.approval import approve_seen

from .conftest import (
    API,
    OWNER_PASSWORD,
    TOTP_SECRET,
    audit_entries,
    enable_totp,
    hub_of,
    request_body,
    totp_code,
    ws_call,
)

# Callers, as the Authorization header they present. ADMIN is a person's login session
# (a normal refresh token) whose user has a Home Assistant password; ADMIN_LLAT is a
# script holding the same admin's long-lived token.
NO_AUTH = "no auth"
BAD_TOKEN = "bad requester token"
REQUESTER = "requester token"
READ_ONLY = "read-only user"
ADMIN = "admin user"
ADMIN_LLAT = "admin long-lived token"
CALLERS = (NO_AUTH, BAD_TOKEN, REQUESTER, READ_ONLY, ADMIN, ADMIN_LLAT)


@pytest.fixture
async def headers(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
    hass_read_only_access_token: str,
    hass_access_token: str,
    owner_password: str,
) -> dict[str, dict[str, str]]:
    """The Authorization header of each caller."""
    _requester, token = hub_of(sharing_entry).gate.create_requester("Station", RequesterKind.POLICE)
    refresh = await hass.auth.async_create_refresh_token(
        hass_admin_user, client_name="llat", token_type="long_lived_access_token"
    )
    llat = hass.auth.async_create_access_token(refresh)
    return {
        NO_AUTH: {},
        BAD_TOKEN: {"Authorization": "Bearer not-a-token"},
        REQUESTER: {"Authorization": f"Bearer {token}"},
        READ_ONLY: {"Authorization": f"Bearer {hass_read_only_access_token}"},
        ADMIN: {"Authorization": f"Bearer {hass_access_token}"},
        ADMIN_LLAT: {"Authorization": f"Bearer {llat}"},
    }


# Only requester tokens open the requester API; Home Assistant accounts, even admins,
# are not requesters (they decide in the dashboard instead).
REQUESTER_API_ALLOWED = {REQUESTER}


@pytest.mark.parametrize("caller", CALLERS)
async def test_requester_api_matrix(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    headers: dict[str, dict[str, str]],
    caller: str,
) -> None:
    """File, status and key: 2xx for a requester token, 401 for everyone else."""
    client = await hass_client_no_auth()
    filed = await client.post(f"{API}/requests", json=request_body(), headers=headers[caller])
    key = await client.get(f"{API}/key", headers=headers[caller])
    if caller in REQUESTER_API_ALLOWED:
        assert filed.status == 201
        request_id = (await filed.json())["id"]
        status = await client.get(f"{API}/requests/{request_id}", headers=headers[caller])
        assert status.status == 200
        assert key.status == 200
    else:
        assert filed.status == 401
        assert key.status == 401
        status = await client.get(
            f"{API}/requests/01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=headers[caller]
        )
        assert status.status == 401


@pytest.mark.parametrize("caller", CALLERS)
async def test_pickup_matrix(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    headers: dict[str, dict[str, str]],
    caller: str,
) -> None:
    """No header opens a pickup without its token: an unknown token is 404 for all."""
    client = await hass_client_no_auth()
    response = await client.get(f"{API}/pickup/{'A' * 43}", headers=headers[caller])
    assert response.status == 404


@pytest.mark.parametrize("caller", CALLERS)
async def test_clip_view_matrix(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    headers: dict[str, dict[str, str]],
    caller: str,
) -> None:
    """The household clip view needs a Home Assistant login; requester tokens don't count."""
    client = await hass_client_no_auth()
    response = await client.get(f"{API}/clips/01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=headers[caller])
    expected = 404 if caller in (READ_ONLY, ADMIN, ADMIN_LLAT) else 401
    assert response.status == expected


@pytest.mark.parametrize(
    ("who", "may_export"),
    [("automation", True), ("read_only", False), ("admin", True)],
)
async def test_service_matrix(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
    who: str,
    may_export: bool,
) -> None:
    """Anyone may verify the log; only admins and automations may export it."""
    context = {
        "automation": Context(),
        "read_only": Context(user_id=hass_read_only_user.id),
        "admin": Context(user_id=hass_admin_user.id),
    }[who]
    result = await hass.services.async_call(
        DOMAIN, "verify_audit_log", {}, blocking=True, return_response=True, context=context
    )
    assert result == {"valid": True, "first_broken_entry": None}
    if may_export:
        exported = await hass.services.async_call(
            DOMAIN, "export_audit_log", {}, blocking=True, return_response=True, context=context
        )
        assert exported is not None
    else:
        with pytest.raises(Unauthorized):
            await hass.services.async_call(
                DOMAIN, "export_audit_log", {}, blocking=True, return_response=True, context=context
            )


# -- the sharing card's websocket commands -----------------------------------------------

AUTOMATION = "automation context"
WS_COMMANDS = (
    "subscribe",
    "step_up",
    "preview",
    "approve",
    "audit",
    "decline",
    "revoke",
    "requesters",
    "requester/create",
    "requester/revoke",
)
# Who gets through, per command. Decline and revoke are the safe direction, so any user
# who may control the request's switch may; approving and managing requesters need an
# admin. Everything a logged-in user is refused is written to the audit log.
WS_ALLOWED = {
    "subscribe": {READ_ONLY, ADMIN, ADMIN_LLAT},
    "step_up": {READ_ONLY, ADMIN, ADMIN_LLAT},
    # Looking is not releasing: an admin at home may see what would leave.
    "preview": {ADMIN, ADMIN_LLAT},
    # Releasing needs a person, now: a login session and the password (I2).
    "approve": {ADMIN},
    "audit": {ADMIN, ADMIN_LLAT},
    "decline": {ADMIN, ADMIN_LLAT},
    "revoke": {ADMIN, ADMIN_LLAT},
    "requesters": {ADMIN, ADMIN_LLAT},
    "requester/create": {ADMIN, ADMIN_LLAT},
    "requester/revoke": {ADMIN, ADMIN_LLAT},
}


def _bearer(headers: dict[str, dict[str, str]], caller: str) -> str | None:
    value = headers[caller].get("Authorization")
    return None if value is None else value.removeprefix("Bearer ")


@pytest.mark.parametrize("expected_lingering_timers", [True])
@pytest.mark.parametrize("caller", [NO_AUTH, BAD_TOKEN, REQUESTER])
async def test_websocket_refuses_what_home_assistant_did_not_issue(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
    headers: dict[str, dict[str, str]],
    caller: str,
) -> None:
    """No auth, a bad requester token or a requester token never gets past the handshake.

    Home Assistant's websocket accepts only its own access tokens, so for these callers
    no Doorstep command can run at all: the answer is auth_invalid and nothing changes.
    Timers may linger: after Home Assistant closes a socket that failed authentication,
    aiohttp 3.14.5 leaves the server side's heartbeat timer
    (`WebSocketResponse._send_heartbeat`) scheduled, even when the test waits for the close.
    """
    hub = hub_of(sharing_entry)
    client = await hass_client_no_auth()
    request_id = await _file_request(client, headers)
    state_before = hub.gate.get(request_id).state
    async with client.ws_connect("/api/websocket") as ws:
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": _bearer(headers, caller) or ""})
        assert (await ws.receive_json())["type"] == "auth_invalid"
        closing = await ws.receive()
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)
    assert hub.gate.get(request_id).state is state_before


@pytest.mark.parametrize("command", WS_COMMANDS)
@pytest.mark.parametrize("caller", [READ_ONLY, ADMIN, ADMIN_LLAT])
async def test_websocket_matrix(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
    headers: dict[str, dict[str, str]],
    caller: str,
    command: str,
) -> None:
    """Each sharing websocket command against every kind of Home Assistant login.

    Not here, and why:
    - no auth, bad requester token, requester token: they never get past the handshake
      (test_websocket_refuses_what_home_assistant_did_not_issue);
    - automation context: automations, scripts and service calls have no websocket
      connection; the websocket always acts as the logged-in user. Their way in is the
      switch and the services, whose matrix is below.
    """
    hub = hub_of(sharing_entry)
    client = await hass_client_no_auth()
    request_id = await _file_request(client, headers)
    if command == "revoke":
        await approve_seen(
            hub.gate, request_id, Actor(user_id="owner", is_admin=True, verified_by="password")
        )
    target, _token = hub.gate.create_requester("Target", RequesterKind.NEIGHBOUR)
    confirm = (await hub.gate.preview(request_id)).confirm if command == "approve" else ""
    data: dict[str, Any] = {
        "subscribe": {},
        "step_up": {},
        "preview": {"request_id": request_id},
        "approve": {"request_id": request_id, "confirm": confirm, "password": OWNER_PASSWORD},
        "audit": {},
        "decline": {"request_id": request_id},
        "revoke": {"request_id": request_id},
        "requesters": {},
        "requester/create": {"name": "New", "kind": "insurer"},
        "requester/revoke": {"requester_id": target.id},
    }[command]
    audit_before = len(audit_entries(hass))
    state_before = hub.gate.get(request_id).state

    async with client.ws_connect("/api/websocket") as ws:
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": _bearer(headers, caller) or ""})
        auth = await ws.receive_json()
        assert auth["type"] == "auth_ok"
        await ws.send_json({"id": 1, "type": f"doorstep/sharing/{command}", **data})
        answer = await ws.receive_json()

    if caller in WS_ALLOWED[command]:
        assert answer["success"] is True, answer
        expected_state = {"approve": "approved", "decline": "declined", "revoke": "revoked"}
        if command in expected_state:
            assert hub.gate.get(request_id).state.value == expected_state[command]
    else:
        assert answer["success"] is False
        assert answer["error"]["code"] == "unauthorized"
        assert hub.gate.get(request_id).state is state_before
        assert not hub.gate.requester(target.id).revoked
        assert [r.name for r in hub.gate.state.requesters.values()].count("New") == 0
        # The refusal is on record.
        new_entries = audit_entries(hass)[audit_before:]
        assert [entry["kind"] for entry in new_entries] == ["refused"]


async def _file_request(client: Any, headers: dict[str, dict[str, str]]) -> str:
    response = await client.post(f"{API}/requests", json=request_body(), headers=headers[REQUESTER])
    assert response.status == 201
    return str((await response.json())["id"])


# -- the decisions' entities and services ---------------------------------------------

DECISIONS = (
    "switch on",
    "switch toggle",
    "homeassistant.turn_on",
    "switch off",
    "decline button",
    "decline_request service",
)
APPROVING = ("switch on", "switch toggle", "homeassistant.turn_on")
# Nothing outside the card approves (invariant I2): turning the switch on, by any
# service, is refused for everyone and points to the card. Turning it off, Decline and
# decline_request close a request, the safe direction, so automations may; read-only
# users may not change anything.
DECISION_ALLOWED = {
    "switch on": set(),
    "switch toggle": set(),
    "homeassistant.turn_on": set(),
    "switch off": {ADMIN, ADMIN_LLAT, AUTOMATION},
    "decline button": {ADMIN, ADMIN_LLAT, AUTOMATION},
    "decline_request service": {ADMIN, ADMIN_LLAT, AUTOMATION},
}
DECISION_RESULT = {
    "switch on": "approved",
    "switch toggle": "approved",
    "homeassistant.turn_on": "approved",
    "switch off": "revoked",
    "decline button": "declined",
    "decline_request service": "declined",
}


@pytest.mark.parametrize("decision", DECISIONS)
@pytest.mark.parametrize("caller", [*CALLERS, AUTOMATION])
async def test_decision_matrix(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
    headers: dict[str, dict[str, str]],
    caller: str,
    decision: str,
) -> None:
    """The per-request switch, the Decline button and decline_request, through Home
    Assistant's REST API for callers with a header and as an automation's call."""
    assert await async_setup_component(hass, "api", {})
    assert await async_setup_component(hass, "homeassistant", {})
    hub = hub_of(sharing_entry)
    client = await hass_client_no_auth()
    request_id = await _file_request(client, headers)
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    switch = registry.async_get_entity_id("switch", DOMAIN, f"share_request_{request_id}")
    button = registry.async_get_entity_id("button", DOMAIN, f"decline_request_{request_id}")
    if decision == "switch off":
        await approve_seen(
            hub.gate, request_id, Actor(user_id="owner", is_admin=True, verified_by="password")
        )
    domain, service, data = {
        "switch on": ("switch", "turn_on", {"entity_id": switch}),
        "switch toggle": ("switch", "toggle", {"entity_id": switch}),
        "homeassistant.turn_on": ("homeassistant", "turn_on", {"entity_id": switch}),
        "switch off": ("switch", "turn_off", {"entity_id": switch}),
        "decline button": ("button", "press", {"entity_id": button}),
        "decline_request service": (DOMAIN, "decline_request", {"request_id": request_id}),
    }[decision]
    state_before = hub.gate.get(request_id).state
    audit_before = len(audit_entries(hass))

    if caller == AUTOMATION:
        try:
            await hass.services.async_call(domain, service, data, blocking=True, context=Context())
        except ServiceValidationError as err:
            refused_key: str | None = err.translation_key
        else:
            refused_key = None
        allowed = refused_key is None
        if not allowed:
            assert refused_key == "approve_in_card"
    else:
        response = await client.post(
            f"/api/services/{domain}/{service}", json=data, headers=headers[caller]
        )
        allowed = response.status == 200
        if not allowed:
            assert response.status in (400, 401), await response.text()

    assert allowed == (caller in DECISION_ALLOWED[decision]), caller
    state_after = hub.gate.get(request_id).state
    if allowed:
        assert state_after.value == DECISION_RESULT[decision]
    else:
        assert state_after is state_before
    refusals = [entry["kind"] for entry in audit_entries(hass)[audit_before:]]
    if not allowed and (
        (caller in (AUTOMATION, ADMIN, ADMIN_LLAT) and decision in APPROVING)
        or (caller == READ_ONLY and decision == "decline_request service")
    ):
        # Refusals Doorstep sees are on record: every attempt to turn a switch on
        # (approve_in_card) and the read-only user's decline_request (by the service).
        assert refusals == ["refused"], (caller, refusals)
    elif not allowed and caller == READ_ONLY:
        # Known gap, closed by the card: Home Assistant core refuses a read-only user's
        # switch or button call before Doorstep sees it, so it is not in Doorstep's log.
        # The card's websocket commands, which do see it, audit it (matrix above).
        assert refusals == [], refusals


# -- the card's approval: which proofs release ----------------------------------------

PROOFS = {
    "password": ({"password": OWNER_PASSWORD}, None),
    "wrong password": ({"password": "guess"}, "step_up_failed"),
    "empty password": ({"password": ""}, "step_up_failed"),
    "password, totp user, no code": ({"password": OWNER_PASSWORD}, "step_up_code_required"),
    "password, totp user, wrong code": (
        {"password": OWNER_PASSWORD, "code": "000000"},
        "step_up_failed",
    ),
    "password, totp user, code": ({"password": OWNER_PASSWORD, "code": "right"}, None),
}


@pytest.mark.parametrize("proof", list(PROOFS))
async def test_approve_proof_matrix(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    hass_admin_user: MockUser,
    hass_ws_client: WebSocketGenerator,
    headers: dict[str, dict[str, str]],
    proof: str,
) -> None:
    """A normal admin session through the card: only the full proof approves; every
    other answer is a translated refusal, on record, and the request stays pending."""
    if "totp user" in proof:
        await enable_totp(hass, hass_admin_user.id)
    hub = hass.data[DATA_SHARING]
    client = await hass_client_no_auth()
    request_id = await _file_request(client, headers)
    ws = await hass_ws_client(hass)
    preview = await ws_call(ws, "doorstep/sharing/preview", request_id=request_id)
    data, refusal = PROOFS[proof]
    if data.get("code") == "right":
        data = {**data, "code": totp_code(TOTP_SECRET)}
    audit_before = len(audit_entries(hass))
    answer = await ws_call(
        ws,
        "doorstep/sharing/approve",
        request_id=request_id,
        confirm=preview["result"]["confirm"],
        **data,
    )
    new_entries = audit_entries(hass)[audit_before:]
    if refusal is None:
        assert answer["success"] is True, answer
        assert hub.gate.get(request_id).state.value == "approved"
        assert [e["kind"] for e in new_entries] == ["approved"]
    else:
        assert answer["error"]["translation_key"] == refusal
        assert hub.gate.get(request_id).state.value == "pending"
        assert [(e["kind"], e["details"]["reason"]) for e in new_entries] == [("refused", refusal)]

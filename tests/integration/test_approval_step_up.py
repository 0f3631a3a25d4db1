"""The card's approval step-up against Home Assistant's real auth: login sessions, the
``homeassistant`` password provider, the ``totp`` MFA module, the rate limit, the
preview's confirm digest, and the audit command and export."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import patch

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.const import GROUP_ID_ADMIN
from homeassistant.auth.mfa_modules import auth_mfa_module_from_config
from homeassistant.auth.providers.homeassistant import HassAuthProvider
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import CLIENT_ID, MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    MockHAClientWebSocket,
    WebSocketGenerator,
)

from .conftest import (
    API,
    OWNER_PASSWORD,
    TOTP_SECRET,
    approve_in_card,
    audit_entries,
    enable_totp,
    file_request,
    hub_of,
    requester_headers,
    totp_code,
    ws_call,
)


async def _long_lived_token(hass: HomeAssistant, user: MockUser) -> str:
    refresh = await hass.auth.async_create_refresh_token(
        user, client_name="script", token_type="long_lived_access_token"
    )
    return hass.auth.async_create_access_token(refresh)


async def _refusals(hass: HomeAssistant) -> list[str]:
    return [e["details"]["reason"] for e in audit_entries(hass) if e["kind"] == "refused"]


async def _approve(ws: MockHAClientWebSocket, request_id: str, **proof: Any) -> dict[str, Any]:
    preview = await ws_call(ws, "doorstep/sharing/preview", request_id=request_id)
    confirm = preview["result"]["confirm"] if preview["success"] else "0" * 64
    return await ws_call(
        ws, "doorstep/sharing/approve", request_id=request_id, confirm=confirm, **proof
    )


@pytest.fixture
async def totp_user(hass: HomeAssistant, hass_admin_user: MockUser) -> str:
    """The admin, with Home Assistant's TOTP two-factor login set up."""
    await enable_totp(hass, hass_admin_user.id)
    return hass_admin_user.id


async def test_step_up_says_what_the_form_needs(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    hass_admin_user: MockUser,
    hass_read_only_access_token: str,
    person_ws: MockHAClientWebSocket,
) -> None:
    answer = await ws_call(person_ws, "doorstep/sharing/step_up")
    assert answer["result"] == {
        "interactive": True,
        "password": True,
        "totp": False,
        "mfa_unsupported": False,
        "is_admin": True,
    }
    script = await hass_ws_client(hass, await _long_lived_token(hass, hass_admin_user))
    assert (await ws_call(script, "doorstep/sharing/step_up"))["result"]["interactive"] is False
    read_only = await hass_ws_client(hass, hass_read_only_access_token)
    described = (await ws_call(read_only, "doorstep/sharing/step_up"))["result"]
    # The read-only fixture's login has no password stored with the provider.
    assert described == {
        "interactive": True,
        "password": False,
        "totp": False,
        "mfa_unsupported": False,
        "is_admin": False,
    }


async def test_wrong_password_is_refused_then_rate_limited(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    freezer: FrozenDateTimeFactory,
    pending_request: str,
) -> None:
    """Five wrong passwords in five minutes lock approval, even with the right one, until
    the window passes. Each refusal is on record with its reason."""
    request_id = pending_request
    for _ in range(5):
        refused = await _approve(person_ws, request_id, password="wrong")
        assert refused["error"]["translation_key"] == "step_up_failed"
        assert refused["error"]["code"] == "unauthorized"
    locked = await _approve(person_ws, request_id, password=OWNER_PASSWORD)
    assert locked["error"]["translation_key"] == "step_up_rate_limited"
    assert hub_of(sharing_entry).gate.get(request_id).state.value == "pending"
    assert await _refusals(hass) == ["step_up_failed"] * 5 + ["step_up_rate_limited"]

    freezer.tick(timedelta(minutes=5))
    approved = await _approve(person_ws, request_id, password=OWNER_PASSWORD)
    assert approved["success"] is True, approved


async def test_totp_user_needs_the_code(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    totp_user: str,
    person_ws: MockHAClientWebSocket,
    pending_request: str,
) -> None:
    request_id = pending_request
    step_up = await ws_call(person_ws, "doorstep/sharing/step_up")
    assert step_up["result"]["totp"] is True

    no_code = await _approve(person_ws, request_id, password=OWNER_PASSWORD)
    assert no_code["error"]["translation_key"] == "step_up_code_required"
    wrong_code = await _approve(person_ws, request_id, password=OWNER_PASSWORD, code="000000")
    assert wrong_code["error"]["translation_key"] == "step_up_failed"
    right_code_wrong_password = await _approve(
        person_ws, request_id, password="wrong", code=totp_code(TOTP_SECRET)
    )
    assert right_code_wrong_password["error"]["translation_key"] == "step_up_failed"
    assert hub_of(sharing_entry).gate.get(request_id).state.value == "pending"

    approved = await _approve(
        person_ws, request_id, password=OWNER_PASSWORD, code=totp_code(TOTP_SECRET)
    )
    assert approved["success"] is True, approved
    (entry,) = [e for e in audit_entries(hass) if e["kind"] == "approved"]
    assert entry["details"]["verified_by"] == "password+totp"
    assert await _refusals(hass) == [
        "step_up_code_required",
        "step_up_failed",
        "step_up_failed",
    ]


async def _enable_notify_mfa(hass: HomeAssistant, user_id: str) -> None:
    """Turn on Home Assistant's notify MFA module (codes sent by a notify service) for
    ``user_id``, the way the profile's two-factor setup does."""
    module = await auth_mfa_module_from_config(hass, {"type": "notify"})
    hass.auth._mfa_modules[module.id] = module
    await module.async_setup_user(user_id, {"notify_service": "mobile_app_phone"})


async def test_notify_mfa_user_is_refused_not_downgraded(
    hass: HomeAssistant,
    hass_admin_user: MockUser,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    pending_request: str,
) -> None:
    """An admin whose two-factor login sends codes through a notify service: the card
    cannot run that challenge, so the right password alone does not approve. Adding TOTP
    (which the card checks) lets them approve with password and code."""
    await _enable_notify_mfa(hass, hass_admin_user.id)
    step_up = await ws_call(person_ws, "doorstep/sharing/step_up")
    assert step_up["result"]["mfa_unsupported"] is True
    assert step_up["result"]["totp"] is False

    refused = await _approve(person_ws, pending_request, password=OWNER_PASSWORD)
    assert refused["error"]["translation_key"] == "step_up_mfa_unsupported"
    assert hub_of(sharing_entry).gate.get(pending_request).state.value == "pending"
    assert await _refusals(hass) == ["step_up_mfa_unsupported"]
    # Refused before any password check: it does not count towards the lock-out.
    assert not hub_of(sharing_entry).step_up_failures.locked_out(hass_admin_user.id)

    await enable_totp(hass, hass_admin_user.id)
    step_up = await ws_call(person_ws, "doorstep/sharing/step_up")
    assert step_up["result"]["mfa_unsupported"] is False
    approved = await _approve(
        person_ws, pending_request, password=OWNER_PASSWORD, code=totp_code(TOTP_SECRET)
    )
    assert approved["success"] is True, approved
    (entry,) = [e for e in audit_entries(hass) if e["kind"] == "approved"]
    assert entry["details"]["verified_by"] == "password+totp"


async def test_user_without_a_password_is_told_to_set_one(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    sharing_entry: MockConfigEntry,
    local_auth: HassAuthProvider,
    pending_request: str,
) -> None:
    """An admin who logs in without a password (trusted networks) cannot approve yet."""
    admins = await hass.auth.async_get_group(GROUP_ID_ADMIN)
    user = MockUser(name="Tablet owner", groups=[admins]).add_to_hass(hass)
    # A login session with no Home Assistant password credential behind it.
    refresh = await hass.auth.async_create_refresh_token(user, CLIENT_ID)
    ws = await hass_ws_client(hass, hass.auth.async_create_access_token(refresh))
    assert (await ws_call(ws, "doorstep/sharing/step_up"))["result"]["password"] is False
    request_id = pending_request
    refused = await _approve(ws, request_id, password="anything")
    assert refused["error"]["translation_key"] == "step_up_needs_password"
    assert await _refusals(hass) == ["step_up_needs_password"]


async def test_long_lived_token_cannot_approve_even_with_the_password(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    hass_admin_user: MockUser,
    sharing_entry: MockConfigEntry,
    owner_password: str,
    requester_client: TestClient,
    police: dict[str, str],
    pending_request: str,
) -> None:
    """A script holding the owner's token and password is still not a person at a screen."""
    script = await hass_ws_client(hass, await _long_lived_token(hass, hass_admin_user))
    client, headers, request_id = requester_client, police, pending_request
    refused = await _approve(script, request_id, password=owner_password)
    assert refused["error"]["translation_key"] == "approval_needs_person"
    status = await (await client.get(f"{API}/requests/{request_id}", headers=headers)).json()
    assert status == {"id": request_id, "status": "pending"}
    assert await _refusals(hass) == ["approval_needs_person"]


async def test_a_stale_confirm_is_refused(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    pending_request: str,
) -> None:
    """Approving needs the digest of what would leave now, not of something else."""
    request_id = pending_request
    refused = await ws_call(
        person_ws,
        "doorstep/sharing/approve",
        request_id=request_id,
        confirm="f" * 64,
        password=OWNER_PASSWORD,
    )
    assert refused["error"]["translation_key"] == "preview_stale"
    assert refused["error"]["code"] == "not_allowed"
    assert hub_of(sharing_entry).gate.get(request_id).state.value == "pending"
    assert await _refusals(hass) == ["preview_stale"]
    assert (await approve_in_card(person_ws, request_id))["success"] is True


async def test_preview_describes_the_release(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
) -> None:
    client = await hass_client_no_auth()
    request_id = await file_request(
        client,
        requester_headers(sharing_entry),
        delivery={"method": "upload", "url": "https://evidence.example/upload"},
    )
    preview = (await ws_call(person_ws, "doorstep/sharing/preview", request_id=request_id))[
        "result"
    ]
    request = hub_of(sharing_entry).gate.get(request_id)
    assert preview["destination"] == {"method": "upload", "host": "evidence.example"}
    assert preview["expires_at"] == request.wanted_by.isoformat()
    assert (preview["clip_count"], preview["total_bytes"], preview["clips"]) == (0, 0, [])
    assert len(preview["confirm"]) == 64


async def test_subscribe_lists_closed_requests_with_their_story(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    requester_client: TestClient,
    police: dict[str, str],
) -> None:
    client, headers = requester_client, police
    declined = await file_request(client, headers, reference="A")
    await ws_call(person_ws, "doorstep/sharing/decline", request_id=declined)
    assert (await ws_call(person_ws, "doorstep/sharing/subscribe"))["success"] is True
    event = (await person_ws.receive_json())["event"]
    assert event["requests"] == []
    (closed,) = event["closed"]
    assert closed["id"] == declined
    assert closed["outcome"] == "declined"
    assert closed["closed_at"] is not None
    assert [e["event"] for e in closed["history"]] == ["filed", "declined"]


async def test_audit_command_and_export(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_read_only_access_token: str,
    hass_ws_client: WebSocketGenerator,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    requester_client: TestClient,
    pending_request: str,
) -> None:
    client, request_id = requester_client, pending_request
    await approve_in_card(person_ws, request_id)
    trail = (await ws_call(person_ws, "doorstep/sharing/audit"))["result"]
    assert [(e["seq"], e["action"]) for e in trail["entries"]] == [(0, "filed"), (1, "approved")]
    assert trail["entries"][1]["request_id"] == request_id
    assert trail["chain"] == {"ok": True, "entries": 2, "problem": None}

    admin = await hass_client()
    exported = await admin.get("/api/doorstep/v1/audit")
    assert exported.status == 200
    assert exported.content_type == "application/x-ndjson"
    assert exported.headers["Content-Disposition"].startswith("attachment;")
    log = hass.config.path("doorstep", "audit.jsonl")
    assert await exported.read() == await hass.async_add_executor_job(_read_bytes, log)

    read_only = await hass_client(hass_read_only_access_token)
    assert (await read_only.get("/api/doorstep/v1/audit")).status == 403
    assert (await client.get("/api/doorstep/v1/audit")).status == 401
    viewer = await hass_ws_client(hass, hass_read_only_access_token)
    refused = await ws_call(viewer, "doorstep/sharing/audit")
    assert refused["error"]["translation_key"] == "audit_needs_admin"

    # A broken chain is reported, with where it breaks.
    text = await hass.async_add_executor_job(_read_bytes, log)
    await hass.async_add_executor_job(_write_bytes, log, text.replace(b'"filed"', b'"FILED"'))
    chain = (await ws_call(person_ws, "doorstep/sharing/audit"))["result"]["chain"]
    assert chain == {"ok": False, "entries": 3, "problem": "entry_0"}


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


async def test_preview_only_at_home(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    pending_request: str,
) -> None:
    """When the home-network rule says the browser is outside, the preview is refused,
    translated and on record (I3). The rule itself (addresses, proxies, Home Assistant
    Cloud) has its own tests with live view; here it is set at the command's boundary."""
    rule = "custom_components.doorstep.websocket_api.from_home_network"
    with patch(rule, return_value=False):
        refused = await ws_call(person_ws, "doorstep/sharing/preview", request_id=pending_request)
    assert refused["error"]["translation_key"] == "preview_needs_home_network"
    assert refused["error"]["code"] == "unauthorized"
    assert await _refusals(hass) == ["outside_home_network"]
    with patch(rule, return_value=True):
        shown = await ws_call(person_ws, "doorstep/sharing/preview", request_id=pending_request)
    assert shown["success"] is True, shown

"""Who may do what: every Doorstep endpoint and action against every kind of caller."""

from __future__ import annotations

from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import Unauthorized
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.const import DOMAIN
from custom_components.doorstep.sharing import RequesterKind

from .test_sharing import API, _body, _hub

# Callers, as the Authorization header they present.
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
) -> dict[str, dict[str, str]]:
    """The Authorization header of each caller."""
    _requester, token = _hub(sharing_entry).gate.create_requester("Station", RequesterKind.POLICE)
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
    filed = await client.post(f"{API}/requests", json=_body(), headers=headers[caller])
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

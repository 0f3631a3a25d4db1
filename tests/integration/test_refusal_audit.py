"""Every refused approval is on record, a malformed one included, and a flood of
refusals cannot grow the audit log without bound (issue 9: "every refusal is audited")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import MockHAClientWebSocket

from custom_components.doorstep.sharing.refusals import IN_FULL, WINDOW

from .conftest import OWNER_PASSWORD, audit_entries, hub_of, ws_call

# A password the tests send in malformed approvals: it must never reach the log.
SECRET = "hunter2-never-logged"


def _refusals(hass: HomeAssistant) -> list[dict[str, Any]]:
    return [entry for entry in audit_entries(hass) if entry["kind"] == "refused"]


async def _send(ws: MockHAClientWebSocket, **message: Any) -> dict[str, Any]:
    return await ws_call(ws, "doorstep/sharing/approve", **message)


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        pytest.param({"password": SECRET}, ["confirm", "request_id"], id="no-id-no-confirm"),
        pytest.param(
            {"request_id": "PENDING", "password": SECRET}, ["confirm"], id="missing-confirm"
        ),
        pytest.param(
            {"request_id": "PENDING", "confirm": "a" * 64, "password": 1234},
            ["password"],
            id="password-not-a-string",
        ),
        pytest.param(
            {"request_id": 7, "confirm": "a" * 64, "password": SECRET},
            ["request_id"],
            id="id-not-a-string",
        ),
        pytest.param(
            {"request_id": "PENDING", "confirm": "", "password": SECRET, "code": 123456},
            ["code", "confirm"],
            id="empty-confirm-numeric-code",
        ),
        pytest.param(
            {
                "request_id": "PENDING",
                "confirm": "a" * 64,
                "password": SECRET,
                "<script>": SECRET,
            },
            ["other"],
            id="unknown-key",
        ),
    ],
)
async def test_malformed_approval_is_refused_and_audited(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    pending_request: str,
    message: dict[str, Any],
    fields: list[str],
) -> None:
    """Before, Home Assistant rejected these before Doorstep saw them: no audit line."""
    if message.get("request_id") == "PENDING":
        message = {**message, "request_id": pending_request}
    answer = await _send(person_ws, **message)

    assert answer["success"] is False
    assert answer["error"]["code"] == "invalid_format"
    assert answer["error"]["translation_key"] == "invalid_approval"
    (refusal,) = _refusals(hass)
    assert refusal["details"] == {
        "action": "approve",
        "reason": "invalid_approval",
        "fields": fields,
    }
    assert refusal["actor"].startswith("user:")
    # The request is named only when the message named a real one.
    named = message.get("request_id") == pending_request
    assert refusal["request"] == (pending_request if named else None)
    assert hub_of(sharing_entry).gate.get(pending_request).state.value == "pending"
    log = Path(hass.config.path("doorstep", "audit.jsonl")).read_text()
    assert SECRET not in log
    assert "<script>" not in log
    assert await hub_of(sharing_entry).audit.verify() is None


@pytest.mark.parametrize(
    ("request_id", "reason"),
    [("0" * 26, "unknown_request"), ("../../etc/passwd", "invalid_request_id")],
)
async def test_approval_of_no_such_request_is_audited(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    request_id: str,
    reason: str,
) -> None:
    answer = await _send(person_ws, request_id=request_id, confirm="a" * 64, password=SECRET)
    assert answer["success"] is False, answer
    (refusal,) = _refusals(hass)
    assert refusal["request"] is None
    assert refusal["details"] == {"action": "approve", "reason": reason}
    # What the caller typed is not on record (the log's hashes may hold any digits).
    assert request_id not in str(refusal["details"])


async def test_a_flood_of_refusals_is_coalesced(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    pending_request: str,
) -> None:
    """A script hammering approve: the first IN_FULL refusals are written one by one,
    the rest counted; when the window ends (the minute tick), one summary holds the
    count; the chain still verifies; and the person can still approve."""
    tries = 3 * IN_FULL
    for attempt in range(tries):
        # Alternate malformed messages and wrong passwords (the latter lock out at 5).
        if attempt % 2:
            await _send(person_ws, request_id=pending_request, password=SECRET)
        else:
            preview = await ws_call(
                person_ws, "doorstep/sharing/preview", request_id=pending_request
            )
            await _send(
                person_ws,
                request_id=pending_request,
                confirm=preview["result"]["confirm"],
                password="wrong",
            )
    assert len(_refusals(hass)) == IN_FULL

    freezer.tick(WINDOW)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    refusals = _refusals(hass)
    assert len(refusals) == IN_FULL + 1
    summary = refusals[-1]["details"]
    assert summary["reason"] == "coalesced"
    assert summary["count"] == tries - IN_FULL
    assert summary["counts"] == {
        "approve:invalid_approval": tries // 2 - IN_FULL // 2,
        "approve:step_up_rate_limited": tries // 2 - IN_FULL // 2,
    }
    hub = hub_of(sharing_entry)
    assert await hub.audit.verify() is None

    # The lock-out has passed with the window; the person's own approval goes through.
    preview = await ws_call(person_ws, "doorstep/sharing/preview", request_id=pending_request)
    approved = await _send(
        person_ws,
        request_id=pending_request,
        confirm=preview["result"]["confirm"],
        password=OWNER_PASSWORD,
    )
    assert approved["success"] is True, approved


async def test_held_back_refusals_are_written_when_sharing_stops(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    person_ws: MockHAClientWebSocket,
    pending_request: str,
) -> None:
    for _ in range(IN_FULL + 3):
        await _send(person_ws, request_id=pending_request, password=SECRET)
    assert len(_refusals(hass)) == IN_FULL
    assert await hass.config_entries.async_unload(sharing_entry.entry_id)
    await hass.async_block_till_done()
    refusals = _refusals(hass)
    assert len(refusals) == IN_FULL + 1
    assert refusals[-1]["details"]["count"] == 3

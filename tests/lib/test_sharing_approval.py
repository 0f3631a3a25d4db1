"""Who may approve (the pure rule the glue feeds), the proof's rate limit, hashed pickup
tokens and their store migration, and a request's history for the card."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from custom_components.doorstep.sharing import (
    STATE_VERSION,
    Actor,
    Delivery,
    DeliveryMethod,
    FailureLimiter,
    InvalidToken,
    NotReleasable,
    Refusal,
    SessionKind,
    ShareRequest,
    StepUpFacts,
    Verification,
    migrate,
    refusal_before_proof,
    state_from_dict,
    state_to_dict,
    verdict,
)
from custom_components.doorstep.sharing.history import outcome, request_histories
from reference_doorbell.release_check import verify_archive
from tests.approval import approve_seen

from .test_sharing_fixtures import Hub, make_hub, request_fields

ADMIN = Actor("admin-1", is_admin=True, verified_by="password")
PERSON = StepUpFacts(
    session=SessionKind.NORMAL,
    user_id="admin-1",
    is_active=True,
    is_admin=True,
    is_system=False,
    is_read_only=False,
    has_password=True,
    has_totp=False,
    has_other_mfa=False,
    code_given=False,
)


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)


async def read_all(release: Any) -> bytes:
    return b"".join([chunk async for chunk in release])


async def approved_pickup(hub: Hub) -> str:
    request = await hub.gate.file_request(hub.requester_id, request_fields(hub.clock.now))
    await approve_seen(hub.gate, request.id, ADMIN)
    return request.id


# -- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({}, None),
        ({"session": SessionKind.LONG_LIVED}, Refusal.NEEDS_PERSON),
        ({"session": SessionKind.SYSTEM}, Refusal.NEEDS_PERSON),
        ({"session": SessionKind.NONE}, Refusal.NEEDS_PERSON),
        ({"user_id": None}, Refusal.NEEDS_PERSON),
        ({"is_system": True}, Refusal.NEEDS_PERSON),
        ({"is_active": False}, Refusal.NEEDS_PERSON),
        ({"is_admin": False}, Refusal.NEEDS_ADMIN),
        ({"is_read_only": True}, Refusal.NEEDS_ADMIN),
        ({"has_password": False}, Refusal.NEEDS_PASSWORD),
        ({"has_totp": True}, Refusal.CODE_REQUIRED),
        ({"has_totp": True, "code_given": True}, None),
        # Notify (or any other) two-factor login the card cannot check: refused, never
        # approved on the password alone; with TOTP too, the TOTP code is the factor.
        ({"has_other_mfa": True}, Refusal.MFA_UNSUPPORTED),
        ({"has_other_mfa": True, "has_totp": True}, Refusal.CODE_REQUIRED),
        ({"has_other_mfa": True, "has_totp": True, "code_given": True}, None),
        ({"has_other_mfa": True, "has_password": False}, Refusal.NEEDS_PASSWORD),
        # A script's token is refused as such, whatever else its user has.
        ({"session": SessionKind.LONG_LIVED, "has_password": False}, Refusal.NEEDS_PERSON),
        ({"session": SessionKind.LONG_LIVED, "is_admin": False}, Refusal.NEEDS_PERSON),
        # A non-admin is told so before being asked for a password they may lack.
        ({"is_admin": False, "has_password": False}, Refusal.NEEDS_ADMIN),
    ],
)
def test_refusal_before_proof(change: dict[str, Any], refusal: Refusal | None) -> None:
    assert refusal_before_proof(replace(PERSON, **change), locked_out=False) is refusal


def test_lockout_comes_after_who_you_are() -> None:
    """A locked-out person is refused unchecked; a script hears it needs a person."""
    assert refusal_before_proof(PERSON, locked_out=True) is Refusal.RATE_LIMITED
    script = replace(PERSON, session=SessionKind.LONG_LIVED)
    assert refusal_before_proof(script, locked_out=True) is Refusal.NEEDS_PERSON


@pytest.mark.parametrize(
    ("has_totp", "password_ok", "code_ok", "expected"),
    [
        (False, True, False, Verification.PASSWORD),
        (False, False, True, Refusal.FAILED),
        (True, True, True, Verification.PASSWORD_TOTP),
        (True, True, False, Refusal.FAILED),
        (True, False, True, Refusal.FAILED),
        (True, False, False, Refusal.FAILED),
    ],
)
def test_verdict(
    has_totp: bool, password_ok: bool, code_ok: bool, expected: Refusal | Verification
) -> None:
    facts = replace(PERSON, has_totp=has_totp, code_given=has_totp)
    assert verdict(facts, password_ok=password_ok, code_ok=code_ok) == expected


def test_failure_limiter_window() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    limiter = FailureLimiter(max_failures=5, window=timedelta(minutes=5), clock=lambda: now[0])
    for _ in range(4):
        limiter.record_failure("alice")
    assert not limiter.locked_out("alice")
    limiter.record_failure("alice")
    assert limiter.locked_out("alice")
    assert not limiter.locked_out("bob")
    now[0] += timedelta(minutes=4, seconds=59)
    assert limiter.locked_out("alice")
    now[0] += timedelta(seconds=1)
    assert not limiter.locked_out("alice")


# -- pickup tokens at rest ------------------------------------------------------------------


async def test_pickup_token_is_stored_only_as_its_hash(hub: Hub) -> None:
    request_id = await approved_pickup(hub)
    token = hub.gate.pickup_token(request_id)
    assert token is not None
    saved = json.dumps(state_to_dict(hub.gate.state))
    assert token not in saved
    assert hashlib.sha256(token.encode()).hexdigest() in saved
    # The hash itself does not open the link.
    with pytest.raises(InvalidToken):
        await hub.gate.open_pickup(hashlib.sha256(token.encode()).hexdigest()[:43])
    verify_archive(await read_all(await hub.gate.open_pickup(token)), hub.key.public_bytes())


async def test_after_a_restart_the_requester_gets_a_new_token_for_the_same_link(
    hub: Hub,
) -> None:
    request_id = await approved_pickup(hub)
    old = hub.gate.pickup_token(request_id)
    assert old is not None
    await read_all(await hub.gate.open_pickup(old))  # one of three downloads used
    state = state_from_dict(json.loads(json.dumps(state_to_dict(hub.gate.state))))
    gate = type(hub.gate)(
        clips=hub.clips, audit=hub.audit, key=hub.key, clock=hub.clock, state=state
    )
    assert gate.pickup_token(request_id) is None
    # The old token still works until the requester reads its status again...
    await read_all(await gate.open_pickup(old))
    view = gate.requester_view(hub.requester_id, request_id)
    new = view["pickup_token"]
    assert new != old
    assert gate.requester_view(hub.requester_id, request_id)["pickup_token"] == new
    # ...which replaces it; the link's download count carries on (third of three).
    with pytest.raises(InvalidToken):
        await gate.open_pickup(old)
    await read_all(await gate.open_pickup(new))
    with pytest.raises(NotReleasable):
        await gate.open_pickup(new)


async def test_version_1_state_migrates_to_hashed_tokens(hub: Hub) -> None:
    """A store written before hashing (clear tokens, version 1) loads, hashed, and the
    requester's old token still picks up."""
    request_id = await approved_pickup(hub)
    token = hub.gate.pickup_token(request_id)
    assert token is not None
    current = state_to_dict(hub.gate.state)
    old = json.loads(json.dumps(current))
    old["version"] = 1
    for item in old["requests"]:
        if item["pickup"] is not None:
            del item["pickup"]["token_hash"]
            item["pickup"]["token"] = token
    migrated = migrate(1, old)
    assert migrated["version"] == STATE_VERSION == 2
    assert migrated == current
    state = state_from_dict(old)  # loading a version-1 file migrates it too
    gate = type(hub.gate)(
        clips=hub.clips, audit=hub.audit, key=hub.key, clock=hub.clock, state=state
    )
    assert token not in json.dumps(state_to_dict(gate.state))
    verify_archive(await read_all(await gate.open_pickup(token)), hub.key.public_bytes())


# -- history and outcome --------------------------------------------------------------------


async def test_history_and_outcome(hub: Hub) -> None:
    downloaded = await approved_pickup(hub)
    token = hub.gate.pickup_token(downloaded)
    assert token is not None
    await read_all(await hub.gate.open_pickup(token))
    unfetched = await approved_pickup(hub)
    declined = await hub.gate.file_request(hub.requester_id, request_fields(hub.clock.now))
    await hub.gate.decline(declined.id, Actor(None))
    hub.clock.advance(hub.gate.get(unfetched).wanted_by - hub.clock.now)
    await hub.gate.expire_due()

    requests = {r.id: r for r in hub.gate.requests()}
    histories = request_histories(hub.audit.entries_blocking(), requests)
    assert [(e["event"], e["detail"]) for e in histories[downloaded]] == [
        ("filed", None),
        ("approved", "password"),
        ("pickup_created", None),
        ("downloaded", "1/3"),
    ]
    assert [e["event"] for e in histories[unfetched]] == [
        "filed",
        "approved",
        "pickup_created",
        "expired",
    ]
    assert [e["event"] for e in histories[declined.id]] == ["filed", "declined"]
    assert outcome(requests[downloaded]) is None  # fulfilled: still open, revocable
    assert outcome(requests[unfetched]) == "released"
    assert outcome(requests[declined.id]) == "declined"


def test_upload_history_details_are_tokens() -> None:
    """Upload events name the host, and a failure only its HTTP status (or that there was
    no answer), never the log's English error sentence."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    request = ShareRequest(
        id="01JN8S7QG0XX4D34JM8W854D32",
        requester_id="01JN8S7QG0XX4D34JM8W854D33",
        reference="R",
        reason="r",
        window_start=now,
        window_end=now,
        doorbell_ids=None,
        contact="c",
        wanted_by=now,
        delivery=Delivery(DeliveryMethod.UPLOAD, "https://evidence.example/in"),
        filed_at=now,
    )
    at = now.isoformat()
    entries = [
        {"kind": "delivered", "request": request.id, "time": at, "details": details}
        for details in (
            {"via": "upload", "phase": "started"},
            {"via": "upload", "phase": "failed", "error": "server said 503", "status": 503},
            {"via": "upload", "phase": "failed", "error": "connection refused"},
            {"via": "upload", "phase": "done"},
        )
    ]
    history = request_histories(entries, {request.id: request})[request.id]
    assert [(e["event"], e["detail"]) for e in history] == [
        ("upload_started", "evidence.example"),
        ("upload_failed", "http_503"),
        ("upload_failed", "no_response"),
        ("uploaded", "evidence.example"),
    ]


@pytest.mark.parametrize("close", ["decline", "revoke"])
async def test_last_announcement_of_a_close_carries_its_history_step(hub: Hub, close: str) -> None:
    """Whoever listens for changes (the card's list) hears about a close again once its
    audit entry is written, so the history it reads last ends with the closing step."""
    if close == "revoke":
        request_id = await approved_pickup(hub)
    else:
        request_id = (
            await hub.gate.file_request(hub.requester_id, request_fields(hub.clock.now))
        ).id
    last_seen: list[list[str]] = []

    def listener() -> None:
        requests = {r.id: r for r in hub.gate.requests()}
        history = request_histories(hub.audit.entries_blocking(), requests)[request_id]
        last_seen.append([event["event"] for event in history])

    hub.gate.add_listener(listener)
    if close == "revoke":
        await hub.gate.revoke(request_id, ADMIN)
    else:
        await hub.gate.decline(request_id, ADMIN)
    assert last_seen[-1][-1] == ("revoked" if close == "revoke" else "declined")

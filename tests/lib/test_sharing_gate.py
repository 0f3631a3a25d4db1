"""The egress gate: approval rules (I2), release rules (I1), replay, concurrency, restart."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from custom_components.doorstep.sharing import (
    Actor,
    ApprovalRefused,
    AuditWriteError,
    ClipIntegrityError,
    CorruptStateError,
    EgressGate,
    InvalidToken,
    NotReleasable,
    PreviewStale,
    ReleaseStopped,
    RequestClosed,
    RequestState,
    TooManyPending,
    UnknownRequest,
    state_from_dict,
    state_to_dict,
)
from reference_doorbell.release_check import verify_archive
from tests.approval import approve_seen

from .test_sharing_fixtures import Hub, make_hub, request_fields

ADMIN = Actor("admin-1", is_admin=True, verified_by="password")
OTHER_ADMIN = Actor("admin-2", is_admin=True, verified_by="password")
READ_ONLY = Actor("viewer", is_admin=False, is_read_only=True)
READ_ONLY_ADMIN_FLAG = Actor("odd", is_admin=True, is_read_only=True)
PLAIN_USER = Actor("user-1")
AUTOMATION = Actor(None)
AUTOMATION_ADMIN_FLAG = Actor(None, is_admin=True)
SYSTEM = Actor("supervisor", is_admin=True, is_system=True)
# An admin who did not prove who they are just now: the switch, a service, or a script
# holding the admin's long-lived token.
UNVERIFIED_ADMIN = Actor("admin-1", is_admin=True)


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)


def audit_kinds(hub: Hub) -> list[str]:
    return [json.loads(line)["kind"] for line in hub.audit_path.read_bytes().splitlines()]


async def read_all(release: Any) -> bytes:
    return b"".join([chunk async for chunk in release])


def token_of(hub: Hub, request_id: str) -> str:
    """The pickup token the gate issued in this run (only its hash is stored)."""
    token = hub.gate.pickup_token(request_id)
    assert token is not None
    return token


async def approved_token(hub: Hub, request_id: str) -> str:
    await approve_seen(hub.gate, request_id, ADMIN)
    return token_of(hub, request_id)


async def file(hub: Hub, **overrides: Any) -> str:
    request = await hub.gate.file_request(
        hub.requester_id, request_fields(hub.clock.now, **overrides)
    )
    return request.id


async def test_pickup_end_to_end(hub: Hub) -> None:
    request_id = await file(hub)
    assert hub.gate.requester_view(hub.requester_id, request_id) == {
        "id": request_id,
        "status": "pending",
    }
    approved = await approve_seen(hub.gate, request_id, ADMIN)
    assert approved.state is RequestState.APPROVED
    assert len(approved.frozen_clips) == 2
    view = hub.gate.requester_view(hub.requester_id, request_id)
    assert view["status"] == "fulfilled"

    release = await hub.gate.open_pickup(view["pickup_token"])
    data = await read_all(release)
    assert len(data) == release.size
    manifest = verify_archive(data, hub.key.public_bytes())
    assert manifest["request_id"] == request_id
    assert manifest["requester_reference"] == "CASE-2025-0042"
    assert [c["id"] for c in manifest["clips"]] == [c.id for c in approved.frozen_clips]
    # The requester never learns which doorbells exist.
    assert "front" not in data[:4096].decode("latin-1")
    assert audit_kinds(hub) == ["filed", "approved", "downloaded", "delivered"]
    assert hub.gate.get(request_id).state is RequestState.FULFILLED
    assert await hub.audit.verify() is None


@pytest.mark.parametrize(
    ("actor", "reason"),
    [
        (READ_ONLY, "approval_needs_admin"),
        (READ_ONLY_ADMIN_FLAG, "approval_needs_admin"),
        (PLAIN_USER, "approval_needs_admin"),
        (AUTOMATION, "approval_needs_person"),
        (AUTOMATION_ADMIN_FLAG, "approval_needs_person"),
        (SYSTEM, "approval_needs_person"),
        (UNVERIFIED_ADMIN, "approval_needs_person"),
    ],
)
async def test_only_a_person_admin_may_approve(hub: Hub, actor: Actor, reason: str) -> None:
    request_id = await file(hub)
    with pytest.raises(ApprovalRefused, match=reason):
        await approve_seen(hub.gate, request_id, actor)
    assert hub.gate.get(request_id).state is RequestState.PENDING
    entries = hub.audit.entries_blocking()
    assert entries[-1]["kind"] == "refused"
    assert entries[-1]["request"] == request_id
    assert entries[-1]["details"] == {"action": "approve", "reason": reason}
    assert hub.gate.requester_view(hub.requester_id, request_id)["status"] == "pending"


async def test_approval_records_how_the_person_was_verified(hub: Hub) -> None:
    request_id = await file(hub)
    await approve_seen(
        hub.gate, request_id, Actor("admin-1", is_admin=True, verified_by="password+totp")
    )
    approved = hub.audit.entries_blocking()[-1]
    assert approved["kind"] == "approved"
    assert approved["details"]["verified_by"] == "password+totp"


async def test_approval_needs_the_preview_it_was_shown(hub: Hub) -> None:
    """A confirm digest from an older preview is refused (and audited) once a clip changed."""
    request_id = await file(hub)
    preview = await hub.gate.preview(request_id)
    assert [clip.id for clip in preview.clips] == sorted(hub.clips.index)
    assert preview.method.value == "pickup"
    assert preview.expires_at <= hub.gate.get(request_id).wanted_by
    # The same clips give the same digest; it names clips, hashes and destination.
    assert (await hub.gate.preview(request_id)).confirm == preview.confirm
    first = preview.clips[0]
    (hub.clips.root / f"{first.id}.mp4").write_bytes(b"\x00" * first.size)
    with pytest.raises(PreviewStale):
        await hub.gate.approve(request_id, ADMIN, confirm=preview.confirm)
    assert hub.gate.get(request_id).state is RequestState.PENDING
    assert hub.audit.entries_blocking()[-1]["details"] == {
        "action": "approve",
        "reason": "preview_stale",
    }
    fresh = await hub.gate.preview(request_id)
    assert fresh.confirm != preview.confirm
    approved = await hub.gate.approve(request_id, ADMIN, confirm=fresh.confirm)
    assert [(c.id, c.sha256) for c in approved.frozen_clips] == [
        (c.id, c.sha256) for c in fresh.clips
    ]


async def test_preview_of_an_upload_names_the_host(hub: Hub) -> None:
    request_id = await file(hub, delivery={"method": "upload", "url": "https://portal.example/u"})
    preview = await hub.gate.preview(request_id)
    assert preview.upload_host == "portal.example"
    assert preview.expires_at == hub.gate.get(request_id).wanted_by
    await hub.gate.decline(request_id, AUTOMATION)
    with pytest.raises(RequestClosed):
        await hub.gate.preview(request_id)


async def test_refusal_is_logged_even_for_an_approved_request(hub: Hub) -> None:
    request_id = await file(hub)
    await approve_seen(hub.gate, request_id, ADMIN)
    with pytest.raises(ApprovalRefused):
        await approve_seen(hub.gate, request_id, AUTOMATION)
    assert audit_kinds(hub) == ["filed", "approved", "refused"]


async def test_replayed_approval_gives_one_entry_and_one_release(hub: Hub) -> None:
    request_id = await file(hub)
    results = await asyncio.gather(*(approve_seen(hub.gate, request_id, ADMIN) for _ in range(500)))
    for _ in range(500):
        results.append(await approve_seen(hub.gate, request_id, OTHER_ADMIN))
    assert len(results) == 1000
    assert audit_kinds(hub).count("approved") == 1
    # One release: every replay hands back the same link, not a new one.
    tokens = {r.pickup.token_hash for r in results if r.pickup is not None}
    assert len(tokens) == 1
    assert {r.approved_by for r in results} == {"admin-1"}


async def test_decline_and_expiry_read_the_same_to_the_requester(hub: Hub) -> None:
    """Status reads and pickup tries of a declined and an unanswered request, side by
    side at each moment: identical, "pending" until the deadline and "closed" after."""
    declined = await file(hub)
    expired = await file(hub)
    deadline = hub.gate.get(expired).wanted_by
    assert hub.gate.get(declined).wanted_by == deadline
    await hub.gate.decline(declined, AUTOMATION)  # declining needs no person

    def timeline_point(request_id: str) -> dict[str, Any]:
        view = hub.gate.requester_view(hub.requester_id, request_id)
        return {**view, "id": None}

    steps = [timedelta(0), timedelta(hours=1), deadline - hub.clock.now - timedelta(hours=2)]
    for step in steps:
        hub.clock.advance(step)
        await hub.gate.expire_due()
        assert (
            timeline_point(declined)
            == timeline_point(expired)
            == {
                "id": None,
                "status": "pending",
            }
        )
    hub.clock.advance(deadline - hub.clock.now)
    assert await hub.gate.expire_due() == [expired]
    assert timeline_point(declined) == timeline_point(expired) == {"id": None, "status": "closed"}
    for request_id in (declined, expired):
        with pytest.raises(RequestClosed):
            await approve_seen(hub.gate, request_id, ADMIN)


async def test_approval_after_wanted_by_expires_instead(hub: Hub) -> None:
    request_id = await file(hub)
    hub.clock.advance(hub.gate.get(request_id).wanted_by - hub.clock.now)
    with pytest.raises(RequestClosed):
        await approve_seen(hub.gate, request_id, ADMIN)
    assert hub.gate.get(request_id).state is RequestState.EXPIRED
    assert "approved" not in audit_kinds(hub)


async def test_other_requesters_requests_look_nonexistent(hub: Hub) -> None:
    request_id = await file(hub)
    other, _ = hub.gate.create_requester("Neighbour", hub.gate.requester(hub.requester_id).kind)
    with pytest.raises(UnknownRequest):
        hub.gate.requester_view(other.id, request_id)


async def test_authenticate(hub: Hub) -> None:
    assert hub.gate.authenticate(hub.requester_token).id == hub.requester_id
    for bad in ("", "x" * 43, hub.requester_token[:-1], hub.requester_token + "\x00"):
        with pytest.raises(InvalidToken):
            hub.gate.authenticate(bad)
    hub.gate.revoke_requester(hub.requester_id)
    with pytest.raises(InvalidToken):
        hub.gate.authenticate(hub.requester_token)
    with pytest.raises(InvalidToken):
        await file(hub)


async def test_pending_cap(hub: Hub) -> None:
    """200 concurrent filings: no lost or duplicate ids, and the cap holds exactly."""
    results = await asyncio.gather(*(file(hub) for _ in range(200)), return_exceptions=True)
    ids = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, TooManyPending)]
    assert len(ids) == len(set(ids)) == 5
    assert len(refused) == 195
    assert audit_kinds(hub).count("filed") == 5
    # A decline frees no slot before the deadline: the requester would notice.
    await hub.gate.decline(ids[0], ADMIN)
    with pytest.raises(TooManyPending):
        await file(hub)
    # Approving one does (the requester is told it is fulfilled anyway).
    await approve_seen(hub.gate, ids[1], ADMIN)
    await file(hub)


async def test_pickup_link_limits(hub: Hub) -> None:
    request_id = await file(hub)
    token = await approved_token(hub, request_id)
    for _ in range(3):
        await read_all(await hub.gate.open_pickup(token))
    with pytest.raises(NotReleasable, match="used up"):
        await hub.gate.open_pickup(token)
    assert audit_kinds(hub).count("downloaded") == 3


async def test_revoke_stops_a_stream_midway(hub: Hub) -> None:
    request_id = await file(hub)
    token = await approved_token(hub, request_id)
    release = await hub.gate.open_pickup(token)
    chunks = aiter(release)
    await anext(chunks)  # manifest
    await hub.gate.revoke(request_id, AUTOMATION)  # switching off needs no person
    with pytest.raises(ReleaseStopped):
        await anext(chunks)
    with pytest.raises(NotReleasable):
        await hub.gate.open_pickup(token)
    assert hub.gate.requester_view(hub.requester_id, request_id)["status"] == "closed"


async def test_expiry_stops_releases(hub: Hub) -> None:
    request_id = await file(hub)
    request = await approve_seen(hub.gate, request_id, ADMIN)
    assert request.pickup is not None
    release = await hub.gate.open_pickup(token_of(hub, request.id))
    chunks = aiter(release)
    await anext(chunks)
    hub.clock.advance(request.wanted_by - hub.clock.now)
    with pytest.raises(ReleaseStopped, match="expired"):
        await anext(chunks)
    with pytest.raises(NotReleasable):
        await hub.gate.open_pickup(token_of(hub, request.id))
    assert hub.gate.get(request_id).state is RequestState.EXPIRED
    assert hub.gate.held_clip_ids() == frozenset()


async def test_release_refused_when_approval_entry_is_not_on_disk(hub: Hub) -> None:
    request_id = await file(hub)
    token = await approved_token(hub, request_id)
    lines = hub.audit_path.read_bytes().splitlines(keepends=True)
    hub.audit_path.write_bytes(lines[0])  # the approval line is gone
    with pytest.raises(NotReleasable, match="audit log"):
        await hub.gate.open_pickup(token)


def _fail_audit_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make writes of audit lines fail half-way with ENOSPC, like a full disk."""
    real_write = os.write
    calls: list[int] = []

    def write(fd: int, data: Any) -> int:
        if b'"prev":' in bytes(data):
            calls.append(fd)
            real_write(fd, bytes(data)[:7])  # a partial line reaches the file first
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    return calls


async def test_disk_full_during_approval_leaves_it_pending(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = await file(hub)
    before = hub.audit_path.read_bytes()
    calls = _fail_audit_writes(monkeypatch)
    with pytest.raises(AuditWriteError):
        await approve_seen(hub.gate, request_id, ADMIN)
    assert calls
    assert hub.audit_path.read_bytes() == before  # no partial line
    request = hub.gate.get(request_id)
    assert request.state is RequestState.PENDING
    assert request.pickup is None
    monkeypatch.undo()
    await approve_seen(hub.gate, request_id, ADMIN)
    assert await hub.audit.verify() is None


async def test_disk_full_during_download_releases_nothing(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = await file(hub)
    token = await approved_token(hub, request_id)
    before = hub.audit_path.read_bytes()
    _fail_audit_writes(monkeypatch)
    with pytest.raises(AuditWriteError):
        await hub.gate.open_pickup(token)
    assert hub.audit_path.read_bytes() == before
    assert hub.gate.get(request_id).pickup.downloads == 0  # type: ignore[union-attr]


async def test_changed_clip_is_not_sent_whole(hub: Hub) -> None:
    request_id = await file(hub)
    request = await approve_seen(hub.gate, request_id, ADMIN)
    clip = request.frozen_clips[0]
    path = hub.clips.root / f"{clip.id}.mp4"
    path.write_bytes(b"\xff" * clip.size)
    with pytest.raises(ClipIntegrityError):
        await read_all(await hub.gate.open_pickup(token_of(hub, request.id)))  # type: ignore[union-attr]


async def test_upload_release(hub: Hub) -> None:
    request_id = await file(hub, delivery={"method": "upload", "url": "https://portal.example/u"})
    with pytest.raises(NotReleasable):
        await hub.gate.open_release(request_id)  # pending
    approved = await approve_seen(hub.gate, request_id, ADMIN)
    assert approved.pickup is None
    data = await read_all(await hub.gate.open_release(request_id))
    verify_archive(data, hub.key.public_bytes())
    await hub.gate.complete_upload(request_id)
    assert hub.gate.get(request_id).state is RequestState.FULFILLED
    assert audit_kinds(hub) == ["filed", "approved", "delivered", "delivered"]


async def test_legal_hold(hub: Hub) -> None:
    assert hub.gate.held_clip_ids() == frozenset()
    request_id = await file(hub)
    held = hub.gate.held_clip_ids()
    assert held == frozenset(hub.clips.index)
    await hub.gate.decline(request_id, ADMIN)
    assert hub.gate.held_clip_ids() == frozenset()


async def test_unknown_doorbell_is_indistinguishable(hub: Hub) -> None:
    """Naming a doorbell that does not exist is not an error: it just matches nothing."""
    request_id = await file(hub, doorbells=["no-such-bell"])
    request = await approve_seen(hub.gate, request_id, ADMIN)
    assert request.frozen_clips == ()


async def test_restart_keeps_pending_and_approved(hub: Hub, tmp_path: Path) -> None:
    pending = await file(hub)
    approved = await file(hub)
    token = await approved_token(hub, approved)
    saved = json.loads(json.dumps(state_to_dict(hub.gate.state)))

    state = state_from_dict(saved)
    audit = await type(hub.audit).open(hub.audit_path, clock=hub.clock)
    gate = EgressGate(clips=hub.clips, audit=audit, key=hub.key, clock=hub.clock, state=state)
    assert gate.get(pending).state is RequestState.PENDING
    assert gate.authenticate(hub.requester_token).id == hub.requester_id
    data = await read_all(await gate.open_pickup(token))
    verify_archive(data, hub.key.public_bytes())
    assert state_to_dict(state_from_dict(state_to_dict(gate.state))) == state_to_dict(gate.state)
    assert await audit.verify() is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(version=99),
        lambda d: d.pop("requests"),
        lambda d: d["requests"][0].update(state="approved"),  # approved without a record
        lambda d: d["requests"][1].update(approval_audit=None),
        lambda d: d["requests"][1]["pickup"].update(token_hash="../../etc/passwd"),
        lambda d: d["requests"][1]["pickup"].update(downloads=True),
        lambda d: d["requests"][0].update(id="../x"),
        lambda d: d["requests"][0].update(wanted_by="tomorrow"),
        lambda d: d["requests"][1]["frozen_clips"][0].update(sha256="z" * 64),
        lambda d: d["requesters"][0].update(kind="spy"),
        lambda d: d["requests"].append(d["requests"][0]),
    ],
)
async def test_corrupt_state_is_refused(hub: Hub, damage: Any) -> None:
    await file(hub)
    await approve_seen(hub.gate, await file(hub), ADMIN)
    data = json.loads(json.dumps(state_to_dict(hub.gate.state)))
    data["requests"].sort(key=lambda r: r["state"] != "pending")
    damage(data)
    with pytest.raises(CorruptStateError):
        state_from_dict(data)


@pytest.mark.parametrize("data", [None, [], "x", {"version": "1"}, {"version": 1}])
def test_corrupt_state_shapes(data: Any) -> None:
    with pytest.raises(CorruptStateError):
        state_from_dict(data)


@pytest.mark.parametrize("confirm", ["", "0" * 64, "not a digest", "é"])
async def test_approval_without_a_preview_is_refused(hub: Hub, confirm: str) -> None:
    """No caller can skip showing what would leave: a digest that no preview produced
    is refused, audited, and the request stays pending with nothing frozen."""
    request_id = await file(hub)
    with pytest.raises(PreviewStale):
        await hub.gate.approve(request_id, ADMIN, confirm=confirm)
    request = hub.gate.get(request_id)
    assert request.state is RequestState.PENDING
    assert request.frozen_clips == ()
    assert hub.gate.pickup_token(request_id) is None
    assert hub.audit.entries_blocking()[-1]["details"] == {
        "action": "approve",
        "reason": "preview_stale",
    }

"""Invariant I1 under every interleaving hypothesis finds.

Rules: file, approve (person admin, read-only, plain user, automation, system user),
decline, revoke, expire (a settable clock), download (pickup and upload), restart (state
round-trips through the store, the audit log is reopened from disk) and a full disk.

After every step: every release that produced bytes happened while the request was
approved by a person admin, unexpired, unrevoked, with its approval entry on disk, and
the audit chain verifies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import errno
import json
from pathlib import Path
import shutil
import tempfile
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, event, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from custom_components.doorstep.sharing import (
    Actor,
    ApprovalRefused,
    AuditLog,
    AuditWriteError,
    EgressGate,
    InvalidToken,
    NotReleasable,
    RequestClosed,
    RequestState,
    TooManyPending,
    audit as audit_module,
    state_from_dict,
    state_to_dict,
)
from custom_components.doorstep.sharing.tokens import new_token
from reference_doorbell.release_check import verify_archive
from tests.approval import approve_seen

from .test_sharing_fixtures import Hub, make_hub, request_fields

PICK = st.integers(0, 3)
ACTORS = {
    "admin": Actor("admin-a", is_admin=True, verified_by="password"),
    "other_admin": Actor("admin-b", is_admin=True, verified_by="password+totp"),
    "read_only": Actor("viewer", is_read_only=True),
    "read_only_admin_flag": Actor("odd", is_admin=True, is_read_only=True),
    "plain_user": Actor("user"),
    "automation": Actor(None),
    "automation_admin_flag": Actor(None, is_admin=True),
    "system": Actor("supervisor", is_admin=True, is_system=True),
    # A script holding the first admin's long-lived token: that admin's own user, but
    # no login session and no fresh proof, so the glue never marks it verified.
    "script_long_lived_token": Actor("admin-a", is_admin=True),
}
PERSON_ADMINS = {"admin-a", "admin-b"}
# Who may approve: by name, not by the gate's Actor.may_approve (the thing under test).
VERIFIED_PEOPLE = {"admin", "other_admin"}


@dataclass
class Model:
    """What the test believes about one request, kept independently of the gate."""

    delivery: str
    wanted_by: datetime
    state: str = "pending"
    approved_by: str | None = None


@dataclass
class ReleaseRecord:
    request_id: str
    size: int
    facts: dict[str, bool] = field(default_factory=dict)


class SharingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="sharing-sm-"))
        self.loop = asyncio.new_event_loop()
        self.hub: Hub = make_hub(self.tmp)
        self.model: dict[str, Model] = {}
        # Audit writes left to fail with ENOSPC: a disk that fills up, then gets space back.
        self.failing_writes = 0
        self.releases: list[ReleaseRecord] = []
        self.ids: list[str] = []

    def teardown(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------

    def run[T](self, coro: Coroutine[Any, Any, T]) -> T:
        real_write_all = audit_module.write_all
        self.disk_full = False

        def write_all(fd: int, data: bytes) -> None:
            if self.failing_writes > 0:
                self.failing_writes -= 1
                self.disk_full = True
                real_write_all(fd, data[: len(data) // 2])  # a torn line reaches the file
                raise OSError(errno.ENOSPC, "No space left on device")
            real_write_all(fd, data)

        with mock.patch.object(audit_module, "write_all", write_all):
            return self.loop.run_until_complete(coro)

    @property
    def gate(self) -> EgressGate:
        return self.hub.gate

    def audit_entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.hub.audit_path.read_bytes().splitlines()]

    def approval_on_disk(self, request_id: str) -> bool:
        return any(
            e["kind"] == "approved"
            and e["request"] == request_id
            and bool(e["details"]["approved_by"] in PERSON_ADMINS)
            for e in self.audit_entries()
        )

    def expired(self, request_id: str) -> bool:
        return self.hub.clock.now >= self.model[request_id].wanted_by

    def facts(self, request_id: str) -> dict[str, bool]:
        """I1's conditions, each read from a source other than the gate's decision."""
        model = self.model[request_id]
        return {
            "approved_by_person_admin": model.approved_by in PERSON_ADMINS,
            "not_expired": not self.expired(request_id),
            "not_revoked": model.state != "revoked",
            "approval_entry_on_disk": self.approval_on_disk(request_id),
        }

    def pick(self, index: int) -> str:
        """One of the filed requests, or an id the gate has never seen."""
        return self.ids[index % len(self.ids)] if self.ids else "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"

    def sync_expiry(self, request_id: str) -> None:
        """Apply lazily what the gate does on touch: open requests past wanted_by expire."""
        model = self.model[request_id]
        if model.state in ("pending", "approved") and self.expired(request_id):
            model.state = "expired"

    def adopt_expiry(self, request_id: str) -> bool:
        """The gate expired a request on touch; accept it only if the clock agrees."""
        model = self.model[request_id]
        if self.gate.get(request_id).state is RequestState.EXPIRED and model.state != "expired":
            assert model.state in ("pending", "approved")
            assert self.expired(request_id)
            model.state = "expired"
            return True
        return False

    # -- rules -----------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        """Begin with one request of each delivery kind, so every run has something to do."""
        assert self.gate.held_clip_ids() == frozenset()
        self.file("pickup", 2)
        self.file("upload", 2)
        assert len(self.ids) == 2

    @rule(
        delivery=st.sampled_from(["pickup", "upload"]),
        days=st.integers(1, 3),
    )
    def file(self, delivery: str, days: int) -> None:
        now = self.hub.clock.now
        body_delivery: dict[str, str] = {"method": delivery}
        if delivery == "upload":
            body_delivery["url"] = "https://portal.example/upload"
        fields = request_fields(
            now, delivery=body_delivery, wanted_by=(now + timedelta(days=days)).isoformat()
        )
        # A declined request holds its slot until its deadline, as the requester still
        # reads it as pending until then.
        pending = sum(
            1
            for m in self.model.values()
            if m.state == "pending" or (m.state == "declined" and now < m.wanted_by)
        )
        try:
            request = self.run(self.gate.file_request(self.hub.requester_id, fields))
        except TooManyPending:
            assert pending >= 5
            return
        except AuditWriteError:
            assert self.disk_full
            assert len(self.gate.requests()) == len(self.model)
            return
        assert not self.disk_full
        self.model[request.id] = Model(delivery, fields.wanted_by)
        self.ids.append(request.id)

    @rule(pick=PICK)
    def approve_as_admin(self, pick: int) -> None:
        """The common case gets its own rule, so hypothesis reaches releases often."""
        self.approve(pick, "admin")

    @rule(pick=PICK)
    def approve_then_fetch(self, pick: int) -> None:
        """The happy path as one step: swarm testing otherwise rarely lines the two up."""
        self.approve(pick, "admin")
        self.download(pick, use_real_token=True)

    @rule(pick=PICK, who=st.sampled_from(sorted(ACTORS)))
    def approve(self, pick: int, who: str) -> None:
        request_id = self.pick(pick)
        if request_id not in self.model:
            return
        actor = ACTORS[who]
        # The oracle is the test's own list, not the gate's Actor.may_approve.
        allowed = who in VERIFIED_PEOPLE
        model = self.model[request_id]
        before = sum(e["kind"] == "approved" for e in self.audit_entries())
        became_approved = False
        try:
            if allowed:
                # A person approves what the card showed them.
                self.run(approve_seen(self.gate, request_id, actor))
            else:
                # The rest are refused before any digest is looked at; a made-up one
                # must not matter.
                self.run(self.gate.approve(request_id, actor, confirm="0" * 64))
        except ApprovalRefused:
            assert not allowed
            assert not self.disk_full
            assert self.audit_entries()[-1]["kind"] == "refused"
        except AuditWriteError:
            assert self.disk_full
        except RequestClosed:
            assert allowed
        else:
            assert allowed
            if model.state == "pending":
                assert not self.expired(request_id)
                model.state, model.approved_by = "approved", actor.user_id
                became_approved = True
        if allowed:
            self.sync_expiry(request_id)
        after = sum(e["kind"] == "approved" for e in self.audit_entries())
        # Exactly one approval entry per approval, however often it is replayed.
        assert after - before == int(became_approved)
        assert self.gate.get(request_id).state.value == model.state

    @rule(pick=PICK, use_real_token=st.booleans())
    def script_with_long_lived_token(self, pick: int, use_real_token: bool) -> None:
        """The script tries to approve, then to fetch: it must never get a byte out
        unless a person approved (and then only through the requester's link)."""
        request_id = self.pick(pick)
        if request_id not in self.model:
            return
        was_releasable = self.model[request_id].state in ("approved", "fulfilled")
        self.approve(pick, "script_long_lived_token")
        assert self.model[request_id].state in ("approved", "fulfilled") or not was_releasable
        released_before = len(self.releases)
        self.download(pick, use_real_token=use_real_token)
        if not was_releasable:
            assert all(record.size == 0 for record in self.releases[released_before:])

    @rule(pick=PICK, who=st.sampled_from(sorted(ACTORS)))
    def decline(self, pick: int, who: str) -> None:
        request_id = self.pick(pick)
        if request_id not in self.model:
            return
        model = self.model[request_id]
        try:
            self.run(self.gate.decline(request_id, ACTORS[who]))
        except RequestClosed:
            assert model.state not in ("pending", "declined", "expired")
            return
        except AuditWriteError:
            assert self.disk_full
        if model.state == "pending":
            model.state = "declined"  # closing does not hinge on the disk

    @rule(pick=PICK, who=st.sampled_from(sorted(ACTORS)))
    def revoke(self, pick: int, who: str) -> None:
        request_id = self.pick(pick)
        if request_id not in self.model:
            return
        model = self.model[request_id]
        try:
            self.run(self.gate.revoke(request_id, ACTORS[who]))
        except AuditWriteError:
            assert self.disk_full
        if model.state in ("approved", "fulfilled"):
            model.state = "revoked"

    @rule(hours=st.integers(1, 30))
    def advance_clock(self, hours: int) -> None:
        self.hub.clock.advance(timedelta(hours=hours))

    @rule()
    def expire_due(self) -> None:
        try:
            self.run(self.gate.expire_due())
        except AuditWriteError:
            assert self.disk_full
        for request_id in self.model:
            self.sync_expiry(request_id)
        for request_id, model in self.model.items():
            assert self.gate.get(request_id).state.value == model.state

    @rule(pick=PICK, use_real_token=st.booleans())
    def download(self, pick: int, use_real_token: bool) -> None:
        request_id = self.pick(pick)
        if request_id not in self.model:
            return
        model = self.model[request_id]
        facts = self.facts(request_id)
        request = self.gate.get(request_id)
        entries_before = len(self.audit_entries())
        try:
            if model.delivery == "pickup":
                issued = self.gate.pickup_token(request_id) if request.pickup else None
                if issued is None and request.pickup is not None:
                    # After a restart only the hash is left: the requester's status read
                    # issues a new token for the same link.
                    view = self.gate.requester_view(self.hub.requester_id, request_id)
                    issued = view.get("pickup_token")
                token = issued if issued is not None and use_real_token else new_token()
                release = self.run(self.gate.open_pickup(token))
            else:
                release = self.run(self.gate.open_release(request_id))
        except (NotReleasable, InvalidToken, AuditWriteError) as err:
            event(f"refused {model.delivery}: {type(err).__name__}")
            newly_expired = self.adopt_expiry(request_id)
            written = len(self.audit_entries()) - entries_before
            # A refused release writes nothing, except the expiry it may have noticed.
            assert written == int(newly_expired and not self.disk_full)
            return
        # The release's own audit entry is on disk before the first byte.
        last = self.audit_entries()[-1]
        assert last["request"] == request_id
        assert last["kind"] in ("downloaded", "delivered")

        async def drain() -> bytes:
            return b"".join([chunk async for chunk in release])

        data = self.run(drain())
        self.releases.append(ReleaseRecord(request_id, len(data), facts))
        event(f"released {model.delivery}")
        verify_archive(data, self.hub.key.public_bytes())
        if model.delivery == "pickup" and model.state == "approved" and not self.disk_full:
            model.state = "fulfilled"

    @rule(pick=PICK)
    def complete_upload(self, pick: int) -> None:
        request_id = self.pick(pick)
        if request_id not in self.model or self.model[request_id].delivery != "upload":
            return
        model = self.model[request_id]
        try:
            self.run(self.gate.complete_upload(request_id))
        except AuditWriteError:
            assert self.disk_full
            return
        if model.state == "approved":
            model.state = "fulfilled"

    @rule(count=st.integers(1, 2))
    def fill_disk(self, count: int) -> None:
        self.failing_writes = count

    @rule()
    def restart(self) -> None:
        saved = json.loads(json.dumps(state_to_dict(self.gate.state)))
        state = state_from_dict(saved)
        audit = AuditLog.open_blocking(self.hub.audit_path, clock=self.hub.clock)
        self.hub.audit = audit
        self.hub.gate = EgressGate(
            clips=self.hub.clips,
            audit=audit,
            key=self.hub.key,
            clock=self.hub.clock,
            state=state,
        )

    @rule(keep=st.integers(0, 6))
    def restore_old_audit_log(self, keep: int) -> None:
        """Someone puts back an older copy of the log (a backup); then HA restarts.

        Approvals recorded after that copy are no longer on disk, so their requests
        must not release anything, whatever the stored state says.
        """
        lines = self.hub.audit_path.read_bytes().splitlines(keepends=True)
        self.hub.audit_path.write_bytes(b"".join(lines[:keep]))
        self.restart()

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def i1_every_release_was_allowed(self) -> None:
        for record in self.releases:
            if record.size > 0:
                assert all(record.facts.values()), record

    @invariant()
    def every_approval_was_proven(self) -> None:
        """No approval entry without a fresh proof: the script's never gets one."""
        for entry in self.audit_entries():
            if entry["kind"] == "approved":
                assert entry["details"]["verified_by"] in ("password", "password+totp")

    @invariant()
    def audit_chain_holds(self) -> None:
        assert self.hub.audit.verify_blocking() is None

    @invariant()
    def model_agrees(self) -> None:
        for request_id, model in self.model.items():
            request = self.gate.get(request_id)
            assert request.state.value == model.state, (request_id, model)
            if request.state in (RequestState.APPROVED, RequestState.FULFILLED):
                assert request.approved_by in PERSON_ADMINS


SharingMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestSharingMachine = SharingMachine.TestCase

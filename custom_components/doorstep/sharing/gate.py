"""The egress gate: the one code path through which clip bytes leave the hub.

Invariant I1, enforced here and nowhere else: bytes go out only for a request that a
person who is an admin approved (having proved who they are at that moment, I2), that is
not expired and not revoked, and whose approval entry is on disk in the audit log. Each
release first appends its own audit entry, so a download that cannot be logged does not
happen.

Order of approval (and why): freeze the clips and their hashes, append and fsync the
approval, and only then mark the request releasable. A crash between the steps leaves
an unapproved request, never an approved one without its record.

Closing steps (decline, revoke, expire) go the other way: the state changes first and the
audit entry follows, because turning sharing *off* must never wait on a disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
import hashlib
import logging
from typing import Any
from urllib.parse import urlsplit

from custom_components.doorstep.clip_contract import ClipSource, check_id, new_id

from .approval import Refusal
from .archive import (
    CONTENT_TYPE,
    END_OF_ARCHIVE,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    archive_size,
    member_header,
    padding,
)
from .audit import AuditKind, AuditLog
from .exceptions import (
    ApprovalRefused,
    AuditWriteError,
    ClipIntegrityError,
    InvalidToken,
    NotReleasable,
    PreviewStale,
    ReleaseStopped,
    RequestClosed,
    TooManyPending,
    UnknownRequest,
    UnknownRequester,
)
from .manifest import build_manifest, clip_member_name, sign_manifest
from .models import (
    OPEN_STATES,
    RELEASABLE_STATES,
    Actor,
    DeliveryMethod,
    FrozenClip,
    PickupLink,
    Requester,
    RequesterKind,
    RequestState,
    ShareRequest,
)
from .schema import RequestFields
from .signing import HubKey
from .state import SharingState
from .tokens import (
    find_by_secret,
    hash_token,
    is_well_formed_token,
    new_requester_token,
    new_token,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_PICKUP_TTL = timedelta(days=7)
DEFAULT_PICKUP_DOWNLOADS = 3
DEFAULT_MAX_PENDING = 5
CHUNK_SIZE = 256 * 1024
SYSTEM_ACTOR = "system"

type Clock = Callable[[], datetime]
type Listener = Callable[[], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Preview:
    """Exactly what approving now would release, and the digest that pins it.

    ``confirm`` covers the clip ids, their SHA-256 hashes and sizes, and the destination.
    An approval carrying it goes through only if freezing at that moment gives the same
    digest, so a person never approves something other than what they were shown.
    """

    request_id: str
    clips: tuple[FrozenClip, ...]
    method: DeliveryMethod
    upload_host: str | None
    expires_at: datetime
    confirm: str


def preview_digest(clips: tuple[FrozenClip, ...], method: DeliveryMethod, url: str | None) -> str:
    """The ``confirm`` digest of a set of frozen clips and where they would go."""
    digest = hashlib.sha256(b"doorstep-preview-v1\n")
    for clip in clips:
        digest.update(f"{clip.id} {clip.sha256} {clip.size}\n".encode())
    digest.update(f"{method.value} {url or ''}".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Release:
    """An opened release: its audit entry is already on disk. Iterate to get the bytes."""

    request_id: str
    filename: str
    size: int
    chunks: AsyncIterator[bytes]
    content_type: str = CONTENT_TYPE

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.chunks

    async def aclose(self) -> None:
        aclose = getattr(self.chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class EgressGate:
    """Requests, approvals and releases. All methods run on the event loop."""

    def __init__(
        self,
        *,
        clips: ClipSource,
        audit: AuditLog,
        key: HubKey,
        state: SharingState | None = None,
        clock: Clock = _utcnow,
        pickup_ttl: timedelta = DEFAULT_PICKUP_TTL,
        pickup_downloads: int = DEFAULT_PICKUP_DOWNLOADS,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._clips = clips
        self._audit = audit
        self._key = key
        self._state = state if state is not None else SharingState()
        self._clock = clock
        self._pickup_ttl = pickup_ttl
        self._pickup_downloads = pickup_downloads
        self._max_pending = max_pending
        # One lock for every decision, so a check and the change it allows can't interleave
        # with another request's (pending cap, replayed approvals, link counts).
        self._lock = asyncio.Lock()
        self._listeners: list[Listener] = []
        # Pickup links by the SHA-256 of their token (the state keeps only that), and
        # the clear tokens issued in this run, so a requester's status reads show the
        # same link until a restart.
        self._pickup_index: dict[str, str] = {
            r.pickup.token_hash: r.id for r in self._state.requests.values() if r.pickup
        }
        self._pickup_tokens: dict[str, str] = {}

    # -- state and listeners -------------------------------------------------------------

    @property
    def state(self) -> SharingState:
        """The live state, for the store to serialise after a change."""
        return self._state

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` after every change (to persist state and update entities)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                _LOGGER.exception("sharing state listener failed")

    def _put(self, request: ShareRequest) -> ShareRequest:
        old = self._state.requests.get(request.id)
        old_link = old.pickup if old is not None else None
        if old_link is not None and (
            request.pickup is None or request.pickup.token_hash != old_link.token_hash
        ):
            self._pickup_index.pop(old_link.token_hash, None)
        if request.pickup is not None:
            self._pickup_index[request.pickup.token_hash] = request.id
        self._state.requests[request.id] = request
        self._changed()
        return request

    # -- requesters ----------------------------------------------------------------------

    def create_requester(self, name: str, kind: RequesterKind) -> tuple[Requester, str]:
        """Create a requester; the returned token is shown once and never stored."""
        token, token_hash = new_requester_token()
        now = self._clock()
        requester_id = new_id(now)
        while requester_id in self._state.requesters:
            requester_id = new_id(now)
        requester = Requester(requester_id, name, kind, token_hash, now)
        self._state.requesters[requester_id] = requester
        self._changed()
        return requester, token

    def revoke_requester(self, requester_id: str) -> None:
        requester = self._requester(requester_id)
        self._state.requesters[requester_id] = replace(requester, revoked=True)
        self._changed()

    def requester(self, requester_id: str) -> Requester:
        return self._requester(requester_id)

    def _requester(self, requester_id: str) -> Requester:
        check_id(requester_id, "requester id")
        requester = self._state.requesters.get(requester_id)
        if requester is None:
            raise UnknownRequester(requester_id)
        return requester

    def authenticate(self, token: str) -> Requester:
        """The requester holding ``token``; InvalidToken (HTTP 401) otherwise."""
        if not is_well_formed_token(token):
            raise InvalidToken("malformed token")
        # Hash first: stored secrets are hashes, and compare_digest wants equal kinds.
        found = find_by_secret(
            hash_token(token),
            ((r.token_hash, r) for r in self._state.requesters.values()),
        )
        if found is None or found.revoked:
            raise InvalidToken("unknown or revoked token")
        return found

    # -- requests ------------------------------------------------------------------------

    def get(self, request_id: str) -> ShareRequest:
        check_id(request_id, "request id")
        request = self._state.requests.get(request_id)
        if request is None:
            raise UnknownRequest(request_id)
        return request

    def requests(self) -> list[ShareRequest]:
        return sorted(self._state.requests.values(), key=lambda r: r.id)

    def pending(self) -> list[ShareRequest]:
        return [r for r in self.requests() if r.state is RequestState.PENDING]

    def requester_view(self, requester_id: str, request_id: str) -> dict[str, Any]:
        """What ``GET /requests/{id}`` may tell its requester: status, and the pickup token.

        Someone else's request reads as unknown, exactly like one that does not exist.
        A declined request reads ``pending`` until its deadline (see ``requester_status``).
        """
        request = self.get(request_id)
        if request.requester_id != requester_id:
            raise UnknownRequest(request_id)
        now = self._clock()
        view: dict[str, Any] = {"id": request.id, "status": request.requester_status_at(now)}
        link = request.pickup
        if link is not None and view["status"] == "fulfilled" and link.usable(now):
            view["pickup_token"] = self._pickup_token_for(request)
            view["pickup_expires_at"] = link.expires_at.isoformat()
        return view

    def pickup_token(self, request_id: str) -> str | None:
        """The clear pickup token issued in this run for ``request_id``, if any."""
        return self._pickup_tokens.get(request_id)

    def _pickup_token_for(self, request: ShareRequest) -> str:
        """This run's clear token for the request's link; a fresh one after a restart.

        Only hashes are stored, so after a restart the old token cannot be shown again.
        The link (expiry, downloads so far) stays; only its token changes, and the old
        token stops working. Runs without an await, so no release interleaves with it.
        """
        token = self._pickup_tokens.get(request.id)
        if token is not None:
            return token
        assert request.pickup is not None
        token = new_token()
        self._pickup_tokens[request.id] = token
        self._put(replace(request, pickup=replace(request.pickup, token_hash=hash_token(token))))
        return token

    async def file_request(self, requester_id: str, fields: RequestFields) -> ShareRequest:
        """Store a validated request as pending, with its matching clips held."""
        async with self._lock:
            requester = self._requester(requester_id)
            if requester.revoked:
                raise InvalidToken("requester revoked")
            # Counted as the requester sees them: a declined request still "pending" to
            # them holds its slot, or a freed slot would give the decline away.
            now = self._clock()
            open_count = sum(
                1
                for r in self._state.requests.values()
                if r.requester_id == requester_id and r.requester_status_at(now) == "pending"
            )
            if open_count >= self._max_pending:
                raise TooManyPending(requester_id)
            matches = await asyncio.to_thread(
                self._clips.clips_in_window,
                fields.window_start,
                fields.window_end,
                fields.doorbell_ids,
            )
            now = self._clock()
            request_id = new_id(now)
            while request_id in self._state.requests:
                request_id = new_id(now)
            request = ShareRequest(
                id=request_id,
                requester_id=requester_id,
                reference=fields.reference,
                reason=fields.reason,
                window_start=fields.window_start,
                window_end=fields.window_end,
                doorbell_ids=fields.doorbell_ids,
                contact=fields.contact,
                wanted_by=fields.wanted_by,
                delivery=fields.delivery,
                filed_at=now,
                held_clip_ids=tuple(sorted(clip.id for clip in matches)),
            )
            await self._audit.append(
                AuditKind.FILED,
                request_id,
                f"requester:{requester_id}",
                {
                    "reference": fields.reference,
                    "delivery": fields.delivery.method.value,
                    "window": [fields.window_start.isoformat(), fields.window_end.isoformat()],
                    "wanted_by": fields.wanted_by.isoformat(),
                    "matching_clips": len(matches),
                },
            )
            return self._put(request)

    # -- decisions -----------------------------------------------------------------------

    async def preview(self, request_id: str) -> Preview:
        """What approving ``request_id`` now would release: the clips hashed now, where
        they would go, until when, and the digest an approval must bring back."""
        async with self._lock:
            request = self.get(request_id)
            await self._expire_if_due(request)
            request = self.get(request_id)
            if request.state is not RequestState.PENDING:
                raise RequestClosed(request_id, request.state.value)
            frozen = await asyncio.to_thread(self._freeze, request)
            return self._preview(request, frozen, self._clock())

    def _preview(
        self, request: ShareRequest, frozen: tuple[FrozenClip, ...], now: datetime
    ) -> Preview:
        method = request.delivery.method
        url = request.delivery.upload_url
        expires_at = (
            min(now + self._pickup_ttl, request.wanted_by)
            if method is DeliveryMethod.PICKUP
            else request.wanted_by
        )
        return Preview(
            request_id=request.id,
            clips=frozen,
            method=method,
            upload_host=urlsplit(url).hostname if url is not None else None,
            expires_at=expires_at,
            confirm=preview_digest(frozen, method, url),
        )

    async def approve(self, request_id: str, actor: Actor, *, confirm: str) -> ShareRequest:
        """Approve for a person who is an admin and proved it now; refuse (and log) the rest.

        ``confirm`` is the digest from :meth:`preview`: the approval stands only if the
        clips frozen now, and where they go, are exactly what the person was shown, so no
        route can approve without first showing what would leave. Idempotent: approving an
        approved request changes nothing and logs nothing.
        """
        async with self._lock:
            request = self.get(request_id)
            if not actor.may_approve:
                await self._refuse(request_id, actor, _refusal_reason(actor))
            await self._expire_if_due(request)
            request = self.get(request_id)
            if request.state in RELEASABLE_STATES:
                return request
            if request.state is not RequestState.PENDING:
                raise RequestClosed(request_id, request.state.value)
            frozen = await asyncio.to_thread(self._freeze, request)
            now = self._clock()
            if self._preview(request, frozen, now).confirm != confirm:
                await self._refuse(request_id, actor, Refusal.PREVIEW_STALE)
            ref = await self._audit.append(
                AuditKind.APPROVED,
                request_id,
                actor.label,
                {
                    "approved_by": actor.user_id,
                    "verified_by": actor.verified_by,
                    "clips": [{"id": c.id, "sha256": c.sha256, "size": c.size} for c in frozen],
                },
            )
            # Only now, with the approval durable, does the request become releasable.
            pickup = None
            if request.delivery.method is DeliveryMethod.PICKUP:
                token = new_token()
                self._pickup_tokens[request_id] = token
                pickup = PickupLink(
                    token_hash=hash_token(token),
                    expires_at=min(now + self._pickup_ttl, request.wanted_by),
                    max_downloads=self._pickup_downloads,
                )
            return self._put(
                replace(
                    request,
                    state=RequestState.APPROVED,
                    approved_by=actor.user_id,
                    approved_at=now,
                    frozen_clips=frozen,
                    approval_audit=ref,
                    pickup=pickup,
                )
            )

    async def _refuse(self, request_id: str, actor: Actor, reason: Refusal) -> None:
        """Put a refused approval on record, then raise it."""
        await self._audit.append(
            AuditKind.REFUSED,
            request_id,
            actor.label,
            {"action": "approve", "reason": reason.value},
        )
        if reason is Refusal.PREVIEW_STALE:
            raise PreviewStale(request_id)
        raise ApprovalRefused(reason.value)

    def _freeze(self, request: ShareRequest) -> tuple[FrozenClip, ...]:
        """Hash every clip in the window now; these exact bytes are what may go out."""
        frozen = []
        infos = self._clips.clips_in_window(
            request.window_start, request.window_end, request.doorbell_ids
        )
        for info in sorted(infos, key=lambda c: c.id):
            check_id(info.id, "clip id")
            digest = hashlib.sha256()
            size = 0
            try:
                with self._clips.open_clip(info.id) as handle:
                    while chunk := handle.read(CHUNK_SIZE):
                        digest.update(chunk)
                        size += len(chunk)
            except FileNotFoundError:
                # Deleted between listing and hashing: it can't be shared, so it isn't.
                continue
            frozen.append(FrozenClip(info.id, digest.hexdigest(), size, info.start, info.end))
        return tuple(frozen)

    async def decline(self, request_id: str, actor: Actor) -> ShareRequest:
        """Close a pending request. Anyone may decline: it is the safe direction."""
        async with self._lock:
            request = self.get(request_id)
            if request.state in (RequestState.DECLINED, RequestState.EXPIRED):
                return request
            if request.state is not RequestState.PENDING:
                raise RequestClosed(request_id, request.state.value)
            return await self._close(
                request, RequestState.DECLINED, AuditKind.DECLINED, actor.label
            )

    async def revoke(self, request_id: str, actor: Actor) -> ShareRequest:
        """Turn an approval off: no further bytes, the pickup link dies. Anyone may."""
        async with self._lock:
            request = self.get(request_id)
            if request.state not in RELEASABLE_STATES:
                return request  # switching off what is already off
            return await self._close(request, RequestState.REVOKED, AuditKind.REVOKED, actor.label)

    async def withdraw(self, request_id: str, by: str) -> ShareRequest:
        """Close a pending request its asker no longer wants (a feed entry withdrawn, or
        the household unsubscribed). Approved requests are the household's decision and
        stay as they are. ``by`` names the cause in the audit log."""
        async with self._lock:
            request = self.get(request_id)
            if request.state is not RequestState.PENDING:
                return request
            return await self._close(request, RequestState.EXPIRED, AuditKind.EXPIRED, by)

    async def expire_due(self) -> list[str]:
        """Expire every open request past its wanted-by time; returns their ids."""
        async with self._lock:
            expired = []
            audit_failure: AuditWriteError | None = None
            for request in list(self._state.requests.values()):
                try:
                    if await self._expire_if_due(request):
                        expired.append(request.id)
                except AuditWriteError as err:
                    # The request is closed all the same (see _close); carry on, so one
                    # failed write does not leave the other due requests open.
                    expired.append(request.id)
                    audit_failure = audit_failure or err
            if audit_failure is not None:
                raise audit_failure
            return expired

    async def _expire_if_due(self, request: ShareRequest) -> bool:
        if request.state not in OPEN_STATES or self._clock() < request.wanted_by:
            return False
        await self._close(request, RequestState.EXPIRED, AuditKind.EXPIRED, SYSTEM_ACTOR)
        return True

    async def _close(
        self, request: ShareRequest, state: RequestState, kind: AuditKind, actor: str
    ) -> ShareRequest:
        pickup = request.pickup
        closed = self._put(
            replace(
                request,
                state=state,
                closed_at=self._clock(),
                pickup=replace(pickup, revoked=True) if pickup is not None else None,
            )
        )
        try:
            await self._audit.append(kind, request.id, actor, {"from": request.state.value})
        except AuditWriteError:
            # The request stays closed: closing must not hinge on the disk. The caller
            # still hears about the failure so the householder gets a repair issue.
            _LOGGER.exception("request %s closed, but its audit entry failed", request.id)
            raise
        # The close was announced before its audit entry existed (closing must not wait
        # for the disk); announce again so listeners see the history's closing step.
        self._changed()
        return closed

    # -- legal hold ----------------------------------------------------------------------

    def held_clip_ids(self) -> frozenset[str]:
        """Clips retention must keep: those of open requests and of live pickup links."""
        now = self._clock()
        held: set[str] = set()
        for request in self._state.requests.values():
            if request.state is RequestState.PENDING:
                held.update(request.held_clip_ids)
            elif request.state is RequestState.APPROVED or (
                request.state is RequestState.FULFILLED
                and request.pickup is not None
                and request.pickup.usable(now)
            ):
                held.update(clip.id for clip in request.frozen_clips)
        return frozenset(held)

    # -- releases ------------------------------------------------------------------------

    def release_problem(self, request: ShareRequest) -> str | None:
        """Why ``request`` may not release bytes right now, or None (disk check aside)."""
        if request.state not in RELEASABLE_STATES:
            return f"request is {request.state.value}"
        if self._clock() >= request.wanted_by:
            return "request expired"
        if request.approved_by is None or request.approval_audit is None:
            return "request has no recorded approval"
        return None

    async def open_pickup(self, token: str) -> Release:
        """Open the release behind a pickup link, after logging the download."""
        if not is_well_formed_token(token):
            raise InvalidToken("malformed pickup token")
        async with self._lock:
            # A dict lookup on the token's hash: the hash, not the token, is what is
            # stored, and knowing a hash is no help in guessing a token.
            token_hash = hash_token(token)
            request_id = self._pickup_index.get(token_hash)
            request = self._state.requests.get(request_id) if request_id is not None else None
            if request is None or request.pickup is None or request.pickup.token_hash != token_hash:
                raise InvalidToken("unknown pickup token")
            await self._check_releasable(request)
            request = self.get(request.id)
            link = request.pickup
            if link is None or not link.usable(self._clock()):
                raise NotReleasable("pickup link expired, used up or revoked")
            await self._audit.append(
                AuditKind.DOWNLOADED,
                request.id,
                "pickup",
                {"download": link.downloads + 1, "of": link.max_downloads},
            )
            # Read again: a status read may have issued a new token during the write.
            request = self.get(request.id)
            link = request.pickup
            assert link is not None
            request = self._put(
                replace(request, pickup=replace(link, downloads=link.downloads + 1))
            )
            return self._release(request, pickup_token=token)

    async def open_release(self, request_id: str) -> Release:
        """Open the release of an upload-delivery request, for the uploader to send."""
        async with self._lock:
            request = self.get(request_id)
            if request.delivery.method is not DeliveryMethod.UPLOAD:
                raise NotReleasable("request is delivered by pickup link")
            await self._check_releasable(request)
            await self._audit.append(
                AuditKind.DELIVERED,
                request.id,
                SYSTEM_ACTOR,
                {"via": "upload", "phase": "started"},
            )
            return self._release(request, pickup_token=None)

    async def complete_upload(self, request_id: str) -> ShareRequest:
        """Record that the requester's server accepted the whole upload."""
        async with self._lock:
            request = self.get(request_id)
            if request.state is not RequestState.APPROVED:
                return request
            await self._audit.append(
                AuditKind.DELIVERED, request.id, SYSTEM_ACTOR, {"via": "upload", "phase": "done"}
            )
            return self._put(replace(request, state=RequestState.FULFILLED))

    async def record_upload_failure(
        self, request_id: str, *, attempt: int, error: str, status: int | None, final: bool
    ) -> None:
        """Log a failed upload attempt (the attempt's start is already logged).

        A ``delivered`` entry with phase ``failed``: no new entry kind, so logs written
        now still verify with older readers. Losing this entry loses only bookkeeping,
        never a release, so a write failure is logged here rather than raised.
        """
        details: dict[str, Any] = {
            "via": "upload",
            "phase": "failed",
            "attempt": attempt,
            "error": error,
            "final": final,
        }
        if status is not None:
            details["status"] = status
        try:
            await self._audit.append(AuditKind.DELIVERED, request_id, SYSTEM_ACTOR, details)
        except AuditWriteError:
            _LOGGER.exception("upload of %s failed, and so did its audit entry", request_id)

    async def _check_releasable(self, request: ShareRequest) -> None:
        await self._expire_if_due(request)
        request = self.get(request.id)
        problem = self.release_problem(request)
        if problem is not None:
            raise NotReleasable(problem)
        assert request.approval_audit is not None
        if not await self._audit.contains(request.approval_audit):
            raise NotReleasable("approval entry is not in the audit log on disk")

    def _still_releasable(self, request_id: str, pickup_token: str | None) -> None:
        request = self._state.requests.get(request_id)
        problem = "request vanished" if request is None else self.release_problem(request)
        if problem is None and pickup_token is not None:
            assert request is not None
            if request.pickup is None or request.pickup.revoked:
                problem = "pickup link revoked"
        if problem is not None:
            raise ReleaseStopped(problem)

    def _release(self, request: ShareRequest, pickup_token: str | None) -> Release:
        assert request.approved_at is not None
        manifest = build_manifest(request, request.frozen_clips, self._key.key_id)
        signature = sign_manifest(manifest, self._key)
        size = archive_size(
            [len(manifest), len(signature), *(clip.size for clip in request.frozen_clips)]
        )
        chunks = self._stream(request, manifest, signature, pickup_token)
        return Release(request.id, f"doorstep-{request.id}.tar", size, chunks)

    async def _stream(
        self,
        request: ShareRequest,
        manifest: bytes,
        signature: bytes,
        pickup_token: str | None,
    ) -> AsyncIterator[bytes]:
        mtime = request.approved_at or request.filed_at

        def check() -> None:
            self._still_releasable(request.id, pickup_token)

        check()
        yield member_header(MANIFEST_NAME, len(manifest), mtime) + manifest + padding(len(manifest))
        check()
        yield (
            member_header(SIGNATURE_NAME, len(signature), mtime)
            + signature
            + padding(len(signature))
        )
        for clip in request.frozen_clips:
            check()
            try:
                handle = await asyncio.to_thread(self._clips.open_clip, clip.id)
            except FileNotFoundError as err:
                raise ClipIntegrityError(f"clip {clip.id} is gone") from err
            try:
                yield member_header(clip_member_name(clip.id), clip.size, mtime)
                digest = hashlib.sha256()
                sent = 0
                while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
                    sent += len(chunk)
                    if sent > clip.size:
                        raise ClipIntegrityError(f"clip {clip.id} grew since approval")
                    digest.update(chunk)
                    check()
                    yield chunk
                if sent != clip.size or digest.hexdigest() != clip.sha256:
                    raise ClipIntegrityError(f"clip {clip.id} changed since approval")
            finally:
                await asyncio.to_thread(handle.close)
            yield padding(clip.size)
        check()
        yield END_OF_ARCHIVE
        await self._finish_pickup(request.id, pickup_token)

    async def _finish_pickup(self, request_id: str, pickup_token: str | None) -> None:
        if pickup_token is None:
            return
        async with self._lock:
            request = self._state.requests.get(request_id)
            if request is None or request.state is not RequestState.APPROVED:
                return
            try:
                await self._audit.append(
                    AuditKind.DELIVERED, request_id, "pickup", {"via": "pickup", "phase": "done"}
                )
            except AuditWriteError:
                # The download itself was logged before its first byte; only the
                # bookkeeping step is lost, so the requester's stream is not failed.
                _LOGGER.exception("request %s delivered, but its audit entry failed", request_id)
                return
            self._put(replace(request, state=RequestState.FULFILLED))


def _refusal_reason(actor: Actor) -> Refusal:
    """Why ``actor`` may not approve, in the same terms the card's step-up uses."""
    if actor.user_id is None or actor.is_system:
        return Refusal.NEEDS_PERSON
    if not actor.is_admin or actor.is_read_only:
        return Refusal.NEEDS_ADMIN
    # An admin without a fresh proof: the switch, a service, or a script's token.
    return Refusal.NEEDS_PERSON

"""Home Assistant glue for the sharing gate: storage, who is acting, and change fan-out.

The gate itself (``sharing/``) decides everything about releases. This module only
gives it its files and state, turns a service call's context into an ``Actor``, and
tells entities and the owner when requests change.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
import logging
from pathlib import Path
from typing import Any

from homeassistant.auth.models import User
from homeassistant.auth.permissions.const import POLICY_CONTROL
from homeassistant.components import persistent_notification
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import (
    DOMAIN,
    EVENT_SHARE_REQUESTED,
    ISSUE_SHARING_STATE_CORRUPT,
    SHARING_STORE_KEY,
    SHARING_STORE_VERSION,
    SIGNAL_SHARING_CHANGED,
    STORAGE_DIR,
)
from .errors import translated_error
from .media.clips import ClipStore
from .sharing import (
    STATE_VERSION,
    Actor,
    AuditKind,
    AuditLog,
    AuditWriteError,
    CorruptStateError,
    EgressGate,
    FailureLimiter,
    HubKey,
    RefusalThrottle,
    Requester,
    RequesterKind,
    RequestState,
    ShareRequest,
    SharingError,
    UploadStatus,
    migrate,
    state_from_dict,
    state_to_dict,
)

_LOGGER = logging.getLogger(__name__)

DATA_SHARING: HassKey[SharingHub] = HassKey(f"{DOMAIN}_sharing")

# Requests still waiting for, or acting on, the householder's decision.
OPEN_STATES = frozenset({RequestState.PENDING, RequestState.APPROVED, RequestState.FULFILLED})


type SharingConfigEntry = ConfigEntry[SharingHub]


class _SharingStore(Store[dict[str, Any]]):
    """HA storage whose migrations are the sharing room's own.

    Home Assistant's Store writes the migrated data back as soon as it has loaded it, so
    clear pickup tokens from version 1 do not wait on disk for the next change.
    """

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: dict[str, Any]
    ) -> dict[str, Any]:
        return migrate(old_major_version, old_data)


@dataclass
class SharingHub:
    """The one gate of this Home Assistant, with its storage and listeners."""

    hass: HomeAssistant
    gate: EgressGate
    store: Store[dict[str, Any]]
    clips: ClipStore
    key: HubKey
    audit: AuditLog
    # Where each upload delivery stands (this run only; the audit log has the history).
    upload_status: dict[str, UploadStatus] = field(default_factory=dict)
    upload_errors: dict[str, str] = field(default_factory=dict)
    # Wrong passwords and codes per user, for the approval step-up's rate limit.
    step_up_failures: FailureLimiter = field(
        default_factory=lambda: FailureLimiter(clock=dt_util.utcnow)
    )
    # Refusals written in full per actor before they are only counted (sharing.refusals).
    refusals: RefusalThrottle = field(default_factory=lambda: RefusalThrottle(clock=dt_util.utcnow))
    _notified: set[str] = field(default_factory=set)
    # Requests whose "footage request" notification is showing, to dismiss once closed.
    _notices: set[str] = field(default_factory=set)
    _listeners: list[Callable[[], None]] = field(default_factory=list)

    def public_key_info(self) -> dict[str, str]:
        """What a requester needs to verify the hub's signatures."""
        return {
            "key_id": self.key.key_id,
            "public_key": b64encode(self.key.public_bytes()).decode(),
        }

    @callback
    def add_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` whenever requests change; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def async_entities_changed(self) -> None:
        """Refresh request entities and open sharing cards (also after upload progress)."""
        for listener in list(self._listeners):
            listener()
        async_dispatcher_send(self.hass, SIGNAL_SHARING_CHANGED)

    def local_requester(self, name: str, kind: RequesterKind) -> Requester:
        """The requester behind local service calls with this name, made on first use.

        It has no usable token (the one created is thrown away): it can only ask
        through the service, which only the household's own automations can call.
        """
        for requester in self.gate.state.requesters.values():
            if requester.name == name and requester.kind is kind and not requester.revoked:
                return requester
        requester, _token = self.gate.create_requester(name, kind)
        return requester

    def describe_clips(self, clip_ids: tuple[str, ...]) -> list[dict[str, Any]]:
        """Start, duration and size of held clips, from the clip store's in-memory index."""
        described = []
        for info in self.clips.known_clips(clip_ids):
            described.append(
                {
                    "id": info.id,
                    "doorbell_id": info.doorbell_id,
                    "start": info.start.isoformat(),
                    "duration_s": round((info.end - info.start).total_seconds(), 1),
                    "size_bytes": info.size,
                }
            )
        return described

    def open_requests(self) -> list[ShareRequest]:
        """Requests that have a switch: pending, or approved and not yet closed."""
        return [r for r in self.gate.requests() if r.state in OPEN_STATES]

    @callback
    def _gate_changed(self) -> None:
        # The audit log is the record of decisions; this copy lets pending requests,
        # holds and links survive a restart.
        self.store.async_delay_save(lambda: state_to_dict(self.gate.state), 0.2)
        for request in self.gate.requests():
            if request.state is RequestState.PENDING and request.id not in self._notified:
                self._notified.add(request.id)
                self._announce(request)
        for request_id in list(self._notices):
            noticed = self.gate.state.requests.get(request_id)
            if noticed is None or noticed.state is not RequestState.PENDING:
                self._notices.discard(request_id)
                persistent_notification.async_dismiss(self.hass, _notice_id(request_id))
        self.async_entities_changed()

    async def async_expire_due(self, _now: datetime | None = None) -> None:
        """Close every request past its wanted-by time (at start, then every minute).

        Releases check the time themselves; this makes the switch, the count, the card
        and the legal hold follow, and writes the expiry to the audit log.
        """
        try:
            await self.gate.expire_due()
        except AuditWriteError:
            # The requests are closed all the same; the entry is what is missing.
            _LOGGER.exception("expired requests closed, but not all were written to the audit log")
        await self.async_write_refusal_summaries()

    async def async_write_refusal_summaries(self, *, flush: bool = False) -> None:
        """Write the counts of refusals held back in windows that have ended (every
        window with ``flush``, when sharing stops); kept for later if the log fails."""
        summaries = self.refusals.due(flush=flush)
        for index, summary in enumerate(summaries):
            try:
                await self.audit.append(
                    AuditKind.REFUSED, summary.request_id, summary.actor, summary.details()
                )
            except AuditWriteError:
                _LOGGER.exception("could not record %s held-back refusals", summary.total)
                self.refusals.restore(summaries[index:])
                return

    def _announce(self, request: ShareRequest) -> None:
        requester = self.gate.requester(request.requester_id)
        self.hass.bus.async_fire(
            EVENT_SHARE_REQUESTED,
            {
                "request_id": request.id,
                "requester": requester.name,
                "kind": requester.kind.value,
                "reference": request.reference,
            },
        )
        persistent_notification.async_create(
            self.hass,
            f"{requester.name} ({request.reference}) asks for doorbell footage: "
            f"{request.reason}\n\nNothing is shared unless an administrator turns on its "
            "switch, in the Doorstep sharing card or on the Doorstep sharing device.",
            title="Footage request",
            notification_id=_notice_id(request.id),
        )
        self._notices.add(request.id)


def _notice_id(request_id: str) -> str:
    return f"{DOMAIN}_request_{request_id}"


async def async_create_sharing_hub(
    hass: HomeAssistant, clips_store: ClipStore
) -> SharingHub | None:
    """Open the audit log, the hub key and the stored state; None (and a repair) if corrupt."""
    root = Path(hass.config.path(STORAGE_DIR))
    store = _SharingStore(hass, SHARING_STORE_VERSION, SHARING_STORE_KEY, minor_version=1)
    try:
        raw = await store.async_load()
        state = state_from_dict(raw) if raw is not None else None
    except CorruptStateError as err:
        # Refusing to start releases nothing; the owner decides what to do with the file.
        _LOGGER.error("The stored sharing state is corrupt (%s); sharing is off", err)
        ir.async_create_issue(
            hass,
            DOMAIN,
            ISSUE_SHARING_STATE_CORRUPT,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_SHARING_STATE_CORRUPT,
            translation_placeholders={"path": hass.config.path(".storage", SHARING_STORE_KEY)},
        )
        return None
    ir.async_delete_issue(hass, DOMAIN, ISSUE_SHARING_STATE_CORRUPT)

    def _open_key() -> HubKey:
        root.mkdir(parents=True, exist_ok=True)
        return HubKey.load_or_create(root / "hub_key.pem")

    key = await hass.async_add_executor_job(_open_key)
    clips = clips_store
    audit = await AuditLog.open(root / "audit.jsonl")
    gate = EgressGate(clips=clips, audit=audit, key=key, state=state)
    hub = SharingHub(hass=hass, gate=gate, store=store, clips=clips, key=key, audit=audit)
    # Requests already pending before a restart were announced then.
    hub._notified.update(r.id for r in gate.requests())
    gate.add_listener(hub._gate_changed)
    _LOGGER.debug("Sharing gate ready (state version %s)", STATE_VERSION)
    return hub


async def async_actor_from_context(
    hass: HomeAssistant, context: Context | None, entity_id: str | None = None
) -> Actor:
    """Who is acting: a person (and what they may do), or an automation without one."""
    if context is None or context.user_id is None:
        return Actor(user_id=None)
    user = await hass.auth.async_get_user(context.user_id)
    if user is None:
        return Actor(user_id=context.user_id)
    return actor_for_user(user, entity_id)


def request_switch_id(hass: HomeAssistant, request_id: str) -> str | None:
    """The entity id of a request's switch, while it has one."""
    return er.async_get(hass).async_get_entity_id("switch", DOMAIN, f"share_request_{request_id}")


async def async_audit_refusal(
    hub: SharingHub,
    request_id: str | None,
    actor: Actor,
    action: str,
    reason: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """Put a refusal the gate did not see on record; if even that fails, it still stands.

    Past the throttle's cap for this actor and request, the refusal is only counted, and written
    later as part of one summary entry (``sharing.refusals``). ``extra`` adds details
    that hold no secret and nothing the caller typed (the names of rejected fields).
    """
    await hub.async_write_refusal_summaries()
    # Only a request the gate knows gets a bucket of its own; made-up ids share one.
    known = request_id if request_id in hub.gate.state.requests else None
    if not hub.refusals.admit(actor.label, action, reason, known):
        return
    try:
        await hub.audit.append(
            AuditKind.REFUSED,
            request_id,
            actor.label,
            {"action": action, "reason": reason, **(extra or {})},
        )
    except AuditWriteError:
        # Nothing was allowed, so nothing depends on this entry: refuse all the same.
        _LOGGER.exception("could not record a refused %s by %s", action, actor.label)


def actor_for_user(user: User, entity_id: str | None = None) -> Actor:
    """The actor for a known user; read-only means unable to control ``entity_id``."""
    if not user.is_active:
        return Actor(user_id=user.id)
    read_only = entity_id is not None and not user.permissions.check_entity(
        entity_id, POLICY_CONTROL
    )
    return Actor(
        user_id=user.id,
        is_admin=user.is_admin,
        is_system=user.system_generated,
        is_read_only=read_only,
    )


async def async_approve(hub: SharingHub, request_id: str, actor: Actor, *, confirm: str) -> None:
    """Approve through the gate for a person the card's step-up verified; errors for people.

    The gate audits every refusal before raising it (a missing proof, a stale preview),
    so a refused approval is on record whichever way it arrived.
    """
    try:
        await hub.gate.approve(request_id, actor, confirm=confirm)
    except SharingError as err:
        raise translated_error(err) from err

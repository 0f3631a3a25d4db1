"""Websocket commands behind the sharing card: the live list of requests (open and
closed, with their history), what approving would release, the household's decisions,
the audit trail, and requester management for admins.

Thin glue: every decision goes through the gate, with the connection's user as the
actor. Approval is the one decision only this module can make, and only for a person in
an interactive login session who proves who they are at that moment (password, plus
TOTP when set up) after seeing the preview (invariant I2; the rule is
``sharing.approval``). Unlike the switch, whose read-only refusals Home Assistant core
stops before Doorstep sees them, these commands see every refusal, so every refusal lands
in the audit log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import wraps
import logging
from typing import Any

from homeassistant.auth.models import User
from homeassistant.components.http.auth import async_sign_path
from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.const import (
    ERR_HOME_ASSISTANT_ERROR,
    ERR_INVALID_FORMAT,
    ERR_NOT_ALLOWED,
    ERR_NOT_FOUND,
    ERR_UNAUTHORIZED,
    AsyncWebSocketCommandHandler,
)
from homeassistant.components.websocket_api.decorators import async_response, websocket_command
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
import probatio

from .const import DOMAIN, SIGNAL_SHARING_CHANGED
from .errors import translated_error
from .media.thumbnail import ThumbnailError, clip_has_audio
from .media_source import CLIP_URL
from .sharing import (
    Actor,
    DeliveryMethod,
    InvalidId,
    Preview,
    Refusal,
    RequestClosed,
    Requester,
    RequesterKind,
    SessionKind,
    ShareRequest,
    SharingError,
    UnknownRequest,
    UnknownRequester,
    Verification,
    check_id,
    refusal_before_proof,
    verdict,
)
from .sharing.history import CLOSED_STATES, outcome, request_histories
from .sharing_hub import (
    DATA_SHARING,
    SharingHub,
    actor_for_user,
    async_approve,
    async_audit_refusal,
    request_switch_id,
)
from .sharing_views import THUMBNAIL_URL, from_home_network
from .step_up import (
    async_check_proof,
    async_step_up_facts,
    has_password,
    has_totp,
    other_mfa_modules,
    session_kind,
)

_LOGGER = logging.getLogger(__name__)

# Longest requester name the card accepts; the options flow shows it in a drop-down.
MAX_REQUESTER_NAME = 100
# Closed requests the card lists, newest first.
MAX_CLOSED = 50
# How long a preview's thumbnail and video links work: long enough to look, not to keep.
PREVIEW_URL_LIFETIME = timedelta(minutes=10)
# Longest password or code the approve command takes (bcrypt reads 72 bytes at most).
MAX_SECRET = 1024

# Each refusal's websocket error code; the translation key is the refusal itself.
_REFUSAL_CODES = {
    Refusal.PREVIEW_STALE: ERR_NOT_ALLOWED,
}

type Connection = ActiveConnection
type Handler = Callable[[HomeAssistant, Connection, dict[str, Any], SharingHub], Awaitable[None]]


@callback
def async_register_commands(hass: HomeAssistant) -> None:
    """Register the sharing card's commands (once, when the integration loads)."""
    for command in (
        ws_subscribe,
        ws_step_up,
        ws_preview,
        ws_approve,
        ws_audit,
        ws_revoke,
        ws_decline,
        ws_requesters,
        ws_create_requester,
        ws_revoke_requester,
    ):
        async_register_command(hass, command)


# -- what the card shows --------------------------------------------------------------


def _entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str | None:
    return er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)


def describe_request(
    hass: HomeAssistant,
    hub: SharingHub,
    request: ShareRequest,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One request as the card lists it, with the entities that stand for it, how it
    ended (if it has) and its history from the audit log."""
    requester = hub.gate.requester(request.requester_id)
    return {
        "id": request.id,
        "requester": {"name": requester.name, "kind": requester.kind.value},
        "reference": request.reference,
        "reason": request.reason,
        "contact": request.contact,
        "window": {
            "start": request.window_start.isoformat(),
            "end": request.window_end.isoformat(),
        },
        "wanted_by": request.wanted_by.isoformat(),
        "filed_at": request.filed_at.isoformat(),
        "delivery": request.delivery.method.value,
        "state": request.state.value,
        "clips": hub.describe_clips(request.held_clip_ids),
        "switch_entity_id": request_switch_id(hass, request.id),
        "decline_entity_id": _entity_id(hass, "button", f"decline_request_{request.id}"),
        "outcome": outcome(request),
        "closed_at": request.closed_at.isoformat() if request.closed_at is not None else None,
        "history": history if history is not None else [],
    }


async def async_describe_all(hass: HomeAssistant, hub: SharingHub) -> dict[str, Any]:
    """The subscribe event: open requests, and the newest closed ones, with histories."""
    entries = await hass.async_add_executor_job(hub.audit.entries_blocking)
    open_requests = hub.open_requests()
    closed = sorted(
        (r for r in hub.gate.requests() if r.state in CLOSED_STATES),
        key=lambda r: (r.closed_at or r.filed_at, r.id),
        reverse=True,
    )[:MAX_CLOSED]
    shown = {r.id: r for r in (*open_requests, *closed)}
    histories = request_histories(entries, shown)
    return {
        "available": True,
        "requests": [describe_request(hass, hub, r, histories[r.id]) for r in open_requests],
        "closed": [describe_request(hass, hub, r, histories[r.id]) for r in closed],
    }


def describe_requester(requester: Requester) -> dict[str, Any]:
    """A requester as admins see it: never its token, which is kept only as a hash."""
    return {
        "id": requester.id,
        "name": requester.name,
        "kind": requester.kind.value,
        "created_at": requester.created_at.isoformat(),
        "revoked": requester.revoked,
    }


# -- errors ---------------------------------------------------------------------------


def _send_translated(
    connection: Connection,
    msg_id: int,
    code: str,
    translation_key: str,
    placeholders: dict[str, str] | None = None,
) -> None:
    err = HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=translation_key,
        translation_placeholders=placeholders,
    )
    connection.send_error(
        msg_id,
        code,
        str(err),
        translation_key=translation_key,
        translation_domain=DOMAIN,
        translation_placeholders=placeholders,
    )


def _send_ha_error(connection: Connection, msg_id: int, code: str, err: HomeAssistantError) -> None:
    connection.send_error(
        msg_id,
        code,
        str(err),
        translation_key=err.translation_key,
        translation_domain=err.translation_domain,
        translation_placeholders=err.translation_placeholders,
    )


def _with_hub(handler: Handler) -> AsyncWebSocketCommandHandler:
    """Run ``handler`` with the sharing hub, or answer that sharing is not running."""

    @wraps(handler)
    async def run(hass: HomeAssistant, connection: Connection, msg: dict[str, Any]) -> None:
        hub = hass.data.get(DATA_SHARING)
        if hub is None:
            _send_translated(connection, msg["id"], ERR_NOT_FOUND, "sharing_unavailable")
            return
        await handler(hass, connection, msg, hub)

    return run


def _checked_request(
    hass: HomeAssistant, connection: Connection, msg: dict[str, Any], hub: SharingHub
) -> ShareRequest | None:
    """The request named in ``msg``, or None after answering why it can't be used."""
    request_id = msg["request_id"]
    try:
        return hub.gate.get(check_id(request_id, "request id"))
    except InvalidId:
        _send_translated(
            connection,
            msg["id"],
            ERR_INVALID_FORMAT,
            "invalid_request_id",
            {"request_id": request_id[:40]},
        )
    except UnknownRequest:
        _send_translated(
            connection,
            msg["id"],
            ERR_NOT_FOUND,
            "unknown_request",
            {"request_id": request_id},
        )
    return None


def _actor(hass: HomeAssistant, user: User, request_id: str) -> Actor:
    # Read-only is judged against the request's switch, as Home Assistant would judge
    # the same person flipping it.
    return actor_for_user(user, request_switch_id(hass, request_id))


# -- the list -------------------------------------------------------------------------


@websocket_command({probatio.Required("type"): "doorstep/sharing/subscribe"})
@callback
def ws_subscribe(hass: HomeAssistant, connection: Connection, msg: dict[str, Any]) -> None:
    """Open requests now, then again whenever one changes, its entities come or go, or
    sharing stops or starts (a reload makes a new gate; the card follows it)."""
    msg_id = msg["id"]
    # One sender at a time, newest state last: a change while the log is being read
    # marks the list stale, and the running sender goes round once more.
    stale = asyncio.Event()
    sender: asyncio.Task[None] | None = None

    async def send_latest() -> None:
        while stale.is_set():
            stale.clear()
            hub = hass.data.get(DATA_SHARING)
            if hub is None:
                event: dict[str, Any] = {"available": False, "requests": [], "closed": []}
            else:
                event = await async_describe_all(hass, hub)
            if msg_id in connection.subscriptions:
                connection.send_event(msg_id, event)

    @callback
    def send() -> None:
        nonlocal sender
        stale.set()
        if sender is None or sender.done():
            sender = hass.async_create_background_task(
                send_latest(), f"{DOMAIN} sharing subscription {msg_id}"
            )

    @callback
    def entity_changed(event: Event[er.EventEntityRegistryUpdatedData]) -> None:
        # Request entities are registered a moment after the request changes; resend so
        # the card learns their ids.
        if event.data["entity_id"].startswith(("switch.", "button.")):
            send()

    remove_dispatcher = async_dispatcher_connect(hass, SIGNAL_SHARING_CHANGED, send)
    remove_registry_listener = hass.bus.async_listen(
        er.EVENT_ENTITY_REGISTRY_UPDATED, entity_changed
    )

    @callback
    def unsubscribe() -> None:
        remove_dispatcher()
        remove_registry_listener()
        if sender is not None:
            sender.cancel()

    connection.subscriptions[msg_id] = unsubscribe
    connection.send_result(msg_id)
    send()


# -- decisions ------------------------------------------------------------------------

REQUEST_ID: dict[str | probatio.Marker, Any] = {probatio.Required("request_id"): str}


@websocket_command({probatio.Required("type"): "doorstep/sharing/step_up"})
@async_response
async def ws_step_up(hass: HomeAssistant, connection: Connection, msg: dict[str, Any]) -> None:
    """What the card's confirm form must ask for: is this a login session, has the person
    a password, and a TOTP code to give. ``mfa_unsupported`` is true when the person's
    only two-factor login is one the card cannot check (notify codes, say): they cannot
    approve until they add TOTP, and the card says so."""
    user = connection.user
    totp = await has_totp(hass, user)
    connection.send_result(
        msg["id"],
        {
            "interactive": session_kind(hass, connection.refresh_token_id) is SessionKind.NORMAL,
            "password": await has_password(hass, user),
            "totp": totp,
            "mfa_unsupported": not totp and bool(await other_mfa_modules(hass, user)),
            "is_admin": user.is_admin,
        },
    )


def _describe_preview(
    hass: HomeAssistant,
    connection: Connection,
    hub: SharingHub,
    preview: Preview,
    audio: dict[str, bool],
) -> dict[str, Any]:
    """The preview as the card shows it, with short-lived signed links to each clip."""
    doorbells = {
        info.id: info.doorbell_id
        for info in hub.clips.known_clips([clip.id for clip in preview.clips])
    }

    def signed(path: str) -> str:
        return async_sign_path(
            hass, path, PREVIEW_URL_LIFETIME, refresh_token_id=connection.refresh_token_id
        )

    clips = [
        {
            "id": clip.id,
            "doorbell": doorbells.get(clip.id),
            "start": clip.start.isoformat(),
            "duration_s": round((clip.end - clip.start).total_seconds(), 1),
            "size_bytes": clip.size,
            "has_audio": audio.get(clip.id, False),
            "thumbnail_url": signed(THUMBNAIL_URL.format(clip_id=clip.id)),
            "video_url": signed(CLIP_URL.format(clip_id=clip.id)),
        }
        for clip in preview.clips
    ]
    destination: dict[str, Any] = {"method": preview.method.value}
    if preview.method is DeliveryMethod.UPLOAD:
        destination["host"] = preview.upload_host
    return {
        "request_id": preview.request_id,
        "confirm": preview.confirm,
        "clip_count": len(clips),
        "total_duration_s": round(
            sum((clip.end - clip.start).total_seconds() for clip in preview.clips), 1
        ),
        "total_bytes": sum(clip.size for clip in preview.clips),
        "has_audio": any(audio.get(clip.id, False) for clip in preview.clips),
        "destination": destination,
        "expires_at": preview.expires_at.isoformat(),
        "clips": clips,
    }


def _audio_flags(hub: SharingHub, clip_ids: list[str]) -> dict[str, bool]:
    """Which clips carry sound (blocking: opens each file)."""
    flags = {}
    for clip_id in clip_ids:
        try:
            flags[clip_id] = clip_has_audio(hub.clips.clip_path(clip_id))
        except FileNotFoundError, ThumbnailError:
            flags[clip_id] = False
    return flags


@websocket_command({probatio.Required("type"): "doorstep/sharing/preview", **REQUEST_ID})
@async_response
@_with_hub
async def ws_preview(
    hass: HomeAssistant, connection: Connection, msg: dict[str, Any], hub: SharingHub
) -> None:
    """Exactly what approving now would release, for an admin on the home network."""
    if (request := _checked_request(hass, connection, msg, hub)) is None:
        return
    actor = _actor(hass, connection.user, request.id)
    if not actor.is_person_admin:
        await async_audit_refusal(hub, request.id, actor, "preview", Refusal.NEEDS_ADMIN.value)
        _send_translated(connection, msg["id"], ERR_UNAUTHORIZED, Refusal.NEEDS_ADMIN.value)
        return
    if not from_home_network(hass):
        await async_audit_refusal(hub, request.id, actor, "preview", "outside_home_network")
        _send_translated(connection, msg["id"], ERR_UNAUTHORIZED, "preview_needs_home_network")
        return
    try:
        preview = await hub.gate.preview(request.id)
    except RequestClosed:
        _send_translated(connection, msg["id"], ERR_NOT_ALLOWED, "request_closed")
        return
    except SharingError as err:
        _send_ha_error(connection, msg["id"], ERR_HOME_ASSISTANT_ERROR, translated_error(err))
        return
    audio = await hass.async_add_executor_job(
        _audio_flags, hub, [clip.id for clip in preview.clips]
    )
    connection.send_result(msg["id"], _describe_preview(hass, connection, hub, preview, audio))


async def _refuse_approval(
    connection: Connection,
    msg: dict[str, Any],
    hub: SharingHub,
    request_id: str,
    actor: Actor,
    refusal: Refusal,
) -> None:
    """Put a refused approval on record with its reason, and tell the person why."""
    await async_audit_refusal(hub, request_id, actor, "approve", refusal.value)
    _send_translated(
        connection, msg["id"], _REFUSAL_CODES.get(refusal, ERR_UNAUTHORIZED), refusal.value
    )


# What an approval must carry. Checked inside the handler rather than by Home Assistant
# before it, so a malformed approval is audited like any other refused one.
APPROVE_FIELDS: dict[str | probatio.Marker, Any] = {
    **REQUEST_ID,
    probatio.Required("confirm"): probatio.All(str, probatio.Length(min=1, max=128)),
    probatio.Required("password"): probatio.All(str, probatio.Length(max=MAX_SECRET)),
    probatio.Optional("code"): probatio.Any(
        None, probatio.All(str, probatio.Length(max=MAX_SECRET))
    ),
}
_APPROVE_SCHEMA = probatio.Schema(
    {probatio.Required("id"): int, probatio.Required("type"): str, **APPROVE_FIELDS}
)
_APPROVE_FIELD_NAMES = frozenset(str(key) for key in APPROVE_FIELDS)


def _rejected_fields(err: probatio.Invalid) -> list[str]:
    """The approval fields a malformed message got wrong, by name; anything else it sent
    (an unknown key, whatever its name) is "other", so no caller's text reaches the log."""
    errors = err.errors if isinstance(err, probatio.MultipleInvalid) else [err]
    names = {
        str(error.path[0]) if error.path and str(error.path[0]) in _APPROVE_FIELD_NAMES else "other"
        for error in errors
    }
    return sorted(names)


def _well_formed_id(value: Any) -> str | None:
    """The request id as sent, when it is one; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return check_id(value, "request id")
    except InvalidId:
        return None


async def _refuse_malformed_approval(
    connection: Connection, msg: dict[str, Any], hub: SharingHub, fields: list[str]
) -> None:
    """An approval that could not even be read: audited (who, when, which fields, none
    of their values), then answered like Home Assistant's own format errors."""
    request_id = _well_formed_id(msg.get("request_id"))
    if request_id is not None and request_id not in hub.gate.state.requests:
        request_id = None
    actor = actor_for_user(connection.user)
    await async_audit_refusal(
        hub, request_id, actor, "approve", "invalid_approval", {"fields": fields}
    )
    _send_translated(
        connection,
        msg["id"],
        ERR_INVALID_FORMAT,
        "invalid_approval",
        {"fields": ", ".join(fields)},
    )


@websocket_command(
    probatio.All(
        probatio.Schema(
            {probatio.Required("type"): "doorstep/sharing/approve"}, extra=probatio.ALLOW_EXTRA
        )
    )
)
@async_response
@_with_hub
async def ws_approve(
    hass: HomeAssistant, connection: Connection, msg: dict[str, Any], hub: SharingHub
) -> None:
    """Approve as the connection's user, after the step-up: a person in a login session,
    an admin, with their password (and TOTP code) checked now, approving the preview
    they saw (``confirm``). Every refusal is audited with its reason, a malformed or
    unknown request included."""
    try:
        msg = _APPROVE_SCHEMA(msg)
    except probatio.Invalid as err:
        await _refuse_malformed_approval(connection, msg, hub, _rejected_fields(err))
        return
    if msg["request_id"] not in hub.gate.state.requests:
        # On record before the answer goes out, like every refusal here.
        reason = "unknown_request" if _well_formed_id(msg["request_id"]) else "invalid_request_id"
        await async_audit_refusal(hub, None, actor_for_user(connection.user), "approve", reason)
    if (request := _checked_request(hass, connection, msg, hub)) is None:
        return
    user = connection.user
    actor = _actor(hass, user, request.id)
    code = (msg.get("code") or "").strip() or None
    facts = await async_step_up_facts(
        hass,
        user,
        connection.refresh_token_id,
        code_given=code is not None,
        is_read_only=actor.is_read_only,
    )
    refusal = refusal_before_proof(facts, locked_out=hub.step_up_failures.locked_out(user.id))
    if refusal is not None:
        await _refuse_approval(connection, msg, hub, request.id, actor, refusal)
        return
    password_ok, code_ok = await async_check_proof(hass, user, msg["password"], code)
    result = verdict(facts, password_ok=password_ok, code_ok=code_ok)
    if not isinstance(result, Verification):
        hub.step_up_failures.record_failure(user.id)
        await _refuse_approval(connection, msg, hub, request.id, actor, result)
        return
    verified = Actor(
        user_id=actor.user_id,
        is_admin=actor.is_admin,
        is_system=actor.is_system,
        is_read_only=actor.is_read_only,
        verified_by=result.value,
    )
    try:
        await async_approve(hub, request.id, verified, confirm=msg["confirm"])
    except HomeAssistantError as err:
        key = err.translation_key or ""
        if not key.startswith(("approval_", "step_up_")) and key != "preview_stale":
            # The gate records its own refusals; a closed request or a changed clip
            # stops the approval too, and goes on record here.
            await async_audit_refusal(hub, request.id, verified, "approve", key or "error")
        if key in ("request_closed", "preview_stale"):
            error_code = ERR_NOT_ALLOWED
        elif key.startswith(("approval_", "step_up_")):
            error_code = ERR_UNAUTHORIZED
        else:
            error_code = ERR_HOME_ASSISTANT_ERROR
        _send_ha_error(connection, msg["id"], error_code, err)
        return
    approved = hub.gate.get(request.id)
    entries = await hass.async_add_executor_job(hub.audit.entries_blocking)
    history = request_histories(entries, {approved.id: approved})[approved.id]
    connection.send_result(msg["id"], describe_request(hass, hub, approved, history))


async def _close_as_user(
    hass: HomeAssistant,
    connection: Connection,
    msg: dict[str, Any],
    hub: SharingHub,
    action: str,
) -> None:
    """Decline or revoke: the safe direction, so any user who may control the switch."""
    if (request := _checked_request(hass, connection, msg, hub)) is None:
        return
    actor = _actor(hass, connection.user, request.id)
    if actor.is_read_only:
        await async_audit_refusal(hub, request.id, actor, action, "read-only user")
        _send_translated(connection, msg["id"], ERR_UNAUTHORIZED, "read_only_user")
        return
    try:
        if action == "decline":
            closed = await hub.gate.decline(request.id, actor)
        else:
            closed = await hub.gate.revoke(request.id, actor)
    except RequestClosed:
        _send_translated(connection, msg["id"], ERR_NOT_ALLOWED, "request_closed")
        return
    except SharingError as err:
        _send_ha_error(connection, msg["id"], ERR_HOME_ASSISTANT_ERROR, translated_error(err))
        return
    connection.send_result(msg["id"], {"id": closed.id, "state": closed.state.value})


@websocket_command({probatio.Required("type"): "doorstep/sharing/revoke", **REQUEST_ID})
@async_response
@_with_hub
async def ws_revoke(
    hass: HomeAssistant, connection: Connection, msg: dict[str, Any], hub: SharingHub
) -> None:
    """Turn an approval off: the pickup link dies and nothing further leaves."""
    await _close_as_user(hass, connection, msg, hub, "revoke")


@websocket_command({probatio.Required("type"): "doorstep/sharing/decline", **REQUEST_ID})
@async_response
@_with_hub
async def ws_decline(
    hass: HomeAssistant, connection: Connection, msg: dict[str, Any], hub: SharingHub
) -> None:
    """Say no to a pending request; the requester sees only 'closed'."""
    await _close_as_user(hass, connection, msg, hub, "decline")


# -- the audit trail (admins only) ----------------------------------------------------


def describe_audit_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One audit entry as the card lists it (the raw line is in the export)."""
    return {
        "seq": entry.get("seq"),
        "at": entry.get("time"),
        "action": entry.get("kind"),
        "request_id": entry.get("request"),
        "actor": entry.get("actor"),
        "detail": entry.get("details"),
    }


@websocket_command({probatio.Required("type"): "doorstep/sharing/audit"})
@async_response
@_with_hub
async def ws_audit(
    hass: HomeAssistant, connection: Connection, msg: dict[str, Any], hub: SharingHub
) -> None:
    """The whole trail, and the chain checked now: admins only (it names people and cases)."""
    actor = actor_for_user(connection.user)
    if not actor.is_person_admin:
        await async_audit_refusal(hub, None, actor, "audit", "not_admin")
        _send_translated(connection, msg["id"], ERR_UNAUTHORIZED, "audit_needs_admin")
        return
    broken = await hub.audit.verify()
    entries = await hass.async_add_executor_job(hub.audit.entries_blocking)
    connection.send_result(
        msg["id"],
        {
            "entries": [describe_audit_entry(entry) for entry in entries],
            "chain": {
                "ok": broken is None,
                "entries": len(entries),
                "problem": None if broken is None else f"entry_{broken}",
            },
        },
    )


# -- requesters (admins only) ---------------------------------------------------------


async def _refuse_unless_admin(
    connection: Connection, msg: dict[str, Any], hub: SharingHub, action: str
) -> bool:
    """True if the user may manage requesters; otherwise refuse, audited, and say why."""
    actor = actor_for_user(connection.user)
    if actor.is_person_admin:
        return False
    await async_audit_refusal(hub, None, actor, action, "not an admin")
    _send_translated(connection, msg["id"], ERR_UNAUTHORIZED, "requesters_need_admin")
    return True


@websocket_command({probatio.Required("type"): "doorstep/sharing/requesters"})
@async_response
@_with_hub
async def ws_requesters(
    hass: HomeAssistant, connection: Connection, msg: dict[str, Any], hub: SharingHub
) -> None:
    """Everyone who may ask (or once could), for admins."""
    if await _refuse_unless_admin(connection, msg, hub, "requesters"):
        return
    requesters = sorted(hub.gate.state.requesters.values(), key=lambda r: r.id)
    connection.send_result(msg["id"], {"requesters": [describe_requester(r) for r in requesters]})


@websocket_command(
    {
        probatio.Required("type"): "doorstep/sharing/requester/create",
        probatio.Required("name"): str,
        probatio.Required("kind"): probatio.In([kind.value for kind in RequesterKind]),
    }
)
@async_response
@_with_hub
async def ws_create_requester(
    hass: HomeAssistant, connection: Connection, msg: dict[str, Any], hub: SharingHub
) -> None:
    """Add a requester; its token is in this answer and nowhere else, ever."""
    if await _refuse_unless_admin(connection, msg, hub, "requester/create"):
        return
    name = msg["name"].strip()
    if not name or len(name) > MAX_REQUESTER_NAME or not name.isprintable():
        _send_translated(
            connection,
            msg["id"],
            ERR_INVALID_FORMAT,
            "invalid_requester_name",
            {"max": str(MAX_REQUESTER_NAME)},
        )
        return
    requester, token = hub.gate.create_requester(name, RequesterKind(msg["kind"]))
    connection.send_result(
        msg["id"],
        {
            "requester": describe_requester(requester),
            "token": token,
            "key_id": hub.key.key_id,
        },
    )


@websocket_command(
    {
        probatio.Required("type"): "doorstep/sharing/requester/revoke",
        probatio.Required("requester_id"): str,
    }
)
@async_response
@_with_hub
async def ws_revoke_requester(
    hass: HomeAssistant, connection: Connection, msg: dict[str, Any], hub: SharingHub
) -> None:
    """Stop a requester asking again; its open requests stay as they are."""
    if await _refuse_unless_admin(connection, msg, hub, "requester/revoke"):
        return
    requester_id = msg["requester_id"]
    try:
        hub.gate.revoke_requester(requester_id)
    except InvalidId:
        _send_translated(
            connection,
            msg["id"],
            ERR_INVALID_FORMAT,
            "invalid_requester_id",
            {"requester_id": requester_id[:40]},
        )
        return
    except UnknownRequester:
        _send_translated(
            connection,
            msg["id"],
            ERR_NOT_FOUND,
            "unknown_requester",
            {"requester_id": requester_id},
        )
        return
    connection.send_result(msg["id"], describe_requester(hub.gate.requester(requester_id)))

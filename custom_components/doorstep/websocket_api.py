"""Websocket commands behind the sharing card: the live list of requests, the household's
decisions on them, and requester management for admins.

Thin glue: every decision goes through the same gate calls as the per-request switch and
Decline button, with the connection's user as the actor. Unlike the switch, whose
read-only refusals Home Assistant core stops before Doorstep sees them, these commands
see every refusal, so every refusal lands in the audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
import logging
from typing import Any

from homeassistant.auth.models import User
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
from .sharing import (
    Actor,
    InvalidId,
    RequestClosed,
    Requester,
    RequesterKind,
    ShareRequest,
    SharingError,
    UnknownRequest,
    UnknownRequester,
    check_id,
)
from .sharing_hub import (
    DATA_SHARING,
    SharingHub,
    actor_for_user,
    async_approve,
    async_audit_refusal,
    request_switch_id,
)

_LOGGER = logging.getLogger(__name__)

# Longest requester name the card accepts; the options flow shows it in a drop-down.
MAX_REQUESTER_NAME = 100

type Connection = ActiveConnection
type Handler = Callable[[HomeAssistant, Connection, dict[str, Any], SharingHub], Awaitable[None]]


@callback
def async_register_commands(hass: HomeAssistant) -> None:
    """Register the sharing card's commands (once, when the integration loads)."""
    for command in (
        ws_subscribe,
        ws_approve,
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


def describe_request(hass: HomeAssistant, hub: SharingHub, request: ShareRequest) -> dict[str, Any]:
    """One request as the card lists it, with the entities that stand for it."""
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

    @callback
    def send() -> None:
        hub = hass.data.get(DATA_SHARING)
        if hub is None:
            connection.send_event(msg_id, {"available": False, "requests": []})
            return
        requests = [describe_request(hass, hub, r) for r in hub.open_requests()]
        connection.send_event(msg_id, {"available": True, "requests": requests})

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

    connection.subscriptions[msg_id] = unsubscribe
    connection.send_result(msg_id)
    send()


# -- decisions ------------------------------------------------------------------------

REQUEST_ID: dict[str | probatio.Marker, Any] = {probatio.Required("request_id"): str}


@websocket_command({probatio.Required("type"): "doorstep/sharing/approve", **REQUEST_ID})
@async_response
@_with_hub
async def ws_approve(
    hass: HomeAssistant, connection: Connection, msg: dict[str, Any], hub: SharingHub
) -> None:
    """Approve as the connection's user: only a person who is an admin gets through."""
    if (request := _checked_request(hass, connection, msg, hub)) is None:
        return
    actor = _actor(hass, connection.user, request.id)
    try:
        await async_approve(hub, request.id, actor)
    except HomeAssistantError as err:
        code = {
            "approval_needs_person": ERR_UNAUTHORIZED,
            "request_closed": ERR_NOT_ALLOWED,
        }.get(err.translation_key or "", ERR_HOME_ASSISTANT_ERROR)
        _send_ha_error(connection, msg["id"], code, err)
        return
    connection.send_result(msg["id"], describe_request(hass, hub, hub.gate.get(request.id)))


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

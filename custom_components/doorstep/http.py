"""The requester-facing HTTP API: file a request, read its status, pick up footage.

These views sit outside Home Assistant's login (``requires_auth = False``): requesters
hold Doorstep requester tokens, never Home Assistant accounts. A bad token is reported
to Home Assistant's IP ban, like a failed login. Every clip byte goes through the gate.
"""

from __future__ import annotations

from collections import deque
from http import HTTPStatus
import logging
import time
from typing import Any

from aiohttp import web
from homeassistant.components.http.ban import process_wrong_login
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.util import dt as dt_util

from .media_source import ClipView
from .sharing import (
    InvalidId,
    InvalidRequest,
    InvalidToken,
    NotReleasable,
    Requester,
    SharingError,
    TooManyPending,
    UnknownRequest,
    parse_request_body,
    validate_request,
)
from .sharing.schema import MAX_BODY_BYTES
from .sharing_hub import DATA_SHARING, SharingHub
from .sharing_views import AuditExportView, ClipThumbnailView

_LOGGER = logging.getLogger(__name__)

API = "/api/doorstep/v1"
# A requester files a handful of requests a day; more than this a minute is a script gone wrong.
RATE_LIMIT_REQUESTS = 10
RATE_LIMIT_WINDOW = 60.0


def async_register_views(hass: HomeAssistant) -> None:
    """Register the requester API once per Home Assistant."""
    limiter = _RateLimiter()
    hass.http.register_view(RequestsView(limiter))
    hass.http.register_view(RequestStatusView())
    hass.http.register_view(PickupView())
    hass.http.register_view(KeyView())
    hass.http.register_view(ClipView())
    hass.http.register_view(ClipThumbnailView())
    hass.http.register_view(AuditExportView())


def _error(status: HTTPStatus, error: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, "message": message, **extra}, status=status)


class _RateLimiter:
    """A sliding window of filings per requester."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}

    def allow(self, requester_id: str) -> bool:
        now = time.monotonic()
        window = self._seen.setdefault(requester_id, deque())
        while window and now - window[0] > RATE_LIMIT_WINDOW:
            window.popleft()
        if len(window) >= RATE_LIMIT_REQUESTS:
            return False
        window.append(now)
        return True


class _RequesterView(HomeAssistantView):
    """Shared plumbing: find the gate, and the requester behind the bearer token."""

    requires_auth = False

    def _hub(self, request: web.Request) -> SharingHub | None:
        hass: HomeAssistant = request.app[KEY_HASS]
        return hass.data.get(DATA_SHARING)

    async def _requester(self, request: web.Request, hub: SharingHub) -> Requester | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                return hub.gate.authenticate(token.strip())
            except InvalidToken, SharingError:
                pass
        await process_wrong_login(request)
        return None


def _unauthorized() -> web.Response:
    response = _error(HTTPStatus.UNAUTHORIZED, "unauthorized", "A valid requester token is needed.")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _unavailable() -> web.Response:
    return _error(
        HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", "Sharing is not available right now."
    )


class RequestsView(_RequesterView):
    """``POST /api/doorstep/v1/requests``: ask the household for footage."""

    url = f"{API}/requests"
    name = "api:doorstep:requests"

    def __init__(self, limiter: _RateLimiter) -> None:
        """Filings are rate limited per requester."""
        self._limiter = limiter

    async def post(self, request: web.Request) -> web.Response:
        """File a request; it waits, pending, for a person in the household."""
        hub = self._hub(request)
        if hub is None:
            return _unavailable()
        requester = await self._requester(request, hub)
        if requester is None:
            return _unauthorized()
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return _error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "too_large",
                f"The body must be at most {MAX_BODY_BYTES} bytes.",
            )
        if not self._limiter.allow(requester.id):
            return _error(HTTPStatus.TOO_MANY_REQUESTS, "too_many_requests", "Slow down.")
        try:
            fields = validate_request(parse_request_body(raw), now=dt_util.utcnow())
            filed = await hub.gate.file_request(requester.id, fields)
        except InvalidRequest as err:
            return _error(HTTPStatus.BAD_REQUEST, "invalid_request", err.message, field=err.field)
        except TooManyPending:
            return _error(
                HTTPStatus.TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many of your requests are waiting for an answer.",
            )
        return web.json_response(
            {"id": filed.id, "status": filed.requester_status_at(dt_util.utcnow())},
            status=HTTPStatus.CREATED,
        )


class RequestStatusView(_RequesterView):
    """``GET /api/doorstep/v1/requests/{request_id}``: pending, fulfilled or closed."""

    url = f"{API}/requests/{{request_id}}"
    name = "api:doorstep:request"

    async def get(self, request: web.Request, request_id: str) -> web.Response:
        """The status of one of the requester's own requests."""
        hub = self._hub(request)
        if hub is None:
            return _unavailable()
        requester = await self._requester(request, hub)
        if requester is None:
            return _unauthorized()
        try:
            view = hub.gate.requester_view(requester.id, request_id)
        except InvalidId, UnknownRequest:
            return _error(HTTPStatus.NOT_FOUND, "not_found", "No such request.")
        if token := view.pop("pickup_token", None):
            view["pickup_url"] = f"{API}/pickup/{token}"
        return web.json_response(view)


class PickupView(_RequesterView):
    """``GET /api/doorstep/v1/pickup/{token}``: the approved footage, once released."""

    url = f"{API}/pickup/{{token}}"
    name = "api:doorstep:pickup"

    async def get(self, request: web.Request, token: str) -> web.StreamResponse:
        """Stream the archive; the gate writes the download to the audit log first."""
        hub = self._hub(request)
        if hub is None:
            return _unavailable()
        try:
            release = await hub.gate.open_pickup(token)
        except InvalidToken, NotReleasable, UnknownRequest, InvalidId:
            return _error(HTTPStatus.NOT_FOUND, "not_found", "No such pickup, or it has expired.")
        except SharingError as err:
            _LOGGER.warning("Pickup refused: %s", err)
            return _error(HTTPStatus.NOT_FOUND, "not_found", "No such pickup, or it has expired.")
        response = web.StreamResponse(
            headers={
                "Content-Type": release.content_type,
                "Content-Disposition": f'attachment; filename="{release.filename}"',
                "Content-Length": str(release.size),
                "Cache-Control": "no-store",
            }
        )
        await response.prepare(request)
        try:
            async for chunk in release:
                await response.write(chunk)
        finally:
            await release.aclose()
        await response.write_eof()
        return response


class KeyView(_RequesterView):
    """``GET /api/doorstep/v1/key``: the hub's public key, to verify signed manifests."""

    url = f"{API}/key"
    name = "api:doorstep:key"

    async def get(self, request: web.Request) -> web.Response:
        """Key id and raw Ed25519 public key (base64)."""
        hub = self._hub(request)
        if hub is None:
            return _unavailable()
        if await self._requester(request, hub) is None:
            return _unauthorized()
        return web.json_response(hub.public_key_info())

"""Household views for the sharing card: a clip's still for the preview, and the audit export.

Both need a Home Assistant login (a bearer token, or a path the card got signed through
the preview command). The still is footage, so like the clip itself it goes only to the
home network (invariant I3). The audit export names requesters and cases: admins only,
at home.
"""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web
from homeassistant.components.http import KEY_HASS_USER
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.util import dt as dt_util

from .live_view import browser_may_watch
from .media.thumbnail import ThumbnailError, keyframe_jpeg
from .recording import DATA_CLIPS
from .sharing import is_valid_id
from .sharing_hub import DATA_SHARING

THUMBNAIL_URL = "/api/doorstep/v1/clips/{clip_id}/thumbnail"
AUDIT_URL = "/api/doorstep/v1/audit"


def from_home_network(hass: HomeAssistant) -> bool:
    """Whether footage may go to the browser behind this call: the rule live view and
    clips use, which also counts Home Assistant Cloud and reverse proxies as outside."""
    return browser_may_watch(hass, {})


def _outside() -> web.Response:
    return web.Response(status=HTTPStatus.FORBIDDEN, text="Only shown at home")


class ClipThumbnailView(HomeAssistantView):
    """``GET /api/doorstep/v1/clips/{clip_id}/thumbnail``: the clip's first keyframe, JPEG."""

    url = THUMBNAIL_URL
    name = "api:doorstep:clip:thumbnail"
    requires_auth = True

    async def get(self, request: web.Request, clip_id: str) -> web.Response:
        """Decode the first keyframe, for logged-in users on the home network only."""
        hass: HomeAssistant = request.app[KEY_HASS]
        if not from_home_network(hass):
            return _outside()
        store = hass.data.get(DATA_CLIPS)
        if store is None or not is_valid_id(clip_id) or store.get(clip_id) is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        try:
            jpeg = await hass.async_add_executor_job(keyframe_jpeg, store.clip_path(clip_id))
        except FileNotFoundError, ThumbnailError:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        return web.Response(
            body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"}
        )


class AuditExportView(HomeAssistantView):
    """``GET /api/doorstep/v1/audit``: the hash-chained log, byte for byte, as NDJSON."""

    url = AUDIT_URL
    name = "api:doorstep:audit"
    requires_auth = True

    async def get(self, request: web.Request) -> web.Response:
        """The raw log for an admin at home, as a file to keep."""
        hass: HomeAssistant = request.app[KEY_HASS]
        user = request[KEY_HASS_USER]
        if not user.is_admin or user.system_generated:
            return web.Response(status=HTTPStatus.FORBIDDEN, text="Administrators only")
        if not from_home_network(hass):
            return _outside()
        hub = hass.data.get(DATA_SHARING)
        if hub is None:
            return web.Response(status=HTTPStatus.SERVICE_UNAVAILABLE)
        content = await hub.audit.export()
        stamp = dt_util.utcnow().strftime("%Y%m%dT%H%M%SZ")
        return web.Response(
            body=content,
            headers={
                "Content-Type": "application/x-ndjson",
                "Content-Disposition": f'attachment; filename="doorstep-audit-{stamp}.jsonl"',
                "Cache-Control": "no-store",
            },
        )

"""Service actions: ask for footage locally, decline, and check or export the audit log.

There is deliberately no action that approves: approval is a person, logged in to the
dashboard, approving in the sharing card with their password (invariant I2).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from homeassistant.auth.permissions.const import POLICY_CONTROL
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, Unauthorized
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
import probatio

from .const import DOMAIN, STORAGE_DIR
from .errors import translated_error
from .sharing import (
    InvalidId,
    RequesterKind,
    SharingError,
    UnknownRequest,
    is_valid_id,
    validate_request,
)
from .sharing_hub import (
    DATA_SHARING,
    SharingHub,
    async_actor_from_context,
    async_audit_refusal,
    request_switch_id,
)

SERVICE_REQUEST_CLIP = "request_clip"
SERVICE_DECLINE_REQUEST = "decline_request"
SERVICE_VERIFY_AUDIT_LOG = "verify_audit_log"
SERVICE_EXPORT_AUDIT_LOG = "export_audit_log"

LOCAL_REQUESTER = "Local automation"

REQUEST_CLIP_SCHEMA = probatio.Schema(
    {
        probatio.Optional("requester", default=LOCAL_REQUESTER): cv.string,
        probatio.Optional("kind", default=RequesterKind.OTHER.value): probatio.In(
            [kind.value for kind in RequesterKind]
        ),
        probatio.Required("reference"): cv.string,
        probatio.Required("reason"): cv.string,
        probatio.Required("window_start"): cv.datetime,
        probatio.Required("window_end"): cv.datetime,
        probatio.Optional("doorbells"): probatio.All(cv.ensure_list, [cv.string]),
        probatio.Required("contact"): cv.string,
        probatio.Required("wanted_by"): cv.datetime,
        probatio.Optional("upload_url"): cv.string,
    }
)
DECLINE_SCHEMA = probatio.Schema({probatio.Required("request_id"): cv.string})


def _hub(hass: HomeAssistant) -> SharingHub:
    hub = hass.data.get(DATA_SHARING)
    if hub is None:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="sharing_unavailable")
    return hub


def _iso(value: datetime) -> str:
    return dt_util.as_utc(
        value if value.tzinfo else value.replace(tzinfo=dt_util.get_default_time_zone())
    ).isoformat()


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register Doorstep's actions (once, when the integration loads)."""

    async def request_clip(call: ServiceCall) -> ServiceResponse:
        hub = _hub(hass)
        data = call.data
        body: dict[str, Any] = {
            "reference": data["reference"],
            "reason": data["reason"],
            "window": {"start": _iso(data["window_start"]), "end": _iso(data["window_end"])},
            "contact": data["contact"],
            "wanted_by": _iso(data["wanted_by"]),
            "delivery": {"method": "upload", "url": data["upload_url"]}
            if "upload_url" in data
            else {"method": "pickup"},
        }
        if "doorbells" in data:
            body["doorbells"] = data["doorbells"]
        # The same schema as the HTTP entry point: one set of rules for every request.
        try:
            fields = validate_request(body, now=dt_util.utcnow())
            requester = hub.local_requester(data["requester"], RequesterKind(data["kind"]))
            filed = await hub.gate.file_request(requester.id, fields)
        except SharingError as err:
            raise translated_error(err) from err
        return {"request_id": filed.id, "status": filed.state.value}

    async def decline_request(call: ServiceCall) -> None:
        hub = _hub(hass)
        request_id = call.data["request_id"]
        switch = request_switch_id(hass, request_id) if is_valid_id(request_id) else None
        actor = await async_actor_from_context(hass, call.context, switch)
        if actor.is_read_only:
            # Home Assistant checks entity permissions only for calls that name entities;
            # this one names a request, so Doorstep applies the switch's permission itself,
            # and refuses the way core would (401 over REST), with the refusal on record.
            await async_audit_refusal(hub, request_id, actor, "decline", "read-only user")
            raise Unauthorized(context=call.context, entity_id=switch, permission=POLICY_CONTROL)
        try:
            await hub.gate.decline(request_id, actor)
        except InvalidId as err:
            # An id that cannot exist is, to the person calling, just one that doesn't.
            raise translated_error(UnknownRequest(request_id)) from err
        except SharingError as err:
            raise translated_error(err) from err

    async def verify_audit_log(call: ServiceCall) -> ServiceResponse:
        hub = _hub(hass)
        broken = await hub.audit.verify()
        return {"valid": broken is None, "first_broken_entry": broken}

    async def export_audit_log(call: ServiceCall) -> ServiceResponse:
        # The log names requesters and cases: admins (and their automations) only.
        if call.context.user_id is not None:
            user = await hass.auth.async_get_user(call.context.user_id)
            if user is None or not user.is_admin:
                raise Unauthorized(context=call.context)
        hub = _hub(hass)
        content = await hub.audit.export()
        stamp = dt_util.utcnow().strftime("%Y%m%dT%H%M%SZ")
        target = Path(hass.config.path(STORAGE_DIR, "exports", f"audit-{stamp}.jsonl"))

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)

        await hass.async_add_executor_job(write)
        return {"path": str(target), "bytes": len(content)}

    hass.services.async_register(
        DOMAIN,
        SERVICE_REQUEST_CLIP,
        request_clip,
        schema=REQUEST_CLIP_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN, SERVICE_DECLINE_REQUEST, decline_request, schema=DECLINE_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_VERIFY_AUDIT_LOG,
        verify_audit_log,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_EXPORT_AUDIT_LOG,
        export_audit_log,
        supports_response=SupportsResponse.OPTIONAL,
    )

"""One switch per footage request: off until a person in the household turns it on."""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_KIND, DOMAIN, KIND_SHARING
from .sharing import (
    ApprovalRefused,
    AuditWriteError,
    RequestClosed,
    RequestState,
    ShareRequest,
    SharingError,
)
from .sharing_hub import SharingConfigEntry, SharingHub, async_actor_from_context

_LOGGER = logging.getLogger(__name__)

PARALLEL_UPDATES = 0


def sharing_device_info() -> DeviceInfo:
    """The 'Doorstep sharing' service device that holds the request entities."""
    return DeviceInfo(
        identifiers={(DOMAIN, KIND_SHARING)},
        name="Doorstep sharing",
        entry_type=DeviceEntryType.SERVICE,
    )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SharingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Keep one switch per open request, adding and removing them as requests come and go."""
    if entry.data.get(CONF_KIND) != KIND_SHARING:
        return
    hub = entry.runtime_data
    shown: dict[str, ShareRequestSwitch] = {}
    registry = er.async_get(hass)

    @callback
    def sync() -> None:
        open_ids = {request.id for request in hub.open_requests()}
        new = [ShareRequestSwitch(hub, request_id) for request_id in open_ids - shown.keys()]
        for switch in new:
            shown[switch.request_id] = switch
        if new:
            async_add_entities(new)
        for request_id in list(shown.keys() - open_ids):
            switch = shown.pop(request_id)
            if switch.registry_entry is not None:
                registry.async_remove(switch.entity_id)
        for switch in shown.values():
            if switch.hass is not None:
                switch.async_write_ha_state()

    sync()
    entry.async_on_unload(hub.add_listener(sync))


class ShareRequestSwitch(SwitchEntity):
    """On means shared. Only a person who is an admin can turn it on; off revokes."""

    _attr_has_entity_name = True
    _attr_translation_key = "share_request"
    _attr_should_poll = False

    def __init__(self, hub: SharingHub, request_id: str) -> None:
        """Named after the requester and their reference."""
        self._hub = hub
        self.request_id = request_id
        request = hub.gate.get(request_id)
        requester = hub.gate.requester(request.requester_id)
        self._attr_unique_id = f"share_request_{request_id}"
        self._attr_device_info = sharing_device_info()
        self._attr_translation_placeholders = {
            "requester": requester.name,
            "reference": request.reference,
        }

    @property
    def _request(self) -> ShareRequest:
        return self._hub.gate.get(self.request_id)

    @property
    def is_on(self) -> bool:
        """Approved (and possibly already picked up)."""
        return self._request.state in (RequestState.APPROVED, RequestState.FULFILLED)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """What a person needs to decide: who, why, which window, which clips."""
        request = self._request
        requester = self._hub.gate.requester(request.requester_id)
        clips = self._hub.describe_clips(request.held_clip_ids)
        return {
            "request_id": request.id,
            "requester": requester.name,
            "kind": requester.kind.value,
            "reference": request.reference,
            "reason": request.reason,
            "contact": request.contact,
            "window_start": request.window_start.isoformat(),
            "window_end": request.window_end.isoformat(),
            "wanted_by": request.wanted_by.isoformat(),
            "delivery": request.delivery.method.value,
            "status": request.state.value,
            "clips": clips,
        }

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Approve, if a person who is an admin asked; every refusal is audited by the gate."""
        actor = await async_actor_from_context(self.hass, self._context, self.entity_id)
        try:
            await self._hub.gate.approve(self.request_id, actor)
        except ApprovalRefused as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="approval_needs_person",
                translation_placeholders={"reason": str(err.reason)},
            ) from err
        except AuditWriteError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="audit_write_failed"
            ) from err
        except RequestClosed as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="request_closed"
            ) from err
        except SharingError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="sharing_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        self.async_write_ha_state()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Revoke: the pickup link dies and no further byte leaves."""
        actor = await async_actor_from_context(self.hass, self._context, self.entity_id)
        try:
            await self._hub.gate.revoke(self.request_id, actor)
        except RequestClosed:
            return
        except SharingError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="sharing_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        self.async_write_ha_state()

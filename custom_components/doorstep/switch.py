"""One switch per footage request: off until a person in the household turns it on."""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_KIND, DOMAIN, KIND_SHARING
from .errors import translated_error
from .request_entity import RequestEntity, async_keep_request_entities
from .sharing import (
    DeliveryMethod,
    Refusal,
    RequestClosed,
    RequestState,
    SharingError,
)
from .sharing_hub import (
    SharingConfigEntry,
    async_actor_from_context,
    async_audit_refusal,
)

_LOGGER = logging.getLogger(__name__)

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SharingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Keep one switch per open request."""
    if entry.data.get(CONF_KIND) != KIND_SHARING:
        return
    async_keep_request_entities(
        hass,
        entry,
        async_add_entities,
        lambda hub: (request.id for request in hub.open_requests()),
        ShareRequestSwitch,
    )


class ShareRequestSwitch(RequestEntity, SwitchEntity):
    """On means shared. Only the card turns it on, for a person who proves who they are;
    off revokes."""

    kind = "share_request"

    @property
    def is_on(self) -> bool:
        """Approved (and possibly already picked up)."""
        return self._request.state in (RequestState.APPROVED, RequestState.FULFILLED)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """What a person needs to decide: who, why, which window, which clips."""
        request = self._request
        requester = self._hub.gate.requester(request.requester_id)
        attributes: dict[str, Any] = {
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
            "clips": self._hub.describe_clips(request.held_clip_ids),
        }
        if request.delivery.method is DeliveryMethod.UPLOAD:
            status = self._hub.upload_status.get(request.id)
            attributes["delivery_status"] = (
                status.value if status is not None else _unstarted_status(request.state)
            )
            if (error := self._hub.upload_errors.get(request.id)) is not None:
                attributes["delivery_error"] = error
        return attributes

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Never approves: approval needs the card's preview and a fresh proof (I2).

        Whoever asked (a person on the entity page, an automation, a script's token) is
        pointed to the card, and the attempt goes on record.
        """
        actor = await async_actor_from_context(self.hass, self._context, self.entity_id)
        await async_audit_refusal(
            self._hub, self.request_id, actor, "switch on", Refusal.IN_CARD_ONLY.value
        )
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key=Refusal.IN_CARD_ONLY.value
        )

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Revoke: the pickup link dies and no further byte leaves."""
        actor = await async_actor_from_context(self.hass, self._context, self.entity_id)
        try:
            await self._hub.gate.revoke(self.request_id, actor)
        except RequestClosed:
            return
        except SharingError as err:
            raise translated_error(err) from err
        self.async_write_ha_state()


def _unstarted_status(state: RequestState) -> str:
    """Before this run's uploader reported anything: waiting for a person, or done."""
    if state is RequestState.PENDING:
        return "awaiting_approval"
    if state is RequestState.FULFILLED:
        return "delivered"
    return "starting"

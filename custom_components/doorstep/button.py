"""One Decline button per pending footage request."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_KIND, KIND_SHARING
from .errors import translated_error
from .request_entity import RequestEntity, async_keep_request_entities
from .sharing import RequestClosed, RequestState, SharingError
from .sharing_hub import SharingConfigEntry, async_actor_from_context

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SharingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Keep one Decline button per pending request."""
    if entry.data.get(CONF_KIND) != KIND_SHARING:
        return
    async_keep_request_entities(
        hass,
        entry,
        async_add_entities,
        lambda hub: (r.id for r in hub.gate.requests() if r.state is RequestState.PENDING),
        DeclineRequestButton,
    )


class DeclineRequestButton(RequestEntity, ButtonEntity):
    """Say no. The requester sees only 'closed', the same as an expiry."""

    kind = "decline_request"

    async def async_press(self) -> None:
        """Decline the request."""
        actor = await async_actor_from_context(self.hass, self._context, self.entity_id)
        try:
            await self._hub.gate.decline(self.request_id, actor)
        except RequestClosed:
            return
        except SharingError as err:
            raise translated_error(err) from err

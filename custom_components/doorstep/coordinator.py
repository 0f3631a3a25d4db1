"""Push coordinator: turns the doorbell's event stream into entity state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import CONF_RING_COOLDOWN, DEFAULT_RING_COOLDOWN, DOMAIN, EVENT_RING
from .device import DeviceIdentity, DoorbellEvent, EventType, FingerprintMismatch
from .repairs import async_create_identity_issue

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DoorbellState:
    """Everything the entities show about one doorbell at a moment."""

    connected: bool = False
    motion: bool = False
    # The newest ring or motion frame. Event entities compare it by identity to
    # decide whether it is news to them.
    last_event: DoorbellEvent | None = None
    last_ring: datetime | None = None


class DoorstepCoordinator(DataUpdateCoordinator[DoorbellState]):
    """Holds the state of one doorbell, fed by its event stream (never polled)."""

    # The entry's options and id are all it reads; the runtime data (data.py) holds the
    # coordinator, so typing the entry by that data would tie the two modules in a loop.
    config_entry: ConfigEntry

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, device: DeviceIdentity) -> None:
        """Start disconnected; the event stream reports when it is up."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {device.name}",
            update_interval=None,
        )
        self.device = device
        self.data = DoorbellState()
        # The first connection after setup is not a recovery and is not announced.
        self._had_outage = False
        self.first_connection = asyncio.Event()
        # Things beside entities that act on frames, such as the recorder.
        self._event_hooks: list[Callable[[DoorbellEvent], None]] = []

    @callback
    def add_event_hook(self, hook: Callable[[DoorbellEvent], None]) -> Callable[[], None]:
        """Call ``hook`` with every frame from the doorbell; returns a remover."""
        self._event_hooks.append(hook)
        return lambda: self._event_hooks.remove(hook)

    @callback
    def handle_event(self, event: DoorbellEvent) -> None:
        """Apply one frame from the doorbell."""
        for hook in self._event_hooks:
            hook(event)
        state = self.data
        match event.type:
            case EventType.HELLO:
                self.async_set_updated_data(replace(state, motion=bool(event.motion)))
            case EventType.RING:
                if self._in_cooldown(event.timestamp):
                    _LOGGER.debug("%s: ring ignored, within the cooldown", self.device.name)
                    return
                self.async_set_updated_data(
                    replace(state, last_event=event, last_ring=event.timestamp)
                )
                self._fire_ring_event(event)
            case EventType.MOTION_START | EventType.MOTION_STOP:
                self.async_set_updated_data(
                    replace(state, motion=event.type is EventType.MOTION_START, last_event=event)
                )
            case _:
                pass

    @callback
    def handle_connection_change(self, connected: bool) -> None:
        """Log each outage once, when it starts and when it ends."""
        if connected == self.data.connected:
            return
        if not connected:
            self._had_outage = True
            _LOGGER.info("%s is unavailable: its event stream fell silent", self.device.name)
        elif self._had_outage:
            _LOGGER.info("%s is back online", self.device.name)
        else:
            _LOGGER.debug("%s connected", self.device.name)
            self.first_connection.set()
        self.async_set_updated_data(replace(self.data, connected=connected))

    @callback
    def handle_auth_failed(self) -> None:
        """The doorbell no longer accepts our token: ask the owner to pair again."""
        _LOGGER.warning("%s rejected the hub's token; it must be paired again", self.device.name)
        self.handle_connection_change(False)
        self.config_entry.async_start_reauth(self.hass)

    @callback
    def handle_fingerprint_mismatch(self, err: FingerprintMismatch) -> None:
        """Someone else answers at the doorbell's address: refuse it and tell the owner."""
        async_create_identity_issue(self.hass, self.config_entry, err.actual)

    def _in_cooldown(self, when: datetime) -> bool:
        cooldown = self.config_entry.options.get(CONF_RING_COOLDOWN, DEFAULT_RING_COOLDOWN)
        last = self.data.last_ring
        return bool(cooldown) and last is not None and (when - last).total_seconds() < cooldown

    def _fire_ring_event(self, event: DoorbellEvent) -> None:
        device_registry = dr.async_get(self.hass)
        device_entry = device_registry.async_get_device_by_identifier(
            (DOMAIN, self.device.device_id), self.config_entry.entry_id
        )
        self.hass.bus.async_fire(
            EVENT_RING,
            {
                "device_id": device_entry.id if device_entry else None,
                "doorstep_id": self.device.device_id,
                "name": self.device.name,
                "rang_at": event.timestamp.isoformat(),
            },
        )

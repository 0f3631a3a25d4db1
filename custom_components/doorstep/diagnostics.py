"""Diagnostics for Doorstep, with the pairing secrets removed."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant

from .const import CONF_FINGERPRINT, CONF_TOKEN
from .data import DoorstepConfigEntry

# The token opens the doorbell; the fingerprint and address would help someone
# impersonate it, so none of them belong in a file people paste into bug reports.
TO_REDACT = {CONF_TOKEN, CONF_FINGERPRINT, CONF_HOST}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: DoorstepConfigEntry
) -> dict[str, Any]:
    """What the doorbell said about itself and how its connection is doing."""
    data = entry.runtime_data
    state = data.coordinator.data
    recorder = data.recorder
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "device": asdict(data.device),
        "state": {
            "connected": state.connected,
            "motion": state.motion,
            "last_ring": state.last_ring.isoformat() if state.last_ring else None,
            "last_event": state.last_event.type.value if state.last_event else None,
        },
        # Counters a full disk or a slow one shows up in; no footage, no paths.
        "recording": None
        if recorder is None
        else {
            "config": asdict(recorder.config),
            "stats": asdict(recorder.stats),
            "open_clip": recorder.recording,
            "memory_bytes": recorder.memory_bytes,
        },
    }

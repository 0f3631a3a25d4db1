"""Diagnostics for Doorstep, with the pairing secrets removed."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any, cast

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .const import CONF_FINGERPRINT, CONF_KIND, CONF_PUSH_SECRET, CONF_TOKEN, KIND_SHARING
from .data import DoorstepConfigEntry
from .feed_polling import DATA_FEEDS, feed_diagnostics
from .sharing import RequestState
from .sharing_hub import SharingConfigEntry, SharingHub

# The token opens the doorbell; the fingerprint and address would help someone
# impersonate it, so none of them belong in a file people paste into bug reports. An RTSP
# camera's URL says where it is, and its username and password let anyone watch.
# A push secret lets anyone ring the doorbell in Home Assistant.
TO_REDACT = {
    CONF_TOKEN,
    CONF_FINGERPRINT,
    CONF_HOST,
    CONF_URL,
    CONF_USERNAME,
    CONF_PASSWORD,
    CONF_PUSH_SECRET,
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: DoorstepConfigEntry | SharingConfigEntry
) -> dict[str, Any]:
    """A doorbell's identity and connection, or the sharing gate's counts and states."""
    if entry.data.get(CONF_KIND) == KIND_SHARING:
        return await _sharing_diagnostics(hass, cast(SharingConfigEntry, entry))
    return _doorbell_diagnostics(cast(DoorstepConfigEntry, entry))


def _doorbell_diagnostics(entry: DoorstepConfigEntry) -> dict[str, Any]:
    """What the doorbell said about itself and how its connection is doing."""
    data = entry.runtime_data
    state = data.coordinator.data
    recorder = data.recorder
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "device": asdict(data.device),
        "driver": data.doorbell.driver,
        "capabilities": asdict(data.doorbell.capabilities),
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


async def _sharing_diagnostics(hass: HomeAssistant, entry: SharingConfigEntry) -> dict[str, Any]:
    """How many requests stand where, and whether the audit chain holds.

    Counts and states only: no token or token hash, no requester or case names, no
    reasons or contacts, no clip ids, no footage. A householder can paste this into a
    bug report without sharing anything about who asked for what.
    """
    hub: SharingHub = entry.runtime_data
    requests = hub.gate.requests()
    requesters = list(hub.gate.state.requesters.values())
    clips = hub.clips.list_clips()
    entries, _head = hub.audit.head
    return {
        "entry": {"version": entry.version, "minor_version": entry.minor_version},
        "requests": {
            "by_state": {
                state.value: sum(r.state is state for r in requests) for state in RequestState
            },
            "by_delivery": dict(Counter(r.delivery.method.value for r in requests)),
            "holding_clips": sum(bool(r.held_clip_ids) for r in requests),
        },
        "uploads": dict(Counter(status.value for status in hub.upload_status.values())),
        "requesters": {
            "active": sum(not r.revoked for r in requesters),
            "revoked": sum(r.revoked for r in requesters),
            "by_kind": dict(Counter(r.kind.value for r in requesters)),
        },
        "clips": {"count": len(clips), "bytes": hub.clips.total_bytes()},
        # Per feed: polls, 304s, refusals by reason, matched and dropped entries.
        "feeds": feed_diagnostics(hass.data.get(DATA_FEEDS)),
        "audit_log": {
            "entries": entries,
            "first_broken_entry": await hub.audit.verify(),
        },
    }

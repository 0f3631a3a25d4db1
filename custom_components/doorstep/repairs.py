"""Repair issues raised by Doorstep."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import (
    CONF_DEVICE_ID,
    CONF_FINGERPRINT,
    DOMAIN,
    ISSUE_CLOUD_SERVICES,
    ISSUE_IDENTITY_CHANGED,
    ISSUE_VIDEO_PROFILE,
)
from .media import ProfileDecision

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry


def identity_issue_id(device_id: str) -> str:
    """One identity issue per doorbell."""
    return f"{ISSUE_IDENTITY_CHANGED}_{device_id}"


@callback
def async_create_identity_issue(
    hass: HomeAssistant, entry: ConfigEntry, presented_fingerprint: str | None
) -> None:
    """Tell the owner that something with a different certificate claims to be this doorbell.

    Nothing about the entry changes: the pinned certificate stays, so the impostor (or a
    doorbell that was reset) is refused until the owner pairs it again on purpose.
    """
    pinned: str = entry.data[CONF_FINGERPRINT]
    ir.async_create_issue(
        hass,
        DOMAIN,
        identity_issue_id(entry.data[CONF_DEVICE_ID]),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_IDENTITY_CHANGED,
        translation_placeholders={
            "name": entry.title,
            "pinned": _short(pinned),
            "presented": _short(presented_fingerprint) if presented_fingerprint else "?",
        },
    )


@callback
def async_delete_identity_issue(hass: HomeAssistant, device_id: str) -> None:
    """Drop the issue once the owner re-paired the doorbell."""
    ir.async_delete_issue(hass, DOMAIN, identity_issue_id(device_id))


def _short(fingerprint: str) -> str:
    """Enough of a fingerprint for a person to compare, in readable pairs."""
    head = fingerprint[:16]
    return ":".join(head[i : i + 2] for i in range(0, len(head), 2)) + "…"


def profile_issue_id(device_id: str) -> str:
    """One video-profile issue per doorbell."""
    return f"{ISSUE_VIDEO_PROFILE}_{device_id}"


@callback
def async_update_profile_issue(
    hass: HomeAssistant, entry: ConfigEntry, decision: ProfileDecision
) -> None:
    """Tell the owner when a doorbell's H.264 cannot go to browsers untouched."""
    issue_id = profile_issue_id(entry.data[CONF_DEVICE_ID])
    if decision.passthrough:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_VIDEO_PROFILE,
        translation_placeholders={
            "name": entry.title,
            # Not decision.reason: that is English, for the log.
            "profile": decision.profile,
        },
    )


def cloud_issue_id(device_id: str) -> str:
    """One outside-services issue per device."""
    return f"{ISSUE_CLOUD_SERVICES}_{device_id}"


@callback
def async_update_cloud_issue(
    hass: HomeAssistant, entry: ConfigEntry, services: tuple[str, ...]
) -> None:
    """Tell the owner what the device itself sends out of the house, or drop the issue."""
    issue_id = cloud_issue_id(entry.data[CONF_DEVICE_ID])
    if not services:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_CLOUD_SERVICES,
        translation_placeholders={
            "name": entry.title,
            # The device API's own names for the outputs (notify), not prose.
            "services": ", ".join(services),
        },
    )

"""The lab itself: Home Assistant starts clean in its namespace and speaks mDNS only on
the lab's home LAN, never on the uplink to the root namespace (and so never on eth0)."""

from __future__ import annotations

import pytest

from scripts.lab.hass import HassClient, HassWebSocket
from scripts.lab.netns import Topology

from .conftest import HassInstance

pytestmark = pytest.mark.e2e


async def test_onboarding_is_finished(hass_client: HassClient) -> None:
    steps = await hass_client.get("/api/onboarding")
    assert all(step["done"] for step in steps), steps


async def test_zeroconf_uses_only_the_lan_bridge(
    hass_ws: HassWebSocket, topology: Topology
) -> None:
    network = await hass_ws.call("network")
    enabled = [a["name"] for a in network["adapters"] if a["enabled"]]
    assert enabled == [topology.bridge], network


def test_home_assistant_logged_no_errors(hass_instance: HassInstance) -> None:
    """Start-up is clean, and whatever the other e2e tests did to the doorbell (kill
    it, unplug it) is reported through entity states, not as errors."""
    errors = [
        line
        for line in hass_instance.process.log_text().splitlines()
        if " ERROR " in line or "Traceback" in line
    ]
    assert not errors, "\n".join(errors)


def test_home_assistant_reported_no_deprecated_use_by_doorstep(
    hass_instance: HassInstance,
) -> None:
    """A real Home Assistant 2026.10.4 reports nothing Doorstep does as deprecated.

    For a custom integration HA only logs a warning ("Detected that custom integration
    'doorstep' ..." from its frame helper, or "The deprecated ... was used from doorstep"
    from its deprecation helper, or an entity's "This will stop working in ...")."""
    reports = [
        line
        for line in hass_instance.process.log_text().splitlines()
        if "doorstep" in line.lower()
        and any(
            phrase in line
            for phrase in ("Detected that custom integration", "deprecated", "stop working")
        )
    ]
    assert not reports, "\n".join(reports)

"""Pair discovered doorbells through Home Assistant's config-flow API, as a person would
through the UI: wait for the zeroconf discovery, confirm it, enter the code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import time
from typing import Any

from .doorbell import Doorbell
from .hass import HassClient, HassError, HassWebSocket
from .procs import within

DOMAIN = "doorstep"


async def discovered_flows(ws: HassWebSocket) -> list[dict[str, Any]]:
    """Doorstep flows that discovery started and nobody has finished yet."""
    # Home Assistant lists flows in progress only over the websocket (seen on 2025.4:
    # GET /api/config/config_entries/flow answers 405).
    flows: list[dict[str, Any]] = await ws.call("config_entries/flow/progress")
    return [f for f in flows if f["handler"] == DOMAIN and f["context"].get("source") == "zeroconf"]


async def wait_for_discovery(ws: HassWebSocket, device_id: str | None = None) -> dict[str, Any]:
    """Wait for a zeroconf-started Doorstep flow (for `device_id`, when given)."""
    while True:
        for flow in await discovered_flows(ws):
            if device_id is None or flow["context"].get("unique_id") == device_id:
                return flow
        await asyncio.sleep(0.25)


async def pair_flow(client: HassClient, flow: dict[str, Any], code: str) -> dict[str, Any]:
    """Walk a discovered flow to its end: confirm (if asked), then the pairing code.

    Returns the final result (`type` `create_entry` on success). Raises when the flow
    asks for a step this helper does not know or shows errors.
    """
    path = f"/api/config/config_entries/flow/{flow['flow_id']}"
    result: dict[str, Any] = await client.get(path)
    for _ in range(5):
        if result["type"] != "form":
            return result
        if result.get("errors"):
            raise HassError(f"pairing step {result['step_id']} failed: {result['errors']}")
        step = result["step_id"]
        if step == "zeroconf_confirm":
            result = await client.post(path, {})
        elif step == "pair":
            result = await client.post(path, {"code": code})
            if result["type"] == "form" and result.get("errors"):
                raise HassError(f"pairing refused: {result['errors']}")
        else:
            raise HassError(f"unexpected config flow step {step!r}: {result}")
    raise HassError(f"config flow did not finish: {result}")


@dataclass(frozen=True, kw_only=True)
class Pairing:
    """What discovering and pairing one doorbell produced."""

    info: dict[str, Any]  # the doorbell's /v1/info
    result: dict[str, Any]  # the config flow's last answer (create_entry on success)
    discovery_seconds: float

    @property
    def entry_id(self) -> str:
        """The new config entry (only after a ``create_entry`` result)."""
        return str(self.result["result"]["entry_id"])


type DiscoveryWatch = Callable[[Awaitable[dict[str, Any]]], Awaitable[dict[str, Any]]]


async def discover_and_pair(
    client: HassClient,
    bell: Doorbell,
    *,
    discovery_timeout: float = 30,
    watch: DiscoveryWatch | None = None,
) -> Pairing:
    """Wait for the doorbell to answer, for Home Assistant to discover it by mDNS, then
    walk the discovered flow with the code the doorbell shows.

    ``watch`` wraps the wait for discovery (to fail early on a known cause, say). The
    caller checks ``result["type"]``: a refused pairing is an answer, not an exception.
    """
    async with within(20, "the doorbell answers", bell.process):
        info = await bell.wait_ready(client.session)
    ws = await client.websocket()
    try:
        started = time.monotonic()
        async with within(discovery_timeout, f"Home Assistant discovers {bell.name!r} by mDNS"):
            waiting = wait_for_discovery(ws, device_id=info["id"])
            flow = await (watch(waiting) if watch is not None else waiting)
        found = time.monotonic() - started
        result = await pair_flow(client, flow, bell.pairing_code())
    finally:
        await ws.close()
    return Pairing(info=info, result=result, discovery_seconds=found)


async def ignore_offer(ws: HassWebSocket, handler: str, unique_id: str, title: str) -> None:
    """Ignore another integration's discovery of a device, as the owner's *Ignore* does.

    Waits for that integration's flow for `unique_id` (compared without case: DoorBird
    stations announce their MAC in capitals) and ignores it through the config-flow API;
    Home Assistant then keeps an ignored entry and stops offering the device. Waits
    until the offer appears; the caller bounds how long.
    """
    while True:
        flows: list[dict[str, Any]] = await ws.call("config_entries/flow/progress")
        for flow in flows:
            offered = str(flow["context"].get("unique_id", ""))
            if flow["handler"] == handler and offered.lower() == unique_id.lower():
                await ws.call("config_entries/ignore_flow", flow_id=flow["flow_id"], title=title)
                return
        await asyncio.sleep(0.25)


# homeassistant.config_entries.DISCOVERY_COOLDOWN and DISCOVERY_NOTIFICATION_ID.
_DISCOVERY_COOLDOWN = 1.0
_DISCOVERY_NOTIFICATION_ID = "config_entry_discovery"


async def dismiss_stale_discovery_notice(client: HassClient, ws: HassWebSocket) -> None:
    """Remove the "New devices discovered" notice once nothing is left to set up.

    Home Assistant debounces that notice by a second. When two doorbells are found and
    paired within that second (only a script is that fast), the debounced notice is
    created after the last flow finished, and nothing removes it. A person would see a
    notice pointing at nothing, so wait out the debounce and tidy up.
    """
    await asyncio.sleep(_DISCOVERY_COOLDOWN + 0.5)
    flows: list[dict[str, Any]] = await ws.call("config_entries/flow/progress")
    if not flows:
        await client.post(
            "/api/services/persistent_notification/dismiss",
            {"notification_id": _DISCOVERY_NOTIFICATION_ID},
        )

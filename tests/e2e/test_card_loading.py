"""Doorstep's two dashboard cards appear however the page's scripts race.

Home Assistant's index page imports its app bundle and each integration's extra modules
side by side, and the app bundle swaps ``window.customElements`` for a scoped-registry
polyfill when it runs. A card module that finished first and defined its element
straight away ended up in the registry being replaced, and the dashboard showed
"Configuration error" in its place until a reload: seen once in CI on the Answer view.

Here the browser gets Home Assistant's app bundle a few seconds late, so both card
modules are certain to run first. Each card must still be a working element on its
dashboard, not an error card.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from playwright.async_api import Route, async_playwright
import pytest

from scripts.lab.forward import TcpForwarder
from scripts.lab.hass import HASS_PORT, Owner
from scripts.lab.netns import Topology

from .conftest import HassInstance, Paired
from .test_live_view import CHROMIUM_ARGS, PacketCounters, packet_counters  # noqa: F401

pytestmark = pytest.mark.e2e

APP_BUNDLE_DELAY_S = 3.0

# Walks the dashboard's shadow roots for the cards configured as one of Doorstep's
# types, and answers what each of them holds: Doorstep's element, or an error card.
DOORSTEP_CARDS = """
() => {
  const cards = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      const type = el.tagName === "HUI-CARD" ? el.config?.type ?? "" : "";
      if (type.startsWith("custom:doorstep-")) {
        const inside = [...el.children, ...(el.shadowRoot?.children ?? [])];
        cards.push({ type, holds: inside.map((child) => child.tagName.toLowerCase()) });
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return cards;
}
"""


async def test_cards_survive_the_app_bundle_loading_after_them(
    hass_instance: HassInstance,
    paired: Paired,
    topology: Topology,
    packet_counters: PacketCounters,  # noqa: F811
    chromium_in_group: Path,
) -> None:
    forwarder = TcpForwarder("127.0.0.1", 0, topology.hub_uplink_address, HASS_PORT)
    await forwarder.start()
    url = f"http://127.0.0.1:{forwarder.bound_port}"
    owner = Owner()
    delayed: list[str] = []

    async def late_app_bundle(route: Route) -> None:
        delayed.append(route.request.url)
        await asyncio.sleep(APP_BUNDLE_DELAY_S)
        await route.continue_()

    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(chromium_in_group), args=CHROMIUM_ARGS
            )
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                await page.route("**/frontend_latest/app.*.js", late_app_bundle)
                await page.goto(f"{url}/lovelace/answer")
                await page.locator("input[name=username]").fill(owner.username)
                await page.locator("input[name=password]").fill(owner.password)
                await page.keyboard.press("Enter")
                await page.wait_for_url("**/lovelace/answer", timeout=20_000)
                seen: dict[str, list[dict[str, Any]]] = {}
                for path, tag in (
                    ("/lovelace/answer", "doorstep-live-card"),
                    ("/lovelace/doorbells", "doorstep-sharing-card"),
                ):
                    if not page.url.endswith(path):
                        await page.goto(f"{url}{path}")
                    await page.wait_for_function(
                        f"({DOORSTEP_CARDS})().some((card) => card.holds.includes({tag!r}))",
                        timeout=45_000,
                    )
                    seen[path] = await page.evaluate(DOORSTEP_CARDS)
            finally:
                await browser.close()
    finally:
        await forwarder.close()

    print(f"\ncard loading: app bundle delayed for {delayed}, seen {seen}")
    # The delay applied (otherwise this proves nothing), and each load got it.
    assert len(delayed) >= 2, delayed
    # Every card of Doorstep's on each dashboard is Doorstep's element, none an error.
    for path, cards in seen.items():
        assert cards, path
        for card in cards:
            assert card["type"].removeprefix("custom:") in card["holds"], (path, cards)
            assert "hui-error-card" not in card["holds"], (path, cards)

"""The sharing card end to end: a ring leaves a clip, an outside requester asks for it,
a household member who is not an admin tries the request's switch in the dashboard's
card in headless Chromium and is refused (inline, and on record), the owner turns it on,
and the requester then fetches the footage and verifies its signature.

The browser reaches Home Assistant through a forwarder on 127.0.0.1 and resolves no
name at all (every lookup answers "not found"). The dashboard also plays live video, so
the browser runs under the live-view test's nftables guard (its own group id; every
packet to anything but loopback and the lab is counted and dropped), with camera
permission so its ICE candidates need no mDNS multicast.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
import re
import shutil
from typing import Any

import aiohttp
from playwright.async_api import (
    Browser,
    Locator,
    Page,
    TimeoutError as PlaywrightTimeoutError,
    async_playwright,
)
import pytest

from scripts.lab.doorbell import Doorbell
from scripts.lab.forward import TcpForwarder
from scripts.lab.hass import HASS_PORT, REPO, HassWebSocket, Owner
from scripts.lab.netns import Topology
from scripts.lab.procs import within
from scripts.lab.requests import file_request, wait_and_verify

from .conftest import HassInstance, Paired

# The live-view test's browser guard, reused: pytest finds fixtures by these names.
from .test_live_view import PacketCounters, packet_counters  # noqa: F401

pytestmark = pytest.mark.e2e

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    # Plain host addresses in ICE candidates, never .local names answered by multicast.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
DASHBOARD_PATH = "/lovelace/doorbells"
SCREENSHOT = REPO / "artifacts" / "e2e" / "sharing_card.png"
SCREENSHOT_APPROVED = REPO / "artifacts" / "e2e" / "sharing_card_approved.png"
SCREENSHOT_REFUSED = REPO / "artifacts" / "e2e" / "sharing_card_refused.png"
FAILURE_SCREENSHOT = REPO / "artifacts" / "e2e" / "sharing_card_failure.png"
# How long to wait for the UI: generous, as the machine may be busy; not a speed target.
WAIT_MS = 45_000
MEMBER = ("member", "doorstep-member")  # a throwaway login in this run's lab
DOCS_SCREENSHOT = REPO / "docs" / "sharing-card.png"


async def _wait_for_clip(ws: HassWebSocket, device_id: str) -> None:
    """Until the ring's clip is in the media browser (pre- and post-roll take ~20 s)."""
    while True:
        folder = await ws.call(
            "media_source/browse_media",
            media_content_id=f"media-source://doorstep/{device_id}",
        )
        if folder.get("children"):
            return
        await asyncio.sleep(1)


async def _open_dashboard(
    browser: Browser, url: str, login: tuple[str, str], console: list[str]
) -> Page:
    """A fresh browser context logged in as ``login``, on the demo dashboard."""
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, device_scale_factor=2
    )
    # Camera permission: the dashboard also plays live video, and with it Chromium's
    # ICE candidates are plain addresses that need no mDNS.
    await context.grant_permissions(["camera", "microphone"], origin=url)
    page = await context.new_page()
    who = login[0]
    page.on("console", lambda message: console.append(f"{who} {message.type}: {message.text}"))
    page.on(
        "requestfailed",
        lambda request: console.append(f"{who} request failed: {request.url} {request.failure}"),
    )
    page.on(
        "response",
        lambda response: (
            console.append(f"{who} response: {response.status} {response.url}")
            if "doorstep" in response.url
            else None
        ),
    )
    await page.goto(f"{url}{DASHBOARD_PATH}")
    await page.locator("input[name=username]").fill(login[0])
    await page.locator("input[name=password]").fill(login[1])
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**{DASHBOARD_PATH}", timeout=WAIT_MS)
    return page


async def _wait_for_request(page: Page, request_id: str, console: list[str]) -> Locator:
    """The card's entry for ``request_id``; on a timeout, say what the card showed."""
    card = page.locator("doorstep-sharing-card")
    request = card.locator(f".request[data-request-id='{request_id}']")
    try:
        await request.wait_for(timeout=WAIT_MS)
    except PlaywrightTimeoutError:
        FAILURE_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(FAILURE_SCREENSHOT))
        shown = await card.all_inner_texts()
        defined = await page.evaluate(
            "() => ({ defined: !!customElements.get('doorstep-sharing-card'),"
            " cards: (window.customCards || []).map((c) => c.type),"
            " modules: [...document.querySelectorAll('script[type=module]')].map((s) => s.src),"
            " extra: window.__doorstepExtra })"
        )
        console.append(f"page state: {defined}")
        raise AssertionError(
            f"request {request_id} not in the card at {page.url}; card shows {shown!r}; "
            f"page in {FAILURE_SCREENSHOT}; browser said {console!r}"
        ) from None
    return request


def _audit_entries(config_dir: Path) -> list[dict[str, Any]]:
    path = config_dir / "doorstep" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_owner_approves_in_the_card_and_the_requester_verifies(
    hass_instance: HassInstance,
    paired: Paired,
    front_door: Doorbell,
    topology: Topology,
    hass_ws: HassWebSocket,
    session: aiohttp.ClientSession,
    packet_counters: PacketCounters,  # noqa: F811
    chromium_in_group: Path,
    tmp_path: Path,
) -> None:
    await front_door.press(session)
    async with within(90, "the ring's clip is recorded"):
        await _wait_for_clip(hass_ws, paired.device_id)

    # A requester made through the card's own command, then a request as a portal files it.
    created = await hass_ws.call(
        "doorstep/sharing/requester/create", name="Station North", kind="police"
    )
    token_file = tmp_path / "requester_token"
    token_file.write_text(created["token"] + "\n", encoding="utf-8")
    request_id = await file_request(hass_instance.base_url, token_file)

    # A household member who is not an admin, to see the card refuse them.
    member = await hass_ws.call(
        "config/auth/create", name="Member", group_ids=["system-users"], local_only=True
    )
    await hass_ws.call(
        "config/auth_provider/homeassistant/create",
        user_id=member["user"]["id"],
        username=MEMBER[0],
        password=MEMBER[1],
    )

    forwarder = TcpForwarder("127.0.0.1", 0, topology.hub_uplink_address, HASS_PORT)
    await forwarder.start()
    url = f"http://127.0.0.1:{forwarder.bound_port}"
    owner = Owner()
    console: list[str] = []
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(chromium_in_group), args=CHROMIUM_ARGS
            )
            try:
                # The member tries first: refused, shown in the card, nothing shared.
                page = await _open_dashboard(browser, url, MEMBER, console)
                request = await _wait_for_request(page, request_id, console)
                await request.locator(".share-toggle").click()
                error = request.locator(".error")
                await error.wait_for(timeout=WAIT_MS)
                # The translated refusal names what is missing: an administrator.
                assert "an administrator must turn on" in await error.inner_text()
                assert await request.locator(".chip.state-pending").count() == 1
                assert (
                    await request.locator(".share-toggle").evaluate("(el) => el.checked") is False
                )
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                await page.locator("doorstep-sharing-card").screenshot(path=str(SCREENSHOT_REFUSED))
                await page.context.close()

                page = await _open_dashboard(
                    browser, url, (owner.username, owner.password), console
                )
                card = page.locator("doorstep-sharing-card")
                request = await _wait_for_request(page, request_id, console)
                await request.locator(".chip.state-pending").wait_for()
                toggle = request.locator(".share-toggle")
                assert await toggle.evaluate("(el) => el.checked") is False
                assert "Station North" in await request.inner_text()
                assert "CASE-2026-114" in await request.inner_text()
                assert re.search(r"\b\d+ clips?, [\d.]+ s, ", await request.inner_text())
                # Let HA's own elements finish upgrading so the picture is the real one.
                await page.wait_for_function(
                    "() => customElements.get('ha-switch') !== undefined", timeout=10_000
                )
                await card.scroll_into_view_if_needed()
                await card.screenshot(path=str(SCREENSHOT))

                await toggle.click()
                await request.locator(".chip.state-approved").wait_for(timeout=WAIT_MS)
                assert await request.locator(".error").count() == 0
                assert await request.locator(".decline").count() == 0
                await card.screenshot(path=str(SCREENSHOT_APPROVED))
            finally:
                await browser.close()
    finally:
        await forwarder.close()
    if os.environ.get("DOORSTEP_UPDATE_DOCS") == "1":
        # Opt-in, so an ordinary test run leaves the tracked picture alone.
        shutil.copyfile(SCREENSHOT, DOCS_SCREENSHOT)
    packets = packet_counters.read()
    assert packets["browser_dns"] == 0, packets
    assert packets["browser_outside"] == 0, packets
    assert packets["browser_lab"] + packets["browser_loopback"] > 0, packets

    # The approval was the owner's, made in the browser and written to the audit log.
    owner_id = (await hass_ws.call("auth/current_user"))["id"]
    approvals = [
        entry
        for entry in _audit_entries(hass_instance.config_dir)
        if entry["kind"] == "approved" and entry["request"] == request_id
    ]
    assert [entry["actor"] for entry in approvals] == [f"user:{owner_id}"]
    # ...and the member's attempt before it is on record as refused.
    refusals = [
        entry
        for entry in _audit_entries(hass_instance.config_dir)
        if entry["kind"] == "refused" and entry["request"] == request_id
    ]
    assert [entry["actor"] for entry in refusals] == [f"user:{member['user']['id']}"]
    assert refusals[0]["details"]["reason"] == "not an admin"

    # And the requester, waiting outside, now gets the clip and verifies it.
    verified, lines = await wait_and_verify(
        hass_instance.base_url, token_file, request_id, tmp_path / "evidence", patience=30
    )
    print("\nrequester:\n  " + "\n  ".join(lines))
    assert verified, lines
    assert any(line.startswith("VERIFIED:") for line in lines), lines
    # Requests cut off by a navigation or a closed context (net::ERR_ABORTED) are not
    # the card's errors; anything else about it is.
    errors = [
        line
        for line in console
        if (" error: " in line or " request failed: " in line) and "ERR_ABORTED" not in line
    ]
    assert not [line for line in errors if "doorstep" in line.lower()], console

"""The sharing card end to end: a ring leaves a clip, an outside requester asks for it,
a household member who is not an admin tries the request's switch in the dashboard's
card in headless Chromium and is refused, and the owner turns it on. The switch opens a
confirmation naming what would leave (checked against the hub's own preview), a clip
thumbnail plays, a wrong password is refused in the card, and the owner's password
approves. The requester then fetches the footage and verifies its signature, the card
shows the request's history, the audit section checks the chain and exports the log,
and turning the switch off revokes: the request moves to the closed list.

Screenshots of the card with a pending request and of the confirmation, light and dark,
at 390 px and at desktop width, go to artifacts/e2e (and to docs/ with
DOORSTEP_UPDATE_DOCS=1).

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
ARTIFACTS = REPO / "artifacts" / "e2e"
SCREENSHOT_APPROVED = ARTIFACTS / "sharing_card_approved.png"
SCREENSHOT_REFUSED = ARTIFACTS / "sharing_card_refused.png"
SCREENSHOT_CLOSED = ARTIFACTS / "sharing_card_closed.png"
FAILURE_SCREENSHOT = ARTIFACTS / "sharing_card_failure.png"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# What docs/ shows: (theme, width) -> (the card with a pending request, the confirmation).
DOCS_SCREENSHOTS = {
    ("light", "desktop"): ("sharing-card.png", "sharing-card-confirm.png"),
    ("dark", "desktop"): ("sharing-card-dark.png", "sharing-card-confirm-dark.png"),
    ("light", "phone"): ("sharing-card-phone.png", "sharing-card-confirm-phone.png"),
    ("dark", "phone"): ("sharing-card-phone-dark.png", "sharing-card-confirm-phone-dark.png"),
}
WRONG_PASSWORD = "not-the-owner's-password"  # a deliberately wrong guess
# How long to wait for the UI: generous, as the machine may be busy; not a speed target.
WAIT_MS = 45_000
MEMBER = ("member", "doorstep-member")  # a throwaway login in this run's lab
DOCS = REPO / "docs"
TRANSLATIONS = REPO / "custom_components" / "doorstep" / "translations" / "en.json"


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
        viewport=DESKTOP, device_scale_factor=2, accept_downloads=True
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


def _exception_text(key: str) -> str:
    """The hub's refusal as the card must show it: the translated message, word for word."""
    translations = json.loads(TRANSLATIONS.read_text(encoding="utf-8"))
    return str(translations["exceptions"][key]["message"])


def _size_text(size: int) -> str:
    """A size as the card writes it (binary units, one decimal, English separators, a
    no-break space before the unit)."""
    if size < 1024:
        return f"{size:,}\u00a0B"
    if size < 1024 * 1024:
        return f"{size / 1024:,.1f}\u00a0KiB"
    return f"{size / (1024 * 1024):,.1f}\u00a0MiB"


async def _use_theme(page: Page, card: Locator, theme: str) -> None:
    """Switch the browser's colour scheme and wait until the card is drawn in it."""
    await page.emulate_media(color_scheme="dark" if theme == "dark" else "light")
    # Home Assistant's default theme follows the system scheme; wait for its colours.
    await card.evaluate(
        """(card, dark) => new Promise((resolve) => {
            const check = () => {
                const surface = card.shadowRoot.querySelector("ha-card") ?? card;
                const rgb = getComputedStyle(surface).backgroundColor.match(/\\d+/g).map(Number);
                const light = (rgb[0] + rgb[1] + rgb[2]) / 3 > 128;
                if (light !== dark) resolve(); else setTimeout(check, 100);
            };
            check();
        })""",
        theme == "dark",
    )


async def _shoot_everywhere(page: Page, card: Locator, which: int, taken: dict[str, Path]) -> None:
    """Screenshots in both themes at both widths: the card (which=0) or the dialog (1)."""
    for (theme, width), names in DOCS_SCREENSHOTS.items():
        await page.set_viewport_size(DESKTOP if width == "desktop" else PHONE)
        await _use_theme(page, card, theme)
        path = ARTIFACTS / names[which]
        if which == 0:
            await card.scroll_into_view_if_needed()
            await card.screenshot(path=str(path))
        elif width == "desktop":
            await card.locator("dialog").screenshot(path=str(path))
        else:
            # At phone width the whole screen: the dialog must fit it.
            await page.screenshot(path=str(path))
        taken[names[which]] = path
    await page.set_viewport_size(DESKTOP)
    await _use_theme(page, card, "light")


async def _open_confirmation(request: Locator, dialog: Locator) -> None:
    await request.locator(".share-toggle").click()
    await dialog.locator(".leaving").wait_for(timeout=WAIT_MS)


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
    # A clip that lands in the window after the preview was drawn makes the hub refuse
    # that preview once; the person then confirms the new one (counted here).
    stale_previews = 0
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
    # What the hub says would leave, to hold the card's confirmation against.
    preview = await hass_ws.call("doorstep/sharing/preview", request_id=request_id)
    assert preview["clip_count"] >= 1, preview

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
    screenshots: dict[str, Path] = {}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(chromium_in_group), args=CHROMIUM_ARGS
            )
            try:
                # The member tries first: the confirmation says they cannot, nothing shared.
                page = await _open_dashboard(browser, url, MEMBER, console)
                request = await _wait_for_request(page, request_id, console)
                dialog = page.locator("doorstep-sharing-card dialog")
                await request.locator(".share-toggle").click()
                refusal = dialog.locator(".error")
                await refusal.filter(has_text=re.compile(".+")).wait_for(timeout=WAIT_MS)
                assert await refusal.inner_text() == _exception_text("approval_needs_admin")
                assert await dialog.locator(".approve").count() == 0
                assert await dialog.locator("input[type=password]").count() == 0
                await page.screenshot(path=str(SCREENSHOT_REFUSED))
                await page.keyboard.press("Escape")
                await dialog.wait_for(state="hidden")
                assert await request.locator(".chip.state-pending").count() == 1
                await page.context.close()

                page = await _open_dashboard(
                    browser, url, (owner.username, owner.password), console
                )
                card = page.locator("doorstep-sharing-card")
                dialog = card.locator("dialog")
                request = await _wait_for_request(page, request_id, console)
                await request.locator(".chip.state-pending").wait_for()
                toggle = request.locator(".share-toggle")
                assert await toggle.evaluate("(el) => el.checked") is False
                shown = await request.inner_text()
                assert "Station North" in shown
                assert "CASE-2026-114" in shown
                assert re.search(r"\b\d+ clips?, [\d.,]+ s, ", shown), shown
                # Let HA's own elements finish upgrading so the pictures are the real ones.
                await page.wait_for_function(
                    "() => customElements.get('ha-switch') !== undefined", timeout=10_000
                )
                await _shoot_everywhere(page, card, 0, screenshots)

                # The visual editor: Home Assistant's form with the card's own labels, and
                # a change comes out as the dashboard's config-changed event.
                await page.evaluate(
                    """() => {
                        const Card = customElements.get("doorstep-sharing-card");
                        const editor = Card.getConfigElement();
                        editor.addEventListener("config-changed", (event) => {
                            window.__doorstepEditedConfig = event.detail.config;
                        });
                        editor.hass = document.querySelector("home-assistant").hass;
                        editor.setConfig(Card.getStubConfig());
                        // Where the dashboard's card editor dialog would show it: on top,
                        // not under the full-page <home-assistant> element.
                        editor.style.cssText =
                          "position:fixed;top:0;left:0;width:480px;z-index:10000;" +
                          "background:var(--card-background-color, white)";
                        document.body.append(editor);
                    }"""
                )
                editor = page.locator("doorstep-sharing-card-editor")
                await editor.get_by_text("Show closed requests").first.wait_for(timeout=WAIT_MS)
                await editor.locator("ha-switch, input[type=checkbox]").first.click()
                edited = await page.wait_for_function("() => window.__doorstepEditedConfig")
                assert (await edited.json_value())["show_closed"] is False
                await page.evaluate(
                    "() => document.querySelector('doorstep-sharing-card-editor').remove()"
                )

                # Escape closes the confirmation, and the switch stays off.
                # Keyboard: the confirmation opens with the password field focused, and
                # Escape gives focus back to the switch.
                await _open_confirmation(request, dialog)
                assert await dialog.get_attribute("aria-labelledby") == "confirm-title"
                await page.wait_for_function(
                    "(card) => card.shadowRoot.activeElement?.name === 'password'",
                    arg=await card.element_handle(),
                )
                await page.keyboard.press("Escape")
                await dialog.wait_for(state="hidden")
                assert await toggle.evaluate("(el) => el.checked") is False
                await page.wait_for_function(
                    "(card) => card.shadowRoot.activeElement?.classList.contains('share-toggle')",
                    arg=await card.element_handle(),
                )

                # The confirmation names exactly what the hub's preview says would leave.
                # The doorbell keeps recording (motion), so a clip may land in the
                # request's window while the dialog opens: compare against a preview whose
                # digest held still from before the dialog opened to after it was read.
                for _ in range(3):
                    preview = await hass_ws.call("doorstep/sharing/preview", request_id=request_id)
                    await _open_confirmation(request, dialog)
                    shown_count = await dialog.locator(".clip-count").inner_text()
                    again = await hass_ws.call("doorstep/sharing/preview", request_id=request_id)
                    if again["confirm"] == preview["confirm"]:
                        break
                    await page.keyboard.press("Escape")
                    await dialog.wait_for(state="hidden")
                else:
                    raise AssertionError("the request's clips kept changing")
                assert shown_count == str(preview["clip_count"])
                assert (
                    await dialog.locator(".total-duration").inner_text()
                    == f"{preview['total_duration_s']:,.1f} s"
                )
                assert await dialog.locator(".total-size").inner_text() == _size_text(
                    preview["total_bytes"]
                )
                assert await dialog.locator(".has-audio").inner_text() == (
                    "Yes, the clips contain sound" if preview["has_audio"] else "No sound"
                )
                destination = await dialog.locator(".destination").inner_text()
                if preview["destination"]["method"] == "pickup":
                    assert destination == "A one-time pickup link for the requester"
                else:
                    assert preview["destination"]["host"] in destination
                assert preview["expires_at"][:4] in await dialog.locator(".expires").inner_text()
                clip_ids = await dialog.locator("li.clip").evaluate_all(
                    "(items) => items.map((item) => item.dataset.clipId)"
                )
                assert clip_ids == [clip["id"] for clip in preview["clips"]]
                # Each thumbnail is a real picture, served to this logged-in browser.
                first = dialog.locator("li.clip").first
                await page.wait_for_function(
                    "(img) => img.complete && img.naturalWidth > 0",
                    arg=await first.locator(".thumb img").element_handle(),
                    timeout=WAIT_MS,
                )
                await _shoot_everywhere(page, card, 1, screenshots)

                # A thumbnail plays its clip in the card.
                await first.locator(".thumb").click()
                video = first.locator("video")
                await video.wait_for(timeout=WAIT_MS)
                await page.wait_for_function(
                    "(video) => video.readyState >= 2 && video.videoWidth > 0",
                    arg=await video.element_handle(),
                    timeout=WAIT_MS,
                )

                # A wrong password is refused in the card, and nothing is shared.
                password = dialog.locator("input[type=password]")
                await password.fill(WRONG_PASSWORD)
                await password.press("Enter")
                error = dialog.locator(".error")
                await error.filter(has_text=re.compile(".+")).wait_for(timeout=WAIT_MS)
                assert await error.inner_text() == _exception_text("step_up_failed")
                assert await error.get_attribute("role") == "alert"
                assert await password.input_value() == ""
                assert await request.locator(".chip.state-pending").count() == 1

                # The owner's password, with Enter, approves. If a clip in the window
                # changed after the preview was drawn, the hub refuses the stale preview and
                # the card shows the new one; the person confirms again, once.
                for attempt in range(2):
                    await password.fill(owner.password)
                    await password.press("Enter")
                    outcome = await _dialog_outcome(dialog)
                    if outcome is None:
                        break
                    assert attempt == 0, outcome
                    assert outcome == _exception_text("preview_stale"), outcome
                    stale_previews += 1
                await request.locator(".chip.state-approved, .chip.state-fulfilled").wait_for(
                    timeout=WAIT_MS
                )
                assert await request.locator(".error").count() == 0
                assert await request.locator(".decline").count() == 0
                live = card.locator("[role=status][aria-live=polite]")
                await live.filter(has_text="Shared with Station North").wait_for(timeout=WAIT_MS)
                approved = request.locator(".history li[data-event=approved]")
                await approved.wait_for(timeout=WAIT_MS)
                assert "(with password)" in await approved.inner_text()
                await card.screenshot(path=str(SCREENSHOT_APPROVED))

                # The requester, waiting outside, now gets the clip and verifies it...
                verified, lines = await wait_and_verify(
                    hass_instance.base_url,
                    token_file,
                    request_id,
                    tmp_path / "evidence",
                    patience=30,
                )
                print("\nrequester:\n  " + "\n  ".join(lines))
                assert verified, lines
                assert any(line.startswith("VERIFIED:") for line in lines), lines
                # ...and the card's history shows the download.
                await request.locator(".history li[data-event=downloaded]").wait_for(
                    timeout=WAIT_MS
                )

                # The audit section runs the chain check and shows its result.
                await card.locator("details.audit summary").click()
                result = card.locator(".chain-result")
                await result.wait_for(timeout=WAIT_MS)
                audit = await hass_ws.call("doorstep/sharing/audit")
                assert audit["chain"]["ok"] is True, audit["chain"]
                assert "ok-result" in (await result.get_attribute("class") or "")
                assert "The chain is intact" in await result.inner_text()
                rows = card.locator("table.audit-entries tbody tr")
                assert await rows.count() == min(len(audit["entries"]), 50)
                table = await card.locator("table.audit-entries").inner_text()
                assert request_id in table
                # People are named, beside the id the log keeps.
                assert f"{owner.name} (user:" in table
                await card.locator(".audit-check").click()
                await live.filter(has_text="The chain is intact").wait_for(timeout=WAIT_MS)

                # ...and exports the log as a file.
                try:
                    async with page.expect_download(timeout=WAIT_MS) as download_info:
                        await card.locator(".audit-export").click()
                    download = await download_info.value
                except PlaywrightTimeoutError:
                    shown = await card.locator("details.audit").inner_text()
                    raise AssertionError(
                        f"no export download; the audit section shows {shown!r}; "
                        f"browser said {[line for line in console if 'audit' in line]!r}"
                    ) from None
                exported = tmp_path / download.suggested_filename
                await download.save_as(str(exported))
                exported_lines = exported.read_text(encoding="utf-8").splitlines()
                assert len(exported_lines) >= len(audit["entries"])
                assert all(json.loads(line) for line in exported_lines)

                # Turning the switch off revokes at once; the request moves to the closed list.
                await toggle.click()
                await request.wait_for(state="detached", timeout=WAIT_MS)
                await card.locator("details.closed summary").click()
                closed = card.locator(f".closed-request[data-request-id='{request_id}']")
                await closed.locator(".chip.outcome-revoked").wait_for(timeout=WAIT_MS)
                # The gate announces the close again once its audit entry is written, so
                # the closed list ends with the revoke itself.
                await closed.locator(".history li[data-event='revoked']").wait_for(timeout=WAIT_MS)
                events = await closed.locator(".history li").evaluate_all(
                    "(items) => items.map((item) => item.dataset.event)"
                )
                assert events[:3] == ["filed", "approved", "pickup_created"], events
                assert "downloaded" in events, events
                assert events[-1] == "revoked", events
                await card.screenshot(path=str(SCREENSHOT_CLOSED))
            finally:
                await browser.close()
    finally:
        await forwarder.close()
    if os.environ.get("DOORSTEP_UPDATE_DOCS") == "1":
        # Opt-in, so an ordinary test run leaves the tracked pictures alone.
        for name, path in screenshots.items():
            shutil.copyfile(path, DOCS / name)
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
    assert approvals[0]["details"].get("verified_by"), approvals
    # ...and the member's look and the wrong password before it are on record as refused.
    refusals = [
        (entry["actor"], entry["details"]["action"], entry["details"]["reason"])
        for entry in _audit_entries(hass_instance.config_dir)
        if entry["kind"] == "refused" and entry["request"] == request_id
    ]
    assert refusals == [
        (f"user:{member['user']['id']}", "preview", "approval_needs_admin"),
        (f"user:{owner_id}", "approve", "step_up_failed"),
        *[(f"user:{owner_id}", "approve", "preview_stale")] * stale_previews,
    ]
    # Requests cut off by a navigation or a closed context (net::ERR_ABORTED) are not
    # the card's errors; anything else about it is.
    errors = [
        line
        for line in console
        if (" error: " in line or " request failed: " in line) and "ERR_ABORTED" not in line
    ]
    assert not [line for line in errors if "doorstep" in line.lower()], console


async def _dialog_outcome(dialog: Locator) -> str | None:
    """None once the confirmation closed (approved); else the error it shows."""
    closed = asyncio.ensure_future(dialog.wait_for(state="hidden", timeout=WAIT_MS))
    refused = asyncio.ensure_future(
        dialog.locator(".error")
        .filter(has_text=re.compile(".+"))
        .filter(has_not_text=_exception_text("step_up_failed"))
        .wait_for(timeout=WAIT_MS)
    )
    done, pending = await asyncio.wait({closed, refused}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if closed in done and closed.exception() is None:
        return None
    if refused in done and refused.exception() is None:
        return await dialog.locator(".error").inner_text()
    raise AssertionError(
        f"the confirmation neither closed nor said why: {await dialog.inner_text()}"
    )

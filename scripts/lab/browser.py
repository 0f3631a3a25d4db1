"""Chromium on a lab's Home Assistant, logged in as the owner, for the browser tests.

The browser runs in the root namespace and reaches Home Assistant through a forwarder
on 127.0.0.1 (a secure context, so WebRTC and the microphone are allowed). Camera and
microphone permission are granted: with them Chromium's ICE candidates are plain
addresses, so no mDNS multicast is needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
import time

from playwright.async_api import Page, ViewportSize, async_playwright

from .forward import TcpForwarder
from .hass import HASS_PORT, Owner

DESKTOP: ViewportSize = {"width": 1280, "height": 900}
LOGIN_TIMEOUT_MS = 20_000


@dataclass(kw_only=True)
class OpenPage:
    """A logged-in page, its console's errors and warnings, and when it was opened."""

    page: Page
    url: str
    opened_at: float
    console: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def logged_in_page(
    *,
    chromium: Path,
    args: Sequence[str],
    hub_address: str,
    path: str,
    owner: Owner,
    init_scripts: Sequence[str] = (),
) -> AsyncIterator[OpenPage]:
    """Open ``path`` on the hub at ``hub_address`` and log in on the way.

    ``init_scripts`` run in the page before Home Assistant's own code (recorders, finders).
    Not logged in yet, Home Assistant sends the browser to its login page and back to
    ``path`` afterwards; ``opened_at`` is the monotonic time just before that.
    """
    forwarder = TcpForwarder("127.0.0.1", 0, hub_address, HASS_PORT)
    await forwarder.start()
    url = f"http://127.0.0.1:{forwarder.bound_port}"
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(chromium), args=list(args)
            )
            try:
                context = await browser.new_context(viewport=DESKTOP)
                await context.grant_permissions(["camera", "microphone"], origin=url)
                page = await context.new_page()
                opened = OpenPage(page=page, url=url, opened_at=0.0)
                page.on(
                    "console",
                    lambda message: (
                        opened.console.append(f"{message.type}: {message.text}")
                        if message.type in ("error", "warning")
                        else None
                    ),
                )
                for script in init_scripts:
                    await page.add_init_script(script)
                opened.opened_at = time.monotonic()
                await page.goto(f"{url}{path}")
                await page.locator("input[name=username]").fill(owner.username)
                await page.locator("input[name=password]").fill(owner.password)
                await page.keyboard.press("Enter")
                await page.wait_for_url(f"**{path}", timeout=LOGIN_TIMEOUT_MS)
                yield opened
            finally:
                await browser.close()
    finally:
        await forwarder.close()

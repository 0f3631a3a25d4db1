"""Screenshots of a running demo, to look at: the dashboard, the Answer view and the
sharing card, light and dark, at desktop and phone (390 px) width.

    scripts/demo &                       # as root, in another terminal
    .venv/bin/python -m scripts.lab.screenshots --out artifacts/screenshots

Debian's Chromium, driven by Playwright, logs in as the demo owner on the printed URL
(127.0.0.1). Every host name but localhost resolves to "not found" in the browser, and
camera permission keeps its ICE candidates plain addresses (no mDNS multicast), so the
browser talks only to loopback and, for live video, the demo's own namespaces.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path
import sys

from playwright.async_api import Page, ViewportSize, async_playwright

from .hass import HASS_PORT, REPO, Owner

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    # The live card asks for a microphone; a fake one, muted until someone holds Talk.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
# Tall enough that each view fits without scrolling Home Assistant's inner container.
SIZES: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 1000},
    "phone": {"width": 390, "height": 2400},
}
THEMES = ("light", "dark")
WAIT_MS = 45_000

# Every <video> on the page, through the shadow roots, and how many show a picture.
VIDEOS_PLAYING = """
() => {
  const videos = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "VIDEO") videos.push(el);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return videos.filter((video) => video.videoWidth > 0).length;
}
"""

# Press "Start live view" on every live card of the view.
START_LIVE_CARDS = """
() => {
  let started = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "DOORSTEP-LIVE-CARD") {
        el.shadowRoot.querySelector("button.start")?.click();
        started += 1;
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return started;
}
"""


async def _log_in(page: Page, url: str, owner: Owner) -> None:
    await page.goto(f"{url}/lovelace/doorbells")
    await page.locator("input[name=username]").fill(owner.username)
    await page.locator("input[name=password]").fill(owner.password)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/lovelace/doorbells", timeout=WAIT_MS)


async def _wait_for_videos(page: Page, count: int) -> None:
    await page.wait_for_function(f"({VIDEOS_PLAYING})() >= {count}", timeout=WAIT_MS)


async def _use_theme(page: Page, theme: str) -> None:
    """Home Assistant's default theme follows the browser's colour scheme."""
    await page.emulate_media(color_scheme="dark" if theme == "dark" else "light")
    dark = "true" if theme == "dark" else "false"
    await page.wait_for_function(
        "(() => { const ha = document.querySelector('home-assistant');"
        f" return ha?.hass?.themes?.darkMode === {dark}; }})()",
        timeout=WAIT_MS,
    )
    # A moment for the cards to repaint in the new colours.
    await page.wait_for_timeout(800)


async def shoot(url: str, out: Path, owner: Owner) -> list[Path]:
    """Take every screenshot; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for size_name, size in SIZES.items():
                context = await browser.new_context(viewport=size)
                await context.grant_permissions(["camera", "microphone"], origin=url)
                page = await context.new_page()
                await _log_in(page, url, owner)
                # The dashboard: three doors live, their entities and the sharing card.
                await _wait_for_videos(page, 3)
                card = page.locator("doorstep-sharing-card")
                await card.locator(".request").first.wait_for(timeout=WAIT_MS)
                # The whole view first: shooting the card scrolls the page down to it.
                for theme in THEMES:
                    await _use_theme(page, theme)
                    path = out / f"dashboard-{theme}-{size_name}.png"
                    await page.screenshot(path=str(path))
                    taken.append(path)
                for theme in THEMES:
                    await _use_theme(page, theme)
                    path = out / f"sharing-card-{theme}-{size_name}.png"
                    await card.scroll_into_view_if_needed()
                    await card.screenshot(path=str(path))
                    taken.append(path)
                # The Answer view, with both live cards playing.
                await page.goto(f"{url}/lovelace/answer")
                await page.wait_for_function(f"({START_LIVE_CARDS})() >= 2", timeout=WAIT_MS)
                await _wait_for_videos(page, 2)
                for theme in THEMES:
                    await _use_theme(page, theme)
                    path = out / f"answer-{theme}-{size_name}.png"
                    await page.screenshot(path=str(path))
                    taken.append(path)
                await context.close()
        finally:
            await browser.close()
    return taken


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{HASS_PORT}")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "screenshots")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for path in asyncio.run(shoot(args.url, args.out, Owner())):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

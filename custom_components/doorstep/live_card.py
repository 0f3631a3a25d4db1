"""Serve the live player card (``frontend/doorstep-live-card.js``) on every dashboard.

Kept apart from the sharing card's registration so each card's file and URL have one
owner. As with the sharing card, the URL carries a hash of the content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from homeassistant.components.http import StaticPathConfig
from homeassistant.core import HomeAssistant

LIVE_CARD_FILE = Path(__file__).parent / "frontend" / "doorstep-live-card.js"
LIVE_CARD_URL = "/doorstep/frontend/doorstep-live-card.js"


def _content_version() -> str:
    return hashlib.sha256(LIVE_CARD_FILE.read_bytes()).hexdigest()[:12]


async def async_register_live_card(hass: HomeAssistant) -> None:
    """Serve the module and, when the frontend runs, load it on every dashboard."""
    await hass.http.async_register_static_paths(
        [StaticPathConfig(LIVE_CARD_URL, str(LIVE_CARD_FILE), cache_headers=True)]
    )
    if "frontend" not in hass.config.components:
        return
    # Imported here: the frontend integration is only an after-dependency.
    from homeassistant.components.frontend import add_extra_js_url

    version = await hass.async_add_executor_job(_content_version)
    add_extra_js_url(hass, f"{LIVE_CARD_URL}?v={version}")

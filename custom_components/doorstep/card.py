"""Serve the sharing card and have every dashboard load it.

The card is one dependency-free JavaScript module in ``frontend/``, so there is no build
step to forget. Its URL carries a hash of its content: browsers may cache it for as
long as they like, and an update still reaches them at once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from homeassistant.components.http import StaticPathConfig
from homeassistant.core import HomeAssistant

CARD_FILE = Path(__file__).parent / "frontend" / "doorstep-sharing-card.js"
CARD_URL = "/doorstep/frontend/doorstep-sharing-card.js"


def _content_version() -> str:
    return hashlib.sha256(CARD_FILE.read_bytes()).hexdigest()[:12]


async def async_register_card(hass: HomeAssistant) -> None:
    """Serve the card's module and, when the frontend runs, load it on every dashboard."""
    await hass.http.async_register_static_paths(
        [StaticPathConfig(CARD_URL, str(CARD_FILE), cache_headers=True)]
    )
    if "frontend" not in hass.config.components:
        # Home Assistant without its UI (some tests, headless setups): nothing to load into.
        return
    # Imported here: the frontend integration is only an after-dependency.
    from homeassistant.components.frontend import add_extra_js_url

    version = await hass.async_add_executor_job(_content_version)
    add_extra_js_url(hass, f"{CARD_URL}?v={version}")

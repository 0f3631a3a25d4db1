"""Serve Doorstep's dashboard cards and have every dashboard load them.

Each card is one dependency-free JavaScript module in ``frontend/``, so there is no build
step to forget: the sharing card (requests and their approval) and the live card
(picture, sound and hold-to-talk). Each URL carries a hash of the file's content:
browsers may cache a card for as long as they like, and an update still reaches them at
once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from homeassistant.components.http import StaticPathConfig
from homeassistant.core import HomeAssistant

FRONTEND_DIR = Path(__file__).parent / "frontend"
URL_PREFIX = "/doorstep/frontend"
CARD_FILES = (
    FRONTEND_DIR / "doorstep-sharing-card.js",
    FRONTEND_DIR / "doorstep-live-card.js",
)


def _content_versions() -> dict[Path, str]:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest()[:12] for path in CARD_FILES}


async def async_register_cards(hass: HomeAssistant) -> None:
    """Serve the cards' modules and, when the frontend runs, load them on every dashboard."""
    await hass.http.async_register_static_paths(
        [
            StaticPathConfig(f"{URL_PREFIX}/{path.name}", str(path), cache_headers=True)
            for path in CARD_FILES
        ]
    )
    if "frontend" not in hass.config.components:
        # Home Assistant without its UI (some tests, headless setups): nothing to load into.
        return
    # Imported here: the frontend integration is only an after-dependency.
    from homeassistant.components.frontend import add_extra_js_url

    versions = await hass.async_add_executor_job(_content_versions)
    for path, version in versions.items():
        add_extra_js_url(hass, f"{URL_PREFIX}/{path.name}?v={version}")

"""Print the requirements of the integrations Home Assistant sets up at every start.

Home Assistant 2026 sets up its default integrations and every base entity platform
(conversation, tts, assist_satellite, ...) even without `default_config`, and installs
their requirements on first start. The tests and the demo start Home Assistant with
--skip-pip, so scripts/setup installs these beforehand (under HA's constraints): then
those integrations load as on a user's hub, and their logs hold no import errors.
Doorstep's own dependencies (camera, stream, frontend, ...) are included.
"""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant import bootstrap
from homeassistant.const import Platform

# What Doorstep's manifest and the demo's configuration.yaml pull in besides the defaults.
DOORSTEP_NEEDS = (
    "api",
    "camera",
    "config",
    "device_automation",
    "diagnostics",
    "doorbell",
    "http",
    "lovelace",
    "media_source",
    "onboarding",
    "repairs",
    "stream",
    "web_rtc",
    "websocket_api",
    "zeroconf",
)


def requirements() -> list[str]:
    components = Path(bootstrap.__file__).parent / "components"
    wanted = [*bootstrap.DEFAULT_INTEGRATIONS, *(p.value for p in Platform), *DOORSTEP_NEEDS]
    seen: set[str] = set()
    found: set[str] = set()
    while wanted:
        domain = wanted.pop()
        if domain in seen:
            continue
        seen.add(domain)
        manifest = components / domain / "manifest.json"
        if not manifest.exists():
            continue
        data = json.loads(manifest.read_text())
        found.update(data.get("requirements", []))
        wanted.extend(data.get("dependencies", []))
    return sorted(found)


if __name__ == "__main__":
    print("\n".join(requirements()))

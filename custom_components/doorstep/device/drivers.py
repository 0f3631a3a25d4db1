"""From a stored configuration to the right :class:`Doorbell` driver."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

import aiohttp

from .doorbird import DRIVER_DOORBIRD, DoorBirdDoorbell
from .doorstep_driver import DRIVER_DOORSTEP, DoorstepDoorbell
from .interface import Doorbell
from .onvif import DRIVER_ONVIF, OnvifDoorbell
from .rtsp import DRIVER_RTSP, RtspCamera

# Which driver a configuration is for. Configurations stored before there was more than
# one driver have no such key, and are Doorstep doorbells.
KEY_DRIVER: Final = "driver"


class DriverFactory(Protocol):
    """Builds a driver from a stored configuration."""

    def __call__(
        self,
        session: aiohttp.ClientSession,
        config: Mapping[str, Any],
        *,
        hub_url: str | None = None,
    ) -> Doorbell:
        """``hub_url`` is where devices that push events reach the hub."""


_DRIVERS: dict[str, DriverFactory] = {
    DRIVER_DOORSTEP: DoorstepDoorbell.from_config,
    DRIVER_RTSP: RtspCamera.from_config,
    DRIVER_DOORBIRD: DoorBirdDoorbell.from_config,
    DRIVER_ONVIF: OnvifDoorbell.from_config,
}


def driver_of(config: Mapping[str, Any]) -> str:
    """The driver key of a stored configuration."""
    driver = config.get(KEY_DRIVER, DRIVER_DOORSTEP)
    return driver if isinstance(driver, str) else ""


def create_doorbell(
    session: aiohttp.ClientSession, config: Mapping[str, Any], *, hub_url: str | None = None
) -> Doorbell:
    """The device a stored configuration describes; ValueError for an unknown driver."""
    driver = driver_of(config)
    factory = _DRIVERS.get(driver)
    if factory is None:
        raise ValueError(f"no driver called {driver!r}")
    return factory(session, config, hub_url=hub_url)

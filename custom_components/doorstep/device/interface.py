"""What any doorbell or camera gives the hub, whoever made it.

Each driver (the Doorstep protocol, an RTSP camera added by hand, ...) implements
:class:`Doorbell`. The Home Assistant glue holds a ``Doorbell`` and nothing more specific:
it learns what the device can do from :class:`Capabilities`, never from its brand.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from .exceptions import FingerprintMismatch, TalkBackUnsupported
from .models import DoorbellEvent
from .talk import TalkChannel


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Who the device is, as the hub shows it (the device registry, diagnostics)."""

    device_id: str
    name: str
    model: str
    firmware: str | None
    # None when the driver cannot know it (a camera added by its URL).
    manufacturer: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a device offers beyond live video, which every device has."""

    # A button: a doorbell. Without one it is a camera, and gets no doorbell entity.
    has_button: bool
    has_motion: bool
    has_snapshot: bool
    # A speaker the hub can talk through (:meth:`Doorbell.open_talk`).
    has_talk_back: bool = False
    # Sound in the live stream; the codec's name (``opus``), or None for video only.
    microphone: str | None = None


class HttpStreamEndpoint(Protocol):
    """A stream fetched by aiohttp with a pinned certificate (``media.StreamEndpoint``)."""

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session requests go through."""

    def stream_url(self) -> str:
        """URL of the MPEG-TS stream."""

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate the request."""

    def ssl_pin(self) -> aiohttp.Fingerprint:
        """The pinned certificate fingerprint."""


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """Where live video comes from: exactly one of ``endpoint`` and ``url``.

    ``url`` is opened by PyAV itself and may carry credentials, so it must never be
    logged as it is.
    """

    endpoint: HttpStreamEndpoint | None = None
    url: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.endpoint is None) == (self.url is None):
            raise ValueError("give exactly one of endpoint and url")


class EventSink(Protocol):
    """Where a driver reports what happens at the door (the hub's coordinator)."""

    def handle_event(self, event: DoorbellEvent) -> None:
        """A ring or motion change (or, first, the current motion state)."""

    def handle_connection_change(self, connected: bool) -> None:
        """The device became reachable, or stopped being reachable."""

    def handle_auth_failed(self) -> None:
        """The device no longer accepts the hub's credentials."""

    def handle_fingerprint_mismatch(self, err: FingerprintMismatch) -> None:
        """Something with another certificate answers at the device's address."""


class Doorbell(ABC):
    """One device, as the hub uses it. Errors raised are :class:`DoorstepError` s."""

    @property
    @abstractmethod
    def driver(self) -> str:
        """The driver's key, as stored in the config entry."""

    @property
    @abstractmethod
    def host(self) -> str:
        """The device's host name or address, for messages to the owner."""

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities:
        """What the device offers."""

    @abstractmethod
    async def connect(self) -> DeviceIdentity:
        """Check the device answers as the device the hub knows, and say who it is."""

    @abstractmethod
    def stream(self) -> StreamSpec:
        """Where to read live H.264 from."""

    @abstractmethod
    async def snapshot(self) -> bytes:
        """The current picture as JPEG bytes (only when ``has_snapshot``)."""

    @abstractmethod
    async def run_events(self, sink: EventSink) -> None:
        """Report events and reachability to ``sink`` until cancelled.

        Returns early only when carrying on cannot help (the credentials were refused).
        """

    async def forget(self) -> None:  # noqa: B027 -- most devices have nothing to undo
        """Undo on the device what the hub set up there, as the entry is removed."""

    def handle_push(self, event_name: str) -> bool:
        """An event the device sent to the hub's push URL; False when it means nothing.

        Only devices that call the hub (rather than the hub calling them) get these.
        """
        return False

    async def open_talk(self, *, name: str) -> TalkChannel:
        """Take the speaker's floor for one talk (only when ``has_talk_back``).

        Raises :class:`TalkBusy` when someone else talks through the device, and
        :class:`TalkBackUnsupported` when it has no speaker.
        """
        raise TalkBackUnsupported(f"{self.host} has no speaker the hub can talk through")

    async def outside_services(self) -> tuple[str, ...]:
        """Names of services the device itself sends data to outside the house."""
        return ()

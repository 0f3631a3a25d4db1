"""The Doorstep protocol (docs/protocol.md) as one :class:`Doorbell` driver."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

import aiohttp

from .client import DoorstepClient
from .events import EventStream
from .interface import Capabilities, DeviceIdentity, Doorbell, EventSink, StreamSpec
from .talk import TalkChannel

DRIVER_DOORSTEP: Final = "doorstep"

# Keys of the stored pairing (the same strings Home Assistant's CONF_HOST, CONF_PORT use).
KEY_HOST: Final = "host"
KEY_PORT: Final = "port"
KEY_FINGERPRINT: Final = "fingerprint"
KEY_TOKEN: Final = "token"  # noqa: S105 -- a key name, not a secret

_CAPABILITIES: Final = Capabilities(has_button=True, has_motion=True, has_snapshot=True)


class DoorstepDoorbell(Doorbell):
    """A paired doorbell that speaks the Doorstep protocol over pinned HTTPS."""

    def __init__(self, client: DoorstepClient) -> None:
        self._client = client
        self._capabilities = _CAPABILITIES

    @classmethod
    def from_config(
        cls,
        session: aiohttp.ClientSession,
        config: Mapping[str, Any],
        *,
        hub_url: str | None = None,
    ) -> DoorstepDoorbell:
        """The doorbell a stored pairing describes."""
        return cls(
            DoorstepClient(
                session,
                config[KEY_HOST],
                config[KEY_PORT],
                fingerprint=config[KEY_FINGERPRINT],
                token=config[KEY_TOKEN],
            )
        )

    @property
    def client(self) -> DoorstepClient:
        """The protocol client underneath."""
        return self._client

    @property
    def driver(self) -> str:
        """``doorstep``."""
        return DRIVER_DOORSTEP

    @property
    def host(self) -> str:
        """Where the doorbell answers."""
        return self._client.host

    @property
    def capabilities(self) -> Capabilities:
        """A button, motion and snapshots; sound as ``/v1/info`` announced it (v1.1)."""
        return self._capabilities

    async def connect(self) -> DeviceIdentity:
        """``GET /v1/info`` over the pinned certificate."""
        info = await self._client.get_info()
        self._capabilities = replace(
            _CAPABILITIES, has_talk_back=info.speaker, microphone=info.microphone
        )
        return DeviceIdentity(
            device_id=info.device_id, name=info.name, model=info.model, firmware=info.firmware
        )

    def stream(self) -> StreamSpec:
        """``/v1/stream.ts``, fetched by aiohttp so the pin is checked."""
        return StreamSpec(endpoint=self._client)

    async def snapshot(self) -> bytes:
        """``GET /v1/snapshot.jpg``."""
        return await self._client.snapshot()

    async def run_events(self, sink: EventSink) -> None:
        """The ``/v1/events`` WebSocket, kept open with backoff."""
        stream = EventStream(
            self._client,
            on_event=sink.handle_event,
            on_connection_change=sink.handle_connection_change,
            on_auth_failed=sink.handle_auth_failed,
            on_fingerprint_mismatch=sink.handle_fingerprint_mismatch,
        )
        await stream.run()

    async def open_talk(self, *, name: str) -> TalkChannel:
        """``/v1/talk`` over the pinned certificate (protocol v1.1)."""
        return await self._client.open_talk(name=name)

    async def forget(self) -> None:
        """``DELETE /v1/pair``: the doorbell drops this hub's token."""
        await self._client.unpair()

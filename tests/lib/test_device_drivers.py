"""The device interface and its driver registry, with the Doorstep protocol driver run
against a real reference doorbell on loopback."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
import pytest

from custom_components.doorstep.device import (
    DRIVER_DOORSTEP,
    KEY_DRIVER,
    DeviceIdentity,
    DoorbellEvent,
    DoorstepClient,
    DoorstepDoorbell,
    EventType,
    FingerprintMismatch,
    StreamSpec,
    create_doorbell,
    driver_of,
)
from custom_components.doorstep.media import StreamSource

if TYPE_CHECKING:
    from reference_doorbell.doorbell import Doorbell as ReferenceDoorbell


class RecordingSink:
    """An event sink that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[DoorbellEvent] = []
        self.connection: list[bool] = []
        self.auth_failures = 0
        self.mismatches: list[FingerprintMismatch] = []
        self.changed = asyncio.Event()

    def handle_event(self, event: DoorbellEvent) -> None:
        self.events.append(event)
        self.changed.set()

    def handle_connection_change(self, connected: bool) -> None:
        self.connection.append(connected)
        self.changed.set()

    def handle_auth_failed(self) -> None:
        self.auth_failures += 1
        self.changed.set()

    def handle_fingerprint_mismatch(self, err: FingerprintMismatch) -> None:
        self.mismatches.append(err)
        self.changed.set()

    async def wait_until(self, check: object, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not check():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


async def _paired_config(
    session: aiohttp.ClientSession, bell: ReferenceDoorbell
) -> dict[str, object]:
    client = DoorstepClient(session, "127.0.0.1", bell.port, fingerprint=bell.fingerprint)
    token = await client.pair(bell.pairing_code, "tests")
    # What a config entry stored before there was more than one driver: no driver key.
    return {
        "host": "127.0.0.1",
        "port": bell.port,
        "fingerprint": bell.fingerprint,
        "token": token,
        "device_id": bell.device_id,
    }


async def test_a_config_without_a_driver_is_a_doorstep_doorbell(
    session: aiohttp.ClientSession, bell: ReferenceDoorbell
) -> None:
    config = await _paired_config(session, bell)
    assert driver_of(config) == DRIVER_DOORSTEP
    doorbell = create_doorbell(session, config)
    assert isinstance(doorbell, DoorstepDoorbell)
    assert doorbell.driver == DRIVER_DOORSTEP
    assert doorbell.host == "127.0.0.1"
    capabilities = doorbell.capabilities
    assert capabilities.has_button
    assert capabilities.has_motion
    assert capabilities.has_snapshot
    assert not capabilities.has_talk_back


async def test_unknown_driver_is_refused(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match="no driver called 'acme'"):
        create_doorbell(session, {KEY_DRIVER: "acme"})


async def test_doorstep_driver_says_who_the_doorbell_is(
    session: aiohttp.ClientSession, bell: ReferenceDoorbell
) -> None:
    doorbell = create_doorbell(session, await _paired_config(session, bell))
    identity = await doorbell.connect()
    assert identity == DeviceIdentity(
        device_id=bell.device_id,
        name="Front door",
        model="Doorstep Reference Doorbell",
        firmware=identity.firmware,
        manufacturer=None,
    )
    assert identity.firmware


async def test_doorstep_driver_refuses_another_certificate(
    session: aiohttp.ClientSession, bell: ReferenceDoorbell
) -> None:
    config = await _paired_config(session, bell)
    config["fingerprint"] = "ab" * 32
    with pytest.raises(FingerprintMismatch):
        await create_doorbell(session, config).connect()


async def test_doorstep_driver_snapshot_and_stream(
    session: aiohttp.ClientSession, bell: ReferenceDoorbell
) -> None:
    doorbell = create_doorbell(session, await _paired_config(session, bell))
    assert (await doorbell.snapshot()).startswith(b"\xff\xd8")
    spec = doorbell.stream()
    assert spec.url is None
    assert spec.endpoint is not None
    source = StreamSource.from_doorbell(spec.endpoint, name="drivers test")
    packets = source.packets()
    try:
        async with asyncio.timeout(10):
            first = await anext(packets)
    finally:
        await packets.aclose()
    assert first.is_keyframe


async def test_doorstep_driver_reports_events_to_the_sink(
    session: aiohttp.ClientSession, bell: ReferenceDoorbell
) -> None:
    doorbell = create_doorbell(session, await _paired_config(session, bell))
    sink = RecordingSink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_until(lambda: sink.connection == [True])
        await bell.ring()
        await bell.set_motion(True)
        await sink.wait_until(lambda: len(sink.events) >= 3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [event.type for event in sink.events] == [
        EventType.HELLO,
        EventType.RING,
        EventType.MOTION_START,
    ]


async def test_doorstep_driver_reports_a_revoked_token(
    session: aiohttp.ClientSession, bell: ReferenceDoorbell
) -> None:
    doorbell = create_doorbell(session, await _paired_config(session, bell))
    bell.revoke_all_tokens()
    sink = RecordingSink()
    async with asyncio.timeout(5):
        await doorbell.run_events(sink)  # returns: retrying cannot help
    assert sink.auth_failures == 1


async def test_doorstep_driver_forget_unpairs(
    session: aiohttp.ClientSession, bell: ReferenceDoorbell
) -> None:
    doorbell = create_doorbell(session, await _paired_config(session, bell))
    assert bell.paired_client_count == 1
    await doorbell.forget()
    assert bell.paired_client_count == 0


def test_stream_spec_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        StreamSpec()
    StreamSpec(url="rtsp://127.0.0.1/door")

"""A viewer in a separate process receives the doorbell's video through the hub's relay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
from pathlib import Path
import sys

import aiohttp
import pytest

from custom_components.doorstep.device.client import DoorstepClient
from custom_components.doorstep.media import (
    Backoff,
    MediaRelay,
    NetworkPolicy,
    SessionManager,
    StreamSource,
)
from reference_doorbell.doorbell import Doorbell

VIEWER = Path(__file__).with_name("process_viewer.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def relay(bell: Doorbell, session: aiohttp.ClientSession) -> AsyncIterator[MediaRelay]:
    """The doorbell's stream, relayed."""
    client = DoorstepClient(session, "127.0.0.1", bell.port, fingerprint=bell.fingerprint)
    client.set_token(await client.pair(bell.pairing_code, "process viewer test"))
    source = StreamSource.from_doorbell(client, backoff=Backoff(initial=0.05, maximum=0.2))
    media_relay = MediaRelay(source.packets, name="front", grace_period=0)
    yield media_relay
    await media_relay.close()


async def test_viewer_in_another_process(
    relay: MediaRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offer and answer cross a process boundary; decoded counters come back advancing."""
    monkeypatch.setattr("aioice.ice.get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    sessions = SessionManager(policy=NetworkPolicy.loopback_only())
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(VIEWER),
        "10",
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            offer = json.loads(await process.stdout.readline())["offer"]
            session = sessions.create(relay)
            answer = await session.handle_offer(offer)
            process.stdin.write(json.dumps({"answer": answer}).encode() + b"\n")
            await process.stdin.drain()
            report = json.loads(await process.stdout.readline())
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await sessions.close_all()
    counters = report["counters"]
    assert len(counters) == 10, report
    assert counters == sorted(counters)
    assert counters[-1] > counters[0]

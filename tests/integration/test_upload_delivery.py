"""Upload delivery inside Home Assistant: an admin's switch flip sends the archive to the
reference requester's HTTPS server (in-process, on 127.0.0.1), which verifies it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
import hashlib
import json
from pathlib import Path
import threading
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    MockHAClientWebSocket,
)

from custom_components.doorstep.const import DOMAIN
from custom_components.doorstep.media.clips import ClipRecord, ClipStore
from custom_components.doorstep.recording import DATA_CLIPS
from custom_components.doorstep.sharing import RequesterKind, RequestState
from custom_components.doorstep.sharing_hub import SharingHub
from custom_components.doorstep.upload_delivery import upload_issue_id
from reference_doorbell.certs import CertFiles
from reference_doorbell.requester_receive import ReceiveConfig, Received, UploadReceiver
from scripts.lab.certs import TestCa

from .conftest import approve_in_card, wait_for

API = "/api/doorstep/v1"


def _hub(entry: MockConfigEntry) -> SharingHub:
    hub = entry.runtime_data
    assert isinstance(hub, SharingHub)
    return hub


def _switch_id(hass: HomeAssistant, request_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "switch", DOMAIN, f"share_request_{request_id}"
    )
    assert entity_id is not None
    return entity_id


def _store_clip(hass: HomeAssistant, data: bytes, start: Any) -> str:
    """A finished clip in the hub's clip store, as the recorder would leave it."""
    store: ClipStore = hass.data[DATA_CLIPS]
    clip_id = store.new_clip_id(start)
    store.temp_path(clip_id).write_bytes(data)
    store.commit(
        ClipRecord(clip_id, "front", start, start + timedelta(seconds=20), len(data), "ring")
    )
    return clip_id


@pytest.fixture
def requester_tls(tmp_path: Path) -> tuple[TestCa, CertFiles]:
    ca = TestCa.create(tmp_path / "requester-ca", "Station North CA")
    return ca, ca.issue(tmp_path / "requester-ca", ["127.0.0.1"])


class ThreadedReceiver:
    """The reference requester's receiver on its own event loop in a thread.

    Home Assistant's test harness fails a test on any error its loop's exception handler
    sees, and a TLS server that a client hangs up on mid-handshake (the untrusted case)
    reports exactly such an error. A separate loop keeps the requester "outside".
    """

    def __init__(self, config: ReceiveConfig) -> None:
        self._config = config
        self._ready = threading.Event()
        self._done = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self.received: Received | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        upload_receiver = UploadReceiver(self._config)
        self.port = await upload_receiver.start()
        self._ready.set()
        waiter = asyncio.ensure_future(upload_receiver.result())
        stopper = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        if waiter.done():
            self.received = waiter.result()
        else:
            waiter.cancel()
        self._done.set()
        await stopper
        await upload_receiver.stop()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(30), "receiver did not start"

    async def result(self, hass: HomeAssistant) -> Received:
        assert await hass.async_add_executor_job(self._done.wait, 30), "nothing received"
        assert self.received is not None
        return self.received

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
async def receiver(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    requester_tls: tuple[TestCa, CertFiles],
    tmp_path: Path,
) -> AsyncIterator[ThreadedReceiver]:
    _ca, cert = requester_tls
    out = tmp_path / "received"
    out.mkdir()
    threaded = ThreadedReceiver(
        ReceiveConfig(
            host="127.0.0.1",
            port=0,
            cert=cert.cert,
            key=cert.key,
            out_dir=out,
            public_key=_hub(sharing_entry).key.public_bytes(),
        )
    )
    await hass.async_add_executor_job(threaded.start)
    yield threaded
    await hass.async_add_executor_job(threaded.close)


def _trust(hass: HomeAssistant, ca: TestCa) -> None:
    path = Path(hass.config.path("doorstep", "trusted_requesters.pem"))
    path.write_bytes(ca.cert_path.read_bytes())


async def _file_upload_request(
    hass: HomeAssistant, client: Any, entry: MockConfigEntry, url: str
) -> str:
    _requester, token = _hub(entry).gate.create_requester("Station North", RequesterKind.POLICE)
    now = dt_util.utcnow()
    body = {
        "reference": "CASE-7",
        "reason": "Bike stolen from the porch",
        "window": {
            "start": (now - timedelta(hours=3)).isoformat(),
            "end": (now - timedelta(hours=2)).isoformat(),
        },
        "contact": "desk@station-north.example",
        "wanted_by": (now + timedelta(days=7)).isoformat(),
        "delivery": {"method": "upload", "url": url},
    }
    response = await client.post(
        f"{API}/requests", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def _approve(ws: MockHAClientWebSocket, request_id: str) -> None:
    """As the owner does in the card: look at the preview, then approve with the password."""
    answer = await approve_in_card(ws, request_id)
    assert answer["success"] is True, answer


def _upload_phases(hass: HomeAssistant, request_id: str) -> list[str]:
    path = Path(hass.config.path("doorstep", "audit.jsonl"))
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    return [
        e["details"]["phase"]
        for e in entries
        if e["kind"] == "delivered" and e["request"] == request_id
    ]


async def test_approving_uploads_to_the_requester(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    person_ws: MockHAClientWebSocket,
    sharing_entry: MockConfigEntry,
    receiver: ThreadedReceiver,
    requester_tls: tuple[TestCa, CertFiles],
) -> None:
    """Pending: nothing is sent. Approved by an admin: the requester gets and verifies it."""
    ca, _cert = requester_tls
    _trust(hass, ca)
    start = dt_util.utcnow() - timedelta(hours=2, minutes=30)
    clip_data = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 40
    clip_id = await hass.async_add_executor_job(_store_clip, hass, clip_data, start)
    client = await hass_client_no_auth()
    request_id = await _file_upload_request(
        hass, client, sharing_entry, f"https://127.0.0.1:{receiver.port}/evidence"
    )
    await hass.async_block_till_done()
    switch = _switch_id(hass, request_id)
    state = hass.states.get(switch)
    assert state is not None
    assert state.attributes["delivery_status"] == "awaiting_approval"
    assert _upload_phases(hass, request_id) == []

    await _approve(person_ws, request_id)
    received = await receiver.result(hass)

    assert received.verdict.ok, received.verdict.reason
    assert received.verdict.request_id == request_id
    assert [(c.file, c.sha256) for c in received.verdict.clips] == [
        (f"clips/{clip_id}.mp4", hashlib.sha256(clip_data).hexdigest())
    ]
    hub = _hub(sharing_entry)
    await wait_for(hass, lambda: hub.gate.get(request_id).state is RequestState.FULFILLED)
    await wait_for(
        hass,
        lambda: hass.states.get(switch).attributes.get("delivery_status") == "delivered",  # type: ignore[union-attr]
    )
    assert _upload_phases(hass, request_id) == ["started", "done"]


async def test_untrusted_requester_is_reported_then_resumed_after_reload(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    person_ws: MockHAClientWebSocket,
    sharing_entry: MockConfigEntry,
    receiver: ThreadedReceiver,
    requester_tls: tuple[TestCa, CertFiles],
) -> None:
    """Without the requester's CA nothing is sent and a repair says what to do; once the
    owner trusts the CA and reloads, the approved request is delivered."""
    client = await hass_client_no_auth()
    request_id = await _file_upload_request(
        hass, client, sharing_entry, f"https://127.0.0.1:{receiver.port}/evidence"
    )
    await _approve(person_ws, request_id)
    switch = _switch_id(hass, request_id)
    await wait_for(
        hass,
        lambda: hass.states.get(switch).attributes.get("delivery_status") == "failed",  # type: ignore[union-attr]
    )
    state = hass.states.get(switch)
    assert state is not None
    assert "trusted_requesters.pem" in state.attributes["delivery_error"]
    issue = ir.async_get(hass).async_get_issue(DOMAIN, upload_issue_id(request_id))
    assert issue is not None
    assert issue.translation_key == "upload_failed"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["reference"] == "CASE-7"
    assert _upload_phases(hass, request_id) == ["started", "failed"]
    assert _hub(sharing_entry).gate.get(request_id).state is RequestState.APPROVED

    ca, _cert = requester_tls
    _trust(hass, ca)
    assert await hass.config_entries.async_reload(sharing_entry.entry_id)
    received = await receiver.result(hass)

    assert received.verdict.ok, received.verdict.reason
    assert received.verdict.request_id == request_id
    hub = _hub(sharing_entry)
    await wait_for(hass, lambda: hub.gate.get(request_id).state is RequestState.FULFILLED)
    assert ir.async_get(hass).async_get_issue(DOMAIN, upload_issue_id(request_id)) is None
    assert _upload_phases(hass, request_id) == ["started", "failed", "started", "done"]

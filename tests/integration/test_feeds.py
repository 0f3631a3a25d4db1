"""Area feeds inside Home Assistant, against the reference agency on 127.0.0.1.

The agency runs on its own event loop in a thread, as an outside server would: it signs
a feed with one entry covering the home and one elsewhere, serves it with ETags, and
verifies what is uploaded to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
import hashlib
import json
from pathlib import Path
import threading
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import MockHAClientWebSocket

from custom_components.doorstep.const import DOMAIN
from custom_components.doorstep.diagnostics import async_get_config_entry_diagnostics
from custom_components.doorstep.feed_polling import DATA_FEEDS, FeedPoller, subscription_id
from custom_components.doorstep.media.clips import ClipRecord, ClipStore
from custom_components.doorstep.recording import DATA_CLIPS
from custom_components.doorstep.sharing import DeliveryMethod, RequestState
from custom_components.doorstep.sharing.feeds import display_fingerprint
from reference_doorbell.agency import AgencyServer
from reference_doorbell.agency_feed import (
    AgencyKeys,
    area_entry,
    build_feed,
    circle,
    polygon,
    withdrawn_entry,
)
from reference_doorbell.requester_verify import Verdict
from scripts.lab.certs import TestCa

from .conftest import approve_in_card, audit_entries, hub_of, wait_for

HOME = (47.3779, 8.5403)


class ThreadedAgency:
    """The reference agency's server on its own loop, like a host outside the house."""

    def __init__(self, feed: Path, cert: Path, key: Path, out: Path) -> None:
        self._args = {"feed": feed, "cert": cert, "key": key, "out_dir": out}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.server: AgencyServer | None = None
        self.verdicts: list[tuple[str, Verdict]] = []
        self._got = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.server = AgencyServer(host="127.0.0.1", port=0, **self._args)
        await self.server.start()
        self._ready.set()
        while not self._stop.is_set():
            getter = asyncio.ensure_future(self.server.log.received.get())
            stopper = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait([getter, stopper], return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                self.verdicts.append(getter.result())
                self._got.set()
            else:
                getter.cancel()
        await self.server.stop()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(30)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


KEYS = AgencyKeys.generate()


def entries(port: int, now: datetime, **extra: dict[str, Any]) -> list[dict[str, Any]]:
    window = {"window_start": now - timedelta(hours=3), "window_end": now - timedelta(hours=2)}
    common = {
        "reason": "Burglary on the street between 22:00 and 23:00",
        "contact": "desk@rpd.example",
        "wanted_by": now + timedelta(days=7),
        **window,
    }
    return [
        area_entry(
            "near",
            reference="RPD-NEAR",
            area=circle(HOME[0] + 0.001, HOME[1], 400),
            upload_url=f"https://127.0.0.1:{port}/upload/near",
            **common,  # type: ignore[arg-type]
        ),
        area_entry(
            "far",
            reference="RPD-FAR",
            # Bern, 95 km away, drawn as a polygon.
            area=polygon([(46.94, 7.43), (46.94, 7.45), (46.96, 7.45), (46.96, 7.43)]),
            upload_url=f"https://127.0.0.1:{port}/upload/far",
            **common,  # type: ignore[arg-type]
        ),
    ]


def publish(
    path: Path, items: list[dict[str, Any]], sequence: int, keys: AgencyKeys = KEYS
) -> None:
    path.write_bytes(
        build_feed(keys, agency="Reference Police Department", entries=items, sequence=sequence)
    )


@pytest.fixture
async def agency(hass: HomeAssistant, tmp_path: Path) -> AsyncIterator[ThreadedAgency]:
    ca = TestCa.create(tmp_path / "agency-ca", "Reference agency CA")
    cert = ca.issue(tmp_path / "agency-ca", ["127.0.0.1"])
    trust = Path(hass.config.path("doorstep", "trusted_requesters.pem"))
    trust.parent.mkdir(parents=True, exist_ok=True)
    trust.write_bytes(ca.cert_path.read_bytes())
    feed = tmp_path / "feed.json"
    publish(feed, [], 0)
    threaded = ThreadedAgency(feed, cert.cert, cert.key, tmp_path / "received")
    await hass.async_add_executor_job(threaded.start)
    publish(feed, entries(threaded.port, dt_util.utcnow()), 1)
    yield threaded
    await hass.async_add_executor_job(threaded.close)


def feed_url(agency: ThreadedAgency) -> str:
    return f"https://127.0.0.1:{agency.port}/feed.json"


def store_clip(hass: HomeAssistant, start: datetime) -> tuple[str, bytes]:
    data = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 30
    store: ClipStore = hass.data[DATA_CLIPS]
    clip_id = store.new_clip_id(start)
    store.temp_path(clip_id).write_bytes(data)
    store.commit(
        ClipRecord(clip_id, "front", start, start + timedelta(seconds=20), len(data), "ring")
    )
    return clip_id, data


@pytest.fixture(autouse=True)
def _home(hass: HomeAssistant) -> None:
    hass.config.latitude, hass.config.longitude = HOME


async def subscribe(
    hass: HomeAssistant, entry: MockConfigEntry, url: str, fingerprint: str
) -> dict[str, Any]:
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    assert flow["type"] is FlowResultType.MENU
    assert "subscribe_feed" in flow["menu_options"]
    form = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"next_step_id": "subscribe_feed"}
    )
    result = await hass.config_entries.options.async_configure(
        form["flow_id"], {"url": url, "fingerprint": fingerprint}
    )
    return dict(result)


def poller(hass: HomeAssistant) -> FeedPoller:
    return hass.data[DATA_FEEDS]


async def test_subscribe_match_at_home_and_upload_on_approval(
    hass: HomeAssistant,
    sharing_entry: MockConfigEntry,
    agency: ThreadedAgency,
    person_ws: MockHAClientWebSocket,
) -> None:
    """Wrong fingerprint: refused with the one seen. Right one: confirmed and polled. The
    covering entry becomes a pending upload request; the other leaves nothing behind.
    Nothing but feed fetches reaches the agency until an admin approves with step-up."""
    url = feed_url(agency)
    wrong = await subscribe(hass, sharing_entry, url, "ab" * 32)
    assert wrong["type"] is FlowResultType.FORM
    assert wrong["errors"] == {"fingerprint": "fingerprint_mismatch"}
    assert wrong["description_placeholders"]["seen"] == display_fingerprint(KEYS.fingerprint())

    shown = display_fingerprint(KEYS.fingerprint()).upper()
    confirm = await subscribe(hass, sharing_entry, url, shown)
    assert confirm["step_id"] == "confirm_feed"
    assert confirm["description_placeholders"] == {
        "agency": "Reference Police Department",
        "url": url,
        "fingerprint": display_fingerprint(KEYS.fingerprint()),
    }
    done = await hass.config_entries.options.async_configure(confirm["flow_id"], {})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert sharing_entry.options["feeds"] == [{"url": url, "fingerprint": KEYS.fingerprint()}]
    await hass.async_block_till_done()

    clip_id, clip_data = await hass.async_add_executor_job(
        store_clip, hass, dt_util.utcnow() - timedelta(hours=2, minutes=30)
    )
    await poller(hass).async_poll(url)
    await hass.async_block_till_done()

    hub = hub_of(sharing_entry)
    (request,) = hub.gate.requests()
    assert request.state is RequestState.PENDING
    assert request.reference == "RPD-NEAR"
    assert request.delivery.method is DeliveryMethod.UPLOAD
    assert request.delivery.upload_url == f"https://127.0.0.1:{agency.port}/upload/near"
    assert request.held_clip_ids == (clip_id,)
    assert hub.gate.requester(request.requester_id).name == "Reference Police Department"
    # The entry elsewhere left no trace: no request, no audit entry, only a counter.
    assert [e["kind"] for e in audit_entries(hass)] == ["filed"]
    assert "RPD-FAR" not in json.dumps(audit_entries(hass))
    diagnostics = await async_get_config_entry_diagnostics(hass, sharing_entry)
    counters = diagnostics["feeds"][subscription_id(url)]
    assert counters["matched"] == 1
    assert counters["dropped"] == 1

    # Polling again: a 304, nothing new.
    await poller(hass).async_poll(url)
    server = agency.server
    assert server is not None
    assert server.log.not_modified == 1
    assert len(hub.gate.requests()) == 1
    # Two probes (wrong, then right fingerprint) and two polls. The unconditional ones
    # were byte for byte the same request: what the household typed never goes out.
    assert server.log.fetches == 4
    assert server.log.fetch_heads[0] == server.log.fetch_heads[1] == server.log.fetch_heads[2]
    assert b"If-None-Match" in server.log.fetch_heads[3]
    assert agency.verdicts == []

    answer = await approve_in_card(person_ws, request.id)
    assert answer["success"] is True, answer
    assert await hass.async_add_executor_job(agency._got.wait, 30)
    ((entry_id, verdict),) = agency.verdicts
    assert entry_id == "near"
    assert verdict.ok, verdict.reason
    assert verdict.request_id == request.id
    assert verdict.reference == "RPD-NEAR"
    assert [(c.file, c.sha256) for c in verdict.clips] == [
        (f"clips/{clip_id}.mp4", hashlib.sha256(clip_data).hexdigest())
    ]
    await wait_for(hass, lambda: hub.gate.get(request.id).state is RequestState.FULFILLED)


async def test_no_footage_no_request(
    hass: HomeAssistant, sharing_entry: MockConfigEntry, agency: ThreadedAgency
) -> None:
    url = feed_url(agency)
    confirm = await subscribe(hass, sharing_entry, url, KEYS.fingerprint())
    await hass.config_entries.options.async_configure(confirm["flow_id"], {})
    await hass.async_block_till_done()
    await poller(hass).async_poll(url)
    assert hub_of(sharing_entry).gate.requests() == []
    assert (
        not Path(hass.config.path("doorstep", "audit.jsonl")).exists() or audit_entries(hass) == []
    )


async def test_withdrawn_entry_and_unsubscribing_close_pending_requests(
    hass: HomeAssistant, sharing_entry: MockConfigEntry, agency: ThreadedAgency, tmp_path: Path
) -> None:
    url = feed_url(agency)
    confirm = await subscribe(hass, sharing_entry, url, KEYS.fingerprint())
    await hass.config_entries.options.async_configure(confirm["flow_id"], {})
    await hass.async_block_till_done()
    now = dt_util.utcnow()
    await hass.async_add_executor_job(store_clip, hass, now - timedelta(hours=2, minutes=30))
    await poller(hass).async_poll(url)
    hub = hub_of(sharing_entry)
    (first,) = hub.gate.requests()

    # The agency withdraws it and adds a second covering entry.
    second = entries(agency.port, now)[0] | {"id": "near-2", "reference": "RPD-NEAR-2"}
    publish(tmp_path / "feed.json", [withdrawn_entry("near"), second], 2)
    await poller(hass).async_poll(url)
    assert hub.gate.get(first.id).state is RequestState.EXPIRED
    (open_request,) = hub.gate.pending()
    assert open_request.reference == "RPD-NEAR-2"
    closing = [e for e in audit_entries(hass) if e["kind"] == "expired"]
    assert [(e["request"], e["actor"]) for e in closing] == [(first.id, "feed:withdrawn")]

    # Unsubscribing withdraws what is still pending and revokes the agency's asker.
    flow = await hass.config_entries.options.async_init(sharing_entry.entry_id)
    form = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"next_step_id": "unsubscribe_feed"}
    )
    done = await hass.config_entries.options.async_configure(form["flow_id"], {"url": url})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert hub.gate.get(open_request.id).state is RequestState.EXPIRED
    assert hub.gate.requester(open_request.requester_id).revoked
    assert poller(hass).state_of(url) is None


async def test_a_failing_feed_applies_nothing_and_raises_a_repair(
    hass: HomeAssistant, sharing_entry: MockConfigEntry, agency: ThreadedAgency, tmp_path: Path
) -> None:
    url = feed_url(agency)
    confirm = await subscribe(hass, sharing_entry, url, KEYS.fingerprint())
    await hass.config_entries.options.async_configure(confirm["flow_id"], {})
    await hass.async_block_till_done()
    now = dt_util.utcnow()
    await hass.async_add_executor_job(store_clip, hass, now - timedelta(hours=2, minutes=30))
    # A feed with a covering entry, signed by someone else's key.
    publish(tmp_path / "feed.json", entries(agency.port, now), 2, keys=AgencyKeys.generate())
    issue_id = f"feed_failing_{subscription_id(url)}"
    for attempt in range(3):
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None, attempt
        await poller(hass).async_poll(url)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "feed_unknown_key"
    assert hub_of(sharing_entry).gate.requests() == []

    publish(tmp_path / "feed.json", entries(agency.port, now), 3)
    await poller(hass).async_poll(url)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert len(hub_of(sharing_entry).gate.requests()) == 1


async def test_polls_come_at_random_between_15_and_30_minutes(
    hass: HomeAssistant, sharing_entry: MockConfigEntry, agency: ThreadedAgency
) -> None:
    """A new subscription is read at once; after that each poll waits 15 to 30 minutes."""
    url = feed_url(agency)
    confirm = await subscribe(hass, sharing_entry, url, KEYS.fingerprint())
    await hass.config_entries.options.async_configure(confirm["flow_id"], {})
    await hass.async_block_till_done()
    server = agency.server
    assert server is not None
    probes = server.log.fetches

    async def polls_after(seconds: float) -> int:
        """Run the timers due ``seconds`` from now; the polls counted by the agency."""
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))
        await hass.async_block_till_done()
        # The agency counts on its own thread; give it a moment.
        for _ in range(25):
            await asyncio.sleep(0.02)
        return server.log.fetches - probes

    assert await polls_after(2) == 1  # the first poll, right after subscribing
    for done in range(1, 4):
        assert await polls_after(15 * 60 - 5) == done, "polled before 15 minutes"
        assert await polls_after(30 * 60 + 5) == done + 1, "no poll within 30 minutes"
    assert server.log.not_modified == 3  # later polls are conditional


async def test_an_unreadable_trust_file_is_a_clear_form_error(
    hass: HomeAssistant, sharing_entry: MockConfigEntry, agency: ThreadedAgency
) -> None:
    """A broken trusted_requesters.pem refuses the fetch (no fallback to fewer CAs)."""
    trust = Path(hass.config.path("doorstep", "trusted_requesters.pem"))
    trust.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    result = await subscribe(hass, sharing_entry, feed_url(agency), KEYS.fingerprint())
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "feed_unreachable"}
    assert "feeds" not in sharing_entry.options


async def test_a_doorbell_set_elsewhere_is_matched_where_it_is(
    hass: HomeAssistant, sharing_entry: MockConfigEntry, agency: ThreadedAgency
) -> None:
    """A doorbell whose owner placed it in Bern (its options) matches the Bern request,
    and, as the only doorbell, no longer the one around Home Assistant's location."""
    MockConfigEntry(
        domain=DOMAIN,
        unique_id="bern-door",
        data={"device_id": "bern-door"},
        options={"location": {"latitude": 46.95, "longitude": 7.44}},
    ).add_to_hass(hass)
    url = feed_url(agency)
    confirm = await subscribe(hass, sharing_entry, url, KEYS.fingerprint())
    await hass.config_entries.options.async_configure(confirm["flow_id"], {})
    await hass.async_block_till_done()
    await hass.async_add_executor_job(
        store_clip, hass, dt_util.utcnow() - timedelta(hours=2, minutes=30)
    )
    await poller(hass).async_poll(url)
    await hass.async_block_till_done()
    assert [r.reference for r in hub_of(sharing_entry).gate.requests()] == ["RPD-FAR"]

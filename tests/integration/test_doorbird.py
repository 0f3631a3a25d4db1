"""A DoorBird in Home Assistant, against the DoorBird emulator (the public LAN-2-LAN API)
with GStreamer's RTSP server as its video: discovery, sign-in, rings and motion pushed
over real HTTP to the hub, a clip on a ring, the cloud repair, removal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from ipaddress import ip_address
import json
from unittest.mock import patch

import aiohttp
from homeassistant.components.camera import async_get_image
from homeassistant.config_entries import SOURCE_USER, SOURCE_ZEROCONF
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.const import (
    CONF_DEVICE_ID,
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    CONF_PUSH_SECRET,
    CONF_RING_COOLDOWN,
    DOMAIN,
    EVENT_RING,
)
from custom_components.doorstep.device import DRIVER_DOORBIRD, KEY_DRIVER
from custom_components.doorstep.media import ClipStore
from custom_components.doorstep.recording import DATA_CLIPS
from custom_components.doorstep.repairs import cloud_issue_id
from scripts.lab.doorbird_emulator import DoorBirdEmulator
from tests.rtsp_camera import RtspCameraProcess, require_gstreamer

from .conftest import wait_for

USERNAME = "ghxxxx0001"
PASSWORD = "bird-pass"
MAC = "1ccae3a1b2c3"
SECRET = "a-secret-made-by-the-flow"
DOORBELL = "event.front_bird_doorbell"
MOTION = "binary_sensor.front_bird_motion"
CAMERA = "camera.front_bird"


@pytest.fixture
async def station(socket_enabled: None) -> AsyncIterator[DoorBirdEmulator]:
    emulator = DoorBirdEmulator(username=USERNAME, password=PASSWORD)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def hub_reachable(hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator) -> str:
    """Home Assistant's HTTP server on loopback, as the address the station calls.

    Doorstep and the components it loads later are set up first, so every view is
    registered before the server starts (its router is frozen then).
    """
    for component in (DOMAIN, "camera", "diagnostics"):
        assert await async_setup_component(hass, component, {})
    await hass.async_block_till_done()
    client = await hass_client_no_auth()
    url = str(client.make_url("/")).rstrip("/")
    await hass.config.async_update(internal_url=url)
    return url


def _discovery(station: DoorBirdEmulator, mac: str = "1CCAE3A1B2C3") -> ZeroconfServiceInfo:
    return ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"),
        ip_addresses=[ip_address("127.0.0.1")],
        hostname="bha-1ccae3a1b2c3.local.",
        name="Front bird._axis-video._tcp.local.",
        port=station.port,
        type="_axis-video._tcp.local.",
        properties={"macaddress": mac},
    )


def _entry(station: DoorBirdEmulator, **extra: object) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="Front bird",
        unique_id=MAC,
        data={
            KEY_DRIVER: DRIVER_DOORBIRD,
            CONF_HOST: "127.0.0.1",
            CONF_PORT: station.port,
            CONF_DEVICE_ID: MAC,
            CONF_USERNAME: USERNAME,
            CONF_PASSWORD: PASSWORD,
            CONF_PUSH_SECRET: SECRET,
            CONF_NAME: "Front bird",
            **extra,
        },
        options={CONF_PRE_ROLL: 1, CONF_POST_ROLL: 1},
    )


async def test_discovered_and_signed_in(hass: HomeAssistant, station: DoorBirdEmulator) -> None:
    """Found by zeroconf; a wrong password is a clear error; the right one adds it."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(station)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "doorbird"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: USERNAME, CONF_PASSWORD: "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: f" {USERNAME} ", CONF_PASSWORD: PASSWORD}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Front bird"
    data = result["data"]
    assert data[KEY_DRIVER] == DRIVER_DOORBIRD
    assert data[CONF_DEVICE_ID] == MAC
    assert data[CONF_USERNAME] == USERNAME
    assert len(data[CONF_PUSH_SECRET]) >= 32
    assert result["result"].unique_id == MAC
    await hass.async_block_till_done()

    # Seen again at a new address: followed, not offered twice.
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(station)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    entry = hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, MAC)
    assert entry is not None
    await hass.config_entries.async_unload(entry.entry_id)


async def test_other_axis_devices_are_not_doorbirds(
    hass: HomeAssistant, station: DoorBirdEmulator
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(station, "00408CA1B2C3")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_doorbird_device"


async def test_added_by_address(hass: HomeAssistant, station: DoorBirdEmulator) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "doorbird_host"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: station.port + 1}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: USERNAME, CONF_PASSWORD: PASSWORD}
    )
    assert result["errors"] == {"base": "cannot_connect"}


async def test_rings_and_motion_reach_home_assistant(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hub_reachable: str,
    station: DoorBirdEmulator,
) -> None:
    """The station calls the hub over HTTP: the doorbell event entity fires, motion turns
    on; the favorites point at the hub's secret URL; a wrong secret changes nothing;
    diagnostics show neither credentials nor the secret."""
    entry = _entry(station)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: entry.runtime_data.coordinator.data.connected)
    assert sorted(station.http_favorite_urls()) == [
        f"{hub_reachable}/api/doorstep/push/{SECRET}?event=doorbell",
        f"{hub_reachable}/api/doorstep/push/{SECRET}?event=motion",
    ]
    assert hass.states.get(DOORBELL).state == "unknown"  # type: ignore[union-attr]

    assert await station.ring() == [200]
    await wait_for(hass, lambda: hass.states.get(DOORBELL).state != "unknown")  # type: ignore[union-attr]
    assert hass.states.get(DOORBELL).attributes["event_type"] == "ring"  # type: ignore[union-attr]
    assert await station.motion() == [200]
    await wait_for(hass, lambda: hass.states.get(MOTION).state == "on")  # type: ignore[union-attr]

    client = await hass_client()
    response = await client.get("/api/doorstep/push/not-the-secret?event=doorbell")
    assert response.status == 404

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    dumped = json.dumps(diagnostics)
    assert SECRET not in dumped
    assert PASSWORD not in dumped
    assert USERNAME not in dumped
    assert diagnostics["device"]["manufacturer"] == "DoorBird"
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_a_ring_records_a_clip_from_the_stations_rtsp(
    hass: HomeAssistant, hub_reachable: str, station: DoorBirdEmulator
) -> None:
    """Live video comes from the station's RTSP path; a pushed ring cuts a clip."""
    require_gstreamer()
    camera = RtspCameraProcess(path="/mpeg/media.amp", username=USERNAME, password=PASSWORD)
    await camera.start()
    try:
        entry = _entry(station, rtsp_port=camera.port)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        await wait_for(hass, lambda: entry.runtime_data.coordinator.data.connected)
        store: ClipStore = hass.data[DATA_CLIPS]
        await asyncio.sleep(2)  # some pre-roll
        assert await station.ring() == [200]
        await wait_for(hass, lambda: len(store.list_clips()) == 1, within=20)
        clip = store.list_clips()[0]
        assert clip.doorbell_id == MAC
        assert clip.size > 0
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    finally:
        await camera.stop()


async def test_cloud_push_raises_a_repair(
    hass: HomeAssistant, hub_reachable: str, socket_enabled: None
) -> None:
    station = DoorBirdEmulator(username=USERNAME, password=PASSWORD, cloud_push=True)
    await station.start()
    try:
        entry = _entry(station)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        issue = ir.async_get(hass).async_get_issue(DOMAIN, cloud_issue_id(MAC))
        assert issue is not None
        assert issue.translation_key == "cloud_services"
        assert issue.translation_placeholders == {"name": "Front bird", "services": "notify"}
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    finally:
        await station.stop()


async def test_removal_takes_the_hub_off_the_station(
    hass: HomeAssistant, hub_reachable: str, station: DoorBirdEmulator
) -> None:
    entry = _entry(station)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: len(station.http_favorite_urls()) == 2)
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert station.http_favorite_urls() == []
    assert all(
        output.get("event") != "http" for entry in station.schedule for output in entry["output"]
    )


async def test_wrong_password_starts_reauth(
    hass: HomeAssistant, hub_reachable: str, station: DoorBirdEmulator
) -> None:
    """The station refuses the stored password: sign in again, with the same MAC."""
    entry = _entry(station)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_PASSWORD: "old"})
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_USERNAME: USERNAME, CONF_PASSWORD: PASSWORD}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_PASSWORD] == PASSWORD
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_an_event_flood_rings_once_within_the_cooldown(
    hass: HomeAssistant, hub_reachable: str, station: DoorBirdEmulator
) -> None:
    """A hundred calls at once from the station: all answered, one ring let through."""
    entry = _entry(station)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_RING_COOLDOWN: 30})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: entry.runtime_data.coordinator.data.connected)
    rings = async_capture_events(hass, EVENT_RING)
    url = f"{hub_reachable}/api/doorstep/push/{SECRET}?event=doorbell"
    async with aiohttp.ClientSession() as session:

        async def call() -> int:
            async with session.get(url) as response:
                return response.status

        statuses = await asyncio.gather(*(call() for _ in range(100)))
    await hass.async_block_till_done()
    assert statuses == [200] * 100
    assert len(rings) == 1
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_reconfigure_follows_the_same_station_only(
    hass: HomeAssistant, station: DoorBirdEmulator
) -> None:
    """The station moved (here: another port); a different station there is refused."""
    entry = _entry(station, port=station.port + 1)
    entry.add_to_hass(hass)
    other = DoorBirdEmulator(username=USERNAME, password=PASSWORD, mac="1CCAE3FFFFFF")
    await other.start()
    try:
        result = await entry.start_reconfigure_flow(hass)
        assert result["step_id"] == "reconfigure_doorbird"
        fields = {CONF_HOST: "127.0.0.1", CONF_USERNAME: USERNAME, CONF_PASSWORD: PASSWORD}
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**fields, CONF_PORT: other.port}
        )
        assert result["errors"] == {"base": "wrong_device"}
        with patch("custom_components.doorstep.async_setup_entry", return_value=True):
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], {**fields, CONF_PORT: station.port}
            )
            await hass.async_block_till_done()
    finally:
        await other.stop()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_PORT] == station.port


async def test_no_picture_from_the_station_yet(
    hass: HomeAssistant, hub_reachable: str, station: DoorBirdEmulator
) -> None:
    """image.cgi's 204 is not a failure: a still from the live stream stands in, and
    without one the owner reads why there is no picture, not "snapshot failed"."""
    require_gstreamer()
    station.image_available = False
    camera = RtspCameraProcess(path="/mpeg/media.amp", username=USERNAME, password=PASSWORD)
    await camera.start()
    try:
        entry = _entry(station, rtsp_port=camera.port)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        image = await async_get_image(hass, CAMERA, timeout=15)
        assert image.content.startswith(b"\xff\xd8")
        assert image.content != station._jpeg  # a still from RTSP, not the station's JPEG
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    finally:
        await camera.stop()

    # The stream is gone too: the picture is "not yet", with the station's name.
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(HomeAssistantError) as err:
        await async_get_image(hass, CAMERA, timeout=15)
    assert err.value.translation_key == "no_snapshot_yet"
    assert err.value.translation_placeholders == {"name": "Front bird"}
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

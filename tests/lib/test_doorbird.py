"""The DoorBird driver against Doorstep's DoorBird emulator (the LAN-2-LAN API as its
public document describes it) and GStreamer's RTSP server as the station's video."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
import pytest

from custom_components.doorstep.device import (
    DRIVER_DOORBIRD,
    KEY_DRIVER,
    CannotConnect,
    DoorbellEvent,
    DoorBirdDoorbell,
    EventType,
    FingerprintMismatch,
    InvalidAuth,
    NoSnapshotYet,
    ProtocolError,
    create_doorbell,
    is_doorbird_mac,
    normalize_mac,
)
from custom_components.doorstep.device.doorbird import cloud_outputs
from custom_components.doorstep.media import probe_stream
from scripts.lab.doorbird_emulator import DoorBirdEmulator
from tests.rtsp_camera import RtspCameraProcess, require_gstreamer

USERNAME = "ghxxxx0001"
PASSWORD = "door:bird@pass"
SECRET = "s3cr3t-push-token"


class Sink:
    def __init__(self) -> None:
        self.events: list[DoorbellEvent] = []
        self.connection: list[bool] = []
        self.auth_failures = 0
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
        raise AssertionError("a DoorBird has no pinned certificate")

    async def wait_until(self, check: object, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not check():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def station() -> AsyncIterator[DoorBirdEmulator]:
    emulator = DoorBirdEmulator(username=USERNAME, password=PASSWORD)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


class Hub:
    """A stand-in for the hub's push endpoint: routes calls to the driver by secret."""

    def __init__(self) -> None:
        self.doorbell: DoorBirdDoorbell | None = None
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/doorstep/push/{secret}", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _push(self, request: web.Request) -> web.Response:
        doorbell = self.doorbell
        if doorbell is None or request.match_info["secret"] != doorbell.push_secret:
            return web.Response(status=404)
        known = doorbell.handle_push(request.query.get("event", ""))
        return web.Response(status=200 if known else 400)


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    stand_in = Hub()
    await stand_in.start()
    try:
        yield stand_in
    finally:
        await stand_in.stop()


def _config(station: DoorBirdEmulator, password: str = PASSWORD) -> dict[str, object]:
    return {
        KEY_DRIVER: DRIVER_DOORBIRD,
        "host": "127.0.0.1",
        "port": station.port,
        "username": USERNAME,
        "password": password,
        "push_secret": SECRET,
        "device_id": "1ccae3a1b2c3",
    }


def test_mac_addresses() -> None:
    assert normalize_mac("1C:CA:E3:A1:B2:C3") == "1ccae3a1b2c3"
    assert normalize_mac("1ccae3a1b2c3") == "1ccae3a1b2c3"
    assert normalize_mac("1CCAE3A1B2") is None
    assert normalize_mac(None) is None
    assert is_doorbird_mac("1CCAE3A1B2C3")
    assert not is_doorbird_mac("00408CA1B2C3")  # an Axis camera, on the same service type


async def test_identity_from_info(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    doorbell = create_doorbell(session, _config(station))
    assert isinstance(doorbell, DoorBirdDoorbell)
    identity = await doorbell.connect()
    assert identity.device_id == "1ccae3a1b2c3"
    assert identity.model == "DoorBird D2101V"
    assert identity.manufacturer == "DoorBird"
    assert identity.firmware == "000149 (16203985)"
    capabilities = doorbell.capabilities
    assert capabilities.has_button
    assert capabilities.has_motion
    assert capabilities.has_snapshot


async def test_wrong_password_is_invalid_auth(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    with pytest.raises(InvalidAuth):
        await create_doorbell(session, _config(station, "wrong")).connect()


async def test_nothing_listening_cannot_connect(session: aiohttp.ClientSession) -> None:
    station = DoorBirdEmulator(username=USERNAME, password=PASSWORD)
    await station.start()
    await station.stop()
    with pytest.raises(CannotConnect):
        await create_doorbell(session, _config(station)).connect()


async def test_snapshot(session: aiohttp.ClientSession, station: DoorBirdEmulator) -> None:
    jpeg = await create_doorbell(session, _config(station)).snapshot()
    assert jpeg.startswith(b"\xff\xd8")


async def test_no_picture_yet_is_not_a_failure(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    """image.cgi's 204 (no "watch always" permission, no ring in the last minute)."""
    station.image_available = False
    with pytest.raises(NoSnapshotYet):
        await create_doorbell(session, _config(station)).snapshot()


async def test_rings_and_motion_are_pushed_to_the_hub(
    session: aiohttp.ClientSession, station: DoorBirdEmulator, hub: Hub
) -> None:
    """The driver saves its favorites and schedule; the station's calls become events."""
    doorbell = create_doorbell(session, _config(station), hub_url=hub.url)
    assert isinstance(doorbell, DoorBirdDoorbell)
    hub.doorbell = doorbell
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_until(lambda: sink.connection == [True])
        assert sorted(station.http_favorite_urls()) == [
            f"{hub.url}/api/doorstep/push/{SECRET}?event=doorbell",
            f"{hub.url}/api/doorstep/push/{SECRET}?event=motion",
        ]
        assert await station.ring() == [200]
        assert await station.motion() == [200]
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
    assert sink.events[0].motion is False
    # Registering again (a restart of Home Assistant) adds nothing twice.
    await doorbell.register()
    assert len(station.http_favorite_urls()) == 2
    assert await station.ring() == [200]


async def test_motion_ends_after_the_hold_time(
    session: aiohttp.ClientSession, station: DoorBirdEmulator, hub: Hub
) -> None:
    """Reports within the hold time extend one motion; then it ends by itself."""
    doorbell = DoorBirdDoorbell.from_config(session, _config(station), hub_url=hub.url)
    doorbell = DoorBirdDoorbell(
        doorbell.client,
        username=USERNAME,
        password=PASSWORD,
        push_secret=SECRET,
        hub_url=hub.url,
        motion_hold=0.3,
    )
    hub.doorbell = doorbell
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_until(lambda: sink.connection == [True])
        await station.motion()
        await asyncio.sleep(0.1)
        await station.motion()
        await sink.wait_until(lambda: sink.events[-1].type is EventType.MOTION_STOP)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [event.type for event in sink.events] == [
        EventType.HELLO,
        EventType.MOTION_START,
        EventType.MOTION_STOP,
    ]


async def test_unknown_push_events_mean_nothing(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    doorbell = create_doorbell(session, _config(station), hub_url="http://127.0.0.1:1")
    assert not doorbell.handle_push("dooropen")
    assert doorbell.handle_push("doorbell")  # no sink yet: dropped, but understood


async def test_wrong_password_stops_the_event_task(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    doorbell = create_doorbell(session, _config(station, "wrong"), hub_url="http://127.0.0.1:1")
    sink = Sink()
    async with asyncio.timeout(5):
        await doorbell.run_events(sink)
    assert sink.auth_failures == 1


async def test_forget_removes_only_what_the_hub_added(
    session: aiohttp.ClientSession, hub: Hub
) -> None:
    station = DoorBirdEmulator(username=USERNAME, password=PASSWORD, cloud_push=True)
    await station.start()
    try:
        station.favorites["http"]["7"] = {"title": "Alarm", "value": "http://alarm.lan/x"}
        doorbell = create_doorbell(session, _config(station), hub_url=hub.url)
        assert isinstance(doorbell, DoorBirdDoorbell)
        await doorbell.register()
        assert await doorbell.outside_services() == ("notify",)
        await doorbell.forget()
        assert station.http_favorite_urls() == ["http://alarm.lan/x"]
        outputs = [output for entry in station.schedule for output in entry["output"]]
        assert outputs == [{"event": "notify", "param": "", "enabled": "1"}]
    finally:
        await station.stop()


def test_cloud_outputs_are_the_enabled_notify_ones() -> None:
    """notify is the schedule's one cloud output (LAN-2-LAN API revision 0.36); sip,
    relay, http and names the document does not have are not."""
    schedule = [
        {"input": "doorbell", "output": [{"event": "notify"}, {"event": "http", "param": "1"}]},
        {"input": "motion", "output": [{"event": "notify", "enabled": "0"}, "junk"]},
        {"input": "motion", "output": [{"event": "record"}, {"event": "sip"}]},
        {"input": "rfid", "output": None},
    ]
    assert cloud_outputs(schedule) == ("notify",)
    schedule[0]["output"] = [{"event": "relay", "param": "1"}]
    assert cloud_outputs(schedule) == ()
    schedule[1]["output"][0]["enabled"] = "1"  # type: ignore[index]
    assert cloud_outputs(schedule) == ("notify",)


@pytest.mark.parametrize(
    "answer",
    [
        web.Response(text="not json"),
        web.json_response({"BHA": {}}),
        web.json_response({"BHA": {"VERSION": [{"FIRMWARE": "1", "PRIMARY_MAC_ADDR": "x"}]}}),
        web.json_response([1, 2]),
        web.Response(body=b"{" * (300 * 1024)),
    ],
    ids=["not-json", "no-version", "bad-mac", "not-an-object", "oversized"],
)
async def test_malformed_info_is_a_protocol_error(
    session: aiohttp.ClientSession, answer: web.Response
) -> None:
    async def info(_request: web.Request) -> web.Response:
        return answer

    app = web.Application()
    app.router.add_get("/bha-api/info.cgi", info)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        config = {
            **_config(DoorBirdEmulator(username="", password="")),
            "port": runner.addresses[0][1],
        }
        with pytest.raises(ProtocolError):
            await create_doorbell(session, config).connect()
    finally:
        await runner.cleanup()


async def test_live_video_is_the_stations_rtsp_stream(
    session: aiohttp.ClientSession, station: DoorBirdEmulator
) -> None:
    """What the driver hands the media source opens on an RTSP server at the
    station's documented path, with the station's credentials."""
    require_gstreamer()
    camera = RtspCameraProcess(path="/mpeg/media.amp", username=USERNAME, password=PASSWORD)
    await camera.start()
    try:
        config = {**_config(station), "rtsp_port": camera.port}
        spec = create_doorbell(session, config).stream()
        assert spec.url is not None
        assert spec.url.endswith(f"@127.0.0.1:{camera.port}/mpeg/media.amp")
        probe = await probe_stream(spec.url, options=spec.options)
    finally:
        await camera.stop()
    assert probe.codec == "h264"


async def test_a_station_that_lost_the_favorites_gets_them_back(
    session: aiohttp.ClientSession, hub: Hub
) -> None:
    """After an outage the hub registers again: a reset station calls it once more."""
    station = DoorBirdEmulator(username=USERNAME, password=PASSWORD)
    await station.start()
    client = create_doorbell(session, _config(station))
    assert isinstance(client, DoorBirdDoorbell)
    doorbell = DoorBirdDoorbell(
        client.client,
        username=USERNAME,
        password=PASSWORD,
        push_secret=SECRET,
        hub_url=hub.url,
        check_interval=0.1,
    )
    hub.doorbell = doorbell
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_until(lambda: sink.connection == [True])
        await station.stop()
        await sink.wait_until(lambda: sink.connection == [True, False])
        # Factory reset: the station comes back on the same address with nothing saved.
        reset = DoorBirdEmulator(username=USERNAME, password=PASSWORD, port=station.port)
        await reset.start()
        try:
            await sink.wait_until(lambda: sink.connection == [True, False, True])
            assert len(reset.http_favorite_urls()) == 2
            assert await reset.ring() == [200]
            await sink.wait_until(lambda: sink.events[-1].type is EventType.RING)
        finally:
            await reset.stop()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_without_a_hub_address_the_owner_is_told_once(
    session: aiohttp.ClientSession, station: DoorBirdEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    client = create_doorbell(session, _config(station))
    assert isinstance(client, DoorBirdDoorbell)
    doorbell = DoorBirdDoorbell(
        client.client,
        username=USERNAME,
        password=PASSWORD,
        push_secret=SECRET,
        hub_url=None,
        check_interval=0.05,
    )
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sink.connection == [False]
    assert caplog.text.count("has no internal URL") == 1
    assert station.http_favorite_urls() == []

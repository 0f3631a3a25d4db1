"""The ONVIF driver against Doorstep's ONVIF emulator (SOAP with WS-Security digest auth,
checked for real) and GStreamer's RTSP server as the device's video."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import logging
from types import SimpleNamespace

import aiohttp
from aiohttp import web
from lxml import etree
import pytest

from custom_components.doorstep.device import (
    DRIVER_ONVIF,
    KEY_DRIVER,
    CannotConnect,
    DoorbellEvent,
    EventType,
    FingerprintMismatch,
    InvalidAuth,
    NotOnvif,
    OnvifDoorbell,
    ProtocolError,
    create_doorbell,
)
from custom_components.doorstep.device.onvif import (
    BUTTON_TOPICS,
    MOTION_TOPICS,
    AnswerTooLarge,
    Notification,
    normalize_topic,
    parse_notification,
    topic_paths,
)
from custom_components.doorstep.media import probe_stream
from scripts.lab.onvif_emulator import OnvifEmulator
from tests.rtsp_camera import RtspCameraProcess, require_gstreamer

USERNAME = "admin"
PASSWORD = "on:vif@pass word"


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
        raise AssertionError("an ONVIF device has no pinned certificate")

    def types(self) -> list[EventType]:
        return [event.type for event in self.events]

    async def wait_until(self, check: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not check():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def device() -> AsyncIterator[OnvifEmulator]:
    emulator = OnvifEmulator(username=USERNAME, password=PASSWORD, rtsp_port=8554)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


def _doorbell(
    session: aiohttp.ClientSession, port: int, password: str = PASSWORD, **kwargs: float
) -> OnvifDoorbell:
    return OnvifDoorbell(
        session,
        "127.0.0.1",
        USERNAME,
        password,
        port=port,
        request_timeout=kwargs.get("request_timeout", 5.0),
        pull_timeout=kwargs.get("pull_timeout", 0.5),
        subscription_seconds=int(kwargs.get("subscription_seconds", 60)),
        retry_interval=kwargs.get("retry_interval", 0.2),
    )


async def test_identity_stream_and_capabilities(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    config = {
        KEY_DRIVER: DRIVER_ONVIF,
        "host": "127.0.0.1",
        "port": device.port,
        "username": USERNAME,
        "password": PASSWORD,
    }
    doorbell = create_doorbell(session, config)
    assert isinstance(doorbell, OnvifDoorbell)
    identity = await doorbell.connect()
    assert identity.device_id == "02005e102030"
    assert identity.manufacturer == "Doorstep Lab"
    assert identity.model == "ONVIF Door Station"
    assert identity.firmware == "2.4.1"
    capabilities = doorbell.capabilities
    assert capabilities.has_button
    assert capabilities.has_motion
    assert capabilities.has_snapshot
    spec = doorbell.stream()
    # The credentials go into the URL, percent-encoded, as the RTSP driver puts them.
    assert spec.url == "rtsp://admin:on%3Avif%40pass%20word@127.0.0.1:8554/door"
    assert spec.options == {"rtsp_transport": "tcp"}


async def test_a_device_without_a_mac_is_known_by_its_serial(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    device.mac = "00:00:00:00:00:00"
    identity = await _doorbell(session, device.port).connect()
    assert identity.device_id.startswith("onvif-")
    device.serial = "another"
    assert (await _doorbell(session, device.port).connect()).device_id != identity.device_id


async def test_a_camera_without_a_button_topic_has_no_button(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    device.button = False
    doorbell = _doorbell(session, device.port)
    await doorbell.connect()
    assert not doorbell.capabilities.has_button
    assert doorbell.capabilities.has_motion


@pytest.mark.parametrize("get_services", [True, False])
async def test_a_camera_without_an_event_service_is_watched_for_answers(
    session: aiohttp.ClientSession, device: OnvifEmulator, get_services: bool
) -> None:
    """No events to subscribe to: no button, no motion; reachable while it answers."""
    device.events = False
    device.get_services = get_services
    doorbell = OnvifDoorbell(
        session, "127.0.0.1", USERNAME, PASSWORD, port=device.port,
        request_timeout=1.0, retry_interval=0.2, check_interval=0.2,
    )  # fmt: skip
    await doorbell.connect()
    assert not doorbell.capabilities.has_button
    assert not doorbell.capabilities.has_motion
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_until(lambda: sink.connection == [True])
        port = device.port
        await device.stop()
        await sink.wait_until(lambda: sink.connection == [True, False])
        device.port = port
        await device.start()
        await sink.wait_until(lambda: sink.connection == [True, False, True])
        assert sink.types() == [EventType.HELLO, EventType.HELLO]
        assert device.subscriptions == []
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("auth", ["digest", "basic"])
async def test_snapshot_with_the_auth_the_device_asks_for(
    session: aiohttp.ClientSession, device: OnvifEmulator, auth: str
) -> None:
    device.snapshot_auth = auth
    doorbell = _doorbell(session, device.port)
    await doorbell.connect()
    assert (await doorbell.snapshot()).startswith(b"\xff\xd8")
    # The owner changed the device's password since: the snapshot is refused.
    device.password = "changed"
    with pytest.raises(InvalidAuth):
        await doorbell.snapshot()


async def test_without_a_snapshot_uri_there_is_no_snapshot(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    """The hub then stills the live stream's keyframe (the camera entity's fallback)."""
    device.snapshot = False
    doorbell = _doorbell(session, device.port)
    await doorbell.connect()
    assert not doorbell.capabilities.has_snapshot
    with pytest.raises(ProtocolError):
        await doorbell.snapshot()


async def test_pull_point_delivers_the_button_and_motion(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    doorbell = _doorbell(session, device.port)
    await doorbell.connect()
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_until(lambda: sink.connection == [True] and bool(device.subscriptions))
        assert sink.types() == [EventType.HELLO]
        assert device.press_button() == 1
        await sink.wait_until(lambda: EventType.RING in sink.types())
        device.set_motion(True)
        await sink.wait_until(lambda: EventType.MOTION_START in sink.types())
        device.set_motion(False)
        await sink.wait_until(lambda: EventType.MOTION_STOP in sink.types())
        # The button's release (false) rings nothing; each press rings once.
        assert sink.types() == [
            EventType.HELLO,
            EventType.RING,
            EventType.MOTION_START,
            EventType.MOTION_STOP,
        ]
        assert [event.motion for event in sink.events] == [False, None, True, False]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Stopping the hub's task unsubscribes from the device.
    assert device.unsubscribed == ["0"]
    assert device.subscriptions == []


async def test_a_reolink_style_visitor_event_rings(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    """The visitor topic counts as the button; found through GetCapabilities on a device
    that has no GetServices."""
    device.button_topic = "visitor"
    device.get_services = False
    doorbell = _doorbell(session, device.port)
    await doorbell.connect()
    assert doorbell.capabilities.has_button
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_until(lambda: bool(device.subscriptions))
        device.press_button()
        await sink.wait_until(lambda: EventType.RING in sink.types())
        assert sink.types() == [EventType.HELLO, EventType.RING]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_motion_already_on_at_subscribe_time_is_reported(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    """A new subscription first hears each property's state (``Initialized``): motion
    that is on then starts; a button that reads false rings nothing."""
    device.set_motion(True)
    doorbell = _doorbell(session, device.port)
    await doorbell.connect()
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_until(lambda: EventType.MOTION_START in sink.types())
        device.set_motion(False)
        await sink.wait_until(lambda: EventType.MOTION_STOP in sink.types())
        assert sink.types() == [EventType.HELLO, EventType.MOTION_START, EventType.MOTION_STOP]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_subscription_is_renewed_before_it_lapses(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    doorbell = _doorbell(session, device.port, subscription_seconds=3, pull_timeout=0.3)
    await doorbell.connect()
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        async with asyncio.timeout(10):
            # Two renewals reach past the first subscription's 3 s lifetime.
            while device.renewals < 2:
                device.renewed.clear()
                await device.renewed.wait()
        # Renewed, not recreated: still the first subscription, which still delivers.
        assert device.subscriptions == ["0"]
        device.press_button()
        await sink.wait_until(lambda: EventType.RING in sink.types())
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_vanished_device_is_unavailable_then_recovers(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    doorbell = _doorbell(session, device.port, request_timeout=1.0)
    await doorbell.connect()
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_until(lambda: sink.connection == [True])
        port = device.port
        await device.stop()
        await sink.wait_until(lambda: sink.connection == [True, False])
        device.port = port
        await device.start()
        await sink.wait_until(lambda: sink.connection == [True, False, True])
        await sink.wait_until(lambda: bool(device.subscriptions))
        device.press_button()
        await sink.wait_until(lambda: EventType.RING in sink.types())
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_wrong_password_is_invalid_auth(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    with pytest.raises(InvalidAuth):
        await _doorbell(session, device.port, password="wrong").connect()
    assert device.auth_failures >= 1


async def test_wrong_password_stops_the_event_task(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    sink = Sink()
    async with asyncio.timeout(10):
        await _doorbell(session, device.port, password="wrong").run_events(sink)
    assert sink.auth_failures == 1


@pytest.mark.parametrize(
    ("misbehave", "error"),
    [("fault", ProtocolError), ("malformed", NotOnvif), ("oversized", AnswerTooLarge)],
)
async def test_a_misbehaving_device_is_a_clear_error(
    session: aiohttp.ClientSession,
    device: OnvifEmulator,
    misbehave: str,
    error: type[Exception],
) -> None:
    device.misbehave = misbehave
    with pytest.raises(error):
        await _doorbell(session, device.port).connect()


async def test_a_device_that_turns_bad_while_subscribed_is_unavailable(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    doorbell = _doorbell(session, device.port)
    await doorbell.connect()
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_until(lambda: sink.connection == [True])
        device.misbehave = "malformed"
        await sink.wait_until(lambda: sink.connection == [True, False])
        device.misbehave = None
        await sink.wait_until(lambda: sink.connection == [True, False, True])
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_web_server_that_is_not_onvif(session: aiohttp.ClientSession) -> None:
    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Router login</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        with pytest.raises(NotOnvif):
            await _doorbell(session, runner.addresses[0][1]).connect()
    finally:
        await runner.cleanup()


async def test_a_web_server_answering_404_is_not_onvif(session: aiohttp.ClientSession) -> None:
    runner = web.AppRunner(web.Application(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        with pytest.raises(NotOnvif):
            await _doorbell(session, runner.addresses[0][1]).connect()
    finally:
        await runner.cleanup()


async def test_nothing_listening_cannot_connect(session: aiohttp.ClientSession) -> None:
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(CannotConnect):
        await _doorbell(session, port).connect()


async def test_the_password_is_not_logged(
    session: aiohttp.ClientSession, device: OnvifEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    doorbell = _doorbell(session, device.port)
    await doorbell.connect()
    await doorbell.snapshot()
    sink = Sink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_until(lambda: bool(device.subscriptions))
        device.press_button()
        await sink.wait_until(lambda: EventType.RING in sink.types())
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    with pytest.raises(InvalidAuth):
        await _doorbell(session, device.port, password="wrong").connect()
    assert "on:vif@pass word" not in caplog.text
    assert "on%3Avif%40pass%20word" not in caplog.text


async def test_live_video_is_the_profiles_rtsp_stream(
    session: aiohttp.ClientSession, device: OnvifEmulator
) -> None:
    require_gstreamer()
    camera = RtspCameraProcess(path="/door", username=USERNAME, password=PASSWORD)
    await camera.start()
    try:
        device.rtsp_port = camera.port
        doorbell = _doorbell(session, device.port)
        await doorbell.connect()
        spec = doorbell.stream()
        assert spec.url is not None
        probe = await probe_stream(spec.url, options=spec.options)
    finally:
        await camera.stop()
    assert probe.codec == "h264"


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("tns1:RuleEngine/CellMotionDetector/Motion", "RuleEngine/CellMotionDetector/Motion"),
        ("tns1:RuleEngine/CellMotionDetector/Motion//.", "RuleEngine/CellMotionDetector/Motion"),
        ("tns1:Device/Trigger/DigitalInput/", "Device/Trigger/DigitalInput"),
        ("onvif:Device/tnsaxis:IO/Port", "Device/IO/Port"),
    ],
)
def test_topics_are_compared_without_their_prefixes(topic: str, expected: str) -> None:
    assert normalize_topic(topic) == expected


def test_a_notification_without_a_topic_is_ignored() -> None:
    assert parse_notification(object()) is None


def test_a_message_zeep_left_as_xml_is_read_too() -> None:
    """A device's own message type reaches the driver as an lxml element, not an object."""
    payload = etree.fromstring(
        '<tt:Message xmlns:tt="http://www.onvif.org/ver10/schema" PropertyOperation="Changed">'
        '<tt:Source><tt:SimpleItem Name="InputToken" Value="1"/></tt:Source>'
        '<tt:Data><tt:SimpleItem Name="LogicalState" Value="true"/></tt:Data></tt:Message>'
    )
    message = SimpleNamespace(
        Topic=SimpleNamespace(_value_1="tns1:Device/Trigger/DigitalInput"),
        Message=SimpleNamespace(_value_1=payload),
    )
    notification = parse_notification(message)
    assert notification is not None
    assert notification.topic == "Device/Trigger/DigitalInput"
    assert notification.source == (("InputToken", "1"),)
    assert notification.data == {"LogicalState": "true"}
    assert not notification.initialized


def test_topics_offered_are_read_from_the_topic_set() -> None:
    """Nested topic elements, marked wstop:topic, become paths; descriptions do not."""
    tree = etree.fromstring(
        '<tns1:RuleEngine xmlns:tns1="http://www.onvif.org/ver10/topics"'
        ' xmlns:wstop="http://docs.oasis-open.org/wsn/t-1"'
        ' xmlns:tt="http://www.onvif.org/ver10/schema">'
        '<MyRuleDetector><Visitor wstop:topic="true"><tt:MessageDescription>'
        '<tt:Data><tt:SimpleItemDescription Name="State"/></tt:Data>'
        "</tt:MessageDescription></Visitor></MyRuleDetector>"
        '<CellMotionDetector><Motion wstop:topic="true"/></CellMotionDetector>'
        "</tns1:RuleEngine>"
    )
    paths = topic_paths(SimpleNamespace(_value_1=[tree]))
    assert paths == {"RuleEngine/MyRuleDetector/Visitor", "RuleEngine/CellMotionDetector/Motion"}
    assert paths <= set(BUTTON_TOPICS) | set(MOTION_TOPICS)


class _Heard:
    """An event sink that keeps what the driver reported."""

    def __init__(self) -> None:
        self.events: list[DoorbellEvent] = []

    def handle_event(self, event: DoorbellEvent) -> None:
        self.events.append(event)

    def handle_connection_change(self, connected: bool) -> None:
        pass


def _note(
    topic: str, item: str, value: str, *, source: str = "1", initialized: bool = False
) -> Notification:
    return Notification(
        topic=topic,
        source=(("Source", source),),
        data={item: value},
        initialized=initialized,
    )


async def test_a_button_already_down_at_subscribe_time_does_not_ring(
    session: aiohttp.ClientSession,
) -> None:
    """The state a new subscription starts with (``Initialized``) is no press, even when
    the input reads true then (a stuck or wired-closed contact); only a change rings."""
    driver = OnvifDoorbell(session, "127.0.0.1", "user", "pass")
    heard = _Heard()
    topic = "Device/Trigger/DigitalInput"
    item = BUTTON_TOPICS[topic]
    driver._handle(heard, _note(topic, item, "true", initialized=True))
    assert heard.events == []
    driver._handle(heard, _note(topic, item, "false"))
    driver._handle(heard, _note(topic, item, "true"))
    assert [event.type for event in heard.events] == [EventType.RING]


async def test_motion_is_on_while_any_source_says_so(session: aiohttp.ClientSession) -> None:
    """Two motion sources (two cells, or a cell and a region detector): motion starts with
    the first and stops only when the last one stops."""
    driver = OnvifDoorbell(session, "127.0.0.1", "user", "pass")
    heard = _Heard()
    cell = "RuleEngine/CellMotionDetector/Motion"
    region = "RuleEngine/MotionRegionDetector/Motion"
    driver._handle(heard, _note(cell, MOTION_TOPICS[cell], "true", source="a"))
    driver._handle(heard, _note(region, MOTION_TOPICS[region], "true", source="b"))
    driver._handle(heard, _note(cell, MOTION_TOPICS[cell], "false", source="a"))
    assert [event.type for event in heard.events] == [EventType.MOTION_START]
    driver._handle(heard, _note(region, MOTION_TOPICS[region], "false", source="b"))
    assert [event.type for event in heard.events] == [
        EventType.MOTION_START,
        EventType.MOTION_STOP,
    ]

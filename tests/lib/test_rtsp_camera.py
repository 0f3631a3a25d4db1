"""RTSP cameras added by hand, against a real GStreamer RTSP server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
import io
import logging
import socket

import aiohttp
from aiohttp import web
import av
import pytest

from custom_components.doorstep.device import (
    DRIVER_RTSP,
    KEY_DRIVER,
    CannotConnect,
    DoorbellEvent,
    FingerprintMismatch,
    NotRtsp,
    RtspCamera,
    check_rtsp,
    create_doorbell,
    parse_rtsp_url,
    rtsp_device_id,
    with_credentials,
)
from custom_components.doorstep.media import (
    Backoff,
    NotAStream,
    NoVideo,
    StreamError,
    StreamNotFound,
    StreamRefused,
    StreamSource,
    StreamUnreachable,
    keyframe_to_jpeg,
    probe_stream,
)
from custom_components.doorstep.media.redact import redact_credentials
from tests.rtsp_camera import RtspCameraProcess, require_gstreamer

# Characters that must be escaped in a URL's userinfo, so the quoting is proved too.
USERNAME = "viewer"
PASSWORD = "p@ss:w/rd"


@pytest.fixture
async def camera() -> AsyncIterator[RtspCameraProcess]:
    require_gstreamer()
    server = RtspCameraProcess(username=USERNAME, password=PASSWORD)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def audio_only_camera() -> AsyncIterator[RtspCameraProcess]:
    require_gstreamer()
    server = RtspCameraProcess(no_video=True)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http_server() -> AsyncIterator[str]:
    """A web server: something that answers, but not in RTSP."""
    app = web.Application()

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"rtsp://127.0.0.1:{port}/door"
    finally:
        await runner.cleanup()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class ConnectionSink:
    def __init__(self) -> None:
        self.connection: list[bool] = []
        self.events: list[DoorbellEvent] = []
        self.changed = asyncio.Event()

    def handle_event(self, event: DoorbellEvent) -> None:
        self.events.append(event)

    def handle_connection_change(self, connected: bool) -> None:
        self.connection.append(connected)
        self.changed.set()

    def handle_auth_failed(self) -> None:
        raise AssertionError("an RTSP camera has no credentials to refuse between checks")

    def handle_fingerprint_mismatch(self, err: FingerprintMismatch) -> None:
        raise AssertionError("an RTSP camera has no certificate")

    async def wait_for(self, expected: list[bool]) -> None:
        async with asyncio.timeout(10):
            while self.connection != expected:
                self.changed.clear()
                await self.changed.wait()


# URLs -------------------------------------------------------------------------


def test_parse_rtsp_url_takes_the_credentials_out() -> None:
    assert parse_rtsp_url(" rtsp://admin:s%40cret@192.168.1.20:554/Streaming/101 ") == (
        "rtsp://192.168.1.20:554/Streaming/101",
        "admin",
        "s@cret",
    )
    assert parse_rtsp_url("RTSP://cam.local/live?channel=1") == (
        "rtsp://cam.local/live?channel=1",
        None,
        None,
    )
    assert parse_rtsp_url("rtsp://[fe80::1]:8554/door")[0] == "rtsp://[fe80::1]:8554/door"


@pytest.mark.parametrize(
    "url",
    [
        "http://192.168.1.20/stream",
        "rtspu://192.168.1.20/stream",
        "192.168.1.20/stream",
        "rtsp:///stream",
        "rtsp://cam.local:99999/door",
        "rtsp://cam.local/do or",
        "rtsp://cam.local/do\nor",
        "rtsp://cam.local/" + "a" * 3000,
        "",
    ],
)
def test_parse_rtsp_url_refuses_what_is_not_rtsp(url: str) -> None:
    with pytest.raises(NotRtsp):
        parse_rtsp_url(url)


def test_credentials_go_into_the_url_escaped() -> None:
    url = "rtsp://127.0.0.1:8554/door"
    assert with_credentials(url, None, None) == url
    assert with_credentials(url, "viewer", None) == "rtsp://viewer@127.0.0.1:8554/door"
    assert with_credentials(url, "a b", "p@ss:w/rd") == (
        "rtsp://a%20b:p%40ss%3Aw%2Frd@127.0.0.1:8554/door"
    )


def test_device_id_is_stable_and_valid() -> None:
    first = rtsp_device_id("rtsp://127.0.0.1:8554/door")
    assert first == rtsp_device_id("rtsp://127.0.0.1:8554/door")
    assert first != rtsp_device_id("rtsp://127.0.0.1:8554/garden")
    assert first.startswith("rtsp-")
    assert len(first) <= 32


def test_redact_credentials() -> None:
    message = "Server returned 401: 'rtsp://viewer:p%40ss@127.0.0.1:8554/door' and rtsp://x@h/"
    assert redact_credentials(message) == (
        "Server returned 401: 'rtsp://***@127.0.0.1:8554/door' and rtsp://***@h/"
    )
    assert redact_credentials("rtsp://127.0.0.1/door") == "rtsp://127.0.0.1/door"


# Checking a camera before it is added -------------------------------------------


async def test_probe_reads_the_cameras_video(camera: RtspCameraProcess) -> None:
    await check_rtsp(camera.url)
    probe = await probe_stream(with_credentials(camera.url, USERNAME, PASSWORD))
    assert probe.codec == "h264"
    assert (probe.width, probe.height) == (320, 240)
    assert probe.profile == "Constrained Baseline"


async def test_wrong_or_missing_credentials_are_refused(camera: RtspCameraProcess) -> None:
    # OPTIONS needs no credentials: the server is there either way.
    await check_rtsp(camera.url)
    with pytest.raises(StreamRefused) as wrong:
        await probe_stream(with_credentials(camera.url, USERNAME, "wrong"))
    with pytest.raises(StreamRefused):
        await probe_stream(camera.url)
    assert "wrong" not in str(wrong.value)


async def test_a_path_without_a_stream_is_not_found(camera: RtspCameraProcess) -> None:
    url = f"rtsp://127.0.0.1:{camera.port}/garden"
    with pytest.raises(StreamNotFound):
        await probe_stream(with_credentials(url, USERNAME, PASSWORD))


async def test_a_stream_with_no_video_is_refused(audio_only_camera: RtspCameraProcess) -> None:
    await check_rtsp(audio_only_camera.url)
    with pytest.raises(NoVideo, match="no video"):
        await probe_stream(audio_only_camera.url)


async def test_a_web_server_is_not_rtsp(http_server: str) -> None:
    with pytest.raises(NotRtsp):
        await check_rtsp(http_server)
    with pytest.raises(NotAStream):
        await probe_stream(http_server)


async def test_nothing_listening_is_unreachable() -> None:
    url = f"rtsp://127.0.0.1:{_closed_port()}/door"
    with pytest.raises(CannotConnect):
        await check_rtsp(url)
    with pytest.raises(StreamUnreachable):
        await probe_stream(url)


async def test_a_silent_server_is_unreachable() -> None:
    """It accepts the connection and never says a word."""

    async def say_nothing(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)
        writer.close()

    server = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"rtsp://127.0.0.1:{port}/door"
    try:
        with pytest.raises(CannotConnect):
            await check_rtsp(url, within=0.5)
        with pytest.raises(StreamUnreachable):
            await probe_stream(url, within=1.0)
    finally:
        server.close()
        await server.wait_closed()


# The driver ---------------------------------------------------------------------


def _camera_config(server: RtspCameraProcess) -> dict[str, object]:
    return {
        KEY_DRIVER: DRIVER_RTSP,
        "url": server.url,
        "username": USERNAME,
        "password": PASSWORD,
        "device_id": rtsp_device_id(server.url),
        "name": "Porch",
    }


async def test_the_driver_is_a_camera_without_a_button(camera: RtspCameraProcess) -> None:
    async with aiohttp.ClientSession() as session:
        doorbell = create_doorbell(session, _camera_config(camera))
    assert isinstance(doorbell, RtspCamera)
    assert doorbell.driver == DRIVER_RTSP
    assert doorbell.host == "127.0.0.1"
    capabilities = doorbell.capabilities
    assert not capabilities.has_button
    assert not capabilities.has_motion
    assert not capabilities.has_snapshot
    identity = await doorbell.connect()
    assert identity.device_id == rtsp_device_id(camera.url)
    assert identity.name == "Porch"
    assert identity.model == "RTSP camera"


async def test_the_drivers_stream_plays_and_survives_the_server_vanishing(
    camera: RtspCameraProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Live view reads the camera through the source; a dead server is retried, quietly
    about the password, and the picture comes back when the camera does."""
    caplog.set_level(logging.DEBUG)
    spec = RtspCamera(
        camera.url, device_id="rtsp-test", name="Porch", username=USERNAME, password=PASSWORD
    ).stream()
    assert spec.url is not None
    source = StreamSource.from_url(
        spec.url,
        name="Porch",
        options=spec.options,
        backoff=Backoff(initial=0.2, maximum=0.5),
        read_timeout=2.0,
    )
    packets = source.packets()
    received: list[tuple[int, bool, int]] = []

    async def pump() -> None:
        async for packet in packets:
            received.append((source.stats.connects, packet.is_keyframe, packet.pts))

    def resumed() -> bool:
        return any(connects >= 2 and keyframe for connects, keyframe, _ in received)

    task = asyncio.create_task(pump())
    try:
        await _eventually(lambda: bool(received))
        await camera.stop()
        await _eventually(lambda: source.stats.failures > 0)
        await camera.start()
        await _eventually(resumed)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await packets.aclose()
    first = received[0]
    after = next(item for item in received if item[0] >= 2 and item[1])
    assert first[1]  # a connection starts at a keyframe
    assert after[2] > first[2]  # time runs on across the outage
    assert source.stats.last_error is not None
    quoted = with_credentials(camera.url, USERNAME, PASSWORD)
    for text in [source.stats.last_error, caplog.text]:
        assert quoted.split("@")[0] not in text
        assert "w%2Frd" not in text
        assert PASSWORD not in text


async def test_reachability_follows_the_server(camera: RtspCameraProcess) -> None:
    doorbell = RtspCamera(camera.url, device_id="rtsp-test", name="Porch", check_interval=0.1)
    sink = ConnectionSink()
    task = asyncio.create_task(doorbell.run_events(sink))
    try:
        await sink.wait_for([True])
        await camera.stop()
        await sink.wait_for([True, False])
        await camera.start()
        await sink.wait_for([True, False, True])
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sink.events == []


# Stills for devices without a snapshot ----------------------------------------------


async def test_a_keyframe_becomes_a_jpeg(camera: RtspCameraProcess) -> None:
    source = StreamSource.from_url(with_credentials(camera.url, USERNAME, PASSWORD), name="x")
    packets = source.packets()
    try:
        async with asyncio.timeout(15):
            keyframe = await anext(packets)
    finally:
        await packets.aclose()
    assert keyframe.is_keyframe
    jpeg = await asyncio.to_thread(keyframe_to_jpeg, keyframe.payload)
    with av.open(io.BytesIO(jpeg)) as container:
        picture = next(container.decode(video=0))
    assert (picture.width, picture.height) == (320, 240)


@pytest.mark.parametrize("payload", [b"", b"\x00\x00\x00\x01\x65" + b"\xff" * 64])
def test_what_is_not_a_keyframe_is_a_stream_error(payload: bytes) -> None:
    with pytest.raises(StreamError):
        keyframe_to_jpeg(payload)

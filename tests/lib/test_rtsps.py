"""RTSP over TLS (``rtsps://``): URLs, FFmpeg's options, and GStreamer's RTSP server
speaking TLS with a camera's own certificate, which the hub takes as cameras need."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from custom_components.doorstep.device import (
    NotTls,
    RtspCamera,
    check_rtsp,
    parse_rtsp_url,
    stream_options,
    with_credentials,
)
from custom_components.doorstep.media import StreamSource, probe_stream
from scripts.lab.certs import TestCa
from tests.rtsp_camera import RtspCameraProcess, require_gstreamer

USERNAME = "viewer"
PASSWORD = "tls:p@ss"


@pytest.fixture
async def tls_camera(tmp_path: Path) -> AsyncIterator[RtspCameraProcess]:
    """A camera that speaks rtsps:// only, with a certificate no client trusts."""
    require_gstreamer()
    files = TestCa.create(tmp_path / "ca").issue(tmp_path / "camera", ["127.0.0.1"])
    server = RtspCameraProcess(username=USERNAME, password=PASSWORD, tls=(files.cert, files.key))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def plain_camera() -> AsyncIterator[RtspCameraProcess]:
    require_gstreamer()
    server = RtspCameraProcess()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def test_rtsps_urls_are_taken_and_keep_their_scheme() -> None:
    assert parse_rtsp_url("RTSPS://user:p%40ss@Cam.lan:7322/live?ch=1") == (
        "rtsps://cam.lan:7322/live?ch=1",
        "user",
        "p@ss",
    )
    assert parse_rtsp_url("rtsps://[fe80::1]/live")[0] == "rtsps://[fe80::1]/live"
    assert with_credentials("rtsps://cam.lan/live", "a", "b:c") == "rtsps://a:b%3Ac@cam.lan/live"


def test_only_rtsps_takes_the_cameras_own_certificate() -> None:
    assert stream_options("rtsps://cam.lan/live") == {"rtsp_transport": "tcp", "tls_verify": "0"}
    assert stream_options("rtsp://cam.lan/live") == {"rtsp_transport": "tcp"}


async def test_a_plain_rtsp_server_behind_rtsps_is_not_tls(
    plain_camera: RtspCameraProcess,
) -> None:
    url = plain_camera.url.replace("rtsp://", "rtsps://", 1)
    with pytest.raises(NotTls) as err:
        await check_rtsp(url)
    assert f"127.0.0.1:{plain_camera.port}" in str(err.value)


async def test_the_tls_camera_answers_and_plays(tls_camera: RtspCameraProcess) -> None:
    """The reachability check and FFmpeg both get through TLS; the picture is H.264."""
    assert tls_camera.url.startswith("rtsps://")
    await check_rtsp(tls_camera.url)
    url = with_credentials(tls_camera.url, USERNAME, PASSWORD)
    probe = await probe_stream(url, options=stream_options(tls_camera.url))
    assert (probe.codec, probe.width, probe.height) == ("h264", 320, 240)


async def test_the_drivers_rtsps_stream_plays(tls_camera: RtspCameraProcess) -> None:
    camera = RtspCamera(
        tls_camera.url, device_id="rtsp-tls", name="Porch", username=USERNAME, password=PASSWORD
    )
    identity = await camera.connect()
    assert identity.device_id == "rtsp-tls"
    spec = camera.stream()
    assert spec.url is not None
    source = StreamSource.from_url(spec.url, name="porch", options=spec.options)
    packets = source.packets()
    keyframes = 0
    try:
        async with asyncio.timeout(20):
            async for packet in packets:
                keyframes += packet.is_keyframe
                if keyframes >= 2:
                    break
    finally:
        await packets.aclose()
    assert keyframes == 2

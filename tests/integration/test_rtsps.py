"""Adding an ``rtsps://`` camera through the config flow: a server that does not speak
TLS gets its own clear error, a camera that does is added with its URL as typed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_NAME, CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.doorstep.const import DOMAIN
from scripts.lab.certs import TestCa
from tests.rtsp_camera import RtspCameraProcess, require_gstreamer

USERNAME = "viewer"
PASSWORD = "tls:p@ss"


@pytest.fixture
async def cameras(
    socket_enabled: None, tmp_path: Path
) -> AsyncIterator[tuple[RtspCameraProcess, RtspCameraProcess]]:
    """A plain RTSP camera and one that speaks only RTSP over TLS."""
    require_gstreamer()
    files = TestCa.create(tmp_path / "ca").issue(tmp_path / "camera", ["127.0.0.1"])
    plain = RtspCameraProcess(username=USERNAME, password=PASSWORD)
    tls = RtspCameraProcess(username=USERNAME, password=PASSWORD, tls=(files.cert, files.key))
    await plain.start()
    try:
        await tls.start()
        try:
            yield plain, tls
        finally:
            await tls.stop()
    finally:
        await plain.stop()


async def test_rtsps_in_the_config_flow(
    hass: HomeAssistant, cameras: tuple[RtspCameraProcess, RtspCameraProcess]
) -> None:
    plain, tls = cameras
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "rtsp"}
    )
    flow_id = result["flow_id"]
    credentials = {CONF_NAME: "Porch", CONF_USERNAME: USERNAME, CONF_PASSWORD: PASSWORD}

    not_tls = plain.url.replace("rtsp://", "rtsps://", 1)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**credentials, CONF_URL: not_tls}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_URL: "rtsps_not_tls"}

    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        result = await hass.config_entries.flow.async_configure(
            flow_id, {**credentials, CONF_URL: tls.url}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["data"][CONF_URL] == tls.url
    assert tls.url.startswith("rtsps://")

"""A doorbell that sends High profile with B-frames: the repair issue explains the
fallback, live view still plays, and recording keeps the doorbell's own stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import threading
from typing import Any
from unittest.mock import patch

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
import av
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.doorstep.const import (
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    DOMAIN,
    ISSUE_VIDEO_PROFILE,
)
from custom_components.doorstep.media.h264 import parameter_sets, parse_sps
from custom_components.doorstep.recording import DATA_CLIPS
from custom_components.doorstep.repairs import profile_issue_id
from reference_doorbell.blockcode import decode_blockcode
from reference_doorbell.doorbell import Doorbell

from .conftest import wait_for
from .test_camera import _offer, _send_offer

# The test client connects from 127.0.0.1: a browser on the hub, counted as home.
pytestmark = pytest.mark.usefixtures("hub_browsers_at_home")


@pytest.fixture(autouse=True)
def _loopback_ice() -> Iterator[None]:
    with patch("aioice.ice.get_host_addresses", return_value=["127.0.0.1"]):
        yield


@pytest.fixture
def doorbell_settings() -> dict[str, Any]:
    """The shared doorbell fixture, set to the High profile with B-frames."""
    return {"stream_profile": "high"}


async def test_high_profile_raises_the_issue_and_live_view_still_plays(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    doorbell: Doorbell,
    loaded_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    ws = await hass_ws_client(hass)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    counters: list[int] = []

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def read() -> None:
            while len(counters) < 15:
                frame = await track.recv()
                code = decode_blockcode(frame.to_ndarray(format="rgb24"))
                if code is not None:
                    counters.append(code[0])

        hass.async_create_background_task(read(), "test viewer")

    try:
        messages = await _send_offer(ws, await _offer(pc))
        assert messages[-1]["type"] == "answer", messages
        await pc.setRemoteDescription(RTCSessionDescription(messages[-1]["answer"], "answer"))
        await wait_for(hass, lambda: len(counters) >= 15, within=30)
    finally:
        await pc.close()
    assert counters == sorted(counters)
    assert counters[-1] > counters[0]

    # The issue names the profile and explains the fallback, its cost and the fix.
    issue = issue_registry.async_get_issue(DOMAIN, profile_issue_id(doorbell.device_id))
    assert issue is not None
    assert issue.translation_key == ISSUE_VIDEO_PROFILE
    assert issue.severity == ir.IssueSeverity.WARNING
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["profile"] == "high"
    translations = await async_get_translations(hass, "en", "issues", [DOMAIN])
    prefix = f"component.{DOMAIN}.issues.{ISSUE_VIDEO_PROFILE}"
    description = translations[f"{prefix}.description"]
    assert "Live view still works" in description
    assert "processor core" in description
    assert "B-frames turned off" in description
    assert "re-encoded" in translations[f"{prefix}.title"]

    # Viewers got our constrained baseline; the doorbell's own stream (what the recorder
    # taps) stayed High profile, byte for byte the camera's.
    data = loaded_entry.runtime_data
    gop, _ = data.relay.cached_gop()
    assert gop
    sps, _ = parameter_sets(gop[0].payload)
    assert sps is not None
    assert parse_sps(sps).profile_name == "constrained baseline"


async def test_recorder_keeps_the_doorbells_original_stream(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """Clips are remuxed from the doorbell's own High-profile stream, not from the
    re-encoded live view: the camera's picture, and no transcoding without a viewer."""
    hass.config_entries.async_update_entry(
        paired_entry, options={CONF_PRE_ROLL: 1, CONF_POST_ROLL: 1}
    )
    assert await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: paired_entry.runtime_data.coordinator.data.connected)
    store = hass.data[DATA_CLIPS]
    await asyncio.sleep(1.5)
    await doorbell.ring()
    await wait_for(hass, lambda: len(store.list_clips()) == 1, within=15)
    assert not _transcode_threads()
    assert paired_entry.runtime_data.relay.viewer_count == 0

    [clip] = store.list_clips()
    path = store.clip_path(clip.id)

    def read_profile() -> tuple[str | None, int]:
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            frames = sum(1 for _ in container.decode(video))
            return video.codec_context.profile, frames

    profile, frames = await hass.async_add_executor_job(read_profile)
    assert profile == "High"
    assert frames > 10
    assert await hass.config_entries.async_unload(paired_entry.entry_id)


def _transcode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("doorstep transcode")]

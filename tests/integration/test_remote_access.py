"""Remote-access paths count as outside (invariant I3, issue 9 item 4).

Every request here really goes through Home Assistant's HTTP server: its forwarded
middleware, configured with or without `trusted_proxies`, decides `request.remote`, and
Doorstep then decides whether that client is at home. The test client connects from
127.0.0.1, so a "reverse proxy on the hub" is the test client sending the headers a
proxy would send.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import contextvars
from typing import Any
from unittest.mock import patch

from aiohttp import ClientWebSocketResponse
from aiortc import RTCConfiguration, RTCPeerConnection
from hass_nabucasa import remote as cloud_remote
from homeassistant.components import media_source
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.const import (
    CONF_ALLOW_REMOTE_LIVE_VIEW,
    CONF_HOME_NETWORKS,
    CONF_HUB_BROWSERS_AT_HOME,
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    DOMAIN,
)
from custom_components.doorstep.media_source import CLIP_URL
from custom_components.doorstep.recording import DATA_CLIPS
from custom_components.doorstep.sharing_views import THUMBNAIL_URL
from reference_doorbell.doorbell import Doorbell

from .conftest import wait_for
from .test_camera import CAMERA, _offer

HOME_BROWSER = "192.168.1.20"
OUTSIDE_BROWSER = "203.0.113.7"
# A proxy on the home network that the owner did not list in trusted_proxies.
UNTRUSTED_HOME_PROXY = "192.168.1.30"
UNKNOWN_CLIP = CLIP_URL.replace("{clip_id}", "0" * 32)

# How Home Assistant's HTTP server is set up, by name.
HTTP_CONFIGS: dict[str, dict[str, Any]] = {
    "no_proxy": {},
    "trusted_local_proxy": {"use_x_forwarded_for": True, "trusted_proxies": ["127.0.0.1", "::1"]},
}


@pytest.fixture(autouse=True)
def _loopback_ice() -> Iterator[None]:
    """The test harness fakes network adapters; let aiortc gather on loopback only."""
    with patch("aioice.ice.get_host_addresses", return_value=["127.0.0.1"]):
        yield


@pytest.fixture
def http_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Home Assistant's `http:` settings; tests pick one by name (indirect parameter)."""
    return HTTP_CONFIGS[getattr(request, "param", "no_proxy")]


@pytest.fixture
async def http_server(hass: HomeAssistant, http_config: dict[str, Any]) -> None:
    """Home Assistant's HTTP server set up with ``http_config``, before anything else."""
    assert await async_setup_component(hass, "http", {"http": http_config})


@pytest.fixture
async def doorbell_entry(
    hass: HomeAssistant,
    http_server: None,
    doorbell: Doorbell,
    paired_entry: MockConfigEntry,
) -> AsyncIterator[MockConfigEntry]:
    """The paired doorbell set up behind an HTTP server configured by ``http_config``."""
    assert await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: paired_entry.runtime_data.coordinator.data.connected)
    yield paired_entry
    await hass.config_entries.async_unload(paired_entry.entry_id)
    await hass.async_block_till_done()


def _set_options(hass: HomeAssistant, entry: MockConfigEntry, **options: Any) -> None:
    hass.config_entries.async_update_entry(entry, options={**entry.options, **options})


async def _snapshot_status(client: Any, headers: dict[str, str]) -> int:
    response = await client.get(f"/api/camera_proxy/{CAMERA}", headers=headers)
    if response.status == 200:
        assert (await response.read())[:2] == b"\xff\xd8"
    return int(response.status)


async def _websocket(
    hass: HomeAssistant, client: Any, token: str, headers: dict[str, str]
) -> ClientWebSocketResponse:
    """Home Assistant's websocket API, logged in, with a proxy's headers on the upgrade."""
    assert await async_setup_component(hass, "websocket_api", {})
    ws: ClientWebSocketResponse = await client.ws_connect("/api/websocket", headers=headers)
    assert (await ws.receive_json())["type"] == "auth_required"
    await ws.send_json({"type": "auth", "access_token": token})
    assert (await ws.receive_json())["type"] == "auth_ok"
    return ws


async def _offer_reply(ws: ClientWebSocketResponse) -> dict[str, Any]:
    """Send a real aiortc offer for the camera; the answer or the error it gets."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        sdp = await _offer(pc)
        await ws.send_json(
            {"id": 1, "type": "camera/webrtc/offer", "entity_id": CAMERA, "offer": sdp}
        )
        result = await ws.receive_json()
        assert result["success"], result
        async with asyncio.timeout(10):
            while True:
                event: dict[str, Any] = (await ws.receive_json())["event"]
                if event["type"] in ("answer", "error"):
                    return event
    finally:
        await pc.close()


# (http config, request headers, what a browser there gets)
CASES = [
    # 127.0.0.1 with no proxy header: a browser on the hub or a tunnel ending there
    # (ssh -R, cloudflared, ngrok, socat). Outside unless the owner says otherwise.
    pytest.param("no_proxy", {}, False, id="direct-on-loopback"),
    pytest.param("no_proxy", {"X-Real-IP": HOME_BROWSER}, False, id="untrusted-proxy-x-real-ip"),
    pytest.param(
        "no_proxy", {"Forwarded": f"for={HOME_BROWSER};proto=https"}, False, id="forwarded"
    ),
    pytest.param("no_proxy", {"Via": "1.1 nginx"}, False, id="untrusted-proxy-via"),
    pytest.param("trusted_local_proxy", {}, False, id="trusted-proxy-names-nobody"),
    pytest.param(
        "trusted_local_proxy", {"X-Forwarded-For": HOME_BROWSER}, True, id="trusted-proxy-home"
    ),
    pytest.param(
        "trusted_local_proxy",
        {"X-Forwarded-For": OUTSIDE_BROWSER},
        False,
        id="trusted-proxy-outside",
    ),
    pytest.param(
        "trusted_local_proxy",
        {"X-Forwarded-For": f"{HOME_BROWSER}, {OUTSIDE_BROWSER}"},
        False,
        id="spoofed-home-address-before-outside-one",
    ),
    pytest.param(
        "trusted_local_proxy",
        {"X-Forwarded-For": f"{OUTSIDE_BROWSER}, {UNTRUSTED_HOME_PROXY}"},
        False,
        id="untrusted-home-proxy-behind-trusted-one",
    ),
]


@pytest.mark.parametrize(("http_config", "headers", "at_home"), CASES, indirect=["http_config"])
async def test_footage_routes_follow_the_browser_not_the_proxy(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    doorbell_entry: MockConfigEntry,
    headers: dict[str, str],
    at_home: bool,
) -> None:
    """Snapshot (camera proxy), clip view and WebRTC offer over the websocket all give
    the same answer, decided by where the browser is, not by the proxy's address."""
    client = await hass_client()

    assert await _snapshot_status(client, headers) == (200 if at_home else 403)
    # An unknown clip: 404 at home (past the gate), 403 outside (stopped at it).
    clip = await client.get(UNKNOWN_CLIP, headers=headers)
    assert clip.status == (404 if at_home else 403)

    ws = await _websocket(hass, client, hass_access_token, headers)
    try:
        reply = await _offer_reply(ws)
    finally:
        await ws.close()
    if at_home:
        assert reply["type"] == "answer"
    else:
        assert reply["type"] == "error"
        assert reply["code"] == "doorstep_outside_home_network"
        assert len(doorbell_entry.runtime_data.sessions) == 0


async def _footage_answers(
    hass: HomeAssistant, client: Any, token: str, headers: dict[str, str]
) -> tuple[int, int, str]:
    """Snapshot status, unknown-clip status, and the WebRTC offer's reply type."""
    snapshot = await _snapshot_status(client, headers)
    clip = (await client.get(UNKNOWN_CLIP, headers=headers)).status
    ws = await _websocket(hass, client, token, headers)
    try:
        reply = await _offer_reply(ws)
    finally:
        await ws.close()
    return snapshot, clip, reply["type"]


@pytest.mark.parametrize("at_home", [False, True], ids=["default", "owner-counts-hub-as-home"])
async def test_a_tunnel_on_the_hub_is_outside_unless_the_owner_says(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    doorbell_entry: MockConfigEntry,
    at_home: bool,
) -> None:
    """A TCP tunnel ending on the hub (ssh -R, cloudflared, ngrok in TCP mode, socat)
    connects from 127.0.0.1 and adds no header, exactly like the test client here: every
    footage route refuses it, until the owner counts browsers on the hub as home in the
    sharing entry's options. Proxy headers from 127.0.0.1 stay outside either way."""
    sharing = next(
        e for e in hass.config_entries.async_entries(DOMAIN) if e.data.get("kind") == "sharing"
    )
    assert sharing.options.get(CONF_HUB_BROWSERS_AT_HOME) is None  # off by default
    # The owner's way: the sharing entry's options, "Browsers on this hub".
    menu = await hass.config_entries.options.async_init(sharing.entry_id)
    form = await hass.config_entries.options.async_configure(
        menu["flow_id"], {"next_step_id": "hub_browsers"}
    )
    assert form["step_id"] == "hub_browsers"
    done = await hass.config_entries.options.async_configure(
        form["flow_id"], {CONF_HUB_BROWSERS_AT_HOME: at_home}
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert sharing.options[CONF_HUB_BROWSERS_AT_HOME] is at_home
    client = await hass_client()

    answers = await _footage_answers(hass, client, hass_access_token, {})
    assert answers == ((200, 404, "answer") if at_home else (403, 403, "error"))
    forwarded = await _footage_answers(hass, client, hass_access_token, {"X-Real-IP": HOME_BROWSER})
    assert forwarded == (403, 403, "error")


async def test_forwarded_for_from_an_untrusted_peer_is_refused_by_home_assistant(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, doorbell_entry: MockConfigEntry
) -> None:
    """Without trusted_proxies, Home Assistant itself answers 400 to X-Forwarded-For, so
    a spoofed home address never reaches Doorstep."""
    client = await hass_client()
    response = await client.get(
        f"/api/camera_proxy/{CAMERA}", headers={"X-Forwarded-For": HOME_BROWSER}
    )
    assert response.status == 400


@pytest.mark.parametrize("http_config", ["trusted_local_proxy"], indirect=True)
async def test_owner_option_opens_live_view_but_not_clips(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, doorbell_entry: MockConfigEntry
) -> None:
    """ "Allow live view from outside the home network" opens snapshots and live view to
    a browser behind a proxy; an added home network counts as home; clips stay at home."""
    client = await hass_client()
    outside = {"X-Forwarded-For": OUTSIDE_BROWSER}
    assert await _snapshot_status(client, outside) == 403

    _set_options(hass, doorbell_entry, **{CONF_HOME_NETWORKS: ["203.0.113.0/24"]})
    assert await _snapshot_status(client, outside) == 200

    _set_options(
        hass, doorbell_entry, **{CONF_HOME_NETWORKS: [], CONF_ALLOW_REMOTE_LIVE_VIEW: True}
    )
    assert await _snapshot_status(client, outside) == 200
    assert await _snapshot_status(client, {}) == 200  # even a proxy that names nobody
    assert (await client.get(UNKNOWN_CLIP, headers=outside)).status == 403


async def _cloud_client(hass: HomeAssistant, hass_client: ClientSessionGenerator) -> Any:
    """A client whose connections Home Assistant sees as Home Assistant Cloud's remote UI.

    hass_nabucasa marks remote-UI connections by setting `is_cloud_request` before it
    starts serving them, so every request on them runs with it set. This test server is
    started the same way, in a context with the flag set, with the cloud integration
    marked as loaded (it is not set up for real: that would need Nabu Casa's servers).
    """
    hass.config.components.add("cloud")
    context = contextvars.copy_context()
    context.run(cloud_remote.is_cloud_request.set, True)
    return await asyncio.get_running_loop().create_task(hass_client(), context=context)


async def test_home_assistant_cloud_is_outside(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    doorbell_entry: MockConfigEntry,
) -> None:
    """A remote-UI request arrives from a local address and is still outside: no
    snapshot, no clip, no live view; the owner's option opens live view."""
    client = await _cloud_client(hass, hass_client)
    assert await _snapshot_status(client, {}) == 403
    assert (await client.get(UNKNOWN_CLIP)).status == 403
    ws = await _websocket(hass, client, hass_access_token, {})
    try:
        reply = await _offer_reply(ws)
    finally:
        await ws.close()
    assert reply["type"] == "error"
    assert reply["code"] == "doorstep_outside_home_network"
    assert len(doorbell_entry.runtime_data.sessions) == 0

    _set_options(hass, doorbell_entry, **{CONF_ALLOW_REMOTE_LIVE_VIEW: True})
    assert await _snapshot_status(client, {}) == 200
    # The same server without the cloud flag is an ordinary browser at home.
    assert await _snapshot_status(await hass_client(), {}) == 200


@pytest.mark.parametrize("http_config", ["trusted_local_proxy"], indirect=True)
async def test_recorded_clip_through_a_proxy(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    doorbell: Doorbell,
    doorbell_entry: MockConfigEntry,
) -> None:
    """A real clip, resolved through the media source: its bytes reach a browser at home
    behind the trusted proxy and not one outside behind the same proxy."""
    _set_options(hass, doorbell_entry, **{CONF_PRE_ROLL: 1, CONF_POST_ROLL: 1})
    await hass.config_entries.async_reload(doorbell_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: doorbell_entry.runtime_data.coordinator.data.connected)
    store = hass.data[DATA_CLIPS]
    await asyncio.sleep(2)  # let the pre-roll fill
    await doorbell.ring()
    await wait_for(hass, lambda: len(store.list_clips()) == 1, within=15)
    clip = store.list_clips()[0]

    assert await async_setup_component(hass, "media_source", {})
    await hass.async_block_till_done()
    played = await media_source.async_resolve_media(
        hass, f"media-source://{DOMAIN}/{doorbell.device_id}/{clip.id}", None
    )
    client = await hass_client()
    home = await client.get(played.url, headers={"X-Forwarded-For": HOME_BROWSER})
    assert home.status == 200
    assert (await home.read())[4:8] == b"ftyp"
    outside = await client.get(played.url, headers={"X-Forwarded-For": OUTSIDE_BROWSER})
    assert outside.status == 403
    assert await outside.read() == b"Clips are only shown at home"

    # The sharing card's preview still of the clip follows the same rule.
    thumbnail = THUMBNAIL_URL.format(clip_id=clip.id)
    home = await client.get(thumbnail, headers={"X-Forwarded-For": HOME_BROWSER})
    assert home.status == 200
    assert (await home.read())[:2] == b"\xff\xd8"
    for headers in ({"X-Forwarded-For": OUTSIDE_BROWSER}, {}, {"X-Real-IP": HOME_BROWSER}):
        refused = await client.get(thumbnail, headers=headers)
        assert refused.status == 403, headers
        assert (await refused.read())[:2] != b"\xff\xd8"


# (http config, request headers, whether the sharing card's preview is given)
PREVIEW_CASES = [
    pytest.param("trusted_local_proxy", {"X-Forwarded-For": HOME_BROWSER}, True, id="home"),
    pytest.param("trusted_local_proxy", {"X-Forwarded-For": OUTSIDE_BROWSER}, False, id="outside"),
    pytest.param("trusted_local_proxy", {}, False, id="trusted-proxy-names-nobody"),
    pytest.param("no_proxy", {"Forwarded": f"for={HOME_BROWSER}"}, False, id="untrusted-proxy"),
]


@pytest.mark.parametrize(
    ("http_config", "headers", "at_home"), PREVIEW_CASES, indirect=["http_config"]
)
async def test_sharing_preview_follows_the_browser(
    hass: HomeAssistant,
    http_server: None,
    sharing_entry: MockConfigEntry,
    pending_request: str,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    headers: dict[str, str],
    at_home: bool,
) -> None:
    """The card's preview of what would leave is footage too: the admin's websocket
    gets it only when the browser behind the proxy is at home."""
    request_id = pending_request
    ws = await _websocket(hass, await hass_client(), hass_access_token, headers)
    try:
        await ws.send_json({"id": 1, "type": "doorstep/sharing/preview", "request_id": request_id})
        reply = await ws.receive_json()
    finally:
        await ws.close()
    if at_home:
        assert reply["success"], reply
        assert reply["result"]["request_id"] == request_id
    else:
        assert not reply["success"]
        assert reply["error"]["translation_key"] == "preview_needs_home_network"

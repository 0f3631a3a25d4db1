"""The local STUN responder and the repair issue about Home Assistant's public STUN server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import os
import socket
import struct
from unittest.mock import patch

from aioice import stun
from homeassistant.components.web_rtc import async_get_ice_servers
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from webrtc_models import RTCIceServer

from custom_components.doorstep.const import DOMAIN
from custom_components.doorstep.ice import ISSUE_PUBLIC_STUN
from custom_components.doorstep.media.stun import BINDING_REQUEST, MAGIC_COOKIE, StunResponder


@pytest.fixture
def stun_port(unused_udp_port: int) -> Iterator[int]:
    """A free UDP port instead of 3478, which this machine may already use."""
    with patch("custom_components.doorstep.ice.DEFAULT_STUN_PORT", unused_udp_port):
        yield unused_udp_port


async def test_default_stun_raises_issue_and_responder_answers(
    hass: HomeAssistant,
    paired_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    stun_port: int,
) -> None:
    """With Home Assistant's default, the owner is told; the hub's responder works."""
    assert await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    # What HA 2026.10 hands browsers when nobody set ice_servers: its public STUN server.
    assert [server.urls for server in async_get_ice_servers(hass)] == [
        ["stun:stun.home-assistant.io:3478", "stun:stun.home-assistant.io:80"]
    ]
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE_PUBLIC_STUN)
    assert issue is not None
    assert issue.translation_key == ISSUE_PUBLIC_STUN
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["stun_url"].endswith(f":{stun_port}")

    loop = asyncio.get_running_loop()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setblocking(False)
    client.bind(("127.0.0.1", 0))
    own_address = client.getsockname()
    try:
        request = struct.pack("!HHI", BINDING_REQUEST, 0, MAGIC_COOKIE) + os.urandom(12)
        await loop.sock_sendto(client, request, ("127.0.0.1", stun_port))
        async with asyncio.timeout(2):
            answer = stun.parse_message(await loop.sock_recv(client, 2048))
    finally:
        client.close()
    assert answer.attributes["XOR-MAPPED-ADDRESS"] == own_address
    assert await hass.config_entries.async_unload(paired_entry.entry_id)


async def test_owner_configured_ice_servers_means_no_issue(
    hass: HomeAssistant,
    paired_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    stun_port: int,
) -> None:
    """Once ice_servers is set, there is nothing to repair."""
    hass.config.webrtc.ice_servers = [RTCIceServer(urls=f"stun:192.168.1.2:{stun_port}")]
    assert await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, ISSUE_PUBLIC_STUN) is None
    assert await hass.config_entries.async_unload(paired_entry.entry_id)


async def test_ice_servers_set_in_web_rtc_config_mean_no_issue(
    hass: HomeAssistant,
    paired_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    stun_port: int,
) -> None:
    """HA 2026 also takes ice_servers under `web_rtc:`; that replaces its public server too."""
    assert await async_setup_component(
        hass, "web_rtc", {"web_rtc": {"ice_servers": [{"url": f"stun:192.168.1.2:{stun_port}"}]}}
    )
    assert await hass.config_entries.async_setup(paired_entry.entry_id)
    await hass.async_block_till_done()
    assert not any(
        "home-assistant.io" in url
        for server in async_get_ice_servers(hass)
        for url in ([server.urls] if isinstance(server.urls, str) else server.urls)
    )
    assert issue_registry.async_get_issue(DOMAIN, ISSUE_PUBLIC_STUN) is None
    assert await hass.config_entries.async_unload(paired_entry.entry_id)


async def test_port_taken_gives_the_other_issue(
    hass: HomeAssistant,
    paired_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    stun_port: int,
) -> None:
    """If the port is in use, the issue says so instead of pointing at a dead responder."""
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("0.0.0.0", stun_port))
    try:
        assert await hass.config_entries.async_setup(paired_entry.entry_id)
        await hass.async_block_till_done()
    finally:
        blocker.close()
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE_PUBLIC_STUN)
    assert issue is not None
    assert issue.translation_key == f"{ISSUE_PUBLIC_STUN}_no_responder"
    assert await hass.config_entries.async_unload(paired_entry.entry_id)


async def test_responder_listens_only_on_home_addresses(
    hass: HomeAssistant, paired_entry: MockConfigEntry, stun_port: int
) -> None:
    """Not 0.0.0.0: loopback and the enabled adapters' home addresses, never a public one."""
    adapters = [
        {
            "name": "eth0",
            "index": 0,
            "enabled": True,
            "auto": True,
            "default": True,
            "ipv4": [{"address": "192.168.1.2", "network_prefix": 24}],
            "ipv6": [],
        },
        {
            "name": "wan0",
            "index": 1,
            "enabled": True,
            "auto": False,
            "default": False,
            "ipv4": [{"address": "198.51.100.7", "network_prefix": 24}],
            "ipv6": [],
        },
        {
            "name": "wlan0",
            "index": 2,
            "enabled": False,
            "auto": False,
            "default": False,
            "ipv4": [{"address": "10.1.1.1", "network_prefix": 24}],
            "ipv6": [],
        },
    ]
    with (
        patch("homeassistant.components.network.async_get_adapters", return_value=adapters),
        patch.object(StunResponder, "start", autospec=True) as start,
    ):
        assert await hass.config_entries.async_setup(paired_entry.entry_id)
        await hass.async_block_till_done()
    assert sorted(call.args[1] for call in start.call_args_list) == ["127.0.0.1", "192.168.1.2"]
    assert {call.args[2] for call in start.call_args_list} == {stun_port}
    assert await hass.config_entries.async_unload(paired_entry.entry_id)

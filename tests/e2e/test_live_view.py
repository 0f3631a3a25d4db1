"""Live view end to end: Debian's headless Chromium logs into the real Home Assistant,
opens the Doorstep dashboard, and the front door's `picture-entity` card plays live
WebRTC video relayed by the hub, while nftables counts every packet that heads for an
address outside the lab.

Where the browser runs: in the root namespace, like the demo's browser, reaching Home
Assistant through a forwarder on 127.0.0.1 (a secure context). Unlike the lab's
namespaces, the root namespace has a default route to the real network, so if Home
Assistant handed the browser a public STUN server (stun.home-assistant.io), the
browser really would resolve and contact it. That makes it the place where a leak shows.
The browser runs under a group id of its own, and an nftables rule in the root
namespace counts and DROPS every packet from that group to anything but loopback and
the lab's subnets: the rule both proves and enforces the network rule, and nothing else
on the machine is touched. Inside the lab's namespaces a second set of counters sees
any packet routed towards an address outside the lab.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import ipaddress
import json
import os
from pathlib import Path
import subprocess
import time
from typing import Any

import numpy as np
from playwright.async_api import Page
import pytest

from reference_doorbell.blockcode import code_height, decode_blockcode
from scripts.lab.browser import logged_in_page
from scripts.lab.hass import REPO, HassWebSocket, Owner
from scripts.lab.netns import Topology, ns_argv
from scripts.lab.nft import nft, read_nft_counters

from .conftest import BROWSER_GID, HassInstance, Paired, require_tool

pytestmark = pytest.mark.e2e

CAMERA = "camera.front_door"
DASHBOARD_PATH = "/lovelace/doorbells"
SCREENSHOT = REPO / "artifacts" / "e2e" / "live_view.png"
MIN_FRAMES = 30
# The project's Chromium flags (no update checks, sync or other background calls), plus
# one: Debian's build carries Google API keys, so on a login page it asks
# content-autofill.googleapis.com about the form, accounts.google.com for signed-in
# accounts and update.googleapis.com for extension updates. That is the browser's own
# chatter, not live view's: those names resolve to "not found" inside the browser, so
# no query is sent, and every other name (stun.home-assistant.io, say) would still be
# looked up for real, and counted and dropped by the guard below.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # raw.githubusercontent.com: with DevTools attached (Playwright), a console message
    # with a stack makes Chromium fetch the frontend's original sources named in its
    # source maps. A person's browser without DevTools open does not.
    "--host-resolver-rules=MAP *.google.com ~NOTFOUND, MAP *.googleapis.com ~NOTFOUND, "
    "MAP raw.githubusercontent.com ~NOTFOUND",
    # Without this, every peer connection opens an mDNS socket and joins the multicast
    # group on every interface; the kernel's IGMP report for that join is not the
    # browser's packet, so the guard below could not count it, and it would go out on
    # the machine's real network. Live view needs no mDNS: media permission is granted,
    # so host candidates carry plain addresses.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
# --- nftables: counters, and the browser's egress guard ---------------------------


def root_ruleset(table: str, lab_nets: str, root_link: str) -> str:
    """Root namespace: the browser's group may talk to loopback and the lab, no further;
    and whatever comes up the uplink from the lab must be for the lab or the root end.

    The output hook sees every packet the browser sends, whatever its interface.
    `browser_lab` is the positive control: it proves the rule sees the browser's
    traffic, so `browser_outside == 0` is not true by accident. The prerouting chain
    matches only this run's uplink, so nothing else on the machine is counted.
    """
    return f"""
table inet {table} {{
  counter browser_loopback {{ }}
  counter browser_lab {{ }}
  counter browser_dns {{ }}
  counter browser_outside {{ }}
  counter uplink_outside {{ }}
  chain output {{
    type filter hook output priority -10; policy accept;
    meta skgid {BROWSER_GID} jump browser
  }}
  chain browser {{
    ip daddr 127.0.0.0/8 counter name "browser_loopback" accept
    ip6 daddr ::1 counter name "browser_loopback" accept
    ip daddr {{ {lab_nets} }} counter name "browser_lab" accept
    meta l4proto {{ tcp, udp }} th dport 53 counter name "browser_dns" drop
    counter name "browser_outside" drop
  }}
  chain prerouting {{
    type filter hook prerouting priority -10; policy accept;
    iifname "{root_link}" ip daddr {{ {lab_nets} }} accept
    iifname "{root_link}" counter name "uplink_outside"
  }}
}}
"""


def lab_ruleset(table: str, lab_nets: str) -> str:
    """A lab namespace: count packets routed to anything but loopback, the lab's two
    subnets and link-local multicast on the LAN (mDNS). Counted, not dropped: these
    namespaces have no default route, so the kernel already refuses such packets."""
    return f"""
table inet {table} {{
  counter lab_outside {{ }}
  chain postrouting {{
    type filter hook postrouting priority 0; policy accept;
    ip daddr {{ 127.0.0.0/8, {lab_nets}, 224.0.0.0/24, 255.255.255.255 }} accept
    counter name "lab_outside"
  }}
}}
"""


def hub_to_browser_rule(table: str, root_address: str) -> str:
    """Positive control in the hub: packets from Home Assistant to the browser's side."""
    return f"""
table inet {table} {{
  counter hub_to_browser {{ }}
  chain control {{
    type filter hook postrouting priority -10; policy accept;
    oifname "up0" ip daddr {root_address} counter name "hub_to_browser"
  }}
}}
"""


@dataclass(kw_only=True)
class PacketCounters:
    """nftables tables this test installed; `read` sums their counters by name."""

    table: str
    namespaces: list[str | None]

    def read(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for ns in self.namespaces:
            for name, packets in read_nft_counters(ns, self.table).items():
                totals[name] = totals.get(name, 0) + packets
        return totals

    def remove(self) -> None:
        for ns in self.namespaces:
            # A namespace may already be gone if the lab was torn down first.
            subprocess.run(
                ["nft", "delete", "table", "inet", self.table]
                if ns is None
                else ns_argv(ns, "nft", "delete", "table", "inet", self.table),
                capture_output=True,
                check=False,
            )


@contextlib.contextmanager
def egress_guard(topology: Topology, table: str) -> Iterator[PacketCounters]:
    """The browser's egress guard and the lab's counters, for one lab (see the rulesets)."""
    require_tool("nft", "nftables")
    require_tool("setpriv", "util-linux")
    lab_nets = f"{topology.lan}, {topology.uplink}"
    counters = PacketCounters(table=table, namespaces=[None, *topology.namespaces()])
    try:
        nft(None, "-f", "-", stdin=root_ruleset(table, lab_nets, topology.root_link))
        for ns in topology.namespaces():
            ruleset = lab_ruleset(table, lab_nets)
            if ns == topology.hub_ns:
                ruleset += hub_to_browser_rule(table, topology.root_address)
            nft(ns, "-f", "-", stdin=ruleset)
        yield counters
    finally:
        counters.remove()


@pytest.fixture
def packet_counters(topology: Topology) -> Iterator[PacketCounters]:
    with egress_guard(topology, f"ds{os.getpid()}live") as counters:
        yield counters


# --- the browser --------------------------------------------------------------------


# Keeps every RTCPeerConnection the page makes and the ICE servers it was given, so
# the test can show which STUN servers the browser was told about and read WebRTC's
# own statistics; the connections themselves are untouched.
RECORD_PEERS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__doorstepIceServers = [];
  window.__doorstepPeers = [];
  window.RTCPeerConnection = class extends Native {
    constructor(config, ...rest) {
      window.__doorstepIceServers.push(JSON.parse(JSON.stringify(config?.iceServers ?? [])));
      super(config, ...rest);
      window.__doorstepPeers.push(this);
    }
  };
})();
"""

# WebRTC's view of the connected peers: which codec decoded how many frames, and
# between which addresses the media flowed.
PEER_STATS = """
async () => {
  const out = [];
  for (const pc of window.__doorstepPeers) {
    if (pc.connectionState !== "connected") continue;
    const stats = await pc.getStats();
    const byId = new Map();
    stats.forEach((s) => byId.set(s.id, s));
    const entry = { codec: null, framesDecoded: 0, local: null, remote: null };
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        entry.codec = byId.get(s.codecId)?.mimeType ?? null;
        entry.framesDecoded = s.framesDecoded ?? 0;
      }
      if (s.type === "transport" && s.selectedCandidatePairId) {
        const pair = byId.get(s.selectedCandidatePairId);
        entry.local = byId.get(pair?.localCandidateId)?.address ?? null;
        entry.remote = byId.get(pair?.remoteCandidateId)?.address ?? null;
      }
    });
    out.push(entry);
  }
  return out;
}
"""

# The card's <video> lives several shadow roots deep. Once it shows a picture, count
# the frames the compositor presents with requestVideoFrameCallback.
WATCH_VIDEO = """
() => {
  const find = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "VIDEO") return el;
      if (el.shadowRoot) {
        const found = find(el.shadowRoot);
        if (found) return found;
      }
    }
    return null;
  };
  const state = window.__doorstepVideo;
  if (state && state.video.isConnected) return state.frames;
  const video = find(document);
  if (!video || video.videoWidth === 0) return -1;
  const fresh = { video, frames: 0, width: video.videoWidth, height: video.videoHeight };
  window.__doorstepVideo = fresh;
  const onFrame = () => {
    fresh.frames += 1;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  return 0;
}
"""

# Draw the current frame at its own size and hand back the block-code band's RGBA
# pixels; Python decodes them with the reference doorbell's own decoder.
GRAB_CODE_BAND = """
(bandHeight) => {
  const video = window.__doorstepVideo.video;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  const pixels = ctx.getImageData(0, 0, canvas.width, bandHeight).data;
  let text = "";
  for (let i = 0; i < pixels.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, pixels.subarray(i, i + 0x8000));
  }
  return { width: canvas.width, height: canvas.height, rgba: btoa(text) };
}
"""


def decode_band(grab: dict[str, Any], band_height: int) -> int | None:
    """The burned-in frame counter in a grabbed band, or None if it does not decode."""
    rgba = np.frombuffer(base64.b64decode(grab["rgba"]), dtype=np.uint8)
    frame = rgba.reshape(band_height, int(grab["width"]), 4)[:, :, :3].copy()
    decoded = decode_blockcode(frame)
    return None if decoded is None else decoded[0]


async def read_counters(page: Page, band_height: int, samples: int) -> list[int]:
    """Frame counters read from the video at intervals (frames that fail to decode,
    such as one caught mid-update, are skipped)."""
    found: list[int] = []
    for _ in range(samples):
        counter = decode_band(await page.evaluate(GRAB_CODE_BAND, band_height), band_height)
        if counter is not None:
            found.append(counter)
        await asyncio.sleep(0.25)
    return found


async def test_dashboard_plays_live_video_without_leaving_the_lab(
    hass_instance: HassInstance,
    paired: Paired,
    topology: Topology,
    hass_ws: HassWebSocket,
    packet_counters: PacketCounters,
    chromium_in_group: Path,
) -> None:
    # What Home Assistant tells browsers to use for this camera: only the local STUN
    # server from configuration.yaml, never stun.home-assistant.io.
    client_config = await hass_ws.call("camera/webrtc/get_client_config", entity_id=CAMERA)
    served_urls = json.dumps(client_config["configuration"].get("iceServers", []))
    assert "home-assistant.io" not in served_urls, client_config

    async with logged_in_page(
        chromium=chromium_in_group,
        args=CHROMIUM_ARGS,
        hub_address=topology.hub_uplink_address,
        path=DASHBOARD_PATH,
        owner=Owner(),
        init_scripts=[RECORD_PEERS],
    ) as opened:
        page, console = opened.page, opened.console
        await page.wait_for_function(f"({WATCH_VIDEO})() >= 0", timeout=20_000)
        first_picture = time.monotonic() - opened.opened_at
        await page.wait_for_function(
            f"({WATCH_VIDEO})() > {MIN_FRAMES}", timeout=20_000, polling=100
        )
        video = await page.evaluate(
            "(() => { const s = window.__doorstepVideo;"
            " return { frames: s.frames, width: s.width, height: s.height }; })()"
        )
        band_height = code_height(int(video["width"]))
        counters = await read_counters(page, band_height, samples=6)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT))
        ice_servers = await page.evaluate("window.__doorstepIceServers")
        peers = await page.evaluate(PEER_STATS)

    packets = packet_counters.read()
    print(
        f"\nlive view: picture {first_picture:.1f} s after opening the dashboard, "
        f"{video['frames']} frames counted, {video['width']}x{video['height']}, "
        f"burned-in counters {counters}, peers {peers}, ICE servers {ice_servers}, "
        f"packets {packets}, console {console}"
    )
    assert video["frames"] > MIN_FRAMES
    assert len(counters) >= 2, f"the block code decoded in only {len(counters)} of 6 frames"
    assert counters == sorted(counters), counters
    assert counters[-1] > counters[0], counters
    # Chromium decoded H.264 itself, received over the lab's network from the hub.
    live = [peer for peer in peers if peer["framesDecoded"] > MIN_FRAMES]
    assert live, peers
    assert all(peer["codec"] == "video/H264" for peer in live), peers
    lab = (topology.lan, topology.uplink)
    for peer in live:
        remote = ipaddress.ip_address(peer["remote"])
        assert any(remote in net for net in lab), peers
    # The browser was told only about the local STUN server.
    assert ice_servers, "the dashboard never created a peer connection"
    assert "home-assistant.io" not in json.dumps(ice_servers), ice_servers
    # Nothing went beyond the lab: no DNS, no STUN, no media to any outside address...
    assert packets["browser_dns"] == 0, packets
    assert packets["browser_outside"] == 0, packets
    assert packets["lab_outside"] == 0, packets
    assert packets["uplink_outside"] == 0, packets
    # ...while the counters did see the browser's and the hub's live-view traffic.
    assert packets["browser_lab"] > 0, packets
    assert packets["hub_to_browser"] > 0, packets

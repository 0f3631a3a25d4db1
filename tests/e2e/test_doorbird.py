"""A DoorBird end to end: the DoorBird emulator (with GStreamer's RTSP server behind it)
in its own namespace on the lab's home LAN, found by real mDNS, signed in through the
config-flow API, a ring pushed over HTTP to Home Assistant, and removal taking the
hub off the station again.

The second test goes on from there as a household would: the dashboard's Side gate card
plays the station's RTSP picture live in Debian's Chromium (relayed by the hub over
WebRTC, under the same egress guard as test_live_view.py), a ring records a clip, a
police requester files a request, the owner approves it as the sharing card does
(preview, then password, from an interactive login), and the reference requester
fetches the archive and verifies it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import os
from pathlib import Path
import sys
import time
from typing import Any
import wave

import aiohttp
import numpy as np
from playwright.async_api import async_playwright
import pytest

from scripts.lab.forward import TcpForwarder
from scripts.lab.hass import (
    HASS_PORT,
    REPO,
    HassClient,
    HassError,
    HassWebSocket,
    Owner,
    approve_as_owner,
    login,
)
from scripts.lab.netns import DoorbellHost, Topology, ns_argv
from scripts.lab.pairing import wait_for_discovery
from scripts.lab.procs import ManagedProcess, python_env, within
from scripts.lab.requests import file_request, wait_and_verify
from tests.rtsp_camera import require_gstreamer
from tests.signals import best_correlation, sweep

from .conftest import HassInstance
from .test_audio import HA_STATE, LISTEN, TALK, sweep as browser_sweep, write_wav
from .test_live_view import CHROMIUM_ARGS, PEER_STATS, RECORD_PEERS, egress_guard

pytestmark = pytest.mark.e2e

MAC = "1ccae3a1b2c3"
USERNAME = "ghxxxx0001"
PASSWORD = "lab-bird-pass"
RING_ENTITY = "event.side_gate_doorbell"
CONNECTIVITY_ENTITY = "binary_sensor.side_gate_connectivity"
CAMERA = "camera.side_gate"
TALKING = "binary_sensor.side_gate_talking"
SPEAKER_WAV = "doorbird-speaker.wav"
ANSWER_PATH = "/lovelace/answer"
TALK_SECONDS = 4.0
STATION_TONE_HZ = 800  # the emulator's RTSP stream carries this tone as G.711 µ-law
DASHBOARD_PATH = "/lovelace/doorbells"
SCREENSHOT = REPO / "artifacts" / "e2e" / "doorbird_live_view.png"
ANSWER_SCREENSHOT = REPO / "artifacts" / "e2e" / "doorbird_answer.png"
MIN_FRAMES = 30
# GStreamer's test pattern, as the emulator's RTSP server sends it.
PICTURE_SIZE = (320, 240)

# The dashboard's card for the Side gate camera (the dashboard has other doors' cards
# too) and the <video> inside it; once it shows a picture, count presented frames.
WATCH_SIDE_GATE = """
() => {
  const search = (root, match) => {
    for (const el of root.querySelectorAll("*")) {
      if (match(el)) return el;
      if (el.shadowRoot) {
        const found = search(el.shadowRoot, match);
        if (found) return found;
      }
    }
    return null;
  };
  const state = window.__doorbirdVideo;
  if (state && state.video.isConnected) return state.frames;
  const card = search(
    document,
    (el) => el.tagName === "HUI-PICTURE-ENTITY-CARD" && el._config?.entity === "camera.side_gate",
  );
  if (!card) return -2;
  card.scrollIntoView();
  const video = search(card.shadowRoot ?? card, (el) => el.tagName === "VIDEO");
  if (!video || video.videoWidth === 0) return -1;
  const fresh = { video, frames: 0, width: video.videoWidth, height: video.videoHeight };
  window.__doorbirdVideo = fresh;
  const onFrame = () => {
    fresh.frames += 1;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  return 0;
}
"""


@pytest.fixture
def station(topology: Topology, lab_dir: Path) -> Iterator[DoorbellHost]:
    """The emulator on a new host of the lab LAN, advertising itself; removed after."""
    require_gstreamer()
    host = topology.add_doorbell()
    argv = [
        sys.executable, "-m", "scripts.lab.doorbird_emulator",
        "--host", host.address,
        "--username", USERNAME,
        "--password", PASSWORD,
        "--name", "Side gate",
        "--advertise",
        "--speaker-wav", str(lab_dir / SPEAKER_WAV),
    ]  # fmt: skip
    process = ManagedProcess(
        name="DoorBird emulator",
        argv=ns_argv(host.ns, *argv),
        log_path=lab_dir / "doorbird.log",
        env=python_env(REPO),
        cwd=REPO,
    )
    process.start()
    try:
        yield host
    finally:
        process.stop(grace=5)
        topology.remove_last_doorbell()


async def _favorites(session: aiohttp.ClientSession, host: DoorbellHost) -> list[str]:
    async with session.get(
        f"http://{host.address}/bha-api/favorites.cgi",
        headers={"Authorization": aiohttp.encode_basic_auth(USERNAME, PASSWORD)},
    ) as response:
        response.raise_for_status()
        data: dict[str, Any] = await response.json()
    return [fav["value"] for fav in data["http"].values()]


async def _state(client: HassClient, entity_id: str) -> dict[str, Any]:
    states = {s["entity_id"]: s for s in await client.get("/api/states")}
    return dict(states.get(entity_id, {}))


async def _station_up(session: aiohttp.ClientSession, host: DoorbellHost) -> None:
    """Until the emulator answers HTTP (it starts its RTSP server first)."""
    async with within(20, "the DoorBird emulator answers"):
        while True:
            try:
                async with session.get(f"http://{host.address}/bha-api/info.cgi") as response:
                    if response.status == 401:  # up, and asking for the user
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def _sign_in(hass_client: HassClient, hass_ws: HassWebSocket) -> str:
    """Take the discovered DoorBird's flow with the station's user; the entry's id.

    The flow may be older than this test's station: Home Assistant rediscovers a
    station (at the lab's same address) as soon as a previous test removed its entry.
    """
    async with within(30, "Home Assistant discovers the DoorBird by mDNS"):
        flow = await wait_for_discovery(hass_ws, device_id=MAC)
    path = f"/api/config/config_entries/flow/{flow['flow_id']}"
    result = await hass_client.get(path)
    assert result["step_id"] == "doorbird", result
    result = await hass_client.post(path, {"username": USERNAME, "password": PASSWORD})
    assert result["type"] == "create_entry", result
    entry_id: str = result["result"]["entry_id"]
    return entry_id


async def _wait_state(client: HassClient, entity_id: str, want: str, within_s: float) -> None:
    async with within(within_s, f"{entity_id} turns {want}"):
        while True:
            if (await _state(client, entity_id)).get("state") == want:
                return
            await asyncio.sleep(0.2)


async def _remove(session: aiohttp.ClientSession, client: HassClient, entry_id: str) -> None:
    async with session.delete(
        f"{client.base_url}/api/config/config_entries/entry/{entry_id}",
        headers=client.headers,
    ) as response:
        response.raise_for_status()


async def test_doorbird_found_signed_in_rings_and_is_removed(
    station: DoorbellHost,
    hass_client: HassClient,
    hass_ws: HassWebSocket,
    session: aiohttp.ClientSession,
) -> None:
    await _station_up(session, station)
    entry_id = await _sign_in(hass_client, hass_ws)
    try:
        await _wait_state(hass_client, CONNECTIVITY_ENTITY, "on", 15)
        favorites = await _favorites(session, station)
        assert len(favorites) == 2
        assert all("/api/doorstep/push/" in url for url in favorites)

        before = (await _state(hass_client, RING_ENTITY))["state"]
        events = await hass_ws.subscribe("subscribe_events", event_type="state_changed")
        # The station's button (the emulator's lab-only control), pressed from outside.
        async with session.post(f"http://{station.address}/lab/ring") as response:
            assert await response.json() == [200]
        async with within(5, "the ring reaches the event entity"):
            while True:
                data = (await events.get())["data"]
                new_state = data["new_state"] or {}
                if data["entity_id"] == RING_ENTITY and new_state.get("state") not in {
                    before,
                    "unknown",
                    "unavailable",
                }:
                    break
        assert new_state["attributes"]["event_type"] == "ring"
    finally:
        await _remove(session, hass_client, entry_id)
    assert await _favorites(session, station) == []


async def _new_clip(hass_ws: HassWebSocket, known: set[str]) -> str:
    """Wait for a clip of the DoorBird that is not in ``known``; its clip id."""
    folder_id = f"media-source://doorstep/{MAC}"
    while True:
        folder = await hass_ws.call("media_source/browse_media", media_content_id=folder_id)
        for child in folder.get("children") or []:
            if child["media_content_id"] not in known:
                return str(child["media_content_id"]).rsplit("/", 1)[-1]
        await asyncio.sleep(1)


async def _clips(hass_ws: HassWebSocket) -> set[str]:
    try:
        folder = await hass_ws.call(
            "media_source/browse_media", media_content_id=f"media-source://doorstep/{MAC}"
        )
    except HassError:
        return set()  # no clip of this doorbell yet
    return {child["media_content_id"] for child in folder.get("children") or []}


async def _watch_live(url: str, chromium: Path) -> dict[str, Any]:
    """Log in to the dashboard in Chromium and count the Side gate card's live frames."""
    owner = Owner()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            # As in test_live_view.py: plain host candidates, no mDNS names.
            await context.grant_permissions(["camera", "microphone"], origin=url)
            page = await context.new_page()
            await page.add_init_script(RECORD_PEERS)
            started = time.monotonic()
            await page.goto(f"{url}{DASHBOARD_PATH}")
            await page.locator("input[name=username]").fill(owner.username)
            await page.locator("input[name=password]").fill(owner.password)
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"**{DASHBOARD_PATH}", timeout=20_000)
            await page.wait_for_function(f"({WATCH_SIDE_GATE})() >= 0", timeout=25_000)
            first_picture = time.monotonic() - started
            await page.wait_for_function(
                f"({WATCH_SIDE_GATE})() > {MIN_FRAMES}", timeout=20_000, polling=100
            )
            video: dict[str, Any] = await page.evaluate(
                "(() => { const s = window.__doorbirdVideo;"
                " return { frames: s.frames, width: s.width, height: s.height }; })()"
            )
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT))
            peers = await page.evaluate(PEER_STATS)
        finally:
            await browser.close()
    return {**video, "first_picture_s": round(first_picture, 1), "peers": peers}


async def _approve(
    hass_instance: HassInstance, session: aiohttp.ClientSession, request_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """As the owner, from an interactive login: preview, then approve with the password."""
    owner = Owner()
    token = await login(session, hass_instance.base_url, owner)
    person = await HassWebSocket.connect(session, hass_instance.base_url, token)
    try:
        preview: dict[str, Any] = await person.call(
            "doorstep/sharing/preview", request_id=request_id
        )
        approved = await approve_as_owner(person, request_id, owner)
    finally:
        await person.close()
    return preview, approved


async def test_doorbird_live_view_clip_and_approved_request(
    station: DoorbellHost,
    topology: Topology,
    hass_instance: HassInstance,
    hass_client: HassClient,
    hass_ws: HassWebSocket,
    session: aiohttp.ClientSession,
    chromium_in_group: Path,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    await _station_up(session, station)
    entry_id = await _sign_in(hass_client, hass_ws)
    forwarder = TcpForwarder("127.0.0.1", 0, topology.hub_uplink_address, HASS_PORT)
    try:
        await _wait_state(hass_client, CONNECTIVITY_ENTITY, "on", 15)
        known = await _clips(hass_ws)
        # The ring first: its clip (pre-roll, then ten seconds after) records while the
        # browser logs in and watches.
        async with session.post(f"http://{station.address}/lab/ring") as response:
            assert await response.json() == [200]
        await forwarder.start()
        with egress_guard(topology, f"ds{os.getpid()}bird") as counters:
            live = await _watch_live(f"http://127.0.0.1:{forwarder.bound_port}", chromium_in_group)
            packets = counters.read()
        async with within(45, "the ring's clip is recorded"):
            clip_id = await _new_clip(hass_ws, known)

        created = await hass_ws.call(
            "doorstep/sharing/requester/create", name="Station Gate", kind="police"
        )
        token_file = tmp_path / "requester-token"
        token_file.write_text(created["token"] + "\n", encoding="utf-8")
        request_id = await file_request(hass_instance.base_url, token_file)
        preview, approved = await _approve(hass_instance, session, request_id)
        verified, lines = await wait_and_verify(
            hass_instance.base_url, token_file, request_id, tmp_path / "evidence", patience=30
        )
    finally:
        await forwarder.close()
        await _remove(session, hass_client, entry_id)

    shown = {
        clip["id"]: {key: clip[key] for key in ("doorbell", "duration_s", "size_bytes")}
        for clip in preview["clips"]
    }
    print(
        f"\nDoorBird: live picture {live['first_picture_s']} s after opening the dashboard, "
        f"{live['frames']} frames at {live['width']}x{live['height']}, peers {live['peers']}; "
        f"clip {clip_id} ({shown.get(clip_id)}); packets {packets}; "
        f"whole test {time.monotonic() - started:.0f} s\nrequester:\n  " + "\n  ".join(lines)
    )
    assert live["frames"] > MIN_FRAMES
    assert (live["width"], live["height"]) == PICTURE_SIZE
    assert any(
        peer["codec"] == "video/H264" and peer["framesDecoded"] > MIN_FRAMES
        for peer in live["peers"]
    ), live["peers"]
    assert packets["browser_outside"] == 0, packets
    assert packets["lab_outside"] == 0, packets
    assert packets["hub_to_browser"] > 0, packets
    # The DoorBird's clip was in what the owner saw and approved, and it verified.
    assert clip_id in shown, preview
    assert shown[clip_id]["doorbell"] == MAC, shown[clip_id]
    assert approved.get("state") == "approved", approved
    assert verified, lines


# The Answer view's live card for the Side gate, for test_audio.py's LISTEN and TALK.
FIND_SIDE_GATE_CARD = """
(() => {
  const find = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "DOORSTEP-LIVE-CARD" && el._config?.entity === "camera.side_gate") {
        return el;
      }
      if (el.shadowRoot) {
        const found = find(el.shadowRoot);
        if (found) return found;
      }
    }
    return null;
  };
  window.__doorstepFindCard = () => find(document);
})();
"""


async def _answer_and_talk(url: str, chromium: Path, microphone: Path) -> list[list[float]]:
    """Open the Side gate's live card, listen for a while, then hold the talk button
    while Chromium's fake microphone plays ``microphone``; what the page heard."""
    owner = Owner()
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=args)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            await context.grant_permissions(["camera", "microphone"], origin=url)
            page = await context.new_page()
            console: list[str] = []
            page.on(
                "console",
                lambda message: (
                    console.append(f"{message.type}: {message.text}")
                    if message.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda error: console.append(f"page error: {error}"))
            await page.add_init_script(RECORD_PEERS)
            await page.add_init_script(FIND_SIDE_GATE_CARD)
            await page.goto(f"{url}{ANSWER_PATH}")
            await page.locator("input[name=username]").fill(owner.username)
            await page.locator("input[name=password]").fill(owner.password)
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"**{ANSWER_PATH}", timeout=20_000)
            try:
                await page.wait_for_function("window.__doorstepFindCard() !== null", timeout=45_000)
            except Exception:
                ANSWER_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(ANSWER_SCREENSHOT))
                print(
                    f"\nno Side gate live card on {page.url}; console {console}; "
                    f"see {ANSWER_SCREENSHOT}"
                )
                raise
            await page.evaluate(
                "window.__doorstepFindCard().shadowRoot.querySelector('button.start').click()"
            )
            await page.wait_for_function(
                "window.__doorstepFindCard().shadowRoot.querySelector('video')"
                "?.srcObject?.getAudioTracks?.().length > 0",
                timeout=20_000,
            )
            assert await page.evaluate(LISTEN), "no audio track reached the card"
            await asyncio.sleep(3.0)
            heard: list[list[float]] = await page.evaluate("window.__doorstepHeard")
            await page.wait_for_function(
                "!window.__doorstepFindCard().shadowRoot.querySelector('button.talk').disabled",
                timeout=10_000,
            )
            assert await page.evaluate(TALK, True)
            await page.wait_for_function(f"({HA_STATE})('{TALKING}') === 'on'", timeout=10_000)
            await asyncio.sleep(TALK_SECONDS)
            assert await page.evaluate(TALK, False)
            await page.wait_for_function(f"({HA_STATE})('{TALKING}') === 'off'", timeout=10_000)
        finally:
            await browser.close()
    return heard


async def test_doorbird_answered_from_the_live_card(
    station: DoorbellHost,
    topology: Topology,
    hass_client: HassClient,
    hass_ws: HassWebSocket,
    session: aiohttp.ClientSession,
    chromium_in_group: Path,
    lab_dir: Path,
) -> None:
    """The station's sound plays in the card, and the person's voice (a sweep from
    Chromium's fake microphone) reaches the station's speaker as G.711 µ-law."""
    speaker = lab_dir / SPEAKER_WAV
    speaker.unlink(missing_ok=True)
    microphone = lab_dir / "doorbird-fake-microphone.wav"
    write_wav(microphone, np.tile(browser_sweep(), 6))
    await _station_up(session, station)
    entry_id = await _sign_in(hass_client, hass_ws)
    forwarder = TcpForwarder("127.0.0.1", 0, topology.hub_uplink_address, HASS_PORT)
    try:
        await _wait_state(hass_client, TALKING, "off", 15)
        await forwarder.start()
        heard = await _answer_and_talk(
            f"http://127.0.0.1:{forwarder.bound_port}", chromium_in_group, microphone
        )
        # The station writes its speaker file when the talk's connection closes.
        async with within(10, "the station's speaker file is written"):
            while True:
                if speaker.exists():
                    break
                await asyncio.sleep(0.2)
    finally:
        await forwarder.close()
        await _remove(session, hass_client, entry_id)

    loud = [frequency for _at, frequency, level in heard if level > -50]
    with wave.open(str(speaker), "rb") as wav:
        rate = wav.getframerate()
        played = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    score = best_correlation(sweep(rate), played)
    print(
        f"\nDoorBird answered: {len(loud)} of {len(heard)} analyser reads loud, median "
        f"{np.median(loud) if loud else 0:.0f} Hz; speaker {played.size / rate:.2f} s at "
        f"{rate} Hz, sweep correlation {score:.3f}"
    )
    assert loud, heard[:20]
    assert abs(float(np.median(loud)) - STATION_TONE_HZ) < 30, loud[:20]
    assert rate == 8000
    assert played.size > TALK_SECONDS / 2 * rate
    assert score > 0.8, score

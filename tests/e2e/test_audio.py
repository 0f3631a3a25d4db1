"""Sound both ways, end to end: Debian's Chromium opens the dashboard's Answer view, and
Doorstep's live card plays the front door's picture and sound and talks back.

* Doorbell -> browser: a WebAudio analyser in the page listens to the card's remote
  audio track and finds the doorbell's tone sequence (600, 900, 1200, 1500, 1800 Hz) at
  the right frequencies and in order.
* Browser -> doorbell: Chromium's fake microphone plays a known sweep from a WAV file
  (``--use-file-for-fake-audio-capture``). The test holds the card's talk button; the
  doorbell's speaker (a WAV file sink) must then contain that sweep, found by
  normalised cross-correlation.
* The card's peer connection is created with no ICE servers, and nftables counts zero
  packets from the browser (or the lab) to anything outside the lab.

The browser (``scripts.lab.browser``) and the nftables guard are set up as in
test_live_view.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import itertools
import json
import os
from pathlib import Path
from typing import Any
import wave

import numpy as np
import pytest

from reference_doorbell.audio import TONE_FREQUENCIES, read_wav, tone_index_at
from scripts.lab.browser import logged_in_page
from scripts.lab.hass import REPO, HassWebSocket, Owner
from scripts.lab.netns import Topology
from tests.signals import best_correlation

from .conftest import HassInstance, Paired
from .test_live_view import CHROMIUM_ARGS, RECORD_PEERS, PacketCounters, egress_guard

pytestmark = pytest.mark.e2e

ANSWER_PATH = "/lovelace/answer"
SCREENSHOT = REPO / "artifacts" / "e2e" / "audio.png"
SAMPLE_RATE = 48_000
SWEEP_SECONDS = 1.0
TALK_SECONDS = 4.0


@pytest.fixture
def packet_counters(topology: Topology) -> Iterator[PacketCounters]:
    with egress_guard(topology, f"ds{os.getpid()}audio") as counters:
        yield counters


def sweep() -> np.ndarray[Any, np.dtype[np.int16]]:
    """One second rising 300 -> 1000 Hz: distinctive, and nothing like the tones."""
    t = np.arange(round(SWEEP_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    return (np.sin(2 * np.pi * (300 * t + 350 * t * t)) * 14000).astype(np.int16)


def write_wav(path: Path, pcm: np.ndarray[Any, np.dtype[np.int16]]) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.astype("<i2").tobytes())


# Finds the card for the front door through the dashboard's shadow roots.
FIND_CARD = """
(() => {
  const find = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "DOORSTEP-LIVE-CARD" && el._config?.entity === "camera.front_door") {
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

# A WebAudio analyser on the card's remote audio track: every 20 ms, the strongest
# frequency and its level, with the time it was heard.
LISTEN = """
async () => {
  const card = window.__doorstepFindCard();
  const video = card?.shadowRoot?.querySelector("video");
  const track = video?.srcObject?.getAudioTracks?.()[0];
  if (!track) return false;
  const context = new AudioContext({ sampleRate: 48000 });
  await context.resume();
  const source = context.createMediaStreamSource(new MediaStream([track]));
  const analyser = context.createAnalyser();
  analyser.fftSize = 2048;
  analyser.smoothingTimeConstant = 0;
  source.connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  window.__doorstepHeard = [];
  window.__doorstepAnalyser = setInterval(() => {
    analyser.getFloatFrequencyData(bins);
    let best = 1;
    for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    window.__doorstepHeard.push([
      performance.timeOrigin + performance.now(),
      (best * context.sampleRate) / analyser.fftSize,
      bins[best],
    ]);
  }, 20);
  return true;
}
"""

TALK = """
(down) => {
  const card = window.__doorstepFindCard();
  const button = card.shadowRoot.querySelector("button.talk");
  if (button.disabled) return false;
  button.dispatchEvent(new PointerEvent(down ? "pointerdown" : "pointerup", { bubbles: true }));
  return true;
}
"""

HA_STATE = """
(entityId) => document.querySelector("home-assistant")?.hass?.states?.[entityId]?.state ?? null
"""


def tone_runs(heard: list[list[float]]) -> list[int]:
    """Tone indices in the order heard, repeats folded, quiet moments skipped."""
    runs: list[int] = []
    for _at, frequency, level in heard:
        if level < -50:
            continue
        index = tone_index_at(frequency)
        if index is not None and (not runs or runs[-1] != index):
            runs.append(index)
    return runs


async def test_answer_the_door_hear_and_talk_back(
    hass_instance: HassInstance,
    paired: Paired,
    topology: Topology,
    packet_counters: PacketCounters,
    chromium_in_group: Path,
    lab_dir: Path,
    hass_ws: HassWebSocket,
) -> None:
    # The dashboard page lists the card modules Doorstep registered when it was set up;
    # pairing returns before that setup ends, so wait for the entry's entities.
    for _ in range(150):
        states = await hass_ws.call("get_states")
        if any(state["entity_id"] == "binary_sensor.front_door_talking" for state in states):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("Doorstep's front door never finished setting up")
    talk_file = lab_dir / "fake-microphone.wav"
    template = sweep()
    write_wav(talk_file, np.tile(template, 6))
    speaker = lab_dir / "front-door-speaker.wav"
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={talk_file}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    async with logged_in_page(
        chromium=chromium_in_group,
        args=args,
        hub_address=topology.hub_uplink_address,
        path=ANSWER_PATH,
        owner=Owner(),
        init_scripts=[RECORD_PEERS, FIND_CARD],
    ) as opened:
        page, console = opened.page, opened.console
        # The first dashboard load of a fresh Home Assistant can take a while.
        try:
            await page.wait_for_function("window.__doorstepFindCard() !== null", timeout=45_000)
        except Exception:
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT))
            print(f"\nno live card on {page.url}; console {console}; see {SCREENSHOT}")
            raise
        # The card names its door: the camera's friendly name, as its header.
        await page.wait_for_function(
            "window.__doorstepFindCard().shadowRoot.querySelector('.name')?.textContent"
            " === 'Front door'",
            timeout=10_000,
        )
        await page.evaluate(
            "window.__doorstepFindCard().shadowRoot.querySelector('button.start').click()"
        )
        # Sound and talk button ready: the answer came, and the track is live.
        await page.wait_for_function(
            "window.__doorstepFindCard().shadowRoot.querySelector('video')"
            "?.srcObject?.getAudioTracks?.().length > 0",
            timeout=20_000,
        )
        assert await page.evaluate(LISTEN), "no audio track reached the card"
        await asyncio.sleep(4.0)
        heard = await page.evaluate("window.__doorstepHeard")

        # Hold the talk button while the fake microphone plays the sweep.
        await page.wait_for_function(
            "!window.__doorstepFindCard().shadowRoot.querySelector('button.talk').disabled",
            timeout=10_000,
        )
        assert await page.evaluate(TALK, True)
        await page.wait_for_function(
            f"({HA_STATE})('binary_sensor.front_door_talking') === 'on'", timeout=10_000
        )
        await asyncio.sleep(TALK_SECONDS)
        assert await page.evaluate(TALK, False)
        await page.wait_for_function(
            f"({HA_STATE})('binary_sensor.front_door_talking') === 'off'", timeout=10_000
        )
        status = await page.evaluate(
            "window.__doorstepFindCard().shadowRoot.querySelector('.status').textContent"
        )
        ice_servers = await page.evaluate("window.__doorstepIceServers")

    # The doorbell writes its speaker file when the talk ends, a moment after the hub
    # lets go of the floor.
    for _ in range(50):
        if speaker.exists():
            break
        await asyncio.sleep(0.2)
    played = read_wav(speaker) if speaker.exists() else np.zeros(0, np.int16)
    score = best_correlation(template, played)
    packets = packet_counters.read()
    runs = tone_runs(heard)
    print(
        f"\naudio: tone runs {runs}, speaker {played.size / SAMPLE_RATE:.2f} s, "
        f"sweep correlation {score:.2f}, card status {status!r}, ICE servers {ice_servers}, "
        f"packets {packets}, console {console}"
    )
    # Doorbell -> browser: the tones at their frequencies, in order.
    assert len(runs) >= 5, runs
    for a, b in itertools.pairwise(runs):
        assert b == (a + 1) % len(TONE_FREQUENCIES), runs
    # Browser -> doorbell: the speaker played the sweep, recognisably.
    assert played.size > 2 * SAMPLE_RATE, played.size
    assert score > 0.5, score
    # The card's one peer connection had no ICE servers, and nothing left the lab.
    assert ice_servers == [[]], ice_servers
    assert "home-assistant.io" not in json.dumps(ice_servers)
    assert packets["browser_dns"] == 0, packets
    assert packets["browser_outside"] == 0, packets
    assert packets["lab_outside"] == 0, packets
    assert packets["uplink_outside"] == 0, packets
    assert packets["browser_lab"] > 0, packets

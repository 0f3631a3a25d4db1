"""Audio benchmark: one-way latency both ways, and the hub CPU that sound adds.

    python -m benchmarks.audio            about 2 minutes
    python -m benchmarks.audio --quick    shorter windows (development)
    scripts/bench --only audio            the same, then the report

The reference doorbell (tone microphone, WAV speaker, 320x180 video so its encoder
stays small) and the aiortc peers standing in for browsers run in this process; the
hub's media path (``benchmarks/audio_hub.py``) runs in a process of its own, so its CPU
time is its own. Everything is on loopback.

* **Doorbell -> listener.** The doorbell's tone ``k`` is captured at
  ``started_at + k * 0.3 s`` (``reference_doorbell.audio.ToneSequence``). The listener
  decodes what it receives (aiortc's jitter buffer and Opus decoder, as a browser
  would) and finds each tone's onset; latency is onset heard minus onset captured.
* **Talker -> doorbell.** The talker's microphone track plays the same tone sequence
  from a known start time; the doorbell's speaker sink records when each block of
  samples reached it (``WavFileSink.write_times``); latency is the tone's onset at the
  speaker minus its onset at the microphone.
* **Hub added.** The hub process times each Opus packet from the relay to aiortc, and
  each talk frame from aiortc to the doorbell's socket (see ``audio_hub``).
* **Hub CPU.** CPU seconds per second of the hub process: k live views with sound minus
  the same k without sound, divided by k (per listener); one live view talking minus the
  same view not talking (per talker).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from fractions import Fraction
import json
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket
import av
import numpy as np

from benchmarks.common import REPO, patch_loopback_ice, sample_process, summary, write_json
from reference_doorbell.audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    TONE_FREQUENCIES,
    TONE_PERIOD,
    ToneSequence,
    WavFileSink,
    dominant_frequency,
    tone_index_at,
    tone_sequence_samples,
)
from reference_doorbell.doorbell import Doorbell, DoorbellConfig

TARGET_ONE_WAY_P95_S = 0.150
TARGET_HUB_ADDED_S = 0.020
_ONSET_LEVEL = 2000.0  # RMS of a 5 ms window that counts as "a tone is playing"
_WINDOW = 240  # 5 ms


def log(text: str) -> None:
    print(f"[audio bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def onsets(pcm: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
    """(sample index, tone index) of each tone's start in ``pcm``."""
    found: list[tuple[int, int]] = []
    quiet = True
    for start in range(0, pcm.size - FRAME_SAMPLES, _WINDOW):
        window = pcm[start : start + _WINDOW].astype(np.float64)
        loud = np.sqrt(np.mean(window * window)) > _ONSET_LEVEL
        if loud and quiet:
            tone = tone_index_at(dominant_frequency(pcm[start : start + FRAME_SAMPLES]))
            if tone is not None:
                found.append((start, tone))
        quiet = not loud
    return found


def unwrap(heard_at: float, tone: int, origin: float) -> int | None:
    """The sequence number of a tone heard at ``heard_at``: the last one of its pitch
    that was captured before it was heard (latency is far below one 1.5 s cycle)."""
    cycle = len(TONE_FREQUENCIES)
    k = int((heard_at - origin) / TONE_PERIOD)
    while k >= 0 and k % cycle != tone:
        k -= 1
    return k if k >= 0 else None


class ToneTalker(MediaStreamTrack):
    """A talker's microphone playing the tone sequence, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.started_at: float | None = None
        self._position = 0

    async def recv(self) -> av.AudioFrame:
        if self.started_at is None:
            self.started_at = time.time()
        due = self.started_at + self._position / SAMPLE_RATE
        if (wait := due - time.time()) > 0:
            await asyncio.sleep(wait)
        pcm = tone_sequence_samples(self._position, FRAME_SAMPLES)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._position
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._position += FRAME_SAMPLES
        return frame


class Peer:
    """A browser stand-in: live view with (or without) sound, optionally a talker."""

    def __init__(self, *, sound: bool, talker: ToneTalker | None = None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        if talker is not None:
            self.pc.addTransceiver(talker, direction="sendrecv")
        elif sound:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.session_id = ""
        self.chunks: list[tuple[float, np.ndarray[Any, Any]]] = []
        # Wall time each sound RTP packet reached this peer (by RTP timestamp), and each
        # decoded frame left aiortc (by pts, which aiortc counts from the first packet's
        # timestamp): the difference is what aiortc's jitter buffer and decoder held it.
        self.rtp_arrivals: dict[int, float] = {}
        self.frame_times: list[tuple[int, float]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, http: aiohttp.ClientSession, hub: str) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        async with http.post(f"{hub}/offer", json={"sdp": self.pc.localDescription.sdp}) as r:
            body = await r.json()
        self.session_id = body["id"]
        await self.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "answer"))
        for receiver in self.pc.getReceivers():
            if receiver.track is not None:
                if receiver.track.kind == "audio":
                    self._time_arrivals(receiver)
                self._tasks.append(asyncio.create_task(self._read(receiver.track)))
        for _ in range(200):
            if self.pc.connectionState == "connected":
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the peer did not connect")

    def _time_arrivals(self, receiver: RTCRtpReceiver) -> None:
        """Note when each sound RTP packet arrives, before aiortc's jitter buffer."""
        handle = receiver._handle_rtp_packet

        async def timed(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.rtp_arrivals.setdefault(packet.timestamp, time.time())
            await handle(packet, arrival_time_ms)

        # The DTLS transport looks the handler up on the receiver for every packet.
        setattr(receiver, "_handle_rtp_packet", timed)  # noqa: B010

    def jitter_buffer_holds(self) -> list[float]:
        """Per decoded frame: from its RTP packet's arrival to aiortc handing it over."""
        if not self.rtp_arrivals:
            return []
        first = next(iter(self.rtp_arrivals))
        holds = []
        for pts, at in self.frame_times:
            arrived = self.rtp_arrivals.get((first + pts) % 2**32)
            if arrived is not None:
                holds.append(at - arrived)
        return holds

    async def _read(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, av.AudioFrame):
                at = time.time()
                if frame.pts is not None:
                    self.frame_times.append((frame.pts, at))
                for out in resampler.resample(frame):
                    self.chunks.append((at, out.to_ndarray().reshape(-1).astype(np.int16)))

    def heard_latencies(self, origin: float) -> list[float]:
        """Onset heard minus onset captured, for every tone this peer heard."""
        if not self.chunks:
            return []
        pcm = np.concatenate([c for _at, c in self.chunks])
        # The wall time each sample was handed over: its chunk's arrival time.
        starts = np.cumsum([0] + [c.size for _at, c in self.chunks])
        arrivals = [at for at, _c in self.chunks]
        latencies = []
        for index, tone in onsets(pcm):
            chunk = int(np.searchsorted(starts, index, side="right") - 1)
            # A chunk's samples were all available when it arrived; its first sample is
            # the oldest, so the onset was heard at the arrival of its chunk.
            heard = arrivals[chunk]
            k = unwrap(heard, tone, origin)
            if k is not None:
                latencies.append(heard - (origin + k * TONE_PERIOD))
        return latencies

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()


async def hub_cpu(pid: int, seconds: float) -> float:
    """CPU seconds per second of the hub process over a window."""
    before = sample_process(pid)
    await asyncio.sleep(seconds)
    after = sample_process(pid)
    return (after.cpu_seconds - before.cpu_seconds) / (after.at - before.at)


async def with_peers(
    http: aiohttp.ClientSession, hub: str, count: int, *, sound: bool
) -> list[Peer]:
    peers = [Peer(sound=sound) for _ in range(count)]
    for peer in peers:
        await peer.connect(http, hub)
    return peers


async def close_all(http: aiohttp.ClientSession, hub: str, peers: list[Peer]) -> None:
    for peer in peers:
        async with http.post(f"{hub}/close", json={"id": peer.session_id}):
            pass
        await peer.close()


def speaker_latencies(sink: WavFileSink, pcm: np.ndarray[Any, Any], origin: float) -> list[float]:
    """Onset at the speaker minus onset at the talker's microphone, per tone."""
    if not sink.write_times:
        return []
    first_samples = [first for first, _at in sink.write_times]
    latencies = []
    for index, tone in onsets(pcm):
        block = int(np.searchsorted(first_samples, index, side="right") - 1)
        played = sink.write_times[block][1]
        k = unwrap(played, tone, origin)
        if k is not None:
            latencies.append(played - (origin + k * TONE_PERIOD))
    return latencies


async def run(args: argparse.Namespace) -> dict[str, Any]:
    patch_loopback_ice()
    window = 6.0 if args.quick else 15.0
    work = Path(tempfile.mkdtemp(prefix="doorstep-audio-bench-"))
    speaker = work / "speaker.wav"
    bell = Doorbell(
        DoorbellConfig(
            name="Bench door",
            state_dir=work / "bell",
            host="127.0.0.1",
            port=0,
            advertise=False,
            width=320,
            height=180,
            microphone="tone",
            speaker_file=speaker,
        )
    )
    await bell.start()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    hub_proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.audio_hub",
        "--doorbell-port",
        str(bell.port),
        "--fp",
        bell.fingerprint,
        "--code",
        bell.pairing_code,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=str(REPO),
    )
    results: dict[str, Any] = {}
    try:
        assert hub_proc.stdout is not None
        line = await asyncio.wait_for(hub_proc.stdout.readline(), 60)
        hub = f"http://127.0.0.1:{json.loads(line)['port']}"
        microphone = bell.video.microphone
        assert isinstance(microphone, ToneSequence)
        assert bell.talk is not None
        sink = bell.talk.sink
        assert isinstance(sink, WavFileSink)
        async with aiohttp.ClientSession() as http:
            # Doorbell -> listener latency, with one listener.
            log("listener latency")
            peers = await with_peers(http, hub, 1, sound=True)
            async with http.get(f"{hub}/stats?reset=1"):
                pass
            await asyncio.sleep(window)
            listener_latency = peers[0].heard_latencies(microphone.started_at)
            results["listener_jitter_buffer_s"] = summary(peers[0].jitter_buffer_holds())
            async with http.get(f"{hub}/stats") as response:
                hub_stats = await response.json()
            results["listener_latency_s"] = summary(listener_latency)
            results["listener_hub_added_s"] = hub_stats["listener_delay_s"]
            await close_all(http, hub, peers)

            # CPU per listener: k live views with sound against k without.
            cpu: dict[str, Any] = {}
            for count in (1, 4):
                for sound in (False, True):
                    log(f"hub CPU, {count} live view(s), sound {sound}")
                    peers = await with_peers(http, hub, count, sound=sound)
                    await asyncio.sleep(2.0)
                    cpu[f"{count}_{'sound' if sound else 'video'}"] = await hub_cpu(
                        hub_proc.pid, window
                    )
                    await close_all(http, hub, peers)
            results["hub_cpu"] = cpu
            results["hub_cpu_per_listener"] = {
                str(count): (cpu[f"{count}_sound"] - cpu[f"{count}_video"]) / count
                for count in (1, 4)
            }

            # Talker -> doorbell, and the CPU a talker costs.
            log("talk latency and CPU")
            talker = ToneTalker()
            peer = Peer(sound=True, talker=talker)
            await peer.connect(http, hub)
            await asyncio.sleep(2.0)
            idle = await hub_cpu(hub_proc.pid, window)
            async with http.get(f"{hub}/stats?reset=1"):
                pass
            async with http.post(f"{hub}/talk", json={"id": peer.session_id, "talking": True}):
                pass
            talking = await hub_cpu(hub_proc.pid, window)
            async with http.get(f"{hub}/stats") as response:
                hub_stats = await response.json()
            async with http.post(f"{hub}/talk", json={"id": peer.session_id, "talking": False}):
                pass
            for _ in range(100):
                if not bell.talk.talking:
                    break
                await asyncio.sleep(0.05)
            await close_all(http, hub, [peer])
            assert talker.started_at is not None
            played = np.asarray(np.concatenate(sink._parts))
            results["talk_latency_s"] = summary(speaker_latencies(sink, played, talker.started_at))
            results["talk_hub_added_s"] = hub_stats["talk_delay_s"]
            results["hub_cpu_per_talker"] = talking - idle
            results["hub_cpu_talk"] = {"idle": idle, "talking": talking}
    finally:
        if hub_proc.returncode is None:
            hub_proc.terminate()
            await hub_proc.wait()
        await bell.stop()
    results["window_s"] = window
    results["load_average"] = os.getloadavg()
    results["cpus"] = os.cpu_count()
    results["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["targets"] = {
        "one_way_p95_s": TARGET_ONE_WAY_P95_S,
        "hub_added_s": TARGET_HUB_ADDED_S,
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows (development)")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks"))
    args = parser.parse_args()
    results = asyncio.run(run(args))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out) / "audio.json", results)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

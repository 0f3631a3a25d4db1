"""A Chromium viewer of the benchmark hub: Debian's headless Chromium, driven by Playwright.

The browser loads a small page from this process (loopback) and negotiates with the hub
exactly as the aiortc viewers do: it creates a recvonly offer, waits until the offer
holds its loopback candidate (the hub does not trickle), POSTs it to the hub's
``/offer`` and sets the answer; ``/close`` ends the session. This process only forwards
those two calls to the hub, because the page's origin is not the hub's (the hub serves
no CORS headers, and its media path stays untouched). Chromium decodes the H.264 itself.

Modes (each writes ``--out`` when done, or at SIGTERM for ``watch``):

* ``cold``: ``--joins`` times, a fresh page is opened and joins at once; time to first
  frame is counted from the page's navigation start ("page to first frame") and, to
  compare with aiortc, from the moment the page creates its ``RTCPeerConnection``. The
  orchestrator runs this while the hub's relay is idle, and the gaps let it go idle.
* ``warm``: in one page, ``--joins`` times after a random gap (so at a random GOP
  phase): a new peer connection and ``<video>`` join, wait for the first frame and
  leave. Something else keeps the hub streaming. One join before them, kept apart as
  ``priming``, starts the page's WebRTC stack and decoder.
* ``watch``: one page joins and reads the burned-in block code of every frame the
  compositor presents, until SIGTERM: the glass-to-glass latency sample.

Clocks. Every time comes from ``requestVideoFrameCallback`` metadata, in the page's
``performance`` clock (milliseconds since ``performance.timeOrigin``). The page clock is
mapped to Python's wall clock (the one the doorbell's emission log uses) by sampling
``performance.timeOrigin + performance.now()`` between two ``time.time_ns()`` reads and
keeping the sample with the shortest round trip; the offset and its uncertainty are in
the output. A frame's times are:

* ``received``: when its last RTP packet arrived (``receiveTime``);
* ``presented``: when Chromium handed the decoded frame to the compositor
  (``presentationTime``);
* ``display``: when the compositor expects it on screen (``expectedDisplayTime``). The
  headless compositor runs a simulated 60 Hz vsync, so this adds up to one vsync (and
  the compositor's frame) after ``presented``: the rendering delay a person would have.

Glass-to-glass latency and time to first frame use ``display``; the other two show
where the time goes.

The block code is read in the page: WebCodecs copies the code band's rows of each
presented frame as decoded (``VideoFrame.copyTo``, luma only, no RGB conversion), and
for each of the 120 blocks the mean of the block's central half (the measure of
:func:`reference_doorbell.blockcode.decode_blockcode`, on luma as the aiortc probe reads
it) goes back to Python, which decodes it with the reference decoder. Shipping the
band's pixels for every frame through DevTools would cost more than the decoding being
measured, and a canvas converts the whole frame to RGB first.

Network: the browser resolves no name (``--host-resolver-rules``), uses no ICE server,
and has camera permission for the page's origin, so its candidates are plain addresses;
with ``WebRtcHideLocalIpsWithMdns`` disabled it does not even open an mDNS socket (it
otherwise joins the mDNS group on every interface). ``--allow-loopback-in-peer-connection``
lets it offer 127.0.0.1, the only address the hub's loopback-only policy accepts.
Chromium still gathers on its other interfaces and sends connectivity checks from them
to the hub's 127.0.0.1 candidate (they stay on the machine); the hub ignores them, so
media flows over loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
import random
import signal
import time
from typing import Any

import aiohttp
from aiohttp import web
import numpy as np
from playwright.async_api import BrowserContext, Page, async_playwright

from reference_doorbell.blockcode import COLUMNS, ROWS, decode_blockcode

from .common import CHROMIUM, announce, now_us, summary, write_json

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    # No name is ever looked up outside the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    # Chromium leaves loopback out of WebRTC's networks unless told otherwise.
    "--allow-loopback-in-peer-connection",
    # Even with plain-address candidates, a peer connection starts Chromium's mDNS
    # responder, which joins 224.0.0.251 on every interface (an IGMP report on the real
    # one). Without the feature no mDNS socket is opened at all.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
FIRST_FRAME_TIMEOUT = 15.0
# Clock-offset samples; the one with the shortest DevTools round trip is kept.
CLOCK_SAMPLES = 15

PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>Doorstep bench viewer</title>
<style>body { margin: 0; background: #000 } video { width: 640px }</style></head>
<body><script>
"use strict";
const COLUMNS = %(columns)d, ROWS = %(rows)d;
window.bench = { session: null, error: null };

// The hub does not trickle, so the offer must carry a usable candidate. Only the
// loopback one is (the hub ignores the others), so, like the dashboard, which trickles,
// the page does not wait for Chromium to finish gathering on every other interface.
function offerReady(pc) {
  return new Promise((resolve) => {
    const check = () => {
      const sdp = pc.localDescription ? pc.localDescription.sdp : "";
      if (pc.iceGatheringState === "complete" || / 127\.0\.0\.1 \d+ typ host/.test(sdp)) {
        resolve();
      }
    };
    pc.addEventListener("icecandidate", check);
    pc.addEventListener("icegatheringstatechange", check);
    check();
  });
}

// Mean brightness of the central half of each block of the code band, as the
// reference decoder measures it, but on the luma plane (as the aiortc probe does):
// WebCodecs copies just the band's rows as decoded, with no conversion to RGB, which
// a canvas would do for the whole frame (tens of ms per 1080p frame on this machine).
async function readLevels(video) {
  const frame = new VideoFrame(video);
  try {
    const width = frame.visibleRect.width, size = Math.floor(width / COLUMNS);
    const band = size * ROWS;
    if (size < 2 || band > frame.visibleRect.height) return null;
    const rect = { x: frame.visibleRect.x, y: frame.visibleRect.y, width, height: band };
    const buffer = new Uint8Array(frame.allocationSize({ rect }));
    const layout = await frame.copyTo(buffer, { rect });
    const rgb = !/^(I4|NV12)/.test(frame.format || "");
    const { offset, stride } = layout[0];
    const step = rgb ? 4 : 1;
    const lo = Math.floor(size / 4), hi = size - Math.floor(size / 4);
    const levels = new Array(COLUMNS * ROWS);
    for (let row = 0; row < ROWS; row++) {
      for (let col = 0; col < COLUMNS; col++) {
        let sum = 0;
        for (let y = row * size + lo; y < row * size + hi; y++) {
          let at = offset + y * stride + (col * size + lo) * step;
          for (let x = lo; x < hi; x++, at += step) {
            sum += rgb ? (buffer[at] + buffer[at + 1] + buffer[at + 2]) / 3 : buffer[at];
          }
        }
        levels[row * COLUMNS + col] = Math.round(sum / ((hi - lo) * (hi - lo)));
      }
    }
    return levels;
  } finally {
    frame.close();
  }
}

async function join(read) {
  const started = performance.now();
  const pc = new RTCPeerConnection({ iceServers: [] });
  const video = document.createElement("video");
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.replaceChildren(video);
  const session = {
    pc, video, started, id: null, offered: null, answered: null, first: null,
    frames: [], closed: false, error: null, callbacks: 0, presentedFrames: [null, null],
  };
  // Settles at the first presented frame, or when joining fails.
  session.settled = new Promise((resolve) => { session.settle = resolve; });
  window.bench.session = session;
  let reading = false;
  const onFrame = async (_now, meta) => {
    if (session.closed) return;
    video.requestVideoFrameCallback(onFrame);
    const entry = {
      display: meta.expectedDisplayTime,
      presented: meta.presentationTime,
      received: meta.receiveTime ?? null,
      rtp: meta.rtpTimestamp ?? null,
      presentedFrames: meta.presentedFrames,
    };
    if (session.first === null) {
      session.first = entry;
      session.settle(true);
    }
    session.callbacks += 1;
    if (session.presentedFrames[0] === null) session.presentedFrames[0] = meta.presentedFrames;
    session.presentedFrames[1] = meta.presentedFrames;
    // One read at a time: a frame that arrives meanwhile is counted, not read.
    if (!read || reading) return;
    reading = true;
    try {
      const before = performance.now();
      entry.levels = await readLevels(video);
      entry.readMs = performance.now() - before;
      session.frames.push(entry);
    } catch (err) {
      session.readError = String(err);
    } finally {
      reading = false;
    }
  };
  video.requestVideoFrameCallback(onFrame);
  pc.addEventListener("track", (event) => {
    video.srcObject = new MediaStream([event.track]);
    video.play().catch(() => {});
  });
  try {
    pc.addTransceiver("video", { direction: "recvonly" });
    await pc.setLocalDescription(await pc.createOffer());
    await offerReady(pc);
    session.offered = performance.now();
    const response = await fetch("/offer", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp }),
    });
    const body = await response.json();
    if (body.error) throw new Error(body.error);
    session.id = body.id;
    await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
    session.answered = performance.now();
  } catch (err) {
    session.error = String(err);
    session.settle(false);
  }
  return started;
}

async function leave() {
  const session = window.bench.session;
  if (!session) return;
  session.closed = true;
  session.pc.close();
  session.video.srcObject = null;
  session.video.remove();
  if (session.id !== null) {
    await fetch("/close", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: session.id }),
    }).catch(() => {});
  }
}

// Python waits on this rather than polling the page, which would share its core.
function firstFrame(timeoutMs) {
  const session = window.bench.session;
  if (!session) return Promise.resolve(false);
  const timeout = new Promise((resolve) => setTimeout(() => resolve(false), timeoutMs));
  return Promise.race([session.settled, timeout]);
}

// What Python reads back: everything but the objects.
function report() {
  const s = window.bench.session;
  if (!s) return null;
  return {
    origin: performance.timeOrigin, started: s.started, offered: s.offered,
    answered: s.answered, first: s.first, frames: s.frames, error: s.error,
    readError: s.readError ?? null, callbacks: s.callbacks, presentedFrames: s.presentedFrames,
  };
}

if (location.hash === "#join") join(false);
</script></body></html>
"""


class PageServer:
    """Serves the page and forwards its two signalling calls to the hub (loopback)."""

    def __init__(self, hub: str) -> None:
        self.hub = hub
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_post("/offer", self._forward)
        app.router.add_post("/close", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{int(self._runner.addresses[0][1])}/"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _page(self, _request: web.Request) -> web.Response:
        return web.Response(
            text=PAGE % {"columns": COLUMNS, "rows": ROWS}, content_type="text/html"
        )

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        async with self._http.post(f"{self.hub}{request.path}", data=await request.read()) as up:
            return web.Response(
                body=await up.read(), status=up.status, content_type="application/json"
            )


def decode_levels(levels: list[int] | None) -> tuple[int, int] | None:
    """The block code from the page's 120 block levels, by the reference decoder.

    Each level becomes one flat 4x4 block of a tiny frame, whose central-half mean is
    the level itself, so the decoder thresholds exactly what the page measured.
    """
    if levels is None or len(levels) != COLUMNS * ROWS:
        return None
    grid = np.clip(np.asarray(levels, dtype=np.int64), 0, 255).astype(np.uint8)
    pixels = np.repeat(np.repeat(grid.reshape(ROWS, COLUMNS), 4, axis=0), 4, axis=1)
    return decode_blockcode(np.repeat(pixels[:, :, np.newaxis], 3, axis=2))


async def page_clock(page: Page) -> dict[str, float]:
    """Offset (µs) to add to the page's epoch time (``timeOrigin + now``) to get Python's
    ``time.time_ns() // 1000``, from the sample with the shortest round trip."""
    best: tuple[int, float] | None = None
    for _ in range(CLOCK_SAMPLES):
        before = time.time_ns()
        page_ms = await page.evaluate("performance.timeOrigin + performance.now()")
        after = time.time_ns()
        rtt = after - before
        offset = (before + after) / 2 / 1000 - float(page_ms) * 1000
        if best is None or rtt < best[0]:
            best = (rtt, offset)
    assert best is not None
    return {"offset_us": best[1], "uncertainty_us": best[0] / 2 / 1000}


class Viewer:
    """A browser context and the page server; the modes drive pages through it."""

    def __init__(self, context: BrowserContext, server: PageServer) -> None:
        self.context = context
        self.server = server
        self.clock: dict[str, float] = {}

    def to_us(self, origin_ms: float, at_ms: float | None) -> int | None:
        """A page time as Python wall-clock microseconds."""
        if at_ms is None:
            return None
        return round((origin_ms + at_ms) * 1000 + self.clock["offset_us"])

    async def first_frame(self, page: Page) -> dict[str, Any] | None:
        """Wait for the session's first presented frame (or its failure), then read
        the session's report."""
        await page.evaluate(f"firstFrame({FIRST_FRAME_TIMEOUT * 1000:.0f})")
        report: dict[str, Any] | None = await page.evaluate("report()")
        return report

    def join_record(
        self, name: str, report: dict[str, Any] | None, since_ms: float
    ) -> dict[str, Any]:
        """A join in the aiortc viewers' shape: ``join_us``, ``first_frame_us``,
        ``ttff_s`` (to the frame's expected display), plus Chromium's own stages."""
        if report is None:
            return {"name": name, "ttff_s": None, "error": "no session"}
        origin, first = report["origin"], report["first"]
        record: dict[str, Any] = {
            "name": name,
            "join_us": self.to_us(origin, since_ms),
            "pc_us": self.to_us(origin, report["started"]),
            "offer_us": self.to_us(origin, report["offered"]),
            "answer_us": self.to_us(origin, report["answered"]),
            "first_frame_us": None,
            "ttff_s": None,
            "error": report["error"],
        }
        if first is not None:
            record["first_frame_us"] = self.to_us(origin, first["display"])
            record["ttff_s"] = (first["display"] - since_ms) / 1000
            record["pc_ttff_s"] = (first["display"] - report["started"]) / 1000
            record["first_presented_s"] = (first["presented"] - since_ms) / 1000
            if first["received"] is not None:
                record["first_received_s"] = (first["received"] - since_ms) / 1000
        elif record["error"] is None:
            record["error"] = f"no frame within {FIRST_FRAME_TIMEOUT:g} s"
        return record

    async def open_page(self, hash_: str = "") -> Page:
        page = await self.context.new_page()
        await page.goto(self.server.url + hash_)
        return page

    async def leave(self, page: Page) -> None:
        with contextlib.suppress(Exception):
            await page.evaluate("leave()")


async def gap(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` unless stopped; True when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def run_cold(viewer: Viewer, args: argparse.Namespace, stop: asyncio.Event) -> Any:
    joins: list[dict[str, Any]] = []
    for index in range(args.joins):
        if await gap(stop, args.gap_min + random.uniform(0.0, args.join_spread)):
            break
        # The page joins on load: navigation start is the "page" of "page to first frame".
        page = await viewer.open_page("#join")
        report = await viewer.first_frame(page)
        # Each page has its own time origin; sampled after the join, not during it.
        viewer.clock = await page_clock(page)
        joins.append(viewer.join_record(f"cold-{index}", report, 0.0))
        await viewer.leave(page)
        await page.close()
    return {"joins": joins}


async def run_warm(viewer: Viewer, args: argparse.Namespace, stop: asyncio.Event) -> Any:
    joins: list[dict[str, Any]] = []
    page = await viewer.open_page()
    viewer.clock = await page_clock(page)
    # The first peer connection of a page also starts Chromium's WebRTC stack and its
    # decoder (the cold figures include that, from a new page); it is kept apart so the
    # warm sample is about joining a running stream.
    priming: dict[str, Any] | None = None
    for index in range(-1, args.joins):
        if await gap(stop, args.gap_min + random.uniform(0.0, args.join_spread)):
            break
        started = float(await page.evaluate("join(false)"))
        report = await viewer.first_frame(page)
        record = viewer.join_record(f"warm-{index}", report, started)
        await viewer.leave(page)
        if index < 0:
            priming = record
        else:
            joins.append(record)
    await page.close()
    return {"joins": joins, "priming": priming}


async def run_watch(viewer: Viewer, args: argparse.Namespace, stop: asyncio.Event) -> Any:
    page = await viewer.open_page()
    viewer.clock = await page_clock(page)
    started = float(await page.evaluate("join(true)"))
    await stop.wait()
    report = await page.evaluate("report()")
    # Again at the end: the mean of both covers any drift between the clocks.
    start_clock = dict(viewer.clock)
    end_clock = await page_clock(page)
    viewer.clock = {
        "offset_us": (start_clock["offset_us"] + end_clock["offset_us"]) / 2,
        "uncertainty_us": max(start_clock["uncertainty_us"], end_clock["uncertainty_us"]),
    }
    record = viewer.join_record(args.name, report, started)
    record["decode"] = True
    frames: list[list[int]] = []
    stages: list[list[int | None]] = []
    undecodable = 0
    origin = report["origin"] if report else 0.0
    entries = (report or {}).get("frames", [])
    for entry in entries:
        code = decode_levels(entry.get("levels"))
        if code is None:
            undecodable += 1
            continue
        display = viewer.to_us(origin, entry["display"])
        assert display is not None
        frames.append([code[0], code[1], display])
        stages.append(
            [
                code[0],
                viewer.to_us(origin, entry["received"]),
                viewer.to_us(origin, entry["presented"]),
                display,
                entry["presentedFrames"],
            ]
        )
    record["frames"] = frames
    # Per decoded frame: counter, received, presented, expected display (µs), and the
    # compositor's running count of presented frames (gaps = frames never shown).
    record["stages"] = stages
    record["undecodable"] = undecodable
    # Frames the compositor presented, callbacks the page got, frames it read: a busy
    # page thread misses callbacks (and their codes), not frames.
    first_presented, last_presented = (report or {}).get("presentedFrames", [None, None])
    record["presented_frames"] = (
        last_presented - first_presented + 1 if first_presented is not None else 0
    )
    record["callbacks"] = (report or {}).get("callbacks", 0)
    record["read"] = len(entries)
    record["read_error"] = (report or {}).get("readError")
    record["read_ms"] = summary([e["readMs"] for e in entries if e.get("readMs") is not None])
    record["clock_drift_us"] = end_clock["offset_us"] - start_clock["offset_us"]
    await viewer.leave(page)
    await page.close()
    return {"viewers": [record]}


async def main_async(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = PageServer(args.url)
    url = await server.start()
    runners = {"cold": run_cold, "warm": run_warm, "watch": run_watch}
    result: dict[str, Any] = {"mode": args.mode, "browser": None}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                context = await browser.new_context(viewport={"width": 800, "height": 600})
                # With camera permission Chromium offers plain addresses instead of
                # random .local names that it would answer by multicast.
                await context.grant_permissions(["camera", "microphone"], origin=url.rstrip("/"))
                viewer = Viewer(context, server)
                result["browser"] = browser.version
                announce(page=url, browser=browser.version)
                result.update(await runners[args.mode](viewer, args, stop))
                result["clock"] = viewer.clock
            finally:
                await browser.close()
    except Exception as err:  # the output says what failed; the orchestrator goes on
        result["error"] = f"{type(err).__name__}: {err}"
    finally:
        await server.close()
    result["written_us"] = now_us()
    write_json(Path(args.out), result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("cold", "warm", "watch"))
    parser.add_argument("--url", required=True, help="the hub's loopback API")
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--gap-min", type=float, default=0.3)
    parser.add_argument("--join-spread", type=float, default=2.0)
    parser.add_argument("--name", default="chromium")
    parser.add_argument("--out", required=True)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

"""What polling an area feed costs a hub: ``python -m benchmarks.feeds [--out FILE]``.

Measures, on this machine, with the hub's own code:
- CPU time to verify and plan a feed of 0, 1, 100 and 1000 entries (so per entry);
- CPU time to match one entry at home (area check; the footage check is a lookup in
  the clip store's in-memory index, not measured here);
- a whole poll against the reference agency over loopback TLS, both a 200 with the
  1000-entry feed and a 304, counting the bytes of the request and response heads.

Results are CPU seconds of this process (time.process_time), medians of repeated runs;
the agency runs in a thread of the same process, so its share is in the poll figures
too, which makes them an upper bound for the hub.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import statistics
import tempfile
import threading
import time
from typing import Any

from custom_components.doorstep.sharing import trusted_context
from custom_components.doorstep.sharing.area import Point
from custom_components.doorstep.sharing.feed_fetch import FEED_HEADERS, feed_session, fetch_feed
from custom_components.doorstep.sharing.feeds import entry_matches, plan_feed, verify_feed
from reference_doorbell.agency import AgencyServer
from reference_doorbell.agency_feed import AgencyKeys, area_entry, build_feed, circle, polygon
from scripts.lab.certs import TestCa

HOME = Point(52.37, 4.89)


def _entries(count: int, now: datetime) -> list[dict[str, Any]]:
    items = []
    for index in range(count):
        lat = 40 + (index % 100) * 0.1
        lon = -5 + (index // 100) * 0.5
        area = (
            circle(lat, lon, 800)
            if index % 2
            else polygon([(lat + 0.01 * (k % 3), lon + 0.01 * (k // 3)) for k in range(12)])
        )
        items.append(
            area_entry(
                f"case-{index:05d}",
                reference=f"RPD-2026-{index:05d}",
                reason="Break-in reported on the street; footage of the evening may help. " * 3,
                contact="Reference PD evidence desk, evidence@rpd.example",
                area=area,
                window_start=now - timedelta(hours=5),
                window_end=now - timedelta(hours=3),
                wanted_by=now + timedelta(days=14),
                upload_url=f"https://evidence.rpd.example/upload/case-{index:05d}",
            )
        )
    return items


def _median_cpu(action: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        action()
        samples.append(time.process_time() - started)
    return statistics.median(samples)


def measure_verify(keys: AgencyKeys, now: datetime) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for count in (0, 1, 100, 1000):
        raw = build_feed(keys, agency="Reference PD", entries=_entries(count, now), sequence=1)
        fingerprint = keys.fingerprint()

        def run(raw: bytes = raw, fingerprint: str = fingerprint) -> None:
            feed = verify_feed(raw, fingerprint, now=now)
            plan_feed(feed, {}, now=now)

        results[str(count)] = {
            "bytes": len(raw),
            "cpu_s": _median_cpu(run, 30 if count < 1000 else 10),
        }
    per_entry = (results["1000"]["cpu_s"] - results["0"]["cpu_s"]) / 1000
    feed = verify_feed(
        build_feed(keys, agency="Reference PD", entries=_entries(1000, now), sequence=1),
        keys.fingerprint(),
        now=now,
    )
    match_cpu = _median_cpu(
        lambda: [entry_matches(entry, [HOME], lambda _s, _e: True) for entry in feed.entries], 10
    )
    return {
        "feeds": results,
        "verify_per_entry_cpu_s": per_entry,
        "bytes_per_entry": (results["1000"]["bytes"] - results["0"]["bytes"]) / 1000,
        "match_per_entry_cpu_s": match_cpu / 1000,
    }


def measure_polls(keys: AgencyKeys, now: datetime, workdir: Path) -> dict[str, Any]:
    ca = TestCa.create(workdir / "ca", "bench agency CA")
    cert = ca.issue(workdir / "ca", ["127.0.0.1"])
    feed_path = workdir / "feed.json"
    body = build_feed(keys, agency="Reference PD", entries=_entries(1000, now), sequence=1)
    feed_path.write_bytes(body)
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    servers: list[AgencyServer] = []

    async def serve() -> None:
        server = AgencyServer(
            feed=feed_path,
            host="127.0.0.1",
            port=0,
            cert=cert.cert,
            key=cert.key,
            out_dir=workdir / "received",
        )
        await server.start()
        servers.append(server)
        stop.append(asyncio.Event())
        ready.set()
        await stop[0].wait()
        await server.stop()

    loop_holder: list[asyncio.AbstractEventLoop] = []

    def agency_thread() -> None:
        loop = asyncio.new_event_loop()
        loop_holder.append(loop)
        loop.run_until_complete(serve())

    thread = threading.Thread(target=agency_thread, daemon=True)
    thread.start()
    ready.wait(30)
    server = servers[0]
    url = f"https://127.0.0.1:{server.port}/feed.json"
    context = trusted_context(ca.cert_path)

    async def polls() -> dict[str, Any]:
        async with feed_session() as session:
            first = await fetch_feed(session, url, etag=None, ssl_context=context)
            full_samples, not_modified_samples = [], []
            for _ in range(10):
                started = time.process_time()
                result = await fetch_feed(session, url, etag=None, ssl_context=context)
                assert result.body is not None
                verify_feed(result.body, keys.fingerprint(), now=now)
                full_samples.append(time.process_time() - started)
            for _ in range(30):
                started = time.process_time()
                result = await fetch_feed(session, url, etag=first.etag, ssl_context=context)
                assert result.body is None
                not_modified_samples.append(time.process_time() - started)
        return {
            "full_poll_1000_entries_cpu_s": statistics.median(full_samples),
            "not_modified_poll_cpu_s": statistics.median(not_modified_samples),
            "etag": first.etag,
        }

    measured = asyncio.run(polls())
    loop_holder[0].call_soon_threadsafe(stop[0].set)
    thread.join(10)
    head = server.log.fetch_heads[-1]
    etag = str(measured.pop("etag"))
    # What a 304 from the reference agency (aiohttp) carries: status line and headers.
    response_head = (
        "HTTP/1.1 304 Not Modified\r\n"
        f"ETag: {etag}\r\nDate: Thu, 03 Dec 2026 08:00:00 GMT\r\n"
        "Server: Python/3.14 aiohttp/3.13\r\nConnection: close\r\n\r\n"
    )
    return {
        **measured,
        "feed_bytes_1000_entries": len(body),
        "request_head_bytes_conditional": len(head) + 2,
        "response_head_bytes_304": len(response_head.encode()),
        "fixed_headers": [name for name, _ in FEED_HEADERS],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/feeds.json"))
    args = parser.parse_args()
    keys = AgencyKeys.generate()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "measured_at": now.isoformat(timespec="seconds"),
            "verify": measure_verify(keys, now),
            "poll": measure_polls(keys, now, Path(tmp)),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

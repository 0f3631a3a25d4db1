"""Turn the raw run (``live_view.json``) into the figures the report shows.

Latency of a decoded frame is its receive time minus the time the doorbell handed that
frame out (the emission log; see :mod:`benchmarks.clip`), or minus the capture time in
its block code when the doorbell encoded live. Frame rates count what each viewer got
inside a measurement window; "delivered" compares that with what the doorbell emitted
in the same window.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from typing import Any

from .common import summary

# A block-code time below this is a clip-relative time, above it a Unix capture time.
_ABSOLUTE_US = 10**15


class Emissions:
    """When the doorbell handed out each clip frame (possibly many times: it loops)."""

    def __init__(self, entries: list[list[int]]) -> None:
        by_index: dict[int, list[int]] = defaultdict(list)
        for index, at in entries:
            by_index[index].append(at)
        self._by_index = {k: sorted(v) for k, v in by_index.items()}
        self._all = sorted(at for _index, at in entries)

    def emitted_at(self, index: int, received_us: int) -> int | None:
        """The latest emission of clip frame ``index`` not after ``received_us``."""
        times = self._by_index.get(index)
        if not times:
            return None
        pos = bisect_right(times, received_us)
        return times[pos - 1] if pos else None

    def count(self, start_us: int, end_us: int) -> int:
        """Frames emitted in ``[start_us, end_us)``."""
        return bisect_right(self._all, end_us - 1) - bisect_right(self._all, start_us - 1)


def latencies_ms(
    frames: list[list[int]], emissions: Emissions, start_us: int = 0, end_us: int = 2**63
) -> list[float]:
    """Glass-to-glass milliseconds of decoded frames received inside the window."""
    out: list[float] = []
    for counter, code_us, received_us in frames:
        if not start_us <= received_us < end_us:
            continue
        if code_us >= _ABSOLUTE_US:
            origin: int | None = code_us
        else:
            origin = emissions.emitted_at(counter, received_us)
        if origin is not None:
            out.append((received_us - origin) / 1000)
    return out


def frames_in(frames: list[list[int]], decode: bool, start_us: int, end_us: int) -> int:
    """How many frames a viewer received inside the window."""
    at = 2 if decode else 1
    return sum(1 for f in frames if start_us <= f[at] < end_us)


def all_viewers(files: list[Any]) -> list[dict[str, Any]]:
    viewers: list[dict[str, Any]] = []
    for data in files:
        if data:
            viewers.extend(data.get("viewers", []))
    return viewers


def step_figures(step: dict[str, Any], files: list[Any], emissions: Emissions) -> dict[str, Any]:
    """Per-window figures: latency of the probe, frame rates, delivery, resources."""
    start, end = step["start_us"], step["end_us"]
    seconds = (end - start) / 1e6
    emitted = emissions.count(start, end)
    viewers = [v for v in all_viewers(files) if v.get("join_us", 0) < start]
    rates = [frames_in(v["frames"], v["decode"], start, end) / seconds for v in viewers]
    probe_latency: list[float] = []
    for viewer in viewers:
        if viewer["decode"]:
            probe_latency.extend(latencies_ms(viewer["frames"], emissions, start, end))
    received = [frames_in(v["frames"], v["decode"], start, end) for v in viewers]
    figures: dict[str, Any] = {
        "viewers": step["viewers"],
        "viewers_seen": len(viewers),
        "server_cpu": step["cpu_cores"]["server"],
        "server_rss_mb": step["rss_mb"]["server"],
        "doorbell_cpu": step["cpu_cores"]["doorbell"],
        "viewer_core_cpu": step["cpu_cores"]["viewers"],
        "source_fps": emitted / seconds,
        "fps_min": min(rates) if rates else None,
        "fps_mean": sum(rates) / len(rates) if rates else None,
        "frames_emitted": emitted,
        "frames_received_min": min(received) if received else None,
        "frames_missing_total": sum(max(0, emitted - r) for r in received),
        "latency_ms": summary(probe_latency),
        "errors": [v["error"] for v in viewers if v.get("error")],
        "other_cores": step.get("other_cores"),
    }
    if "feeder" in step["cpu_cores"]:
        figures["feeder_cpu"] = step["cpu_cores"]["feeder"]
    before, after = step.get("hub_stats_before"), step.get("hub_stats_after")
    if before and after:
        dropped = {s["id"]: s["dropped"] for s in before["sessions"]}
        figures["hub_dropped"] = sum(
            s["dropped"] - dropped.get(s["id"], 0) for s in after["sessions"]
        )
        figures["hub_overflows"] = sum(s["overflows"] for s in after["sessions"])
        # What the hub handed to each viewer's RTP sender in the window.
        delivered = {s["id"]: s["delivered"] for s in before["sessions"]}
        sent = [
            (s["delivered"] - delivered[s["id"]]) / seconds
            for s in after["sessions"]
            if s["id"] in delivered
        ]
        figures["hub_sent_fps_min"] = min(sent) if sent else None
    return figures


def fit(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
    """Least-squares line ``y = a + b x``; None with fewer than two points."""
    if len(xs) < 2:
        return None
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    return mean_y - slope * mean_x, slope


def scaling(steps: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    """Value at one viewer and the cost of each extra viewer (slope over 1..16)."""
    points = [(s["viewers"], s[key]) for s in steps if s.get(key) is not None]
    line = fit([float(x) for x, _ in points], [float(y) for _, y in points])
    at_one = next((y for x, y in points if x == 1), None)
    return {"at_one": at_one, "per_extra": line[1] if line else None}


def ttff(records: list[dict[str, Any]] | None) -> dict[str, Any]:
    values = [r["ttff_s"] for r in records or [] if r.get("ttff_s") is not None]
    failed = sum(1 for r in records or [] if r.get("ttff_s") is None)
    return {**summary(values), "failed": failed}


def analyze_run(run: dict[str, Any]) -> dict[str, Any]:
    """Everything the report needs about one resolution."""
    emissions = Emissions(run.get("emissions", []))
    out: dict[str, Any] = {"label": run["label"]}
    hub = run["hub"]
    # ``--only chromium`` runs leave out the steps and the aiortc phases.
    steps = [step_figures(s, hub.get("viewer_files", []), emissions) for s in hub.get("steps", [])]
    out["hub_steps"] = steps
    out["hub_cpu"] = scaling(steps, "server_cpu")
    out["hub_rss"] = scaling(steps, "server_rss_mb")
    out["hub_idle_cpu"] = hub["idle"]["cpu_cores"]["hub"]
    out["hub_idle_rss_mb"] = hub["idle"]["rss_mb"]["hub"]
    out["cold_ttff"] = ttff((hub.get("cold") or {}).get("joins"))
    out["warm_ttff"] = ttff((hub.get("warm") or {}).get("joins"))
    # The latency phase: the browser-like probe alone, then the direct reader alone.
    for name, record, key in (
        ("hub_marker", hub.get("marker"), "latency_window_hub"),
        ("direct", hub.get("direct"), "latency_window_direct"),
    ):
        window = hub.get(key)
        viewers = all_viewers([record])
        if window and viewers:
            out[f"{name}_latency_ms"] = summary(
                latencies_ms(viewers[0]["frames"], emissions, window["start_us"], window["end_us"])
            )
            out[f"{name}_other_cores"] = window.get("other_cores")
    # The stock aiortc probe alone, in the one-viewer step window.
    out["hub_latency_ms"] = steps[0]["latency_ms"] if steps else summary([])
    janus = run.get("janus") or {}
    if janus.get("available"):
        jsteps = [step_figures(s, janus["viewer_files"], emissions) for s in janus["steps"]]
        out["janus_steps"] = jsteps
        out["janus_cpu"] = scaling(jsteps, "server_cpu")
        out["janus_rss"] = scaling(jsteps, "server_rss_mb")
        out["janus_warm_ttff"] = ttff((janus.get("warm") or {}).get("joins"))
    else:
        out["janus_unavailable"] = janus.get("reason", "not run")
    out["hass"] = analyze_hass(run.get("hass"), emissions)
    out["chromium"] = analyze_chromium(hub.get("chromium"), emissions)
    out.update(analyze_transcode(run.get("hub_transcode"), emissions))
    return out


def analyze_chromium(chromium: dict[str, Any] | None, emissions: Emissions) -> dict[str, Any]:
    """The headless Chromium viewer: time to first frame and glass-to-glass latency.

    Latency ends at the frame's expected display time; the same frames measured to
    their last RTP packet's arrival and to their hand-over to the compositor show what
    Chromium's receive, decode and rendering add.
    """
    if not chromium or not chromium.get("available"):
        return {"available": False, "reason": (chromium or {}).get("reason", "not run")}
    out: dict[str, Any] = {"available": True}
    cold = chromium.get("cold") or {}
    out["cold_ttff"] = ttff(cold.get("joins"))
    out["cold_pc_ttff"] = summary(
        [j["pc_ttff_s"] for j in cold.get("joins", []) if j.get("pc_ttff_s") is not None]
    )
    warm = chromium.get("warm") or {}
    out["warm_ttff"] = ttff(warm.get("joins"))
    out["warm_priming_ttff_s"] = (warm.get("priming") or {}).get("ttff_s")
    out["cold_other_cores"] = chromium.get("cold_other_cores")
    out["warm_other_cores"] = chromium.get("warm_other_cores")
    out["errors"] = [
        part["error"] for part in (cold, warm, chromium.get("watch") or {}) if part.get("error")
    ]
    if chromium.get("watch_error"):
        out["errors"].append(chromium["watch_error"])
    window = chromium.get("latency_window")
    viewers = all_viewers([chromium.get("watch")])
    if not window or not viewers:
        return out
    viewer = viewers[0]
    start, end = window["start_us"], window["end_us"]
    out["latency_ms"] = summary(latencies_ms(viewer["frames"], emissions, start, end))
    # stages: counter, received, presented, display (µs), presented-frame count.
    stages = [s for s in viewer.get("stages", []) if start <= s[3] < end]
    for name, index in (("received", 1), ("presented", 2)):
        frames = [[s[0], 0, s[index]] for s in stages if s[index] is not None]
        out[f"{name}_latency_ms"] = summary(latencies_ms(frames, emissions))
    seconds = (end - start) / 1e6
    out["fps_read"] = frames_in(viewer["frames"], True, start, end) / seconds
    presented = [s[4] for s in stages]
    out["fps_presented"] = (max(presented) - min(presented) + 1) / seconds if presented else None
    out["source_fps"] = emissions.count(start, end) / seconds
    out["undecodable"] = viewer.get("undecodable")
    out["read_ms"] = viewer.get("read_ms")
    out["clock"] = (chromium.get("watch") or {}).get("clock")
    out["clock_drift_us"] = viewer.get("clock_drift_us")
    out["viewer_cpu"] = window["cpu_cores"]["viewers"]
    out["viewer_rss_mb"] = window["rss_mb"]["viewers"]
    out["hub_cpu"] = window["cpu_cores"]["hub"]
    out["other_cores"] = window.get("other_cores")
    return out


def analyze_transcode(transcode: dict[str, Any] | None, emissions: Emissions) -> dict[str, Any]:
    """The hub with forced transcoding: the usual step figures plus the transcoder's own
    counters over each window."""
    if not transcode:
        return {}
    steps = []
    for raw in transcode["steps"]:
        figures = step_figures(raw, transcode["viewer_files"], emissions)
        figures["transcoder"] = transcoder_window(raw)
        steps.append(figures)
    return {
        "transcode_steps": steps,
        "transcode_cpu": scaling(steps, "server_cpu"),
        "transcode_rss": scaling(steps, "server_rss_mb"),
    }


def transcoder_window(step: dict[str, Any]) -> dict[str, Any]:
    """Frames the transcoder encoded, skipped (behind) and dropped (overflow) per second
    of the window, and the bitrate it chose."""
    before = (step.get("hub_stats_before") or {}).get("transcode") or {}
    after = (step.get("hub_stats_after") or {}).get("transcode") or {}
    if not after:
        return {}
    seconds: float = (step["end_us"] - step["start_us"]) / 1e6

    def rate(key: str) -> float:
        # A transcoder restarted inside the window starts its counters from zero.
        start = before.get(key, 0) if before.get(key, 0) <= after.get(key, 0) else 0
        return float(after.get(key, 0) - start) / seconds

    return {
        "encoded_fps": rate("frames_encoded"),
        "skipped_fps": rate("frames_skipped"),
        "dropped_pps": rate("packets_dropped"),
        "decode_errors": after.get("decode_errors", 0),
        "bitrate": after.get("bitrate"),
        "size": f"{after.get('width')}x{after.get('height')}",
    }


def analyze_hass(hass: dict[str, Any] | None, emissions: Emissions) -> dict[str, Any]:
    if not hass or not hass.get("available"):
        return {"available": False, "reason": (hass or {}).get("reason", "not run")}
    window = hass["window"]
    viewer = all_viewers([hass.get("viewer_file")])
    record = viewer[0] if viewer else {}
    frames = record.get("frames", [])
    start, end = window["start_us"], window["end_us"]
    seconds = (end - start) / 1e6
    return {
        "available": True,
        "frames_in_window": frames_in(frames, True, start, end),
        "fps": frames_in(frames, True, start, end) / seconds,
        "latency_ms": summary(latencies_ms(frames, emissions, start, end)),
        "ttff_s": record.get("ttff_s"),
        "server_cpu": window["cpu_cores"]["server"],
        "other_cores": window.get("other_cores"),
        "server_rss_mb": window["rss_mb"]["server"],
        "viewer_error": record.get("error"),
        "part_hold_back_s": _part_hold_back(record.get("playlist", "")),
        "log_errors": hass.get("log_errors", []),
    }


def analyze_encoder(check: dict[str, Any]) -> dict[str, Any]:
    """The live doorbell: its CPU, the frame rate its stream held, and glass-to-glass
    latency from the real capture time (encode included) to a direct reader."""
    window = check["window"]
    start, end = window["start_us"], window["end_us"]
    viewers = all_viewers([check.get("reader")])
    frames = viewers[0]["frames"] if viewers else []
    return {
        "doorbell_cpu": window["cpu_cores"]["doorbell"],
        "fps": frames_in(frames, True, start, end) / ((end - start) / 1e6),
        "latency_ms": summary(latencies_ms(frames, Emissions([]), start, end)),
    }


def _part_hold_back(playlist: str) -> float | None:
    """PART-HOLD-BACK from HA's playlist: how far behind live a compliant player stays."""
    for line in playlist.splitlines():
        if "PART-HOLD-BACK=" in line:
            return float(line.split("PART-HOLD-BACK=")[1].split(",")[0])
    return None

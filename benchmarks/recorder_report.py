"""The "Recording" section of ``docs/benchmarks.md`` and ``recorder.png``, from
``docs/benchmarks/recorder.json`` (written by ``python -m benchmarks.recorder``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .plot import Series, grid, line_panel

MB = 1024 * 1024


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.0f}"


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value / MB:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _baseline(memory: list[dict[str, Any]], label: str) -> dict[str, Any] | None:
    return next((m for m in memory if m["label"] == label and m["pre_roll_s"] is None), None)


def _growth(entry: dict[str, Any]) -> float:
    """Steady RSS less the RSS at the first sample (replay starting)."""
    return float(entry["rss_steady_bytes"] - entry["samples"][0][1])


def section(raw: dict[str, Any], png: str) -> str:
    """Markdown for the recorder's results."""
    settings, machine = raw["settings"], raw["machine"]
    target = settings["target_cut_s"]
    cut_rows = []
    for label, run in raw["cut"].items():
        stats = run["cut_s"]
        worst = stats["max"]
        verdict = "n/a" if worst is None else ("**met**" if worst <= target else "**missed**")
        cut_rows.append(
            [
                label,
                f"{run['bitrate_bps'] / 1e6:.1f} Mbit/s",
                str(stats["n"]),
                f"{run['clip_s']['p50']:.1f} s, {_mb(run['size_bytes']['p50'])} MB",
                _ms(stats["p50"]),
                _ms(stats["p95"]),
                _ms(worst),
                f"≤ {target * 1000:.0f}",
                verdict,
            ]
        )
    memory_rows = []
    for entry in raw["memory"]:
        if entry["pre_roll_s"] is None:
            continue
        baseline = _baseline(raw["memory"], entry["label"])
        memory_rows.append(
            [
                entry["label"],
                f"{entry['pre_roll_s']:.0f} s",
                _mb(entry["window_bytes"]),
                _mb(entry["ring_peak_bytes"]),
                f"{entry['ring_end_seconds']:.1f} s",
                _mb(entry["ring_cap_bytes"]),
                _mb(entry["rss_steady_bytes"]),
                _mb(_growth(entry)),
                _mb(_growth(baseline) if baseline else None),
            ]
        )
    load0, load1 = machine["load_average_start"], machine["load_average_end"]
    return "\n".join(
        [
            "## Recording",
            "",
            "Measured by `python -m benchmarks.recorder` (a step of `scripts/bench`; alone: "
            f"`scripts/bench --only recorder`). The run took {raw['duration_s'] / 60:.1f} min. "
            "Raw data: [`benchmarks/recorder.json`](benchmarks/recorder.json).",
            "",
            f"![recorder benchmark]({png})",
            "",
            "### Clip cut time against the target",
            "",
            f"{settings['events']} rings per format, one after another, each a clip of "
            f"{settings['pre_roll_s']:.0f} s pre-roll and {settings['post_roll_s']:.0f} s "
            "post-roll, from the pre-encoded clip replayed in real time into the "
            "recorder. Cut time runs from the end of the post-roll on the stream's "
            "schedule to the recorder's `on_clip` callback: the MP4 closed, its index "
            "moved to the front (faststart), fsynced and renamed into place, on the same "
            "disk as the Home Assistant config directory. The benchmark's synthetic scene "
            "compresses well (see the stream column); a camera sending 4 Mbit/s makes "
            "clips about three times larger, and the faststart rewrite grows with the "
            "file.",
            "",
            _table(
                [
                    "format",
                    "stream",
                    "events",
                    "clip (p50)",
                    "p50 ms",
                    "p95 ms",
                    "max ms",
                    "target ms",
                    "verdict",
                ],
                cut_rows,
            ),
            "",
            "### Recorder memory",
            "",
            "Resident memory of a process replaying the stream for "
            f"{settings['memory_seconds']:.0f} s into a recorder that keeps only its "
            "pre-roll (no event), against the same process replaying into nothing. "
            "RSS is the mean over the second half of the run, once the ring is full; "
            "its growth is that mean less the process's RSS when replaying began. The "
            "ring is cut at keyframes, so it holds the window plus at most one GOP (2 s "
            "here); its byte cap (8 Mbit/s over the window plus one GOP) bounds it even "
            "for a source far above its bitrate. RSS grows by less than the ring at low "
            "bitrates because the allocator reuses memory freed while the clip was "
            "loaded; the ring's own byte count is the exact figure, and it stays at the "
            "window plus one GOP at the stream's bitrate.",
            "",
            _table(
                [
                    "format",
                    "pre-roll",
                    "bitrate x window MB",
                    "ring peak MB",
                    "ring length",
                    "ring cap MB",
                    "RSS MB",
                    "RSS growth MB",
                    "RSS growth without recorder MB",
                ],
                memory_rows,
            ),
            "",
            f"- {machine['cores']} cores. Load average (1/5/15 min) at the start: "
            f"{load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f}; at the end: "
            f"{load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f}. Other test runs shared "
            "the machine during this run, so the tail of the cut time includes their "
            "load; the memory figures do not depend on it.",
            "- Late frames (a frame handed out more than one frame period after it was "
            "due): "
            + ", ".join(f"{label} {run['late_frames']}" for label, run in raw["cut"].items())
            + ". They delay the packet that closes a clip, so they count in its cut time.",
            "",
        ]
    )


def plot(raw: dict[str, Any], path: Path) -> None:
    """Cut time per event, the ring against bitrate x window, and memory over time."""
    target_ms = raw["settings"]["target_cut_s"] * 1000
    cut_series = []
    events = 1
    for label, run in raw["cut"].items():
        ys = [event["cut_s"] * 1000 for event in run["events"]]
        events = max(events, len(ys))
        cut_series.append(Series(label, list(range(1, len(ys) + 1)), ys))
    ticks = sorted({1, *range(5, events + 1, 5), events})
    panels = [
        line_panel(
            f"Clip cut time per event (target <= {target_ms:.0f} ms)",
            "event",
            "ms",
            cut_series,
            ticks,
        )
    ]
    ring_series = []
    for label in raw["cut"]:
        rings = sorted(
            (m for m in raw["memory"] if m["label"] == label and m["pre_roll_s"] is not None),
            key=lambda m: m["pre_roll_s"],
        )
        xs = [m["pre_roll_s"] for m in rings]
        ring_series.append(
            Series(f"{label} ring peak", xs, [m["ring_peak_bytes"] / MB for m in rings])
        )
        ring_series.append(
            Series(f"{label} bitrate x window", xs, [m["window_bytes"] / MB for m in rings])
        )
    pre_ticks = [0.0, *sorted({m["pre_roll_s"] for m in raw["memory"] if m["pre_roll_s"]})]
    panels.append(
        line_panel("Pre-roll ring vs its window", "pre-roll s", "MB", ring_series, pre_ticks)
    )
    seconds = raw["settings"]["memory_seconds"]
    time_ticks = [float(t) for t in range(0, int(seconds) + 1, 10)]
    for label in raw["cut"]:
        series = []
        for entry in raw["memory"]:
            if entry["label"] != label:
                continue
            pre = entry["pre_roll_s"]
            name = "no recorder" if pre is None else f"pre-roll {pre:.0f} s"
            xs = [sample[0] for sample in entry["samples"]]
            first_rss = entry["samples"][0][1]
            series.append(
                Series(
                    f"RSS growth, {name}",
                    xs,
                    [max(0.0, (sample[1] - first_rss) / MB) for sample in entry["samples"]],
                )
            )
            if pre is not None:
                series.append(
                    Series(f"ring, {name}", xs, [sample[2] / MB for sample in entry["samples"]])
                )
        panels.append(
            line_panel(f"Memory during the run, {label}", "seconds", "MB", series, time_ticks)
        )
    grid(panels, 2, path)

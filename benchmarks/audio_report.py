"""The "Sound" section of docs/benchmarks.md, from ``docs/benchmarks/audio.json``."""

from __future__ import annotations

from typing import Any


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.0f}"


def _ms1(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.1f}"


def _verdict(value: float | None, target: float) -> str:
    if value is None:
        return "not measured"
    return "met" if value <= target else "**missed**"


def section(data: dict[str, Any]) -> str:
    """Markdown for the audio measurements against their targets."""
    targets = data["targets"]
    one_way = float(targets["one_way_p95_s"])
    added = float(targets["hub_added_s"])
    listener = data["listener_latency_s"]
    talk = data["talk_latency_s"]
    rows = [
        (
            "doorbell → listener, one way",
            listener,
            one_way,
            "capture of tone k on the doorbell to its onset in the listener's decoded audio",
        ),
        (
            "talker → doorbell, one way",
            talk,
            one_way,
            "onset in the talker's microphone track to its onset at the doorbell's speaker",
        ),
    ]
    lines = [
        "## Sound",
        "",
        f"Measured by `python -m benchmarks.audio` (`scripts/bench --only audio`) on "
        f"{data['when']}, {data['cpus']} CPUs, load average "
        f"{' / '.join(f'{x:.2f}' for x in data['load_average'])} (other work on the "
        f"machine was running). Windows of {data['window_s']:.0f} s. Raw data: "
        "[`benchmarks/audio.json`](benchmarks/audio.json).",
        "",
        "| path | tones | p50 ms | p95 ms | max ms | target p95 ms | verdict | what is timed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, stats, target, what in rows:
        lines.append(
            f"| {name} | {stats['n']} | {_ms(stats['p50'])} | {_ms(stats['p95'])} | "
            f"{_ms(stats['max'])} | {target * 1000:.0f} | {_verdict(stats['p95'], target)} | "
            f"{what} |"
        )
    hub_rows = [
        ("doorbell → listener", data["listener_hub_added_s"]),
        ("talker → doorbell", data["talk_hub_added_s"]),
    ]
    lines += [
        "",
        "What the hub itself adds (timed inside the hub process):",
        "",
        "| path | packets | p50 ms | p95 ms | max ms | target ms | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, stats in hub_rows:
        lines.append(
            f"| {name} | {stats['n']} | {_ms1(stats['p50'])} | {_ms1(stats['p95'])} | "
            f"{_ms1(stats['max'])} | {added * 1000:.0f} | {_verdict(stats['p95'], added)} |"
        )
    cpu = data["hub_cpu"]
    per_listener = data["hub_cpu_per_listener"]
    lines += [
        "",
        "Hub CPU that sound adds (cores, i.e. CPU seconds per second of the hub process):",
        "",
        "| case | without sound | with sound | added per listener / talker |",
        "|---|---|---|---|",
        f"| 1 live view | {cpu['1_video']:.3f} | {cpu['1_sound']:.3f} | {per_listener['1']:.4f} |",
        f"| 4 live views | {cpu['4_video']:.3f} | {cpu['4_sound']:.3f} | {per_listener['4']:.4f} |",
        f"| 1 live view talking | {data['hub_cpu_talk']['idle']:.3f} (not talking) | "
        f"{data['hub_cpu_talk']['talking']:.3f} | {data['hub_cpu_per_talker']:.4f} |",
        "",
        "How to read it:",
        "",
        "- One-way latency includes the doorbell's side: its microphone is read and muxed "
        "once per video frame (67 ms at 15 fps), and the muxer holds sound until the next "
        "video frame, so the doorbell alone adds up to about one frame period. It also "
        "includes aiortc's receive jitter buffer in the listener, as a browser has one.",
        "- Talk-back is timed to the moment the doorbell hands samples to its speaker "
        "sink (a WAV file here); a real ALSA device adds its own buffer.",
        "- The hub-added figures cover the hub's own queues (sound relay to aiortc; "
        "aiortc's decoded talk frame to the doorbell socket, Opus encode included), not "
        "the MPEG-TS demuxer in front of the relay nor aiortc's jitter buffer.",
        "- Everything runs on loopback on a shared two-core machine, with the doorbell "
        "and the peers in one process and the hub in another; the CPU deltas are small "
        "next to the sampling resolution (10 ms ticks), so read them as an order of "
        "magnitude.",
    ]
    return "\n".join(lines)

"""The "Sound" section of docs/benchmarks.md, from ``docs/benchmarks/audio.json`` (and,
when it exists, ``audio_before.json``: the same benchmark run before a change, for a
before/after table)."""

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


def _before_after(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    rows = [
        ("doorbell → listener, one way", "listener_latency_s"),
        ("of which aiortc's jitter buffer and decoder in the listener", "listener_jitter_buffer_s"),
        ("talker → doorbell, one way", "talk_latency_s"),
    ]
    lines = [
        "",
        f"Before and after {before.get('change', 'the change')} (same benchmark; before "
        f"measured on {before['when']}, load average "
        f"{' / '.join(f'{x:.2f}' for x in before['load_average'])}):",
        "",
        "| path | before p50 / p95 / max ms | after p50 / p95 / max ms |",
        "|---|---|---|",
    ]
    for name, key in rows:
        cells = []
        for data in (before, after):
            stats = data.get(key)
            cells.append(
                "n/a"
                if not stats
                else f"{_ms(stats['p50'])} / {_ms(stats['p95'])} / {_ms(stats['max'])}"
            )
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return lines


def section(data: dict[str, Any], before: dict[str, Any] | None = None) -> str:
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
    jitter = data.get("listener_jitter_buffer_s")
    if jitter:
        lines += [
            "",
            "In the listener, from each sound RTP packet's arrival to aiortc handing over "
            f"its decoded frame (jitter buffer and Opus decoder): p50 {_ms(jitter['p50'])} ms, "
            f"p95 {_ms(jitter['p95'])} ms, max {_ms(jitter['max'])} ms over {jitter['n']} "
            "packets.",
        ]
    if before is not None:
        lines += _before_after(before, data)
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
        "- Where the doorbell → listener time goes. The doorbell: until 2026-12-03 it "
        "read and muxed its microphone once per video frame (67 ms at 15 fps), and the "
        "MPEG-TS muxer, which interleaves by time, held each video frame until the next "
        "one, so sound left the doorbell 13-74 ms after it was captured and reached "
        "listeners in bursts of three or four packets. Since then it muxes sound every "
        "20 ms on a worker of its own; the muxer still holds the newest packet until a "
        "later one arrives (20 ms at most), and Opus runs at a constant 72 kbit/s so that "
        "every packet is above the 170 bytes below which the muxer's PES writer would "
        "hold it until the next one as well (`tests/lib/test_reference_doorbell_video.py`). "
        "The listener: aiortc's audio jitter buffer hands a packet on only once four "
        "later ones have arrived (`prefetch=4`): about 80 ms when packets arrive every "
        "20 ms, 67 or 133 ms when they came in per-frame bursts, hence the lower median "
        "and the much lower tail after the change. It is most of what is left; a "
        "browser's adaptive jitter buffer aims at the jitter it sees, which on a quiet "
        "LAN is less (not measured here). The hub's own share is the small table above.",
        "- With the microphone on, the old muxing also held every video frame one frame "
        "period (67 ms at 15 fps) inside the doorbell; now a frame waits at most for the "
        "next sound packet. The live-view figures above come from a replayed doorbell "
        "without a microphone and are not affected either way.",
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

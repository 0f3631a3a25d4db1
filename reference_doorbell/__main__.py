"""Command line: ``python -m reference_doorbell`` / ``reference-doorbell``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path
import signal
import sys

from .doorbell import ALL_INTERFACES, DEFAULT_PORT, Doorbell, DoorbellConfig
from .encoding import STREAM_PROFILES

_LOGGER = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="reference-doorbell",
        description="A doorbell that speaks the Doorstep local protocol v1.",
    )
    parser.add_argument("--name", default="Front door", help="doorbell name (mDNS instance)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where the id, certificate and tokens live "
        "(default ~/.local/share/doorstep-doorbell/<name>)",
    )
    net = parser.add_argument_group("network")
    net.add_argument("--host", default=ALL_INTERFACES, help="address to listen on")
    net.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTPS port (0: any free)")
    net.add_argument(
        "--advertise-address",
        action="append",
        default=[],
        metavar="IP",
        help="address for the mDNS A/AAAA record (repeatable; default: --host if specific)",
    )
    net.add_argument(
        "--mdns-interface",
        action="append",
        metavar="IP",
        help="interface address zeroconf binds to (repeatable; default: all)",
    )
    net.add_argument("--no-mdns", action="store_true", help="do not advertise over mDNS")
    pairing = parser.add_argument_group("pairing")
    pairing.add_argument(
        "--code-length", type=int, choices=(6, 7, 8), default=6, help="pairing code digits"
    )
    pairing.add_argument(
        "--factory-reset",
        action="store_true",
        help="make a new certificate and forget every paired hub before starting",
    )
    video = parser.add_argument_group("video")
    source = video.add_mutually_exclusive_group()
    source.add_argument("--video-file", type=Path, metavar="PATH", help="loop this video file")
    source.add_argument("--v4l2", metavar="DEVICE", help="camera device, e.g. /dev/video0")
    video.add_argument("--width", type=int, default=640)
    video.add_argument("--height", type=int, default=360)
    video.add_argument("--fps", type=int, default=15)
    video.add_argument(
        "--blockcode",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="burn the frame counter/time code into the picture (default: synthetic only)",
    )
    video.add_argument(
        "--profile",
        choices=STREAM_PROFILES,
        default="baseline",
        help="H.264 profile of the stream; high (with B-frames) makes the hub transcode",
    )
    sound = parser.add_argument_group("sound (protocol v1.1)")
    mic = sound.add_mutually_exclusive_group()
    mic.add_argument(
        "--audio-file", type=Path, metavar="PATH", help="microphone: loop this sound file"
    )
    mic.add_argument(
        "--alsa-mic", metavar="DEVICE", help="microphone: this ALSA device, e.g. plughw:1,0"
    )
    mic.add_argument(
        "--tone-mic",
        action="store_true",
        help="microphone: the synthetic tone sequence (without any: a v1.0 video-only stream)",
    )
    spk = sound.add_mutually_exclusive_group()
    spk.add_argument(
        "--speaker-file", type=Path, metavar="PATH", help="speaker: write talk-back to this WAV"
    )
    spk.add_argument(
        "--alsa-speaker", metavar="DEVICE", help="speaker: this ALSA device, e.g. plughw:1,0"
    )
    events = parser.add_argument_group("events")
    events.add_argument(
        "--no-http-button", action="store_true", help="turn off /v1/button/* endpoints"
    )
    events.add_argument("--ring-every", type=float, metavar="S", help="ring every S seconds")
    events.add_argument(
        "--motion-every", type=float, metavar="S", help="report motion every S seconds"
    )
    events.add_argument("--heartbeat-interval", type=float, default=2.0, metavar="S")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def config_from_args(args: argparse.Namespace) -> DoorbellConfig:
    """Turn parsed options into a doorbell configuration."""
    return DoorbellConfig(
        name=args.name,
        state_dir=args.state_dir,
        host=args.host,
        port=args.port,
        advertise=not args.no_mdns,
        advertise_addresses=tuple(args.advertise_address),
        mdns_interfaces=tuple(args.mdns_interface) if args.mdns_interface else None,
        heartbeat_interval=args.heartbeat_interval,
        http_button=not args.no_http_button,
        code_length=args.code_length,
        video_file=args.video_file,
        v4l2_device=args.v4l2,
        width=args.width,
        height=args.height,
        fps=args.fps,
        blockcode=args.blockcode,
        stream_profile=args.profile,
        microphone=_microphone_kind(args),
        audio_file=args.audio_file,
        alsa_capture=args.alsa_mic or "default",
        speaker_file=args.speaker_file,
        speaker_alsa=args.alsa_speaker,
        ring_every=args.ring_every,
        motion_every=args.motion_every,
    )


def _microphone_kind(args: argparse.Namespace) -> str | None:
    if args.tone_mic:
        return "tone"
    if args.audio_file is not None:
        return "file"
    if args.alsa_mic is not None:
        return "alsa"
    return None


def _say(text: str) -> None:
    print(text, flush=True)


def _banner(bell: Doorbell) -> None:
    _say("")
    _say(f"  Doorbell     {bell.name}")
    _say(f"  Device id    {bell.device_id}")
    _say(f"  URL          {bell.url}")
    _say(f"  Fingerprint  {bell.fingerprint}")
    _say(f"  State        {bell.state_dir}")
    _say("")
    _say(f"  PAIRING CODE   {bell.pairing_code}")
    _say("")
    if sys.stdin.isatty():
        _say("  Press Enter to ring. Ctrl+C to stop.")
        _say("")


async def run(config: DoorbellConfig, factory_reset: bool = False) -> None:
    """Run a doorbell until SIGINT or SIGTERM."""
    bell = Doorbell(config)
    if factory_reset:
        await asyncio.to_thread(bell.reset_before_start)
        _say("Factory reset: new certificate, every paired hub forgotten.")
    await bell.start()
    _banner(bell)
    bell.add_code_listener(lambda code: _say(f"  PAIRING CODE   {code}   (the old one is used up)"))
    bell.add_ring_listener(lambda: _say("  Ding dong!"))

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    pending: set[asyncio.Task[None]] = set()
    watching_stdin = sys.stdin.isatty()
    if watching_stdin:

        def on_enter() -> None:
            if not sys.stdin.readline():
                loop.remove_reader(sys.stdin.fileno())  # end of input
                return
            task = loop.create_task(bell.ring())
            pending.add(task)
            task.add_done_callback(pending.discard)

        loop.add_reader(sys.stdin.fileno(), on_enter)
    try:
        await stopping.wait()
    finally:
        if watching_stdin:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(sys.stdin.fileno())
        _say("Stopping.")
        await bell.stop()


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = config_from_args(args)
        asyncio.run(run(config, factory_reset=args.factory_reset))
    except (ValueError, RuntimeError, OSError) as err:
        # Bad options, a busy port, a missing camera: one line, not a traceback.
        build_parser().exit(2, f"reference-doorbell: {err}\n")


if __name__ == "__main__":
    main()

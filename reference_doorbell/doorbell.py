"""The doorbell: identity, HTTPS API, events, video and mDNS, started and stopped as one.

This is both the emulator that tests and the demo use and the program a DIY doorbell
runs. Tests drive it through the public methods below (ring, motion, silence, resets).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
import contextlib
from dataclasses import dataclass
import logging
import os
from pathlib import Path
import re
import time
from typing import Any

from aiohttp import web

from . import __version__
from .api import DoorbellApi
from .audio import AlsaSink, AlsaSource, AudioSource, SoundFileSource, ToneSequence, WavFileSink
from .encoding import EncoderSettings, StreamProfile
from .events import MOTION_START, MOTION_STOP, RING, EventHub
from .identity import Identity
from .mdns import MAX_INSTANCE_BYTES, Advertiser, choose_addresses, is_unspecified
from .pairing import PairingGuard
from .sources import FileSource, FrameSource, SyntheticCamera, V4L2Source
from .talk import TalkFloor
from .video import VideoPipeline

_LOGGER = logging.getLogger(__name__)

MODEL = "Doorstep Reference Doorbell"
DEFAULT_PORT = 8443
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a doorbell must be reachable from the LAN
# How long the HTTP server waits for open requests when it stops; the doorbell closes
# its own long-lived responses first, so this is only a backstop.
_SHUTDOWN_TIMEOUT = 1.0
_DROP_WAIT = 1.0


def slugify(name: str) -> str:
    """A file-system-friendly form of a doorbell name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "doorbell"


def default_state_dir(name: str) -> Path:
    """``~/.local/share/doorstep-doorbell/<slug>`` (or under ``$XDG_DATA_HOME``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "doorstep-doorbell" / slugify(name)


@dataclass(frozen=True, slots=True, kw_only=True)
class DoorbellConfig:
    """Everything that can be set from the command line, with the reference defaults."""

    name: str = "Front door"
    state_dir: Path | None = None
    host: str = ALL_INTERFACES
    port: int = DEFAULT_PORT
    advertise: bool = True
    advertise_addresses: Sequence[str] = ()
    mdns_interfaces: Sequence[str] | None = None
    heartbeat_interval: float = 2.0
    lockout_attempts: int = 5
    lockout_seconds: float = 60.0
    http_button: bool = True
    code_length: int = 6
    model: str = MODEL
    firmware: str = __version__
    # Video: the synthetic camera unless a file or a V4L2 device is given.
    video_file: Path | None = None
    v4l2_device: str | None = None
    width: int = 640
    height: int = 360
    fps: int = 15
    keyframe_interval: float = 2.0
    # None: burn the block code into synthetic video only, not into a real camera's.
    blockcode: bool | None = None
    # "high" sends High profile with B-frames, which the hub has to transcode.
    stream_profile: StreamProfile = "baseline"
    # Sound (protocol v1.1). microphone: "tone" (the synthetic tone sequence), "file"
    # (audio_file, looped), "alsa" (alsa_capture) or None for a v1.0, video-only doorbell.
    microphone: str | None = None
    audio_file: Path | None = None
    alsa_capture: str = "default"
    # speaker: a WAV file the talk-back is written to, "alsa" (alsa_playback), or None.
    speaker_file: Path | None = None
    speaker_alsa: str | None = None
    # Automatic presses, for demos and soak tests.
    ring_every: float | None = None
    motion_every: float | None = None
    motion_duration: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < len(self.name.encode()) <= MAX_INSTANCE_BYTES:
            raise ValueError(f"name must be 1-{MAX_INSTANCE_BYTES} bytes of UTF-8")
        if not 6 <= self.code_length <= 8:
            raise ValueError("code_length must be 6, 7 or 8")
        if self.video_file is not None and self.v4l2_device is not None:
            raise ValueError("choose either a video file or a V4L2 device, not both")
        if self.width % 2 or self.height % 2 or self.width < 80 or self.height < 48:
            raise ValueError("width and height must be even and at least 80x48")
        if not 1 <= self.fps <= 60:
            raise ValueError("fps must be 1-60")
        if self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")
        if self.microphone not in (None, "tone", "file", "alsa"):
            raise ValueError("microphone must be tone, file or alsa")
        if self.microphone == "file" and self.audio_file is None:
            raise ValueError("a file microphone needs an audio file")
        if self.speaker_file is not None and self.speaker_alsa is not None:
            raise ValueError("choose either a speaker file or an ALSA speaker, not both")


class Doorbell:
    """A running doorbell. ``await start()``, then ``await stop()``."""

    def __init__(self, config: DoorbellConfig) -> None:
        self.config = config
        self.name = config.name
        self.state_dir = config.state_dir or default_state_dir(config.name)
        self.identity = Identity(self.state_dir, config.code_length)
        self.guard = PairingGuard(config.lockout_attempts, config.lockout_seconds)
        self.events = EventHub("", config.heartbeat_interval)
        self.video = VideoPipeline(
            self._make_source(),
            EncoderSettings(
                width=config.width,
                height=config.height,
                fps=config.fps,
                keyframe_interval=config.keyframe_interval,
                profile=config.stream_profile,
            ),
            blockcode=config.blockcode
            if config.blockcode is not None
            else (config.video_file is None and config.v4l2_device is None),
            microphone=self._make_microphone(),
        )
        self.talk = self._make_talk_floor()
        self._runner: web.AppRunner | None = None
        self._port = config.port
        self._advertiser: Advertiser | None = None
        self._code_listeners: list[Callable[[str], None]] = []
        self._ring_listeners: list[Callable[[], None]] = []
        self._timers: list[asyncio.Task[None]] = []
        self._started = False

    def _make_source(self) -> FrameSource:
        cfg = self.config
        if cfg.video_file is not None:
            return FileSource(cfg.video_file, cfg.width, cfg.height)
        if cfg.v4l2_device is not None:
            return V4L2Source(cfg.v4l2_device, cfg.width, cfg.height, cfg.fps)
        return SyntheticCamera(cfg.name, cfg.width, cfg.height)

    def _make_microphone(self) -> AudioSource | None:
        cfg = self.config
        match cfg.microphone:
            case "tone":
                return ToneSequence()
            case "file":
                assert cfg.audio_file is not None
                return SoundFileSource(cfg.audio_file)
            case "alsa":
                return AlsaSource(cfg.alsa_capture)
        return None

    def _make_talk_floor(self) -> TalkFloor | None:
        cfg = self.config
        if cfg.speaker_file is not None:
            return TalkFloor(WavFileSink(cfg.speaker_file))
        if cfg.speaker_alsa is not None:
            return TalkFloor(AlsaSink(cfg.speaker_alsa))
        return None

    # ----- what the doorbell is

    @property
    def audio_info(self) -> dict[str, Any] | None:
        """``/v1/info``'s ``audio`` (v1.1), or None for a video-only doorbell."""
        if self.video.microphone is None and self.talk is None:
            return None
        return {
            "microphone": "opus" if self.video.microphone is not None else None,
            "speaker": self.talk is not None,
        }

    @property
    def port(self) -> int:
        """The HTTPS port actually listened on (the real one when configured as 0)."""
        return self._port

    @property
    def device_id(self) -> str:
        """The stable device id."""
        return self.identity.state.device_id

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, lowercase hex (the TXT ``fp``)."""
        return self.identity.fingerprint

    @property
    def pairing_code(self) -> str:
        """The code a hub must present to pair now."""
        return self.identity.state.pairing_code

    @property
    def url(self) -> str:
        """The base URL, with a host a person can type."""
        host = self.config.host
        if is_unspecified(host):
            addresses = choose_addresses(self.config.advertise_addresses, host, None)
            host = addresses[0] if addresses else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}"

    @property
    def event_client_count(self) -> int:
        """How many hubs hold the event WebSocket open right now."""
        return self.events.session_count

    @property
    def paired_client_count(self) -> int:
        """How many hubs hold a valid token."""
        return len(self.identity.state.tokens)

    @property
    def motion(self) -> bool:
        """Whether motion is currently reported."""
        return self.events.motion

    def txt_record(self) -> dict[str, str]:
        """The mDNS TXT record of protocol section 1 (and ``audio`` of section 7)."""
        txt = {
            "id": self.device_id,
            "v": "1",
            "model": self.config.model,
            "fw": self.config.firmware,
            "fp": self.fingerprint,
        }
        audio = self.audio_info
        if audio is not None:
            txt["audio"] = ",".join(
                part
                for part, present in (("mic", audio["microphone"]), ("spk", audio["speaker"]))
                if present
            )
        return txt

    def add_code_listener(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(code)`` whenever the pairing code changes; returns an undo."""
        self._code_listeners.append(listener)
        return lambda: self._code_listeners.remove(listener)

    def add_ring_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` on every ring; returns an undo."""
        self._ring_listeners.append(listener)
        return lambda: self._ring_listeners.remove(listener)

    # ----- lifecycle

    async def start(self) -> None:
        """Load or create the identity, then serve HTTPS and advertise."""
        if self._started:
            raise RuntimeError("doorbell already started")
        await asyncio.to_thread(self.identity.load_or_create)
        self.events.device_id = self.device_id
        await self._start_http()
        self._started = True
        if self.config.advertise:
            self._advertiser = Advertiser(
                self.name,
                self.device_id,
                self.port,
                choose_addresses(
                    self.config.advertise_addresses, self.config.host, self.config.mdns_interfaces
                ),
                self.config.mdns_interfaces,
            )
            self._advertiser.start(self.txt_record())
        if self.config.ring_every:
            self._timers.append(asyncio.create_task(self._ring_timer(self.config.ring_every)))
        if self.config.motion_every:
            self._timers.append(asyncio.create_task(self._motion_timer(self.config.motion_every)))
        _LOGGER.info("Doorbell %r (%s) serving %s", self.name, self.device_id, self.url)

    async def stop(self) -> None:
        """Stop everything started, closing every socket."""
        for timer in self._timers:
            timer.cancel()
        for timer in self._timers:
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        self._timers.clear()
        if self._advertiser is not None:
            await self._advertiser.stop()
            self._advertiser = None
        if self.talk is not None:
            await self.talk.close_all()
        await self._stop_http()
        await self.video.stop()
        self._started = False

    async def _start_http(self) -> None:
        app = DoorbellApi(self).build()
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(
            runner,
            self.config.host,
            self._port,
            ssl_context=self.identity.ssl_context(),
        )
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = int(runner.addresses[0][1])
        self._runner = runner

    async def _stop_http(self) -> None:
        if self._runner is not None:
            # Long-lived responses would otherwise hold the shutdown for its full timeout.
            self.events.abort_all()
            self.video.close_viewers()
            await self._runner.cleanup()
            self._runner = None

    # ----- things that happen at the door

    async def ring(self) -> None:
        """Press the button."""
        _LOGGER.info("Ring")
        self.events.publish(RING)
        for listener in list(self._ring_listeners):
            listener()

    async def set_motion(self, active: bool) -> None:
        """Report motion starting or stopping; repeating the current state does nothing."""
        if active == self.events.motion:
            return
        self.events.motion = active
        self.events.publish(MOTION_START if active else MOTION_STOP)

    async def _ring_timer(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.ring()

    async def _motion_timer(self, every: float) -> None:
        duration = min(self.config.motion_duration, every / 2)
        while True:
            await asyncio.sleep(every - duration)
            await self.set_motion(True)
            await asyncio.sleep(duration)
            await self.set_motion(False)

    # ----- pairing state

    def issue_token(self, client: str) -> str:
        """Pairing succeeded: issue a token and use up the code."""
        token = self.identity.issue_token(client, time.time())
        self._code_changed(self.identity.rotate_code())
        return token

    def forget_token(self, token_hash: str) -> None:
        """Forget one hub and cut the event sockets it opened."""
        self.identity.forget_token(token_hash)
        self.events.abort_token(token_hash)

    def revoke_all_tokens(self) -> None:
        """Forget every paired hub and cut their event sockets."""
        self.identity.forget_all_tokens()
        self.events.abort_all()

    def _code_changed(self, code: str) -> None:
        _LOGGER.info("Pairing code is now %s", code)
        for listener in list(self._code_listeners):
            listener(code)

    async def factory_reset(self) -> None:
        """New certificate and code, no paired hubs; same id and, if running, same port."""
        running = self._runner is not None
        if running:
            await self._stop_http()
        await asyncio.to_thread(self.identity.factory_reset)
        self.guard.reset()
        if running:
            await self._start_http()
        if self._advertiser is not None:
            await self._advertiser.update(self.txt_record())
        _LOGGER.warning("Factory reset: new fingerprint %s", self.fingerprint)
        self._code_changed(self.pairing_code)

    def reset_before_start(self) -> None:
        """Factory-reset the stored state without serving (the CLI's ``--factory-reset``)."""
        self.identity.load_or_create()
        self.identity.factory_reset()

    # ----- test hooks: misbehaving on purpose

    def suspend_events(self) -> None:
        """Fall silent: no event frames, heartbeats or pongs, but sockets stay open."""
        self.events.suspended = True

    def resume_events(self) -> None:
        """Speak again after ``suspend_events``."""
        self.events.suspended = False

    async def drop_connections(self) -> None:
        """Cut every event socket abruptly, as a power cut would."""
        self.events.abort_all()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.events.wait_idle(), _DROP_WAIT)

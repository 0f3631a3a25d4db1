"""Runtime types of the Doorstep integration."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .coordinator import DoorstepCoordinator
from .device import DeviceIdentity, Doorbell
from .media import MediaRelay, Recorder, SessionManager
from .media.audio import AudioRelay, TalkFloor


@dataclass(slots=True)
class DoorstepData:
    """What a loaded config entry holds while it runs."""

    # The device, through the one interface every driver implements.
    doorbell: Doorbell
    device: DeviceIdentity
    coordinator: DoorstepCoordinator
    # One upstream video connection to the doorbell, shared by every viewer.
    relay: MediaRelay
    # One aiortc peer connection per browser watching this doorbell.
    sessions: SessionManager
    # Clips and continuous segments; None when the doorbell records nothing.
    recorder: Recorder | None = None
    # The doorbell's sound to every listener; None when its stream has none.
    audio: AudioRelay | None = None
    # Who talks through the doorbell's speaker; None when it has no speaker.
    talk: TalkFloor | None = None


type DoorstepConfigEntry = ConfigEntry[DoorstepData]

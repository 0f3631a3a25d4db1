"""Plain data models of the Doorstep protocol (see docs/protocol.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class DoorbellAdvert:
    """What a doorbell announces in its mDNS TXT record."""

    device_id: str
    protocol_version: int
    model: str
    firmware: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The answer of ``GET /v1/info``."""

    device_id: str
    name: str
    model: str
    firmware: str
    protocol_version: int
    # Protocol v1.1 (section 7): the stream's sound codec, and whether talk-back works.
    microphone: str | None = None
    speaker: bool = False


class EventType(StrEnum):
    """Frame types on the ``/v1/events`` WebSocket."""

    HELLO = "hello"
    RING = "ring"
    MOTION_START = "motion_start"
    MOTION_STOP = "motion_stop"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True, slots=True)
class DoorbellEvent:
    """One frame from the event stream.

    ``motion`` is the motion state the frame implies: the current state on ``hello``,
    True on ``motion_start``, False on ``motion_stop`` and None otherwise.
    """

    type: EventType
    seq: int
    timestamp: datetime
    motion: bool | None = None

"""Hub side of the Doorstep doorbell protocol, free of Home Assistant.

See docs/protocol.md for the wire contract this package implements.
"""

from .client import DoorstepClient
from .discovery import (
    DEFAULT_PORT,
    PROTOCOL_VERSION,
    SERVICE_TYPE,
    is_valid_device_id,
    is_valid_fingerprint,
    normalize_fingerprint,
    parse_txt,
)
from .events import EventStream
from .exceptions import (
    CannotConnect,
    DoorstepError,
    FingerprintMismatch,
    InvalidAuth,
    InvalidCode,
    PairingLocked,
    ProtocolError,
)
from .models import DeviceInfo, DoorbellAdvert, DoorbellEvent, EventType

__all__ = [
    "DEFAULT_PORT",
    "PROTOCOL_VERSION",
    "SERVICE_TYPE",
    "CannotConnect",
    "DeviceInfo",
    "DoorbellAdvert",
    "DoorbellEvent",
    "DoorstepClient",
    "DoorstepError",
    "EventStream",
    "EventType",
    "FingerprintMismatch",
    "InvalidAuth",
    "InvalidCode",
    "PairingLocked",
    "ProtocolError",
    "is_valid_device_id",
    "is_valid_fingerprint",
    "normalize_fingerprint",
    "parse_txt",
]

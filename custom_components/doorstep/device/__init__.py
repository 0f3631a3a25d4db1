"""Doorbells and cameras as the hub sees them, free of Home Assistant.

``interface`` says what any device gives the hub; each driver implements it. The
Doorstep protocol (docs/protocol.md) is one driver.
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
from .doorbird import (
    DRIVER_DOORBIRD,
    DoorBirdClient,
    DoorBirdDoorbell,
    DoorBirdInfo,
    is_doorbird_mac,
    normalize_mac,
)
from .doorstep_driver import DRIVER_DOORSTEP, DoorstepDoorbell
from .drivers import KEY_DRIVER, create_doorbell, driver_of
from .events import EventStream
from .exceptions import (
    CannotConnect,
    DoorstepError,
    FingerprintMismatch,
    InvalidAuth,
    InvalidCode,
    NoSnapshotYet,
    PairingLocked,
    ProtocolError,
    TalkBackError,
    TalkBackUnsupported,
    TalkBusy,
)
from .interface import (
    Capabilities,
    DeviceIdentity,
    Doorbell,
    EventSink,
    HttpStreamEndpoint,
    StreamSpec,
)
from .models import DeviceInfo, DoorbellAdvert, DoorbellEvent, EventType
from .onvif import DEFAULT_ONVIF_PORT, DRIVER_ONVIF, NotOnvif, OnvifDoorbell
from .rtsp import (
    DRIVER_RTSP,
    NotRtsp,
    NotTls,
    RtspCamera,
    check_rtsp,
    parse_rtsp_url,
    rtsp_device_id,
    stream_options,
    with_credentials,
)
from .talk import TalkChannel

__all__ = [
    "DEFAULT_ONVIF_PORT",
    "DEFAULT_PORT",
    "DRIVER_DOORBIRD",
    "DRIVER_DOORSTEP",
    "DRIVER_ONVIF",
    "DRIVER_RTSP",
    "KEY_DRIVER",
    "PROTOCOL_VERSION",
    "SERVICE_TYPE",
    "CannotConnect",
    "Capabilities",
    "DeviceIdentity",
    "DeviceInfo",
    "DoorBirdClient",
    "DoorBirdDoorbell",
    "DoorBirdInfo",
    "Doorbell",
    "DoorbellAdvert",
    "DoorbellEvent",
    "DoorstepClient",
    "DoorstepDoorbell",
    "DoorstepError",
    "EventSink",
    "EventStream",
    "EventType",
    "FingerprintMismatch",
    "HttpStreamEndpoint",
    "InvalidAuth",
    "InvalidCode",
    "NoSnapshotYet",
    "NotOnvif",
    "NotRtsp",
    "NotTls",
    "OnvifDoorbell",
    "PairingLocked",
    "ProtocolError",
    "RtspCamera",
    "StreamSpec",
    "TalkBackError",
    "TalkBackUnsupported",
    "TalkBusy",
    "TalkChannel",
    "check_rtsp",
    "create_doorbell",
    "driver_of",
    "is_doorbird_mac",
    "is_valid_device_id",
    "is_valid_fingerprint",
    "normalize_fingerprint",
    "normalize_mac",
    "parse_rtsp_url",
    "parse_txt",
    "rtsp_device_id",
    "stream_options",
    "with_credentials",
]

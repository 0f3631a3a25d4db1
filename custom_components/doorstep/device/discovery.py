"""mDNS advertisement parsing (docs/protocol.md, section 1).

Advertisements arrive from the network, so anything may be in them. The parsers here
never raise: a record that breaks a rule is logged at debug level and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
import logging

from .models import DoorbellAdvert
from .validation import (
    is_valid_device_id,
    is_valid_fingerprint,
    is_valid_firmware,
    is_valid_model,
    is_valid_version_text,
    normalize_fingerprint,
)

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PORT",
    "PROTOCOL_VERSION",
    "SERVICE_TYPE",
    "is_valid_device_id",
    "is_valid_fingerprint",
    "normalize_fingerprint",
    "parse_txt",
]

SERVICE_TYPE = "_doorstep._tcp.local."
PROTOCOL_VERSION = 1
DEFAULT_PORT = 8443

MAX_TXT_RECORD_BYTES = 512

_KEY_ID = "id"
_KEY_VERSION = "v"
_KEY_MODEL = "model"
_KEY_FIRMWARE = "fw"
_KEY_FINGERPRINT = "fp"
_REQUIRED_KEYS = (_KEY_ID, _KEY_VERSION, _KEY_MODEL, _KEY_FIRMWARE, _KEY_FINGERPRINT)


class _Invalid(Exception):
    """A rule was broken; carries the reason for the debug log."""


# Mapping keys are invariant, so dict[str, ...] (Home Assistant's ZeroconfServiceInfo) and
# dict[bytes, ...] (python-zeroconf's ServiceInfo.properties) each need their own arm.
type TxtValue = str | bytes | None
type TxtProperties = (
    Mapping[str, TxtValue] | Mapping[bytes, TxtValue] | Mapping[str | bytes, TxtValue]
)


def parse_txt(properties: TxtProperties) -> DoorbellAdvert | None:
    """Parse already split TXT properties, as zeroconf / Home Assistant hand them over.

    Values may be bytes, str (already decoded; U+FFFD marks bytes that were not UTF-8)
    or None (a key without ``=``). A Mapping cannot hold a key twice, except once as str
    and once as bytes, which counts as a repeat (python-zeroconf keeps the first of
    repeated keys, so other repeats never reach us).
    """
    try:
        if not isinstance(properties, Mapping):
            raise _Invalid(f"properties are a {type(properties).__name__}, not a mapping")
        entries: list[tuple[bytes, bytes | None]] = []
        for key, value in properties.items():
            entries.append((_as_bytes(key, "key"), _optional_bytes(value)))
        return _advert_from_entries(entries)
    except _Invalid as err:
        _LOGGER.debug("Ignoring Doorstep advertisement: %s", err)
    except Exception:  # the promise is never to raise on network input
        _LOGGER.debug("Ignoring unparseable Doorstep advertisement", exc_info=True)
    return None


def _advert_from_entries(entries: list[tuple[bytes, bytes | None]]) -> DoorbellAdvert:
    size = sum(1 + len(k) + (0 if v is None else 1 + len(v)) for k, v in entries)
    if size > MAX_TXT_RECORD_BYTES:
        raise _Invalid(f"TXT record is {size} bytes, over {MAX_TXT_RECORD_BYTES}")

    found: dict[str, str | None] = {}
    for raw_key, raw_value in entries:
        if not raw_key:
            continue  # RFC 6763 6.4: strings starting with "=" are silently ignored
        key = _decode(raw_key, "key")
        value = None if raw_value is None else _decode(raw_value, f"value of {key!r}")
        if key in found:
            raise _Invalid(f"key {key!r} appears more than once")
        found[key] = value

    missing = [key for key in _REQUIRED_KEYS if found.get(key) is None]
    if missing:
        raise _Invalid(f"missing or empty keys: {', '.join(missing)}")
    device_id, version, model, firmware, fingerprint = (str(found[k]) for k in _REQUIRED_KEYS)

    if not is_valid_device_id(device_id):
        raise _Invalid(f"bad id {device_id!r}")
    if not is_valid_version_text(version):
        raise _Invalid(f"bad protocol version {version!r}")
    if int(version) != PROTOCOL_VERSION:
        raise _Invalid(f"unsupported protocol version {version}")
    if not is_valid_model(model):
        raise _Invalid(f"bad model {model!r}")
    if not is_valid_firmware(firmware):
        raise _Invalid(f"bad firmware {firmware!r}")
    if not is_valid_fingerprint(fingerprint):
        raise _Invalid(f"bad fingerprint {fingerprint!r}")
    return DoorbellAdvert(
        device_id=device_id,
        protocol_version=int(version),
        model=model,
        firmware=firmware,
        fingerprint=fingerprint,
    )


def _decode(raw: bytes, what: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Invalid(f"{what} is not valid UTF-8") from err
    # zeroconf decodes with errors="replace"; a replacement character is how bad bytes
    # reach us through Home Assistant. No honest field contains one.
    if "\ufffd" in text:
        raise _Invalid(f"{what} contains bytes that were not valid UTF-8")
    return text


def _as_bytes(item: object, what: str) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        try:
            return item.encode("utf-8")
        except UnicodeEncodeError as err:  # lone surrogates, e.g. from surrogateescape
            raise _Invalid(f"{what} is not valid UTF-8") from err
    raise _Invalid(f"{what} is a {type(item).__name__}")


def _optional_bytes(value: object) -> bytes | None:
    return None if value is None else _as_bytes(value, "value")

"""Field rules shared by the TXT record and the HTTP answers (docs/protocol.md)."""

from __future__ import annotations

import math
import re
from typing import TypeIs

# [0-9] rather than \d, and fullmatch rather than $, so that neither Unicode digits nor
# a trailing newline slip through.
_DEVICE_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_VERSION_RE = re.compile(r"[0-9]{1,3}")
_FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")
_PAIRING_CODE_RE = re.compile(r"[0-9]{6,8}")
# URL-safe base64. The alphabet matters more than the length: the token goes into an
# HTTP header, where CR/LF would let a hostile device inject headers.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,256}={0,2}")

MAX_MODEL_BYTES = 64
MAX_FIRMWARE_BYTES = 32
MAX_NAME_BYTES = 255


def is_valid_device_id(s: str) -> bool:
    """Return whether ``s`` is a well-formed device id (1 to 32 of ``[a-z0-9-]``)."""
    return isinstance(s, str) and _DEVICE_ID_RE.fullmatch(s) is not None


def is_valid_fingerprint(s: str) -> bool:
    """Return whether ``s`` is a fingerprint in canonical form (64 lowercase hex digits)."""
    return isinstance(s, str) and _FINGERPRINT_RE.fullmatch(s) is not None


def normalize_fingerprint(s: str) -> str:
    """Bring a fingerprint as a person may write it (``AB:CD:...``) into canonical form.

    The result still has to pass :func:`is_valid_fingerprint`.
    """
    return s.strip().replace(":", "").lower()


def is_valid_version_text(s: str) -> bool:
    """Return whether ``s`` is a protocol version as the TXT record spells it."""
    return _VERSION_RE.fullmatch(s) is not None


def is_valid_pairing_code(s: str) -> bool:
    """Return whether ``s`` is 6 to 8 ASCII digits."""
    return _PAIRING_CODE_RE.fullmatch(s) is not None


def is_valid_token(s: str) -> bool:
    """Return whether ``s`` looks like a token a device may issue."""
    return _TOKEN_RE.fullmatch(s) is not None


def is_valid_model(s: str) -> bool:
    """1 to 64 bytes of printable UTF-8."""
    return 1 <= len(s.encode("utf-8", "surrogatepass")) <= MAX_MODEL_BYTES and s.isprintable()


def is_valid_firmware(s: str) -> bool:
    """1 to 32 bytes of printable ASCII."""
    return 1 <= len(s) <= MAX_FIRMWARE_BYTES and all(" " <= ch <= "~" for ch in s)


def is_valid_name(s: str) -> bool:
    """A device name: printable, non-blank, and short enough for a DNS label and then some."""
    return (
        1 <= len(s.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES
        and s.isprintable()
        and not s.isspace()
    )


def is_strict_int(value: object) -> TypeIs[int]:
    """An int that is not a bool: JSON ``true`` is never a count on the wire."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value: object) -> TypeIs[int | float]:
    """A JSON number that is not a bool, NaN or infinite."""
    return is_strict_int(value) or (isinstance(value, float) and math.isfinite(value))

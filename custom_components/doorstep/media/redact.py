"""Keep credentials that ride in URLs (``rtsp://user:password@host``) out of messages."""

from __future__ import annotations

import re
from typing import Final

_USERINFO: Final = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]*@")


def redact_credentials(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", text)

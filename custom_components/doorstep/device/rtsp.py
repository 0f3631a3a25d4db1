"""An RTSP camera or doorbell added by hand, by its ``rtsp://`` URL, as a :class:`Doorbell`.

``rtsps://`` (RTSP over TLS, port 322 unless the URL says otherwise) is taken too. Such
cameras present certificates of their own making, which no authority vouches for, so
neither the reachability check nor FFmpeg's stream checks them: TLS here keeps the
stream from being read on the home network, not from an impostor at the camera's
address. (FFmpeg checks certificates by default and would refuse every such camera;
it cannot pin one certificate as the Doorstep protocol does.)

Plain RTSP carries video only: no button and no events. Such a device is a camera,
and whether it is reachable is all the hub can follow between viewers. It asks with an
RTSP ``OPTIONS`` request, which needs no credentials and starts no stream.

The URL is stored without credentials, and the username and password beside it; they
meet only in the URL handed to PyAV (:meth:`RtspCamera.stream`), which is never logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import contextlib
import hashlib
import logging
import ssl
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp

from .exceptions import CannotConnect, DoorstepError, ProtocolError
from .interface import Capabilities, DeviceIdentity, Doorbell, EventSink, StreamSpec

_LOGGER = logging.getLogger(__name__)

DRIVER_RTSP: Final = "rtsp"
KEY_URL: Final = "url"
KEY_USERNAME: Final = "username"
KEY_PASSWORD: Final = "password"  # noqa: S105 -- a key name, not a secret
KEY_DEVICE_ID: Final = "device_id"
KEY_NAME: Final = "name"

DEFAULT_RTSP_PORT: Final = 554
DEFAULT_RTSPS_PORT: Final = 322
_SCHEMES: Final = {"rtsp": DEFAULT_RTSP_PORT, "rtsps": DEFAULT_RTSPS_PORT}
RTSP_MODEL: Final = "RTSP camera"
# Seconds between reachability checks, and how long one may take.
CHECK_INTERVAL: Final = 10.0
CHECK_TIMEOUT: Final = 5.0
_MAX_STATUS_LINE: Final = 512
_MAX_URL_LENGTH: Final = 2048

_CAPABILITIES: Final = Capabilities(has_button=False, has_motion=False, has_snapshot=False)


class NotRtsp(ProtocolError):
    """The URL is not an ``rtsp://`` URL, or what answers there does not speak RTSP."""


class NotTls(ProtocolError):
    """An ``rtsps://`` URL, and what answers there does not speak TLS."""


def parse_rtsp_url(url: str) -> tuple[str, str | None, str | None]:
    """Split what the owner typed into a URL without credentials, username and password.

    Raises NotRtsp for anything but an ``rtsp://`` or ``rtsps://`` URL with a host.
    """
    url = url.strip()
    if len(url) > _MAX_URL_LENGTH or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise NotRtsp("not a URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise NotRtsp("not a URL") from err
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES or not parts.hostname:
        raise NotRtsp("not an rtsp:// URL")
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    bare = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    # The URL's userinfo is percent-encoded; the fields hold the plain text.
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return bare, username, password


def rtsp_device_id(url: str) -> str:
    """A stable id for the camera at ``url`` (without credentials): one entry per stream."""
    return "rtsp-" + hashlib.sha256(url.encode()).hexdigest()[:16]


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """``url`` with the credentials in it, as FFmpeg's RTSP client takes them."""
    if not username:
        return url
    parts = urlsplit(url)
    userinfo = quote(username, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def stream_options(url: str) -> dict[str, str]:
    """FFmpeg's options for the stream at ``url``: over TCP, and for ``rtsps://`` with
    the camera's own certificate taken (see the module's docstring)."""
    options = {"rtsp_transport": "tcp"}
    if urlsplit(url).scheme.lower() == "rtsps":
        options["tls_verify"] = "0"
    return options


def _unverified_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def check_rtsp(url: str, *, within: float = CHECK_TIMEOUT) -> None:
    """Ask the server at ``url`` for ``OPTIONS``; any RTSP answer (even 401) will do.

    Raises CannotConnect when nothing answers in time, NotRtsp when something answers
    that does not speak RTSP, NotTls when an ``rtsps://`` server does not speak TLS.
    """
    parts = urlsplit(url)
    host = parts.hostname
    scheme = parts.scheme.lower()
    if not host or scheme not in _SCHEMES:
        raise NotRtsp("not an rtsp:// URL")
    port = parts.port or _SCHEMES[scheme]
    request = f"OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: Doorstep\r\n\r\n".encode()
    tls = _unverified_tls() if scheme == "rtsps" else None
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
    except ssl.SSLError as err:
        raise NotTls(f"{host}:{port} does not speak TLS: {err.reason or err!r}") from err
    except (ConnectionResetError, asyncio.IncompleteReadError) as err:
        # A plain RTSP server hangs up on the TLS handshake it cannot read.
        if tls is not None:
            raise NotTls(f"{host}:{port} hung up on the TLS handshake") from err
        raise CannotConnect(f"{host}:{port} hung up: {err!r}") from err
    except (TimeoutError, OSError) as err:
        raise CannotConnect(f"no RTSP server answers at {host}:{port}: {err!r}") from err
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    if not status_line:
        raise CannotConnect(f"{host}:{port} closed the connection without answering")
    if not status_line.startswith(b"RTSP/1.0 ") or len(status_line) > _MAX_STATUS_LINE:
        raise NotRtsp(f"{host}:{port} does not speak RTSP")


class RtspCamera(Doorbell):
    """A camera reached only by its RTSP stream."""

    def __init__(
        self,
        url: str,
        *,
        device_id: str,
        name: str,
        username: str | None = None,
        password: str | None = None,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        self._url = url
        self._device_id = device_id
        self._name = name
        self._username = username
        self._password = password
        self._check_interval = check_interval

    @classmethod
    def from_config(
        cls,
        session: aiohttp.ClientSession,
        config: Mapping[str, Any],
        *,
        hub_url: str | None = None,
    ) -> RtspCamera:
        """The camera a stored configuration describes."""
        return cls(
            config[KEY_URL],
            device_id=config[KEY_DEVICE_ID],
            name=config[KEY_NAME],
            username=config.get(KEY_USERNAME) or None,
            password=config.get(KEY_PASSWORD) or None,
        )

    @property
    def driver(self) -> str:
        """``rtsp``."""
        return DRIVER_RTSP

    @property
    def host(self) -> str:
        """The host of the URL."""
        return urlsplit(self._url).hostname or ""

    @property
    def capabilities(self) -> Capabilities:
        """Video only."""
        return _CAPABILITIES

    async def connect(self) -> DeviceIdentity:
        """The server answers RTSP; the camera is who the owner said it is."""
        await check_rtsp(self._url)
        return DeviceIdentity(
            device_id=self._device_id, name=self._name, model=RTSP_MODEL, firmware=None
        )

    def stream(self) -> StreamSpec:
        """The URL with its credentials, over TCP (no UDP ports to open on the hub)."""
        return StreamSpec(
            url=with_credentials(self._url, self._username, self._password),
            options=stream_options(self._url),
        )

    async def snapshot(self) -> bytes:
        """Plain RTSP has no snapshot."""
        raise ProtocolError("an RTSP camera has no snapshot")

    async def run_events(self, sink: EventSink) -> None:
        """No events; reachable while the server answers ``OPTIONS``."""
        connected: bool | None = None
        while True:
            try:
                await check_rtsp(self._url)
                now = True
            except DoorstepError as err:
                _LOGGER.debug("%s: %s", self._name, err)
                now = False
            if now != connected:
                connected = now
                sink.handle_connection_change(now)
            await asyncio.sleep(self._check_interval)

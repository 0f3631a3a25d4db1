"""HTTPS client for one paired (or about to be paired) doorbell.

Trust works as docs/protocol.md section 2 says: the device's certificate is self-signed,
so instead of a CA chain and host name we pin the SHA-256 of its DER certificate. aiohttp
checks the pin right after the TLS handshake, before a request byte is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import hashlib
import json
import logging
import ssl
from typing import Any, Final

import aiohttp
from multidict import CIMultiDictProxy

from .exceptions import (
    CannotConnect,
    FingerprintMismatch,
    InvalidAuth,
    InvalidCode,
    PairingLocked,
    ProtocolError,
)
from .models import DeviceInfo
from .talk import WebSocketTalkChannel, open_websocket_talk
from .validation import (
    is_finite_number,
    is_strict_int,
    is_valid_device_id,
    is_valid_fingerprint,
    is_valid_firmware,
    is_valid_model,
    is_valid_name,
    is_valid_pairing_code,
    is_valid_token,
    normalize_fingerprint,
)

_LOGGER = logging.getLogger(__name__)

MAX_JSON_BYTES: Final = 64 * 1024
MAX_SNAPSHOT_BYTES: Final = 5 * 1024 * 1024
MAX_REQUEST_BODY_BYTES: Final = 1024
_READ_CHUNK: Final = 64 * 1024
_JPEG_SOI: Final = b"\xff\xd8"


def _unverified_tls_context() -> ssl.SSLContext:
    # No CA bundle is loaded (that would be blocking file I/O in the event loop): the
    # certificate is judged by its fingerprint, never by a chain.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class DoorstepClient:
    """Talks to one doorbell's HTTPS API."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int,
        *,
        fingerprint: str | None = None,
        token: str | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        if fingerprint is not None:
            fingerprint = normalize_fingerprint(fingerprint)
            if not is_valid_fingerprint(fingerprint):
                raise ValueError("fingerprint must be 64 hex digits")
        self._session = session
        self._host = host
        self._port = port
        self._fingerprint = fingerprint
        self._token = token
        self._request_timeout = request_timeout

    @property
    def host(self) -> str:
        """Host name or address of the device."""
        return self._host

    @property
    def port(self) -> int:
        """HTTPS port of the device."""
        return self._port

    @property
    def fingerprint(self) -> str | None:
        """Pinned certificate fingerprint (64 lowercase hex digits), if any."""
        return self._fingerprint

    @property
    def token(self) -> str | None:
        """Bearer token issued by pairing, if any."""
        return self._token

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session all requests go through."""
        return self._session

    @property
    def request_timeout(self) -> float:
        """Seconds one request may take from connect to the last body byte."""
        return self._request_timeout

    def set_token(self, token: str | None) -> None:
        """Use ``token`` for authenticated requests from now on."""
        self._token = token

    @property
    def base_url(self) -> str:
        """``https://host:port``, with an IPv6 literal in brackets."""
        host = self._host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"https://{host}:{self._port}"

    def stream_url(self) -> str:
        """URL of the live MPEG-TS stream (needs :meth:`auth_headers` and :meth:`ssl_pin`)."""
        return f"{self.base_url}/v1/stream.ts"

    def events_url(self) -> str:
        """URL of the event WebSocket."""
        return f"{self.base_url}/v1/events"

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header for authenticated endpoints."""
        if self._token is None:
            raise ValueError("not paired: no token")
        return {"Authorization": f"Bearer {self._token}"}

    def ssl_pin(self) -> aiohttp.Fingerprint:
        """The ``ssl=`` argument that pins the device's certificate."""
        if self._fingerprint is None:
            raise ValueError("no pinned fingerprint: call fetch_fingerprint first")
        return aiohttp.Fingerprint(bytes.fromhex(self._fingerprint))

    async def fetch_fingerprint(self) -> str:
        """Trust on first use: return the SHA-256 of the certificate the device presents.

        The handshake is done without any verification on purpose; the caller decides
        whether to trust the answer (compare it to the advertised ``fp``, or pin it).
        """
        try:
            async with asyncio.timeout(self._request_timeout):
                _, writer = await asyncio.open_connection(
                    self._host, self._port, ssl=_unverified_tls_context()
                )
        except (TimeoutError, OSError, ssl.SSLError) as err:
            raise CannotConnect(f"TLS handshake with {self.base_url} failed: {err!r}") from err
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        finally:
            writer.close()
            try:
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
            except TimeoutError, OSError, ssl.SSLError:
                pass  # the peer may not answer our close_notify; nothing is lost
        if not der:
            raise CannotConnect(f"{self.base_url} presented no certificate")
        return hashlib.sha256(der).hexdigest()

    async def get_info(self) -> DeviceInfo:
        """``GET /v1/info``: who the device says it is."""
        status, _, body = await self._request("GET", "/v1/info", max_bytes=MAX_JSON_BYTES)
        if status != 200:
            raise ProtocolError(f"GET /v1/info answered {status}")
        data = _json_object(body)
        device_id = data.get("id")
        name = data.get("name")
        model = data.get("model")
        firmware = data.get("fw")
        version = data.get("v")
        if not (isinstance(device_id, str) and is_valid_device_id(device_id)):
            raise ProtocolError(f"info has a bad id: {device_id!r}")
        if not (isinstance(name, str) and is_valid_name(name)):
            raise ProtocolError(f"info has a bad name: {name!r}")
        if not (isinstance(model, str) and is_valid_model(model)):
            raise ProtocolError(f"info has a bad model: {model!r}")
        if not (isinstance(firmware, str) and is_valid_firmware(firmware)):
            raise ProtocolError(f"info has a bad firmware: {firmware!r}")
        if not (is_strict_int(version) and 0 < version < 1000):
            raise ProtocolError(f"info has a bad protocol version: {version!r}")
        microphone, speaker = _audio_fields(data.get("audio"))
        return DeviceInfo(
            device_id=device_id,
            name=name,
            model=model,
            firmware=firmware,
            protocol_version=version,
            microphone=microphone,
            speaker=speaker,
        )

    async def open_talk(self, *, name: str) -> WebSocketTalkChannel:
        """``GET /v1/talk`` (v1.1): take the speaker's floor, over the pinned TLS."""
        return await open_websocket_talk(
            self._session,
            f"{self.base_url}/v1/talk",
            self.auth_headers(),
            self.ssl_pin(),
            name=name,
            connect_timeout=self.request_timeout,
        )

    async def pair(self, code: str, client_name: str) -> str:
        """``POST /v1/pair``: trade the code the device shows for a token.

        The token is returned and also kept for later requests.
        """
        code = code.strip() if isinstance(code, str) else ""
        if not is_valid_pairing_code(code):
            # Not worth a device round trip, and it must not cost one of the attempts.
            raise InvalidCode(None, "a pairing code is 6 to 8 digits")
        payload = json.dumps({"code": code, "client": client_name}).encode()
        if len(payload) > MAX_REQUEST_BODY_BYTES:
            raise ValueError("client_name is too long")

        status, headers, body = await self._request(
            "POST", "/v1/pair", body=payload, max_bytes=MAX_JSON_BYTES
        )
        if status == 200:
            data = _json_object(body)
            token = data.get("token")
            device_id = data.get("id")
            if not (isinstance(token, str) and is_valid_token(token)):
                raise ProtocolError("pairing answer has no usable token")
            if not (isinstance(device_id, str) and is_valid_device_id(device_id)):
                raise ProtocolError(f"pairing answer has a bad id: {device_id!r}")
            self._token = token
            return token
        if status == 401:
            data = _json_object(body)
            if data.get("error") != "invalid_code":
                raise ProtocolError(f"pairing refused with {data.get('error')!r}")
            attempts_left = data.get("attempts_left")
            if attempts_left is not None and not (
                is_strict_int(attempts_left) and attempts_left >= 0
            ):
                raise ProtocolError(f"bad attempts_left: {attempts_left!r}")
            raise InvalidCode(attempts_left)
        if status == 429:
            raise PairingLocked(_retry_after(body, headers))
        if status == 400:
            # We only send well-formed requests, so this is the device misbehaving.
            raise ProtocolError(f"device rejected the pairing request: {body[:200]!r}")
        raise ProtocolError(f"POST /v1/pair answered {status}")

    async def unpair(self) -> None:
        """``DELETE /v1/pair``: make the device forget this hub's token."""
        status, _, _ = await self._request(
            "DELETE", "/v1/pair", authenticated=True, max_bytes=MAX_JSON_BYTES
        )
        if status not in (200, 204):
            raise ProtocolError(f"DELETE /v1/pair answered {status}")
        self._token = None

    async def snapshot(self) -> bytes:
        """``GET /v1/snapshot.jpg``: the current picture as JPEG bytes."""
        status, _, body = await self._request(
            "GET", "/v1/snapshot.jpg", authenticated=True, max_bytes=MAX_SNAPSHOT_BYTES
        )
        if status != 200:
            raise ProtocolError(f"GET /v1/snapshot.jpg answered {status}")
        if not body.startswith(_JPEG_SOI):
            raise ProtocolError("snapshot is not a JPEG")
        return body

    async def connect_events(self, *, connect_timeout: float) -> aiohttp.ClientWebSocketResponse:
        """Open the ``/v1/events`` WebSocket; the caller owns (and must close) it.

        Raises InvalidAuth on 401, FingerprintMismatch, or CannotConnect.
        """
        headers = self.auth_headers()
        pin = self.ssl_pin()
        try:
            async with asyncio.timeout(connect_timeout):
                return await self._session.ws_connect(
                    self.events_url(),
                    headers=headers,
                    ssl=pin,
                    autoping=True,
                    heartbeat=None,
                    max_msg_size=MAX_JSON_BYTES,
                    # A silent device never answers our close frame; don't wait long.
                    timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
                )
        except aiohttp.WSServerHandshakeError as err:
            if err.status == 401:
                raise InvalidAuth("the device rejected the token") from err
            if err.status >= 500 or err.status == 0:
                raise CannotConnect(f"event stream upgrade failed: {err.status}") from err
            raise ProtocolError(f"event stream upgrade answered {err.status}") from err
        except aiohttp.ServerFingerprintMismatch as err:
            raise self._mismatch(err) from err
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise CannotConnect(f"cannot reach {self.base_url}: {err!r}") from err

    async def _request(
        self,
        method: str,
        path: str,
        *,
        max_bytes: int,
        authenticated: bool = False,
        body: bytes | None = None,
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        """Send one pinned request; map transport failures and the shared statuses."""
        pin = self.ssl_pin()
        headers = self.auth_headers() if authenticated else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with (
                asyncio.timeout(self._request_timeout),
                self._session.request(
                    method,
                    f"{self.base_url}{path}",
                    headers=headers,
                    data=body,
                    ssl=pin,
                    # A redirect could point anywhere; the protocol has none.
                    allow_redirects=False,
                ) as response,
            ):
                content = await _read_bounded(response, max_bytes)
                status, response_headers = response.status, response.headers
        except aiohttp.ServerFingerprintMismatch as err:
            raise self._mismatch(err) from err
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise CannotConnect(f"{method} {path} on {self.base_url} failed: {err!r}") from err

        if status >= 500:
            raise CannotConnect(f"{method} {path} answered {status}")
        if authenticated and status == 401:
            raise InvalidAuth("the device rejected the token")
        return status, response_headers, content

    def _mismatch(self, err: aiohttp.ServerFingerprintMismatch) -> FingerprintMismatch:
        assert self._fingerprint is not None
        got: Any = getattr(err, "got", None)
        actual = got.hex() if isinstance(got, bytes) else None
        return FingerprintMismatch(self._fingerprint, actual)


async def _read_bounded(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """Read the body, refusing (without buffering) more than ``max_bytes``."""
    if response.content_length is not None and response.content_length > max_bytes:
        raise ProtocolError(f"answer of {response.content_length} bytes is too large")
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise ProtocolError(f"answer is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _audio_fields(audio: object) -> tuple[str | None, bool]:
    """``info["audio"]`` of v1.1; anything malformed counts as no sound (v1.0)."""
    if not isinstance(audio, dict):
        return None, False
    microphone = audio.get("microphone")
    speaker = audio.get("speaker")
    return (
        microphone if isinstance(microphone, str) and 0 < len(microphone) <= 16 else None,
        speaker is True,
    )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as err:
        raise ProtocolError("answer is not JSON") from err
    if not isinstance(data, dict):
        raise ProtocolError("answer is not a JSON object")
    return data


def _retry_after(body: bytes, headers: Mapping[str, str]) -> float:
    try:
        data = _json_object(body)
    except ProtocolError:
        data = {}
    value = data.get("retry_after")
    if is_finite_number(value) and value >= 0:
        return float(value)
    header = headers.get("Retry-After", "").strip()
    if header.isascii() and header.isdigit():
        return float(header)
    raise ProtocolError("pairing locked, but the device did not say for how long")

"""HTTP client for the hub's requester API (``/api/doorstep/v1``), as an outside portal sees it.

Every hub answer that is not a success becomes a :class:`HubError` carrying a sentence a
person can act on; every transport failure becomes :class:`HubUnreachable`. The CLI
prints these and picks an exit code; it never shows a traceback for an expected failure.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
import json
import os
from pathlib import Path
import re
import ssl
import tempfile
from typing import Any, Self

import aiohttp
from yarl import URL

API_PREFIX = "/api/doorstep/v1"
# The hub's request ids are ULIDs. Checking before building a URL keeps `status ../x`
# from ever reaching the hub as a path.
_ULID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
_PICKUP_PATH_RE = re.compile(re.escape(API_PREFIX) + r"/pickup/[A-Za-z0-9_-]{1,128}")
API_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)
# Archives can be large and slow; only a stalled connection is an error.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
DOWNLOAD_CHUNK = 256 * 1024
MAX_JSON_ANSWER = 64 * 1024


class RequesterError(Exception):
    """Base class of every failure the CLI reports without a traceback."""


class UsageError(RequesterError):
    """Bad input on our side: a malformed id, URL or key."""


class HubUnreachable(RequesterError):
    """Could not talk to the hub at all (DNS, refused, TLS, timeout)."""


class HubError(RequesterError):
    """The hub answered, but not with success."""

    def __init__(
        self, status: int, code: str | None, message: str, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field


@dataclass(frozen=True, slots=True)
class RequestStatus:
    """What ``GET /requests/{id}`` tells its requester."""

    id: str
    status: str
    pickup_url: str | None = None
    pickup_expires_at: str | None = None


@dataclass(frozen=True, slots=True)
class HubPublicKey:
    key_id: str
    public_key: bytes


def check_request_id(value: str) -> str:
    if _ULID_RE.fullmatch(value) is None:
        raise UsageError(f"{value!r} is not a request id (26 characters, as `file` printed it)")
    return value


def parse_public_key(value: str) -> bytes:
    """A raw Ed25519 public key from its base64 form (as ``/key`` and the hub UI show it)."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except binascii.Error, ValueError:
        raise UsageError("public key is not base64") from None
    if len(raw) != 32:
        raise UsageError("public key must be 32 bytes (raw Ed25519), base64-encoded")
    return raw


def parse_hub_url(value: str) -> URL:
    try:
        url = URL(value)
    except ValueError:
        raise UsageError(f"hub URL {value!r} is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(f"hub URL {value!r} must be http:// or https:// with a host")
    if url.user is not None or url.password is not None or url.query_string or url.fragment:
        raise UsageError("hub URL must not carry credentials, a query or a fragment")
    return url


def client_ssl(cafile: Path | None, insecure: bool) -> ssl.SSLContext | bool:
    """TLS settings for the hub: a private CA, no checking at all, or the system store."""
    if insecure:
        return False
    if cafile is not None:
        try:
            return ssl.create_default_context(cafile=str(cafile))
        except (OSError, ssl.SSLError) as err:
            raise UsageError(f"cannot load CA file {cafile}: {err}") from None
    return True


def _describe(status: int, code: str | None, field: str | None, message: str | None) -> str:
    """The sentence shown for a hub refusal."""
    if status == 400:
        where = f" in {field}" if field else ""
        return f"the hub rejected the request{where}: {message or 'invalid request'}"
    if status == 401:
        return (
            "the hub did not accept the requester token (401). Check --token or "
            "DOORSTEP_REQUESTER_TOKEN; the householder may have revoked it. Home Assistant "
            "bans addresses after repeated failures, so do not retry blindly."
        )
    if status == 403:
        return (
            "the hub refuses this address (403): Home Assistant may have banned it after "
            "failed logins; the householder can lift the ban"
        )
    if status == 404:
        return "not found (404): no such request for this token, or the link is gone"
    if status == 413:
        return "the request is too large for the hub (413, at most 16 KiB)"
    if status == 429:
        return (
            "too many requests (429): the hub limits how often and how many pending "
            "requests one requester may file. Wait for earlier ones to be answered."
        )
    detail = f": {message}" if message else (f": {code}" if code else "")
    return f"the hub answered HTTP {status}{detail}"


async def _error_from(response: aiohttp.ClientResponse) -> HubError:
    code = field = message = None
    try:
        raw = await response.content.read(MAX_JSON_ANSWER)
        body = _json_object(raw)
    except ValueError, aiohttp.ClientError:
        body = {}
    code = _opt_str(body.get("error"))
    field = _opt_str(body.get("field"))
    message = _opt_str(body.get("message"))
    return HubError(response.status, code, _describe(response.status, code, field, message), field)


def _opt_str(value: Any) -> str | None:
    # Hub text is shown in a terminal: keep it printable and short.
    if not isinstance(value, str):
        return None
    return "".join(ch for ch in value if ch.isprintable())[:300]


def _json_object(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


class HubClient:
    """The requester's side of the hub API. Use as an async context manager."""

    def __init__(
        self,
        hub_url: str,
        token: str | None,
        *,
        ssl_setting: ssl.SSLContext | bool = True,
    ) -> None:
        self._base = parse_hub_url(hub_url)
        # Home Assistant may sit under a path prefix behind a proxy; keep it, minus the "/".
        self._origin = self._base.origin()
        self._prefix = self._base.path.rstrip("/")
        self._token = token
        self._ssl: ssl.SSLContext | bool = ssl_setting if self._base.scheme == "https" else True
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def base_url(self) -> URL:
        return self._origin.with_path(self._prefix or "/")

    def _url(self, path: str) -> URL:
        return self._origin.with_path(self._prefix + path)

    def _auth(self) -> dict[str, str]:
        if not self._token:
            raise UsageError("no requester token: pass --token or set DOORSTEP_REQUESTER_TOKEN")
        return {"Authorization": f"Bearer {self._token}"}

    async def _json(
        self, method: str, path: str, expect: int, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        assert self._session is not None, "use HubClient as an async context manager"
        url = self._url(path)
        try:
            async with self._session.request(
                method,
                url,
                json=body,
                headers=self._auth(),
                ssl=self._ssl,
                timeout=API_TIMEOUT,
                allow_redirects=False,
            ) as response:
                if response.status != expect:
                    raise await _error_from(response)
                raw = await response.content.read(MAX_JSON_ANSWER + 1)
        except aiohttp.ClientError as err:
            raise _unreachable(self._base, err) from None
        except TimeoutError:
            raise HubUnreachable(f"the hub at {self._base} did not answer in time") from None
        if len(raw) > MAX_JSON_ANSWER:
            raise HubError(response.status, None, "the hub's answer is implausibly large")
        try:
            return _json_object(raw)
        except ValueError:
            raise HubError(response.status, None, "the hub's answer is not a JSON object") from None

    async def file_request(self, body: dict[str, Any]) -> RequestStatus:
        answer = await self._json("POST", f"{API_PREFIX}/requests", 201, body)
        return _status_from(answer)

    async def status(self, request_id: str) -> RequestStatus:
        check_request_id(request_id)
        answer = await self._json("GET", f"{API_PREFIX}/requests/{request_id}", 200)
        status = _status_from(answer)
        if status.id != request_id:
            raise HubError(200, None, "the hub answered about a different request")
        return status

    async def public_key(self) -> HubPublicKey:
        answer = await self._json("GET", f"{API_PREFIX}/key", 200)
        key_id, encoded = answer.get("key_id"), answer.get("public_key")
        if not isinstance(key_id, str) or not isinstance(encoded, str):
            raise HubError(200, None, "the hub's key answer lacks key_id or public_key")
        try:
            raw = parse_public_key(encoded)
        except UsageError as err:
            raise HubError(200, None, f"the hub's {err}") from None
        return HubPublicKey(key_id, raw)

    def pickup_url(self, pickup_path: str) -> URL:
        """The absolute pickup URL, only ever on the hub we were told to use.

        The token in it is a secret: it must not be sent to any other host, whatever the
        hub's answer says.
        """
        if _PICKUP_PATH_RE.fullmatch(pickup_path) is None:
            raise HubError(200, None, "the hub offered a pickup link in an unexpected form")
        return self._url(pickup_path)

    async def download(self, pickup_path: str, directory: Path, max_bytes: int) -> Path:
        """Stream the archive behind a pickup link into a temporary file in ``directory``.

        No auth header: the token in the link is the credential. Returns the file; the
        caller renames it once it knows whether the contents verify.
        """
        assert self._session is not None, "use HubClient as an async context manager"
        url = self.pickup_url(pickup_path)
        fd, name = tempfile.mkstemp(prefix=".download-", suffix=".tar", dir=directory)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                async with self._session.get(
                    url, ssl=self._ssl, timeout=DOWNLOAD_TIMEOUT, allow_redirects=False
                ) as response:
                    if response.status != 200:
                        raise await _error_from(response)
                    received = 0
                    async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                        received += len(chunk)
                        if received > max_bytes:
                            raise HubError(200, None, f"the archive exceeds {max_bytes} bytes")
                        handle.write(chunk)
                    if response.content_length is not None and received != response.content_length:
                        raise HubUnreachable("the download ended early; try again")
        except aiohttp.ClientError as err:
            path.unlink(missing_ok=True)  # noqa: ASYNC240 -- a local temp file, dropped on an error path where awaiting is unsafe
            raise _unreachable(self._base, err) from None
        except TimeoutError:
            path.unlink(missing_ok=True)  # noqa: ASYNC240 -- a local temp file, dropped on an error path where awaiting is unsafe
            raise HubUnreachable("the download stalled") from None
        except BaseException:
            path.unlink(missing_ok=True)  # noqa: ASYNC240 -- a local temp file, dropped on an error path where awaiting is unsafe
            raise
        return path


def _unreachable(base: URL, err: aiohttp.ClientError) -> HubUnreachable:
    if isinstance(err, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return HubUnreachable(
            f"TLS with {base} failed ({err}). Pass --cafile with the hub's CA, "
            "or --insecure to skip checking (not for real evidence)."
        )
    if isinstance(err, aiohttp.ClientConnectorError):
        return HubUnreachable(f"cannot connect to the hub at {base}: {err.strerror or err}")
    if isinstance(err, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return HubUnreachable(f"the connection to {base} broke off: {err}")
    return HubUnreachable(f"talking to the hub at {base} failed: {err}")


def _status_from(answer: dict[str, Any]) -> RequestStatus:
    request_id, status = answer.get("id"), answer.get("status")
    if not isinstance(request_id, str) or _ULID_RE.fullmatch(request_id) is None:
        raise HubError(200, None, "the hub's answer lacks a valid request id")
    if status not in ("pending", "fulfilled", "closed"):
        raise HubError(200, None, f"the hub reported an unknown status {_opt_str(status)!r}")
    pickup_url = answer.get("pickup_url")
    expires = answer.get("pickup_expires_at")
    return RequestStatus(
        request_id,
        status,
        pickup_url if isinstance(pickup_url, str) else None,
        expires if isinstance(expires, str) else None,
    )

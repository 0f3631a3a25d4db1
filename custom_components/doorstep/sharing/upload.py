"""HTTPS upload delivery: send an approved request's release to the requester's own server.

The gate's :class:`~.gate.Release` is the only byte source: every attempt opens a new
release (so every attempt is in the audit log before its first byte) and nothing here
ever reads a clip file. The stream re-checks the request between chunks, so revoking or
expiring it cuts an upload off mid-body.

What the requester's server gets is exactly the pickup archive: the signed manifest, its
signature, then the clips. Rules that keep footage where the householder sent it:

- ``https://`` only, with the certificate verified against the system's and certifi's
  CAs plus, optionally, CA certificates the owner trusts for requesters (a PEM file);
- redirects are never followed: a 3xx could point the footage anywhere;
- retries (with exponential backoff and jitter) only for failures that may pass:
  connection errors, timeouts, 5xx, 408 and 429. Any other answer is final.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
import logging
from pathlib import Path
import random
import ssl

import aiohttp
import certifi
from yarl import URL

from .archive import CONTENT_TYPE
from .exceptions import (
    AuditWriteError,
    ClipIntegrityError,
    InvalidTrustFile,
    NotReleasable,
    ReleaseStopped,
    SharingError,
    UnknownRequest,
)
from .gate import EgressGate
from .models import DeliveryMethod, RequestState

_LOGGER = logging.getLogger(__name__)

# The file, in Doorstep's folder under the Home Assistant config dir, where the owner puts
# extra CA certificates to trust for requesters' servers (PEM, any number).
TRUSTED_REQUESTERS_FILE = "trusted_requesters.pem"
# The hub's raw Ed25519 public key, base64, on every upload.
HUB_KEY_HEADER = "Doorstep-Hub-Key"

RETRYABLE_STATUSES = frozenset({408, 429})

type Sleep = Callable[[float], Awaitable[None]]


class UploadStatus(StrEnum):
    """Where an upload stands; also what the request switch shows as ``delivery_status``."""

    UPLOADING = "uploading"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    # Final: needs a person (a requester that refused the archive, an untrusted
    # certificate, or too many failed attempts).
    FAILED = "failed"
    # Revoked, expired or otherwise closed: there is nothing left to deliver.
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped both in delay and in attempts."""

    first_delay: float = 10.0
    max_delay: float = 600.0
    max_attempts: int = 10

    def delay(self, failures: int, jitter: float, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failures`` failed attempts; ``jitter`` is in [0, 1).

        Half the backoff is fixed and half random, so hubs that failed together do not
        all come back together. A server's Retry-After is honoured up to the cap.
        """
        backoff: float = min(self.max_delay, self.first_delay * 2.0 ** max(failures - 1, 0))
        wait = backoff / 2 + backoff / 2 * jitter
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


@dataclass(frozen=True, slots=True)
class UploadResult:
    """How a delivery ended. ``bytes_sent`` counts the last attempt's body bytes."""

    status: UploadStatus
    attempts: int
    error: str | None = None
    http_status: int | None = None
    bytes_sent: int = 0


@dataclass(frozen=True, slots=True)
class _Attempt:
    status: UploadStatus
    error: str | None = None
    http_status: int | None = None
    retryable: bool = False
    retry_after: float | None = None
    bytes_sent: int = 0


def trusted_context(extra_ca_file: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: system CAs, certifi's, and the owner's extra CAs.

    Blocking (reads certificate files): run it in an executor. A missing extra file is
    fine (nothing extra is trusted); an unreadable or malformed one raises
    :class:`InvalidTrustFile` rather than silently trusting less than the owner meant.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.load_verify_locations(cafile=certifi.where())
    if extra_ca_file is not None and extra_ca_file.exists():
        try:
            context.load_verify_locations(cafile=str(extra_ca_file))
        except (OSError, ssl.SSLError, ValueError) as err:
            raise InvalidTrustFile(extra_ca_file, str(err)) from err
    # create_default_context already does both; stated so no later edit can drop them.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare enough to ignore)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class Uploader:
    """Deliver upload requests through the gate, one ``deliver`` call per request."""

    def __init__(
        self,
        gate: EgressGate,
        session: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext,
        *,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        connect_timeout: float = 30.0,
        response_timeout: float = 120.0,
        on_status: Callable[[str, UploadStatus], None] | None = None,
        hub_public_key: bytes | None = None,
    ) -> None:
        self._gate = gate
        # Sent with the archive so a receiver that never met this hub (an agency whose
        # area feed asked) can check the manifest's signature; see docs/feeds.md.
        self._key_header = (
            base64.b64encode(hub_public_key).decode("ascii") if hub_public_key else None
        )
        self._session = session
        self._ssl = ssl_context
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter
        # No total timeout: an archive can be large and a home uplink slow. The read
        # timeout starts only once the whole body is written (aiohttp's own rule).
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=response_timeout
        )
        self._on_status = on_status

    def _report(self, request_id: str, status: UploadStatus) -> None:
        if self._on_status is not None:
            self._on_status(request_id, status)

    def _closed_status(self, request_id: str) -> UploadStatus | None:
        """DELIVERED or STOPPED when there is nothing (more) to send, else None."""
        try:
            request = self._gate.get(request_id)
        except UnknownRequest:
            return UploadStatus.STOPPED
        if request.state is RequestState.FULFILLED:
            return UploadStatus.DELIVERED
        if self._gate.release_problem(request) is not None:
            return UploadStatus.STOPPED
        return None

    async def deliver(self, request_id: str) -> UploadResult:
        """Upload until the requester accepts, refuses, or the request closes."""
        attempts = 0
        last: _Attempt | None = None
        while True:
            if (closed := self._closed_status(request_id)) is not None:
                self._report(request_id, closed)
                return _result(closed, attempts, last)
            attempts += 1
            self._report(request_id, UploadStatus.UPLOADING)
            last = await self._attempt(request_id)
            if last.status in (UploadStatus.DELIVERED, UploadStatus.STOPPED):
                self._report(request_id, last.status)
                return _result(last.status, attempts, last)
            final = not last.retryable or attempts >= self._policy.max_attempts
            await self._gate.record_upload_failure(
                request_id,
                attempt=attempts,
                error=last.error or "unknown error",
                status=last.http_status,
                final=final,
            )
            if final:
                _LOGGER.warning(
                    "Upload of request %s failed for good after %d attempt(s): %s",
                    request_id,
                    attempts,
                    last.error,
                )
                self._report(request_id, UploadStatus.FAILED)
                return _result(UploadStatus.FAILED, attempts, last)
            wait = self._policy.delay(attempts, self._jitter(), last.retry_after)
            _LOGGER.info(
                "Upload of request %s failed (%s); retrying in %.0f s",
                request_id,
                last.error,
                wait,
            )
            self._report(request_id, UploadStatus.RETRYING)
            await self._sleep(wait)

    async def _attempt(self, request_id: str) -> _Attempt:
        request = self._gate.get(request_id)
        url_text = request.delivery.upload_url
        if request.delivery.method is not DeliveryMethod.UPLOAD or url_text is None:
            return _Attempt(UploadStatus.FAILED, "request is not delivered by upload")
        url = URL(url_text)
        if url.scheme != "https" or not url.host:
            return _Attempt(UploadStatus.FAILED, "upload URL is not an https URL")
        try:
            release = await self._gate.open_release(request_id)
        except NotReleasable as err:
            return _Attempt(UploadStatus.STOPPED, err.reason)
        except AuditWriteError as err:
            # Nothing was sent: a release that cannot be logged does not happen. The
            # disk may recover, so this is worth another try.
            return _Attempt(UploadStatus.RETRYING, f"audit log: {err}", retryable=True)

        sent = 0
        stopped: SharingError | None = None

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent, stopped
            try:
                async for chunk in release:
                    sent += len(chunk)
                    yield chunk
            except SharingError as err:
                # aiohttp would turn this into a vague connection error; keep the cause.
                stopped = err
                raise

        headers = {"Content-Type": CONTENT_TYPE, "Content-Length": str(release.size)}
        if self._key_header is not None:
            headers[HUB_KEY_HEADER] = self._key_header
        try:
            async with self._session.post(
                url,
                data=body(),
                headers=headers,
                ssl=self._ssl,
                allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                http_status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except aiohttp.ClientConnectorCertificateError as err:
            return _Attempt(
                UploadStatus.FAILED,
                f"the requester's TLS certificate is not trusted ({err.certificate_error}); "
                f"add its CA certificate to {TRUSTED_REQUESTERS_FILE}",
                bytes_sent=sent,
            )
        except (aiohttp.ClientError, TimeoutError) as err:
            if stopped is not None:
                return _stopped_attempt(stopped, sent)
            return _Attempt(
                UploadStatus.RETRYING,
                f"{type(err).__name__}: {err}" if str(err) else type(err).__name__,
                retryable=True,
                bytes_sent=sent,
            )
        finally:
            await release.aclose()
        if stopped is not None:
            return _stopped_attempt(stopped, sent)
        return await self._judge(request_id, http_status, retry_after, sent)

    async def _judge(
        self, request_id: str, status: int, retry_after: float | None, sent: int
    ) -> _Attempt:
        if 200 <= status < 300:
            await self._gate.complete_upload(request_id)
            return _Attempt(UploadStatus.DELIVERED, http_status=status, bytes_sent=sent)
        if 300 <= status < 400:
            return _Attempt(
                UploadStatus.FAILED,
                f"the requester answered HTTP {status} (a redirect, which is never followed)",
                http_status=status,
                bytes_sent=sent,
            )
        retryable = status >= 500 or status in RETRYABLE_STATUSES
        return _Attempt(
            UploadStatus.RETRYING if retryable else UploadStatus.FAILED,
            f"the requester answered HTTP {status}",
            http_status=status,
            retryable=retryable,
            retry_after=retry_after,
            bytes_sent=sent,
        )


def _stopped_attempt(err: SharingError, sent: int) -> _Attempt:
    if isinstance(err, ReleaseStopped):
        return _Attempt(UploadStatus.STOPPED, err.reason, bytes_sent=sent)
    if isinstance(err, ClipIntegrityError):
        # The frozen bytes are gone or changed: another try would fail the same way.
        return _Attempt(UploadStatus.FAILED, str(err), bytes_sent=sent)
    return _Attempt(UploadStatus.RETRYING, str(err), retryable=True, bytes_sent=sent)


def _result(status: UploadStatus, attempts: int, last: _Attempt | None) -> UploadResult:
    if last is None:
        return UploadResult(status, attempts)
    return UploadResult(
        status,
        attempts,
        error=None if status is UploadStatus.DELIVERED else last.error,
        http_status=last.http_status,
        bytes_sent=last.bytes_sent,
    )

"""Upload delivery inside Home Assistant: one background task per approved upload request.

The uploader (``sharing/upload.py``) does the work. This module only starts it when a
request is approved (and, after a restart, for approved requests still undelivered),
owns the tasks through the sharing entry, and tells the householder when an upload
failed for good.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import DOMAIN, ISSUE_UPLOAD_FAILED, STORAGE_DIR
from .sharing import (
    TRUSTED_REQUESTERS_FILE,
    DeliveryMethod,
    InvalidTrustFile,
    RequestState,
    Uploader,
    UploadStatus,
    trusted_context,
)
from .sharing_hub import SharingConfigEntry, SharingHub

_LOGGER = logging.getLogger(__name__)


def upload_issue_id(request_id: str) -> str:
    return f"{ISSUE_UPLOAD_FAILED}_{request_id}"


def _refused_by_requester(hub: SharingHub) -> set[str]:
    """Requests whose requester answered a final 4xx: resending would not change its mind.

    Other final failures (an untrusted certificate, too many attempts) are retried after
    a restart or reload, which is how the owner retries once the cause is fixed.
    """
    refused = set()
    for entry in hub.audit.entries_blocking():
        details = entry.get("details") or {}
        status = details.get("status")
        if (
            entry.get("kind") == "delivered"
            and details.get("phase") == "failed"
            and details.get("final") is True
            and isinstance(status, int)
            and 400 <= status < 500
        ):
            refused.add(str(entry.get("request")))
    return refused


class UploadDeliveries:
    """Starts, tracks and stops the uploads of one sharing entry."""

    def __init__(self, hass: HomeAssistant, entry: SharingConfigEntry, hub: SharingHub) -> None:
        self._hass = hass
        self._entry = entry
        self._hub = hub
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._trust_file = Path(hass.config.path(STORAGE_DIR, TRUSTED_REQUESTERS_FILE))

    async def async_start(self) -> None:
        """Resume what a restart interrupted, then follow approvals."""
        refused = await self._hass.async_add_executor_job(_refused_by_requester, self._hub)
        for request_id in refused:
            self._hub.upload_status[request_id] = UploadStatus.FAILED
        self._entry.async_on_unload(self._hub.add_listener(self.sync))
        self.sync()

    @callback
    def sync(self) -> None:
        """Start an upload for every approved upload request; stop those that closed."""
        for request in self._hub.gate.requests():
            if request.delivery.method is not DeliveryMethod.UPLOAD:
                continue
            status = self._hub.upload_status.get(request.id)
            if request.state is RequestState.APPROVED:
                if request.id not in self._tasks and status is not UploadStatus.FAILED:
                    self._start(request.id)
                continue
            if request.state is not RequestState.FULFILLED:
                # Revoked or expired while waiting to retry: nothing may go out any more.
                task = self._tasks.get(request.id)
                if task is not None and task is not asyncio.current_task():
                    task.cancel()
            # Delivered after all, or closed: a failure needs nobody any more.
            ir.async_delete_issue(self._hass, DOMAIN, upload_issue_id(request.id))

    def _start(self, request_id: str) -> None:
        self._tasks[request_id] = self._entry.async_create_background_task(
            self._hass, self._deliver(request_id), name=f"{DOMAIN} upload {request_id}"
        )

    async def _deliver(self, request_id: str) -> None:
        try:
            try:
                context = await self._hass.async_add_executor_job(trusted_context, self._trust_file)
            except InvalidTrustFile as err:
                self._failed(request_id, str(err))
                return
            uploader = Uploader(
                self._hub.gate,
                async_get_clientsession(self._hass),
                context,
                on_status=self._set_status,
                hub_public_key=self._hub.key.public_bytes(),
            )
            result = await uploader.deliver(request_id)
            if result.status is UploadStatus.FAILED:
                self._failed(request_id, result.error or "unknown error")
        finally:
            self._tasks.pop(request_id, None)

    @callback
    def _set_status(self, request_id: str, status: UploadStatus) -> None:
        if status is not UploadStatus.FAILED:
            self._hub.upload_errors.pop(request_id, None)
        self._hub.upload_status[request_id] = status
        self._hub.async_entities_changed()

    @callback
    def _failed(self, request_id: str, error: str) -> None:
        self._hub.upload_errors[request_id] = error
        self._set_status(request_id, UploadStatus.FAILED)
        request = self._hub.gate.get(request_id)
        requester = self._hub.gate.requester(request.requester_id)
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            upload_issue_id(request_id),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_UPLOAD_FAILED,
            translation_placeholders={
                "requester": requester.name,
                "reference": request.reference,
                "error": error,
                "trust_file": str(self._trust_file),
            },
        )

"""The doorbell's camera: snapshots and WebRTC live view that stay on the home network."""

from __future__ import annotations

import logging

from aiohttp import web
from homeassistant.components.camera import Camera, CameraEntityDescription, CameraEntityFeature
from homeassistant.components.camera.webrtc import (
    WebRTCAnswer,
    WebRTCCandidate,
    WebRTCClientConfiguration,
    WebRTCError,
    WebRTCSendMessage,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from webrtc_models import RTCIceCandidateInit

from .const import DOMAIN
from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry, DoorstepData
from .device import DoorstepError, NoSnapshotYet
from .entity import DoorstepEntity
from .errors import translated_error
from .live_view import browser_may_watch
from .media import LocalCandidate, MediaError, WebRTCError as MediaWebRTCError, still_from_relay

_LOGGER = logging.getLogger(__name__)
# How long a snapshot request waits for a still from the live stream when the device
# itself has no picture yet.
_STILL_FALLBACK_WITHIN = 5.0

PARALLEL_UPDATES = 0

CAMERA_DESCRIPTION = CameraEntityDescription(key="camera", name=None)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DoorstepConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the doorbell's camera."""
    async_add_entities([DoorstepCamera(entry.runtime_data.coordinator, entry.runtime_data)])


class DoorstepCamera(DoorstepEntity, Camera):
    """Live video relayed by the hub over WebRTC, and snapshots from the doorbell."""

    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self, coordinator: DoorstepCoordinator, data: DoorstepData) -> None:
        """The camera shares the doorbell's relay and session manager."""
        DoorstepEntity.__init__(self, coordinator, CAMERA_DESCRIPTION)
        Camera.__init__(self)
        self._data = data

    @property
    def _options(self) -> dict[str, object]:
        return dict(self.coordinator.config_entry.options)

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """A JPEG from the doorbell, for browsers on the home network only."""
        if not browser_may_watch(self.hass, self._options):
            _LOGGER.info("Refused a snapshot of %s: outside the home network", self.name)
            raise web.HTTPForbidden(text="Doorstep: snapshots are only served on the home network")
        try:
            if not self._data.doorbell.capabilities.has_snapshot:
                # A still from the live stream instead, for devices with no snapshot.
                return await still_from_relay(self._data.relay)
            try:
                return await self._data.doorbell.snapshot()
            except NoSnapshotYet:
                # Nothing wrong, just no picture from the device now: the live stream
                # may still give one.
                return await self._still_or_none_yet()
        except (DoorstepError, MediaError) as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="snapshot_failed",
                translation_placeholders={"name": self._data.device.name},
            ) from err

    async def _still_or_none_yet(self) -> bytes:
        try:
            return await still_from_relay(self._data.relay, within=_STILL_FALLBACK_WITHIN)
        except MediaError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="no_snapshot_yet",
                translation_placeholders={"name": self._data.device.name},
            ) from err

    async def async_handle_async_webrtc_offer(
        self, offer_sdp: str, session_id: str, send_message: WebRTCSendMessage
    ) -> None:
        """Answer a browser's offer with an aiortc session fed by the relay."""
        if not browser_may_watch(self.hass, self._options):
            _LOGGER.info("Refused live view of %s: outside the home network", self.name)
            send_message(
                WebRTCError(
                    "doorstep_outside_home_network",
                    "Live view of this doorbell is only available on the home network. "
                    "The owner can allow other networks in the doorbell's options.",
                )
            )
            return

        @callback
        def send_candidate(local: LocalCandidate) -> None:
            send_message(
                WebRTCCandidate(
                    RTCIceCandidateInit(
                        local.candidate,
                        sdp_mid=local.sdp_mid,
                        sdp_m_line_index=local.sdp_mline_index,
                    )
                )
            )

        try:
            session = self._data.sessions.create(
                self._data.relay,
                session_id=session_id,
                on_local_candidate=send_candidate,
                audio=self._data.audio,
                talk=self._data.talk,
            )
            answer = await session.handle_offer(offer_sdp)
        except MediaWebRTCError as err:
            _LOGGER.debug("Offer for %s refused: %s", self.name, err)
            send_message(WebRTCError("webrtc_offer_failed", str(err)))
            return
        send_message(WebRTCAnswer(answer))

    async def async_on_webrtc_candidate(
        self, session_id: str, candidate: RTCIceCandidateInit
    ) -> None:
        """Add a browser's trickled candidate; public ones are dropped by the session."""
        session = self._data.sessions.get(session_id)
        if session is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="unknown_webrtc_session"
            )
        try:
            await session.add_remote_candidate(
                candidate.candidate, candidate.sdp_mid, candidate.sdp_m_line_index
            )
        except MediaWebRTCError as err:
            raise translated_error(err) from err

    @callback
    def close_webrtc_session(self, session_id: str) -> None:
        """The browser went away: close its peer connection."""
        self.hass.async_create_task(
            self._data.sessions.close(session_id), name=f"{DOMAIN} close webrtc session"
        )

    @callback
    def _async_get_webrtc_client_configuration(self) -> WebRTCClientConfiguration:
        """No ICE servers of our own: media stays on the LAN with host candidates only."""
        return WebRTCClientConfiguration()

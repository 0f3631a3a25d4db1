"""Doorstep: local video doorbells that keep the doorstep at home."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from datetime import timedelta
import logging
from typing import cast

from homeassistant.config_entries import SOURCE_SYSTEM
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType

from .card import async_register_cards
from .const import (
    CONF_KIND,
    DOMAIN,
    KIND_SHARING,
    SIGNAL_SHARING_CHANGED,
)
from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry, DoorstepData
from .device import DoorstepError, FingerprintMismatch, InvalidAuth, StreamSpec, create_doorbell
from .feed_polling import FeedPoller
from .http import async_register_views
from .ice import async_start_local_stun
from .live_view import home_network_policy
from .media import (
    MediaRelay,
    ProfileDecision,
    SessionManager,
    StreamSource,
    live_view_source,
)
from .media.audio import AudioRelay, TalkFloor
from .media.packet import AudioPacket
from .push import async_register_push_view, hub_url
from .recording import (
    DATA_CLIPS,
    async_setup_recording,
    recorder_config,
    records_events,
    start_recorder,
)
from .repairs import (
    async_create_identity_issue,
    async_update_cloud_issue,
    async_update_profile_issue,
)
from .services import async_setup_services
from .sharing import state_to_dict
from .sharing_hub import DATA_SHARING, SharingConfigEntry, async_create_sharing_hub
from .talk_api import async_register_talk_commands
from .upload_delivery import UploadDeliveries
from .websocket_api import async_register_commands

_LOGGER = logging.getLogger(__name__)

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.CAMERA,
    Platform.EVENT,
    Platform.SENSOR,
]

SHARING_PLATFORMS: list[Platform] = [Platform.BUTTON, Platform.SENSOR, Platform.SWITCH]

# Seconds setup waits for the event stream before adding entities.
FIRST_CONNECTION_WAIT = 5.0

# How often open requests are checked against their wanted-by time. Releases check the
# time themselves; this only makes the switch, the count and the card catch up.
EXPIRY_CHECK_INTERVAL = timedelta(minutes=1)


CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Once per Home Assistant: actions, the requester API, the card, STUN, and sharing."""
    async_setup_services(hass)
    async_register_views(hass)
    async_register_push_view(hass)
    async_register_commands(hass)
    async_register_talk_commands(hass)
    await async_start_local_stun(hass)
    stop_retention = await async_setup_recording(hass)

    @callback
    def _stop_retention(_event: Event) -> None:
        stop_retention()

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _stop_retention)
    if not any(
        entry.data.get(CONF_KIND) == KIND_SHARING
        for entry in hass.config_entries.async_entries(DOMAIN, include_ignore=False)
    ):
        # Requests are for the whole household, not one doorbell: they get their own
        # entry (and device), made once, with its requesters managed in its options.
        hass.async_create_task(
            hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_SYSTEM}),
            eager_start=True,
        )
    # Last: it waits on the executor, and nothing above should wait for the card (a Home
    # Assistant stopping meanwhile must still find the retention timer's stop listener).
    await async_register_cards(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: DoorstepConfigEntry) -> bool:
    """Set up a doorbell, or the household's sharing gate."""
    if entry.data.get(CONF_KIND) == KIND_SHARING:
        return await _async_setup_sharing(hass, cast(SharingConfigEntry, entry))
    return await _async_setup_doorbell(hass, entry)


async def _async_setup_sharing(hass: HomeAssistant, entry: SharingConfigEntry) -> bool:
    hub = await async_create_sharing_hub(hass, hass.data[DATA_CLIPS])
    if hub is None:
        raise ConfigEntryError(translation_domain=DOMAIN, translation_key="sharing_state_corrupt")
    entry.runtime_data = hub
    hass.data[DATA_SHARING] = hub

    async def _stop_sharing() -> None:
        hass.data.pop(DATA_SHARING, None)
        async_dispatcher_send(hass, SIGNAL_SHARING_CHANGED)
        await hub.store.async_save(state_to_dict(hub.gate.state))

    entry.async_on_unload(_stop_sharing)
    await hass.config_entries.async_forward_entry_setups(entry, SHARING_PLATFORMS)
    # After the platforms, so a resumed upload's status lands on an existing switch.
    await UploadDeliveries(hass, entry, hub).async_start()
    await FeedPoller(hass, entry, hub).async_start()
    # Requests that ran out while Home Assistant was off close now, the rest on time.
    await hub.async_expire_due()
    entry.async_on_unload(
        async_track_time_interval(hass, hub.async_expire_due, EXPIRY_CHECK_INTERVAL)
    )
    # Open sharing cards pick up the (re)started gate.
    async_dispatcher_send(hass, SIGNAL_SHARING_CHANGED)
    return True


async def _async_setup_doorbell(hass: HomeAssistant, entry: DoorstepConfigEntry) -> bool:
    """Connect to a paired doorbell and start listening to it."""
    doorbell = create_doorbell(async_get_clientsession(hass), entry.data, hub_url=hub_url(hass))
    try:
        device = await doorbell.connect()
    except FingerprintMismatch as err:
        async_create_identity_issue(hass, entry, err.actual)
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="identity_changed",
            translation_placeholders={"name": entry.title},
        ) from err
    except InvalidAuth as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key="device_refused_credentials",
            translation_placeholders={"name": entry.title},
        ) from err
    except DoorstepError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"name": entry.title, "host": doorbell.host},
        ) from err

    try:
        outside = await doorbell.outside_services()
    except DoorstepError as err:
        _LOGGER.debug("%s: cannot tell which outside services it uses: %s", entry.title, err)
    else:
        async_update_cloud_issue(hass, entry, outside)

    coordinator = DoorstepCoordinator(hass, entry, device)
    sessions = SessionManager(policy=home_network_policy(entry.options))

    def _profile_seen(decision: ProfileDecision) -> None:
        # Live view passes this profile through, so answers prefer it; a re-encoded
        # stream is constrained baseline, which answers prefer anyway.
        sessions.source_profile_level_id = (
            decision.profile_level_id if decision.passthrough else None
        )
        async_update_profile_issue(hass, entry, decision)

    # Two relays: the doorbell's own bytes (for the recorder: clips may become evidence,
    # so they keep the camera's original picture, and recording alone never costs a
    # transcode), and live view, which re-encodes only while someone watches a stream
    # that browsers cannot play as it is.
    capabilities = doorbell.capabilities
    audio = AudioRelay(device.name) if capabilities.microphone else None
    talk = (
        TalkFloor(lambda session_id: doorbell.open_talk(name=f"{device.name} {session_id}"))
        if capabilities.has_talk_back
        else None
    )
    stream = doorbell.stream()
    source_relay = MediaRelay(
        lambda: _stream_source(
            stream,
            name=device.name,
            on_profile=_profile_seen,
            on_audio=audio.publish if audio is not None else None,
        ).packets(),
        name=f"{device.name} source",
    )
    relay = MediaRelay(live_view_source(source_relay, name=device.name), name=device.name)
    entry.runtime_data = DoorstepData(
        doorbell=doorbell,
        device=device,
        coordinator=coordinator,
        relay=relay,
        sessions=sessions,
        audio=audio,
        talk=talk,
    )

    recorder = None
    if (config := recorder_config(entry.options)) is not None:
        recorder, trigger = start_recorder(
            hass, device.device_id, config, source_relay, events=records_events(entry.options)
        )
        entry.runtime_data.recorder = recorder
        if audio is not None:
            # Only kept when the owner turned on "Record audio".
            recorder.attach_audio(audio)
        entry.async_on_unload(coordinator.add_event_hook(trigger))

    async def _stop_media() -> None:
        # Every aiortc peer connection first, then the recorder (which saves an open
        # clip), then the upstream they were all fed from.
        await sessions.close_all()
        if recorder is not None:
            await recorder.close()
        await relay.close()
        await source_relay.close()
        if audio is not None:
            audio.close()

    entry.async_on_unload(_stop_media)

    # Home Assistant does not unload entries when it stops: close media before its HTTP
    # session goes, so a relay in its grace period does not try to reconnect through it.
    async def _stop_media_at_shutdown(_event: Event) -> None:
        await _stop_media()

    entry.async_on_unload(
        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _stop_media_at_shutdown)
    )

    # Who may watch and how clips are cut are fixed at setup: the options flow reloads
    # the entry when its options change (OptionsFlowWithReload).

    # Owned by the entry: cancelled (and its socket closed) when the entry unloads.
    entry.async_create_background_task(
        hass, doorbell.run_events(coordinator), name=f"{DOMAIN} event stream {device.device_id}"
    )
    # Entities written before the stream is up would start unavailable and flip to their
    # real state a moment later, which the logbook shows as a spurious event. A short
    # wait avoids that; a doorbell that takes longer simply starts unavailable.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FIRST_CONNECTION_WAIT):
            await coordinator.first_connection.wait()

    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: DoorstepConfigEntry) -> bool:
    """Stop listening and remove the entities."""
    platforms = SHARING_PLATFORMS if entry.data.get(CONF_KIND) == KIND_SHARING else PLATFORMS
    return await hass.config_entries.async_unload_platforms(entry, platforms)


async def async_remove_entry(hass: HomeAssistant, entry: DoorstepConfigEntry) -> None:
    """Undo what the hub set up on the device; removal goes on if it can't be reached."""
    if entry.data.get(CONF_KIND) == KIND_SHARING:
        return
    doorbell = create_doorbell(async_get_clientsession(hass), entry.data, hub_url=hub_url(hass))
    try:
        await doorbell.forget()
    except DoorstepError as err:
        _LOGGER.info(
            "Could not tell %s to forget this hub (%s); reset the doorbell to revoke it",
            entry.title,
            err,
        )


def _stream_source(
    stream: StreamSpec,
    *,
    name: str,
    on_profile: Callable[[ProfileDecision], None],
    on_audio: Callable[[AudioPacket], None] | None = None,
) -> StreamSource:
    """The media source for where the driver says live video (and sound) comes from."""
    if stream.endpoint is not None:
        return StreamSource.from_doorbell(
            stream.endpoint, name=name, on_profile=on_profile, on_audio=on_audio
        )
    assert stream.url is not None
    return StreamSource.from_url(
        stream.url, name=name, options=stream.options, on_profile=on_profile, on_audio=on_audio
    )

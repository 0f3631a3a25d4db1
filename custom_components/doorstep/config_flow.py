"""Config flow for Doorstep: discovery, manual setup, pairing, reauth, reconfigure, options."""

from __future__ import annotations

from collections.abc import Mapping
import logging
from math import ceil
import secrets
from typing import Any
from urllib.parse import urlsplit

from homeassistant.components import onboarding
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
    OptionsFlowWithReload,
)
from homeassistant.const import (
    CONF_HOST,
    CONF_NAME,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_URL,
    CONF_USERNAME,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import AbortFlow
from homeassistant.helpers import selector
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.util import dt as dt_util
import probatio

from .const import (
    CONF_ALLOW_REMOTE_LIVE_VIEW,
    CONF_CODE,
    CONF_DEVICE_ID,
    CONF_FEED_FINGERPRINT,
    CONF_FEED_PROXY,
    CONF_FEED_URL,
    CONF_FEEDS,
    CONF_FINGERPRINT,
    CONF_HOME_NETWORKS,
    CONF_HUB_BROWSERS_AT_HOME,
    CONF_KIND,
    CONF_LOCATION,
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    CONF_PUSH_SECRET,
    CONF_RECORD_AUDIO,
    CONF_RECORD_CLIPS,
    CONF_RECORD_CONTINUOUS,
    CONF_RING_COOLDOWN,
    CONF_SEGMENT_LENGTH,
    CONF_TOKEN,
    DEFAULT_POST_ROLL,
    DEFAULT_PRE_ROLL,
    DEFAULT_RING_COOLDOWN,
    DEFAULT_SEGMENT_LENGTH,
    DOMAIN,
    KIND_SHARING,
    MAX_RING_COOLDOWN,
    MAX_ROLL,
    MAX_SEGMENT_LENGTH,
    MIN_SEGMENT_LENGTH,
    PAIRING_CLIENT_NAME,
    SHARING_UNIQUE_ID,
)
from .device import (
    DEFAULT_ONVIF_PORT,
    DEFAULT_PORT,
    DRIVER_DOORBIRD,
    DRIVER_DOORSTEP,
    DRIVER_ONVIF,
    DRIVER_RTSP,
    KEY_DRIVER,
    SERVICE_TYPE,
    DeviceIdentity,
    DeviceInfo,
    DoorBirdClient,
    DoorstepClient,
    DoorstepError,
    FingerprintMismatch,
    InvalidAuth,
    InvalidCode,
    NotRtsp,
    NotTls,
    OnvifDoorbell,
    PairingLocked,
    ProtocolError,
    check_rtsp,
    driver_of,
    is_doorbird_mac,
    normalize_mac,
    parse_rtsp_url,
    parse_txt,
    rtsp_device_id,
    stream_options,
    with_credentials,
)
from .device.doorbird import DEFAULT_HTTP_PORT as DOORBIRD_HTTP_PORT
from .feed_polling import DATA_FEEDS, subscriptions
from .live_view import parse_home_networks
from .media import NotAStream, NoVideo, StreamError, StreamNotFound, StreamRefused, probe_stream
from .repairs import async_create_identity_issue, async_delete_identity_issue
from .sharing import RequesterKind
from .sharing.exceptions import FeedRejected
from .sharing.feeds import display_fingerprint, key_fingerprints, normalize_fingerprint, verify_feed
from .sharing.schema import https_url
from .sharing_hub import SharingHub

_LOGGER = logging.getLogger(__name__)

# DoorBirds announce themselves as Axis-style video devices (Home Assistant core matches
# them the same way); the manifest also requires DoorBird's MAC prefix.
DOORBIRD_SERVICE_TYPE = "_axis-video._tcp.local."

CODE_SCHEMA = probatio.Schema({probatio.Required(CONF_CODE): str})

# Fields of the sharing entry's requester options.
CONF_REQUESTER_NAME = "name"
CONF_REQUESTER_KIND = "kind"
CONF_REQUESTER_ID = "requester"


def _host_schema(host: str = "", port: int = DEFAULT_PORT) -> probatio.Schema:
    return probatio.Schema(
        {
            probatio.Required(CONF_HOST, default=host): str,
            probatio.Required(CONF_PORT, default=port): probatio.All(
                probatio.Coerce(int), probatio.Range(min=1, max=65535)
            ),
        }
    )


class DoorstepConfigFlow(ConfigFlow, domain=DOMAIN):
    """Find a doorbell, check who it is, and pair with the code it shows."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Nothing is known until discovery or the owner tells us where to look."""
        self._host = ""
        self._port = DEFAULT_PORT
        self._name = ""
        # The certificate fingerprint the doorbell must present when we send it the code.
        self._fingerprint = ""

    # Entry points ------------------------------------------------------------

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """A doorbell announced itself on the network."""
        if discovery_info.type == DOORBIRD_SERVICE_TYPE:
            return await self._async_doorbird_discovered(discovery_info)
        advert = parse_txt(discovery_info.properties)
        if advert is None:
            return self.async_abort(reason="not_doorstep_device")
        self._host = str(discovery_info.ip_address)
        self._port = discovery_info.port or DEFAULT_PORT
        self._name = _instance_name(discovery_info.name) or advert.model
        self._fingerprint = advert.fingerprint

        await self.async_set_unique_id(advert.device_id)
        self._abort_if_known_doorbell(advert.fingerprint)

        self.context["title_placeholders"] = {"name": self._name}
        if not onboarding.async_is_onboarded(self.hass):
            return await self.async_step_pair()
        return await self.async_step_zeroconf_confirm()

    async def async_step_zeroconf_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask whether to set up the discovered doorbell."""
        if user_input is not None:
            return await self.async_step_pair()
        return self.async_show_form(
            step_id="zeroconf_confirm",
            description_placeholders={"name": self._name, "host": self._host},
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The owner adds a device by hand: a Doorstep doorbell, or an RTSP camera."""
        return self.async_show_menu(
            step_id="user", menu_options=["manual", "doorbird_host", "rtsp", "onvif"]
        )

    async def async_step_manual(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The owner gives the doorbell's address, for networks without multicast."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._host = user_input[CONF_HOST].strip()
            self._port = user_input[CONF_PORT]
            try:
                info = await self._async_trust_on_first_use()
            except DoorstepError:
                errors["base"] = "cannot_connect"
            else:
                await self.async_set_unique_id(info.device_id, raise_on_progress=False)
                self._abort_if_known_doorbell(self._fingerprint)
                self._name = info.name
                self.context["title_placeholders"] = {"name": self._name}
                return await self.async_step_pair()
        return self.async_show_form(
            step_id="manual",
            data_schema=self.add_suggested_values_to_schema(_host_schema(), user_input),
            errors=errors,
        )

    # DoorBird -------------------------------------------------------------------

    async def _async_doorbird_discovered(
        self, discovery_info: ZeroconfServiceInfo
    ) -> ConfigFlowResult:
        """Axis-style video devices announce themselves the same way; only DoorBird's MAC
        prefix makes it a DoorBird."""
        mac = normalize_mac(discovery_info.properties.get("macaddress"))
        if mac is None or not is_doorbird_mac(mac):
            return self.async_abort(reason="not_doorbird_device")
        self._host = str(discovery_info.ip_address)
        self._port = discovery_info.port or DOORBIRD_HTTP_PORT
        instance = discovery_info.name.removesuffix("." + DOORBIRD_SERVICE_TYPE)
        self._name = instance if instance != discovery_info.name else "DoorBird"
        await self.async_set_unique_id(mac)
        # No certificate to pin: the credentials the station accepts prove it is the same.
        self._abort_if_unique_id_configured(updates={CONF_HOST: self._host, CONF_PORT: self._port})
        self.context["title_placeholders"] = {"name": self._name}
        return await self.async_step_doorbird()

    async def async_step_doorbird_host(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A DoorBird by its address, for networks without multicast."""
        if user_input is not None:
            self._host = user_input[CONF_HOST].strip()
            self._port = user_input[CONF_PORT]
            return await self.async_step_doorbird()
        return self.async_show_form(
            step_id="doorbird_host",
            data_schema=_host_schema(port=DOORBIRD_HTTP_PORT),
        )

    async def async_step_doorbird(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The DoorBird user (with API permission) Doorstep signs in as, checked at once."""
        errors: dict[str, str] = {}
        placeholders = {"name": self._name or "DoorBird", "host": self._host}
        if user_input is not None:
            username = user_input[CONF_USERNAME].strip()
            password = user_input[CONF_PASSWORD]
            client = DoorBirdClient(
                async_get_clientsession(self.hass),
                self._host,
                username,
                password,
                port=self._port,
            )
            try:
                info = await client.info()
            except InvalidAuth:
                errors["base"] = "invalid_auth"
            except DoorstepError as err:
                _LOGGER.debug("DoorBird at %s: %s", self._host, err)
                errors["base"] = "cannot_connect"
            else:
                if self.unique_id is not None and info.mac != self.unique_id:
                    errors["base"] = "wrong_device"
                else:
                    return await self._async_doorbird_finish(
                        info.mac,
                        info.device_type,
                        {
                            CONF_USERNAME: username,
                            CONF_PASSWORD: password,
                        },
                    )
        return self.async_show_form(
            step_id="doorbird",
            data_schema=self.add_suggested_values_to_schema(
                DOORBIRD_CREDENTIALS_SCHEMA,
                {CONF_USERNAME: user_input[CONF_USERNAME]} if user_input else None,
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_doorbird_finish(
        self, mac: str, device_type: str, credentials: dict[str, str]
    ) -> ConfigFlowResult:
        if self.source == SOURCE_REAUTH:
            return self.async_update_reload_and_abort(
                self._get_reauth_entry(), data_updates=credentials
            )
        await self.async_set_unique_id(mac, raise_on_progress=False)
        self._abort_if_unique_id_configured(updates={CONF_HOST: self._host, CONF_PORT: self._port})
        name = self._name or device_type
        return self.async_create_entry(
            title=name,
            data={
                KEY_DRIVER: DRIVER_DOORBIRD,
                CONF_NAME: name,
                CONF_HOST: self._host,
                CONF_PORT: self._port,
                CONF_DEVICE_ID: mac,
                CONF_PUSH_SECRET: secrets.token_urlsafe(32),
                **credentials,
            },
        )

    async def async_step_rtsp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """An RTSP camera or doorbell: its URL, and credentials if it asks for them.

        The stream is opened once before the entry is made, so a typo or a wrong password
        is caught here, not later as a camera that never plays.
        """
        errors: dict[str, str] = {}
        if user_input is not None:
            camera, error_field, error = await _async_check_rtsp_camera(user_input)
            if camera is None:
                errors[error_field] = error
            else:
                url, username, password = camera
                device_id = rtsp_device_id(url)
                await self.async_set_unique_id(device_id, raise_on_progress=False)
                self._abort_if_unique_id_configured()
                name = user_input[CONF_NAME].strip() or urlsplit(url).hostname or url
                return self.async_create_entry(
                    title=name,
                    data={
                        KEY_DRIVER: DRIVER_RTSP,
                        CONF_URL: url,
                        CONF_USERNAME: username or "",
                        CONF_PASSWORD: password or "",
                        CONF_DEVICE_ID: device_id,
                        CONF_NAME: name,
                    },
                )
            # Never show the password again, right or wrong.
            user_input = {k: v for k, v in user_input.items() if k != CONF_PASSWORD}
        return self.async_show_form(
            step_id="rtsp",
            data_schema=self.add_suggested_values_to_schema(RTSP_SCHEMA, user_input),
            errors=errors,
        )

    # ONVIF ---------------------------------------------------------------------------

    async def async_step_onvif(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """An ONVIF camera or doorbell by host and credentials, checked against the device.

        The same form adds one, signs in again (reauth) and changes its address or user
        (reconfigure); the last two must still reach the same device.
        """
        entry = (
            self._get_reauth_entry()
            if self.source == SOURCE_REAUTH
            else self._get_reconfigure_entry()
            if self.source == SOURCE_RECONFIGURE
            else None
        )
        errors: dict[str, str] = {}
        if user_input is not None:
            identity, error = await _async_check_onvif(self.hass, user_input)
            if identity is None:
                errors["base"] = error
            elif entry is not None and identity.device_id != entry.unique_id:
                errors["base"] = "wrong_device"
            else:
                data = {
                    CONF_HOST: user_input[CONF_HOST].strip(),
                    CONF_PORT: user_input[CONF_PORT],
                    CONF_USERNAME: user_input[CONF_USERNAME].strip(),
                    CONF_PASSWORD: user_input[CONF_PASSWORD],
                }
                if entry is not None:
                    return self.async_update_reload_and_abort(entry, data_updates=data)
                await self.async_set_unique_id(identity.device_id, raise_on_progress=False)
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=identity.name,
                    data={
                        KEY_DRIVER: DRIVER_ONVIF,
                        CONF_NAME: identity.name,
                        CONF_DEVICE_ID: identity.device_id,
                        **data,
                    },
                )
        # Never show the password again, right or wrong.
        current = user_input or (entry.data if entry is not None else {})
        return self.async_show_form(
            step_id="onvif",
            data_schema=self.add_suggested_values_to_schema(
                ONVIF_SCHEMA,
                {k: v for k, v in current.items() if k in (CONF_HOST, CONF_PORT, CONF_USERNAME)},
            ),
            errors=errors,
            description_placeholders={"name": entry.title if entry is not None else "ONVIF"},
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The doorbell no longer accepts our token (it was reset, or the token revoked)."""
        if driver_of(entry_data) == DRIVER_DOORBIRD:
            self._host = entry_data[CONF_HOST]
            self._port = entry_data.get(CONF_PORT, DOORBIRD_HTTP_PORT)
            self._name = self._get_reauth_entry().title
            await self.async_set_unique_id(entry_data[CONF_DEVICE_ID])
            return await self.async_step_doorbird()
        if driver_of(entry_data) == DRIVER_ONVIF:
            return await self.async_step_onvif()
        self._host = entry_data[CONF_HOST]
        self._port = entry_data[CONF_PORT]
        self._name = self._get_reauth_entry().title
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pair again with a fresh code."""
        errors: dict[str, str] = {}
        placeholders = {"name": self._name}
        if user_input is not None:
            try:
                # A reset doorbell has a new certificate; seeing its code proves it is
                # the one the owner is standing at, so the new certificate is pinned.
                await self._async_trust_on_first_use()
            except DoorstepError:
                errors["base"] = "cannot_connect"
            else:
                return await self._async_pair_or_show(
                    "reauth_confirm", user_input[CONF_CODE], placeholders
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=CODE_SCHEMA,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Point an existing doorbell at a new address, or re-pair it after a reset."""
        entry = self._get_reconfigure_entry()
        driver = driver_of(entry.data)
        if driver == DRIVER_RTSP:
            return await self.async_step_reconfigure_rtsp()
        if driver == DRIVER_DOORBIRD:
            return await self.async_step_reconfigure_doorbird()
        if driver == DRIVER_ONVIF:
            return await self.async_step_onvif()
        if driver != DRIVER_DOORSTEP:
            return self.async_abort(reason="reconfigure_not_supported")
        errors: dict[str, str] = {}
        if user_input is not None:
            self._host = user_input[CONF_HOST].strip()
            self._port = user_input[CONF_PORT]
            self._name = entry.title
            try:
                info = await self._async_trust_on_first_use()
            except DoorstepError:
                errors["base"] = "cannot_connect"
            else:
                await self.async_set_unique_id(info.device_id, raise_on_progress=False)
                self._abort_if_unique_id_mismatch(reason="wrong_device")
                if self._fingerprint == entry.data[CONF_FINGERPRINT]:
                    return self.async_update_reload_and_abort(
                        entry, data_updates={CONF_HOST: self._host, CONF_PORT: self._port}
                    )
                # Same doorbell id, new certificate: only its pairing code may re-pin it.
                return await self.async_step_pair()
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                _host_schema(), user_input or dict(entry.data)
            ),
            errors=errors,
            description_placeholders={"name": entry.title},
        )

    async def async_step_reconfigure_rtsp(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new URL or password for an RTSP camera; checked like a new one, same device."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            camera, error_field, error = await _async_check_rtsp_camera(user_input)
            if camera is not None:
                url, username, password = camera
                return self.async_update_reload_and_abort(
                    entry,
                    data_updates={
                        CONF_URL: url,
                        CONF_USERNAME: username or "",
                        CONF_PASSWORD: password or "",
                    },
                )
            errors[error_field] = error
        suggested = {
            CONF_URL: (user_input or entry.data)[CONF_URL],
            CONF_USERNAME: (user_input or entry.data).get(CONF_USERNAME, ""),
        }
        return self.async_show_form(
            step_id="reconfigure_rtsp",
            data_schema=self.add_suggested_values_to_schema(RTSP_RECONFIGURE_SCHEMA, suggested),
            errors=errors,
            description_placeholders={"name": entry.title},
        )

    async def async_step_reconfigure_doorbird(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A DoorBird's new address or user; it must still be the same station (MAC)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            host = user_input[CONF_HOST].strip()
            client = DoorBirdClient(
                async_get_clientsession(self.hass),
                host,
                user_input[CONF_USERNAME].strip(),
                user_input[CONF_PASSWORD],
                port=user_input[CONF_PORT],
            )
            try:
                info = await client.info()
            except InvalidAuth:
                errors["base"] = "invalid_auth"
            except DoorstepError as err:
                _LOGGER.debug("DoorBird at %s: %s", host, err)
                errors["base"] = "cannot_connect"
            else:
                if info.mac != entry.unique_id:
                    errors["base"] = "wrong_device"
                else:
                    return self.async_update_reload_and_abort(
                        entry,
                        data_updates={
                            CONF_HOST: host,
                            CONF_PORT: user_input[CONF_PORT],
                            CONF_USERNAME: user_input[CONF_USERNAME].strip(),
                            CONF_PASSWORD: user_input[CONF_PASSWORD],
                        },
                    )
        current = user_input or entry.data
        return self.async_show_form(
            step_id="reconfigure_doorbird",
            data_schema=self.add_suggested_values_to_schema(
                DOORBIRD_RECONFIGURE_SCHEMA,
                {
                    CONF_HOST: current[CONF_HOST],
                    CONF_PORT: current.get(CONF_PORT, DOORBIRD_HTTP_PORT),
                    CONF_USERNAME: current[CONF_USERNAME],
                },
            ),
            errors=errors,
            description_placeholders={"name": entry.title},
        )

    async def async_step_system(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Made once by Doorstep itself: the entry that holds footage requests."""
        await self.async_set_unique_id(SHARING_UNIQUE_ID)
        self._abort_if_unique_id_configured()
        return self.async_create_entry(title="Doorstep sharing", data={CONF_KIND: KIND_SHARING})

    # Pairing -----------------------------------------------------------------

    async def async_step_pair(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Enter the code the doorbell shows."""
        placeholders = {"name": self._name, "host": self._host}
        if user_input is not None:
            return await self._async_pair_or_show("pair", user_input[CONF_CODE], placeholders)
        return self.async_show_form(
            step_id="pair", data_schema=CODE_SCHEMA, description_placeholders=placeholders
        )

    async def _async_pair_or_show(
        self, step_id: str, code: str, placeholders: dict[str, str]
    ) -> ConfigFlowResult:
        """Send the code to the doorbell and finish the flow, or show why not."""
        errors: dict[str, str] = {}
        client = self._client()
        try:
            token = await client.pair(_clean_code(code), PAIRING_CLIENT_NAME)
            info = await client.get_info()
        except FingerprintMismatch:
            errors["base"] = "wrong_device"
        except InvalidCode as err:
            errors[CONF_CODE] = "invalid_code"
            placeholders["attempts_left"] = (
                str(err.attempts_left) if err.attempts_left is not None else "?"
            )
        except PairingLocked as err:
            errors["base"] = "too_many_attempts"
            placeholders["retry_after"] = str(ceil(err.retry_after))
        except DoorstepError:
            errors["base"] = "cannot_connect"
        else:
            if self.unique_id is not None and info.device_id != self.unique_id:
                errors["base"] = "wrong_device"
            else:
                return self._async_finish(info, token)
        return self.async_show_form(
            step_id=step_id,
            data_schema=CODE_SCHEMA,
            errors=errors,
            description_placeholders=placeholders,
        )

    def _async_finish(self, info: DeviceInfo, token: str) -> ConfigFlowResult:
        pairing = {
            CONF_HOST: self._host,
            CONF_PORT: self._port,
            CONF_DEVICE_ID: info.device_id,
            CONF_FINGERPRINT: self._fingerprint,
            CONF_TOKEN: token,
        }
        if self.source in (SOURCE_REAUTH, SOURCE_RECONFIGURE):
            entry = (
                self._get_reauth_entry()
                if self.source == SOURCE_REAUTH
                else self._get_reconfigure_entry()
            )
            async_delete_identity_issue(self.hass, info.device_id)
            return self.async_update_reload_and_abort(entry, data_updates=pairing)
        return self.async_create_entry(title=self._name or info.name, data=pairing)

    # Helpers -----------------------------------------------------------------

    def _client(self) -> DoorstepClient:
        return DoorstepClient(
            async_get_clientsession(self.hass),
            self._host,
            self._port,
            fingerprint=self._fingerprint or None,
        )

    async def _async_trust_on_first_use(self) -> DeviceInfo:
        """Learn the certificate the doorbell presents now, then ask who it is over it."""
        probe = DoorstepClient(async_get_clientsession(self.hass), self._host, self._port)
        self._fingerprint = await probe.fetch_fingerprint()
        return await self._client().get_info()

    def _abort_if_known_doorbell(self, fingerprint: str) -> None:
        """Follow a known doorbell to its new address only if it proves the same identity."""
        assert self.unique_id is not None
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, self.unique_id)
        if entry is None:
            return
        if entry.data[CONF_FINGERPRINT] == fingerprint:
            self._abort_if_unique_id_configured(
                updates={CONF_HOST: self._host, CONF_PORT: self._port}
            )
        async_create_identity_issue(self.hass, entry, fingerprint)
        raise AbortFlow("identity_changed")

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        """Doorbell options, or the sharing entry's requesters."""
        if config_entry.data.get(CONF_KIND) == KIND_SHARING:
            return RequestersOptionsFlow()
        return DoorstepOptionsFlow()


class DoorstepOptionsFlow(OptionsFlowWithReload):
    """Settings that change how a doorbell is watched, recorded and reported.

    Live view and recording read them at setup, so Home Assistant reloads the entry when
    they change.
    """

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the options form."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                networks = parse_home_networks(user_input.get(CONF_HOME_NETWORKS, ""))
            except ValueError:
                errors[CONF_HOME_NETWORKS] = "invalid_network"
            try:
                location = _location_option(user_input.get(CONF_LOCATION))
            except ValueError:
                errors[CONF_LOCATION] = "invalid_location"
            if not errors:
                return self.async_create_entry(
                    data={
                        CONF_RING_COOLDOWN: int(user_input[CONF_RING_COOLDOWN]),
                        CONF_ALLOW_REMOTE_LIVE_VIEW: user_input[CONF_ALLOW_REMOTE_LIVE_VIEW],
                        CONF_HOME_NETWORKS: networks,
                        CONF_RECORD_CLIPS: user_input[CONF_RECORD_CLIPS],
                        CONF_PRE_ROLL: int(user_input[CONF_PRE_ROLL]),
                        CONF_POST_ROLL: int(user_input[CONF_POST_ROLL]),
                        CONF_RECORD_CONTINUOUS: user_input[CONF_RECORD_CONTINUOUS],
                        CONF_SEGMENT_LENGTH: int(user_input[CONF_SEGMENT_LENGTH]),
                        CONF_RECORD_AUDIO: user_input.get(CONF_RECORD_AUDIO, False),
                        **location,
                    }
                )
        options = self.config_entry.options
        suggested = user_input or {
            CONF_RING_COOLDOWN: options.get(CONF_RING_COOLDOWN, DEFAULT_RING_COOLDOWN),
            CONF_ALLOW_REMOTE_LIVE_VIEW: options.get(CONF_ALLOW_REMOTE_LIVE_VIEW, False),
            CONF_HOME_NETWORKS: ", ".join(options.get(CONF_HOME_NETWORKS, [])),
            CONF_RECORD_CLIPS: options.get(CONF_RECORD_CLIPS, True),
            CONF_PRE_ROLL: options.get(CONF_PRE_ROLL, DEFAULT_PRE_ROLL),
            CONF_POST_ROLL: options.get(CONF_POST_ROLL, DEFAULT_POST_ROLL),
            CONF_RECORD_CONTINUOUS: options.get(CONF_RECORD_CONTINUOUS, False),
            CONF_SEGMENT_LENGTH: options.get(CONF_SEGMENT_LENGTH, DEFAULT_SEGMENT_LENGTH),
            CONF_RECORD_AUDIO: options.get(CONF_RECORD_AUDIO, False),
            **({CONF_LOCATION: options[CONF_LOCATION]} if CONF_LOCATION in options else {}),
        }
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(OPTIONS_SCHEMA, suggested),
            errors=errors,
        )


class RequestersOptionsFlow(OptionsFlow):
    """Who may ask for footage: requesters get a token, shown once, and can be revoked."""

    def __init__(self) -> None:
        """Nothing created yet."""
        self._created: tuple[str, str] | None = None
        # The feed being subscribed: URL, typed fingerprint, agency, signing fingerprint.
        self._feed: tuple[str, str, str, str] | None = None

    def _hub(self) -> SharingHub | None:
        hub = getattr(self.config_entry, "runtime_data", None)
        return hub if isinstance(hub, SharingHub) else None

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Add a requester, or revoke one."""
        if self._hub() is None:
            return self.async_abort(reason="sharing_unavailable")
        return self.async_show_menu(
            step_id="init",
            menu_options=[
                "add_requester",
                "revoke_requester",
                "subscribe_feed",
                "unsubscribe_feed",
                "feed_proxy",
                "hub_browsers",
            ],
        )

    async def async_step_add_requester(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Name and kind of who may ask."""
        hub = self._hub()
        if hub is None:
            return self.async_abort(reason="sharing_unavailable")
        if user_input is not None:
            name = user_input[CONF_REQUESTER_NAME].strip()
            if name:
                requester, token = hub.gate.create_requester(
                    name, RequesterKind(user_input[CONF_REQUESTER_KIND])
                )
                self._created = (requester.name, token)
                return await self.async_step_requester_token()
        return self.async_show_form(
            step_id="add_requester",
            data_schema=probatio.Schema(
                {
                    probatio.Required(CONF_REQUESTER_NAME): selector.TextSelector(),
                    probatio.Required(
                        CONF_REQUESTER_KIND, default=RequesterKind.POLICE.value
                    ): selector.SelectSelector(
                        selector.SelectSelectorConfig(
                            options=[kind.value for kind in RequesterKind],
                            translation_key="requester_kind",
                        )
                    ),
                }
            ),
            errors={"base": "name_required"} if user_input is not None else None,
        )

    async def async_step_requester_token(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the token once; it is stored only as a hash."""
        hub = self._hub()
        if user_input is not None or self._created is None or hub is None:
            return self.async_create_entry(data=dict(self.config_entry.options))
        name, token = self._created
        return self.async_show_form(
            step_id="requester_token",
            description_placeholders={
                "name": name,
                "token": token,
                "key_id": hub.key.key_id,
            },
        )

    async def async_step_revoke_requester(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Stop a requester from asking again (open requests stay as they are)."""
        hub = self._hub()
        if hub is None:
            return self.async_abort(reason="sharing_unavailable")
        active = {
            requester.id: f"{requester.name} ({requester.kind.value})"
            for requester in hub.gate.state.requesters.values()
            if not requester.revoked
        }
        if not active:
            return self.async_abort(reason="no_requesters")
        if user_input is not None:
            hub.gate.revoke_requester(user_input[CONF_REQUESTER_ID])
            return self.async_create_entry(data=dict(self.config_entry.options))
        return self.async_show_form(
            step_id="revoke_requester",
            data_schema=probatio.Schema(
                {
                    probatio.Required(CONF_REQUESTER_ID): selector.SelectSelector(
                        selector.SelectSelectorConfig(
                            options=[
                                selector.SelectOptionDict(value=key, label=label)
                                for key, label in active.items()
                            ]
                        )
                    )
                }
            ),
        )

    # -- area feeds (docs/feeds.md) ------------------------------------------------------

    async def async_step_subscribe_feed(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """An agency's feed URL and the key fingerprint it published elsewhere."""
        poller = self.hass.data.get(DATA_FEEDS)
        if self._hub() is None or poller is None:
            return self.async_abort(reason="sharing_unavailable")
        errors: dict[str, str] = {}
        placeholders = {"seen": "-"}
        if user_input is not None:
            url = str(user_input[CONF_FEED_URL]).strip()
            fingerprint = normalize_fingerprint(str(user_input[CONF_FEED_FINGERPRINT]))
            try:
                https_url(url)
            except probatio.Invalid:
                errors[CONF_FEED_URL] = "feed_url_invalid"
            if fingerprint is None:
                errors[CONF_FEED_FINGERPRINT] = "fingerprint_invalid"
            if url in subscriptions(self.config_entry.options):
                errors["base"] = "feed_already_subscribed"
            if not errors and fingerprint is not None:
                try:
                    body = await poller.async_probe(url)
                    offered = key_fingerprints(body)
                    if fingerprint not in offered:
                        # Show what the host offered, so a typo and a wrong feed differ.
                        placeholders["seen"] = display_fingerprint(offered[-1])
                        errors[CONF_FEED_FINGERPRINT] = "fingerprint_mismatch"
                    else:
                        feed = verify_feed(body, fingerprint, now=dt_util.utcnow())
                        self._feed = (url, fingerprint, feed.agency, feed.signer)
                        return await self.async_step_confirm_feed()
                except FeedRejected as err:
                    errors["base"] = f"feed_{err.reason}"
        return self.async_show_form(
            step_id="subscribe_feed",
            data_schema=self.add_suggested_values_to_schema(
                probatio.Schema(
                    {
                        probatio.Required(CONF_FEED_URL): selector.TextSelector(
                            selector.TextSelectorConfig(type=selector.TextSelectorType.URL)
                        ),
                        probatio.Required(CONF_FEED_FINGERPRINT): selector.TextSelector(),
                    }
                ),
                user_input or {},
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_confirm_feed(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the agency's name and the fingerprint the hub saw, as pairing does."""
        if self._feed is None:
            return self.async_abort(reason="sharing_unavailable")
        url, fingerprint, agency, signer = self._feed
        if user_input is not None:
            options = dict(self.config_entry.options)
            options[CONF_FEEDS] = [
                *options.get(CONF_FEEDS, []),
                {CONF_FEED_URL: url, CONF_FEED_FINGERPRINT: fingerprint},
            ]
            return self.async_create_entry(data=options)
        return self.async_show_form(
            step_id="confirm_feed",
            description_placeholders={
                "agency": agency,
                "url": url,
                "fingerprint": display_fingerprint(signer),
            },
        )

    async def async_step_unsubscribe_feed(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Stop polling a feed; its pending requests are withdrawn."""
        subscribed = subscriptions(self.config_entry.options)
        if not subscribed:
            return self.async_abort(reason="no_feeds")
        if user_input is not None:
            options = dict(self.config_entry.options)
            options[CONF_FEEDS] = [
                item
                for item in options.get(CONF_FEEDS, [])
                if item[CONF_FEED_URL] != user_input[CONF_FEED_URL]
            ]
            return self.async_create_entry(data=options)
        return self.async_show_form(
            step_id="unsubscribe_feed",
            data_schema=probatio.Schema(
                {
                    probatio.Required(CONF_FEED_URL): selector.SelectSelector(
                        selector.SelectSelectorConfig(options=list(subscribed))
                    )
                }
            ),
        )

    async def async_step_feed_proxy(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """An HTTP proxy for feed fetches, for households hiding their address."""
        errors: dict[str, str] = {}
        if user_input is not None:
            proxy = str(user_input.get(CONF_FEED_PROXY) or "").strip()
            parts = urlsplit(proxy) if proxy else None
            if parts is not None and (parts.scheme != "http" or not parts.hostname):
                errors[CONF_FEED_PROXY] = "proxy_invalid"
            else:
                options = dict(self.config_entry.options)
                options[CONF_FEED_PROXY] = proxy or None
                return self.async_create_entry(data=options)
        return self.async_show_form(
            step_id="feed_proxy",
            data_schema=self.add_suggested_values_to_schema(
                probatio.Schema({probatio.Optional(CONF_FEED_PROXY): selector.TextSelector()}),
                {CONF_FEED_PROXY: self.config_entry.options.get(CONF_FEED_PROXY) or ""},
            ),
            errors=errors,
        )

    async def async_step_hub_browsers(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Whether browsers on the hub itself (localhost) count as the home network."""
        if user_input is not None:
            options = dict(self.config_entry.options)
            options[CONF_HUB_BROWSERS_AT_HOME] = bool(user_input[CONF_HUB_BROWSERS_AT_HOME])
            return self.async_create_entry(data=options)
        return self.async_show_form(
            step_id="hub_browsers",
            data_schema=probatio.Schema(
                {
                    probatio.Required(
                        CONF_HUB_BROWSERS_AT_HOME,
                        default=bool(self.config_entry.options.get(CONF_HUB_BROWSERS_AT_HOME)),
                    ): selector.BooleanSelector()
                }
            ),
        )


def _seconds_selector(maximum: int, minimum: int = 1) -> selector.NumberSelector:
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=minimum,
            max=maximum,
            step=1,
            unit_of_measurement="s",
            mode=selector.NumberSelectorMode.BOX,
        )
    )


OPTIONS_SCHEMA = probatio.Schema(
    {
        probatio.Required(
            CONF_RING_COOLDOWN, default=DEFAULT_RING_COOLDOWN
        ): selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=0,
                max=MAX_RING_COOLDOWN,
                step=1,
                unit_of_measurement="s",
                mode=selector.NumberSelectorMode.BOX,
            )
        ),
        probatio.Required(CONF_ALLOW_REMOTE_LIVE_VIEW, default=False): selector.BooleanSelector(),
        probatio.Optional(CONF_HOME_NETWORKS, default=""): selector.TextSelector(
            selector.TextSelectorConfig(multiline=True)
        ),
        probatio.Required(CONF_RECORD_CLIPS, default=True): selector.BooleanSelector(),
        probatio.Required(CONF_PRE_ROLL, default=DEFAULT_PRE_ROLL): _seconds_selector(MAX_ROLL),
        probatio.Required(CONF_POST_ROLL, default=DEFAULT_POST_ROLL): _seconds_selector(MAX_ROLL),
        probatio.Required(CONF_RECORD_CONTINUOUS, default=False): selector.BooleanSelector(),
        probatio.Required(CONF_SEGMENT_LENGTH, default=DEFAULT_SEGMENT_LENGTH): _seconds_selector(
            MAX_SEGMENT_LENGTH, MIN_SEGMENT_LENGTH
        ),
        probatio.Optional(CONF_RECORD_AUDIO, default=False): selector.BooleanSelector(),
        probatio.Optional(CONF_LOCATION): selector.LocationSelector(
            selector.LocationSelectorConfig(radius=False)
        ),
    }
)


def _location_option(value: Any) -> dict[str, dict[str, float]]:
    """The doorbell's own place as options data: nothing when the form left it empty.

    Raises ValueError for a place that is not one (missing or out-of-range coordinates).
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("not a location")
    try:
        latitude, longitude = float(value["latitude"]), float(value["longitude"])
    except (KeyError, TypeError) as err:
        raise ValueError("not a location") from err
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValueError("coordinates out of range")
    return {CONF_LOCATION: {"latitude": latitude, "longitude": longitude}}


DOORBIRD_CREDENTIALS_SCHEMA = probatio.Schema(
    {
        probatio.Required(CONF_USERNAME): str,
        probatio.Required(CONF_PASSWORD): selector.TextSelector(
            selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
        ),
    }
)

DOORBIRD_RECONFIGURE_SCHEMA = _host_schema(port=DOORBIRD_HTTP_PORT).extend(
    DOORBIRD_CREDENTIALS_SCHEMA.schema
)

RTSP_SCHEMA = probatio.Schema(
    {
        probatio.Required(CONF_NAME, default=""): str,
        probatio.Required(CONF_URL): selector.TextSelector(
            selector.TextSelectorConfig(type=selector.TextSelectorType.URL)
        ),
        probatio.Optional(CONF_USERNAME, default=""): str,
        probatio.Optional(CONF_PASSWORD, default=""): selector.TextSelector(
            selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
        ),
    }
)


ONVIF_SCHEMA = _host_schema(port=DEFAULT_ONVIF_PORT).extend(DOORBIRD_CREDENTIALS_SCHEMA.schema)


async def _async_check_onvif(
    hass: HomeAssistant, user_input: Mapping[str, Any]
) -> tuple[DeviceIdentity | None, str]:
    """Who the ONVIF device the owner described is, or (None, the error key)."""
    host = user_input[CONF_HOST].strip()
    device = OnvifDoorbell(
        async_get_clientsession(hass),
        host,
        user_input[CONF_USERNAME].strip(),
        user_input[CONF_PASSWORD],
        port=user_input[CONF_PORT],
    )
    try:
        return await device.connect(), ""
    except InvalidAuth:
        return None, "invalid_auth"
    except ProtocolError as err:
        # Not ONVIF at all, or no usable answer to a standard call (a SOAP fault,
        # XML that does not parse, an answer far too large).
        _LOGGER.debug("ONVIF device at %s: %s", host, err)
        return None, "not_onvif"
    except DoorstepError as err:
        _LOGGER.debug("ONVIF device at %s: %s", host, err)
        return None, "cannot_connect"


# The same fields without the name: the entry keeps its title.
RTSP_RECONFIGURE_SCHEMA = probatio.Schema(
    {key: value for key, value in RTSP_SCHEMA.schema.items() if str(key) != CONF_NAME}
)


async def _async_check_rtsp_camera(
    user_input: Mapping[str, Any],
) -> tuple[tuple[str, str | None, str | None] | None, str, str]:
    """Check the camera the owner described: ((url, username, password), "", "") if it
    plays, else (None, the form field at fault, the error key)."""
    try:
        url, url_username, url_password = parse_rtsp_url(user_input[CONF_URL])
    except NotRtsp:
        return None, CONF_URL, "not_rtsp"
    # Credentials typed into their own fields win over ones pasted inside the URL.
    username = user_input.get(CONF_USERNAME, "").strip() or url_username
    password = user_input.get(CONF_PASSWORD, "") or url_password
    try:
        await check_rtsp(url)
    except NotRtsp:
        return None, CONF_URL, "not_rtsp"
    except NotTls:
        return None, CONF_URL, "rtsps_not_tls"
    except DoorstepError:
        return None, "base", "cannot_connect"
    try:
        await probe_stream(with_credentials(url, username, password), options=stream_options(url))
    except StreamRefused:
        return None, "base", "invalid_auth"
    except StreamNotFound:
        return None, CONF_URL, "stream_not_found"
    except NoVideo:
        return None, "base", "no_video"
    except NotAStream:
        return None, CONF_URL, "not_rtsp"
    except StreamError as err:
        _LOGGER.debug("RTSP camera check failed: %s", err)
        return None, "base", "cannot_connect"
    return (url, username, password), "", ""


def _instance_name(service_name: str) -> str:
    """'Front door._doorstep._tcp.local.' -> 'Front door'."""
    suffix = "." + SERVICE_TYPE
    return service_name.removesuffix(suffix) if service_name.endswith(suffix) else ""


def _clean_code(code: str) -> str:
    """People type codes with spaces or dashes, as the doorbell may group them."""
    return "".join(ch for ch in code if ch not in " -")

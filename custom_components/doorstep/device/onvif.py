"""ONVIF cameras and doorbells, added by host and credentials, as a :class:`Doorbell`.

Through ``onvif-zeep-async`` (the library Home Assistant core's ONVIF integration uses),
every call signed with a WS-Security UsernameToken digest. Tested only against Doorstep's
own emulator (``scripts/lab/onvif_emulator.py``), never against a real device.

- Identity from GetDeviceInformation, and the MAC address from GetNetworkInterfaces: the
  MAC is the device id (as for DoorBird), or, for a device that names none, a hash of its
  manufacturer, model and serial number.
- Live video: the first H.264 media profile's GetStreamUri (RTSP), opened by PyAV with the
  credentials inserted as for any RTSP camera. Snapshots: the profile's GetSnapshotUri,
  fetched with HTTP digest or basic auth, whichever the device asks for; a device without
  one gets the still from the live stream's last keyframe instead.
- Events: a pull-point subscription (CreatePullPointSubscription, then a PullMessages
  long poll, Renew before it lapses, Unsubscribe when the hub stops).

Which event topics mean what. Only these are mapped; every other topic is ignored:

- Motion, from the data item that carries the state:
  ``tns1:RuleEngine/CellMotionDetector/Motion`` (``IsMotion``), the ONVIF Profile S/T
  motion detector most cameras offer; ``tns1:VideoSource/MotionAlarm`` (``State``), the
  older video-source alarm many cameras still send instead;
  ``tns1:RuleEngine/MotionRegionDetector/Motion`` (``State``), ONVIF's region detector.
- The button, rung on the change to true: ``tns1:Device/Trigger/DigitalInput``
  (``LogicalState``), ONVIF's standard event for a device's digital input, which is how a
  door station wired to a push button reports it; and
  ``tns1:RuleEngine/MyRuleDetector/Visitor`` (``State``), the visitor (button) event
  Reolink's doorbells send, as Home Assistant core's ONVIF event parsers map it
  (unconfirmed on a real device).

A device whose GetEventProperties offers none of the button topics is a camera: it gets
no doorbell event entity. Person, vehicle, tamper and the like are deliberately not
motion: a ring-or-motion recording should not start on a tamper alarm.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
import hashlib
import logging
from typing import Any, Final

import aiohttp
from lxml import etree
from onvif import ONVIFCamera
from onvif.client import AsyncTransportProtocolErrorHandler
from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError
import zeep.exceptions

from .doorbird import normalize_mac
from .exceptions import CannotConnect, DoorstepError, InvalidAuth, ProtocolError
from .interface import Capabilities, DeviceIdentity, Doorbell, EventSink, StreamSpec
from .models import DoorbellEvent, EventType
from .rtsp import NotRtsp, parse_rtsp_url, stream_options, with_credentials

_LOGGER = logging.getLogger(__name__)

DRIVER_ONVIF: Final = "onvif"
KEY_HOST: Final = "host"
KEY_PORT: Final = "port"
KEY_USERNAME: Final = "username"
KEY_PASSWORD: Final = "password"  # noqa: S105 -- a key name, not a secret
KEY_NAME: Final = "name"

DEFAULT_ONVIF_PORT: Final = 80
# No SOAP answer the hub asks for comes near this; a device sending more is broken.
MAX_SOAP_BYTES: Final = 1024 * 1024
MAX_SNAPSHOT_BYTES: Final = 5 * 1024 * 1024
REQUEST_TIMEOUT: Final = 10.0
# PullMessages waits on the device this long for a message (a long poll).
PULL_TIMEOUT: Final = 10.0
# The subscription's lifetime, renewed when less than half of it is left.
SUBSCRIPTION_SECONDS: Final = 60
# How long to wait before subscribing again after the device went away.
RETRY_INTERVAL: Final = 10.0
UNSUBSCRIBE_TIMEOUT: Final = 3.0
# How often a device without events is asked whether it still answers.
CHECK_INTERVAL: Final = 30.0
_MESSAGE_LIMIT: Final = 50
_MAX_TEXT: Final = 64

_PULLPOINT_NAMESPACE: Final = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"
_TOPIC_ATTRIBUTE: Final = "{http://docs.oasis-open.org/wsn/t-1}topic"

# Topic (without its namespace prefix) -> the data item that holds the state.
MOTION_TOPICS: Final = {
    "RuleEngine/CellMotionDetector/Motion": "IsMotion",
    "VideoSource/MotionAlarm": "State",
    "RuleEngine/MotionRegionDetector/Motion": "State",
}
BUTTON_TOPICS: Final = {
    "Device/Trigger/DigitalInput": "LogicalState",
    "RuleEngine/MyRuleDetector/Visitor": "State",
}
_TRUE: Final = frozenset({"true", "1", "active", "on"})


class NotOnvif(ProtocolError):
    """What answers at the address is not an ONVIF device (or not a working one)."""


class AnswerTooLarge(ProtocolError):
    """The device sent a SOAP answer larger than any it should."""


def normalize_topic(topic: str) -> str:
    """``tns1:RuleEngine/CellMotionDetector/Motion//.`` -> ``RuleEngine/CellMotionDetector/Motion``.

    Devices differ in the prefix they bind to ONVIF's topic namespace, and some end
    topics with ``/`` or ``//.``.
    """
    topic = topic.strip().rstrip("/.")
    return "/".join(part.split(":", 1)[-1] for part in topic.split("/") if part)


def topic_paths(topic_set: Any) -> set[str]:
    """Every topic a GetEventProperties TopicSet offers, as normalized paths."""
    found: set[str] = set()

    def walk(element: Any, path: tuple[str, ...]) -> None:
        if not isinstance(element.tag, str):
            return
        name = etree.QName(element).localname
        if name == "MessageDescription":
            return
        here = (*path, name)
        if str(element.get(_TOPIC_ATTRIBUTE, "")).lower() == "true":
            found.add("/".join(here))
        for child in element:
            walk(child, here)

    for element in getattr(topic_set, "_value_1", None) or []:
        if isinstance(element, etree._Element):
            walk(element, ())
    return found


@dataclass(frozen=True, slots=True)
class Notification:
    """What one notification message says, as far as the hub cares."""

    topic: str
    source: tuple[tuple[str, str], ...]
    data: dict[str, str]
    initialized: bool


def parse_notification(message: Any) -> Notification | None:
    """The topic and items of one NotificationMessage, or None for one without them."""
    try:
        topic = normalize_topic(str(message.Topic._value_1))
        payload = message.Message._value_1
    except AttributeError:
        return None
    if isinstance(payload, etree._Element):
        # Parsed by zeep as plain XML (a device's own message type): read the items.
        source = _element_items(payload, "Source")
        data = _element_items(payload, "Data")
        operation = payload.get("PropertyOperation")
    else:
        source = _object_items(getattr(payload, "Source", None))
        data = _object_items(getattr(payload, "Data", None))
        operation = getattr(payload, "PropertyOperation", None)
    return Notification(
        topic=topic,
        source=tuple(sorted(source.items())),
        data=data,
        initialized=operation == "Initialized",
    )


def _object_items(items: Any) -> dict[str, str]:
    simple = getattr(items, "SimpleItem", None) or []
    return {
        str(item.Name): str(item.Value)
        for item in simple
        if getattr(item, "Name", None) is not None and getattr(item, "Value", None) is not None
    }


def _element_items(payload: Any, part: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for element in payload.iter():
        if not isinstance(element.tag, str) or etree.QName(element).localname != part:
            continue
        for item in element:
            if isinstance(item.tag, str) and etree.QName(item).localname == "SimpleItem":
                name, value = item.get("Name"), item.get("Value")
                if name is not None and value is not None:
                    found[name] = value
    return found


class _BoundedTransport(AsyncTransportProtocolErrorHandler):  # type: ignore[misc]
    """The library's transport, reading at most :data:`MAX_SOAP_BYTES` of an answer."""

    async def _post_internal(
        self, address: str, message: str | bytes, headers: dict[str, str]
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        headers = dict(headers or {})
        headers.setdefault("Content-Type", 'application/soap+xml; charset="utf-8"')
        data = message.encode() if isinstance(message, str) else message
        response = await self.session.post(
            address, data=data, headers=headers, timeout=self._client_timeout
        )
        try:
            if (response.content_length or 0) > MAX_SOAP_BYTES:
                raise AnswerTooLarge("the device's SOAP answer is too large")
            content = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                content += chunk
                if len(content) > MAX_SOAP_BYTES:
                    raise AnswerTooLarge("the device's SOAP answer is too large")
        except BaseException:
            response.close()
            raise
        return response, bytes(content)


class _Camera(ONVIFCamera):  # type: ignore[misc]
    """``ONVIFCamera`` whose services read at most :data:`MAX_SOAP_BYTES` of an answer."""

    async def create_onvif_service(
        self,
        name: str,
        port_type: str | None = None,
        read_timeout: int | None = None,
        write_timeout: int | None = None,
    ) -> Any:
        service = await super().create_onvif_service(
            name, port_type=port_type, read_timeout=read_timeout, write_timeout=write_timeout
        )
        if not isinstance(service.transport, _BoundedTransport):
            bounded = _BoundedTransport(session=service.transport.session, verify_ssl=False)
            service.transport = bounded
            service.zeep_client.transport = bounded
            service.zeep_client_authless.transport = bounded
        return service


def _fault_is_auth(err: zeep.exceptions.Fault) -> bool:
    codes = [str(err.code or "")] + [
        getattr(code, "localname", str(code)) for code in (err.subcodes or [])
    ]
    return any("NotAuthorized" in code or "FailedAuthentication" in code for code in codes)


async def _call[T](awaitable: Awaitable[T], *, within: float, what: str) -> T:
    """Await one library call, with its errors as the device room's."""
    try:
        async with asyncio.timeout(within):
            return await awaitable
    except DoorstepError:
        raise
    except zeep.exceptions.Fault as err:
        if _fault_is_auth(err):
            raise InvalidAuth("the device refused the username or password") from err
        raise ProtocolError(f"{what}: the device answered a SOAP fault: {err.message}") from err
    except zeep.exceptions.TransportError as err:
        if err.status_code == 401:
            raise InvalidAuth("the device refused the username or password") from err
        if err.status_code >= 500:
            raise CannotConnect(f"{what}: the device answered HTTP {err.status_code}") from err
        raise NotOnvif(f"{what}: HTTP {err.status_code}, not an ONVIF answer") from err
    except (zeep.exceptions.Error, etree.LxmlError) as err:
        raise NotOnvif(f"{what}: not a SOAP answer ({type(err).__name__})") from err
    except ONVIFAuthError as err:
        raise InvalidAuth("the device refused the username or password") from err
    except ONVIFTimeoutError as err:
        raise CannotConnect(f"{what}: the device did not answer in time") from err
    except ONVIFError as err:
        cause = err.__cause__
        if isinstance(cause, (aiohttp.ClientError, OSError, TimeoutError)):
            raise CannotConnect(f"{what}: {cause!r}") from err
        raise NotOnvif(f"{what}: {err}") from err
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        raise CannotConnect(f"{what}: the device cannot be reached: {err!r}") from err
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as err:
        # zeep hands back whatever the device sent; a shape the WSDL does not allow
        # surfaces as one of these.
        raise NotOnvif(f"{what}: an answer the ONVIF WSDL does not allow") from err


def _text(value: object) -> str:
    return str(value).strip()[:_MAX_TEXT] if value is not None else ""


@dataclass(frozen=True, slots=True)
class OnvifInfo:
    """What the hub learns from a device when it connects."""

    identity: DeviceIdentity
    stream_uri: str
    snapshot_uri: str | None
    capabilities: Capabilities
    # False for a device without an event service: the hub then only checks it answers.
    has_events: bool = True


class OnvifDoorbell(Doorbell):
    """An ONVIF camera or door station, with events from a pull-point subscription."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        username: str,
        password: str,
        *,
        port: int = DEFAULT_ONVIF_PORT,
        name: str | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        pull_timeout: float = PULL_TIMEOUT,
        subscription_seconds: int = SUBSCRIPTION_SECONDS,
        retry_interval: float = RETRY_INTERVAL,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        self._session = session
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._name = name
        self._request_timeout = request_timeout
        self._pull_timeout = pull_timeout
        self._subscription_seconds = subscription_seconds
        self._retry_interval = retry_interval
        self._check_interval = check_interval
        self._info: OnvifInfo | None = None
        self._seq = 0
        # What each motion source said last; motion is on while any says so.
        self._motion: dict[tuple[str, tuple[tuple[str, str], ...]], bool] = {}

    @classmethod
    def from_config(
        cls,
        session: aiohttp.ClientSession,
        config: Mapping[str, Any],
        *,
        hub_url: str | None = None,
    ) -> OnvifDoorbell:
        """The device a stored configuration describes."""
        return cls(
            session,
            config[KEY_HOST],
            config[KEY_USERNAME],
            config[KEY_PASSWORD],
            port=config.get(KEY_PORT, DEFAULT_ONVIF_PORT),
            name=config.get(KEY_NAME) or None,
        )

    @property
    def driver(self) -> str:
        """``onvif``."""
        return DRIVER_ONVIF

    @property
    def host(self) -> str:
        """The device's address."""
        return self._host

    @property
    def capabilities(self) -> Capabilities:
        """What GetEventProperties and GetSnapshotUri said (video only before :meth:`connect`)."""
        if self._info is None:
            return Capabilities(has_button=False, has_motion=False, has_snapshot=False)
        return self._info.capabilities

    @property
    def info(self) -> OnvifInfo | None:
        """What :meth:`connect` learnt."""
        return self._info

    @contextlib.asynccontextmanager
    async def _camera(self) -> AsyncIterator[Any]:
        """A library client for one conversation; its HTTP sessions close with it."""
        camera = _Camera(self._host, self._port, self._username, self._password, no_cache=True)
        try:
            yield camera
        finally:
            await camera.close()

    async def connect(self) -> DeviceIdentity:
        """Who the device is, where its video and snapshots are, which events it has."""
        async with self._camera() as camera:
            self._info = await self._discover(camera)
        return self._info.identity

    async def _discover(self, camera: Any) -> OnvifInfo:
        within = self._request_timeout
        await _call(camera.update_xaddrs(), within=within, what="GetServices")
        device = await _call(camera.create_devicemgmt_service(), within=within, what="device")
        info = await _call(device.GetDeviceInformation(), within=within, what="device information")
        manufacturer, model = (
            _text(getattr(info, "Manufacturer", None)),
            _text(getattr(info, "Model", None)),
        )
        firmware = _text(getattr(info, "FirmwareVersion", None))
        serial = _text(getattr(info, "SerialNumber", None))
        device_id = await self._mac(device) or _identity_hash(manufacturer, model, serial)
        media = await _call(camera.create_media_service(), within=within, what="media service")
        profiles = await _call(media.GetProfiles(), within=within, what="media profiles")
        token = _pick_profile(profiles)
        stream = await _call(
            media.GetStreamUri(
                {
                    "ProfileToken": token,
                    "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                }
            ),
            within=within,
            what="stream URI",
        )
        try:
            stream_uri, _, _ = parse_rtsp_url(str(stream.Uri))
        except (NotRtsp, AttributeError) as err:
            raise NotOnvif("the device's stream URI is not an rtsp:// URL") from err
        snapshot_uri = await self._snapshot_uri(media, token)
        topics = await self._topics(camera)
        has_events = topics is not None
        topics = topics or set()
        capabilities = Capabilities(
            has_button=any(topic in topics for topic in BUTTON_TOPICS),
            has_motion=any(topic in topics for topic in MOTION_TOPICS),
            has_snapshot=snapshot_uri is not None,
        )
        identity = DeviceIdentity(
            device_id=device_id,
            name=self._name or model or "ONVIF camera",
            model=model or "ONVIF camera",
            firmware=firmware or None,
            manufacturer=manufacturer or None,
        )
        return OnvifInfo(identity, stream_uri, snapshot_uri, capabilities, has_events)

    async def _mac(self, device: Any) -> str | None:
        """The first interface's MAC address (not all zeros); None when the device will not say."""
        try:
            interfaces = await _call(
                device.GetNetworkInterfaces(), within=self._request_timeout, what="interfaces"
            )
        except InvalidAuth:
            raise
        except ProtocolError:
            return None
        for interface in interfaces or []:
            mac = normalize_mac(getattr(getattr(interface, "Info", None), "HwAddress", None))
            if mac is not None and mac != "000000000000":
                return mac
        return None

    async def _snapshot_uri(self, media: Any, token: str) -> str | None:
        try:
            result = await _call(
                media.GetSnapshotUri({"ProfileToken": token}),
                within=self._request_timeout,
                what="snapshot URI",
            )
        except InvalidAuth:
            raise
        except ProtocolError as err:
            _LOGGER.debug("ONVIF device at %s has no snapshot URI: %s", self._host, err)
            return None
        uri = str(getattr(result, "Uri", "") or "")
        return uri if uri.lower().startswith(("http://", "https://")) else None

    async def _topics(self, camera: Any) -> set[str] | None:
        """The event topics the device offers; None when it has no event service."""
        try:
            events = await _call(
                camera.create_events_service(), within=self._request_timeout, what="events"
            )
        except NotOnvif as err:
            _LOGGER.debug("ONVIF device at %s has no event service: %s", self._host, err)
            return None
        properties = await _call(
            events.GetEventProperties(), within=self._request_timeout, what="event properties"
        )
        return topic_paths(getattr(properties, "TopicSet", None))

    def stream(self) -> StreamSpec:
        """The profile's RTSP stream with the credentials in it, over TCP."""
        if self._info is None:
            raise ProtocolError("the hub has not connected to the device yet")
        return StreamSpec(
            url=with_credentials(self._info.stream_uri, self._username, self._password),
            options=stream_options(self._info.stream_uri),
        )

    async def snapshot(self) -> bytes:
        """The profile's snapshot, with digest or basic auth as the device asks."""
        if self._info is None or self._info.snapshot_uri is None:
            raise ProtocolError("the device has no snapshot URI")
        uri = self._info.snapshot_uri
        status, body, challenge = await self._get_snapshot(uri)
        if status == 401:
            if challenge.lower().startswith("digest"):
                digest = aiohttp.DigestAuthMiddleware(self._username, self._password)
                status, body, _ = await self._get_snapshot(uri, middleware=digest)
            else:
                basic = aiohttp.encode_basic_auth(self._username, self._password)
                status, body, _ = await self._get_snapshot(uri, authorization=basic)
        if status == 401:
            raise InvalidAuth("the device refused the username or password for snapshots")
        if status != 200 or not body.startswith(b"\xff\xd8"):
            raise ProtocolError(f"the snapshot URI answered {status} without a JPEG")
        return body

    async def _get_snapshot(
        self,
        uri: str,
        *,
        authorization: str | None = None,
        middleware: aiohttp.DigestAuthMiddleware | None = None,
    ) -> tuple[int, bytes, str]:
        try:
            async with (
                asyncio.timeout(self._request_timeout),
                self._session.get(
                    uri,
                    headers={"Authorization": authorization} if authorization else None,
                    middlewares=(middleware,) if middleware is not None else (),
                    allow_redirects=False,
                ) as response,
            ):
                if (response.content_length or 0) > MAX_SNAPSHOT_BYTES:
                    raise ProtocolError("the snapshot is too large")
                body = await response.content.read(MAX_SNAPSHOT_BYTES + 1)
                while len(body) <= MAX_SNAPSHOT_BYTES and not response.content.at_eof():
                    body += await response.content.read(MAX_SNAPSHOT_BYTES + 1 - len(body))
                if len(body) > MAX_SNAPSHOT_BYTES:
                    raise ProtocolError("the snapshot is too large")
                return response.status, body, response.headers.get("WWW-Authenticate", "")
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise CannotConnect(f"fetching the snapshot from {self._host} failed: {err!r}") from err

    # Events -----------------------------------------------------------------------

    async def run_events(self, sink: EventSink) -> None:
        """Subscribe to a pull point and pull from it until cancelled; resubscribe after
        the device comes back. A device without an event service is only checked to
        answer."""
        connected: bool | None = None
        has_events = self._info is None or self._info.has_events
        while True:
            try:
                async with self._camera() as camera:
                    pullpoint: Any = None
                    manager: Any = None
                    if has_events:
                        pullpoint, manager = await self._subscribe(camera)
                    else:
                        await self._check(camera)
                    try:
                        if connected is not True:
                            connected = True
                            sink.handle_connection_change(True)
                            self._motion.clear()
                            # Nothing says whether motion is on now; it starts off.
                            self._deliver(sink, EventType.HELLO, motion=False)
                        if manager is not None:
                            await self._pull(pullpoint, manager, sink)
                        else:
                            await self._keep_checking(camera)
                    finally:
                        if manager is not None:
                            await self._unsubscribe(manager)
            except InvalidAuth:
                sink.handle_auth_failed()
                return
            except DoorstepError as err:
                _LOGGER.debug("ONVIF device at %s: %s", self._host, err)
            if connected is not False:
                connected = False
                sink.handle_connection_change(False)
            await asyncio.sleep(self._retry_interval)

    async def _check(self, camera: Any) -> None:
        """The device answers (GetServices, signed, so the credentials still work)."""
        await _call(camera.update_xaddrs(), within=self._request_timeout, what="GetServices")

    async def _keep_checking(self, camera: Any) -> None:
        """:meth:`_check` every ``check_interval`` until it fails."""
        while True:
            await asyncio.sleep(self._check_interval)
            await self._check(camera)

    async def _subscribe(self, camera: Any) -> tuple[Any, Any]:
        """A new pull point: the service to pull from, and its subscription manager."""
        within = self._request_timeout
        await _call(camera.update_xaddrs(), within=within, what="GetServices")
        events = await _call(camera.create_events_service(), within=within, what="events")
        lifetime = f"PT{self._subscription_seconds}S"
        result = await _call(
            events.CreatePullPointSubscription({"InitialTerminationTime": lifetime}),
            within=within,
            what="CreatePullPointSubscription",
        )
        try:
            address = str(result.SubscriptionReference.Address._value_1)
        except AttributeError as err:
            raise NotOnvif("the pull point has no address") from err
        if not address.lower().startswith(("http://", "https://")):
            raise NotOnvif("the pull point's address is not an HTTP URL")
        camera.xaddrs[_PULLPOINT_NAMESPACE] = address
        pullpoint = await _call(
            camera.create_pullpoint_service(), within=within, what="pull-point service"
        )
        manager = await _call(
            camera.create_subscription_service("PullPointSubscription"),
            within=within,
            what="subscription manager",
        )
        return pullpoint, manager

    async def _pull(self, pullpoint: Any, manager: Any, sink: EventSink) -> None:
        """PullMessages until something fails; Renew when half the lifetime is gone."""
        renew_at = asyncio.get_running_loop().time() + self._subscription_seconds / 2
        while True:
            answer = await _call(
                pullpoint.PullMessages(
                    {"Timeout": f"PT{self._pull_timeout:g}S", "MessageLimit": _MESSAGE_LIMIT}
                ),
                within=self._pull_timeout + self._request_timeout,
                what="PullMessages",
            )
            for message in getattr(answer, "NotificationMessage", None) or []:
                notification = parse_notification(message)
                if notification is not None:
                    self._handle(sink, notification)
            if asyncio.get_running_loop().time() >= renew_at:
                await _call(
                    manager.Renew(f"PT{self._subscription_seconds}S"),
                    within=self._request_timeout,
                    what="Renew",
                )
                renew_at = asyncio.get_running_loop().time() + self._subscription_seconds / 2

    async def _unsubscribe(self, manager: Any) -> None:
        """Tell the device the hub is gone; a device that has gone itself cannot hear it."""
        try:
            await _call(manager.Unsubscribe(), within=UNSUBSCRIBE_TIMEOUT, what="Unsubscribe")
        except DoorstepError as err:
            _LOGGER.debug("ONVIF device at %s: %s", self._host, err)

    def _handle(self, sink: EventSink, notification: Notification) -> None:
        if (item := BUTTON_TOPICS.get(notification.topic)) is not None:
            value = notification.data.get(item, "")
            # A rising edge rings; the state a new subscription starts with does not.
            if value.lower() in _TRUE and not notification.initialized:
                self._deliver(sink, EventType.RING)
        elif (item := MOTION_TOPICS.get(notification.topic)) is not None:
            if item not in notification.data:
                return
            before = any(self._motion.values())
            key = (notification.topic, notification.source)
            self._motion[key] = notification.data[item].lower() in _TRUE
            now = any(self._motion.values())
            if now != before:
                self._deliver(
                    sink, EventType.MOTION_START if now else EventType.MOTION_STOP, motion=now
                )

    def _deliver(self, sink: EventSink, event_type: EventType, motion: bool | None = None) -> None:
        self._seq += 1
        sink.handle_event(DoorbellEvent(event_type, self._seq, datetime.now(UTC), motion))


def _pick_profile(profiles: Any) -> str:
    """The first H.264 profile's token (the hub relays H.264), else the first profile's."""
    tokens: list[tuple[str, str]] = []
    for profile in profiles or []:
        token = getattr(profile, "token", None)
        if token:
            encoder = getattr(profile, "VideoEncoderConfiguration", None)
            tokens.append((str(token), str(getattr(encoder, "Encoding", "") or "")))
    if not tokens:
        raise NotOnvif("the device has no media profile")
    return next((token for token, encoding in tokens if encoding == "H264"), tokens[0][0])


def _identity_hash(manufacturer: str, model: str, serial: str) -> str:
    if not serial:
        raise NotOnvif("the device names neither a MAC address nor a serial number")
    key = f"{manufacturer}\n{model}\n{serial}".encode()
    return "onvif-" + hashlib.sha256(key).hexdigest()[:16]

"""An ONVIF device emulator: the device, media and event service calls Doorstep makes.

Written from the ONVIF Core, Media and Event specifications and their WSDLs (as bundled
with ``onvif-zeep-async``); it has never been compared with a real ONVIF camera. One SOAP
1.2 endpoint per service, each call behind WS-Security UsernameToken digest auth, checked
for real (``Base64(SHA-1(nonce + created + password))``):

- device service (``/onvif/device_service``): GetDeviceInformation, GetServices,
  GetCapabilities, GetNetworkInterfaces (the MAC address), GetSystemDateAndTime (the one
  call a device answers without auth);
- media service (``/onvif/media_service``): GetProfiles, GetStreamUri, GetSnapshotUri;
- event service (``/onvif/event_service``): GetEventProperties,
  CreatePullPointSubscription; each subscription at ``/onvif/subscription/<id>``
  answers PullMessages (a long poll), Renew and Unsubscribe.

Snapshots are a JPEG at ``/onvif/snapshot.jpg`` behind HTTP digest auth (RFC 7616 with
MD5 and ``qop=auth``, as cameras commonly ask), or basic auth with
``snapshot_auth="basic"``. Live video is a
real RTSP server (``scripts/lab/rtsp_camera.py``, GStreamer) that the caller runs at
``rtsp_port`` / ``rtsp_path`` with the same credentials.

:meth:`OnvifEmulator.press_button` and :meth:`OnvifEmulator.set_motion` do what a device
does on an event: queue a notification on every live pull-point subscription. The
button is a digital input (``tns1:Device/Trigger/DigitalInput``, true then false), or
with ``button_topic="visitor"`` the visitor event Reolink's doorbells send
(``tns1:RuleEngine/MyRuleDetector/Visitor``); motion is the cell motion detector
(``tns1:RuleEngine/CellMotionDetector/Motion``). With
``button=False`` the device is a camera whose event properties offer no button topic.

For tests it can misbehave on every SOAP call (``misbehave``): answer a SOAP fault, XML
that does not parse, or an answer far larger than any real one.

Run as a lab device (``python -m scripts.lab.onvif_emulator --help``), it also starts
the RTSP server and offers ``POST /lab/ring`` and ``POST /lab/motion?on=1|0``, without
auth, which no real device has.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import hashlib
import hmac
import itertools
import logging
from pathlib import Path
import re
import secrets
from typing import Any, Final
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web
import isodate
from lxml import etree
import numpy as np

from reference_doorbell.encoding import encode_jpeg

_LOGGER = logging.getLogger(__name__)

_MAX_BODY: Final = 64 * 1024
# How long a subscription lives without Renew, and the longest PullMessages wait.
SUBSCRIPTION_SECONDS: Final = 60
_MAX_PULL_WAIT: Final = 60.0
# Keeping the last few unpulled messages is all a device does; older ones are lost.
_QUEUE_LIMIT: Final = 100
# How far a UsernameToken's Created may be from the device's clock.
_CLOCK_SKEW: Final = timedelta(minutes=5)
MISBEHAVIOURS: Final = ("fault", "malformed", "oversized")

NS: Final = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wstop": "http://docs.oasis-open.org/wsn/t-1",
    "tns1": "http://www.onvif.org/ver10/topics",
    "ter": "http://www.onvif.org/ver10/error",
}
_ENVELOPE_NS: Final = " ".join(f"xmlns:{prefix}={quoteattr(uri)}" for prefix, uri in NS.items())
# Requests are parsed without entities, DTDs or network access, and never huge.
_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False
)

_PROFILE: Final = "main"


@dataclass(frozen=True)
class EventTopic:
    """One event the device sends: its topic, the item naming its source, the state item."""

    path: str
    source_name: str
    source: str
    data_name: str

    def description(self) -> str:
        """The topic's MessageDescription in GetEventProperties."""
        return (
            '<tt:MessageDescription IsProperty="true"><tt:Source><tt:SimpleItemDescription '
            f'Name="{self.source_name}" Type="tt:ReferenceToken"/></tt:Source><tt:Data>'
            f'<tt:SimpleItemDescription Name="{self.data_name}" Type="xs:boolean"/>'
            "</tt:Data></tt:MessageDescription>"
        )


# The button as a digital input (ONVIF's own event), or as Reolink doorbells' visitor event.
BUTTON_TOPICS: Final = {
    "digital-input": EventTopic(
        "tns1:Device/Trigger/DigitalInput", "InputToken", "DigitalInput_0", "LogicalState"
    ),
    "visitor": EventTopic(
        "tns1:RuleEngine/MyRuleDetector/Visitor", "VideoSourceConfigurationToken", "000", "State"
    ),
}
MOTION_TOPIC: Final = EventTopic(
    "tns1:RuleEngine/CellMotionDetector/Motion", "VideoSourceConfigurationToken", "vsc", "IsMotion"
)


def topic_set(topics: list[EventTopic]) -> str:
    """The wstop:TopicSet content offering ``topics``: one element per path level, shared
    prefixes merged (the root level in the tns1 namespace, the rest unqualified)."""
    tree: dict[str, Any] = {}
    for topic in topics:
        node = tree
        for part in topic.path.split("/"):
            node = node.setdefault(part, {})
        node[""] = topic

    def render(node: dict[str, Any]) -> str:
        out = []
        for name, child in node.items():
            if name == "":
                continue
            leaf = child.get("")
            mark = ' wstop:topic="true"' if leaf is not None else ""
            inner = (leaf.description() if leaf is not None else "") + render(child)
            out.append(f"<{name}{mark}>{inner}</{name}>")
        return "".join(out)

    return render(tree)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _envelope(body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<s:Envelope {_ENVELOPE_NS}><s:Body>{body}</s:Body></s:Envelope>"
    )


def _fault(subcode: str, reason: str, *, receiver: bool = False) -> web.Response:
    code = "s:Receiver" if receiver else "s:Sender"
    body = (
        f"<s:Fault><s:Code><s:Value>{code}</s:Value><s:Subcode><s:Value>{subcode}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">{escape(reason)}</s:Text>'
        "</s:Reason></s:Fault>"
    )
    return _soap(body, status=500 if receiver else 400)


def _soap(body: str, *, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=_envelope(body).encode(),
        content_type="application/soap+xml",
        charset="utf-8",
    )


_REALM: Final = "onvif-emulator"
# key=value or key="value" pairs of an Authorization: Digest header.
_DIGEST_FIELD: Final = re.compile(r'(\w+)=("[^"]*"|[^,\s]+)')


def _md5(text: str) -> str:
    # MD5 because the digest scheme the client chose (and cameras offer) says so.
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """WS-Security UsernameToken profile: Base64(SHA-1(nonce + created + password))."""
    # SHA-1 because the UsernameToken profile says so.
    digest = hashlib.sha1(nonce + created.encode() + password.encode()).digest()  # noqa: S324
    return base64.b64encode(digest).decode()


@dataclass
class _Subscription:
    """One pull point: its queue of notifications and when it ends without Renew."""

    terminates: datetime
    queue: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(kw_only=True)
class OnvifEmulator:
    """One emulated device; :meth:`start` it, then read :attr:`port`."""

    username: str
    password: str
    host: str = "127.0.0.1"
    port: int = 0
    rtsp_port: int = 554
    rtsp_path: str = "/door"
    manufacturer: str = "Doorstep Lab"
    model: str = "ONVIF Door Station"
    firmware: str = "2.4.1"
    serial: str = "DSL-000042"
    mac: str = "02:00:5e:10:20:30"
    # A doorbell has a button; without it the device is a camera.
    button: bool = True
    # Which event the button sends (a key of BUTTON_TOPICS).
    button_topic: str = "digital-input"
    # Answer every SOAP call this way instead: "fault", "malformed" or "oversized".
    misbehave: str | None = None
    snapshot: bool = True
    # Older devices answer only GetCapabilities, not GetServices.
    get_services: bool = True
    # Without an event service the device is a camera the hub can only watch.
    events: bool = True
    # How the snapshot URI checks the credentials: "digest" or "basic".
    snapshot_auth: str = "digest"
    # What happened, for tests to check.
    renewals: int = 0
    renewed: asyncio.Event = field(default_factory=asyncio.Event)
    unsubscribed: list[str] = field(default_factory=list)
    auth_failures: int = 0
    _subscriptions: dict[str, _Subscription] = field(default_factory=dict, repr=False)
    _ids: itertools.count[int] = field(default_factory=itertools.count, repr=False)
    _runner: web.AppRunner | None = field(default=None, repr=False)
    _jpeg: bytes = field(default=b"", repr=False)
    _nonces: set[str] = field(default_factory=set, repr=False)
    _motion: bool = field(default=False, repr=False)

    async def start(self) -> None:
        """Listen on ``host``:``port`` (0 picks a free port)."""
        if self.misbehave is not None and self.misbehave not in MISBEHAVIOURS:
            raise ValueError(f"misbehave must be one of {MISBEHAVIOURS}")
        if self.button_topic not in BUTTON_TOPICS:
            raise ValueError(f"button_topic must be one of {sorted(BUTTON_TOPICS)}")
        self._jpeg = encode_jpeg(np.full((240, 320, 3), 120, dtype=np.uint8))
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_post("/onvif/device_service", self._device_service)
        app.router.add_post("/onvif/media_service", self._media_service)
        app.router.add_post("/onvif/event_service", self._event_service)
        app.router.add_post("/onvif/subscription/{id}", self._subscription_service)
        app.router.add_get("/onvif/snapshot.jpg", self._snapshot)
        app.router.add_post("/lab/ring", self._lab_ring)
        app.router.add_post("/lab/motion", self._lab_motion)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving; every subscription ends."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._subscriptions.clear()

    @property
    def subscriptions(self) -> list[str]:
        """Ids of the pull points alive now."""
        self._expire()
        return sorted(self._subscriptions)

    def press_button(self) -> int:
        """Someone pressed (and released) the button; returns how many pull points heard."""
        if not self.button:
            return 0
        topic = BUTTON_TOPICS[self.button_topic]
        self._notify(topic, "true")
        return self._notify(topic, "false")

    def set_motion(self, on: bool) -> int:
        """The motion detector changed state; returns how many pull points heard."""
        return self._notify(MOTION_TOPIC, "true" if on else "false")

    def _notify(self, topic: EventTopic, value: str) -> int:
        self._expire()
        if topic == MOTION_TOPIC:
            self._motion = value == "true"
        message = _message(topic, value, "Changed")
        for subscription in self._subscriptions.values():
            subscription.queue.append(message)
            del subscription.queue[:-_QUEUE_LIMIT]
            subscription.arrived.set()
        return len(self._subscriptions)

    def _expire(self) -> None:
        now = _now()
        for sub_id in [k for k, sub in self._subscriptions.items() if sub.terminates <= now]:
            del self._subscriptions[sub_id]

    # SOAP plumbing ---------------------------------------------------------------

    async def _parse(self, request: web.Request) -> tuple[str, etree._Element] | web.Response:
        """The operation's name and element, or the fault to answer instead."""
        try:
            root = etree.fromstring(await request.read(), _PARSER)
        except etree.XMLSyntaxError:
            return _fault("ter:WellFormed", "The request is not well-formed XML")
        body = root.find("s:Body", NS)
        if root.tag != f"{{{NS['s']}}}Envelope" or body is None or len(body) == 0:
            return _fault("ter:WellFormed", "The request is not a SOAP 1.2 envelope")
        operation = body[0]
        name = etree.QName(operation).localname
        if name != "GetSystemDateAndTime" and not self._authorized(root):
            self.auth_failures += 1
            return _fault("ter:NotAuthorized", "Sender not Authorized")
        if self.misbehave == "fault":
            return _fault("ter:Action", "The device failed to do that", receiver=True)
        if self.misbehave == "malformed":
            return web.Response(
                body=b"<s:Envelope><s:Body><oops", content_type="application/soap+xml"
            )
        if self.misbehave == "oversized":
            filler = "<!-- " + "x" * (16 * 1024 * 1024) + " -->"
            return web.Response(
                body=_envelope(filler).encode(), content_type="application/soap+xml"
            )
        return name, operation

    def _authorized(self, root: etree._Element) -> bool:
        token = root.find("s:Header/wsse:Security/wsse:UsernameToken", NS)
        if token is None:
            return False
        username = token.findtext("wsse:Username", namespaces=NS)
        password = token.find("wsse:Password", NS)
        nonce_text = token.findtext("wsse:Nonce", namespaces=NS)
        created = token.findtext("wsu:Created", namespaces=NS)
        if username is None or password is None or nonce_text is None or created is None:
            return False
        if not str(password.get("Type", "")).endswith("#PasswordDigest"):
            return False
        try:
            nonce = base64.b64decode(nonce_text, validate=True)
            when = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            return False
        if when.tzinfo is None or abs(datetime.now(UTC) - when) > _CLOCK_SKEW:
            return False
        expected = password_digest(nonce, created, self.password)
        return hmac.compare_digest(username, self.username) and hmac.compare_digest(
            (password.text or "").strip(), expected
        )

    def _base(self, request: web.Request) -> str:
        return f"http://{request.host}"

    # Device service ---------------------------------------------------------------

    async def _device_service(self, request: web.Request) -> web.Response:
        parsed = await self._parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        name, _operation = parsed
        base = self._base(request)
        if name == "GetSystemDateAndTime":
            now = _now()
            return _soap(
                "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
                "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false"
                "</tt:DaylightSavings><tt:UTCDateTime>"
                f"<tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
                f"<tt:Second>{now.second}</tt:Second></tt:Time>"
                f"<tt:Date><tt:Year>{now.year}</tt:Year><tt:Month>{now.month}</tt:Month>"
                f"<tt:Day>{now.day}</tt:Day></tt:Date></tt:UTCDateTime>"
                "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
            )
        if name == "GetDeviceInformation":
            return _soap(
                "<tds:GetDeviceInformationResponse>"
                f"<tds:Manufacturer>{escape(self.manufacturer)}</tds:Manufacturer>"
                f"<tds:Model>{escape(self.model)}</tds:Model>"
                f"<tds:FirmwareVersion>{escape(self.firmware)}</tds:FirmwareVersion>"
                f"<tds:SerialNumber>{escape(self.serial)}</tds:SerialNumber>"
                "<tds:HardwareId>1.0</tds:HardwareId>"
                "</tds:GetDeviceInformationResponse>"
            )
        if name == "GetServices" and self.get_services:
            services = "".join(
                f"<tds:Service><tds:Namespace>{NS[prefix]}</tds:Namespace>"
                f"<tds:XAddr>{base}/onvif/{path}</tds:XAddr>"
                "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version>"
                "</tds:Service>"
                for prefix, path in (
                    ("tds", "device_service"),
                    ("trt", "media_service"),
                    ("tev", "event_service"),
                )
                if prefix != "tev" or self.events
            )
            return _soap(f"<tds:GetServicesResponse>{services}</tds:GetServicesResponse>")
        if name == "GetCapabilities":
            events = (
                f"<tt:Events><tt:XAddr>{base}/onvif/event_service</tt:XAddr>"
                "<tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>"
                "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
                "<tt:WSPausableSubscriptionManagerInterfaceSupport>false"
                "</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>"
                if self.events
                else ""
            )
            return _soap(
                "<tds:GetCapabilitiesResponse><tds:Capabilities>"
                f"<tt:Device><tt:XAddr>{base}/onvif/device_service</tt:XAddr></tt:Device>"
                f"{events}<tt:Media><tt:XAddr>{base}/onvif/media_service</tt:XAddr>"
                "<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>"
                "<tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>"
                "</tt:StreamingCapabilities></tt:Media>"
                "</tds:Capabilities></tds:GetCapabilitiesResponse>"
            )
        if name == "GetNetworkInterfaces":
            return _soap(
                '<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0">'
                "<tt:Enabled>true</tt:Enabled><tt:Info><tt:Name>eth0</tt:Name>"
                f"<tt:HwAddress>{escape(self.mac)}</tt:HwAddress><tt:MTU>1500</tt:MTU>"
                "</tt:Info></tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>"
            )
        return _fault("ter:ActionNotSupported", f"{name} is not supported")

    # Media service ----------------------------------------------------------------

    async def _media_service(self, request: web.Request) -> web.Response:
        parsed = await self._parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        name, operation = parsed
        if name == "GetProfiles":
            return _soap(
                '<trt:GetProfilesResponse><trt:Profiles token="main" fixed="true">'
                "<tt:Name>main</tt:Name>"
                '<tt:VideoEncoderConfiguration token="venc0"><tt:Name>venc0</tt:Name>'
                "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
                "<tt:Resolution><tt:Width>320</tt:Width><tt:Height>240</tt:Height>"
                "</tt:Resolution><tt:Quality>5</tt:Quality>"
                "<tt:SessionTimeout>PT60S</tt:SessionTimeout>"
                "</tt:VideoEncoderConfiguration></trt:Profiles></trt:GetProfilesResponse>"
            )
        token = operation.findtext("trt:ProfileToken", namespaces=NS)
        if name in ("GetStreamUri", "GetSnapshotUri") and token != _PROFILE:
            return _fault("ter:NoProfile", "No such profile")
        if name == "GetStreamUri":
            host = (
                request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
            )
            uri = f"rtsp://{host}:{self.rtsp_port}{self.rtsp_path}"
            return _soap(f"<trt:GetStreamUriResponse>{_media_uri(uri)}</trt:GetStreamUriResponse>")
        if name == "GetSnapshotUri":
            if not self.snapshot:
                return _fault("ter:ActionNotSupported", "No snapshots", receiver=True)
            uri = f"{self._base(request)}/onvif/snapshot.jpg"
            return _soap(
                f"<trt:GetSnapshotUriResponse>{_media_uri(uri)}</trt:GetSnapshotUriResponse>"
            )
        return _fault("ter:ActionNotSupported", f"{name} is not supported")

    async def _snapshot(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if self.snapshot_auth == "basic":
            expected = (
                "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            )
            if hmac.compare_digest(header, expected):
                return web.Response(body=self._jpeg, content_type="image/jpeg")
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="onvif"'})
        if self._digest_ok(request.method, header):
            return web.Response(body=self._jpeg, content_type="image/jpeg")
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        challenge = f'Digest realm="{_REALM}", qop="auth", algorithm=MD5, nonce="{nonce}"'
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})

    def _digest_ok(self, method: str, header: str) -> bool:
        """RFC 7616 digest with MD5 and qop=auth, against a nonce this device handed out."""
        if not header.startswith("Digest "):
            return False
        fields = dict(_DIGEST_FIELD.findall(header[len("Digest ") :]))
        fields = {key: value.strip('"') for key, value in fields.items()}
        needed = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if any(key not in fields for key in needed) or fields["nonce"] not in self._nonces:
            return False
        if fields["realm"] != _REALM or fields["qop"] != "auth":
            return False
        ha1 = _md5(f"{self.username}:{_REALM}:{self.password}")
        ha2 = _md5(f"{method}:{fields['uri']}")
        expected = _md5(f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:auth:{ha2}")
        return hmac.compare_digest(fields["username"], self.username) and hmac.compare_digest(
            fields["response"], expected
        )

    # Event service ----------------------------------------------------------------

    async def _event_service(self, request: web.Request) -> web.Response:
        parsed = await self._parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        name, operation = parsed
        if name == "GetEventProperties":
            offered = [MOTION_TOPIC]
            if self.button:
                offered.append(BUTTON_TOPICS[self.button_topic])
            return _soap(
                "<tev:GetEventPropertiesResponse>"
                "<tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/"
                "topicns.xml</tev:TopicNamespaceLocation>"
                "<wsnt:FixedTopicSet>true</wsnt:FixedTopicSet>"
                f"<wstop:TopicSet>{topic_set(offered)}</wstop:TopicSet>"
                "<wsnt:TopicExpressionDialect>http://www.onvif.org/ver10/tev/topicExpression/"
                "ConcreteSet</wsnt:TopicExpressionDialect>"
                "<tev:MessageContentFilterDialect>http://www.onvif.org/ver10/tev/"
                "messageContentFilter/ItemFilter</tev:MessageContentFilterDialect>"
                "<tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/"
                "onvif.xsd</tev:MessageContentSchemaLocation>"
                "</tev:GetEventPropertiesResponse>"
            )
        if name == "CreatePullPointSubscription":
            lifetime = _duration(
                operation.findtext("tev:InitialTerminationTime", namespaces=NS),
                default=SUBSCRIPTION_SECONDS,
            )
            sub_id = str(next(self._ids))
            now = _now()
            # As the Event specification asks of properties: a new subscription first
            # hears each one's current state.
            initial = [_message(MOTION_TOPIC, "true" if self._motion else "false", "Initialized")]
            if self.button:
                initial.append(_message(BUTTON_TOPICS[self.button_topic], "false", "Initialized"))
            self._subscriptions[sub_id] = _Subscription(terminates=now + lifetime, queue=initial)
            return _soap(
                "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
                f"<wsa:Address>{self._base(request)}/onvif/subscription/{sub_id}</wsa:Address>"
                f"</tev:SubscriptionReference><wsnt:CurrentTime>{_iso(now)}</wsnt:CurrentTime>"
                f"<wsnt:TerminationTime>{_iso(now + lifetime)}</wsnt:TerminationTime>"
                "</tev:CreatePullPointSubscriptionResponse>"
            )
        return _fault("ter:ActionNotSupported", f"{name} is not supported")

    async def _subscription_service(self, request: web.Request) -> web.Response:
        parsed = await self._parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        name, operation = parsed
        self._expire()
        sub_id = request.match_info["id"]
        subscription = self._subscriptions.get(sub_id)
        if subscription is None:
            return _fault("wsrf-rw:ResourceUnknownFault", "No such subscription")
        now = _now()
        if name == "PullMessages":
            wait = _duration(operation.findtext("tev:Timeout", namespaces=NS), default=10)
            if not subscription.queue:
                subscription.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(wait.total_seconds(), _MAX_PULL_WAIT)):
                        await subscription.arrived.wait()
            limit = _int(operation.findtext("tev:MessageLimit", namespaces=NS), default=100)
            messages, subscription.queue[:limit] = subscription.queue[:limit], []
            return _soap(
                f"<tev:PullMessagesResponse><tev:CurrentTime>{_iso(_now())}</tev:CurrentTime>"
                f"<tev:TerminationTime>{_iso(subscription.terminates)}</tev:TerminationTime>"
                f"{''.join(messages)}</tev:PullMessagesResponse>"
            )
        if name == "Renew":
            lifetime = _duration(
                operation.findtext("wsnt:TerminationTime", namespaces=NS),
                default=SUBSCRIPTION_SECONDS,
            )
            subscription.terminates = now + lifetime
            self.renewals += 1
            self.renewed.set()
            return _soap(
                f"<wsnt:RenewResponse><wsnt:TerminationTime>{_iso(subscription.terminates)}"
                f"</wsnt:TerminationTime><wsnt:CurrentTime>{_iso(now)}</wsnt:CurrentTime>"
                "</wsnt:RenewResponse>"
            )
        if name == "Unsubscribe":
            del self._subscriptions[sub_id]
            self.unsubscribed.append(sub_id)
            return _soap("<wsnt:UnsubscribeResponse/>")
        return _fault("ter:ActionNotSupported", f"{name} is not supported")

    async def _lab_ring(self, _request: web.Request) -> web.Response:
        return web.json_response({"heard": self.press_button()})

    async def _lab_motion(self, request: web.Request) -> web.Response:
        return web.json_response({"heard": self.set_motion(request.query.get("on", "1") != "0")})


def _message(topic: EventTopic, value: str, operation: str) -> str:
    """One NotificationMessage: ``Initialized`` for the state a new subscription starts
    with, ``Changed`` for a change."""
    return (
        "<wsnt:NotificationMessage>"
        '<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">'
        f"{topic.path}</wsnt:Topic><wsnt:Message>"
        f'<tt:Message UtcTime="{_iso(_now())}" PropertyOperation="{operation}">'
        f"<tt:Source><tt:SimpleItem Name={quoteattr(topic.source_name)} "
        f"Value={quoteattr(topic.source)}/></tt:Source>"
        f"<tt:Data><tt:SimpleItem Name={quoteattr(topic.data_name)} "
        f"Value={quoteattr(value)}/></tt:Data></tt:Message>"
        "</wsnt:Message></wsnt:NotificationMessage>"
    )


def _media_uri(uri: str) -> str:
    return (
        f"<trt:MediaUri><tt:Uri>{escape(uri)}</tt:Uri>"
        "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
        "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
        "<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri>"
    )


def _duration(text: str | None, *, default: int) -> timedelta:
    """A relative xs:duration (``PT60S``), or ``default`` seconds for none or an absolute time."""
    if text:
        with contextlib.suppress(ValueError, isodate.ISO8601Error):
            value = isodate.parse_duration(text.strip())
            if isinstance(value, timedelta) and value > timedelta(0):
                return min(value, timedelta(hours=1))
    return timedelta(seconds=default)


def _int(text: str | None, *, default: int) -> int:
    try:
        return max(1, int(text or default))
    except ValueError:
        return default


RTSP_SCRIPT: Final = Path(__file__).with_name("rtsp_camera.py")


async def _serve(args: argparse.Namespace) -> None:
    device = OnvifEmulator(
        username=args.username,
        password=args.password,
        host=args.host,
        port=args.port,
        rtsp_port=args.rtsp_port,
        button=not args.no_button,
        button_topic=args.button_topic,
        misbehave=args.misbehave,
    )
    rtsp = await asyncio.create_subprocess_exec(
        "/usr/bin/python3",
        str(RTSP_SCRIPT),
        "--address", args.host,
        "--port", str(args.rtsp_port),
        "--path", device.rtsp_path,
        "--username", args.username,
        "--password", args.password,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert rtsp.stdout is not None
    ready = await rtsp.stdout.readline()
    if not ready.startswith(b"ready "):
        raise SystemExit(f"the RTSP server did not start: {ready!r}")
    device.rtsp_port = int(ready.split()[1])
    await device.start()
    print(f"ready {device.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        rtsp.terminate()
        await rtsp.wait()
        await device.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="An emulated ONVIF camera or doorbell")
    parser.add_argument("--host", required=True, help="the address to listen on")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--rtsp-port", type=int, default=554)
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--no-button", action="store_true", help="a camera, not a doorbell")
    parser.add_argument("--button-topic", choices=sorted(BUTTON_TOPICS), default="digital-input")
    parser.add_argument("--misbehave", choices=MISBEHAVIOURS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()

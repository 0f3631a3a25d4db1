"""DoorBird door stations, through their LAN-2-LAN HTTP API, as a :class:`Doorbell`.

Written from DoorBird's public LAN-2-LAN API document (revision 0.36) and tested only
against Doorstep's own emulator of it, never against a real DoorBird.

- Identity from ``info.cgi`` (its MAC address is the device id), snapshots from
  ``image.cgi``, live H.264 from ``rtsp://host:554/mpeg/media.amp``; every call with HTTP
  basic auth.
- Rings and motion: the door station calls an HTTP URL on the hub for each event. The
  hub saves that URL as an HTTP "favorite" and points the ``doorbell`` and ``motion``
  inputs of the station's schedule at it; the URL carries a per-device secret. On
  removal the favorite and the schedule outputs that use it are removed again.
- Between events, the station is reachable while ``info.cgi`` answers.
- Outputs of the schedule that go through DoorBird's cloud (push notifications to the
  app) are reported, so the owner can learn what leaves the house.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
import json
import logging
import re
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from .doorbird_talk import DEFAULT_ANSWER_WINDOW, open_audio_transmit
from .exceptions import CannotConnect, DoorstepError, InvalidAuth, NoSnapshotYet, ProtocolError
from .interface import Capabilities, DeviceIdentity, Doorbell, EventSink, StreamSpec
from .models import DoorbellEvent, EventType
from .rtsp import with_credentials
from .talk import TalkChannel

_LOGGER = logging.getLogger(__name__)

DRIVER_DOORBIRD: Final = "doorbird"
KEY_HOST: Final = "host"
KEY_PORT: Final = "port"
KEY_USERNAME: Final = "username"
KEY_PASSWORD: Final = "password"  # noqa: S105 -- a key name, not a secret
KEY_RTSP_PORT: Final = "rtsp_port"
KEY_PUSH_SECRET: Final = "push_secret"  # noqa: S105 -- a key name, not a secret
KEY_NAME: Final = "name"

DEFAULT_HTTP_PORT: Final = 80
DEFAULT_RTSP_PORT: Final = 554
# DoorBird's own MAC prefix, as Home Assistant core matches it in zeroconf.
MAC_PREFIX: Final = "1ccae3"
# What the hub calls its favorite on the station (the DoorBird app shows it).
FAVORITE_TITLE: Final = "Doorstep"
# A weekly schedule from its last half hour round to itself: always on.
_ALWAYS: Final = {"weekdays": [{"from": "108000", "to": "107999"}]}
# Schedule inputs, and the push path's event names for them.
_INPUTS: Final = {"doorbell": "1", "motion": ""}
# Schedule outputs that reach outside the house through DoorBird's servers. DoorBird's
# LAN-2-LAN API document, revision 0.36 (13 November 2023), names four output events
# for schedule.cgi: "notify" (a push notification to the DoorBird app, through
# DoorBird's cloud), "sip", "relay" and "http". There is no "record" output: history
# pictures live in DoorBird's cloud, but the schedule does not switch them.
CLOUD_OUTPUTS: Final = frozenset({"notify"})

CHECK_INTERVAL: Final = 30.0
# The station says when motion starts, never when it stops: motion counts as over this
# many seconds after the last report.
MOTION_HOLD: Final = 30.0
MAX_JSON_BYTES: Final = 256 * 1024
MAX_SNAPSHOT_BYTES: Final = 5 * 1024 * 1024
_MAC_RE: Final = re.compile(r"[0-9a-f]{12}")

# Every DoorBird door station has a speaker (``audio-transmit.cgi``) and a microphone.
# The LAN API document gives its sound as G.711 µ-law at 8 kHz; the hub expects that
# beside the picture in the RTSP stream (unconfirmed on a real station), and the sound
# relay re-encodes it to Opus once for all listeners.
MICROPHONE_CODEC: Final = "pcm_mulaw"
_CAPABILITIES: Final = Capabilities(
    has_button=True,
    has_motion=True,
    has_snapshot=True,
    has_talk_back=True,
    microphone=MICROPHONE_CODEC,
)


class NoHubUrl(CannotConnect):
    """Home Assistant knows no address of its own that the station could call."""


def normalize_mac(mac: object) -> str | None:
    """``1C:CA:E3:12:34:56`` (any separators, any case) as ``1ccae3123456``, or None."""
    if not isinstance(mac, str):
        return None
    digits = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    return digits if _MAC_RE.fullmatch(digits) else None


def is_doorbird_mac(mac: object) -> bool:
    """Whether ``mac`` is a DoorBird's (by its vendor prefix)."""
    normalized = normalize_mac(mac)
    return normalized is not None and normalized.startswith(MAC_PREFIX)


@dataclass(frozen=True, slots=True)
class DoorBirdInfo:
    """What ``info.cgi`` says."""

    mac: str
    firmware: str
    build: str
    device_type: str


class DoorBirdClient:
    """The few LAN-2-LAN API calls the hub makes, with basic auth, over plain HTTP."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        username: str,
        password: str,
        *,
        port: int = DEFAULT_HTTP_PORT,
        request_timeout: float = 10.0,
    ) -> None:
        self._session = session
        self._host = host
        self._port = port
        self._authorization = aiohttp.encode_basic_auth(username, password)
        self._request_timeout = request_timeout

    @property
    def host(self) -> str:
        """The station's address."""
        return self._host

    @property
    def base_url(self) -> str:
        """``http://host:port``, with an IPv6 literal in brackets."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def info(self) -> DoorBirdInfo:
        """``info.cgi``: firmware, MAC address and model."""
        data = await self._json("GET", "/bha-api/info.cgi")
        try:
            version = data["BHA"]["VERSION"][0]
        except (KeyError, IndexError, TypeError) as err:
            raise ProtocolError("info.cgi answer has no VERSION") from err
        if not isinstance(version, dict):
            raise ProtocolError("info.cgi VERSION is not an object")
        mac = normalize_mac(version.get("PRIMARY_MAC_ADDR") or version.get("WIFI_MAC_ADDR"))
        if mac is None:
            raise ProtocolError("info.cgi names no MAC address")
        return DoorBirdInfo(
            mac=mac,
            firmware=_short_text(version.get("FIRMWARE")),
            build=_short_text(version.get("BUILD_NUMBER")),
            device_type=_short_text(version.get("DEVICE-TYPE")) or "DoorBird",
        )

    async def snapshot(self) -> bytes:
        """``image.cgi``: the current picture as JPEG."""
        status, body = await self._request(
            "GET", "/bha-api/image.cgi", max_bytes=MAX_SNAPSHOT_BYTES
        )
        if status == 204:
            # The LAN API's answer when the user may not watch the camera at any time
            # ("watch always" permission) and nobody rang in the last minute.
            raise NoSnapshotYet("the DoorBird has no picture for this user right now")
        if status != 200 or not body.startswith(b"\xff\xd8"):
            raise ProtocolError(f"image.cgi answered {status} without a JPEG")
        return body

    async def open_talk(
        self, *, name: str, answer_window: float = DEFAULT_ANSWER_WINDOW
    ) -> TalkChannel:
        """``audio-transmit.cgi``: the station's speaker, until the channel is closed."""
        return await open_audio_transmit(
            self._session,
            self.base_url,
            self._authorization,
            name=name,
            answer_window=answer_window,
        )

    async def favorites(self) -> dict[str, str]:
        """HTTP favorites by id: ``{"3": "http://..."}``."""
        data = await self._json("GET", "/bha-api/favorites.cgi")
        http = data.get("http", {})
        if not isinstance(http, dict):
            raise ProtocolError("favorites.cgi http is not an object")
        return {
            str(fav_id): str(fav["value"])
            for fav_id, fav in http.items()
            if isinstance(fav, dict) and isinstance(fav.get("value"), str)
        }

    async def save_favorite(self, url: str) -> str:
        """Add the hub's HTTP favorite (or find it, if it is there) and return its id."""
        for fav_id, value in (await self.favorites()).items():
            if value == url:
                return fav_id
        query = {"action": "save", "type": "http", "title": FAVORITE_TITLE, "value": url}
        status, _ = await self._request(
            "GET", "/bha-api/favorites.cgi", params=query, max_bytes=MAX_JSON_BYTES
        )
        if status != 200:
            raise ProtocolError(f"saving a favorite answered {status}")
        # The id is not in the answer's body; the list says it.
        for fav_id, value in (await self.favorites()).items():
            if value == url:
                return fav_id
        raise ProtocolError("the saved favorite is not in the list")

    async def remove_favorite(self, fav_id: str) -> None:
        """Remove one HTTP favorite."""
        query = {"action": "remove", "type": "http", "id": fav_id}
        status, _ = await self._request(
            "GET", "/bha-api/favorites.cgi", params=query, max_bytes=MAX_JSON_BYTES
        )
        if status != 200:
            raise ProtocolError(f"removing a favorite answered {status}")

    async def schedule(self) -> list[dict[str, Any]]:
        """The schedule: one entry per input, each with its outputs."""
        status, body = await self._request("GET", "/bha-api/schedule.cgi", max_bytes=MAX_JSON_BYTES)
        if status != 200:
            raise ProtocolError(f"schedule.cgi answered {status}")
        data = _json_value(body)
        if not isinstance(data, list):
            raise ProtocolError("schedule.cgi is not a list")
        return [entry for entry in data if isinstance(entry, dict)]

    async def save_schedule_entry(self, entry: Mapping[str, Any]) -> None:
        """Add or replace the schedule entry of one input."""
        status, _ = await self._request(
            "POST",
            "/bha-api/schedule.cgi",
            body=json.dumps(entry).encode(),
            max_bytes=MAX_JSON_BYTES,
        )
        if status != 200:
            raise ProtocolError(f"saving a schedule entry answered {status}")

    async def _json(self, method: str, path: str) -> dict[str, Any]:
        status, body = await self._request(method, path, max_bytes=MAX_JSON_BYTES)
        if status != 200:
            raise ProtocolError(f"{path} answered {status}")
        data = _json_value(body)
        if not isinstance(data, dict):
            raise ProtocolError(f"{path} is not a JSON object")
        return data

    async def _request(
        self,
        method: str,
        path: str,
        *,
        max_bytes: int,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, bytes]:
        headers = {"Authorization": self._authorization}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with (
                asyncio.timeout(self._request_timeout),
                self._session.request(
                    method,
                    f"{self.base_url}{path}",
                    params=params,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                ) as response,
            ):
                if (response.content_length or 0) > max_bytes:
                    raise ProtocolError(f"{path}: answer is too large")
                content = await response.content.read(max_bytes + 1)
                if len(content) > max_bytes:
                    raise ProtocolError(f"{path}: answer is too large")
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise CannotConnect(f"{method} {path} on {self.base_url} failed: {err!r}") from err
        if status == 401:
            raise InvalidAuth("the DoorBird refused the username or password")
        if status == 423:
            raise CannotConnect("the DoorBird locked this user out for a minute")
        if status >= 500:
            raise CannotConnect(f"{method} {path} answered {status}")
        return status, content


def _json_value(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as err:
        raise ProtocolError("answer is not JSON") from err


def _short_text(value: object) -> str:
    return value[:64] if isinstance(value, str) else ""


def push_url(hub_url: str, secret: str) -> str:
    """Where the station calls the hub; ``?event=`` says which input fired."""
    return f"{hub_url.rstrip('/')}/api/doorstep/push/{quote(secret, safe='')}"


def cloud_outputs(schedule: list[dict[str, Any]]) -> tuple[str, ...]:
    """The schedule's enabled outputs that go through DoorBird's cloud, sorted, once each."""
    found: set[str] = set()
    for entry in schedule:
        for output in entry.get("output") or []:
            if not isinstance(output, dict):
                continue
            event = output.get("event")
            if event in CLOUD_OUTPUTS and str(output.get("enabled", "1")) != "0":
                found.add(str(event))
    return tuple(sorted(found))


class DoorBirdDoorbell(Doorbell):
    """A DoorBird door station, with its events pushed to the hub."""

    def __init__(
        self,
        client: DoorBirdClient,
        *,
        username: str,
        password: str,
        push_secret: str,
        hub_url: str | None,
        rtsp_port: int = DEFAULT_RTSP_PORT,
        check_interval: float = CHECK_INTERVAL,
        motion_hold: float = MOTION_HOLD,
        name: str | None = None,
    ) -> None:
        self._client = client
        self._name = name
        self._motion_hold = motion_hold
        self._motion_off: asyncio.TimerHandle | None = None
        self._username = username
        self._password = password
        self._push_secret = push_secret
        self._hub_url = hub_url
        self._rtsp_port = rtsp_port
        self._check_interval = check_interval
        self._sink: EventSink | None = None
        self._seq = 0

    @classmethod
    def from_config(
        cls,
        session: aiohttp.ClientSession,
        config: Mapping[str, Any],
        *,
        hub_url: str | None = None,
    ) -> DoorBirdDoorbell:
        """The station a stored configuration describes."""
        return cls(
            DoorBirdClient(
                session,
                config[KEY_HOST],
                config[KEY_USERNAME],
                config[KEY_PASSWORD],
                port=config.get(KEY_PORT, DEFAULT_HTTP_PORT),
            ),
            username=config[KEY_USERNAME],
            password=config[KEY_PASSWORD],
            push_secret=config[KEY_PUSH_SECRET],
            hub_url=hub_url,
            rtsp_port=config.get(KEY_RTSP_PORT, DEFAULT_RTSP_PORT),
            name=config.get(KEY_NAME) or None,
        )

    @property
    def client(self) -> DoorBirdClient:
        """The HTTP API client underneath."""
        return self._client

    @property
    def driver(self) -> str:
        """``doorbird``."""
        return DRIVER_DOORBIRD

    @property
    def host(self) -> str:
        """The station's address."""
        return self._client.host

    @property
    def capabilities(self) -> Capabilities:
        """A button, motion, snapshots, a speaker and a microphone."""
        return _CAPABILITIES

    @property
    def push_secret(self) -> str:
        """The secret in the URL the station calls."""
        return self._push_secret

    async def connect(self) -> DeviceIdentity:
        """``info.cgi``, which checks the credentials too."""
        info = await self._client.info()
        return DeviceIdentity(
            device_id=info.mac,
            # The station has no name of its own; the owner's (the entry title) if given.
            name=self._name or info.device_type,
            model=info.device_type,
            firmware=f"{info.firmware} ({info.build})" if info.build else info.firmware,
            manufacturer="DoorBird",
        )

    def stream(self) -> StreamSpec:
        """The station's RTSP stream, with the same credentials as its HTTP API."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"rtsp://{host}:{self._rtsp_port}/mpeg/media.amp"
        return StreamSpec(
            url=with_credentials(url, self._username, self._password),
            options={"rtsp_transport": "tcp"},
        )

    async def snapshot(self) -> bytes:
        """``image.cgi``."""
        return await self._client.snapshot()

    async def open_talk(self, *, name: str) -> TalkChannel:
        """The station's speaker through ``audio-transmit.cgi`` (G.711 µ-law)."""
        return await self._client.open_talk(name=name)

    async def run_events(self, sink: EventSink) -> None:
        """Point the station's schedule at the hub, then follow its reachability.

        The events themselves arrive through :meth:`handle_push`.
        """
        self._sink = sink
        connected: bool | None = None
        try:
            while True:
                try:
                    if connected:
                        await self._client.info()
                    else:
                        # At start and after every outage: a station that was reset or
                        # restored meanwhile may have lost the hub's favorites.
                        await self.register()
                    now = True
                except InvalidAuth:
                    sink.handle_auth_failed()
                    return
                except NoHubUrl:
                    if connected is None:
                        _LOGGER.warning(
                            "The DoorBird at %s cannot tell Home Assistant about rings: "
                            "Home Assistant has no internal URL (Settings > System > Network)",
                            self.host,
                        )
                    now = False
                except DoorstepError as err:
                    _LOGGER.debug("DoorBird at %s: %s", self.host, err)
                    now = False
                if now != connected:
                    connected = now
                    sink.handle_connection_change(now)
                    if now:
                        # Nothing says whether motion is on now; it starts off.
                        self._deliver(EventType.HELLO, motion=False)
                await asyncio.sleep(self._check_interval)
        finally:
            self._sink = None
            if self._motion_off is not None:
                self._motion_off.cancel()
                self._motion_off = None

    def handle_push(self, event_name: str) -> bool:
        """The station called the hub's URL for ``doorbell`` or ``motion``."""
        if event_name == "doorbell":
            self._deliver(EventType.RING)
        elif event_name == "motion":
            if self._motion_off is None:
                self._deliver(EventType.MOTION_START, motion=True)
            else:
                self._motion_off.cancel()
            self._motion_off = asyncio.get_running_loop().call_later(
                self._motion_hold, self._motion_over
            )
        else:
            return False
        return True

    def _motion_over(self) -> None:
        self._motion_off = None
        self._deliver(EventType.MOTION_STOP, motion=False)

    def _deliver(self, event_type: EventType, motion: bool | None = None) -> None:
        if self._sink is None:
            return
        self._seq += 1
        self._sink.handle_event(DoorbellEvent(event_type, self._seq, datetime.now(UTC), motion))

    async def register(self) -> None:
        """Save the hub's favorite and make both inputs call it, keeping other outputs."""
        if self._hub_url is None:
            raise NoHubUrl("the hub has no address the DoorBird could call")
        base = push_url(self._hub_url, self._push_secret)
        fav_ids = {
            name: await self._client.save_favorite(f"{base}?event={name}") for name in _INPUTS
        }
        schedule = {entry.get("input"): entry for entry in await self._client.schedule()}
        for name, param in _INPUTS.items():
            entry = schedule.get(name) or {"input": name, "param": param, "output": []}
            outputs = [
                output
                for output in entry.get("output") or []
                if not (isinstance(output, dict) and output.get("event") == "http")
                or output.get("param") != fav_ids[name]
            ]
            outputs.append(
                {"event": "http", "param": fav_ids[name], "enabled": "1", "schedule": _ALWAYS}
            )
            await self._client.save_schedule_entry({**entry, "output": outputs})

    async def outside_services(self) -> tuple[str, ...]:
        """Cloud outputs the station's schedule has turned on."""
        return cloud_outputs(await self._client.schedule())

    async def forget(self) -> None:
        """Remove the hub's favorites and the schedule outputs that call them."""
        marker = f"/api/doorstep/push/{quote(self._push_secret, safe='')}?"
        ours = {
            fav_id for fav_id, value in (await self._client.favorites()).items() if marker in value
        }
        for entry in await self._client.schedule():
            outputs = entry.get("output") or []
            kept = [
                output
                for output in outputs
                if not (
                    isinstance(output, dict)
                    and output.get("event") == "http"
                    and output.get("param") in ours
                )
            ]
            if len(kept) != len(outputs):
                await self._client.save_schedule_entry({**entry, "output": kept})
        for fav_id in sorted(ours):
            await self._client.remove_favorite(fav_id)

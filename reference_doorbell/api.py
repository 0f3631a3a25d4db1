"""The HTTPS API of protocol v1 (sections 3 to 5), as an aiohttp application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import json
import logging
import re
from typing import Any, NoReturn, Protocol

from aiohttp import hdrs, web

from .events import EventHub
from .identity import Identity
from .pairing import Locked, PairingGuard, RightCode, WrongCode
from .talk import Busy, TalkFloor
from .video import VideoPipeline

_LOGGER = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
# v1.1 adds sound (docs/protocol.md section 7); a v1.0 hub ignores the new fields.
PROTOCOL_MINOR = 1
MAX_BODY = 1024
MAX_CLIENT_NAME = 64
# ASCII digits only: str.isdigit and \d would also accept other scripts' digits.
_CODE_RE = re.compile(r"[0-9]{6,8}")
_NO_STORE = {hdrs.CACHE_CONTROL: "no-store"}
_HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "bad_request",
}

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error answer: status, protocol error code, and extra JSON fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def response(self) -> web.Response:
        """The JSON error body the protocol specifies."""
        body = {"error": self.code, "message": self.message, **self.extra}
        return web.json_response(body, status=self.status, headers=self.headers)


def _bad_request(message: str) -> NoReturn:
    raise ApiError(400, "bad_request", message)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error, ours or aiohttp's, into the protocol's JSON error body."""
    try:
        return await handler(request)
    except ApiError as err:
        return err.response()
    except web.HTTPException as err:
        if err.status < 400:
            raise
        code = _HTTP_ERROR_CODES.get(err.status, "http_error")
        headers = {k: v for k, v in err.headers.items() if k in (hdrs.ALLOW, hdrs.RETRY_AFTER)}
        return ApiError(err.status, code, err.reason, headers=headers).response()


async def read_json_object(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """Read a JSON object body of at most 1 KiB, or answer 400.

    The body is read in bounded pieces instead of trusting Content-Length, so a chunked
    upload cannot make the doorbell buffer more than 1 KiB.
    """
    if request.content_length is not None and request.content_length > MAX_BODY:
        _bad_request(f"Request bodies are at most {MAX_BODY} bytes")
    raw = bytearray()
    while chunk := await request.content.read(MAX_BODY + 1 - len(raw)):
        raw += chunk
        if len(raw) > MAX_BODY:
            _bad_request(f"Request bodies are at most {MAX_BODY} bytes")
    if not raw and not required:
        return {}
    try:
        body = json.loads(raw)
    except ValueError, UnicodeDecodeError:
        _bad_request("The body is not JSON")
    if not isinstance(body, dict):
        _bad_request("The body must be a JSON object")
    return body


class ServedSettings(Protocol):
    """The doorbell settings the API reads (``doorbell.DoorbellConfig`` has them)."""

    @property
    def http_button(self) -> bool: ...
    @property
    def model(self) -> str: ...
    @property
    def firmware(self) -> str: ...


class ServedDoorbell(Protocol):
    """What the API acts on. ``doorbell.Doorbell`` is the one; it builds the API, so the
    API names only this shape and the doorbell module stays the only one that imports
    the other."""

    name: str
    identity: Identity
    guard: PairingGuard
    events: EventHub
    video: VideoPipeline
    talk: TalkFloor | None

    @property
    def config(self) -> ServedSettings: ...
    @property
    def audio_info(self) -> dict[str, Any] | None: ...
    @property
    def device_id(self) -> str: ...

    def issue_token(self, client: str) -> str: ...
    def forget_token(self, token_hash: str) -> None: ...
    async def ring(self) -> None: ...
    async def set_motion(self, active: bool) -> None: ...


class DoorbellApi:
    """Request handlers; the doorbell itself holds the state they act on."""

    def __init__(self, bell: ServedDoorbell) -> None:
        self._bell = bell

    def build(self) -> web.Application:
        """The application with every route of protocol v1."""
        app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY)
        app.router.add_get("/v1/info", self.info)
        app.router.add_post("/v1/pair", self.pair)
        app.router.add_delete("/v1/pair", self.unpair)
        app.router.add_get("/v1/events", self.events)
        app.router.add_get("/v1/snapshot.jpg", self.snapshot)
        app.router.add_get("/v1/stream.ts", self.stream)
        app.router.add_get("/v1/talk", self.talk)
        if self._bell.config.http_button:
            app.router.add_post("/v1/button/ring", self.button_ring)
            app.router.add_post("/v1/button/motion", self.button_motion)
        return app

    def _authorize(self, request: web.Request) -> str:
        """Return the hash of the caller's token, or answer 401."""
        scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        token_hash = None
        if scheme.lower() == "bearer" and token.strip():
            token_hash = self._bell.identity.find_token(token.strip())
        if token_hash is None:
            raise ApiError(
                401,
                "unauthorized",
                "A valid pairing token is required",
                headers={hdrs.WWW_AUTHENTICATE: "Bearer"},
            )
        return token_hash

    async def info(self, request: web.Request) -> web.Response:
        """``GET /v1/info``: who the doorbell is (no authentication)."""
        bell = self._bell
        info: dict[str, Any] = {
            "id": bell.device_id,
            "name": bell.name,
            "model": bell.config.model,
            "fw": bell.config.firmware,
            "v": PROTOCOL_VERSION,
        }
        if (audio := bell.audio_info) is not None:
            info["minor"] = PROTOCOL_MINOR
            info["audio"] = audio
        return web.json_response(info)

    async def pair(self, request: web.Request) -> web.Response:
        """``POST /v1/pair``: trade the pairing code for a token."""
        body = await read_json_object(request)
        code = body.get("code")
        client = body.get("client", "")
        if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
            _bad_request("code must be a string of 6 to 8 digits")
        if not isinstance(client, str) or len(client) > MAX_CLIENT_NAME:
            _bad_request(f"client must be a string of at most {MAX_CLIENT_NAME} characters")
        bell = self._bell
        verdict = bell.guard.attempt(lambda: bell.identity.code_matches(code))
        match verdict:
            case Locked(retry_after):
                raise ApiError(
                    429,
                    "locked",
                    f"Too many wrong codes; try again in {retry_after} s",
                    extra={"retry_after": retry_after},
                    headers={hdrs.RETRY_AFTER: str(retry_after)},
                )
            case WrongCode(attempts_left):
                _LOGGER.warning("Wrong pairing code from %s", request.remote)
                raise ApiError(
                    401,
                    "invalid_code",
                    "The pairing code is wrong",
                    extra={"attempts_left": attempts_left},
                )
            case RightCode():
                token = bell.issue_token(client)
                _LOGGER.info("Paired with %r from %s", client, request.remote)
                return web.json_response({"id": bell.device_id, "token": token})

    async def unpair(self, request: web.Request) -> web.Response:
        """``DELETE /v1/pair``: forget the calling hub's token."""
        token_hash = self._authorize(request)
        self._bell.forget_token(token_hash)
        return web.Response(status=204)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/events``: the WebSocket of rings, motion and heartbeats."""
        token_hash = self._authorize(request)
        return await self._bell.events.serve(request, token_hash)

    async def snapshot(self, request: web.Request) -> web.Response:
        """``GET /v1/snapshot.jpg``: the current picture."""
        self._authorize(request)
        jpeg = await self._bell.video.snapshot()
        return web.Response(body=jpeg, content_type="image/jpeg", headers=_NO_STORE)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/stream.ts``: live H.264 in MPEG-TS, starting at a keyframe."""
        self._authorize(request)
        video = self._bell.video
        viewer = video.add_viewer()
        try:
            response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "video/mp2t", **_NO_STORE})
            response.enable_chunked_encoding()
            await response.prepare(request)
            while (data := await viewer.next()) is not None:
                await response.write(data)
        except ConnectionError:
            # The viewer went away: nothing to answer any more.
            pass
        finally:
            video.remove_viewer(viewer)
        return response

    async def talk(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/talk``: the talk-back WebSocket (v1.1), one talker at a time."""
        token_hash = self._authorize(request)
        floor = self._bell.talk
        if floor is None:
            raise ApiError(404, "no_speaker", "This doorbell has no speaker")
        try:
            return await floor.serve(request, token_hash)
        except Busy:
            raise ApiError(409, "busy", "Someone else is talking through the doorbell") from None

    async def button_ring(self, request: web.Request) -> web.Response:
        """``POST /v1/button/ring``: press the button."""
        await read_json_object(request, required=False)
        await self._bell.ring()
        return web.json_response({"ok": True})

    async def button_motion(self, request: web.Request) -> web.Response:
        """``POST /v1/button/motion``: start or stop motion."""
        body = await read_json_object(request)
        active = body.get("active")
        if not isinstance(active, bool):
            _bad_request("active must be true or false")
        await self._bell.set_motion(active)
        return web.json_response({"ok": True, "motion": active})

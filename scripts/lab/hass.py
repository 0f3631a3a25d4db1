"""A real Home Assistant process, its onboarding, and a small REST + websocket client."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
import itertools
import json
from pathlib import Path
import shutil
import sys
from typing import Any, Self

import aiohttp

from .procs import ManagedProcess, ProcessFailed, python_env

REPO = Path(__file__).resolve().parents[2]
CONFIG_SOURCE = REPO / "config"
INTEGRATION_SOURCE = REPO / "custom_components" / "doorstep"
HASS_PORT = 8123
# Files in config/ that are state, not configuration: never copied into a run.
# homeassistant.components.onboarding.STORAGE_VERSION in the pinned release.
_ONBOARDING_STORAGE_VERSION = 4
_STATE_NAMES = {".storage", "custom_components", "deps", "tts", "blueprints", "doorstep"}


class HassError(RuntimeError):
    """Home Assistant answered something the lab did not expect."""


def prepare_config_dir(
    dest: Path,
    *,
    source: Path = CONFIG_SOURCE,
    skip_core_config: bool = True,
    overwrite: bool = True,
) -> Path:
    """Copy the demo configuration into `dest` and link the integration into it.

    A copy rather than `-c config/`, so runs never write state into the repo, and a
    symlink for the integration, so a run always loads the working tree's code.

    With `skip_core_config`, a fresh config dir starts with onboarding's `core_config`
    step already done. Finishing that step through the API starts config flows for
    met, google_translate, radio_browser and shopping_list: they would reach for the
    internet or for packages this machine cannot install. configuration.yaml already
    sets what that step would ask (location, units, time zone, country).

    Without `overwrite`, files already in `dest` are kept, so a person's edits to a
    long-lived config dir survive the next run.
    """
    if skip_core_config and not (dest / ".storage" / "onboarding").exists():
        (dest / ".storage").mkdir(parents=True, exist_ok=True)
        (dest / ".storage" / "onboarding").write_text(
            json.dumps(
                {
                    "version": _ONBOARDING_STORAGE_VERSION,
                    "minor_version": 1,
                    "key": "onboarding",
                    "data": {"done": ["core_config"]},
                }
            ),
            encoding="utf-8",
        )
    dest.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name in _STATE_NAMES or item.name.startswith(".") or item.suffix in {".db", ".log"}:
            continue
        if item.is_file() and (overwrite or not (dest / item.name).exists()):
            shutil.copy2(item, dest / item.name)
    components = dest / "custom_components"
    components.mkdir(exist_ok=True)
    link = components / "doorstep"
    if INTEGRATION_SOURCE.is_dir() and not link.exists():
        link.symlink_to(INTEGRATION_SOURCE, target_is_directory=True)
    return dest


def hass_process(config_dir: Path, log_path: Path, ns: str | None) -> ManagedProcess:
    """Home Assistant from this venv, with pip installs off (the machine has no internet)."""
    argv = [sys.executable, "-m", "homeassistant", "-c", str(config_dir), "--skip-pip"]
    argv += ["--log-no-color"]
    if ns is not None:
        argv = ["ip", "netns", "exec", ns, *argv]
    return ManagedProcess(name="Home Assistant", argv=argv, log_path=log_path, env=python_env(REPO))


async def wait_http_ready(
    session: aiohttp.ClientSession, base_url: str, proc: ManagedProcess
) -> None:
    """Wait until Home Assistant's HTTP server answers the onboarding status; raise if
    the process exits first. Bound it with `procs.within`."""
    while True:
        if not proc.running():
            raise proc.fail("exited during start")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(f"{base_url}/api/onboarding", timeout=_short()) as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.2)


def _short() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=2)


@dataclass(frozen=True, kw_only=True)
class Owner:
    """The person created during onboarding."""

    name: str = "Demo Owner"
    username: str = "demo"
    password: str = "doorstep-demo"  # noqa: S105 - printed login of a throwaway lab
    language: str = "en"


async def _json(resp: aiohttp.ClientResponse) -> Any:
    if resp.status >= 400:
        raise HassError(f"{resp.method} {resp.url} -> {resp.status}: {await resp.text()}")
    return await resp.json()


async def onboard(session: aiohttp.ClientSession, base_url: str, owner: Owner) -> str:
    """Do the onboarding steps that are not done yet, the way the frontend does, so the
    UI opens straight to the dashboard; return the owner's access token."""
    async with session.get(f"{base_url}/api/onboarding") as resp:
        done = {step["step"] for step in await _json(resp) if step["done"]}
    # Home Assistant checks the client id and redirect URI are on one origin (IndieAuth).
    client_id = f"{base_url}/"
    async with session.post(
        f"{base_url}/api/onboarding/users",
        json={
            "client_id": client_id,
            "name": owner.name,
            "username": owner.username,
            "password": owner.password,
            "language": owner.language,
        },
    ) as resp:
        code = (await _json(resp))["auth_code"]
    async with session.post(
        f"{base_url}/auth/token",
        data={"grant_type": "authorization_code", "code": code, "client_id": client_id},
    ) as resp:
        token: str = (await _json(resp))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for step in ("core_config", "analytics"):
        if step not in done:
            async with session.post(f"{base_url}/api/onboarding/{step}", headers=headers) as r:
                await _json(r)
    async with session.post(
        f"{base_url}/api/onboarding/integration",
        headers=headers,
        json={"client_id": client_id, "redirect_uri": f"{base_url}/?auth_callback=1"},
    ) as resp:
        await _json(resp)
    return token


async def login(session: aiohttp.ClientSession, base_url: str, owner: Owner) -> str:
    """Log in as the owner through Home Assistant's login flow, as the browser does, and
    return the access token of that interactive session (a normal refresh token, not a
    long-lived one: only such a session may approve sharing)."""
    client_id = f"{base_url}/"
    async with session.post(
        f"{base_url}/auth/login_flow",
        json={
            "client_id": client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": f"{base_url}/?auth_callback=1",
        },
    ) as resp:
        flow_id = (await _json(resp))["flow_id"]
    async with session.post(
        f"{base_url}/auth/login_flow/{flow_id}",
        json={"client_id": client_id, "username": owner.username, "password": owner.password},
    ) as resp:
        step = await _json(resp)
    if step.get("type") != "create_entry":
        raise HassError(f"login as {owner.username!r} did not finish: {step}")
    async with session.post(
        f"{base_url}/auth/token",
        data={"grant_type": "authorization_code", "code": step["result"], "client_id": client_id},
    ) as resp:
        token: str = (await _json(resp))["access_token"]
    return token


async def approve_as_owner(ws: HassWebSocket, request_id: str, owner: Owner) -> dict[str, Any]:
    """Approve as the sharing card does: fetch the preview, then approve exactly that with
    the owner's password. ``ws`` must be an interactive login session (see `login`)."""
    preview = await ws.call("doorstep/sharing/preview", request_id=request_id)
    approved: dict[str, Any] = await ws.call(
        "doorstep/sharing/approve",
        request_id=request_id,
        confirm=preview["confirm"],
        password=owner.password,
    )
    return approved


@dataclass(kw_only=True)
class HassClient:
    """REST and websocket access to one Home Assistant with one token."""

    session: aiohttp.ClientSession
    base_url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str) -> Any:
        async with self.session.get(f"{self.base_url}{path}", headers=self.headers) as resp:
            return await _json(resp)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self.session.post(
            f"{self.base_url}{path}", headers=self.headers, json=body or {}
        ) as resp:
            return await _json(resp)

    async def wait_running(self) -> None:
        """Wait until Home Assistant says it has finished starting."""
        while True:
            if (await self.get("/api/config"))["state"] == "RUNNING":
                return
            await asyncio.sleep(0.2)

    async def websocket(self) -> HassWebSocket:
        return await HassWebSocket.connect(self.session, self.base_url, self.token)

    async def long_lived_token(self, name: str) -> str:
        ws = await self.websocket()
        try:
            token: str = await ws.call(
                "auth/long_lived_access_token", client_name=name, lifespan=3650
            )
        finally:
            await ws.close()
        return token


@dataclass(kw_only=True)
class HassWebSocket:
    """One authenticated websocket: `call` for commands, `subscribe` for event streams."""

    ws: aiohttp.ClientWebSocketResponse
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    _queues: dict[int, asyncio.Queue[dict[str, Any]]] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, base_url: str, token: str) -> Self:
        ws = await session.ws_connect(f"{base_url}/api/websocket", heartbeat=30)
        try:
            hello = await ws.receive_json(timeout=10)
            if hello.get("type") != "auth_required":
                raise HassError(f"unexpected websocket greeting {hello}")
            await ws.send_json({"type": "auth", "access_token": token})
            answer = await ws.receive_json(timeout=10)
            if answer.get("type") != "auth_ok":
                raise HassError(f"websocket auth failed: {answer}")
        except BaseException:
            await ws.close()
            raise
        self = cls(ws=ws)
        self._reader = asyncio.create_task(self._read(), name="hass-websocket-reader")
        return self

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                data = msg.json()
                # Home Assistant may batch several messages into one JSON array.
                for item in data if isinstance(data, list) else [data]:
                    self._dispatch(item)
        finally:
            error = HassError("websocket closed")
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(error)

    def _dispatch(self, item: dict[str, Any]) -> None:
        msg_id = item.get("id")
        if not isinstance(msg_id, int):
            return
        if item.get("type") == "result" and msg_id in self._pending:
            fut = self._pending.pop(msg_id)
            if fut.done():
                return
            if item.get("success"):
                fut.set_result(item.get("result"))
            else:
                fut.set_exception(HassError(f"websocket command failed: {item.get('error')}"))
        elif item.get("type") == "event" and msg_id in self._queues:
            self._queues[msg_id].put_nowait(item["event"])

    async def _send(self, msg_id: int, command: str, fields: dict[str, Any]) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self.ws.send_json({"id": msg_id, "type": command, **fields})
        return await asyncio.wait_for(fut, 30)

    async def call(self, command: str, **fields: Any) -> Any:
        return await self._send(next(self._ids), command, fields)

    async def subscribe(self, command: str, **fields: Any) -> asyncio.Queue[dict[str, Any]]:
        """Start a subscription (`subscribe_events`, `subscribe_entities`, ...); events
        arrive on the returned queue, in order."""
        msg_id = next(self._ids)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        # Registered before sending: the first event may come right behind the result.
        self._queues[msg_id] = queue
        await self._send(msg_id, command, fields)
        return queue

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, HassError):
                await self._reader
            self._reader = None


__all__ = [
    "HASS_PORT",
    "HassClient",
    "HassError",
    "HassWebSocket",
    "Owner",
    "ProcessFailed",
    "approve_as_owner",
    "hass_process",
    "login",
    "onboard",
    "prepare_config_dir",
    "wait_http_ready",
]

"""`scripts/demo`: Home Assistant with Doorstep, two reference doorbells and an emulated
DoorBird on a private LAN in network namespaces, onboarded and paired, ready for a
person's browser.

    scripts/demo                 # run until Ctrl-C
    scripts/demo --smoke         # start, pair, ring once, check, exit 0 (for tests)
    scripts/demo --ring-every 45 # doorbells also ring by themselves
    scripts/demo --lan           # Home Assistant alone on the real network (real doorbells)
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
import os
from pathlib import Path
import shutil
import signal
import socket
import sys
import time

import aiohttp

from .agency import AGENCY_NAME, LabAgency, area_requests, subscribe
from .doorbell import Doorbell
from .forward import TcpForwarder
from .hass import (
    HASS_PORT,
    REPO,
    HassClient,
    HassError,
    HassWebSocket,
    Owner,
    approve_as_owner,
    hass_process,
    login,
    onboard,
    prepare_config_dir,
    wait_http_ready,
)
from .netns import NetnsError, Topology, create_topology, lab_unavailable_reason, ns_argv
from .pairing import dismiss_stale_discovery_notice, ignore_offer, pair_flow, wait_for_discovery
from .procs import ManagedProcess, ProcessFailed, python_env, within
from .requests import (
    REQUESTER_NAME,
    create_requester,
    file_request,
    requester_command,
    wait_and_verify,
)

# DOORSTEP_DEMO_DIR lets a test run the demo without touching a person's .demo/.
DEMO_DIR = Path(os.environ.get("DOORSTEP_DEMO_DIR") or REPO / ".demo")
DOORBELL_NAMES = ("Front door", "Back door")
# The third door: the DoorBird emulator, found by mDNS as a DoorBird and signed in.
DOORBIRD_NAME = "Side gate"
DOORBIRD_MAC = "1ccae3a1b2c3"
DOORBIRD_USERNAME = "ghxxxx0001"
DOORBIRD_PASSWORD = "demo-bird"  # noqa: S105 -- the emulator's, made up for the demo
OWNER = Owner()
# Home Assistant's own DoorBird integration checks the station over HTTP before it
# offers it; by the time Doorstep has signed in, that has long happened.
CORE_DOORBIRD_PATIENCE = 20.0
SMOKE_TIMEOUT = 120.0
# How long the demo's requester waits for the householder before giving up.
REQUESTER_PATIENCE = 24 * 3600.0


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    lan: bool
    smoke: bool
    ring_every: float | None
    high_profile: bool = False


def parse_args(argv: Sequence[str]) -> DemoOptions:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--lan",
        action="store_true",
        help="no namespaces: run Home Assistant on this machine's real network, for real "
        "doorbells (you onboard in the browser)",
    )
    mode.add_argument(
        "--smoke",
        action="store_true",
        help="start everything, check both doorbells pair and a ring arrives, then exit",
    )
    parser.add_argument(
        "--ring-every",
        type=float,
        metavar="SECONDS",
        help="let the reference doorbells ring by themselves this often",
    )
    parser.add_argument(
        "--high-profile",
        action="store_true",
        help="the last doorbell sends High profile with B-frames, so its live view shows "
        "the hub's transcoding fallback and its repair issue",
    )
    args = parser.parse_args(argv)
    smoke = args.smoke or os.environ.get("DOORSTEP_DEMO_SMOKE") == "1"
    return DemoOptions(
        lan=args.lan,
        smoke=smoke and not args.lan,
        ring_every=args.ring_every,
        high_profile=args.high_profile,
    )


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def _entity(name: str, suffix: str, domain: str) -> str:
    return f"{domain}.{name.lower().replace(' ', '_')}_{suffix}"


class AlreadyRunning(RuntimeError):
    """Another demo holds the lab directory."""


def _claim(run_dir: Path) -> None:
    """Make `run_dir` fresh for this run, unless a live demo is using it."""
    pid_file = run_dir / "demo.pid"
    with contextlib.suppress(FileNotFoundError, ValueError):
        pid = int(pid_file.read_text(encoding="utf-8"))
        if pid != os.getpid() and Path(f"/proc/{pid}").exists():
            raise AlreadyRunning(f"another demo is running (pid {pid}); stop it first")
    # Every lab run starts from nothing: a fresh owner, fresh doorbells, fresh pairing.
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    pid_file.write_text(str(os.getpid()), encoding="utf-8")


class LabDemo:
    """Everything one namespace demo started, so `close` can stop it in order."""

    def __init__(self, options: DemoOptions, run_dir: Path) -> None:
        self.options = options
        self.run_dir = run_dir
        self.topology: Topology | None = None
        self.doorbells: list[Doorbell] = []
        self.doorbird: ManagedProcess | None = None
        self.doorbird_address = ""
        self.hass: ManagedProcess | None = None
        self.forwarder: TcpForwarder | None = None
        self.url = ""
        self.request_id: str | None = None
        self.requester_task: asyncio.Task[None] | None = None
        self.agency: LabAgency | None = None
        self.area_request_id: str | None = None
        self.agency_task: asyncio.Task[None] | None = None

    def start_processes(self) -> None:
        """Network and processes, from the main thread (see procs.py on why)."""
        self.topology = topo = create_topology(len(DOORBELL_NAMES))
        bird_host = topo.add_doorbell()
        say(f"lab network up: home LAN {topo.lan} in namespaces {', '.join(topo.namespaces())}")
        for index, (name, host) in enumerate(
            zip(DOORBELL_NAMES, topo.doorbells[: len(DOORBELL_NAMES)], strict=True)
        ):
            last = index == len(DOORBELL_NAMES) - 1
            bell = Doorbell(
                name=name,
                address=host.address,
                ns=host.ns,
                state_dir=self.run_dir / _slug(name),
                log_path=self.run_dir / f"{_slug(name)}.log",
                # What you say through the live card lands here, and the doorbell's log
                # says it heard you ("Talk-back started/ended ... played N frames").
                speaker_file=self.run_dir / f"{_slug(name)}-speaker.wav",
                ring_every=self.options.ring_every,
                profile="high" if self.options.high_profile and last else "baseline",
            )
            bell.start()
            self.doorbells.append(bell)
        self.doorbird_address = bird_host.address
        argv = [
            sys.executable, "-m", "scripts.lab.doorbird_emulator",
            "--host", bird_host.address,
            "--username", DOORBIRD_USERNAME,
            "--password", DOORBIRD_PASSWORD,
            "--name", DOORBIRD_NAME,
            "--advertise",
        ]  # fmt: skip
        self.doorbird = ManagedProcess(
            name="DoorBird emulator",
            argv=ns_argv(bird_host.ns, *argv),
            log_path=self.run_dir / f"{_slug(DOORBIRD_NAME)}.log",
            env=python_env(REPO),
            cwd=REPO,
        )
        self.doorbird.start()
        config_dir = prepare_config_dir(self.run_dir / "config")
        self.agency = LabAgency(topology=topo, run_dir=self.run_dir)
        self.agency.start(config_dir)
        say(f"reference agency serving its signed area feed from {self.agency.outside_ns}")
        self.hass = hass_process(config_dir, self.run_dir / "home-assistant.log", topo.hub_ns)
        self.hass.start()
        say(f"Home Assistant starting in {topo.hub_ns} (log: {self.hass.log_path})")

    @property
    def hass_direct_url(self) -> str:
        assert self.topology is not None
        return f"http://{self.topology.hub_uplink_address}:{HASS_PORT}"

    async def setup(self, session: aiohttp.ClientSession) -> HassClient:
        assert self.hass is not None
        infos = []
        for bell in self.doorbells:
            async with within(30, f"doorbell {bell.name!r} answers", bell.process):
                infos.append(await bell.wait_ready(session))
        for bell, info in zip(self.doorbells, infos, strict=True):
            say(f"doorbell {bell.name!r} ({info['id']}) up at {bell.base_url}")
        base = self.hass_direct_url
        async with within(90, "Home Assistant answers HTTP", self.hass):
            await wait_http_ready(session, base, self.hass)
        token = await onboard(session, base, OWNER)
        client = HassClient(session=session, base_url=base, token=token)
        async with within(90, "Home Assistant finishes starting", self.hass):
            await client.wait_running()
        client.token = await client.long_lived_token("doorstep demo")
        token_file = self.run_dir / "token"
        token_file.write_text(client.token + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        say("Home Assistant running and onboarded")

        ws = await client.websocket()
        try:
            await self._open_on_doorstep_dashboard(ws)
            for bell, info in zip(self.doorbells, infos, strict=True):
                started = time.monotonic()
                async with within(30, f"Home Assistant discovers {bell.name!r} by mDNS"):
                    flow = await wait_for_discovery(ws, device_id=info["id"])
                say(f"discovered {bell.name!r} by mDNS after {time.monotonic() - started:.1f} s")
                result = await pair_flow(client, flow, bell.pairing_code())
                if result["type"] != "create_entry":
                    raise RuntimeError(f"pairing {bell.name!r} did not finish: {result}")
                say(f"paired {bell.name!r} through the config flow")
            await self._sign_in_doorbird(client, ws)
            await self._ignore_core_doorbird_offer(ws)
            await dismiss_stale_discovery_notice(client, ws)
        finally:
            await ws.close()
        await self._start_forwarder()
        await self._ask_for_footage(session, client)
        await self._subscribe_to_agency(client)
        return client

    async def _subscribe_to_agency(self, client: HassClient) -> None:
        """The household subscribes to the agency's feed; only the entry around the
        home becomes a request, and the agency learns nothing until one is approved."""
        agency = self.agency
        assert agency is not None
        await agency.wait_serving()
        # The feed asks for the last hour, which now holds the front door's ring.
        await asyncio.to_thread(agency.publish, datetime.now(UTC))
        confirm = await subscribe(client, agency.url, agency.fingerprint)
        seen = confirm["description_placeholders"]["fingerprint"]
        say(f"subscribed to {AGENCY_NAME}'s area feed {agency.url} (key {seen})")
        async with within(60, "the area request around the home appears"):
            while True:
                if "RPD-2026-0412" in (found := await area_requests(client)):
                    break
                await asyncio.sleep(0.5)
        self.area_request_id = found["RPD-2026-0412"]
        say(f"area request RPD-2026-0412 (around this home) is pending: {self.area_request_id}")
        if "RPD-2026-0413" in found:
            raise RuntimeError("the area request 60 km away became a request here")
        say("area request RPD-2026-0413 (60 km away) did not match and left no request")
        if not self.options.smoke:
            self.agency_task = asyncio.create_task(
                self.agency_waits(REQUESTER_PATIENCE), name="demo agency"
            )

    async def agency_waits(self, patience: float) -> None:
        """Print the agency's verdict once the household has approved its area request."""
        assert self.agency is not None
        log = await self.agency.wait_verified("rpd-near", patience)
        for line in log.splitlines():
            if "upload for entry" in line or line.startswith("  "):
                say(f"agency: {line.strip()}")

    async def _sign_in_doorbird(self, client: HassClient, ws: HassWebSocket) -> None:
        """The emulated DoorBird: discovered by mDNS, signed in with its API user."""
        started = time.monotonic()
        async with within(30, f"Home Assistant discovers {DOORBIRD_NAME!r} by mDNS", self.doorbird):
            flow = await wait_for_discovery(ws, device_id=DOORBIRD_MAC)
        say(f"discovered {DOORBIRD_NAME!r} by mDNS after {time.monotonic() - started:.1f} s")
        result = await client.post(
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"username": DOORBIRD_USERNAME, "password": DOORBIRD_PASSWORD},
        )
        if result["type"] != "create_entry":
            raise RuntimeError(f"signing in to {DOORBIRD_NAME!r} did not finish: {result}")
        say(f"signed in to {DOORBIRD_NAME!r} (the DoorBird emulator) through the config flow")

    @staticmethod
    async def _open_on_doorstep_dashboard(ws: HassWebSocket) -> None:
        """Make the demo's dashboard the one the printed URL opens (Settings >
        Dashboards > Set as default, for everyone). Home Assistant 2026 otherwise opens
        its generated home page, which has no doorbell on it."""
        current = await ws.call("frontend/get_system_data", key="core")
        core = dict(current.get("value") or {})
        core["default_panel"] = "lovelace"
        await ws.call("frontend/set_system_data", key="core", value=core)

    async def _ignore_core_doorbird_offer(self, ws: HassWebSocket) -> None:
        """Home Assistant's own DoorBird integration offers the same station (it matches
        the same mDNS advert); the Overview would say "1 device to add" for a door that
        is already set up. Ignore that offer, as an owner with both integrations would."""
        try:
            async with asyncio.timeout(CORE_DOORBIRD_PATIENCE):
                await ignore_offer(ws, "doorbird", DOORBIRD_MAC, DOORBIRD_NAME)
        except TimeoutError:
            say(f"Home Assistant's own DoorBird integration did not offer {DOORBIRD_NAME!r}")
            return
        say(f"ignored Home Assistant's own DoorBird offer for {DOORBIRD_NAME!r}, as its "
            "owner would (Doorstep has it)")  # fmt: skip

    async def _ask_for_footage(self, session: aiohttp.ClientSession, client: HassClient) -> None:
        """A ring leaves a clip; then an outside party asks for it and waits for a person."""
        token_file = self.run_dir / "requester_token"
        token_file.write_text(await create_requester(client) + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        await self.doorbells[0].press(session)
        # Pre-roll plus post-roll (10 + 10 s by default) and a moment to write the MP4.
        say("rang the front door; waiting for its clip before filing a request")
        await asyncio.sleep(12)
        self.request_id = await file_request(self.hass_direct_url, token_file)
        say(f"'{REQUESTER_NAME}' asked for footage: request {self.request_id} is pending")
        if not self.options.smoke:
            # Like a police portal: it waits for the household's answer, then picks the
            # footage up and checks it against the hub's signature.
            self.requester_task = asyncio.create_task(
                self.requester_waits(REQUESTER_PATIENCE), name="demo requester"
            )

    async def requester_waits(self, patience: float) -> None:
        """Print the requester's verdict once a person has decided on its request."""
        assert self.request_id is not None
        say(f"requester: waiting for the household to decide on {self.request_id}")
        verified, lines = await wait_and_verify(
            self.hass_direct_url,
            self.run_dir / "requester_token",
            self.request_id,
            self.run_dir / "evidence",
            patience=patience,
        )
        for line in lines:
            say(f"requester: {line}")
        say(
            "requester: footage received and verified"
            if verified
            else "requester: no verified footage (declined, revoked, expired or failed)"
        )

    async def _start_forwarder(self) -> None:
        assert self.topology is not None
        forwarder = TcpForwarder("127.0.0.1", HASS_PORT, self.topology.hub_uplink_address,
                                 HASS_PORT)  # fmt: skip
        try:
            await forwarder.start()
        except OSError as err:
            say(f"127.0.0.1:{HASS_PORT} is taken ({err.strerror}); use the direct address")
            self.url = self.hass_direct_url
            return
        self.forwarder = forwarder
        self.url = f"http://127.0.0.1:{HASS_PORT}"

    def banner(self) -> str:
        lines = [
            "",
            "Doorstep demo is ready.",
            f"  Open      {self.url}",
            f"  Log in    username {OWNER.username!r}, password {OWNER.password!r}",
            f"  Token     {self.run_dir / 'token'} (long-lived, for the REST API)",
            "  Ring a doorbell:",
        ]
        lines += [f"    {bell.curl_press()}    # {bell.name}" for bell in self.doorbells]
        lines.append(
            f"    curl -X POST http://{self.doorbird_address}/lab/ring"
            f"    # {DOORBIRD_NAME} (DoorBird emulator)"
        )
        if self.request_id:
            token = self.run_dir / "requester_token"
            fetch = " ".join(
                requester_command(
                    self.url, "fetch", self.request_id, f"--out={self.run_dir / 'evidence'}"
                )
            )
            lines += [
                f"  A footage request from {REQUESTER_NAME!r} is waiting. Nothing leaves until",
                "  you turn on its switch in the dashboard's 'Footage requests' card. The",
                "  requester is waiting: this log shows its verdict once it has the clips.",
                "  Fetch and verify again by hand as the requester would:",
                f"    DOORSTEP_REQUESTER_TOKEN=$(cat {token}) {fetch}",
            ]
        lines += [
            "  Answer the door: the dashboard's 'Answer' view plays the front door's picture",
            "  and its tone sequence; hold 'Hold to talk' and speak. Each doorbell's log says",
            "  what it heard ('Talk-back ended: the speaker played ... s of sound').",
            *(f"    {bell.log_path}" for bell in self.doorbells),
        ]
        if self.options.ring_every:
            lines.append(f"  The doorbells also ring every {self.options.ring_every:g} s.")
        if self.options.high_profile:
            lines.append(
                f"  {self.doorbells[-1].name} sends High profile: its live view is re-encoded "
                "on the hub, and Settings > Repairs explains why."
            )
        lines += [f"  Logs      {self.run_dir}/*.log", "  Stop      Ctrl-C", ""]
        return "\n".join(lines)

    async def close(self) -> None:
        if self.agency_task is not None:
            self.agency_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.agency_task
        if self.requester_task is not None:
            self.requester_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.requester_task
        if self.forwarder is not None:
            await self.forwarder.close()
        if self.hass is not None:
            self.hass.stop()
        for bell in self.doorbells:
            bell.stop()
        if self.agency is not None:
            self.agency.stop()
        if self.doorbird is not None:
            self.doorbird.stop(grace=5)
        if self.topology is not None:
            self.topology.teardown()
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / "demo.pid").unlink()


async def smoke_check(demo: LabDemo, client: HassClient, session: aiohttp.ClientSession) -> None:
    """Both doorbells' entities exist, a ring arrives, and the UI answers on the URL."""
    async with session.get(f"{demo.url}/") as resp:
        if resp.status != 200 or "<html" not in (await resp.text()).lower():
            raise RuntimeError(f"the UI at {demo.url} answered {resp.status}")
    ws: HassWebSocket = await client.websocket()
    try:
        # Every door is set up and the other offer ignored: nothing waits under
        # Discovered, so the Overview has no "device to add".
        offers = await ws.call("config_entries/flow/progress")
        if offers:
            raise RuntimeError(f"Home Assistant still offers devices to add: {offers}")
        say("smoke: no device is left to add under Discovered")
        changes = await ws.subscribe("subscribe_events", event_type="state_changed")
        for name in (*DOORBELL_NAMES, DOORBIRD_NAME):
            connectivity = _entity(name, "connectivity", "binary_sensor")
            async with within(20, f"{connectivity} is on"):
                await _wait_entity_state(client, connectivity, "on")
        front = demo.doorbells[0]
        entity = _entity(front.name, "doorbell", "event")
        before = (await client.get(f"/api/states/{entity}"))["state"]
        pressed = time.monotonic()
        await front.press(session)
        async with within(10, f"the ring reaches {entity}"):
            while True:
                data = (await changes.get())["data"]
                state = (data["new_state"] or {}).get("state")
                if data["entity_id"] == entity and state not in {before, "unavailable", None}:
                    break
        say(f"smoke: ring reached {entity} {1000 * (time.monotonic() - pressed):.0f} ms "
            "after the press")  # fmt: skip
        bird = _entity(DOORBIRD_NAME, "doorbell", "event")
        before = (await client.get(f"/api/states/{bird}"))["state"]
        pressed = time.monotonic()
        async with session.post(f"http://{demo.doorbird_address}/lab/ring") as resp:
            if await resp.json() != [200]:
                raise RuntimeError(f"the DoorBird's call to Home Assistant failed: {resp}")
        async with within(10, f"the DoorBird's ring reaches {bird}"):
            while True:
                data = (await changes.get())["data"]
                state = (data["new_state"] or {}).get("state")
                if data["entity_id"] == bird and state not in {before, "unavailable", None}:
                    break
        say(f"smoke: the DoorBird's pushed ring reached {bird} "
            f"{1000 * (time.monotonic() - pressed):.0f} ms after the press")  # fmt: skip
        pending = await client.get("/api/states/sensor.doorstep_sharing_pending_requests")
        # The requester's request and the agency's area request around the home.
        if pending["state"] != "2":
            raise RuntimeError(f"not both requests are pending in Home Assistant: {pending}")
        say("smoke: the footage requests wait, off, for a person")
        await smoke_approve_and_deliver(demo, session)
    finally:
        await ws.close()


async def smoke_approve_and_deliver(demo: LabDemo, session: aiohttp.ClientSession) -> None:
    """The owner logs in, looks at the preview and approves it with their password, as in
    the card; the requester verifies the clips. (The demo's long-lived token could not.)"""
    assert demo.request_id is not None
    token = await login(session, demo.hass_direct_url, OWNER)
    person = await HassWebSocket.connect(session, demo.hass_direct_url, token)
    try:
        approved = await approve_as_owner(person, demo.request_id, OWNER)
    finally:
        await person.close()
    if approved.get("state") != "approved":
        raise RuntimeError(f"approving as the owner did not approve: {approved}")
    say(f"smoke: the owner approved {demo.request_id} as the card does (preview, password)")
    verified, lines = await wait_and_verify(
        demo.hass_direct_url,
        demo.run_dir / "requester_token",
        demo.request_id,
        demo.run_dir / "evidence",
        patience=30,
    )
    for line in lines:
        say(f"requester: {line}")
    if not verified:
        raise RuntimeError("the requester could not verify the approved footage")
    say("smoke: the requester received and verified the approved footage")
    assert demo.agency is not None
    assert demo.area_request_id is not None
    token = await login(session, demo.hass_direct_url, OWNER)
    person = await HassWebSocket.connect(session, demo.hass_direct_url, token)
    try:
        approved = await approve_as_owner(person, demo.area_request_id, OWNER)
    finally:
        await person.close()
    if approved.get("state") != "approved":
        raise RuntimeError(f"approving the area request did not approve: {approved}")
    say(f"smoke: the owner approved the area request {demo.area_request_id}")
    log = await demo.agency.wait_verified("rpd-near", 60)
    for line in log.splitlines():
        if "upload for entry" in line or line.startswith("  "):
            say(f"agency: {line.strip()}")
    if "upload for entry rpd-near: VERIFIED" not in log:
        raise RuntimeError("the agency could not verify the area request's upload")
    say("smoke: the agency received and verified the area request's upload")


async def _wait_entity_state(client: HassClient, entity_id: str, want: str) -> None:
    while True:
        # 404 until the entity exists.
        with contextlib.suppress(HassError):
            if (await client.get(f"/api/states/{entity_id}"))["state"] == want:
                return
        await asyncio.sleep(0.2)


async def run_lab(options: DemoOptions) -> int:
    reason = lab_unavailable_reason()
    if reason:
        say(f"cannot build the demo network: {reason}")
        return 1
    run_dir = DEMO_DIR / "lab"
    try:
        _claim(run_dir)
    except AlreadyRunning as err:
        say(str(err))
        return 1
    demo = LabDemo(options, run_dir)
    started = time.monotonic()
    try:
        demo.start_processes()
        async with aiohttp.ClientSession() as session:
            if options.smoke:
                async with within(SMOKE_TIMEOUT, "smoke run"):
                    client = await demo.setup(session)
                    await smoke_check(demo, client, session)
                say(f"smoke: OK in {time.monotonic() - started:.0f} s")
                return 0
            await demo.setup(session)
            print(demo.banner(), flush=True)
            await asyncio.Event().wait()  # until Ctrl-C cancels us
    except asyncio.CancelledError:
        say("stopping")
        # Ctrl-C ends a normal demo as intended; a smoke run that was cut short failed.
        return 130 if options.smoke else 0
    except (NetnsError, ProcessFailed, RuntimeError, TimeoutError, aiohttp.ClientError) as err:
        say(f"failed: {err!r}" if not str(err) else f"failed: {err}")
        say(f"logs: {run_dir}/*.log")
        return 1
    finally:
        await demo.close()
        say("stopped; network namespaces removed")
    return 0


def run_lan() -> int:
    """Home Assistant on the real network, with the demo configuration; never automated."""
    config_dir = prepare_config_dir(
        DEMO_DIR / "lan" / "config", skip_core_config=False, overwrite=False
    )
    host = socket.gethostname()
    say(f"Home Assistant on this machine's network, config in {config_dir}")
    say("edit its configuration.yaml for your home's location and time zone")
    say(f"open http://{host}:{HASS_PORT} (or this machine's address) and create your account;")
    say("Doorstep offers every doorbell it finds on the LAN under Settings > Devices.")
    argv = [sys.executable, "-m", "homeassistant", "-c", str(config_dir), "--skip-pip"]
    os.execv(sys.executable, argv)  # noqa: S606 - this process becomes Home Assistant


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    if options.lan:
        return run_lan()

    async def guarded() -> int:
        # Ctrl-C and SIGTERM cancel the run, so its finally block tears everything down.
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, task.cancel)
        return await run_lab(options)

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["DemoOptions", "LabDemo", "main", "parse_args"]

"""Doorstep installs on a stock Home Assistant the way a HACS user's hub installs it.

The test that would have caught the av conflict of HA 2025.4 (its constraints pinned
av 13.1.0; aiortc 1.16.0 needs av 14 or newer, so the requirement could not install):

- a venv holding only Home Assistant and its frontend (`scripts/lab/stock_ha.py`; built
  once and cached, reset to its stock packages before every run);
- a config dir with `custom_components/doorstep` copied in, as HACS or the Marketplace
  would;
- Home Assistant started without `--skip-pip`, so it installs the manifest's
  requirements itself, with uv and its own package constraints, from the registry.

Where Home Assistant runs: inside the lab's hub namespace, like every e2e Home
Assistant, so its zeroconf speaks mDNS only on the lab's bridge. The namespace has no
route out. Its one way to the package registry is `scripts/lab/registry_proxy.py`, an
HTTP CONNECT proxy in the root namespace on the root end of the hub's uplink, which
tunnels to the registry's two hosts on port 443 and refuses anything else (the test
asserts it was asked for nothing else). Home Assistant's own HTTP clients do not use
proxies (aiohttp without trust_env); only its installer does, through HTTPS_PROXY.
Chromium runs under the live-view test's egress guard (`egress_guard`), and a failed
install of aiortc fails the test at once, with Home Assistant's reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import socket
import time
from typing import Any

import aiohttp
from playwright.async_api import async_playwright
import pytest

from scripts.lab.doorbell import Doorbell
from scripts.lab.forward import TcpForwarder
from scripts.lab.hass import (
    HASS_PORT,
    INTEGRATION_SOURCE,
    HassClient,
    Owner,
    onboard,
    prepare_config_dir,
    wait_http_ready,
)
from scripts.lab.netns import Topology, create_topology, ns_argv
from scripts.lab.pairing import discover_and_pair
from scripts.lab.procs import ManagedProcess, within
from scripts.lab.registry_proxy import REGISTRY_HOSTS, RegistryProxy
from scripts.lab.stock_ha import installed_version, pinned_constraint, stock_venv

from .conftest import CHROMIUM, require_lab, require_tool
from .test_live_view import CHROMIUM_ARGS, WATCH_VIDEO, egress_guard

pytestmark = pytest.mark.e2e

# Taken at import, before Home Assistant's test plugin replaces it for each test with
# one that refuses names (see _registry_names).
_REAL_GETADDRINFO = socket.getaddrinfo

DASHBOARD_PATH = "/lovelace/doorbells"
DOORBELL = "event.front_door_doorbell"
MIN_FRAMES = 30
# The first start installs the requirements of every integration HA sets up by default
# (one, pymicro-vad, is built from source), then Doorstep's: allow for a slow registry.
FIRST_START_TIMEOUT = 900


@dataclass
class StockHome:
    """A lab of its own: one doorbell and a stock Home Assistant in the hub namespace."""

    topology: Topology
    hass: ManagedProcess
    venv: Path
    proxy: RegistryProxy
    base_url: str
    doorbell: Doorbell


@pytest.fixture
def _registry_names() -> Iterator[None]:
    """Let the registry proxy look up the registry's host names.

    Home Assistant's test plugin refuses every DNS lookup in tests. The proxy resolves
    only the registry's hosts (it refuses any other CONNECT before looking anything up),
    so for this test the real lookup is put back, and the plugin's after.
    """
    patched = socket.getaddrinfo
    socket.getaddrinfo = _REAL_GETADDRINFO
    try:
        yield
    finally:
        socket.getaddrinfo = patched


@pytest.fixture
def lab_owner(tmp_path: Path) -> Iterator[ManagedProcess]:
    """A process that owns this test's namespaces: the lab removes namespaces whose
    owner died, and the shared e2e lab is owned by the test process itself."""
    owner = ManagedProcess(
        name="stock lab owner", argv=["sleep", "infinity"], log_path=tmp_path / "owner.log"
    )
    owner.start()
    try:
        yield owner
    finally:
        owner.stop()


@pytest.fixture
async def stock_home(
    tmp_path: Path, lab_owner: ManagedProcess, _registry_names: None
) -> AsyncIterator[StockHome]:
    require_lab()
    # Built once (a minute or two), then reset to its stock packages: off the loop.
    venv = await asyncio.to_thread(stock_venv)
    assert installed_version(venv, "aiortc") is None, "the stock venv must not hold aiortc"
    assert lab_owner.pid is not None
    topology = create_topology(1, owner_pid=lab_owner.pid)
    proxy = RegistryProxy(host=topology.root_address)
    hass: ManagedProcess | None = None
    doorbell: Doorbell | None = None
    try:
        await proxy.start()
        config = prepare_config_dir(tmp_path / "config")
        # As HACS would: a copy of the integration, not the lab's symlink to the repo.
        link = config / "custom_components" / "doorstep"
        link.unlink()
        shutil.copytree(INTEGRATION_SOURCE, link, ignore=shutil.ignore_patterns("__pycache__"))
        env = {
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/root"),
            "VIRTUAL_ENV": str(venv),
            "PYTHONUNBUFFERED": "1",
            "HTTPS_PROXY": proxy.url,
            "HTTP_PROXY": proxy.url,
            "NO_PROXY": "localhost,127.0.0.1",
            # uv checks the registry's certificate against the system's CA bundle.
            "UV_SYSTEM_CERTS": "1",
            "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        }
        hass = ManagedProcess(
            name="stock Home Assistant",
            argv=ns_argv(
                topology.hub_ns,
                str(venv / "bin" / "python"),
                "-m",
                "homeassistant",
                "-c",
                str(config),
                "--log-no-color",
            ),
            log_path=tmp_path / "hass.log",
            env=env,
        )
        hass.start()
        host = topology.doorbells[0]
        doorbell = Doorbell(
            name="Front door",
            address=host.address,
            ns=host.ns,
            state_dir=tmp_path / "front-door",
            log_path=tmp_path / "front-door.log",
        )
        doorbell.start()
        yield StockHome(
            topology=topology,
            hass=hass,
            venv=venv,
            proxy=proxy,
            base_url=f"http://{topology.hub_uplink_address}:{HASS_PORT}",
            doorbell=doorbell,
        )
    finally:
        if doorbell is not None:
            doorbell.stop()
        if hass is not None:
            hass.stop()
        await proxy.close()
        topology.teardown()


async def test_stock_home_assistant_installs_and_runs_doorstep(
    stock_home: StockHome, chromium_in_group: Path
) -> None:
    require_tool(str(CHROMIUM), "chromium")
    hass, owner = stock_home.hass, Owner()
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        async with within(FIRST_START_TIMEOUT, "stock Home Assistant HTTP ready", hass):
            await wait_http_ready(session, stock_home.base_url, hass)
        token = await onboard(session, stock_home.base_url, owner)
        client = HassClient(session=session, base_url=stock_home.base_url, token=token)
        async with within(FIRST_START_TIMEOUT, "stock Home Assistant RUNNING", hass):
            await client.wait_running()
        start_seconds = time.monotonic() - started

        # Discovery loads Doorstep (Home Assistant installs an integration's requirements
        # when it first loads it, here for the zeroconf flow); the doorbell pairs.
        # The first discovery waits for the requirements to install.
        pairing = await discover_and_pair(
            client,
            stock_home.doorbell,
            discovery_timeout=300,
            watch=lambda waiting: _unless_install_fails(hass, waiting),
        )
        assert pairing.result["type"] == "create_entry", pairing.result

        # Home Assistant installed Doorstep's requirement itself, and kept its own av.
        aiortc = installed_version(stock_home.venv, "aiortc")
        av = installed_version(stock_home.venv, "av")
        assert aiortc == "1.16.0", hass.log_tail()
        assert av == pinned_constraint("av") == "19.0.0"
        # ...from the registry and nowhere else.
        assert stock_home.proxy.tunnelled, "Home Assistant installed nothing"
        assert set(stock_home.proxy.tunnelled) <= REGISTRY_HOSTS
        assert stock_home.proxy.refused == []

        # A press reaches the doorbell's event entity.
        async with within(20, "the event entity exists"):
            await _until(client, DOORBELL, lambda state: state is not None)
        await stock_home.doorbell.press(session)
        async with within(10, "the ring reaches the event entity"):
            await _until(
                client,
                DOORBELL,
                lambda state: state is not None and state["attributes"].get("event_type") == "ring",
            )

        # Chromium grants camera permission (which keeps its ICE candidates free of mDNS
        # names) only to a secure origin: reach Home Assistant through localhost.
        forwarder = TcpForwarder("127.0.0.1", 0, stock_home.topology.hub_uplink_address, HASS_PORT)
        await forwarder.start()
        try:
            # The same guard as the live-view test: the browser may reach only loopback
            # and the lab, and the lab nothing beyond itself.
            with egress_guard(stock_home.topology, f"ds{os.getpid()}stock") as guard:
                frames = await _live_view_frames(
                    f"http://127.0.0.1:{forwarder.bound_port}", owner, chromium_in_group
                )
                packets = guard.read()
        finally:
            await forwarder.close()
    assert frames > MIN_FRAMES
    assert packets["browser_outside"] == packets["browser_dns"] == 0, packets
    assert packets["lab_outside"] == packets["uplink_outside"] == 0, packets
    assert packets["browser_lab"] > 0, packets

    log = hass.log_text()
    ours = [line for line in log.splitlines() if "doorstep" in line.lower()]
    errors = [line for line in ours if " ERROR " in line]
    deprecations = [line for line in ours if "deprecated" in line or "stop working" in line]
    assert not errors, "\n".join(errors)
    assert not deprecations, "\n".join(deprecations)
    print(
        f"\nstock install: HA up in {start_seconds:.0f} s, installed aiortc {aiortc} "
        f"(av {av}) through {sorted(set(stock_home.proxy.tunnelled))}; "
        f"live view {frames} frames"
    )


async def _unless_install_fails[T](hass: ManagedProcess, waiting: Awaitable[T]) -> T:
    """``waiting``, unless Home Assistant says it could not install Doorstep's requirement
    first (as on HA 2025.4): then fail at once, with HA's reason."""

    async def install_failed() -> str:
        while True:
            for line in hass.log_text().splitlines():
                if "Unable to install package aiortc" in line:
                    return line
            await asyncio.sleep(0.5)

    work = asyncio.ensure_future(waiting)
    watch = asyncio.ensure_future(install_failed())
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, watch):
            if not task.done():
                task.cancel()
        await asyncio.gather(work, watch, return_exceptions=True)
    if watch.done() and not watch.cancelled():
        raise AssertionError(f"Home Assistant could not install Doorstep: {watch.result()}")
    return work.result()


async def _until(
    client: HassClient, entity_id: str, done: Callable[[dict[str, Any] | None], bool]
) -> None:
    """Poll Home Assistant's REST API (another process: no event to wait on)."""
    while True:
        states: list[dict[str, Any]] = await client.get("/api/states")
        if done(next((s for s in states if s["entity_id"] == entity_id), None)):
            return
        await asyncio.sleep(0.2)


async def _live_view_frames(base_url: str, owner: Owner, chromium: Path) -> int:
    """Log in with headless Chromium and count the frames the dashboard's camera shows."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            # With camera permission Chromium's ICE candidates are plain addresses, so
            # it needs no mDNS (see test_live_view.py).
            await context.grant_permissions(["camera", "microphone"], origin=base_url)
            page = await context.new_page()
            await page.goto(f"{base_url}{DASHBOARD_PATH}")
            await page.locator("input[name=username]").fill(owner.username)
            await page.locator("input[name=password]").fill(owner.password)
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"**{DASHBOARD_PATH}", timeout=30_000)
            await page.wait_for_function(f"({WATCH_VIDEO})() >= 0", timeout=30_000)
            await page.wait_for_function(
                f"({WATCH_VIDEO})() > {MIN_FRAMES}", timeout=30_000, polling=100
            )
            return int(await page.evaluate("window.__doorstepVideo.frames"))
        finally:
            await browser.close()

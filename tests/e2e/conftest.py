"""Fixtures for end-to-end tests: a real Home Assistant process and real reference
doorbells in network namespaces this test run creates, with real mDNS between them.

Processes and the network are package-scoped: Home Assistant takes seconds to start, so
every e2e test shares one lab, which is torn down right after the last e2e test. Each
test gets its own aiohttp session and websocket on its own event loop. Package-level
async work (waiting for HTTP, onboarding, pairing) runs on a short-lived loop in a helper
thread, so it never shares a loop with a test.

Tests that change the lab (kill a doorbell, ...) put it back before they end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import socket
import tempfile
import threading
from typing import Any

import aiohttp
import pytest
import pytest_socket  # type: ignore[import-untyped]

from scripts.lab.doorbell import Doorbell
from scripts.lab.hass import (
    HASS_PORT,
    HassClient,
    HassWebSocket,
    Owner,
    hass_process,
    onboard,
    prepare_config_dir,
    wait_http_ready,
)
from scripts.lab.netns import Topology, create_topology, lab_unavailable_reason
from scripts.lab.pairing import discover_and_pair
from scripts.lab.procs import ManagedProcess, within
from scripts.lab.proxy import trust_lab_proxy

CHROMIUM = Path("/usr/bin/chromium")

# A group id nothing else on the machine uses, so the root namespace's nftables rules
# match the browser's packets and only those. Per run, so parallel runs do not mix.
BROWSER_GID = 2_000_000_000 + os.getpid()


def require_tool(path: str, package: str) -> None:
    """Skip (or, in CI, fail) when a system tool the test needs is missing."""
    if shutil.which(path) is not None:
        return
    reason = f"live view e2e test needs `{path}` (Debian package {package})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def chromium_in_group(tmp_path: Path) -> Path:
    """An executable that starts Debian's Chromium under the browser's group id.

    Playwright starts the browser itself, so the group is set by a wrapper: setpriv
    changes only the group (the user stays root, as Chromium runs with --no-sandbox).
    """
    require_tool(str(CHROMIUM), "chromium")
    wrapper = tmp_path / "chromium-in-group"
    wrapper.write_text(
        f'#!/bin/sh\nexec setpriv --regid {BROWSER_GID} --clear-groups -- {CHROMIUM} "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    return wrapper


# Taken at import, before any test restricts sockets (see _lift_socket_guard).
_REAL_CONNECT = socket.socket.connect


def _lift_socket_guard() -> None:
    """Let e2e code reach the lab's own veth addresses.

    The Home Assistant test plugin allows connections only to 127.0.0.1 in every test.
    E2E tests talk to a real Home Assistant and real doorbells on addresses inside the
    namespaces this run created, so for them the guard is lifted (pytest-socket puts
    it back after each test): by an autouse fixture for the test itself, and by
    `run_async` for package-scoped fixtures, which are set up inside whichever test
    needs them first, before that test's function-scoped fixtures run.
    """
    pytest_socket.enable_socket()
    socket.socket.connect = _REAL_CONNECT  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _lab_sockets_for_test() -> None:
    _lift_socket_guard()


@pytest.fixture
def expected_lingering_timers() -> bool:
    """Tell the Home Assistant test plugin's cleanup check to warn, not fail, on timers.

    That check is meant for a Home Assistant running inside the test. Here Home
    Assistant is another process; the only timers on an e2e test's loop are asyncio's
    TLS shutdown timers for connections to a doorbell, which may still be closing
    gracefully when the check runs on a busy machine. Tasks stay strictly checked.
    """
    return True


def require_lab() -> None:
    """Skip (or, in CI, fail) when this machine cannot build the isolated network."""
    reason = lab_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"e2e tests must run in CI but cannot: {reason}")
    pytest.skip(f"e2e tests need the isolated lab network: {reason}")


def run_async[T](make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a fresh event loop in a helper thread."""
    _lift_socket_guard()
    outcome: dict[str, Any] = {}

    def runner() -> None:
        try:
            outcome["value"] = asyncio.run(make_coro())
        except BaseException as err:  # handed to the caller's thread below
            outcome["error"] = err

    thread = threading.Thread(target=runner, name="e2e-setup")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["value"]
    return result


@dataclass(frozen=True, kw_only=True)
class HassInstance:
    """A running Home Assistant: where it answers and a token for it."""

    process: ManagedProcess
    base_url: str
    token: str
    config_dir: Path


@pytest.fixture(scope="package")
def lab_dir() -> Iterator[Path]:
    """Config, state and logs of this run's lab.

    Not pytest's tmp_path: pytest prunes old base temp dirs, and a concurrent pytest
    run on the same machine could remove Home Assistant's config dir under it. Set
    DOORSTEP_KEEP_LAB=1 to keep the dir for a look afterwards.
    """
    path = Path(tempfile.mkdtemp(prefix=f"doorstep-e2e-{os.getpid()}-"))
    try:
        yield path
    finally:
        if os.environ.get("DOORSTEP_KEEP_LAB") == "1":
            print(f"lab dir kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="package")
def topology() -> Iterator[Topology]:
    require_lab()
    topo = create_topology(doorbell_count=1)
    try:
        yield topo
    finally:
        topo.teardown()


@pytest.fixture(scope="package")
def hass_instance(topology: Topology, lab_dir: Path) -> Iterator[HassInstance]:
    config_dir = prepare_config_dir(lab_dir / "config")
    # Loopback is a trusted proxy here, as on a hub with nginx in front of Home
    # Assistant (test_remote_access.py); nothing else in the lab connects from it.
    trust_lab_proxy(config_dir)
    proc = hass_process(config_dir, lab_dir / "hass.log", topology.hub_ns)
    proc.start()
    base_url = f"http://{topology.hub_uplink_address}:{HASS_PORT}"
    try:

        async def setup() -> str:
            async with aiohttp.ClientSession() as session:
                async with within(60, "Home Assistant HTTP ready", proc):
                    await wait_http_ready(session, base_url, proc)
                token = await onboard(session, base_url, Owner())
                client = HassClient(session=session, base_url=base_url, token=token)
                async with within(60, "Home Assistant RUNNING", proc):
                    await client.wait_running()
                return await client.long_lived_token("doorstep e2e")

        token = run_async(setup)
        yield HassInstance(process=proc, base_url=base_url, token=token, config_dir=config_dir)
    finally:
        proc.stop()


@pytest.fixture(scope="package")
def front_door(topology: Topology, lab_dir: Path) -> Iterator[Doorbell]:
    host = topology.doorbells[0]
    bell = Doorbell(
        name="Front door",
        address=host.address,
        ns=host.ns,
        state_dir=lab_dir / "front-door",
        log_path=lab_dir / "front-door.log",
        speaker_file=lab_dir / "front-door-speaker.wav",
    )
    bell.start()
    try:

        async def ready() -> Any:
            async with aiohttp.ClientSession() as session, within(20, "ready", bell.process):
                return await bell.wait_ready(session)

        run_async(ready)
        yield bell
    finally:
        bell.stop()


@dataclass(frozen=True, kw_only=True)
class Paired:
    """What discovery and pairing produced."""

    device_id: str
    entry_id: str
    discovery_seconds: float


@pytest.fixture(scope="package")
def paired(hass_instance: HassInstance, front_door: Doorbell) -> Paired:
    """Wait for Home Assistant to discover the doorbell by mDNS, then pair it through
    the config-flow API with the code the doorbell shows."""

    async def discover_and_pair_front_door() -> Paired:
        async with aiohttp.ClientSession() as session:
            client = HassClient(
                session=session, base_url=hass_instance.base_url, token=hass_instance.token
            )
            pairing = await discover_and_pair(client, front_door)
        assert pairing.result["type"] == "create_entry", pairing.result
        return Paired(
            device_id=pairing.info["id"],
            entry_id=pairing.entry_id,
            discovery_seconds=pairing.discovery_seconds,
        )

    return run_async(discover_and_pair_front_door)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failed e2e test, attach the tails of the lab's logs to the report."""
    report = yield
    lab = getattr(item, "funcargs", {}).get("lab_dir")
    if report.failed and isinstance(lab, Path):
        report.sections.append(("lab logs", log_tails(lab)))
    return report


def log_tails(lab: Path, lines: int = 40) -> str:
    parts = []
    for log in sorted(lab.glob("*.log")):
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        parts.append(f"--- {log} (last {len(tail)} lines)\n" + "\n".join(tail))
    return "\n".join(parts)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def hass_client(hass_instance: HassInstance, session: aiohttp.ClientSession) -> HassClient:
    return HassClient(session=session, base_url=hass_instance.base_url, token=hass_instance.token)


@pytest.fixture
async def hass_ws(hass_client: HassClient) -> AsyncIterator[HassWebSocket]:
    ws = await hass_client.websocket()
    try:
        yield ws
    finally:
        await ws.close()

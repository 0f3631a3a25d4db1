"""The reference agency in the lab: an outside host serving a signed area feed.

It publishes two area requests for the last hour: one drawn around the home's location
(Home Assistant's, from configuration.yaml), one around a town 60 km away. It serves
the feed over HTTPS from its own namespace, routed from the hub, with a certificate
from a private CA the hub trusts, and verifies whatever is uploaded to it.
"""

from __future__ import annotations

import ast
import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import re
import subprocess
import sys
from typing import Any

from reference_doorbell.agency_feed import area_entry, circle, polygon

from .certs import TestCa
from .hass import REPO, HassClient
from .netns import Topology, ns_argv
from .outside import OutsideHost
from .procs import ManagedProcess, python_env, within

AGENCY_NAME = "Reference Police Department"
AGENCY_PORT = 8443
# configuration.yaml's home (Amsterdam) and a town 60 km away (Utrecht's centre).
HOME = (52.37, 4.89)
ELSEWHERE = (52.09, 5.12)


def _agency_argv(ns: str, *args: str) -> list[str]:
    return ns_argv(ns, sys.executable, "-m", "reference_doorbell.agency", *args)


@dataclass(kw_only=True)
class LabAgency:
    topology: Topology
    run_dir: Path
    outside: OutsideHost | None = None
    process: ManagedProcess | None = None
    fingerprint: str = ""
    _ca: TestCa | None = field(default=None, repr=False)

    @property
    def outside_ns(self) -> str:
        assert self.outside is not None
        return self.outside.ns

    @property
    def url(self) -> str:
        assert self.outside is not None
        return f"https://{self.outside.address}:{AGENCY_PORT}/feed.json"

    def start(self, *config_dirs: Path) -> None:
        """Build the outside host, make keys and a feed, have each hub trust its CA, serve."""
        self.outside = OutsideHost(topology=self.topology)
        self.outside.build()
        directory = self.run_dir / "agency"
        directory.mkdir(parents=True, exist_ok=True)
        self._ca = TestCa.create(directory / "ca", "Reference agency CA")
        server = self._ca.issue(directory / "ca", [self.outside.address])
        for config_dir in config_dirs:
            trust = config_dir / "doorstep" / "trusted_requesters.pem"
            trust.parent.mkdir(parents=True, exist_ok=True)
            # Append: the owner may trust other requesters' CAs in the same file.
            with trust.open("ab") as handle:
                handle.write(self._ca.cert_path.read_bytes())
        keygen = self._run("keygen", f"--keys={directory / 'keys'}")
        found = re.search(r"fingerprint ([0-9a-f]{64})", keygen)
        assert found is not None, keygen
        self.fingerprint = found.group(1)
        self.publish(datetime.now(UTC))
        self.process = ManagedProcess(
            name="reference agency",
            argv=_agency_argv(
                self.outside.ns,
                "serve",
                f"--feed={directory / 'feed.json'}",
                f"--listen={self.outside.address}:{AGENCY_PORT}",
                f"--cert={server.cert}",
                f"--key={server.key}",
                f"--out={directory / 'received'}",
                "--log-fetches",
            ),
            log_path=self.run_dir / "agency.log",
            env=python_env(REPO),
            cwd=REPO,
        )
        self.process.start()

    def entries(self, now: datetime) -> list[dict[str, Any]]:
        assert self.outside is not None
        common: dict[str, Any] = {
            "reason": "Break-in reported on the street; footage of the last hour may help.",
            "contact": "Reference PD evidence desk, evidence@rpd.example",
            "window_start": now - timedelta(hours=1),
            "window_end": now,
            "wanted_by": now + timedelta(days=7),
        }
        base = f"https://{self.outside.address}:{AGENCY_PORT}/upload"
        return [
            area_entry(
                "rpd-near",
                reference="RPD-2026-0412",
                area=circle(HOME[0], HOME[1], 500),
                upload_url=f"{base}/rpd-near",
                **common,
            ),
            area_entry(
                "rpd-far",
                reference="RPD-2026-0413",
                area=polygon(
                    [
                        (ELSEWHERE[0] - 0.01, ELSEWHERE[1] - 0.01),
                        (ELSEWHERE[0] - 0.01, ELSEWHERE[1] + 0.01),
                        (ELSEWHERE[0] + 0.01, ELSEWHERE[1] + 0.01),
                        (ELSEWHERE[0] + 0.01, ELSEWHERE[1] - 0.01),
                    ]
                ),
                upload_url=f"{base}/rpd-far",
                **common,
            ),
        ]

    def publish(self, now: datetime) -> None:
        """(Re)write the signed feed, with a window ending ``now``."""
        directory = self.run_dir / "agency"
        entries_file = directory / "entries.json"
        entries_file.write_text(json.dumps(self.entries(now), indent=1))
        self._run(
            "publish",
            f"--keys={directory / 'keys'}",
            f"--entries={entries_file}",
            f"--out={directory / 'feed.json'}",
            f"--agency={AGENCY_NAME}",
        )

    def _run(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "reference_doorbell.agency", *args],
            env=python_env(REPO),
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"agency {args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout

    async def wait_serving(self) -> None:
        assert self.process is not None
        async with within(30, "the reference agency serves its feed", self.process):
            while True:
                if "serving https://" in self.process.log_text():
                    return
                await asyncio.sleep(0.2)

    async def wait_verified(self, entry_id: str, patience: float) -> str:
        """The agency's log once it has verified an upload for ``entry_id``."""
        assert self.process is not None
        marker = f"upload for entry {entry_id}: "
        async with within(patience, f"an upload for {entry_id} reaches the agency", self.process):
            while True:
                if marker in (log := self.process.log_text()):
                    return log
                await asyncio.sleep(0.5)

    def fetch_heads(self) -> list[bytes]:
        """Every feed request's head, as the agency received it, in order."""
        assert self.process is not None
        heads = []
        for line in self.process.log_text().splitlines():
            if line.startswith("fetch: b"):
                heads.append(ast.literal_eval(line.removeprefix("fetch: ")))
        return heads

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        if self.outside is not None:
            self.outside.teardown()
            self.outside = None


async def subscribe(client: HassClient, url: str, fingerprint: str) -> dict[str, Any]:
    """Subscribe through the sharing entry's options flow, as the household does."""
    entries = await client.get("/api/config/config_entries/entry?domain=doorstep")
    sharing = next(entry for entry in entries if entry["source"] == "system")
    flow: dict[str, Any] = await client.post(
        "/api/config/config_entries/options/flow", {"handler": sharing["entry_id"]}
    )
    path = f"/api/config/config_entries/options/flow/{flow['flow_id']}"
    await client.post(path, {"next_step_id": "subscribe_feed"})
    confirm: dict[str, Any] = await client.post(path, {"url": url, "fingerprint": fingerprint})
    if confirm.get("step_id") != "confirm_feed":
        raise RuntimeError(f"subscribing did not reach the confirmation: {confirm}")
    done = await client.post(path, {})
    if done.get("type") != "create_entry":
        raise RuntimeError(f"subscribing did not finish: {done}")
    return confirm


async def area_requests(client: HassClient) -> dict[str, str]:
    """Reference -> request id of every request switch from the agency."""
    found = {}
    for state in await client.get("/api/states"):
        attributes = state.get("attributes", {})
        if state["entity_id"].startswith("switch.") and attributes.get("requester") == AGENCY_NAME:
            found[str(attributes["reference"])] = str(attributes["request_id"])
    return found


__all__ = ["AGENCY_NAME", "LabAgency", "area_requests", "subscribe"]

"""Network namespaces and veth pairs for one lab run.

Layout (S is a per-run slot, P the creating process id)::

    root ns --(veth dsPup / up0, 10.232.S.0/30)--> hub ns "dsPhub"
    hub ns: bridge dsPbr 10.231.S.1/24 = the home LAN (multicast on, mDNS allowed)
    doorbell ns "dsPb<i>": lan0 10.231.S.(10+i)/24, its veth peer enslaved to dsPbr

The root namespace gets a unicast route to the LAN through the hub (the hub forwards),
so the test process or a person's curl can press a doorbell's HTTP button. There is no
default route anywhere, so nothing inside the namespaces can reach the outside world,
and multicast is never routed: mDNS stays on the bridge.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
import ipaddress
import logging
import os
from pathlib import Path
import re
import signal
import subprocess
import time

_LOGGER = logging.getLogger(__name__)

# Every namespace and root-side interface this module creates starts with this prefix,
# so a later run can find and remove what a crashed run left behind.
PREFIX = "ds"
_NS_RE = re.compile(rf"^{PREFIX}(\d+)(hub|b\d+|out|atk)$")
_ROOT_LINK_RE = re.compile(rf"^{PREFIX}(\d+)up$")
LAN_NET = "10.231.{slot}.0/24"
UPLINK_NET = "10.232.{slot}.0/30"
SLOTS = 250
MAX_DOORBELLS = 50


class NetnsError(RuntimeError):
    """A namespace command failed or the machine lacks what the lab needs."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def lab_unavailable_reason() -> str | None:
    """Say why the lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the isolated network needs root (ip netns, veth)"
    if not any(Path(d, "ip").exists() for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin")):
        return "iproute2's `ip` command is missing"
    probe = _run("ip", "netns", "list", check=False)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.strip()}"
    return None


@dataclass(frozen=True, kw_only=True)
class DoorbellHost:
    """One doorbell's namespace and its address on the home LAN."""

    ns: str
    address: str


@dataclass(kw_only=True)
class Topology:
    """The namespaces, links and addresses of one run; `build` makes them, `teardown` undoes."""

    owner_pid: int
    slot: int
    doorbell_count: int
    doorbells: list[DoorbellHost] = field(default_factory=list)
    _built: bool = False

    @property
    def hub_ns(self) -> str:
        return f"{PREFIX}{self.owner_pid}hub"

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.owner_pid}br"

    @property
    def root_link(self) -> str:
        return f"{PREFIX}{self.owner_pid}up"

    @property
    def lan(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(LAN_NET.format(slot=self.slot))

    @property
    def uplink(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(UPLINK_NET.format(slot=self.slot))

    @property
    def hub_lan_address(self) -> str:
        """Home Assistant's address on the home LAN (where it speaks mDNS)."""
        return str(self.lan.network_address + 1)

    @property
    def root_address(self) -> str:
        """The root namespace's end of the uplink."""
        return str(self.uplink.network_address + 1)

    @property
    def hub_uplink_address(self) -> str:
        """Home Assistant's address as seen from the root namespace."""
        return str(self.uplink.network_address + 2)

    def namespaces(self) -> list[str]:
        return [self.hub_ns, *(d.ns for d in self.doorbells)]

    def build(self) -> None:
        """Create everything; on any failure remove what was made and re-raise."""
        if self.doorbell_count > MAX_DOORBELLS:
            raise NetnsError(f"at most {MAX_DOORBELLS} doorbells")
        self.doorbells = [
            DoorbellHost(
                ns=f"{PREFIX}{self.owner_pid}b{i}",
                address=str(self.lan.network_address + 10 + i),
            )
            for i in range(self.doorbell_count)
        ]
        self._built = True
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise

    def _build(self) -> None:
        hub = self.hub_ns
        _run("ip", "netns", "add", hub)
        _isolate_ns(hub)
        _run("ip", "-n", hub, "link", "add", self.bridge, "type", "bridge")
        # Snooping would hold back multicast until an IGMP querier exists; a tiny LAN
        # wants plain flooding, like an unmanaged home switch.
        _run("ip", "-n", hub, "link", "set", self.bridge, "type", "bridge", "mcast_snooping", "0")
        _run("ip", "-n", hub, "addr", "add", f"{self.hub_lan_address}/24", "dev", self.bridge)
        _run("ip", "-n", hub, "link", "set", self.bridge, "multicast", "on", "up")
        _run("ip", "-n", hub, "route", "add", "224.0.0.0/4", "dev", self.bridge)
        _set_sysctl(hub, "net/ipv4/ip_forward", "1")

        # The uplink is created straight into place: its root end never carries multicast.
        _run(
            "ip", "link", "add", self.root_link, "type", "veth",
            "peer", "name", "up0", "netns", hub,
        )  # fmt: skip
        _run("sh", "-c", f"echo 1 > /proc/sys/net/ipv6/conf/{self.root_link}/disable_ipv6")
        _run("ip", "link", "set", self.root_link, "multicast", "off")
        _run("ip", "addr", "add", f"{self.root_address}/30", "dev", self.root_link)
        _run("ip", "link", "set", self.root_link, "up")
        _run("ip", "-n", hub, "addr", "add", f"{self.hub_uplink_address}/30", "dev", "up0")
        _run("ip", "-n", hub, "link", "set", "up0", "multicast", "off", "up")
        _run("ip", "route", "add", str(self.lan), "via", self.hub_uplink_address)

        for i, bell in enumerate(self.doorbells):
            self._plug_in(i, bell)
        _LOGGER.debug("lab network up: hub %s, LAN %s", hub, self.lan)

    def _plug_in(self, index: int, bell: DoorbellHost) -> None:
        """Make doorbell `index`'s namespace and join it to the LAN bridge."""
        hub = self.hub_ns
        _run("ip", "netns", "add", bell.ns)
        _isolate_ns(bell.ns)
        port = f"{PREFIX}{self.owner_pid}h{index}"
        _run(
            "ip", "link", "add", port, "netns", hub, "type", "veth",
            "peer", "name", "lan0", "netns", bell.ns,
        )  # fmt: skip
        _run("ip", "-n", hub, "link", "set", port, "master", self.bridge, "up")
        _run("ip", "-n", bell.ns, "addr", "add", f"{bell.address}/24", "dev", "lan0")
        _run("ip", "-n", bell.ns, "link", "set", "lan0", "multicast", "on", "up")
        _run("ip", "-n", bell.ns, "route", "add", "224.0.0.0/4", "dev", "lan0")
        _run("ip", "-n", bell.ns, "route", "add", str(self.uplink), "via", self.hub_lan_address)

    def add_doorbell(self) -> DoorbellHost:
        """Plug one more doorbell into the built LAN (for a test that needs another)."""
        index = len(self.doorbells)
        if not self._built or index >= MAX_DOORBELLS:
            raise NetnsError("the lab is not built, or it has no room for another doorbell")
        bell = DoorbellHost(
            ns=f"{PREFIX}{self.owner_pid}b{index}",
            address=str(self.lan.network_address + 10 + index),
        )
        self.doorbells.append(bell)
        try:
            self._plug_in(index, bell)
        except BaseException:
            self.remove_last_doorbell()
            raise
        # A host added after another was removed gets its address behind a new veth:
        # the hub's neighbour entry still names the old MAC, and for its lifetime (some
        # 20 s) nothing from the hub, Home Assistant included, would reach the new host.
        _run("ip", "-n", self.hub_ns, "neigh", "flush", "to", bell.address, check=False)
        return bell

    def remove_last_doorbell(self) -> None:
        """Undo `add_doorbell`: the namespace goes, and its bridge port with it."""
        bell = self.doorbells.pop()
        remove_namespace(bell.ns)

    def set_doorbell_cable(self, index: int, plugged: bool) -> None:
        """Pull or plug doorbell `index`'s "network cable": its bridge port goes down or
        up, so packets vanish without a reset, as when a doorbell loses power."""
        port = f"{PREFIX}{self.owner_pid}h{index}"
        _run("ip", "-n", self.hub_ns, "link", "set", port, "up" if plugged else "down")

    def teardown(self) -> None:
        """Remove the namespaces (and every process left in them) and the root link."""
        if not self._built:
            return
        self._built = False
        for ns in self.namespaces():
            remove_namespace(ns)
        _run("ip", "link", "del", self.root_link, check=False)
        _run("ip", "route", "del", str(self.lan), check=False)


def _isolate_ns(ns: str) -> None:
    """Bring up `lo` and keep IPv6 off, so no link-local multicast goes anywhere unplanned."""
    _set_sysctl(ns, "net/ipv6/conf/all/disable_ipv6", "1")
    _set_sysctl(ns, "net/ipv6/conf/default/disable_ipv6", "1")
    _run("ip", "-n", ns, "link", "set", "lo", "up")


def _set_sysctl(ns: str, key: str, value: str) -> None:
    _run("ip", "netns", "exec", ns, "sh", "-c", f"echo {value} > /proc/sys/{key}")


def remove_namespace(ns: str) -> None:
    """Kill what still runs in `ns`, then delete it (its veths go with it)."""
    for attempt in range(2):
        pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
        if not pids:
            break
        sig = signal.SIGTERM if attempt == 0 else signal.SIGKILL
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), sig)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and _run("ip", "netns", "pids", ns, check=False).stdout:
            time.sleep(0.05)
    _run("ip", "netns", "del", ns, check=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale() -> list[str]:
    """Remove namespaces and root links whose creating process is gone; return their names."""
    removed: list[str] = []
    listing = _run("ip", "netns", "list", check=False).stdout.splitlines()
    for line in listing:
        name = line.split()[0] if line.split() else ""
        match = _NS_RE.match(name)
        if match and not _pid_alive(int(match.group(1))):
            remove_namespace(name)
            removed.append(name)
    links = _run("ip", "-o", "link", "show", check=False).stdout.splitlines()
    for line in links:
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        match = _ROOT_LINK_RE.match(name)
        if match and not _pid_alive(int(match.group(1))):
            _run("ip", "link", "del", name, check=False)
            removed.append(name)
    # A route through a vanished link disappears with it; a crashed run leaves none.
    if removed:
        _LOGGER.info("removed stale lab leftovers: %s", ", ".join(removed))
    return removed


def _used_networks() -> list[ipaddress.IPv4Network]:
    used: list[ipaddress.IPv4Network] = []
    for line in _run("ip", "-4", "route", "show", "table", "all", check=False).stdout.splitlines():
        dest = line.split()[0] if line.split() else ""
        if dest in {"default", "broadcast", "local", "multicast", "unreachable"}:
            dest = line.split()[1] if len(line.split()) > 1 else ""
        try:
            used.append(ipaddress.IPv4Network(dest, strict=False))
        except ValueError:
            continue
    return used


def pick_slot(owner_pid: int) -> int:
    """A slot whose LAN and uplink networks clash with no route the root namespace has."""
    used = _used_networks()
    for offset in range(SLOTS):
        slot = (owner_pid + offset) % SLOTS + 1
        nets = (
            ipaddress.IPv4Network(LAN_NET.format(slot=slot)),
            ipaddress.IPv4Network(UPLINK_NET.format(slot=slot)),
        )
        if not any(n.overlaps(u) for n in nets for u in used if u.prefixlen > 0):
            return slot
    raise NetnsError("no free lab subnet: too many runs at once?")


def create_topology(doorbell_count: int, owner_pid: int | None = None) -> Topology:
    """Clean up after crashed runs, then build a fresh lab network for this process."""
    reason = lab_unavailable_reason()
    if reason:
        raise NetnsError(reason)
    cleanup_stale()
    pid = os.getpid() if owner_pid is None else owner_pid
    topo = Topology(owner_pid=pid, slot=pick_slot(pid), doorbell_count=doorbell_count)
    topo.build()
    return topo


def ns_argv(ns: str, *argv: str) -> list[str]:
    """The command line that runs `argv` inside namespace `ns`."""
    return ["ip", "netns", "exec", ns, *argv]

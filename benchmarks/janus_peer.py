# ruff: noqa: S603, S607 - fixed argv of system tools (ip, sysctl)
"""The Janus WebRTC gateway (Debian's ``janus`` package) as a peer.

Janus's streaming plugin takes RTP, so a feeder process reads the same doorbell stream
(the plain loopback endpoint) with PyAV and remuxes it, without decoding, to RTP.

Janus (libnice) never gathers ICE candidates on the loopback interface, and with
``ice_enforce_list = "lo"`` it falls back to every other interface, the machine's
outward one included. So Janus runs in a network namespace of its own, joined to the
root namespace by one veth pair on a private /30: its only candidates are that pair's
address, it has no route anywhere else, and the viewers reach it across the pair.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import subprocess

import av

from .common import announce

JANUS_BINARY = "/usr/bin/janus"
_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
MOUNTPOINT = 1


def available() -> str | None:
    """None when Janus can run here, else why not."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "Janus needs its own network namespace, which needs root and iproute2"
    if shutil.which("janus") is None:
        return "the janus binary is not installed (apt-get install -y janus)"
    if not (_LIB / "plugins" / "libjanus_streaming.so").exists():
        return f"the streaming plugin is missing from {_LIB / 'plugins'}"
    return None


@dataclass(frozen=True, slots=True)
class JanusNet:
    """The namespace Janus runs in and the veth pair that joins it to the root."""

    ns: str
    root_link: str
    root_address: str = "10.233.0.1"
    janus_address: str = "10.233.0.2"
    janus_link: str = "jn0"

    @classmethod
    def create(cls) -> JanusNet:
        _remove_stale()
        net = cls(ns=f"dsbench{os.getpid()}", root_link=f"dsbj{os.getpid() % 100000}")
        net.remove()
        run = _ip
        run("netns", "add", net.ns)
        run(
            "link",
            "add",
            net.root_link,
            "type",
            "veth",
            "peer",
            "name",
            net.janus_link,
            "netns",
            net.ns,
        )
        for ns, link, address in (
            (None, net.root_link, net.root_address),
            (net.ns, net.janus_link, net.janus_address),
        ):
            where = [] if ns is None else ["-n", ns]
            # No IPv6 on the pair: no link-local candidates either.
            sysctl = f"net.ipv6.conf.{link}.disable_ipv6=1"
            if ns is None:
                subprocess.run(["sysctl", "-q", "-w", sysctl], check=True)
            else:
                subprocess.run(
                    ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", sysctl], check=True
                )
            run(*where, "addr", "add", f"{address}/30", "dev", link)
            run(*where, "link", "set", link, "up")
        run("-n", net.ns, "link", "set", "lo", "up")
        return net

    def exec_argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def remove(self) -> None:
        subprocess.run(["ip", "link", "del", self.root_link], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, check=False)


def _remove_stale() -> None:
    """Remove what a killed run left behind: namespaces named after a dead process."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        pid = name.removeprefix("dsbench")
        if name.startswith("dsbench") and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            JanusNet(ns=name, root_link=f"dsbj{int(pid) % 100000}").remove()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def write_config(folder: Path, http_port: int, rtp_port: int, net: JanusNet) -> Path:
    """janus.jcfg, the HTTP transport and one streaming mountpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    plugins = [p.name for p in (_LIB / "plugins").glob("libjanus_*.so")]
    transports = [p.name for p in (_LIB / "transports").glob("libjanus_*.so")]
    (folder / "janus.jcfg").write_text(
        f"""general: {{
  configs_folder = "{folder}"
  plugins_folder = "{_LIB / "plugins"}"
  transports_folder = "{_LIB / "transports"}"
  events_folder = "{_LIB / "events"}"
  loggers_folder = "{_LIB / "loggers"}"
  debug_level = 3
  session_timeout = 120
}}
media: {{
  ipv6 = false
  rtp_port_range = "30000-31000"
}}
nat: {{
  nice_debug = false
  ignore_mdns = true
  ice_enforce_list = "{net.janus_link}"
}}
plugins: {{
  disable = "{",".join(p for p in plugins if "streaming" not in p)}"
}}
transports: {{
  disable = "{",".join(t for t in transports if "http" not in t)}"
}}
loggers: {{
  disable = "libjanus_jsonlog.so"
}}
events: {{
  broadcast = false
}}
"""
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
  json = "plain"
  base_path = "/janus"
  http = true
  port = {http_port}
  ip = "{net.janus_address}"
  https = false
}}
admin: {{
  admin_http = false
}}
"""
    )
    (folder / "janus.plugin.streaming.jcfg").write_text(
        f"""general: {{
}}
bench: {{
  type = "rtp"
  id = {MOUNTPOINT}
  description = "bench doorbell"
  media = (
    {{
      type = "video"
      mid = "v"
      port = {rtp_port}
      iface = "{net.janus_address}"
      pt = 96
      codec = "h264"
      fmtp = "profile-level-id=42e01f;packetization-mode=1"
    }}
  )
}}
"""
    )
    return folder


def argv(folder: Path) -> list[str]:
    return [JANUS_BINARY, "-F", str(folder), "-C", str(folder / "janus.jcfg"), "-N"]


def feed(source: str, destination: str, rtp_port: int) -> None:
    """Remux the doorbell's MPEG-TS to RTP (H.264, payload type 96) without decoding."""
    with av.open(
        source, "r", format="mpegts", options={"probesize": "32", "analyzeduration": "0"}
    ) as inp:
        in_stream = inp.streams.video[0]
        with av.open(
            f"rtp://{destination}:{rtp_port}", "w", format="rtp", options={"payload_type": "96"}
        ) as out:
            out_stream = out.add_stream_from_template(in_stream)
            announce(feeding=True)
            for packet in inp.demux(in_stream):
                if packet.dts is None:
                    continue
                packet.stream = out_stream
                out.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description="RTP feeder for Janus")
    parser.add_argument("--source", required=True)
    parser.add_argument("--destination", required=True)
    parser.add_argument("--rtp-port", type=int, required=True)
    args = parser.parse_args()
    feed(args.source, args.destination, args.rtp_port)


if __name__ == "__main__":
    main()

"""A real reverse proxy (Debian's nginx) in the hub namespace, in front of Home Assistant.

Three doors, one per way people put a proxy in front of Home Assistant:

- ``forwarding``: the setup Home Assistant documents. It connects from 127.0.0.1, which
  the lab's ``http: trusted_proxies`` lists, and appends the browser's address to
  X-Forwarded-For, so Home Assistant knows who the browser is.
- ``bare``: the same trusted proxy without X-Forwarded-For (only the websocket
  upgrade headers), so Home Assistant sees 127.0.0.1 and nothing else.
- ``untrusted``: a proxy Home Assistant was never told about. It connects to the hub's
  LAN address (so its peer address is a private one that is not trusted) and names
  the browser only in X-Real-IP and Forwarded, which Home Assistant does not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import shutil

from .hass import HASS_PORT
from .netns import Topology, ns_argv
from .procs import ManagedProcess

NGINX = "/usr/sbin/nginx"
DOORS = {"forwarding": 8180, "bare": 8181, "untrusted": 8182}
# What the lab's Home Assistant trusts as a proxy: loopback, where `forwarding` and
# `bare` connect from. The hub's LAN address, where `untrusted` connects from, is not.
TRUSTED_PROXIES = ("127.0.0.1",)

_WEBSOCKET_HEADERS = """
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;"""


def nginx_available() -> bool:
    return shutil.which(NGINX) is not None or Path(NGINX).is_file()


def trust_lab_proxy(config_dir: Path) -> None:
    """Turn on Home Assistant's reverse-proxy support for the lab's trusted proxy.

    Edits the run's copy of configuration.yaml (never the repository's): the bare
    ``http:`` line gains ``use_x_forwarded_for`` and ``trusted_proxies``.
    """
    path = config_dir / "configuration.yaml"
    text = path.read_text(encoding="utf-8")
    proxies = "".join(f"\n    - {address}" for address in TRUSTED_PROXIES)
    settings = f"http:\n  use_x_forwarded_for: true\n  trusted_proxies:{proxies}\n"
    if "\nhttp:\n" not in text:
        raise ValueError(f"{path} has no bare `http:` line to extend")
    path.write_text(text.replace("\nhttp:\n", f"\n{settings}", 1), encoding="utf-8")


def nginx_config(run_dir: Path, hub_lan_address: str) -> str:
    """nginx.conf for the three doors; every path nginx writes is under ``run_dir``."""
    upstreams = {
        "forwarding": f"127.0.0.1:{HASS_PORT}",
        "bare": f"127.0.0.1:{HASS_PORT}",
        "untrusted": f"{hub_lan_address}:{HASS_PORT}",
    }
    extra = {
        "forwarding": """
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;""",
        "bare": "",
        "untrusted": """
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header Forwarded "for=$remote_addr;proto=$scheme";""",
    }
    servers = "".join(
        f"""
  server {{
    listen {port};
    location / {{
      proxy_pass http://{upstreams[door]};
      proxy_set_header Host $host;{_WEBSOCKET_HEADERS}{extra[door]}
    }}
  }}"""
        for door, port in DOORS.items()
    )
    temp = {name: run_dir / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    return f"""
daemon off;
# The lab dir is root's; workers running as anyone else could not use its temp dirs.
user root;
worker_processes 1;
pid {run_dir / "nginx.pid"};
error_log stderr info;
events {{ worker_connections 256; }}
http {{
  access_log {run_dir / "access.log"};
  client_body_temp_path {temp["client_body"]};
  proxy_temp_path {temp["proxy"]};
  fastcgi_temp_path {temp["fastcgi"]};
  uwsgi_temp_path {temp["uwsgi"]};
  scgi_temp_path {temp["scgi"]};
  map $http_upgrade $connection_upgrade {{
    default upgrade;
    "" close;
  }}{servers}
}}
"""


@dataclass(kw_only=True)
class ReverseProxy:
    """nginx running in the hub namespace with the three doors of this module."""

    topology: Topology
    run_dir: Path
    log_path: Path
    process: ManagedProcess | None = field(default=None, repr=False)

    def url(self, door: str, host: str) -> str:
        """The base URL of ``door`` as a client reaching the hub at ``host`` sees it."""
        return f"http://{host}:{DOORS[door]}"

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "nginx.conf"
        config.write_text(
            nginx_config(self.run_dir, self.topology.hub_lan_address), encoding="utf-8"
        )
        # -e: nginx opens its compiled-in error log before reading the config.
        argv = [NGINX, "-p", str(self.run_dir), "-e", "stderr", "-c", str(config)]
        self.process = ManagedProcess(
            name="nginx", argv=ns_argv(self.topology.hub_ns, *argv), log_path=self.log_path
        )
        self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

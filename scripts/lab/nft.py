"""nftables for lab tests: run ``nft`` in a namespace, and count packets on a link.

The e2e tests prove what crossed a link by nftables counters on the hub's end of it.
Each test names its counters by the rules that feed them; this module writes the table,
reads the packet counts and removes the table again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

from .netns import ns_argv

_COUNTER_NAME = re.compile(r'counter name "([a-z_]+)"')


def nft(ns: str | None, *args: str, stdin: str | None = None) -> str:
    """Run ``nft`` in namespace ``ns`` (None: the root namespace); its output, or raise."""
    argv = ["nft", *args] if ns is None else ns_argv(ns, "nft", *args)
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.stdout


def read_nft_counters(ns: str | None, table: str) -> dict[str, int]:
    """Packets counted so far by each named counter of ``table``."""
    listing = json.loads(nft(ns, "-j", "list", "counters", "table", "inet", table))
    return {
        item["counter"]["name"]: int(item["counter"]["packets"])
        for item in listing["nftables"]
        if "counter" in item
    }


class LinkCounters:
    """An ``inet`` table of named counters in ``ns``, fed by the rules given for packets
    leaving (postrouting) and arriving (prerouting). Its name carries the process id, so
    a crashed run's table is told apart from a live one."""

    def __init__(self, ns: str, purpose: str, *, outgoing: list[str], incoming: list[str]) -> None:
        self._ns = ns
        self._table = f"ds{os.getpid()}{purpose}"
        names = dict.fromkeys(_COUNTER_NAME.findall("\n".join(outgoing + incoming)))
        declared = "\n".join(f"  counter {name} {{ }}" for name in names)
        out_rules = "\n".join(f"    {rule}" for rule in outgoing)
        in_rules = "\n".join(f"    {rule}" for rule in incoming)
        nft(
            ns,
            "-f",
            "-",
            stdin=f"""
table inet {self._table} {{
{declared}
  chain postrouting {{
    type filter hook postrouting priority -20; policy accept;
{out_rules}
  }}
  chain prerouting {{
    type filter hook prerouting priority -20; policy accept;
{in_rules}
  }}
}}
""",
        )

    def read(self) -> dict[str, int]:
        return read_nft_counters(self._ns, self._table)

    def remove(self) -> None:
        subprocess.run(
            ns_argv(self._ns, "nft", "delete", "table", "inet", self._table),
            capture_output=True,
            check=False,
        )

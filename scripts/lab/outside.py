"""An "outside" host for a lab run: a requester's server, routed from the hub, off the LAN.

Layout (S is the run's slot, P the creating process id)::

    hub ns --(veth dsPwan / wan0, 10.233.S.0/30)--> outside ns "dsPout"

The hub reaches it over its own routed link, as it would reach a police portal through
the home router: it is not on the home LAN bridge, so mDNS and live view never see it,
and the hub's side of the link is one interface whose packets a test can count.
"""

from __future__ import annotations

from dataclasses import dataclass
import ipaddress

from .netns import PREFIX, Topology, _isolate_ns, _run, remove_namespace

OUTSIDE_NET = "10.233.{slot}.0/30"
# A stranger on the internet, for tests of who gets footage: an address from the
# documentation range (RFC 5737), which exists only inside the lab's namespaces.
STRANGER_NET = "203.0.113.0/30"


@dataclass(kw_only=True)
class OutsideHost:
    """The outside namespace and the link that joins it to the hub.

    ``tag`` names the namespace and ``link_tag`` the hub's end of the link, so a run can
    have several outside hosts; ``subnet`` is the /30 between them (the hub takes the
    first address), by default one from the lab's own range.
    """

    topology: Topology
    tag: str = "out"
    link_tag: str = "wan"
    subnet: str = OUTSIDE_NET
    _built: bool = False

    @classmethod
    def stranger(cls, topology: Topology) -> OutsideHost:
        """A host with a public-looking address, such as an attacker's."""
        return cls(topology=topology, tag="atk", link_tag="atk", subnet=STRANGER_NET)

    @property
    def ns(self) -> str:
        return f"{PREFIX}{self.topology.owner_pid}{self.tag}"

    @property
    def hub_link(self) -> str:
        """The hub namespace's end of the link: every packet to the outside leaves here."""
        return f"{PREFIX}{self.topology.owner_pid}{self.link_tag}"

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet.format(slot=self.topology.slot))

    @property
    def hub_address(self) -> str:
        """Home Assistant's address as the outside host sees it."""
        return str(self.network.network_address + 1)

    @property
    def address(self) -> str:
        return str(self.network.network_address + 2)

    def build(self) -> None:
        """Create the namespace and link; on failure remove what was made and re-raise."""
        self._built = True
        try:
            hub = self.topology.hub_ns
            _run("ip", "netns", "add", self.ns)
            _isolate_ns(self.ns)
            _run(
                "ip", "link", "add", self.hub_link, "netns", hub, "type", "veth",
                "peer", "name", "wan0", "netns", self.ns,
            )  # fmt: skip
            _run("ip", "-n", hub, "addr", "add", f"{self.hub_address}/30", "dev", self.hub_link)
            _run("ip", "-n", hub, "link", "set", self.hub_link, "multicast", "off", "up")
            _run("ip", "-n", self.ns, "addr", "add", f"{self.address}/30", "dev", "wan0")
            _run("ip", "-n", self.ns, "link", "set", "wan0", "multicast", "off", "up")
        except BaseException:
            self.teardown()
            raise

    def teardown(self) -> None:
        """Remove the namespace, every process in it and (with it) the link."""
        if not self._built:
            return
        self._built = False
        remove_namespace(self.ns)

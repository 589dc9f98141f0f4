"""The lab's network as the journey needs it: who owns which MAC and IP, who is linked to whom.

The lab writes a ``topology.json`` beside every capture (``osilab.lab.topology``,
:meth:`Topology.to_json`): hosts with a role and their interfaces (name, MAC, IPs), and
the links between them. A journey uses it to turn addresses into device names: the
device that *sent* a frame owns its source MAC, the device that *takes it in* owns its
destination MAC (RFC 894: an Ethernet frame names the two ends of one link, nothing
more). A host that is only a bridge (role ``switch``) never owns the MACs of the frames
it forwards, so it is found from the links instead: two hosts that are not linked
directly but are both linked to a bridge reach each other through it.

Without a topology the journey still works: devices are then named by IP address.

This module reads no file: it is given the parsed JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Device", "Network", "ROLE_TITLES"]

#: Role (as the lab's topology names it) -> how a learner calls that device.
ROLE_TITLES: Mapping[str, str] = {
    "client": "client",
    "alb": "ALB (layer 7 load balancer)",
    "nlb": "NLB (layer 4 load balancer)",
    "l4proxy": "L4 proxy (terminates TCP)",
    "instance": "EC2 instance: nginx",
    "app": "backend app",
    "redis": "Redis (cache)",
    "postgresql": "PostgreSQL (database)",
    "switch": "bridge (layer 2 switch)",
    "host": "host",
}


@dataclass(frozen=True, slots=True)
class Device:
    """One device of the journey: a lab host (network namespace) or an address.

    Attributes:
        name: the lab host's name (``"alb"``, ``"web1"``) or, without a topology, an IP.
        role: the lab's role (``"alb"``, ``"nlb"``, ``"instance"``, ``"switch"``...).
        title: the role in words.
        addresses: the host's IP addresses.
    """

    name: str
    role: str
    title: str
    addresses: tuple[str, ...] = ()


class Network:
    """Lookups over a parsed ``topology.json`` (or over nothing: names become addresses)."""

    def __init__(self, topology: Mapping[str, Any] | None) -> None:
        self.known = topology is not None
        self.devices: dict[str, Device] = {}
        self._mac: dict[str, tuple[str, str]] = {}
        self._ip: dict[str, str] = {}
        self._links: set[frozenset[str]] = set()
        self._ports: dict[tuple[str, str], str] = {}
        for host in (topology or {}).get("hosts", ()):
            addresses: list[str] = []
            for interface in host.get("interfaces", ()):
                mac = str(interface.get("mac", "")).lower()
                if mac:
                    self._mac[mac] = (host["name"], interface.get("name", ""))
                for ip in interface.get("ip", ()):
                    addresses.append(ip)
                    self._ip.setdefault(ip, host["name"])
            role = host.get("role", "host")
            self.devices[host["name"]] = Device(
                host["name"], role, ROLE_TITLES.get(role, role), tuple(dict.fromkeys(addresses))
            )
        for link in (topology or {}).get("links", ()):
            a, b = link.get("a", {}).get("host"), link.get("b", {}).get("host")
            if a and b and a != b:
                self._links.add(frozenset((a, b)))
                self._ports[(a, b)] = link["a"].get("interface", "")
                self._ports[(b, a)] = link["b"].get("interface", "")

    def device(self, name: str) -> Device:
        """The device called ``name`` (an unknown name is a plain host)."""
        return self.devices.get(name) or Device(name, "host", ROLE_TITLES["host"], (name,))

    def owner(self, mac: str | None, ip: str | None) -> tuple[str, str | None]:
        """The device owning ``mac`` (else ``ip``) and the interface name, when known."""
        if mac and mac.lower() in self._mac:
            return self._mac[mac.lower()]
        if ip and ip in self._ip:
            return self._ip[ip], None
        return ip or mac or "?", None

    def bridge_between(self, a: str, b: str) -> str | None:
        """The bridge a frame crosses from ``a`` to ``b``, or ``None`` when they are linked directly."""
        if not self.known or frozenset((a, b)) in self._links:
            return None
        for name, device in self.devices.items():
            if (
                device.role == "switch"
                and {frozenset((a, name)), frozenset((b, name))} <= self._links
            ):
                return name
        return None

    def port_towards(self, host: str, peer: str) -> str | None:
        """The interface of ``host`` on its link to ``peer`` (a bridge's port), when known."""
        return self._ports.get((host, peer)) or None

    def linked(self) -> list[tuple[str, str]]:
        """Every link between two hosts, as sorted name pairs."""
        return sorted(tuple(sorted(pair)) for pair in self._links)  # type: ignore[misc]

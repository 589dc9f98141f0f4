"""Flow identity: endpoints and the bidirectional 5-tuple.

A *flow* is every packet that shares one protocol and one pair of endpoints, in both
directions, on one capture interface (one *hop*) and, for a packet that came through
a tunnel (VXLAN, GENEVE, GRE...), in one tunnel: the tunnel is part of the hop. osilab orients each flow: the
**client** is the side that sent the first SYN (or, when the start was not captured, the
side with the ephemeral port), the **server** the other. ``str(flow)`` is the form the CLI prints and accepts:
``198.51.100.7:51514-203.0.113.10:80`` (IPv6 addresses in brackets).

This module knows nothing of packets or files: it is pure data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Direction", "Endpoint", "FlowKey"]


class Direction(StrEnum):
    """Which way bytes travel in a flow: from the client to the server, or back."""

    TO_SERVER = "to_server"
    TO_CLIENT = "to_client"

    @property
    def arrow(self) -> str:
        return "->" if self is Direction.TO_SERVER else "<-"


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    """One side of a conversation: an IP address (text form) and a port."""

    ip: str
    port: int

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Read ``"198.51.100.7:51514"`` or ``"[2001:db8::1]:443"`` back into an Endpoint."""
        if text.startswith("["):
            host, _, port = text[1:].partition("]:")
        else:
            host, _, port = text.rpartition(":")
        return cls(host, int(port))


@dataclass(frozen=True, slots=True, order=True)
class FlowKey:
    """A flow, oriented client -> server. ``proto`` is ``"tcp"`` or ``"udp"``.

    ``interface`` is the capture interface (the pcapng interface number, 0 in a pcap) the
    flow was seen on: a *hop*. A capture taken on several links at once sees one
    connection once per link it crosses, and each sighting is a flow of its own, so the
    same endpoints on two interfaces are two flows. ``tunnel`` names the tunnels the flow's
    packets came through (:func:`osilab.capture.tunnels.tunnel_of`, e.g. ``"vxlan 42
    192.0.2.1-192.0.2.2"``; ``""`` for none), the rest of its hop: the same inner connection
    mirrored in two VXLAN VNIs is two flows. ``str(flow)`` leaves the hop out (the CLI
    form is ``client-server``); the commands name the hop beside it.
    """

    proto: str
    client: Endpoint
    server: Endpoint
    interface: int = 0
    tunnel: str = ""

    def __str__(self) -> str:
        return f"{self.client}-{self.server}"

    def reversed(self) -> FlowKey:
        """The same flow seen from the other side (client and server swapped, same hop)."""
        return FlowKey(self.proto, self.server, self.client, self.interface, self.tunnel)

    @classmethod
    def parse(cls, text: str, proto: str = "tcp") -> FlowKey:
        """Read the CLI form ``client-server`` back into a FlowKey."""
        # The separator is the "-" that follows a port number.
        for i, ch in enumerate(text):
            if ch == "-" and i > 0 and text[i - 1].isdigit() and (
                text[i + 1 : i + 2] == "[" or text[i + 1 : i + 2].isdigit()
            ):
                left, right = text[:i], text[i + 1 :]
                if ":" in left and ":" in right:
                    try:
                        return cls(proto, Endpoint.parse(left), Endpoint.parse(right))
                    except ValueError:
                        continue
        raise ValueError(f"not a flow (expected CLIENT:PORT-SERVER:PORT): {text!r}")

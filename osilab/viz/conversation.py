"""The small views of a capture that lessons draw: one TCP conversation, its HTTP requests.

A lesson often wants "the packets of this one connection, with who sent each" (for a
ladder diagram) or "the HTTP requests in this capture, with the packet where each one's
headers were complete" (to feed the ALB model). The first is :func:`tcp_conversation`.
The second is :func:`http_requests`, which takes them from the one pipeline
(:func:`osilab.pipeline.iter_http`: real TCP reassembly, then h11, the plain fast reader
or the desync classifier's tolerant reader, HTTP/1.x and HTTP/2 alike), so a figure
shows exactly the requests the ALB model decides on.

This module reads no file; it is given packets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from osilab.capture.packet import TCP_ACK, TCP_SYN, Packet
from osilab.errors import UsageError
from osilab.protocols.messages import HttpRequest
from osilab.streams.keys import Endpoint, FlowKey

__all__ = [
    "Conversation",
    "flow_of",
    "tcp_conversation",
    "tcp_flows",
    "http_requests",
]


def flow_of(pkt: Packet) -> FlowKey | None:
    """The flow of a TCP packet, oriented from its sender to its receiver (None if not TCP)."""
    if pkt.proto != "tcp" or pkt.ip_src is None or pkt.ip_dst is None:
        return None
    if pkt.src_port is None or pkt.dst_port is None:
        return None
    return FlowKey("tcp", Endpoint(pkt.ip_src, pkt.src_port), Endpoint(pkt.ip_dst, pkt.dst_port))


def _reverse(flow: FlowKey) -> FlowKey:
    return FlowKey(flow.proto, flow.server, flow.client)


@dataclass(frozen=True, slots=True)
class Conversation:
    """The packets of one TCP connection, both directions, in capture order.

    Attributes:
        flow: the connection, oriented client -> server (the client sent the SYN; without
            a captured SYN, the side with the higher port is taken as the client).
        packets: every packet of the connection, in capture order.
    """

    flow: FlowKey
    packets: tuple[Packet, ...]

    def from_client(self, pkt: Packet) -> bool:
        """True when ``pkt`` travels client -> server."""
        return pkt.ip_src == self.flow.client.ip and pkt.src_port == self.flow.client.port

    @property
    def duration(self) -> float:
        """Seconds from the first to the last packet."""
        return self.packets[-1].time - self.packets[0].time if self.packets else 0.0

    def summary(self) -> str:
        return f"{self.flow}: {len(self.packets)} packets over {self.duration * 1000:.1f} ms"


def tcp_flows(packets: Iterable[Packet]) -> list[Conversation]:
    """Every TCP connection in ``packets``, in the order their first packet appears."""
    order: list[FlowKey] = []
    members: dict[FlowKey, list[Packet]] = {}
    oriented: dict[FlowKey, FlowKey] = {}
    for pkt in packets:
        flow = flow_of(pkt)
        if flow is None:
            continue
        key = flow if flow in oriented else _reverse(flow) if _reverse(flow) in oriented else None
        if key is None:
            flags = pkt.tcp_flags or 0
            if flags & TCP_SYN and not flags & TCP_ACK:
                client_first = flow
            elif flags & TCP_SYN:
                client_first = _reverse(flow)
            else:
                client_first = flow if flow.client.port > flow.server.port else _reverse(flow)
            oriented[flow] = oriented[_reverse(flow)] = client_first
            order.append(client_first)
            members[client_first] = []
            key = flow
        members[oriented[key]].append(pkt)
    return [Conversation(flow, tuple(members[flow])) for flow in order]


def tcp_conversation(packets: Iterable[Packet], flow: str | FlowKey | int = 0) -> Conversation:
    """One TCP connection of a capture: by position (``0`` = the first one) or by its flow.

    Raises:
        UsageError: no such connection (the message lists the ones there are).
    """
    flows = tcp_flows(packets)
    if isinstance(flow, int):
        if 0 <= flow < len(flows):
            return flows[flow]
        raise UsageError(
            f"there are {len(flows)} TCP connections here, so there is no connection number {flow}"
        )
    wanted = FlowKey.parse(flow) if isinstance(flow, str) else flow
    for conv in flows:
        if wanted in (conv.flow, _reverse(conv.flow)):
            return conv
    known = ", ".join(str(c.flow) for c in flows[:10])
    raise UsageError(f"no TCP connection {wanted} here; there are: {known}")


def http_requests(packets: Iterable[Packet], *, keylog: str | None = None) -> list[HttpRequest]:
    """The HTTP requests of a capture (HTTP/1.x and HTTP/2), in the order their heads completed.

    ``keylog`` (an NSS key log file) lets the TLS layer decrypt HTTPS where it can.
    """
    from osilab.pipeline import iter_http  # imported when first used: it pulls in every parser

    return [m for m in iter_http(packets, keylog=keylog) if isinstance(m, HttpRequest)]

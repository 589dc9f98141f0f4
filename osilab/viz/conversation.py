"""The small views of a capture that lessons draw: one TCP conversation, its HTTP requests.

A lesson often wants "the packets of this one connection, with who sent each" (for a
ladder diagram) or "the HTTP requests in this capture, with the packet where each one's
headers were complete" (to feed the ALB model). The first is :func:`tcp_conversation`.
The second is :func:`http_requests`, which uses the streams work
(:func:`osilab.pipeline.iter_http`, with real TCP reassembly) when it is
installed, and otherwise a deliberately simple stand-in, :func:`simple_http_requests`:

* it puts each flow's client bytes together **in arrival order**, dropping bytes whose
  sequence numbers were already seen (retransmissions), and does not handle
  out-of-order segments or gaps (that is what :mod:`osilab.streams` is for);
* it lets h11 (the sans-IO HTTP/1.1 library) find the requests in those bytes, so a
  request head split across segments, or two pipelined requests in one segment, are
  found as they really are;
* it does not read HTTP/2 or TLS.

This module reads no file; it is given packets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import h11

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
    "simple_http_requests",
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


def _fake_response() -> tuple[Any, Any]:
    return h11.Response(status_code=200, headers=[("Content-Length", "0")]), h11.EndOfMessage()


def _requests_of(conv: Conversation) -> Iterator[HttpRequest]:
    """Requests of one connection, found by h11 in the client's bytes (see the module docstring)."""
    server = h11.Connection(h11.SERVER)
    next_seq: int | None = None
    index = 0
    first_packet: int | None = None
    current: Any = None
    for pkt in conv.packets:
        if not conv.from_client(pkt):
            continue
        payload = pkt.payload
        seq = pkt.tcp_seq
        if (pkt.tcp_flags or 0) & TCP_SYN:
            next_seq = (seq + 1) & 0xFFFFFFFF if seq is not None else None
            continue
        if not payload:
            continue
        if next_seq is not None and seq is not None:
            behind = (next_seq - seq) & 0xFFFFFFFF
            if 0 < behind < 0x80000000:  # these bytes (or some of them) were already seen
                if behind >= len(payload):
                    continue
                payload = payload[behind:]
            next_seq = (seq + len(pkt.payload)) & 0xFFFFFFFF
        if first_packet is None:
            first_packet = pkt.no
        try:
            server.receive_data(payload)
            while True:
                event = server.next_event()
                if event is h11.NEED_DATA:
                    break
                if event is h11.PAUSED:
                    for answer in _fake_response():
                        server.send(answer)
                    server.start_next_cycle()
                    first_packet = pkt.no
                    continue
                if isinstance(event, h11.Request):
                    current = HttpRequest(
                        flow=conv.flow,
                        index=index,
                        method=event.method.decode("ascii", "replace"),
                        target=event.target.decode("latin-1"),
                        version="HTTP/" + event.http_version.decode("ascii", "replace"),
                        headers=tuple(
                            (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers
                        ),
                        first_packet=first_packet or pkt.no,
                        headers_complete_packet=pkt.no,
                        time=pkt.time,
                    )
                    index += 1
                elif isinstance(event, h11.EndOfMessage) and current is not None:
                    yield current
                    current = None
                    first_packet = None
                elif isinstance(event, h11.ConnectionClosed):
                    return
        except h11.RemoteProtocolError:
            return  # not HTTP/1.x (TLS, HTTP/2...), or broken: stop reading this connection
    if current is not None:  # the body never ended in the capture; the head still counts
        yield current


def simple_http_requests(packets: Iterable[Packet]) -> list[HttpRequest]:
    """The HTTP/1.x requests of a capture, in the order their headers completed.

    The stand-in described in the module docstring: in-order bytes only, no HTTP/2, no TLS.
    """
    found = [req for conv in tcp_flows(packets) for req in _requests_of(conv)]
    return sorted(found, key=lambda r: (r.headers_complete_packet, r.index))


def http_requests(packets: Iterable[Packet], *, keylog: str | None = None) -> list[HttpRequest]:
    """The HTTP requests of a capture: the streams work's parser when present, else the stand-in."""
    packets = list(packets)
    try:
        from osilab.pipeline import iter_http
    except ImportError:
        return simple_http_requests(packets)
    return [m for m in iter_http(packets, keylog=keylog) if isinstance(m, HttpRequest)]

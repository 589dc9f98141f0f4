"""One request's journey through a multi-hop capture: the events, device by device, layer by layer.

Theory of operation
-------------------
The lab records every hop of its network in one pcapng file, each hop on its own named
interface (``client-alb``, ``alb-web1``, ``web1-api``, ``api-redis``, ``api-db``...), and
every request carries an id (``X-Request-Id`` and ``?rid=``). A journey follows that one
request:

1. **Legs.** Every HTTP request carrying the id, on every hop, is one *leg*: the client's
   request to the balancer, the balancer's request to an instance, nginx's request to the
   app. Legs are ordered by the time their headers were complete.
2. **The back end, by timing.** The device that received the last leg (the app) answers
   it later on the same connection. Every Redis or PostgreSQL message the app sent or
   received *between* those two moments belongs to this request (the lab's client sends
   one request at a time). The id confirms it where it is visible: the Redis key
   ``rid:<id>`` and the SQL comment ``/* rid=<id> */``.
3. **PDUs.** The request path is then: the legs' request packets (the packet where each
   head became complete: where an L7 device can act), the store messages, and the legs'
   responses in reverse order.
4. **Devices.** The device that sent a frame owns its source MAC, the one that takes it in
   owns the destination MAC (:mod:`osilab.journey.network`). A frame between two hosts
   that are not linked directly crossed the bridge between them: the bridge gets its own
   event, in which it reads layer 2 only.
5. **Events.** One event per device handling the PDU, in path order (which is time order:
   each device acts after the one before it): what it read on the way **in**, from L1
   upwards, and where it stopped; what it rewrote or created on the way **out**, from the
   top down. What a device did is *observed*, by comparing the packet it received with
   the packet it sent:

   * the same TCP ports, sequence numbers and payload, a new destination address: the
     device forwarded at layer 4 without reading the payload (the NLB);
   * a new TCP connection carrying the same request with changed headers: the device
     read layer 7 (the ALB, nginx);
   * a different message: the device is an end point that answered or asked on
     (nginx serving a file, the app, Redis, PostgreSQL).

Each layer step has one sentence saying why. For a balancer the sentence is the balancer
model's own ``why`` (:mod:`osilab.journey._models`); a step explained from the capture
alone says so in its ``source``.

This module is sans-IO: it is given an indexed capture and a parsed topology; it reads
no file and prints nothing. :func:`osilab.journey.journey` is the edge that reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from osilab.capture.packet import Packet
from osilab.errors import UsageError
from osilab.journey import _models
from osilab.journey._index import CaptureIndex, Exchange, Run
from osilab.journey.network import Device, Network

__all__ = [
    "LayerStep",
    "PacketView",
    "JourneyEvent",
    "Journey",
    "build_journey",
    "BEHAVIOURS",
]

#: How a device handled a PDU, as observed: behaviour -> what it means.
BEHAVIOURS: Mapping[str, str] = {
    "origin": "creates the PDU (nothing read: it starts here)",
    "bridge": "forwards the frame by MAC address: reads layer 2 only",
    "forward-l4": "forwards the packet by addresses and ports: reads up to layer 4, rewrites addresses",
    "proxy-l4": "ends the TCP connection and relays the byte stream over a connection of its own, unread",
    "proxy-l7": "reads the message up to layer 7 and sends it on over a connection of its own",
    "endpoint": "reads the message up to layer 7 and answers or asks on",
    "sink": "reads the message up to layer 7: the journey ends here",
}

#: Lab roles that are load balancers (their request event is the one a comparison looks at).
BALANCER_ROLES = frozenset({"alb", "nlb", "l4proxy"})

_MODEL = "balancer model"
_CAPTURE = "capture"
_TOPOLOGY = "topology"


@dataclass(frozen=True, slots=True)
class LayerStep:
    """What one device did at one layer.

    Attributes:
        osi: the OSI layer number (1-7).
        name: the protocol at that layer (``"phy"`` for layer 1, ``"eth"``, ``"ip"``...).
        action: ``"read"``, ``"stop"`` (read, and went no higher), ``"kept"``,
            ``"rewrote"``, ``"created"`` or ``"sent"``.
        detail: the values, as a learner would read them off the packet.
        why: one sentence.
        source: where the sentence comes from: ``"balancer model"``, ``"capture"``
            (explained from the packets alone) or ``"topology"``.
    """

    osi: int
    name: str
    action: str
    detail: str
    why: str
    source: str = _CAPTURE

    def to_json(self) -> dict[str, Any]:
        return {
            "osi": self.osi,
            "name": self.name,
            "action": self.action,
            "detail": self.detail,
            "why": self.why,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class PacketView:
    """One captured frame, as the view shows it: bytes and the layers that own them."""

    no: int
    time: float
    hop: str
    data: bytes
    layers: tuple[tuple[str, int, int, int, str], ...]  # (name, osi, offset, length, summary)

    @classmethod
    def of(cls, packet: Packet) -> PacketView:
        layers = tuple(
            (lay.name, lay.osi, lay.offset, lay.length, lay.summary) for lay in packet.layers
        )
        hop = packet.interface_name or f"interface {packet.interface}"
        return cls(packet.no, packet.time, hop, bytes(packet.data), layers)

    def to_json(self, limit: int = 320) -> dict[str, Any]:
        return {
            "no": self.no,
            "hop": self.hop,
            "length": len(self.data),
            "hex": self.data[:limit].hex(),
            "layers": [
                {"name": name, "osi": osi, "offset": offset, "length": length, "summary": summary}
                for name, osi, offset, length, summary in self.layers
            ],
        }


@dataclass(frozen=True, slots=True)
class JourneyEvent:
    """One device handling the request's PDU.

    Attributes:
        index: position in the journey, from 0.
        time: capture time of the packet the device received (or sent, for the origin).
        device: who acts.
        behaviour: a key of :data:`BEHAVIOURS` (observed, see the module docstring).
        direction: ``"request"`` (towards the server or the store) or ``"response"``.
        came_from, goes_to: the devices before and after (``None`` at the ends).
        packet_in, packet_out: the frames received and sent (``None`` at the ends; for
            a bridge both are the same frame).
        in_layers: what the device read, from layer 1 upwards, ending where it stopped.
        out_layers: what it kept, rewrote or created on the way down, from the top.
        message: the application message in words (request line, Redis command, SQL...).
        summary: one sentence.
    """

    index: int
    time: float
    device: Device
    behaviour: str
    direction: str
    came_from: str | None
    goes_to: str | None
    packet_in: PacketView | None
    packet_out: PacketView | None
    in_layers: tuple[LayerStep, ...]
    out_layers: tuple[LayerStep, ...]
    message: str
    summary: str

    @property
    def stopped_at(self) -> int:
        """The highest OSI layer the device read (0 when it read nothing: the origin)."""
        return max((step.osi for step in self.in_layers), default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "time": self.time,
            "device": self.device.name,
            "role": self.device.role,
            "title": self.device.title,
            "behaviour": self.behaviour,
            "direction": self.direction,
            "came_from": self.came_from,
            "goes_to": self.goes_to,
            "stopped_at": self.stopped_at,
            "message": self.message,
            "summary": self.summary,
            "in": [step.to_json() for step in self.in_layers],
            "out": [step.to_json() for step in self.out_layers],
            "packet_in": self.packet_in.to_json() if self.packet_in else None,
            "packet_out": self.packet_out.to_json() if self.packet_out else None,
        }


@dataclass(frozen=True)
class Journey:
    """One request's journey: its events in order, the devices and links it crossed.

    Shows itself as text (:meth:`show`), as an interactive HTML view in a notebook
    (``_repr_html_``) and as a standalone document (:meth:`to_html`).
    """

    request_id: str
    capture: str
    events: tuple[JourneyEvent, ...]
    devices: tuple[Device, ...]
    links: tuple[tuple[str, str], ...]
    balancer: str | None = None
    notes: tuple[str, ...] = field(default=())

    def hops(self) -> list[str]:
        """The device of every event, in order: ``['client', 'alb', 'web1', ...]``."""
        return [event.device.name for event in self.events]

    def event(self, device: str, direction: str = "request") -> JourneyEvent:
        """The first event at ``device`` in ``direction``."""
        for event in self.events:
            if event.device.name == device and event.direction == direction:
                return event
        raise UsageError(f"request {self.request_id} has no {direction} event at {device!r}")

    def balancer_event(self) -> JourneyEvent | None:
        """The balancer's event on the way in (where the L4/L7 difference shows), if any."""
        if self.balancer is None:
            return None
        for event in self.events:
            if event.device.name == self.balancer and event.direction == "request":
                return event
        return None

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Any:
        return iter(self.events)

    def summary(self) -> str:
        path = " -> ".join(self.hops())
        return f"request {self.request_id}: {len(self.events)} events: {path}"

    def __repr__(self) -> str:
        return f"<Journey {self.request_id}: {len(self.events)} events>"

    def text(self) -> str:
        """The journey as plain text: one block per event, the layers in and out."""
        lines = [f"Journey of request {self.request_id} in {self.capture}"]
        for event in self.events:
            came = f" from {event.came_from}" if event.came_from else ""
            lines.append(
                f"\n[{event.index}] {event.device.name} ({event.device.title}), {event.direction}{came}"
                f": {event.summary}"
            )
            for label, steps in (("in ", event.in_layers), ("out", event.out_layers)):
                for step in steps:
                    lines.append(
                        f"    {label} L{step.osi} {step.name:<5} {step.action:<8} {step.detail}"
                    )
                    lines.append(
                        f"    {'':3} {'':14} why: {step.why}"
                        + (f" [{step.source}]" if step.source != _CAPTURE else "")
                    )
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def show(self, file: Any = None) -> None:
        """Print :meth:`text`."""
        print(self.text(), file=file)

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "capture": self.capture,
            "balancer": self.balancer,
            "devices": [
                {"name": d.name, "role": d.role, "title": d.title, "addresses": list(d.addresses)}
                for d in self.devices
            ],
            "links": [list(pair) for pair in self.links],
            "events": [event.to_json() for event in self.events],
            "notes": list(self.notes),
        }

    def to_html(self, *, standalone: bool = True) -> str:
        """The interactive view: a whole HTML document, or a fragment for a notebook."""
        from osilab.journey.view import journey_html

        return journey_html([self], standalone=standalone)

    def _repr_html_(self) -> str:
        return self.to_html(standalone=False)


# ---------------------------------------------------------------------------------------
# The path of PDUs
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pdu:
    packet: Packet
    direction: str
    protocol: str  # "http", "resp", "pgsql"
    message: str
    leg: Exchange | None = None
    run: Run | None = None


@dataclass(frozen=True, slots=True)
class _Arrival:
    device: str
    came_from: str
    pdu: _Pdu
    interface: str | None  # the receiving device's interface (or the bridge's port)
    onward: str | None = None  # for a bridge: the host the frame is addressed to


def _legs(index: CaptureIndex, request_id: str) -> list[Exchange]:
    legs = [exchange for exchange in index.exchanges if exchange.matches(request_id)]
    if not legs:
        known = index.request_ids()
        listing = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
        raise UsageError(
            f"no HTTP request with id {request_id!r} (X-Request-Id or ?rid=) in this capture"
            + (f"; ids found: {listing}" if known else "; it has no request with an id")
        )
    return legs


def _request_line(leg: Exchange) -> str:
    return f"{leg.request.method} {leg.request.target} {leg.request.version}"


def _status_line(leg: Exchange) -> str:
    assert leg.response is not None
    return f"{leg.response.version} {leg.response.status} {leg.response.reason}".rstrip()


def _pdus(
    index: CaptureIndex, network: Network, legs: list[Exchange]
) -> tuple[list[_Pdu], list[str]]:
    notes: list[str] = []
    pdus = [
        _Pdu(
            index.packets[leg.request.headers_complete_packet],
            "request",
            "http",
            _request_line(leg),
            leg=leg,
        )
        for leg in legs
    ]
    last = legs[-1]
    first_packet = index.packets[last.request.headers_complete_packet]
    worker, _ = network.owner(_mac(first_packet, "dst"), first_packet.ip_dst)
    addresses = set(network.device(worker).addresses) | {last.flow.key.server.ip}
    start = last.request.time
    end = last.response.time if last.response else float("inf")
    runs = [
        run
        for run in index.runs
        if start <= run.time <= end and run.flow.key.client.ip in addresses
    ]
    rid = legs[0].request_id or ""
    overlapping = [
        ex
        for ex in index.exchanges
        if ex.flow.key.server.ip in addresses
        and ex.request_id not in (None, rid)
        and ex.request.time <= end
        and (ex.response.time if ex.response else float("inf")) >= start
    ]
    if overlapping:
        runs = _naming(runs, rid)
        notes.append(
            f"{len(overlapping)} other request(s) were at {worker} at the same time (HTTP/2 streams or "
            "concurrent connections): only the store messages that name this request's id, and their "
            "replies, are kept; the others cannot be told apart by timing."
        )
    for run in runs:
        direction = "request" if run.side == "c" else "response"
        pdus.append(
            _Pdu(index.packets[run.packets[-1]], direction, run.protocol, run.summary, run=run)
        )
    stores = {run.protocol for run in runs}
    if "resp" in stores:
        confirmed = any(f"rid:{rid}".encode() in run.data for run in runs if run.protocol == "resp")
        notes.append(
            f"Redis messages joined by timing (between packets {last.request.headers_complete_packet} "
            f"and {last.response.headers_complete_packet if last.response else 'the end'}); "
            + (f"the key rid:{rid} confirms them." if confirmed else "no key names the request id.")
        )
    if "pgsql" in stores:
        confirmed = any(
            f"rid={rid}".encode() in run.data for run in runs if run.protocol == "pgsql"
        )
        notes.append(
            "PostgreSQL messages joined by timing; "
            + (
                f"the SQL comment rid={rid} confirms them."
                if confirmed
                else "no SQL comment names the id."
            )
        )
    for leg in reversed(legs):
        if leg.response is None:
            notes.append(
                f"no response to {leg.request.method} {leg.request.target} on {leg.flow.hop}"
            )
            continue
        packet = index.packets[leg.response.headers_complete_packet]
        pdus.append(_Pdu(packet, "response", "http", _status_line(leg), leg=leg))
    return pdus, notes


def _naming(runs: list[Run], rid: str) -> list[Run]:
    """The store commands that name ``rid`` (``rid:<id>`` key, ``rid=<id>`` comment) and their replies."""
    marker = re.compile(rb"rid[:=]" + re.escape(rid.encode()) + rb"(?![A-Za-z0-9_-])")
    kept: list[Run] = []
    asked: dict[int, bool] = {}  # flow identity -> whether its last command was kept
    for run in runs:
        if run.side == "c":
            asked[id(run.flow)] = bool(marker.search(run.data))
            if asked[id(run.flow)]:
                kept.append(run)
        elif asked.get(id(run.flow)):
            kept.append(run)
            asked[id(run.flow)] = False
    return kept


def _mac(packet: Packet, which: str) -> str | None:
    eth = packet.layer("eth")
    return str(eth.fields.get(which)) if eth is not None and eth.fields.get(which) else None


def _arrivals(network: Network, pdus: list[_Pdu]) -> list[_Arrival]:
    arrivals: list[_Arrival] = []
    seen_macs: dict[str | None, str] = {}
    previous: str | None = None
    for pdu in pdus:
        source_mac, destination_mac = _mac(pdu.packet, "src"), _mac(pdu.packet, "dst")
        if network.known:
            sender, _ = network.owner(source_mac, pdu.packet.ip_src)
            receiver, interface = network.owner(destination_mac, pdu.packet.ip_dst)
        else:
            # Without a topology a device is named by the address it was first reached at. A
            # proxy or a NAT sends from another address than the one it was called on, so the
            # sender is the device that received the PDU before (each device acts after the
            # one before it), and a MAC once seen keeps naming the same device.
            sender = seen_macs.get(source_mac) or previous or str(pdu.packet.ip_src)
            receiver, interface = seen_macs.get(destination_mac) or str(pdu.packet.ip_dst), None
            seen_macs.setdefault(source_mac, sender)
            seen_macs.setdefault(destination_mac, receiver)
        previous = receiver
        bridge = network.bridge_between(sender, receiver)
        if bridge is not None:
            arrivals.append(
                _Arrival(bridge, sender, pdu, network.port_towards(bridge, sender), receiver)
            )
            arrivals.append(_Arrival(receiver, bridge, pdu, interface))
        else:
            arrivals.append(_Arrival(receiver, sender, pdu, interface))
    return arrivals


# ---------------------------------------------------------------------------------------
# Layers in and out
# ---------------------------------------------------------------------------------------


def _behaviour(device: Device, arrival_in: _Arrival | None, arrival_out: _Arrival | None) -> str:
    if arrival_in is None:
        return "origin"
    if device.role == "switch" or (arrival_out is not None and arrival_out.pdu is arrival_in.pdu):
        return "bridge"
    if arrival_out is None:
        return "sink"
    p, q = arrival_in.pdu.packet, arrival_out.pdu.packet
    if (p.src_port, p.dst_port, p.tcp_seq, p.payload) == (
        q.src_port,
        q.dst_port,
        q.tcp_seq,
        q.payload,
    ):
        return "forward-l4"
    pin, pout = arrival_in.pdu, arrival_out.pdu
    if pin.leg is not None and pout.leg is not None and pin.direction == pout.direction:
        if device.role == "l4proxy" or (device.role == "host" and _same_message(pin, pout)):
            return "proxy-l4"
        return "proxy-l7"
    return "endpoint"


def _same_message(first: _Pdu, second: _Pdu) -> bool:
    """True when two legs carry byte-for-byte the same head: relayed without being rewritten."""
    assert first.leg is not None and second.leg is not None
    if first.direction == "request":
        a, b = first.leg.request, second.leg.request
        return (a.method, a.target, a.version, a.headers) == (
            b.method,
            b.target,
            b.version,
            b.headers,
        )
    ra, rb = first.leg.response, second.leg.response
    return ra is not None and rb is not None and (ra.status, ra.headers) == (rb.status, rb.headers)


def _ip_line(packet: Packet) -> str:
    ip = packet.layer("ip") or packet.layer("ipv6")
    ttl = ip.fields.get("ttl", ip.fields.get("hlim")) if ip else None
    return f"{packet.ip_src} -> {packet.ip_dst}" + (f", TTL {ttl}" if ttl is not None else "")


def _tcp_line(packet: Packet) -> str:
    tcp = packet.layer("tcp")
    flags = tcp.fields.get("flags_str", "") if tcp else ""
    return (
        f"port {packet.src_port} -> {packet.dst_port} [{flags}] seq {packet.tcp_seq}, "
        f"{len(packet.payload)} payload bytes"
    )


def _eth_line(packet: Packet) -> str:
    return f"{_mac(packet, 'src')} -> {_mac(packet, 'dst')}"


_SERVICE = {
    80: "HTTP",
    443: "HTTPS",
    8080: "the app's HTTP server",
    6379: "Redis",
    5432: "PostgreSQL",
}
_STORE_TITLE = {"resp": "Redis", "pgsql": "PostgreSQL"}


def _l7_in_why(device: Device, pdu: _Pdu, behaviour: str, out: _Pdu | None) -> str:
    role, message = device.role, pdu.message
    if pdu.protocol == "resp":
        if pdu.direction == "request":
            return "Redis reads the RESP command and runs it on its in-memory data."
        if "(nil)" in message:
            return "A cache miss: the item is not in Redis, so the app must ask PostgreSQL."
        if message.startswith('"'):
            return "A cache hit: the item came from Redis, so PostgreSQL is not asked."
        return "Redis confirmed the command; the app goes on with the request."
    if pdu.protocol == "pgsql":
        if pdu.direction == "request":
            return "PostgreSQL parses and runs the SQL; its comment carries the request id."
        return "The row arrived from PostgreSQL; the app keeps it in Redis for the next request (cache-aside)."
    if pdu.direction == "response":
        if behaviour == "sink":
            return "The client reads the status line and headers: the answer to its request."
        return f"{device.name} reads the response from the server it asked before relaying it back."
    if role == "alb":
        return "The ALB reads the request line and headers, then matches its listener rules in priority order."
    if role == "instance":
        if behaviour == "proxy-l7":
            return "nginx matches the path against its locations: /api/ is proxied to the app (proxy_pass)."
        return (
            "nginx matches no proxy location, so it serves the file from its document root itself."
        )
    if role == "app":
        return "The app's route for this path runs; it is cache-aside, so it asks Redis first."
    if behaviour == "sink":
        return "The application reads the message: the journey ends here."
    return f"{device.name} reads the message to decide what to do with it."


def _in_steps(
    network: Network,
    device: Device,
    arrival: _Arrival,
    behaviour: str,
    out: _Pdu | None,
    decision: Any | None,
) -> tuple[LayerStep, ...]:
    pdu, packet = arrival.pdu, arrival.pdu.packet
    where = arrival.interface or packet.interface_name or "its interface"
    steps = [
        LayerStep(
            1,
            "phy",
            "read",
            f"bits arrive on {where}",
            "Every device starts at layer 1: a signal on the link (here a veth pair) becomes a frame.",
            _TOPOLOGY if arrival.interface else _CAPTURE,
        )
    ]
    link = packet.layers[0].name if packet.layers else "eth"
    if behaviour == "bridge":
        bridge_port = (
            network.port_towards(arrival.device, arrival.onward or "") if arrival.onward else None
        )
        steps.append(
            LayerStep(
                2,
                link,
                "stop",
                f"{_eth_line(packet)}: destination MAC learned on port "
                f"{bridge_port or 'towards ' + str(arrival.onward)}",
                "A bridge forwards by destination MAC address alone (IEEE 802.1D learning) and never "
                "looks above layer 2, so it stops here.",
                _TOPOLOGY,
            )
        )
        return tuple(steps)
    steps.append(
        LayerStep(
            2,
            link,
            "read",
            _eth_line(packet),
            f"The destination MAC is {device.name}'s own interface, so it takes the frame in and "
            "hands the payload to IP.",
        )
    )
    if behaviour == "forward-l4":
        if pdu.direction == "request":
            steps.append(
                LayerStep(
                    3,
                    "ip",
                    "read",
                    _ip_line(packet),
                    f"{packet.ip_dst} is the balancer's listener address: a DNAT rule in the "
                    "prerouting hook matches it before routing.",
                )
            )
            if decision is not None:
                why, source = _model_why(decision, out), _MODEL
            else:
                why, source = (
                    (
                        "The flow's 5-tuple chose the target at its SYN; later packets follow the same "
                        "choice (explained from the capture: the balancer model was not available)."
                    ),
                    _CAPTURE,
                )
            steps.append(
                LayerStep(
                    4,
                    "tcp",
                    "stop",
                    _tcp_line(packet) + " (the payload above is not read)",
                    why,
                    source,
                )
            )
        else:
            steps.append(
                LayerStep(
                    3,
                    "ip",
                    "read",
                    _ip_line(packet),
                    "A reply from the target: connection tracking matches it to the client's flow.",
                )
            )
            steps.append(
                LayerStep(
                    4,
                    "tcp",
                    "stop",
                    _tcp_line(packet) + " (the payload above is not read)",
                    "The ports match a known flow, so the reply goes back the way the request came; "
                    "nothing above TCP is read.",
                )
            )
        return tuple(steps)
    steps.append(
        LayerStep(
            3,
            "ip",
            "read",
            _ip_line(packet),
            f"{packet.ip_dst} is one of {device.name}'s own addresses, so the packet is for this host "
            "and goes up to TCP.",
        )
    )
    port = packet.dst_port if pdu.direction == "request" else packet.src_port
    if pdu.direction == "request":
        why = (
            f"Port {port} is where {_SERVICE.get(port or 0, 'the server')} listens: the TCP connection ends here, "
            f"and {device.name} reassembles the byte stream for the program."
        )
    else:
        why = (
            f"A segment of {device.name}'s own connection to port {port}: TCP puts the bytes in order and "
            "hands them to the program that opened it."
        )
    if behaviour == "proxy-l4":
        why = (
            (
                f"Port {port} is a TCP listener: the connection ends here and the byte stream is relayed, as it "
                "is, to a target chosen once per connection; nothing above TCP is read."
            )
            if pdu.direction == "request"
            else "The target's bytes arrive on the proxy's own connection and are relayed back unread."
        )
        steps.append(
            LayerStep(4, "tcp", "stop", _tcp_line(packet) + " (the payload above is not read)", why)
        )
        return tuple(steps)
    steps.append(LayerStep(4, "tcp", "read", _tcp_line(packet), why))
    leg = pdu.leg
    detail = pdu.message
    if (
        leg is not None
        and pdu.direction == "request"
        and leg.request.first_packet != leg.request.headers_complete_packet
    ):
        detail += (
            f" (head in packets {leg.request.first_packet}-{leg.request.headers_complete_packet})"
        )
    if device.role == "alb" and pdu.direction == "request" and decision is not None:
        why, source = _model_why(decision, out), _MODEL
    else:
        why, source = _l7_in_why(device, pdu, behaviour, out), _CAPTURE
    steps.append(LayerStep(7, pdu.protocol, "stop", detail, why, source))
    return tuple(steps)


def _header_changes(before: Exchange, after: Exchange, direction: str) -> str:
    if direction == "request":
        old, new = before.request.headers, after.request.headers
    else:
        assert before.response is not None and after.response is not None
        old, new = before.response.headers, after.response.headers
    old_set = {(k.lower(), v) for k, v in old}
    new_set = {(k.lower(), v) for k, v in new}
    added = [f"{k}: {v}" for k, v in new if (k.lower(), v) not in old_set]
    removed = [f"{k}" for k, v in old if (k.lower(), v) not in new_set]
    parts = []
    if added:
        parts.append("added " + "; ".join(added))
    if removed:
        parts.append("dropped " + ", ".join(removed))
    return ", ".join(parts) if parts else "headers unchanged"


def _connection_note(index: CaptureIndex, packet: Packet, before: Packet | None) -> str:
    for flow in index.flows.values():
        if flow.hop != (packet.interface_name or f"interface {packet.interface}"):
            continue
        ends = {
            (flow.key.client.ip, flow.key.client.port),
            (flow.key.server.ip, flow.key.server.port),
        }
        if ends == {(packet.ip_src, packet.src_port), (packet.ip_dst, packet.dst_port)}:
            if flow.syn_packet is None:
                return "a pooled connection opened before the capture started"
            if before is None:
                return f"the connection whose SYN is packet {flow.syn_packet}"
            if before is not None and flow.syn_packet > before.no:
                return f"a new connection (its SYN is packet {flow.syn_packet})"
            return f"a kept-alive connection (opened at packet {flow.syn_packet})"
    return "a connection"


def _l7_out(device: Device, behaviour: str, pin: _Pdu | None, pout: _Pdu) -> LayerStep:
    role = device.role
    if behaviour == "proxy-l7" and pin is not None and pin.leg is not None and pout.leg is not None:
        changes = _header_changes(pin.leg, pout.leg, pout.direction)
        if pout.direction == "request" and role == "alb":
            why = (
                "The ALB forwards the request with X-Forwarded-For added, because the target sees the ALB's "
                "address, not the client's."
            )
        elif pout.direction == "request" and role == "instance":
            why = (
                "nginx re-sends the request to the app as a new HTTP/1.1 request (proxy_pass), setting Host "
                "and X-Request-Id."
            )
        elif pout.direction == "request":
            why = f"{device.name} sends the request on as a new message of its own."
        else:
            why = f"{device.name} relays the response to the connection the request came in on."
        return LayerStep(7, pout.protocol, "rewrote", f"{pout.message}: {changes}", why)
    if behaviour == "proxy-l4":
        flow = pout.leg.flow if pout.leg is not None else None
        extra = (
            f", after a {flow.proxy_header}-byte PROXY protocol header that tells the target the client's "
            "address"
            if flow is not None and flow.proxy_header and pout.direction == "request"
            else ""
        )
        return LayerStep(
            7,
            pout.protocol,
            "kept",
            f"{len(pout.packet.payload)} payload bytes relayed unread{extra}",
            "A TCP proxy copies the byte stream from one connection to the other without parsing it.",
        )
    if behaviour == "forward-l4":
        return LayerStep(
            7,
            pout.protocol,
            "kept",
            f"{len(pout.packet.payload)} payload bytes forwarded unread",
            "A layer 4 balancer never reads or changes the payload: the HTTP bytes pass as they are.",
        )
    if pout.protocol == "resp":
        why = (
            "The app sends a Redis command over its pooled connection."
            if pout.direction == "request"
            else "Redis replies in RESP."
        )
    elif pout.protocol == "pgsql":
        why = (
            "The app sends the SQL to PostgreSQL; its comment names the request id."
            if pout.direction == "request"
            else "PostgreSQL sends the row description, the rows and the command tag."
        )
    elif role == "client":
        why = "The client's HTTP library writes the request line and headers (the id is in X-Request-Id and ?rid=)."
    elif (
        role == "instance"
        and pout.direction == "response"
        and pin is not None
        and pin.direction == "request"
    ):
        why = "nginx answers with the file itself: the request goes no further."
    elif role == "app":
        why = "The app answers with JSON on the connection nginx opened."
    else:
        why = f"{device.name} writes the message."
    return LayerStep(7, pout.protocol, "created", pout.message, why)


def _out_steps(
    index: CaptureIndex,
    network: Network,
    device: Device,
    behaviour: str,
    arrival_in: _Arrival | None,
    arrival_out: _Arrival,
) -> tuple[LayerStep, ...]:
    q = arrival_out.pdu.packet
    p = arrival_in.pdu.packet if arrival_in else None
    peer = arrival_out.onward or arrival_out.device
    pin = arrival_in.pdu if arrival_in else None
    _, out_interface = network.owner(_mac(q, "src"), None)
    if behaviour == "bridge":
        port = network.port_towards(device.name, arrival_out.device)
        link = q.layers[0].name if q.layers else "eth"
        return (
            LayerStep(
                2,
                link,
                "kept",
                f"{_eth_line(q)}, out of port {port or '?'}",
                "A bridge forwards the frame unchanged: the MAC addresses stay those of the two hosts.",
                _TOPOLOGY,
            ),
            LayerStep(
                1,
                "phy",
                "sent",
                f"bits leave on {port or 'the port towards ' + arrival_out.device}",
                "The frame becomes a signal on the next link.",
                _TOPOLOGY,
            ),
        )
    steps = []
    if q.payload:
        steps.append(_l7_out(device, behaviour, pin, arrival_out.pdu))
    if behaviour == "forward-l4" and p is not None:
        steps.append(
            LayerStep(
                4,
                "tcp",
                "kept",
                f"port {q.src_port} -> {q.dst_port}, seq {q.tcp_seq} unchanged",
                "The balancer keeps the client's TCP connection: only the checksum is recomputed "
                "after the address rewrite.",
            )
        )
        if arrival_out.pdu.direction == "request":
            detail = f"destination {p.ip_dst} -> {q.ip_dst}; source {q.ip_src} kept"
            why = (
                "Destination NAT sends the packet to the chosen target and keeps the client's address "
                "(client IP preservation)."
            )
        else:
            detail = f"source {p.ip_src} -> {q.ip_src}; destination {q.ip_dst} kept"
            why = "Connection tracking undoes the DNAT, so the client sees the reply come from the address it called."
        ttl_in, ttl_out = _ttl(p), _ttl(q)
        if ttl_in is not None and ttl_out is not None:
            detail += f"; TTL {ttl_in} -> {ttl_out}"
        steps.append(LayerStep(3, "ip", "rewrote", detail, why))
    else:
        same_connection = p is not None and {(p.ip_src, p.src_port), (p.ip_dst, p.dst_port)} == {
            (q.ip_src, q.src_port),
            (q.ip_dst, q.dst_port),
        }
        if same_connection:
            note = "the same connection, the other direction"
            why = "It uses the connection the last message came in on, in the other direction."
        else:
            note = _connection_note(index, q, p)
            if device.role == "alb":
                why = (
                    "The ALB is a proxy: the client's TCP connection ends at the ALB, which uses its own connection "
                    "to the target."
                )
            elif behaviour == "proxy-l4":
                why = (
                    "The proxy terminates TCP: the target sees a connection from the proxy's address, not the "
                    "client's."
                )
            elif device.role == "instance":
                why = (
                    "nginx uses its own upstream connection to the app (keepalive to the upstream)."
                )
            elif device.role == "client":
                why = "The client opened this connection to the balancer's address."
            else:
                why = f"{device.name} uses its own connection to {peer}."
        steps.append(
            LayerStep(
                4,
                "tcp",
                "created",
                f"{q.ip_src}:{q.src_port} -> {q.ip_dst}:{q.dst_port}: {note}",
                why,
            )
        )
        steps.append(
            LayerStep(
                3,
                "ip",
                "created",
                _ip_line(q),
                f"A new IP header from {device.name}'s own address {q.ip_src}, addressed to "
                f"{peer}.",
            )
        )
    link = q.layers[0].name if q.layers else "eth"
    steps.append(
        LayerStep(
            2,
            link,
            "created",
            f"{_eth_line(q)} (out of {out_interface or 'its interface'})",
            "A fresh Ethernet header for the next link: MAC addresses only ever name the two ends of "
            "one link.",
        )
    )
    steps.append(
        LayerStep(
            1,
            "phy",
            "sent",
            f"bits leave on {out_interface or q.interface_name}",
            "The frame becomes a signal on the next link.",
            _TOPOLOGY if out_interface else _CAPTURE,
        )
    )
    return tuple(steps)


def _ttl(packet: Packet) -> int | None:
    ip = packet.layer("ip")
    return ip.fields.get("ttl") if ip is not None else None


def _summary(
    device: Device,
    behaviour: str,
    stopped: int,
    arrival_in: _Arrival | None,
    arrival_out: _Arrival | None,
) -> str:
    target = (arrival_out.onward or arrival_out.device) if arrival_out else None
    if behaviour == "bridge" and arrival_in is not None:
        target = arrival_in.onward or target
    shown = arrival_out or arrival_in
    message = shown.pdu.message if shown is not None else ""
    if behaviour == "origin":
        return f"{device.name} sends {message} to {target}."
    read = f"{device.name} reads up to layer {stopped}"
    if behaviour == "bridge":
        return f"{read} (MAC addresses) and forwards the frame to {target}."
    if behaviour == "forward-l4":
        return f"{read} (addresses and ports), rewrites the addresses and forwards the same segment to {target}."
    if behaviour == "proxy-l4":
        return (
            f"{read} (its own TCP connection) and relays the bytes unread to {target} over another."
        )
    if behaviour == "proxy-l7":
        return f"{read} ({arrival_in.pdu.message if arrival_in else ''}) and sends it on to {target} itself."
    if behaviour == "sink":
        return f"{read}: {message}. The journey ends here."
    assert arrival_out is not None
    return f"{read} and sends {arrival_out.pdu.message} to {target}."


def build_journey(
    index: CaptureIndex,
    network: Network,
    request_id: str,
    *,
    capture: str = "",
    use_models: bool = True,
) -> Journey:
    """The journey of request ``request_id`` through an indexed capture (see the module docstring).

    ``use_models=False`` explains balancers from the capture only (no :mod:`osilab.balancers`).
    Raises :class:`~osilab.errors.UsageError` when no request carries that id.
    """
    legs = _legs(index, request_id)
    pdus, notes = _pdus(index, network, legs)
    first = index.packets[legs[0].request.headers_complete_packet]
    starter = network.device(network.owner(_mac(first, "src"), first.ip_src)[0])
    if network.known and starter.role != "client":
        notes.append(
            f"the first plaintext request is {starter.name}'s: the client's leg before it is not readable "
            f"here (TLS-encrypted, or not captured), so the journey starts at {starter.name}."
        )
    arrivals = _arrivals(network, pdus)
    events: list[JourneyEvent] = []
    balancer: str | None = None
    decisions: dict[str, Any] = {}
    previous: str | None = None
    # (device, arrival in, arrival out): origins where a device starts a PDU we saw nothing come in for.
    plan: list[tuple[str, _Arrival | None, _Arrival | None]] = []
    for position, arrival in enumerate(arrivals):
        if arrival.came_from != previous:
            plan.append((arrival.came_from, None, arrival))
            if previous is not None:
                notes.append(
                    f"the capture does not show what {arrival.came_from} received before sending "
                    f"{arrival.pdu.message}"
                )
        following = arrivals[position + 1] if position + 1 < len(arrivals) else None
        plan.append(
            (
                arrival.device,
                arrival,
                following if following and following.came_from == arrival.device else None,
            )
        )
        previous = arrival.device
    for device_name, arrival_in, arrival_out in plan:
        device = network.device(device_name)
        behaviour = _behaviour(device, arrival_in, arrival_out)
        decision = None
        if network.known:
            is_balancer = (
                device.role in BALANCER_ROLES
                and arrival_in is not None
                and arrival_in.pdu.leg is legs[0]
            )
        else:  # the first device to pass the client's request on
            is_balancer = (
                arrival_in is not None
                and arrival_in.pdu.leg is legs[0]
                and behaviour in ("forward-l4", "proxy-l4", "proxy-l7")
            )
        is_balancer = (
            is_balancer and arrival_in is not None and arrival_in.pdu.direction == "request"
        )
        if is_balancer:
            assert arrival_in is not None and arrival_in.pdu.leg is not None
            balancer = balancer or device_name
            if use_models and device_name not in decisions:
                if behaviour == "forward-l4":
                    decisions[device_name] = _models.nlb_decision(
                        index, network, arrival_in.pdu.leg
                    )
                elif device.role in ("alb", "host") and behaviour == "proxy-l7":
                    decisions[device_name] = _models.alb_decision(
                        index, network, arrival_in.pdu.leg
                    )
            decision = decisions.get(device_name)
            if decision is not None and arrival_out is not None:
                notes.append(_model_vs_capture(device_name, decision, arrival_out.pdu.packet))
            elif use_models and not decisions.get(device_name):
                notes.append(
                    f"{device_name}: no balancer model decision; its reasons are explained from the capture."
                )
        in_steps = (
            _in_steps(
                network,
                device,
                arrival_in,
                behaviour,
                arrival_out.pdu if arrival_out else None,
                decision,
            )
            if arrival_in
            else ()
        )
        out_steps = (
            _out_steps(index, network, device, behaviour, arrival_in, arrival_out)
            if arrival_out
            else ()
        )
        stopped = max((step.osi for step in in_steps), default=0)
        pdu = (arrival_in or arrival_out).pdu  # type: ignore[union-attr]
        events.append(
            JourneyEvent(
                index=len(events),
                time=pdu.packet.time if arrival_in else arrival_out.pdu.packet.time,  # type: ignore[union-attr]
                device=device,
                behaviour=behaviour,
                direction=pdu.direction,
                came_from=arrival_in.came_from if arrival_in else None,
                goes_to=arrival_out.device if arrival_out else None,
                packet_in=PacketView.of(arrival_in.pdu.packet) if arrival_in else None,
                packet_out=PacketView.of(arrival_out.pdu.packet) if arrival_out else None,
                in_layers=in_steps,
                out_layers=out_steps,
                message=pdu.message,
                summary=_summary(device, behaviour, stopped, arrival_in, arrival_out),
            )
        )
    names = list(dict.fromkeys(event.device.name for event in events))
    on_path = set(names)
    links = tuple(pair for pair in network.linked() if set(pair) <= on_path)
    if not network.known:
        pairs = {
            (min(e.came_from, e.device.name), max(e.came_from, e.device.name))
            for e in events
            if e.came_from
        }
        links = tuple(sorted(pairs))
        notes.append("no topology.json: devices are named by IP address")
    return Journey(
        request_id=request_id,
        capture=capture,
        events=tuple(events),
        devices=tuple(network.device(name) for name in names),
        links=links,
        balancer=balancer,
        notes=tuple(notes),
    )


def _model_why(decision: Any, out: _Pdu | None) -> str:
    """The model's sentence, plus what the capture shows when the real balancer chose another target."""
    why = decision.why[:1].upper() + decision.why[1:]
    if out is None or getattr(decision, "target", None) in (
        None,
        f"{out.packet.ip_dst}:{out.packet.dst_port}",
    ):
        return why
    return (
        why.rstrip(".") + f"; the real balancer, counting or hashing its own way, sent it to "
        f"{out.packet.ip_dst}:{out.packet.dst_port}, as the capture shows."
    )


def _model_vs_capture(device: str, decision: Any, sent: Packet) -> str:
    target = getattr(decision, "target", None)
    real = f"{sent.ip_dst}:{sent.dst_port}"
    if target == real:
        return f"{device}: the balancer model chose {target}, as the capture shows."
    return (
        f"{device}: the balancer model chose {target}, the real balancer sent it to {real} (the model sees only "
        "this capture and hashes or counts its own way); the reasons say what the model did."
    )

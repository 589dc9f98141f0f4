"""The path of one request through a multi-hop capture: its legs, its PDUs, who handled them.

The first four steps of a journey (see :mod:`osilab.journey.trip`):

1. **Legs** (:func:`find_legs`): every HTTP request carrying the id, on every hop, ordered
   by the time their headers were complete.
2. **The back end, by timing**: the device that received the last leg (the app) answers
   it later on the same connection; every Redis or PostgreSQL message the app sent or
   received between those two moments belongs to this request. The id confirms it where
   it is visible (the Redis key ``rid:<id>``, the SQL comment ``/* rid=<id> */``).
3. **PDUs** (:func:`path_pdus`): the legs' requests (the packet where each head became
   complete), the store messages, the legs' responses in reverse order. When every leg
   was answered ``101 Switching Protocols`` to a WebSocket Upgrade (RFC 6455 §4), the
   connections carry frames from then on, and the journey goes on with the first
   WebSocket message after the Upgrade, on every leg, and the first one back.
4. **Devices** (:func:`arrivals_of`): the sender of a frame owns its source MAC, the
   receiver its destination MAC (:mod:`osilab.journey.network`); a frame between two hosts
   not linked directly crossed the bridge between them, which gets an arrival of its own.

:func:`behaviour_of` then says how a device handled the PDU (a key of
:data:`~osilab.journey.events.BEHAVIOURS`), by comparing the packet it received with
the packet it sent. Sans-IO: it works on an indexed capture and a parsed topology.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from osilab.capture.packet import Packet
from osilab.errors import UsageError
from osilab.journey._index import CaptureIndex, Exchange, Run
from osilab.journey.network import Device, Network
from osilab.protocols import AppMessage, Direction

__all__ = ["Pdu", "Arrival", "find_legs", "path_pdus", "arrivals_of", "behaviour_of", "mac"]


@dataclass(frozen=True, slots=True)
class Pdu:
    """One protocol data unit on the request's path: the frame that carried it, and what it was."""

    packet: Packet
    direction: str
    protocol: str  # "http", "resp", "pgsql", "websocket"
    message: str
    leg: Exchange | None = None
    run: Run | None = None
    #: A WebSocket message: the upgraded exchange whose connection carried it, and the message.
    tunnel: Exchange | None = None
    websocket: AppMessage | None = None


@dataclass(frozen=True, slots=True)
class Arrival:
    """A PDU reaching a device (``came_from`` sent it)."""

    device: str
    came_from: str
    pdu: Pdu
    interface: str | None  # the receiving device's interface (or the bridge's port)
    onward: str | None = None  # for a bridge: the host the frame is addressed to


def find_legs(index: CaptureIndex, request_id: str) -> list[Exchange]:
    """Every HTTP request carrying ``request_id``, on every hop, in time order (step 1)."""
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


def path_pdus(
    index: CaptureIndex, network: Network, legs: list[Exchange]
) -> tuple[list[Pdu], list[str]]:
    """The PDUs in path order (steps 2 and 3), and the notes on how the back end was joined."""
    notes: list[str] = []
    last = legs[-1]
    start = last.request.time
    end = last.response.time if last.response else float("inf")
    window = [run for run in index.runs if start <= run.time <= end]
    after = _after_upgrade(index, legs)
    packets = index.packets_at(
        {leg.request.headers_complete_packet for leg in legs}
        | {leg.response.headers_complete_packet for leg in legs if leg.response}
        | {run.last_packet for run in window}
        | {message.last_packet for _, message in after}
    )
    pdus = [
        Pdu(
            packets[leg.request.headers_complete_packet],
            "request",
            "http",
            _request_line(leg),
            leg=leg,
        )
        for leg in legs
    ]
    first_packet = packets[last.request.headers_complete_packet]
    worker, _ = network.owner(mac(first_packet, "dst"), first_packet.ip_dst)
    addresses = set(network.device(worker).addresses) | {last.flow.key.server.ip}
    runs = [run for run in window if run.flow.key.client.ip in addresses]
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
    runs = _without_pool_checks(runs)
    for run in runs:
        direction = "request" if run.side == "c" else "response"
        pdus.append(Pdu(packets[run.last_packet], direction, run.protocol, run.summary, run=run))
    until = last.response.headers_complete_packet if last.response else "the end"
    for protocol, (title, marker, confirmed, missing) in _WITNESSES.items():
        mine = [run for run in runs if run.protocol == protocol]
        if mine:
            seen = any(marker.format(rid) in run.text for run in mine)
            notes.append(
                f"{title} messages joined by timing (between packets "
                f"{last.request.headers_complete_packet} and {until}); "
                + (confirmed.format(rid) if seen else missing)
            )
    for leg in reversed(legs):
        if leg.response is None:
            notes.append(
                f"no response to {leg.request.method} {leg.request.target} on {leg.flow.hop}"
            )
            continue
        packet = packets[leg.response.headers_complete_packet]
        pdus.append(Pdu(packet, "response", "http", _status_line(leg), leg=leg))
    for leg, message in after:
        direction = "request" if message.direction is Direction.TO_SERVER else "response"
        pdus.append(Pdu(packets[message.last_packet], direction, "websocket", message.summary,
                        tunnel=leg, websocket=message))  # fmt: skip
    if after:
        notes.append(
            f"after the 101 the connections carry WebSocket frames (RFC 6455), not requests: the "
            f"journey goes on with the first message after the Upgrade ({after[0][1].summary}, packet "
            f"{after[0][1].last_packet}) and the first one back."
        )
    return pdus, notes


def _after_upgrade(index: CaptureIndex, legs: list[Exchange]) -> list[tuple[Exchange, AppMessage]]:
    """The first WebSocket message after the Upgrade on every leg, then the first one back on
    every leg in reverse order (``[]`` unless every leg was switched to WebSocket by a 101)."""
    if any(leg.response is None or leg.response.status != 101 for leg in legs):
        return []
    chosen: list[tuple[Exchange, AppMessage]] = []
    for leg in legs:
        message = _first(index.websocket.get(leg.flow.key, ()), Direction.TO_SERVER, 0.0)
        if message is None:  # a leg whose first message the capture does not show
            return []
        chosen.append((leg, message))
    since = chosen[-1][1].time  # the reply comes after the message reached the end
    back = [(leg, _first(index.websocket.get(leg.flow.key, ()), Direction.TO_CLIENT, since))
            for leg in reversed(legs)]  # fmt: skip
    if all(message is not None for _, message in back):
        chosen += [(leg, message) for leg, message in back if message is not None]
    return chosen


def _first(messages: Any, direction: Direction, since: float) -> AppMessage | None:
    """The first message in ``direction`` that completed at or after ``since``."""
    return next((m for m in messages if m.direction is direction and m.time >= since), None)


#: Store protocol -> (its name, how its messages name the request id, the note when they
#: do, the note when they do not). The lab's app puts the id in the Redis key and in the
#: SQL (a comment, or a bound value with pgjdbc), so the timing can be confirmed.
_WITNESSES = {
    "resp": ("Redis", "rid:{}", "the key rid:{} confirms them.", "no key names the request id."),
    "pgsql": (
        "PostgreSQL",
        "rid={}",
        "the SQL text rid={} (a comment, or a value bound to a prepared statement) confirms them.",
        "no SQL text names the id.",
    ),
}


def _empty_query(run: Run) -> bool:
    """A PostgreSQL command whose SQL is empty and that binds no value."""
    queries = [str(m.fields["query"]) for m in run.messages if "query" in m.fields]
    bound = [v for m in run.messages if m.summary.startswith(">B") for v in m.fields.get("values", ())]
    return bool(queries) and not any(q.strip(" ;") for q in queries) and not bound


def _without_pool_checks(runs: list[Run]) -> list[Run]:
    """Leave out a connection pool's own checks: a PostgreSQL query with no SQL at all (JDBC's
    ``isValid`` sends an empty Parse), and its reply. No request asked for them."""
    kept: list[Run] = []
    checking: set[int] = set()  # flows whose last command was an empty query
    for run in runs:
        if run.protocol == "pgsql" and run.side == "c":
            if _empty_query(run):
                checking.add(id(run.flow))
                continue
            checking.discard(id(run.flow))
        elif run.protocol == "pgsql" and id(run.flow) in checking:
            checking.discard(id(run.flow))
            continue
        kept.append(run)
    return kept


def _naming(runs: list[Run], rid: str) -> list[Run]:
    """The store commands that name ``rid`` (``rid:<id>`` key, ``rid=<id>`` comment) and their replies."""
    marker = re.compile(r"rid[:=]" + re.escape(rid) + r"(?![A-Za-z0-9_-])")
    kept: list[Run] = []
    asked: dict[int, bool] = {}  # flow identity -> whether its last command was kept
    for run in runs:
        if run.side == "c":
            asked[id(run.flow)] = bool(marker.search(run.text))
            if asked[id(run.flow)]:
                kept.append(run)
        elif asked.get(id(run.flow)):
            kept.append(run)
            asked[id(run.flow)] = False
    return kept


def mac(packet: Packet, which: str) -> str | None:
    """The frame's ``"src"`` or ``"dst"`` MAC address, when it has an Ethernet header."""
    eth = packet.layer("eth")
    return str(eth.fields.get(which)) if eth is not None and eth.fields.get(which) else None


def arrivals_of(network: Network, pdus: list[Pdu]) -> list[Arrival]:
    """Who received each PDU from whom (step 4), with a bridge's own arrival where one is crossed."""
    arrivals: list[Arrival] = []
    seen_macs: dict[str | None, str] = {}
    previous: str | None = None
    for pdu in pdus:
        source_mac, destination_mac = mac(pdu.packet, "src"), mac(pdu.packet, "dst")
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
                Arrival(bridge, sender, pdu, network.port_towards(bridge, sender), receiver)
            )
            arrivals.append(Arrival(receiver, bridge, pdu, interface))
        else:
            arrivals.append(Arrival(receiver, sender, pdu, interface))
    return arrivals


def behaviour_of(device: Device, arrival_in: Arrival | None, arrival_out: Arrival | None) -> str:
    """How ``device`` handled the PDU, observed by comparing what came in with what went out."""
    if arrival_in is None:
        return "origin"
    if device.role == "switch" or (arrival_out is not None and arrival_out.pdu is arrival_in.pdu):
        return "bridge"
    if arrival_out is None:
        return "sink"
    p, q = arrival_in.pdu.packet, arrival_out.pdu.packet
    if _segment(p) == _segment(q):
        return "forward-l4"
    pin, pout = arrival_in.pdu, arrival_out.pdu
    if pin.tunnel is not None and pout.tunnel is not None and pin.direction == pout.direction:
        return "tunnel"
    if pin.leg is not None and pout.leg is not None and pin.direction == pout.direction:
        if device.role == "l4proxy" or (device.role == "host" and _same_message(pin, pout)):
            return "proxy-l4"
        return "proxy-l7"
    return "endpoint"


def _same_message(first: Pdu, second: Pdu) -> bool:
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


def _segment(packet: Packet) -> tuple[Any, ...]:
    """What a layer 4 forwarder leaves as it is: the ports, the sequence number, the payload."""
    return (packet.src_port, packet.dst_port, packet.tcp_seq, packet.payload)

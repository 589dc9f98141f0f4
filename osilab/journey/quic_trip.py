"""A QUIC connection's journey: its datagrams through the balancer, before and after it moved.

A request's journey (:mod:`osilab.journey.trip`) follows one HTTP request; behind a layer 4
balancer a QUIC connection is the better unit, because the balancer decides per 5-tuple
and a QUIC connection can change its 5-tuple (RFC 9000 §9). So this journey follows the
connection (:mod:`osilab.journey.quic`), on the same index, the same devices and the same
view, one *crossing* at a time (a datagram on the client's hop, then the same bytes on the
balancer's back side, or the way back):

1. the client's first Initial, and the server's first answer (whose Source Connection ID
   is the ID the server chose: with QUIC-LB, its server ID inside);
2. the HTTP/3 request the journey was asked about, and its response, when decrypted;
3. for each new client address: its first datagram, where the balancer sent it, and the
   first answer, or, when none came (the target did not know the connection ID), the
   client's last try; and on the path it left, the server's first datagram after the move
   and the ICMP error that answers it (the client's old port is closed).

At the balancer the model explains each new 5-tuple (:func:`osilab.journey._models.nlb_flow_decisions`),
with the configuration whose listener took the datagram: a ``UDP`` listener's why names
the 5-tuple hash, a ``QUIC`` listener's the server ID in the Destination Connection ID.
:func:`connection_routes` gives the same facts as rows, for tables and tests.

Sans-IO, like the rest of the journey.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from osilab.balancers import BalancerConfig, Decision, explain
from osilab.balancers.quic_lb import QUIC_LISTENER_PROTOCOLS, server_id_of
from osilab.capture.packet import Packet
from osilab.errors import DecodeError
from osilab.journey._index import CaptureIndex, Exchange
from osilab.journey._models import nlb_flow_decisions
from osilab.journey.events import (
    BALANCER_ROLES,
    MODEL,
    TOPOLOGY,
    JourneyEvent,
    LayerStep,
    PacketView,
)
from osilab.journey.network import Device, Network
from osilab.journey.path import Arrival, Pdu, arrivals_of, behaviour_of, mac
from osilab.journey.quic import ISSUED, SERVER_ID, QuicConnection, QuicPath, first_quic_packet
from osilab.journey.steps import _eth_line, _ip_line, event_summary, model_why
from osilab.journey.trip import Journey, _plan
from osilab.protocols.quic import parse_datagram

__all__ = ["PathRoute", "connection_routes", "connection_journey", "connection_of"]


@dataclass(frozen=True, slots=True)
class PathRoute:
    """Where a balancer sent one client address of a QUIC connection, and why.

    Attributes:
        client: the client's ``ip:port`` (a new one after each migration).
        balancer: the address it sent to (``VIP:port``), on the client's hop.
        listener: the model's listener (``"UDP:443"``, ``"QUIC:4433"``), or None.
        first_packet: the first datagram from this address (the balancer decides here).
        dcid: the Destination Connection ID of that datagram, in hex.
        target: where the real balancer sent it (the back side of the capture).
        model_target: where the model sent it; ``seen``: the fields it read; ``why``.
        to_target, from_target: datagrams on the back side, each way.
    """

    client: str
    balancer: str
    listener: str | None
    first_packet: int
    dcid: str | None
    target: str | None
    model_target: str | None
    seen: tuple[str, ...]
    why: str
    to_target: int
    from_target: int


def _config_for(configs: Mapping[str, BalancerConfig], port: int) -> BalancerConfig | None:
    """The balancer config with a listener that takes UDP on ``port``."""
    return next((c for c in configs.values() if c.listener(port, "udp") is not None), None)


def _decisions(index: CaptureIndex, connection: QuicConnection,
               configs: Mapping[str, BalancerConfig]) -> dict[QuicPath, Decision | None]:  # fmt: skip
    """The model's decision for the front flow of each client address."""
    fronts = [connection.hops_of(client)[0] for client in connection.clients]
    config = _config_for(configs, fronts[0].flow.key.server.port) if fronts else None
    if config is None:
        return {front: None for front in fronts}
    made = nlb_flow_decisions(index, [front.flow.key for front in fronts], config)
    return {front: made[front.flow.key] for front in fronts}


def connection_routes(index: CaptureIndex, connection: QuicConnection,
                      configs: Mapping[str, BalancerConfig]) -> list[PathRoute]:  # fmt: skip
    """One row per client address of ``connection``: the real target and the model's."""
    rows = []
    for front, decision in _decisions(index, connection, configs).items():
        back = next(iter(connection.hops_of(front.client)[1:]), None)
        rows.append(PathRoute(
            client=str(front.client), balancer=str(front.flow.key.server),
            listener=decision.listener if decision else None, first_packet=front.first,
            dcid=front.dcid.hex() if front.dcid else None,
            target=str(back.flow.key.server) if back else None,
            model_target=decision.target if decision else None,
            seen=tuple(decision.seen) if decision else (), why=decision.why if decision else "",
            to_target=len(back.to_server) if back else 0,
            from_target=len(back.to_client) if back else 0,
        ))  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------
# The crossings: which datagrams the journey shows
# ---------------------------------------------------------------------------------------


def _pick(connection: QuicConnection, legs: list[Exchange]) -> list[tuple[str, tuple[int, ...]]]:
    """``(kind, packet numbers)`` of each crossing: the same datagram on each hop, in order.

    Kinds: ``open`` (the client's first datagram from an address), ``answer`` (the first
    datagram back on it), ``retry`` (the client's last try when nothing came back),
    ``request``/``response`` (the HTTP/3 request asked about), ``left`` (the server's first
    datagram to an address the client has left).
    """
    crossings: list[tuple[str, tuple[int, ...]]] = []
    clients = connection.clients
    for position, client in enumerate(clients):
        hops = connection.hops_of(client)
        front, backs = hops[0], hops[1:]
        crossings.append(
            ("open", (front.to_server[0], *(b.to_server[0] for b in backs if b.to_server)))
        )
        answered = [b for b in backs if b.to_client]
        if answered:
            crossings.append(
                ("answer", (*(b.to_client[0] for b in answered), *front.to_client[:1]))
            )
        elif len(front.to_server) > 1:  # nobody answered: the client's last try
            crossings.append(("retry", (front.to_server[-1],
                                        *(b.to_server[-1] for b in backs if b.to_server))))  # fmt: skip
        mine = [leg for leg in legs if leg.flow.key.client == client]
        if mine:
            crossings.append(
                ("request", tuple(leg.request.headers_complete_packet for leg in mine))
            )
            answers = [
                leg.response.headers_complete_packet for leg in reversed(mine) if leg.response
            ]
            if answers:
                crossings.append(("response", tuple(answers)))
        if position + 1 < len(clients):  # the path it leaves: the server's next datagram
            moved = connection.hops_of(clients[position + 1])[0].first
            later = [(b, next((no for no in b.to_client if no > moved), None)) for b in backs]
            sent = [no for _b, no in later if no is not None]
            if sent:
                copy = next((no for no in front.to_client if no > sent[0]), None)
                crossings.append(("left", (sent[0], *([copy] if copy else []))))
    return sorted(crossings, key=lambda crossing: crossing[1][0])


def _icmp_after(index: CaptureIndex, packets: Mapping[int, Packet], sent: Packet) -> list[int]:
    """The ICMP errors (on every hop) that quote ``sent``'s UDP ports, soon after it."""
    found = []
    for no, _interface in index.icmp:
        packet = packets.get(no)
        if packet is None or no <= sent.no:
            continue
        quoted = [lay for lay in packet.layers if lay.name == "udp"]
        if quoted and quoted[-1].fields.get("dstport") == sent.dst_port:
            found.append(no)
    return found[:2]


def _message(index: CaptureIndex, packet: Packet, cid_length: int) -> str:
    """The datagram in words: the pipeline's summary, else its headers read without keys."""
    flow = index.flow_of(packet)
    for message in index.quic.get(flow.key, ()) if flow else ():
        if message.last_packet == packet.no:
            return message.summary
    if "icmp" in packet:
        return next(lay.summary for lay in packet.layers if lay.name == "icmp")
    try:
        packets = parse_datagram(packet.payload, short_dcid_length=cid_length)
    except DecodeError:  # a datagram cut short: shown as bytes
        packets = []
    return ", ".join(p.summary for p in packets) or f"{len(packet.payload)} bytes"


# ---------------------------------------------------------------------------------------
# The layers in and out of each event
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the steps need to know about the connection and the balancer."""

    connection: QuicConnection
    decisions: dict[QuicPath, Decision | None]
    listeners: dict[int, str]  # balancer port -> listener protocol
    owners: dict[bytes, str]  # QuicServerId -> the device it names (the QUIC config's targets)
    kinds: dict[int, str]  # packet number -> crossing kind


def _udp_line(packet: Packet) -> str:
    return f"port {packet.src_port} -> {packet.dst_port}, {len(packet.payload)} payload bytes"


def _dcid(packet: Packet, length: int) -> bytes | None:
    first = first_quic_packet(packet.payload, length)
    return first.dcid if first is not None else None


def _cid_words(cid: bytes | None) -> str:
    """A QUIC-LB plaintext ID in words: first octet, server ID, nonce."""
    if cid is None:
        return "an ID of unknown length"
    server = server_id_of(cid)
    if server is None:
        return f"{cid.hex()} (no server ID in it)"
    return f"{cid.hex()} (first octet {cid[:1].hex()}, server ID 0x{server.hex()}, nonce {cid[9:].hex()})"


def _path_of(facts: _Facts, packet: Packet) -> QuicPath | None:
    for path in facts.connection.paths:
        if path.flow.key.interface == packet.interface and packet.no in {
            n for n, *_ in path.flow.datagrams
        }:
            return path
    return None


def _balancer_l4(facts: _Facts, pdu: Pdu, out: Pdu | None) -> LayerStep:
    packet = pdu.packet
    if pdu.protocol == "icmp":
        return LayerStep(3, "icmp", "stop", pdu.message,
                         "Connection tracking matches the ICMP error to the UDP flow it quotes and "
                         "rewrites the quoted header as well, as a NAT does (RFC 5508).")  # fmt: skip
    path = _path_of(facts, packet)
    protocol = facts.listeners.get(packet.dst_port or 0) if pdu.direction == "request" else None
    if pdu.direction != "request" or path is None:
        return LayerStep(4, "udp", "stop", _udp_line(packet) + " (the QUIC inside is not read)",
                         "The ports match a known flow, so the reply goes back the way the datagram "
                         "came; nothing inside the UDP payload is read.")  # fmt: skip
    decision = facts.decisions.get(path)
    quic = protocol in QUIC_LISTENER_PROTOCOLS
    name = "quic" if quic else "udp"
    detail = _udp_line(packet) + (f"; DCID {pdu.message.split('DCID=')[-1].split(',')[0]}"
                                  if quic else " (the QUIC inside is not read)")  # fmt: skip
    if decision is None:
        return LayerStep(4, name, "stop", detail, "The flow's 5-tuple chose the target at its first "
                         "datagram (explained from the capture: no balancer model for this port).")  # fmt: skip
    if packet.no != path.first:
        why = explain.nlb_follow_why(decision.flow, decision.decided_at)
        return LayerStep(4, name, "stop", detail, why[:1].upper() + why[1:] + ": a later datagram of a "
                         "known 5-tuple is not decided again.", MODEL)  # fmt: skip
    return LayerStep(4, name, "stop", detail, model_why(decision, out), MODEL)


def _endpoint_l4(facts: _Facts, device: Device, pdu: Pdu, behaviour: str, length: int) -> LayerStep:
    packet, connection = pdu.packet, facts.connection
    if pdu.protocol == "icmp":
        return LayerStep(3, "icmp", "stop", pdu.message, f"{device.name} reads the ICMP error; it "
                         "names the UDP datagram that could not be delivered.")  # fmt: skip
    dcid = _dcid(packet, length)
    detail = f"UDP {_udp_line(packet)}; {pdu.message}"
    if behaviour == "drop":
        detail = f"UDP {_udp_line(packet)}; short header, DCID={dcid.hex() if dcid else '?'} (the rest is encrypted)"
        owner = facts.owners.get(server_id_of(dcid) or b"") if dcid else None
        return LayerStep(
            4,
            "quic",
            "stop",
            detail,
            (
                f"The DCID {_cid_words(dcid)} is no ID {device.name} issued"
                + (
                    f" (that server ID is {owner}'s, as the QUIC listener registers it)"
                    if owner and owner != device.name
                    else ""
                )
                + f": the datagram belongs to no connection {device.name} knows, so its QUIC stack drops "
                "it unread (RFC 9000 §5.2.2; a server may answer with a Stateless Reset, §10.3). The "
                "capture shows no datagram back on this 5-tuple."
            ),
        )
    if pdu.direction == "request" and device.role != "client":
        if facts.kinds.get(packet.no) == "open" and dcid == connection.original_dcid:
            why = (f"A new connection: {device.name} derives the Initial keys from the client's random "
                   "DCID (RFC 9001 §5.2), reads the ClientHello in the CRYPTO frames, and will name "
                   "the connection by IDs it chooses itself.")  # fmt: skip
        else:
            why = (f"The DCID {_cid_words(dcid)} is one {device.name} issued, so the datagram belongs "
                   "to this connection whatever its 5-tuple"
                   + ("; from a new address the server validates the path (PATH_CHALLENGE, RFC 9000 §8.2)."
                      if packet.src_port != connection.paths[0].client.port else "."))  # fmt: skip
        return LayerStep(4, "quic", "read" if pdu.protocol == "http3" else "stop", detail, why)
    if device.role == "client" and facts.kinds.get(packet.no) == "left":
        return LayerStep(
            4,
            "udp",
            "stop",
            _udp_line(packet) + " (to a closed port)",
            (
                f"Port {packet.dst_port} is closed: the client moved the connection to port "
                f"{connection.clients[-1].port} and closed this socket, so its kernel answers with ICMP "
                "port unreachable (RFC 1122 §3.2.2.1). The server is not told the client moved."
            ),
        )
    return LayerStep(4, "quic", "read" if pdu.protocol == "http3" else "stop", detail,
                     f"The DCID is an ID {device.name} chose itself, so the datagram is for this "
                     "connection.")  # fmt: skip


def _in(facts: _Facts, network: Network, device: Device, arrival: Arrival, behaviour: str,
        out: Pdu | None, length: int) -> tuple[LayerStep, ...]:  # fmt: skip
    pdu, packet = arrival.pdu, arrival.pdu.packet
    where = arrival.interface or packet.interface_name or "its interface"
    steps = [
        LayerStep(1, "phy", "read", f"bits arrive on {where}", "A signal on the link (here a veth "
                  "pair) becomes a frame.", TOPOLOGY),
        LayerStep(2, packet.layers[0].name if packet.layers else "eth", "read", _eth_line(packet),
                  f"The destination MAC is {device.name}'s own interface: it takes the frame in."),
    ]  # fmt: skip
    if behaviour == "forward-l4":
        to_vip = pdu.direction == "request"
        steps.append(LayerStep(3, "ip", "read", _ip_line(packet),
                               f"{packet.ip_dst} is the balancer's listener address: a DNAT rule in the "
                               "prerouting hook matches it." if to_vip else
                               "A reply from the target: connection tracking matches it to the flow."))  # fmt: skip
        if pdu.protocol != "icmp" or to_vip:
            steps.append(_balancer_l4(facts, pdu, out))
        return tuple(steps)
    steps.append(LayerStep(3, "ip", "read", _ip_line(packet), f"{packet.ip_dst} is one of "
                           f"{device.name}'s own addresses, so the packet goes up to UDP."))  # fmt: skip
    steps.append(_endpoint_l4(facts, device, pdu, behaviour, length))
    if pdu.protocol == "http3" and behaviour != "drop":
        steps.append(LayerStep(7, "http3", "stop", pdu.message, "Decrypted with the key log: the "
                               "HTTP/3 HEADERS frame on the request's own stream, QPACK-decoded "
                               "(RFC 9114, RFC 9204)."))  # fmt: skip
    return tuple(steps)


def _created_why(facts: _Facts, device: Device, pdu: Pdu, length: int) -> str:
    connection, packet = facts.connection, pdu.packet
    kind = facts.kinds.get(packet.no, "")
    if pdu.protocol == "icmp":
        return "The kernel's answer to a datagram for a closed port: ICMP destination unreachable."
    if kind == "open" and device.role == "client":
        path = _path_of(facts, packet)
        if path is None or path.joined not in (ISSUED, SERVER_ID):
            return (f"The client opens the connection with an Initial: a DCID it drew at random "
                    f"({connection.original_dcid.hex()}), which names the connection until the "
                    "server chooses its own IDs.")  # fmt: skip
        issued = (
            f", issued in a NEW_CONNECTION_ID frame at packet {path.issued_at}"
            if path.issued_at
            else " (without the key log the frame that issued it is unreadable)"
        )
        return (f"The client moved the connection to a new UDP socket (port {packet.src_port}). On a "
                f"new path it must use a new connection ID the server issued (RFC 9000 §9.5){issued}: "
                f"DCID {_cid_words(path.dcid)}. The nonce changed; the server ID did not.")  # fmt: skip
    if kind == "answer":
        handshake = {path.to_client[0] for path in connection.paths if path.joined == "handshake"
                     and path.to_client}  # fmt: skip
        if packet.no not in handshake or connection.server_cid is None:
            return (f"{device.name} answers on the new path (it validates it first: PATH_CHALLENGE, "
                    "RFC 9000 §8.2).")  # fmt: skip
        return (f"{device.name} answers with its Initial and Handshake and names the connection "
                f"with its own ID {_cid_words(connection.server_cid)}: a QUIC-aware balancer can "
                "route later packets by the server ID in it.")  # fmt: skip
    if kind == "left":
        return (f"{device.name} does not know the client moved: it goes on sending to the old "
                f"address {packet.ip_dst}:{packet.dst_port} (a retransmission or probe).")  # fmt: skip
    if kind == "retry":
        return ("No answer came: the client's QUIC stack retransmits with a longer timeout each "
                "time (RFC 9002 §6.2), always with the same DCID.")  # fmt: skip
    return f"{device.name} writes the datagram: {pdu.message}."


def _out(facts: _Facts, network: Network, device: Device, behaviour: str, arrival_in: Arrival | None,
         arrival_out: Arrival, length: int) -> tuple[LayerStep, ...]:  # fmt: skip
    q, pdu = arrival_out.pdu.packet, arrival_out.pdu
    p = arrival_in.pdu.packet if arrival_in else None
    _, out_interface = network.owner(mac(q, "src"), None)
    steps: list[LayerStep] = []
    if behaviour == "forward-l4" and p is not None:
        if pdu.protocol != "icmp":
            steps.append(LayerStep(4, "udp", "kept",
                                   f"port {q.src_port} -> {q.dst_port}, {len(q.payload)} payload bytes unchanged",
                                   "A layer 4 balancer forwards the datagram as it is: the QUIC bytes, "
                                   "connection IDs included, pass unread."))  # fmt: skip
        rewrite = (
            f"destination {p.ip_dst} -> {q.ip_dst}; source {q.ip_src} kept"
            if pdu.direction == "request"
            else f"source {p.ip_src} -> {q.ip_src}; destination kept"
        )
        steps.append(LayerStep(3, "ip", "rewrote", rewrite,
                               "Destination NAT to the chosen target, keeping the client's address "
                               "(always on for UDP and QUIC)." if pdu.direction == "request" else
                               "Connection tracking undoes the DNAT: the client sees the reply come "
                               "from the address it called."))  # fmt: skip
    else:
        if pdu.protocol == "http3":
            steps.append(LayerStep(7, "http3", "created", pdu.message, "The HTTP/3 message, on its "
                                   "own QUIC stream, encrypted in a 1-RTT packet."))  # fmt: skip
        name = "icmp" if pdu.protocol == "icmp" else "quic"
        steps.append(LayerStep(4 if name == "quic" else 3, name, "created",
                               pdu.message if name == "icmp" else f"UDP {_udp_line(q)}; {pdu.message}",
                               _created_why(facts, device, pdu, length)))  # fmt: skip
        if name == "quic":
            steps.append(
                LayerStep(
                    3,
                    "ip",
                    "created",
                    _ip_line(q),
                    f"A new IP header from {device.name}'s own address {q.ip_src}.",
                )
            )
    steps.append(LayerStep(2, q.layers[0].name if q.layers else "eth", "created",
                           f"{_eth_line(q)} (out of {out_interface or 'its interface'})",
                           "A fresh Ethernet header for the next link."))  # fmt: skip
    steps.append(LayerStep(1, "phy", "sent", f"bits leave on {out_interface or q.interface_name}",
                           "The frame becomes a signal on the next link.", TOPOLOGY))  # fmt: skip
    return tuple(steps)


def _summary(device: Device, behaviour: str, arrival_in: Arrival | None, arrival_out: Arrival | None,
             stopped: int) -> str:  # fmt: skip
    """The event in one sentence: a datagram's own cases here, the rest as for a segment."""
    read = f"{device.name} reads up to layer {stopped}"
    if behaviour == "forward-l4" and arrival_out is not None:
        return f"{read} and forwards the same datagram to {arrival_out.device}."
    if behaviour == "drop":
        return f"{read} and drops the datagram: nothing comes back."
    if arrival_out is None and behaviour != "origin":
        return f"{device.name} reads {arrival_in.pdu.message if arrival_in else ''}."
    return event_summary(device, behaviour, stopped, arrival_in, arrival_out)


def _behaviour(device: Device, arrival_in: Arrival | None, arrival_out: Arrival | None) -> str:
    """As :func:`~osilab.journey.path.behaviour_of`, and: a balancer that sends the datagram on
    in the same direction forwards it; a server that sends nothing back drops it."""
    if arrival_in is not None and arrival_out is not None and device.role in BALANCER_ROLES \
            and arrival_in.pdu.direction == arrival_out.pdu.direction:  # fmt: skip
        return "forward-l4"
    if arrival_in is not None and arrival_out is None and device.role != "client":
        return "sink" if arrival_in.pdu.protocol == "icmp" else "drop"
    return behaviour_of(device, arrival_in, arrival_out)


def connection_journey(index: CaptureIndex, network: Network, connection: QuicConnection,
                       configs: Mapping[str, BalancerConfig], *, capture: str = "",
                       request_id: str | None = None, legs: list[Exchange] | None = None,
                       use_models: bool = True) -> Journey:  # fmt: skip
    """The journey of one QUIC connection (and, given ``legs``, of one HTTP/3 request on it)."""
    legs = legs or []
    crossings = _pick(connection, legs)
    length = len(connection.server_cid) if connection.server_cid else 8
    packets = index.packets_at({no for _kind, numbers in crossings for no in numbers}
                               | {no for no, _interface in index.icmp})  # fmt: skip
    kinds: dict[int, str] = {}
    for kind, numbers in crossings:
        for no in numbers:
            kinds.setdefault(no, kind)
    for kind, numbers in list(crossings):
        if kind == "left":  # the ICMP error the client's closed port answers with
            icmp = _icmp_after(index, packets, packets[numbers[-1]])
            if icmp:
                crossings.append(("icmp", tuple(icmp)))
                kinds.update(dict.fromkeys(icmp, "icmp"))
    crossings.sort(key=lambda crossing: crossing[1][0])
    http = {}  # packet -> the HTTP/3 message it completes (a request's or its response's)
    for leg in legs:
        http[leg.request.headers_complete_packet] = (
            f"{leg.request.method} {leg.request.target} {leg.request.version}"
        )
        if leg.response is not None:
            http[leg.response.headers_complete_packet] = (
                f"{leg.response.version} {leg.response.status}"
            )
    pdus, shown = [], set()
    for kind, numbers in crossings:
        for no in numbers:
            if no in shown:  # the request rode in the datagram already shown (the first one)
                continue
            shown.add(no)
            to_server = kind in ("open", "retry", "request", "icmp")
            protocol = "icmp" if kind == "icmp" else "http3" if no in http else "quic"
            message = http.get(no) or _message(index, packets[no], length)
            pdus.append(Pdu(packets[no], "request" if to_server else "response", protocol, message))
    decisions = _decisions(index, connection, configs) if use_models else {}
    config = _config_for(configs, connection.paths[0].flow.key.server.port)
    listeners = {li.port: li.protocol for li in config.listeners} if config else {}
    owners = {bytes.fromhex(sid[2:]): network.owner(None, target.rsplit(":", 1)[0])[0]
              for c in configs.values() for g in c.target_groups
              for target, sid in g.quic_server_ids}  # fmt: skip
    facts = _Facts(connection, decisions, listeners, owners, kinds)
    events: list[JourneyEvent] = []
    balancer = None
    for device_name, arrival_in, arrival_out in _plan(arrivals_of(network, pdus), []):
        device = network.device(device_name)
        behaviour = _behaviour(device, arrival_in, arrival_out)
        if behaviour == "forward-l4":
            balancer = balancer or device_name
        steps_in = _in(facts, network, device, arrival_in, behaviour,
                       arrival_out.pdu if arrival_out else None, length) if arrival_in else ()  # fmt: skip
        steps_out = _out(facts, network, device, behaviour, arrival_in, arrival_out, length) \
            if arrival_out else ()  # fmt: skip
        stopped = max((step.osi for step in steps_in), default=0)
        pdu = (arrival_in or arrival_out).pdu  # type: ignore[union-attr]
        events.append(JourneyEvent(
            index=len(events), time=pdu.packet.time, device=device, behaviour=behaviour,
            direction=pdu.direction, came_from=arrival_in.came_from if arrival_in else None,
            goes_to=arrival_out.device if arrival_out else None,
            packet_in=PacketView.of(arrival_in.pdu.packet) if arrival_in else None,
            packet_out=PacketView.of(arrival_out.pdu.packet) if arrival_out else None,
            in_layers=steps_in, out_layers=steps_out, message=pdu.message,
            summary=_summary(device, behaviour, arrival_in, arrival_out, stopped),
        ))  # fmt: skip
    names = list(dict.fromkeys(event.device.name for event in events))
    links = tuple(pair for pair in network.linked() if set(pair) <= set(names))
    return Journey(
        request_id=request_id or f"quic:{connection.original_dcid.hex()}",
        capture=capture,
        events=tuple(events),
        devices=tuple(network.device(name) for name in names),
        links=links,
        balancer=balancer,
        notes=tuple(_notes(index, connection, configs, use_models)),
    )


def _notes(index: CaptureIndex, connection: QuicConnection, configs: Mapping[str, BalancerConfig],
           use_models: bool) -> list[str]:  # fmt: skip
    """What the journey says about the connection as a whole: the move, each route, the end."""
    notes = [connection.summary() + "."]
    for path in connection.paths:
        if path.joined == SERVER_ID:
            notes.append(f"{path.flow.hop} {path.client}: no handshake on this 5-tuple; joined to the "
                         f"connection by the server ID in its DCID {path.dcid.hex() if path.dcid else '?'} "
                         "and by timing (without the key log the NEW_CONNECTION_ID frames are not "
                         "readable): a guess, if a likely one.")  # fmt: skip
    routes = connection_routes(index, connection, configs) if use_models else []
    for row in routes:
        agree = "as the capture shows" if row.model_target == row.target else \
            f"the capture shows {row.target}"  # fmt: skip
        notes.append(f"{row.client} -> {row.balancer} (packet {row.first_packet}, DCID {row.dcid}): "
                     f"the model ({row.listener}) sent it to {row.model_target}, {agree}; it read "
                     f"{', '.join(row.seen)}; {row.to_target} datagrams to the target, "
                     f"{row.from_target} back.")  # fmt: skip
    last = connection.clients[-1]
    backs = connection.hops_of(last)[1:]
    if len(connection.clients) > 1 and backs and not any(b.to_client for b in backs):
        front = connection.hops_of(last)[0]
        first = connection.hops_of(connection.clients[0])
        stray = [no for path in first[1:] for no in path.to_client if no > front.first]
        icmp = [no for no, interface in index.icmp if interface == front.flow.key.interface
                and no > front.first]  # fmt: skip
        every = [no for path in connection.paths for no, *_ in path.flow.datagrams]
        end = max(every)
        ended = max(time for path in connection.paths for _no, time, _mine in path.flow.datagrams)
        notes.append(
            f"stranded: {backs[0].flow.key.server} answered none of the {len(front.to_server)} datagrams "
            f"from {last}; the server that holds the connection sent {len(stray)} datagrams to the old "
            f"address {connection.clients[0]}, and the client's closed port answered {len(icmp)} of them "
            f"with ICMP port unreachable. The last datagram of the connection is packet {end} "
            f"({ended - _started(connection):.3f} s after its first); after it, silence: "
            "each end drops the connection when its idle timeout expires, without a packet on the wire "
            "(RFC 9000 §10.1).")  # fmt: skip
    return notes


def _started(connection: QuicConnection) -> float:
    """The time of the connection's first datagram."""
    return min(path.flow.datagrams[0][1] for path in connection.paths)


def connection_of(connections: list[QuicConnection], legs: list[Exchange]) -> QuicConnection | None:
    """The QUIC connection that carried an HTTP/3 request's legs (None for TCP legs)."""
    keys = {leg.flow.key for leg in legs if leg.flow.key.proto == "udp"}
    return next((c for c in connections if keys & {path.flow.key for path in c.paths}), None)

"""What each device did at each layer, and why: the layer steps in and out of one event.

Step 5 of a journey (see :mod:`osilab.journey.trip`). For one device handling one PDU:

* :func:`in_steps` -- what it read on the way **in**, from layer 1 upwards, ending where
  it stopped (a bridge at 2, a layer 4 balancer at 4, a proxy or an end point at 7);
* :func:`out_steps` -- what it kept, rewrote or created on the way **out**, from the top
  down (a layer 4 balancer keeps the segment and rewrites the addresses; a proxy creates
  a TCP connection of its own);
* :func:`event_summary` -- the event in one sentence.

Each step has one sentence saying why. For a balancer the sentence is the balancer
model's own ``why`` (:func:`model_why`, from :mod:`osilab.journey._models`); a step
explained from the capture alone says so in its ``source``. Sans-IO.
"""

from __future__ import annotations

from typing import Any

from osilab.balancers.explain import alb_protocol_version_why
from osilab.balancers.targets import request_protocol
from osilab.capture.packet import Packet
from osilab.journey._index import CaptureIndex, Exchange
from osilab.journey.events import CAPTURE, MODEL, TOPOLOGY, LayerStep
from osilab.journey.network import Device, Network
from osilab.journey.path import Arrival, Pdu, mac

__all__ = ["in_steps", "out_steps", "event_summary", "model_why"]


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
    return f"{mac(packet, 'src')} -> {mac(packet, 'dst')}"


_SERVICE = {
    80: "HTTP",
    443: "HTTPS",
    8080: "the app's HTTP server",
    6379: "Redis",
    5432: "PostgreSQL",
}


def _l7_in_why(device: Device, pdu: Pdu, behaviour: str, out: Pdu | None) -> str:
    role, message = device.role, pdu.message
    if pdu.protocol == "websocket":
        if pdu.direction == "request":
            return (
                f"{device.name}'s WebSocket handler reads the frame and unmasks its payload with the "
                "key the client chose (RFC 6455 §5.3): the message is read here, at its end."
            )
        return (
            f"{device.name} reads the server's frame (unmasked, RFC 6455 §5.1): the message back, on "
            "the connection the Upgrade turned into a WebSocket."
        )
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


def in_steps(
    network: Network,
    device: Device,
    arrival: Arrival,
    behaviour: str,
    out: Pdu | None,
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
            TOPOLOGY if arrival.interface else CAPTURE,
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
                TOPOLOGY,
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
                why, source = model_why(decision, out), MODEL
            else:
                why, source = (
                    (
                        "The flow's 5-tuple chose the target at its SYN; later packets follow the same "
                        "choice (explained from the capture: the balancer model was not available)."
                    ),
                    CAPTURE,
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
    if behaviour == "tunnel":
        steps.append(_tunnel_in(device, pdu, decision, out))
        return tuple(steps)
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
        why, source = model_why(decision, out), MODEL
    else:
        why, source = _l7_in_why(device, pdu, behaviour, out), CAPTURE
    steps.append(LayerStep(7, pdu.protocol, "stop", detail, why, source))
    return tuple(steps)


def _tunnel_in(device: Device, pdu: Pdu, decision: Any | None, out: Pdu | None) -> LayerStep:
    """Layer 4, where a proxy stops after an Upgrade: the frames above are carried, not read.

    RFC 6455 §4: after the 101 the connection carries WebSocket frames; a proxy that
    routed the Upgrade request (an ALB, nginx with ``proxy_set_header Upgrade``) copies the
    bytes between its two connections and reads none of them.
    """
    detail = _tcp_line(pdu.packet) + " (the WebSocket frame above is carried, not read)"
    if decision is not None:
        why = model_why(decision, out) if pdu.direction == "request" else decision.why
        return LayerStep(4, "tcp", "stop", detail, why[:1].upper() + why[1:], MODEL)
    upgrade = pdu.tunnel.request.headers_complete_packet if pdu.tunnel is not None else None
    why = (
        f"After the 101 this connection is a tunnel (RFC 6455 §4): {device.name} routed the Upgrade "
        f"request once (packet {upgrade} on this connection) and now copies the bytes to its other "
        "connection without reading them: in effect it works at layer 4."
    )
    return LayerStep(4, "tcp", "stop", detail, why)


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
    """Which connection ``packet`` went out on: new, kept alive, or pooled from before the capture."""
    flow = index.flow_of(packet)
    if flow is None:
        return "a connection"
    if flow.syn_packet is None:
        return "a pooled connection opened before the capture started"
    if before is None:
        return f"the connection whose SYN is packet {flow.syn_packet}"
    if flow.syn_packet > before.no:
        return f"a new connection (its SYN is packet {flow.syn_packet})"
    return f"a kept-alive connection (opened at packet {flow.syn_packet})"


def _l7_out(
    device: Device, behaviour: str, pin: Pdu | None, pout: Pdu, speaks: tuple[str, str] | None = None
) -> LayerStep:
    role = device.role
    if behaviour == "proxy-l7" and pin is not None and pin.leg is not None and pout.leg is not None:
        changes = _header_changes(pin.leg, pout.leg, pout.direction)
        if pout.direction == "request" and speaks is not None:  # the ALB model's target group
            seen = request_protocol(pout.leg.request)
            why = (
                "The ALB forwards the request with X-Forwarded-For added, because the target sees the "
                f"ALB's address, not the client's; {alb_protocol_version_why(*speaks, seen)}."
            )
            return LayerStep(7, pout.protocol, "rewrote",
                             f"{pout.message}: {changes}; ProtocolVersion {speaks[1]}: {seen} to the target",
                             why, MODEL)  # fmt: skip
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
    if behaviour == "tunnel":
        same = pin is not None and pin.packet.payload == pout.packet.payload
        return LayerStep(
            7,
            pout.protocol,
            "kept",
            f"{pout.message}: {len(pout.packet.payload)} payload bytes"
            + (", byte for byte as they came in" if same else ""),
            "Carried, not read: the frame goes on as it came"
            + (", masked with the client's own key (RFC 6455 §5.3)" if pout.direction == "request" else "")
            + "; a proxy that does not read frames does not unmask or re-frame them.",
        )
    if behaviour == "forward-l4":
        return LayerStep(
            7,
            pout.protocol,
            "kept",
            f"{len(pout.packet.payload)} payload bytes forwarded unread",
            "A layer 4 balancer never reads or changes the payload: the HTTP bytes pass as they are.",
        )
    if pout.protocol == "websocket":
        why = (
            "The client's WebSocket library sends the message as a frame masked with a fresh random "
            "key, as every frame from a client must be (RFC 6455 §5.3)."
            if pout.direction == "request"
            else f"{device.name} answers with a message of its own; a server's frames are not "
            "masked (RFC 6455 §5.1)."
        )
        return LayerStep(7, pout.protocol, "created", pout.message, why)
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


def out_steps(
    index: CaptureIndex,
    network: Network,
    device: Device,
    behaviour: str,
    arrival_in: Arrival | None,
    arrival_out: Arrival,
    *,
    speaks: tuple[str, str] | None = None,
) -> tuple[LayerStep, ...]:
    """What ``device`` kept, rewrote or created on the way out, from the top down; ``speaks``
    is the ALB model's ``(target group, ProtocolVersion)`` for the request it forwarded."""
    q = arrival_out.pdu.packet
    p = arrival_in.pdu.packet if arrival_in else None
    peer = arrival_out.onward or arrival_out.device
    pin = arrival_in.pdu if arrival_in else None
    _, out_interface = network.owner(mac(q, "src"), None)
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
                TOPOLOGY,
            ),
            LayerStep(
                1,
                "phy",
                "sent",
                f"bits leave on {port or 'the port towards ' + arrival_out.device}",
                "The frame becomes a signal on the next link.",
                TOPOLOGY,
            ),
        )
    steps = []
    if q.payload:
        steps.append(_l7_out(device, behaviour, pin, arrival_out.pdu, speaks))
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
        elif behaviour == "tunnel":
            note = _connection_note(index, q, None).replace("the connection", "the Upgrade's connection")
            why = (
                f"For the WebSocket's life {device.name}'s two connections are joined: what arrives on "
                "one is written to the other, in order, on the connection the Upgrade request took."
            )
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
            TOPOLOGY if out_interface else CAPTURE,
        )
    )
    return tuple(steps)


def _ttl(packet: Packet) -> int | None:
    ip = packet.layer("ip")
    return ip.fields.get("ttl") if ip is not None else None


def event_summary(
    device: Device,
    behaviour: str,
    stopped: int,
    arrival_in: Arrival | None,
    arrival_out: Arrival | None,
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
    if behaviour == "tunnel":
        return (
            f"{read} (after the Upgrade the WebSocket frame is carried, not read) and copies it to "
            f"{target} on the Upgrade's connection."
        )
    if behaviour == "sink":
        return f"{read}: {message}. The journey ends here."
    assert arrival_out is not None
    return f"{read} and sends {arrival_out.pdu.message} to {target}."


def model_why(decision: Any, out: Pdu | None) -> str:
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

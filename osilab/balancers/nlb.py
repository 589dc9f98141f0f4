"""A sans-IO model of an AWS Network Load Balancer (layer 4).

Theory of operation
-------------------
An NLB sees IP packets. It never reads HTTP; it does not even wait for data:

1. A packet arrives. Its **listener** is found by transport protocol and destination
   port only (TCP, UDP, TLS, TCP_UDP) [NLB-UG load-balancer-listeners.md]. No listener:
   the packet is dropped ("unintended traffic").
2. The first packet of a flow (for TCP, the SYN) is **hashed**: protocol, source IP and
   port, destination IP and port [NLB-UG introduction.md]. The hash picks a target
   (:mod:`osilab.balancers.hashing`: a Maglev table over the healthy targets).
3. The choice goes into a **flow table**. Every later packet of the flow, in both
   directions, follows it: "each individual TCP connection is routed to a single target
   for the life of the connection".
4. A TCP packet that is neither a SYN nor part of a known connection is not routable;
   AWS answers it with RST. A flow idle longer than the idle timeout (TCP 350 s by
   default, ``tcp.idle_timeout.seconds`` 60-6000; UDP 120 s) is forgotten: for UDP the
   next packet is simply a new flow, for TCP the next data packet gets RST.
5. Health changes (the configuration's health schedule, :mod:`osilab.balancers.health`)
   re-hash **new** flows over the targets still healthy. A flow already on a target that
   becomes unhealthy gets a TCP RST from the NLB (after
   ``target_health_state.unhealthy.draining_interval_seconds``), unless
   ``...unhealthy.connection_termination.enabled`` is false; a deregistered (draining)
   target keeps its flows for ``deregistration_delay.timeout_seconds``, then resets them
   when ``deregistration_delay.connection_termination.enabled``. Each reset is a
   decision of its own (``action="reset"``), and the flow's later packets are "reset by
   the NLB". When every target is unhealthy the NLB "fails open" and uses them all.

The target sees the client's address only when client IP preservation is on
(``preserve_client_ip.enabled``); otherwise the NLB's own private address. With
``proxy_protocol_v2.enabled`` the target first receives a PROXY protocol v2 header
(:func:`proxy_v2_header`) carrying the client's address.

A ``QUIC`` or ``TCP_QUIC`` listener reads one thing in the payload: the QUIC Destination
Connection ID, whose QUIC-LB server ID names the target that issued it
(:mod:`osilab.balancers.quic_lb`), so a client whose address or port changes mid-connection
(QUIC connection migration) stays on its target, where a UDP listener hashes the new
5-tuple afresh.

A TLS listener *terminates* TLS (the NLB decrypts, then sends the stream on); a TCP
listener on 443 passes TLS through, and the NLB could at most see the SNI in the
ClientHello. Either way it routes on the 5-tuple only.

The core, :meth:`NetworkLoadBalancer.feed`, takes plain values (packet number, time,
addresses, ports, flags) and returns a :class:`PacketFate`. :meth:`~NetworkLoadBalancer.feed_packet`
is the thin adapter for an :class:`osilab.capture.packet.Packet`. No file, no socket,
no clock: time is the capture's.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import struct
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from osilab.balancers import explain
from osilab.balancers.config import HealthChange, Listener, TargetGroup
from osilab.balancers.config.model import NETWORK
from osilab.balancers.decision import Decision, DecisionKeeper, DeferredDecision
from osilab.balancers.hashing import (
    MaglevTable,
    flow_hash,
    flow_hash_fields,
    modulo_pick,
    nft_jhash_index,
)
from osilab.balancers.health import TargetHealth
from osilab.balancers.quic_lb import QUIC_LISTENER_PROTOCOLS, check_config, quic_route
from osilab.errors import ConfigError
from osilab.streams.keys import Endpoint, FlowKey
from osilab.streams.rows import FlowKeys

if TYPE_CHECKING:
    from osilab.capture.facts import FlowFacts

__all__ = [
    "NetworkLoadBalancer",
    "PacketFate",
    "proxy_v2_header",
    "PROXY_V2_SIGNATURE",
]

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10

#: The 12 bytes every PROXY protocol v2 header starts with (haproxy doc/proxy-protocol.txt §2.2).
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

#: How often (in packets) the flow table is swept of flows that can no longer be followed.
SWEEP_EVERY = 65536
#: Seconds a closed flow stays in the table for its last ACKs and retransmissions.
CLOSED_LINGER = 240.0

#: The facts of a packet too damaged to read (see :func:`_l4_damage`).
_NO_FACTS: Mapping[str, Any] = MappingProxyType(
    {"proto": None, "src_ip": None, "src_port": None, "dst_ip": None, "dst_port": None}
)


def proxy_v2_header(
    proto: str,
    src_ip: str,
    src_port: int,
    dst_ip: str,
    dst_port: int,
    *,
    tlvs: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """The PROXY protocol v2 header an NLB prepends to the stream towards the target.

    Layout (haproxy ``doc/proxy-protocol.txt`` §2.2)::

        12 bytes  signature  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
         1 byte   version (high nibble 2) and command (low nibble: 1 = PROXY)   -> 0x21
         1 byte   family (high: 1 = INET, 2 = INET6) and transport (low: 1 = STREAM, 2 = DGRAM)
         2 bytes  length of what follows, big-endian
        addresses: src addr, dst addr, src port, dst port (12 bytes IPv4, 36 bytes IPv6)
        TLVs:     {type (1 byte), length (2 bytes BE), value}

    ``src`` is the client, ``dst`` the address and port the client connected to.

    >>> proxy_v2_header("tcp", "198.51.100.7", 51514, "203.0.113.20", 80).hex(" ")
    '0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a 21 11 00 0c c6 33 64 07 cb 00 71 14 c9 3a 00 50'
    """
    src = ipaddress.ip_address(src_ip)
    dst = ipaddress.ip_address(dst_ip)
    if src.version != dst.version:
        raise ConfigError("PROXY v2 needs both addresses of the same family")
    family = 0x10 if src.version == 4 else 0x20
    transport = 0x02 if proto == "udp" else 0x01
    addresses = src.packed + dst.packed + struct.pack("!HH", src_port, dst_port)
    extra = b"".join(struct.pack("!BH", kind, len(value)) + value for kind, value in tlvs)
    body = addresses + extra
    return (
        PROXY_V2_SIGNATURE + bytes([0x21, family | transport]) + struct.pack("!H", len(body)) + body
    )


def _l4_damage(packet: Any) -> str | None:
    """Damage that hides what an L4 balancer needs: a cut record, a broken IP header.

    A TCP/UDP layer that is damaged only *after* its ports, flags and sequence number
    (snaplen-cut options or payload) is not damage for a balancer: the real packet was
    whole on the wire; only the capture kept less of it.
    """
    error = getattr(packet, "read_error", None)
    if error:
        return str(error)
    for layer in getattr(packet, "layers", ()):
        if layer.damaged and layer.name in ("ip", "ipv6"):
            return f"{layer.name}: {layer.damaged}"
        if layer.damaged and layer.name in ("tcp", "udp"):
            needed = ("srcport", "dstport") + (("flags", "seq") if layer.name == "tcp" else ())
            if any(key not in layer.fields for key in needed):
                return f"{layer.name}: {layer.damaged}"
    return None


@dataclass(frozen=True, slots=True)
class PacketFate:
    """What became of one packet fed to the NLB.

    ``routed`` is True when the packet belongs to a flow with a decision (``decision``);
    otherwise ``reason`` is one of :data:`osilab.balancers.explain.NOT_ROUTABLE_REASONS`.
    ``new_flow`` marks the packet where the decision was made.
    """

    no: int
    routed: bool
    reason: str | None = None
    decision: Decision | None = None
    new_flow: bool = False


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the decisions of many flows share: all of a flow decision but the flow, its
    packet and time. One per distinct choice (a listener, group, target, how it was
    picked, the health then), so a million flows on two targets share a handful."""

    listener: Listener
    group: TargetGroup
    target: str
    method: str  # with ``{}`` for the flow's number (NetworkLoadBalancer._pick)
    health_note: str
    is_syn: bool
    seen: tuple[str, ...]
    idle_timeout: float
    listener_name: str


_CLOSED, _EXPIRED, _HAS_ISN = 1, 2, 4  # a flow row's bits


class _FlowRows:
    """The NLB's flow table: a flow is a row of numbers under a packed 5-tuple key
    (:class:`~osilab.streams.rows.FlowKeys`), about 170 bytes where a state object and
    its decision took 1,000 (a SYN flood holds millions of flows). Its decision is built
    from the row when read (:meth:`NetworkLoadBalancer._decision`); only decisions that
    cannot be rebuilt (QUIC's, whose why is read at once), the ones the NLB keeps (so a
    kept decision and a packet's fate are one object) and the NLB's resets are held."""

    __slots__ = ("keys", "rows", "key_of", "last_seen", "time", "no", "isn", "shape", "number",
                 "bits", "free", "held", "resets")  # fmt: skip

    def __init__(self) -> None:
        self.keys = FlowKeys()
        self.rows: dict[int, int] = {}  # packed (proto, src, sport, dst, dport, hop) -> row
        self.key_of: list[int | None] = []
        self.last_seen, self.time = array("d"), array("d")
        self.no, self.isn, self.shape = array("I"), array("I"), array("I")
        self.number = array("I")  # the number in the shape's method (a Maglev slot...)
        self.bits = bytearray()
        self.free = array("i")
        self.held: dict[int, Decision] = {}
        self.resets: dict[int, Decision] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def key(self, proto: str, src: str, sport: int, dst: str, dport: int, interface: int) -> int:
        return self.keys.pack(proto, src, sport, dst, dport, interface, "")

    def add(self, key: int, shape: int, number: int, no: int, time: float, isn: int | None) -> int:
        """A new flow's row (the row of a flow it replaces on the same 5-tuple, reused)."""
        bits = 0 if isn is None else _HAS_ISN
        row = self.rows.get(key)
        if row is None and self.free:
            row = self.free.pop()
        if row is None:
            row = len(self.key_of)
            self.key_of.append(key)
            self.last_seen.append(time)
            self.time.append(time)
            self.no.append(no)
            self.isn.append(isn or 0)
            self.shape.append(shape)
            self.number.append(number)
            self.bits.append(bits)
        else:
            self.key_of[row] = key
            self.last_seen[row] = self.time[row] = time
            self.no[row], self.isn[row], self.shape[row], self.bits[row] = no, isn or 0, shape, bits
            self.number[row] = number
            self.held.pop(row, None)
            self.resets.pop(row, None)
        self.rows[key] = row
        return row

    def forget(self, row: int) -> None:
        del self.rows[self.key_of[row]]  # type: ignore[arg-type]
        self.key_of[row] = None
        self.held.pop(row, None)
        self.resets.pop(row, None)
        self.free.append(row)


@dataclass(slots=True)
class _GroupState:
    group: TargetGroup
    health: TargetHealth
    table: MaglevTable | None = None
    #: ``round-robin`` table: the next position (HAProxy static-rr's ``rr_idx``).
    rr_index: int = 0

    @property
    def pending(self) -> list[HealthChange]:
        """Health changes still to come (while there are some, every packet checks them)."""
        return self.health.pending


def _flow_why(flow: FlowKey, no: int, listener: Listener, group: TargetGroup, target: str,
              method: str, is_syn: bool, health_note: str) -> str:
    """:func:`explain.nlb_flow_why` from positional facts (a bound partial per flow is
    smaller without keyword arguments: it waits in the flow table until read)."""
    return explain.nlb_flow_why(flow, no, listener, group, target, method, first_is_syn=is_syn,
                                health_note=health_note)  # fmt: skip


class NetworkLoadBalancer(DecisionKeeper):
    """An AWS NLB, fed packet facts one by one.

    >>> nlb = NetworkLoadBalancer({"Type": "network",
    ...     "TargetGroups": [{"Name": "web", "Protocol": "TCP", "Port": 80,
    ...                       "Targets": ["192.0.2.11:80", "192.0.2.12:80"]}],
    ...     "Listeners": [{"Protocol": "TCP", "Port": 80,
    ...                    "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}]}]})
    >>> fate = nlb.feed(no=1, time=0.0, proto="tcp", src_ip="198.51.100.7", src_port=51514,
    ...                 dst_ip="203.0.113.20", dst_port=80, tcp_flags=0x02, tcp_seq=1000)
    >>> fate.new_flow, fate.decision.decided_at
    (True, 1)
    """

    kind = "nlb"
    lb_type = NETWORK

    def _start(self) -> None:
        # Keyed (proto, src ip, src port, dst ip, dst port, interface), packed: one hop's
        # flows are never another hop's (docs/architecture.md, "Hops").
        self._flows = _FlowRows()
        self._shapes: list[_Shape] = []
        self._shape_ids: dict[tuple, int] = {}
        #: ``seen`` of a flow decision, one tuple per (hash, proto, IPv6).
        self._seen: dict[tuple[str, str, bool], tuple[str, ...]] = {}
        self._groups = {
            g.name: _GroupState(g, TargetHealth.of(g)) for g in self.config.target_groups
        }
        self.accounting: Counter[str] = Counter()
        self._first_time: float | None = None
        self._fed = 0
        #: Resets still to come: (time, group, target, the health event's state, its time).
        self._resets: list[tuple[float, str, str, str, float]] = []
        for state in self._groups.values():
            self._rebuild(state)
        check_config(self.config)  # AWS's rules for QUIC listeners

    # ------------------------------------------------------------------ results

    @property
    def total(self) -> int:
        """Packets fed so far (= routed + every not-routable reason)."""
        return sum(self.accounting.values())

    # ------------------------------------------------------------------ health

    def _rebuild(self, state: _GroupState) -> None:
        group = state.group
        live = state.health.live  # all unhealthy: fail open
        if group.table == "maglev" and live:
            state.table = MaglevTable.build(live, group.table_size, seed=self.seed)
        else:
            state.table = None

    def _apply_health(self, time: float, no: int) -> None:
        for state in self._groups.values():
            events = state.health.advance(time, self._first_time)
            if events:
                self._rebuild(state)
            for event in events:
                if event.state == "healthy":  # back before its flows were reset: they live on
                    self._resets = [r for r in self._resets if r[1:3] != (state.group.name, event.target)]
                elif event.terminate_at is not None:
                    self._resets.append((event.terminate_at, state.group.name, event.target,
                                         event.state, event.time))  # fmt: skip
                    self._resets.sort()
        while self._resets and self._resets[0][0] <= time:
            self._reset_flows(no, *self._resets.pop(0))

    def _reset_flows(
        self, no: int, when: float, group_name: str, target: str, state: str, changed_at: float
    ) -> None:
        """RST every open flow on ``target`` (noticed at packet ``no``): one decision each."""
        health = self._groups[group_name].health
        if state == "unhealthy" and not health.healthy:
            return  # failing open: the NLB routes to every target regardless of health
        group = health.group or self._groups[group_name].group
        delay = group.deregistration_delay if state == "draining" else group.unhealthy_draining
        flows = self._flows
        for row in list(flows.rows.values()):
            decision = flows.held.get(row)
            shape = self._shapes[flows.shape[row]]
            if ((decision.target_group, decision.target) if decision is not None
                    else (shape.group.name, shape.target)) != (group_name, target):  # fmt: skip
                continue
            if flows.bits[row] & (_CLOSED | _EXPIRED) or row in flows.resets or flows.time[row] > changed_at:
                continue
            decision = self._decision(row)
            why = explain.nlb_reset_why(decision.flow, decision.decided_at, target, state,
                                        changed_at, delay=delay)  # fmt: skip
            flows.resets[row] = self._record(dataclasses.replace(
                decision, decided_at=no, time=when, seen=(), why=why, action="reset",
                proxy_v2=None,
            ))  # fmt: skip

    # ------------------------------------------------------------------ choosing

    def _pick(
        self, group: TargetGroup, value: int, fields: tuple[str, int, str, int]
    ) -> tuple[str, str, int, str]:
        """(target, method description, its number, health note) for a hash value (or the
        4-tuple). The description has ``{}`` where the number goes (a slot, a position): a
        million flows share a few descriptions, each keeps its number."""
        state = self._groups[group.name]
        live = state.health.live
        note = explain.health_state_note(group.targets, state.health.state, live)
        if group.table == "round-robin":
            # The lab's HAProxy tcp balancer (``balance static-rr``): the next position in
            # the live list, back to the first when past its end.
            if state.rr_index >= len(live):
                state.rr_index = 0
            index = state.rr_index
            state.rr_index += 1
            return live[index], f"round robin over the {len(live)} live targets: position {{}}", index + 1, note
        if group.table == "nft-jhash":
            index = nft_jhash_index(*fields, len(live), group.hash_seed)
            how = f"nftables jhash of the 4-tuple mod {len(live)}, seed {group.hash_seed:#x}: index {{}}"
            return live[index], how, index, note
        if state.table is not None:
            slot = state.table.slot(value)
            return state.table.lookup(value), f"Maglev slot {{}} of {state.table.size}", slot, note
        return modulo_pick(value, live), f"hash mod {len(live)}", 0, note

    def _choose_group(self, listener: Listener, value: int) -> TargetGroup:
        entries = [e for e in listener.default_action.target_groups if e.weight > 0]
        if len(entries) == 1:
            return self.config.group(entries[0].name)
        total = sum(e.weight for e in entries)
        point = (value >> 20) % total  # other bits than the target pick uses
        for entry in entries:
            if point < entry.weight:
                return self.config.group(entry.name)
            point -= entry.weight
        return self.config.group(entries[-1].name)  # pragma: no cover

    # ------------------------------------------------------------------ the core

    def feed(
        self,
        *,
        no: int,
        time: float,
        proto: str | None,
        src_ip: str | None,
        src_port: int | None,
        dst_ip: str | None,
        dst_port: int | None,
        tcp_flags: int = 0,
        tcp_seq: int | None = None,
        damaged: str | None = None,
        interface: int = 0,
        payload: bytes = b"",
    ) -> PacketFate:
        """Feed one packet's facts; returns what became of it.

        ``proto`` is ``"tcp"`` or ``"udp"`` (``None`` for anything else); ``src_ip`` is
        ``None`` for a non-IP frame. ``interface`` is the capture interface (hop) the
        packet was seen on: part of its flow's identity and of the decision's flow key.
        ``payload`` is the UDP payload: a QUIC listener reads its connection ID (only).
        """
        if self._first_time is None:
            self._first_time = time
        self._fed += 1
        if self._fed % SWEEP_EVERY == 0:
            self._sweep(time)
        self._apply_health(time, no)  # new flows then hash over the healthy targets only
        if damaged:
            return self._drop(no, "damaged")
        if src_ip is None or dst_ip is None:
            return self._drop(no, "non-IP")
        if proto not in ("tcp", "udp") or src_port is None or dst_port is None:
            return self._drop(no, "no listener")  # ICMP and friends: unintended traffic

        flows = self._flows
        forward_key, reverse_key = flows.keys.pair(proto, src_ip, src_port, dst_ip, dst_port,
                                                   interface, "")  # fmt: skip
        is_syn = proto == "tcp" and bool(tcp_flags & TCP_SYN) and not tcp_flags & TCP_ACK

        row = flows.rows.get(reverse_key)
        if row is not None and not is_syn:  # a reply from the target side
            return self._follow(no, time, row, proto, tcp_flags)
        row = flows.rows.get(forward_key)
        if row is not None and proto == "udp" and time - flows.last_seen[row] > self._idle(row):
            row = None  # UDP: after the idle timeout the next packet is simply a new flow
        if row is not None:
            bits = flows.bits[row]
            idle = time - flows.last_seen[row] > self._idle(row)
            isn = flows.isn[row] if bits & _HAS_ISN else None
            reused = bool(bits & _CLOSED) and tcp_seq is not None and tcp_seq != isn
            if is_syn and (bits & _EXPIRED or idle or reused):
                row = None  # a new connection on the same 4-tuple: a new flow
            else:
                return self._follow(no, time, row, proto, tcp_flags)

        listener = self.config.listener(dst_port, proto)
        if listener is None:
            if self.config.listener(src_port, proto) is not None:
                return self._drop(no, "mid-stream without a handshake")  # a reply of no known flow
            return self._drop(no, "no listener")
        if proto == "tcp" and not is_syn:
            return self._drop(no, "mid-stream without a handshake")
        return self._new_flow(
            no, time, listener, proto, src_ip, src_port, dst_ip, dst_port, tcp_seq, is_syn,
            interface, payload,
        )

    def _sweep(self, now: float) -> None:
        """Forget flows nothing can follow any more, so memory stays bounded on long captures.

        A closed flow (FIN or RST seen) quiet for :data:`CLOSED_LINGER` seconds, and any flow
        quiet for four idle timeouts, is dropped from the table; a stray packet of it
        later counts as "mid-stream without a handshake" (AWS would send RST either way).
        Decisions already made are kept.
        """
        flows = self._flows
        stale = [
            row
            for row in flows.rows.values()
            if (flows.bits[row] & _CLOSED and now - flows.last_seen[row] > CLOSED_LINGER)
            or now - flows.last_seen[row] > 4 * self._idle(row)
        ]
        for row in stale:
            flows.forget(row)

    def _drop(self, no: int, reason: str) -> PacketFate:
        self.accounting[reason] += 1
        return PacketFate(no, False, reason)

    def _idle(self, row: int) -> float:
        return self._shapes[self._flows.shape[row]].idle_timeout

    def _follow(self, no: int, time: float, row: int, proto: str, flags: int) -> PacketFate:
        flows = self._flows
        if row in flows.resets:
            return self._drop(no, "reset by the NLB")
        if time - flows.last_seen[row] > self._idle(row) or flows.bits[row] & _EXPIRED:
            # TCP: the NLB forgot the flow; AWS answers data with RST. (UDP replies after
            # the timeout land here too: the target's answer to a forgotten flow.)
            flows.bits[row] |= _EXPIRED
            return self._drop(no, "idle timeout")
        flows.last_seen[row] = time
        if flags & (TCP_FIN | TCP_RST):
            flows.bits[row] |= _CLOSED
        self.accounting["routed"] += 1
        return PacketFate(no, True, decision=self._decision(row))

    def _new_flow(
        self,
        no: int,
        time: float,
        listener: Listener,
        proto: str,
        src_ip: str,
        src_port: int,
        dst_ip: str,
        dst_port: int,
        tcp_seq: int | None,
        is_syn: bool,
        interface: int = 0,
        payload: bytes = b"",
    ) -> PacketFate:
        first_group = self.config.group(listener.default_action.target_groups[0].name)
        if not self._groups[first_group.name].health.live:
            return self._drop(no, "no registered target")
        value = flow_hash(
            first_group.hash, proto, src_ip, src_port, dst_ip, dst_port, seq=tcp_seq, seed=self.seed
        )
        group = self._choose_group(listener, value)
        if group.hash != first_group.hash:
            value = flow_hash(
                group.hash, proto, src_ip, src_port, dst_ip, dst_port, seq=tcp_seq, seed=self.seed
            )
        target, method, number, health_note = self._pick(group, value, (src_ip, src_port, dst_ip, dst_port))
        seen_key = (group.hash, proto, ":" in src_ip)
        seen = self._seen.get(seen_key)
        if seen is None:
            seen = self._seen[seen_key] = flow_hash_fields(group.hash, proto, ipv6=seen_key[2])
        idle = listener.idle_timeout if proto == "tcp" else self.config.udp_idle_timeout
        shape = self._shape(listener, group, target, method, health_note, is_syn, seen, idle)
        flows = self._flows
        row = flows.add(flows.key(proto, src_ip, src_port, dst_ip, dst_port, interface), shape, number,
                        no, time, tcp_seq if is_syn else None)  # fmt: skip
        decision = self._decision(row)
        if listener.protocol in QUIC_LISTENER_PROTOCOLS and proto == "udp":
            route = quic_route(payload, group.quic_server_ids, self._groups[group.name].health.live)
            why = explain.nlb_quic_why(decision.flow, no, listener, group, route, decision.why)
            decision = flows.held[row] = dataclasses.replace(
                decision, why=why, target=route.target or target,
                seen=("quic.dcid",) if route.target else seen,
            )  # fmt: skip
        self._record(decision)
        if self._decisions and self._decisions[-1] is decision:
            flows.held[row] = decision  # kept: a packet's fate gives this very object
        self.accounting["routed"] += 1
        return PacketFate(no, True, decision=decision, new_flow=True)

    def _shape(self, listener: Listener, group: TargetGroup, target: str, method: str,
               health_note: str, is_syn: bool, seen: tuple[str, ...], idle: float) -> int:  # fmt: skip
        """The number of the :class:`_Shape` of a decision (a new one the first time)."""
        found = (id(listener), group.name, target, method, health_note, is_syn, seen, idle)
        number = self._shape_ids.get(found)
        if number is None:
            number = self._shape_ids[found] = len(self._shapes)
            name = f"{listener.protocol}:{listener.port}"
            self._shapes.append(_Shape(listener, group, target, method, health_note, is_syn, seen, idle, name))
        return number

    def _decision(self, row: int) -> Decision:
        """The decision of a flow's row: the one held, else built from the row (equal to the
        one made at its first packet: the same pure function of the same facts)."""
        flows = self._flows
        held = flows.held.get(row)
        if held is not None:
            return held
        shape = self._shapes[flows.shape[row]]
        proto, src_ip, src_port, dst_ip, dst_port, interface, _ = flows.keys.unpack(flows.key_of[row])  # type: ignore[arg-type]
        flow = FlowKey(proto, Endpoint(src_ip, src_port), Endpoint(dst_ip, dst_port), interface)
        no, group = flows.no[row], shape.group
        # The why is built when read (streamed once, never kept: a SYN flood's millions of
        # flows each have their decision); the fields read are one shared tuple per kind.
        why_of: Any = functools.partial(_flow_why, flow, no, shape.listener, group, shape.target,
                                        shape.method.format(flows.number[row]), shape.is_syn,
                                        shape.health_note)  # fmt: skip
        proxy = None
        if group.proxy_protocol_v2:  # what the target reads first: the client's address
            proxy = proxy_v2_header(proto, src_ip, src_port, dst_ip, dst_port)
        return DeferredDecision(
            why_of=why_of,
            keep_built=False,
            unit="flow",
            flow=flow,
            request=None,
            decided_at=no,
            time=flows.time[row],
            target_group=group.name,
            target=shape.target,
            seen=shape.seen,
            why=None,
            proxy_v2=proxy,
            client_ip_at_target=src_ip if group.preserve_client_ip else "the NLB's private IP",
            first_packet=no,
            listener=shape.listener_name,
        )

    def feed_flows(self, facts: Iterable[FlowFacts]) -> int:
        """Feed many packets' flow facts at once; returns how many were fed.

        ``facts`` are :func:`osilab.capture.facts.flow_facts` items. The decisions and
        the accounting are exactly those of calling :meth:`feed` once per packet (the
        tests check this on every bundled and third-party capture), only faster, for a
        replay that wants decisions and counts and not each packet's :class:`PacketFate`.

        Why it is faster: most packets belong to a flow the table already knows. For
        them an NLB does one thing, a flow-table lookup, and so does this loop: no
        keyword arguments, no health check, no ``PacketFate``. Every other packet (a SYN,
        an unknown or idle flow, damage, a pending health change, the periodic sweep) goes
        through :meth:`feed`, so the rules live in one place.
        """
        table = self._flows
        flows, last_seen, bits = table.rows, table.last_seen, table.bits
        pairs, pair = table.keys.pairs, table.keys.pair
        resets, shape_of, shapes = table.resets, table.shape, self._shapes  # read, never rebound
        feed = self.feed
        groups = self._groups.values()
        pending = any(state.pending for state in groups) or bool(self._resets)
        routed = 0
        count = 0
        for (no, time, hop, proto, src, sport, dst, dport, flags, seq, _ack, _at, _size, _cut,
             _wire, damaged, _data, _tunnel) in facts:  # the FlowFacts fields, in order  # fmt: skip
            count += 1
            row = None
            if (
                not pending
                and damaged is None
                and sport is not None
                and self._first_time is not None
                and (self._fed + 1) % SWEEP_EVERY
                and not (proto == "tcp" and (flags or 0) & TCP_SYN and not (flags or 0) & TCP_ACK)
            ):
                # A reply from the target side first, as feed() looks (a SYN never gets here).
                ident = (proto, src, sport, dst, dport, hop, "")
                there, back = pairs.get(ident) or pair(*ident)  # type: ignore[arg-type]
                row = flows.get(back)
                if row is None:
                    row = flows.get(there)
                if row is not None and (
                    bits[row] & _EXPIRED or row in resets
                    or time - last_seen[row] > shapes[shape_of[row]].idle_timeout  # _idle(row)
                ):
                    row = None  # an idle timeout: feed() says what happens
            if row is None:
                feed(no=no, time=time, proto=proto, src_ip=src, src_port=sport, dst_ip=dst,
                     dst_port=dport, tcp_flags=flags or 0, tcp_seq=seq, damaged=damaged,
                     interface=hop, payload=_data[_at : _at + _size] if proto == "udp" else b"")  # fmt: skip
                if pending:
                    pending = any(s.pending for s in groups) or bool(self._resets)
                continue
            self._fed += 1  # what feed() -> _follow() does for a routed packet:
            last_seen[row] = time
            if flags and flags & (TCP_FIN | TCP_RST):
                bits[row] |= _CLOSED
            routed += 1
        if routed:
            self.accounting["routed"] += routed
        return count

    def feed_packet(self, packet: Any) -> PacketFate:
        """Adapter: feed an :class:`osilab.capture.packet.Packet` (see docs/internal-api.md)."""
        damage = _l4_damage(packet)
        facts: Mapping[str, Any] = _NO_FACTS  # a damaged packet: the NLB can read nothing
        if damage is None:
            try:
                facts = {
                    "proto": packet.proto,
                    "src_ip": packet.ip_src,
                    "src_port": packet.src_port,
                    "dst_ip": packet.ip_dst,
                    "dst_port": packet.dst_port,
                    "tcp_flags": packet.tcp_flags or 0,
                    "tcp_seq": packet.tcp_seq,
                }
            except (KeyError, IndexError, TypeError, ValueError) as exc:  # a header too broken
                damage = f"unreadable header field {exc}"
        interface = getattr(packet, "interface", 0) or 0
        payload = b""  # a QUIC listener reads the connection ID in a UDP payload
        if damage is None and facts["proto"] == "udp" and hasattr(packet, "facts"):
            payload = packet.facts.payload
        return self.feed(no=packet.no, time=packet.time, damaged=damage, interface=interface,
                         payload=payload, **facts)  # fmt: skip

    def flow_decision(self, flow: FlowKey) -> Decision | None:
        """The decision for a flow (client -> server), if the NLB made one."""
        flows = self._flows
        row = flows.rows.get(flows.key(flow.proto, flow.client.ip, flow.client.port, flow.server.ip,
                                       flow.server.port, flow.interface))  # fmt: skip
        return None if row is None else self._decision(row)

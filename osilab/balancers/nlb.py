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


@dataclass(slots=True)
class _FlowState:
    decision: Decision
    last_seen: float
    idle_timeout: float
    closed: bool = False
    expired: bool = False
    isn: int | None = None
    packets: int = 0
    #: Set when the NLB reset the flow (its target left): the reset decision.
    reset: Decision | None = None


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
        # Keyed (proto, src ip, src port, dst ip, dst port, interface): one hop's flows
        # are never another hop's (docs/architecture.md, "Hops").
        self._flows: dict[tuple[str, str, int, str, int, int], _FlowState] = {}
        #: ``seen`` of a flow decision, one tuple per (hash, proto, IPv6).
        self._seen: dict[tuple[str, str, bool], tuple[str, ...]] = {}
        #: ``"PROTOCOL:port"`` of each listener, one string shared by its flows.
        self._names: dict[int, str] = {}
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
        for flow_state in self._flows.values():
            decision = flow_state.decision
            if (decision.target_group != group_name or decision.target != target
                    or flow_state.closed or flow_state.expired or flow_state.reset is not None
                    or decision.time > changed_at):  # fmt: skip
                continue
            why = explain.nlb_reset_why(decision.flow, decision.decided_at, target, state,
                                        changed_at, delay=delay)  # fmt: skip
            flow_state.reset = self._record(dataclasses.replace(
                decision, decided_at=no, time=when, seen=(), why=why, action="reset",
                proxy_v2=None,
            ))  # fmt: skip

    # ------------------------------------------------------------------ choosing

    def _pick(
        self, group: TargetGroup, value: int, fields: tuple[str, int, str, int]
    ) -> tuple[str, str, str]:
        """(target, method description, health note) for a hash value (or the 4-tuple)."""
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
            return live[index], f"round robin over the {len(live)} live targets: position {index + 1}", note
        if group.table == "nft-jhash":
            index = nft_jhash_index(*fields, len(live), group.hash_seed)
            how = f"nftables jhash of the 4-tuple mod {len(live)}, seed {group.hash_seed:#x}: index {index}"
            return live[index], how, note
        if state.table is not None:
            slot = state.table.slot(value)
            return state.table.lookup(value), f"Maglev slot {slot} of {state.table.size}", note
        return modulo_pick(value, live), f"hash mod {len(live)}", note

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

        forward_key = (proto, src_ip, src_port, dst_ip, dst_port, interface)
        reverse_key = (proto, dst_ip, dst_port, src_ip, src_port, interface)
        is_syn = proto == "tcp" and bool(tcp_flags & TCP_SYN) and not tcp_flags & TCP_ACK

        state = self._flows.get(reverse_key)
        if state is not None and not is_syn:  # a reply from the target side
            return self._follow(no, time, state, proto, tcp_flags)
        state = self._flows.get(forward_key)
        if state is not None and proto == "udp" and time - state.last_seen > state.idle_timeout:
            state = None  # UDP: after the idle timeout the next packet is simply a new flow
        if state is not None:
            idle = time - state.last_seen > state.idle_timeout
            reused = state.closed and tcp_seq is not None and tcp_seq != state.isn
            if is_syn and (state.expired or idle or reused):
                state = None  # a new connection on the same 4-tuple: a new flow
            else:
                return self._follow(no, time, state, proto, tcp_flags)

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
        stale = [
            key
            for key, state in self._flows.items()
            if (state.closed and now - state.last_seen > CLOSED_LINGER)
            or now - state.last_seen > 4 * state.idle_timeout
        ]
        for key in stale:
            del self._flows[key]

    def _drop(self, no: int, reason: str) -> PacketFate:
        self.accounting[reason] += 1
        return PacketFate(no, False, reason)

    def _follow(
        self, no: int, time: float, state: _FlowState, proto: str, flags: int
    ) -> PacketFate:
        if state.reset is not None:
            return self._drop(no, "reset by the NLB")
        if time - state.last_seen > state.idle_timeout or state.expired:
            # TCP: the NLB forgot the flow; AWS answers data with RST. (UDP replies after
            # the timeout land here too: the target's answer to a forgotten flow.)
            state.expired = True
            return self._drop(no, "idle timeout")
        state.last_seen = time
        state.packets += 1
        if flags & (TCP_FIN | TCP_RST):
            state.closed = True
        self.accounting["routed"] += 1
        return PacketFate(no, True, decision=state.decision)

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
        target, method, health_note = self._pick(group, value, (src_ip, src_port, dst_ip, dst_port))
        flow = FlowKey(proto, Endpoint(src_ip, src_port), Endpoint(dst_ip, dst_port), interface)
        # The why is built when read (streamed once, never kept: a SYN flood's millions of
        # flows each hold their decision); the fields read are one shared tuple per kind.
        why_of: Any = functools.partial(_flow_why, flow, no, listener, group, target, method,
                                        is_syn, health_note)  # fmt: skip
        why = None
        seen_key = (group.hash, proto, ":" in src_ip)
        seen = self._seen.get(seen_key)
        if seen is None:
            seen = self._seen[seen_key] = flow_hash_fields(group.hash, proto, ipv6=seen_key[2])
        if listener.protocol in QUIC_LISTENER_PROTOCOLS and proto == "udp":
            route = quic_route(payload, group.quic_server_ids, self._groups[group.name].health.live)
            why, why_of = explain.nlb_quic_why(flow, no, listener, group, route, why_of()), None
            target, seen = route.target or target, ("quic.dcid",) if route.target else seen
        proxy = None
        if group.proxy_protocol_v2:  # what the target reads first: the client's address
            proxy = proxy_v2_header(proto, src_ip, src_port, dst_ip, dst_port)
        decision = DeferredDecision(
            why_of=why_of,
            keep_built=False,
            unit="flow",
            flow=flow,
            request=None,
            decided_at=no,
            time=time,
            target_group=group.name,
            target=target,
            seen=seen,
            why=why,
            proxy_v2=proxy,
            client_ip_at_target=src_ip if group.preserve_client_ip else "the NLB's private IP",
            first_packet=no,
            listener=self._listener_name(listener),
        )
        idle = listener.idle_timeout if proto == "tcp" else self.config.udp_idle_timeout
        self._flows[(proto, src_ip, src_port, dst_ip, dst_port, interface)] = _FlowState(
            decision, time, idle, isn=tcp_seq if is_syn else None, packets=1
        )
        self._record(decision)
        self.accounting["routed"] += 1
        return PacketFate(no, True, decision=decision, new_flow=True)

    def _listener_name(self, listener: Listener) -> str:
        name = self._names.get(id(listener))
        if name is None:
            name = self._names[id(listener)] = f"{listener.protocol}:{listener.port}"
        return name

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
        flows: dict[Any, _FlowState] = self._flows  # keys: (proto, ip, port, ip, port, hop)
        feed = self.feed
        groups = self._groups.values()
        pending = any(state.pending for state in groups) or bool(self._resets)
        routed = 0
        count = 0
        for (no, time, hop, proto, src, sport, dst, dport, flags, seq, _ack, _at, _size, _cut,
             _wire, damaged, _data, _tunnel) in facts:  # the FlowFacts fields, in order  # fmt: skip
            count += 1
            state = None
            if (
                not pending
                and damaged is None
                and sport is not None
                and self._first_time is not None
                and (self._fed + 1) % SWEEP_EVERY
                and not (proto == "tcp" and (flags or 0) & TCP_SYN and not (flags or 0) & TCP_ACK)
            ):
                # A reply from the target side first, as feed() looks (a SYN never gets here).
                state = flows.get((proto, dst, dport, src, sport, hop)) or flows.get(
                    (proto, src, sport, dst, dport, hop)
                )
                if state is not None and (
                    state.expired or state.reset is not None
                    or time - state.last_seen > state.idle_timeout
                ):
                    state = None  # an idle timeout: feed() says what happens
            if state is None:
                feed(no=no, time=time, proto=proto, src_ip=src, src_port=sport, dst_ip=dst,
                     dst_port=dport, tcp_flags=flags or 0, tcp_seq=seq, damaged=damaged,
                     interface=hop, payload=_data[_at : _at + _size] if proto == "udp" else b"")  # fmt: skip
                if pending:
                    pending = any(s.pending for s in groups) or bool(self._resets)
                continue
            self._fed += 1  # what feed() -> _follow() does for a routed packet:
            state.last_seen = time
            state.packets += 1
            if flags and flags & (TCP_FIN | TCP_RST):
                state.closed = True
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
        state = self._flows.get(
            (flow.proto, flow.client.ip, flow.client.port, flow.server.ip, flow.server.port,
             flow.interface)  # fmt: skip
        )
        return state.decision if state else None

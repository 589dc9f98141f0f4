"""The flow table: which packets belong together, who is the client, and when a flow ends.

A *flow* is every TCP (or UDP) packet that shares one protocol and one pair of endpoints,
in both directions (the bidirectional 5-tuple), on one capture interface: a capture taken
on seven links at once (a *hop* each) holds seven sets of flows, never one merged set,
even where one connection crosses several links with the same addresses. A tunnel is part
of the hop too: the same inner connection mirrored in two VXLAN VNIs (or two GRE tunnels)
is two flows (:attr:`FlowKey.tunnel`). The
:class:`FlowTable` is fed packets in capture order; for each one it finds (or starts) its flow, says which way the packet
travels, counts packets and bytes per direction, and follows the TCP state
(:mod:`osilab.streams.tcp`).

Who is the client?
------------------
* The sender of a SYN without ACK is the client; the sender of a SYN+ACK is the server.
* When the capture started after the handshake, ports decide first (:func:`orient`): a
  well-known port (below 1024) or a registered service port (:data:`SERVICE_PORTS`) is the
  server's; otherwise the lower port is. Such flows are marked ``midstream``.
* What a midstream flow carries outranks its ports: a request line is sent by a client, a
  status line by a server. This module cannot read payloads, so the pipeline says so once
  it has sniffed the first one (:meth:`FlowTable.make_client`: "this endpoint is the
  client"); the flow is then turned round and marked ``reoriented``.

Bounded memory
--------------
A capture can hold millions of flows. A flow leaves the table, and is handed back to the
caller as a frozen :class:`FlowRecord`, when it is over:

* a TCP flow that closed (both FINs) or was reset, once :data:`CLOSED_LINGER` seconds of
  capture time have passed with nothing more (so the last ACKs still find it);
* any flow idle for :data:`IDLE_TIMEOUT` (TCP) or :data:`UDP_IDLE_TIMEOUT` (UDP) seconds of
  capture time (350 s is the AWS NLB's TCP idle timeout; 120 s its UDP one);
* a closed TCP flow whose ports are reused by a new SYN (a new connection, a new flow);
* everything left when :meth:`FlowTable.finish` is called at the end of the capture.

Expiry is no way out of a SYN flood (a million half-open flows in ten seconds, inside
every timeout), so a flow is also *small*: until it needs an object it is a row of numbers
(:mod:`osilab.streams.rows`: a packed ``int`` key, one slot in each ``array`` column, its
TCP state as one byte), about 220 bytes; the order of last activity is a log of rows. A
flow is promoted to a :class:`Flow` object when the streams stage gives it state (its
first payload), when a TCP anomaly is to be recorded, or when :meth:`FlowTable.packet`
hands it out (``tests/test_memory.py`` bounds it; ``bench/synflood.py`` measures it at a
million flows).

What this module must not know: payload contents, application protocols or files. It
reads a packet's addresses, ports and TCP flags.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from osilab.streams import rows as _r
from osilab.streams.frozen import quick_init
from osilab.streams.keys import Direction, Endpoint, FlowKey
from osilab.streams.rows import FlowKeys, FlowRow, _key_of, _Rows
from osilab.streams.tcp import TRANSITIONS, TcpInput, TcpState, TcpTracker

__all__ = [
    "Flow",
    "FlowRecord",
    "FlowTable",
    "FlowRow",
    "orient",
    "flow_records",
    "IDLE_TIMEOUT",
    "UDP_IDLE_TIMEOUT",
    "CLOSED_LINGER",
    "SERVICE_PORTS",
]

#: Seconds of capture time an open TCP flow may stay silent (AWS NLB TCP idle timeout).
IDLE_TIMEOUT = 350.0
#: Seconds of capture time a UDP flow may stay silent (AWS NLB UDP idle timeout).
UDP_IDLE_TIMEOUT = 120.0
#: Seconds a closed or reset TCP flow is kept for its last ACKs and retransmitted FINs.
CLOSED_LINGER = 30.0

#: Registered (above 1023) ports on which osilab expects a server, for flows whose start
#: was not captured. IANA "Service Name and Transport Protocol Port Number Registry".
SERVICE_PORTS: MappingProxyType[int, str] = MappingProxyType(
    {
        1080: "socks",
        1433: "mssql",
        1521: "oracle",
        2049: "nfs",
        3000: "http-alt",
        3128: "http-proxy",
        3306: "mysql",
        5000: "http-alt",
        5432: "postgresql",
        5672: "amqp",
        6379: "redis",
        8000: "http-alt",
        8080: "http-alt",
        8443: "https-alt",
        9092: "kafka",
        9200: "elasticsearch",
        11211: "memcached",
        27017: "mongodb",
        50051: "grpc",
    }
)

_SYN, _ACK = 0x02, 0x10
#: States an ACK (a segment without SYN, FIN or RST) leaves as they are (no anomaly either).
_ACK_STAYS = frozenset(state for state in TcpState if TRANSITIONS.get((state, TcpInput.ACK)) is state)
_SWAPPED_CLOSE = {
    TcpState.CLIENT_CLOSED: TcpState.SERVER_CLOSED,
    TcpState.SERVER_CLOSED: TcpState.CLIENT_CLOSED,
}


def _is_service(port: int) -> bool:
    return port < 1024 or port in SERVICE_PORTS


def orient(src_port: int, dst_port: int, flags: int | None = None) -> bool:
    """Whether the packet's *sender* is the client.

    From the TCP flags when the packet is a SYN (client) or SYN+ACK (server); otherwise
    from the ports: the service port (well-known or :data:`SERVICE_PORTS`) is the server's,
    and between two ordinary ports the lower one is.

    >>> orient(51514, 80), orient(80, 51514), orient(29518, 60000), orient(80, 51514, 0x02)
    (True, False, False, True)
    """
    if flags is not None and flags & _SYN:
        return not flags & _ACK
    src_service, dst_service = _is_service(src_port), _is_service(dst_port)
    if src_service != dst_service:
        return dst_service
    return src_port >= dst_port if src_port != dst_port else True


class Flow:
    """One live flow in the table (mutable; the table hands out :class:`FlowRecord` s).

    Attributes:
        key: the flow, oriented client -> server (built from ``ident`` when first read).
        ident: ``(proto, client ip, client port, server ip, server port, interface,
            tunnel)``, the flow table's key.
        index: 0-based order in which flows were first seen (as Wireshark's tcp.stream).
        row: its row in the :class:`FlowTable` while live, -1 once it has left it.
        tcp: the connection state tracker (TCP flows only).
        packets_to_server, packets_to_client, bytes_to_server, bytes_to_client: per
            direction; bytes are frame bytes on the wire.
        payload_to_server, payload_to_client: transport payload bytes per direction.
        first, last: first and last packet numbers; first_time, last_time their times.
        midstream: the capture started after the connection did (no SYN seen).
        application: the application protocol the streams stage recognised, if any.
        state: free slot for the streams stage's per-flow state (reassembly, parser).
    """

    __slots__ = ("ident", "_key", "index", "tcp", "packets_to_server", "packets_to_client",
                 "bytes_to_server", "bytes_to_client", "payload_to_server", "payload_to_client",
                 "first", "last", "first_time", "last_time", "midstream", "application", "state",
                 "end_reason", "reoriented", "row")  # fmt: skip

    def __init__(
        self, ident: tuple, index: int, packet_no: int, time: float, row: int = -1
    ) -> None:
        self.ident = ident
        self.row = row  # its row in the table while it is live (-1 once it has left)
        self._key: FlowKey | None = None
        self.index = index
        self.tcp: TcpTracker | None = TcpTracker() if ident[0] == "tcp" else None
        self.packets_to_server = self.packets_to_client = 0
        self.bytes_to_server = self.bytes_to_client = 0
        self.payload_to_server = self.payload_to_client = 0
        self.first = self.last = packet_no
        self.first_time = self.last_time = time
        self.midstream = False
        self.application: str | None = None
        self.state: Any = None
        self.end_reason = ""
        self.reoriented = False  # client and server taken from the payload, not the ports

    @property
    def key(self) -> FlowKey:
        """The flow, oriented client -> server (built once, when first read)."""
        key = self._key
        if key is None:
            proto, client_ip, client_port, server_ip, server_port, interface, tunnel = self.ident
            key = self._key = FlowKey(
                proto, Endpoint(client_ip, client_port), Endpoint(server_ip, server_port),
                interface, tunnel,
            )  # fmt: skip
        return key

    @property
    def packets(self) -> tuple[int, int]:
        """Packets ``(to_server, to_client)``."""
        return self.packets_to_server, self.packets_to_client

    @property
    def bytes(self) -> tuple[int, int]:
        """Frame bytes on the wire ``(to_server, to_client)``."""
        return self.bytes_to_server, self.bytes_to_client

    @property
    def payload_bytes(self) -> tuple[int, int]:
        """Transport payload bytes ``(to_server, to_client)``."""
        return self.payload_to_server, self.payload_to_client

    @property
    def over(self) -> bool:
        tcp = self.tcp
        return tcp is not None and tcp.over

    def state_name(self) -> str:
        if self.tcp is not None:
            return self.tcp.state.value
        return "idle" if self.end_reason == "idle" else "open"

    def _anomalies(self) -> tuple[str, ...]:
        if self.tcp is None:
            return ()
        found = tuple(str(a) for a in self.tcp.anomalies)
        if self.tcp.anomalies_dropped:
            found += (f"... and {self.tcp.anomalies_dropped} more (only the first "
                      f"{len(self.tcp.anomalies)} are kept)",)  # fmt: skip
        return found

    def record(self) -> FlowRecord:
        return FlowRecord(
            key=self.key,
            index=self.index,
            interface=self.ident[5],
            packets_to_server=self.packets_to_server,
            packets_to_client=self.packets_to_client,
            bytes_to_server=self.bytes_to_server,
            bytes_to_client=self.bytes_to_client,
            payload_to_server=self.payload_to_server,
            payload_to_client=self.payload_to_client,
            first=self.first,
            last=self.last,
            first_time=self.first_time,
            last_time=self.last_time,
            state=self.state_name(),
            midstream=self.midstream,
            application=self.application,
            end_reason=self.end_reason,
            anomalies=self._anomalies(),
            reoriented=self.reoriented,
        )


@quick_init  # one is made for every flow: a million in a SYN flood
@dataclass(frozen=True, slots=True)
class FlowRecord:
    """A flow as reported once it has left the table (what ``osilab flows`` prints).

    ``interface`` is the capture interface (hop) it was seen on, as in its ``key``.
    """

    key: FlowKey
    index: int
    interface: int
    packets_to_server: int
    packets_to_client: int
    bytes_to_server: int
    bytes_to_client: int
    payload_to_server: int
    payload_to_client: int
    first: int
    last: int
    first_time: float
    last_time: float
    state: str
    midstream: bool = False
    application: str | None = None
    end_reason: str = ""
    anomalies: tuple[str, ...] = field(default=())
    #: A midstream flow whose client and server were taken from its payload (a request
    #: line, a status line) rather than from its ports.
    reoriented: bool = False

    @property
    def packets(self) -> int:
        return self.packets_to_server + self.packets_to_client

    @property
    def bytes(self) -> int:
        return self.bytes_to_server + self.bytes_to_client

    @property
    def duration(self) -> float:
        return self.last_time - self.first_time

    def to_json(self) -> dict[str, Any]:
        """The ``osilab flows --json`` object (design.md keys first, then extras)."""
        return {
            "proto": self.key.proto,
            "client": str(self.key.client),
            "server": str(self.key.server),
            "packets": self.packets,
            "bytes": self.bytes,
            "first": self.first,
            "last": self.last,
            "state": self.state,
            "index": self.index,
            "packets_to_server": self.packets_to_server,
            "packets_to_client": self.packets_to_client,
            "bytes_to_server": self.bytes_to_server,
            "bytes_to_client": self.bytes_to_client,
            "payload_to_server": self.payload_to_server,
            "payload_to_client": self.payload_to_client,
            "first_time": self.first_time,
            "last_time": self.last_time,
            "midstream": self.midstream,
            "application": self.application,
            "end_reason": self.end_reason,
            "anomalies": list(self.anomalies),
            "interface": self.interface,
            "reoriented": self.reoriented,
        }

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in self.to_json().items()
        )
        return f"<p>{html.escape(self.summary())}</p><table>{rows}</table>"

    def summary(self) -> str:
        return (
            f"{self.key.proto} {self.key}  {self.packets} packets, {self.bytes} bytes, "
            f"#{self.first}-#{self.last}, {self.state}"
        )


class _Timeout:
    """A timeout of the table, in seconds: setting one makes the table look at expiry again
    at its next packet (the time it had worked out, ``_calm_until``, came from the old one)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, table: Any, owner: type | None = None) -> Any:
        return self if table is None else getattr(table, self.slot)

    def __set__(self, table: Any, value: float) -> None:
        setattr(table, self.slot, value)
        table._calm_until = float("-inf")


class FlowTable:
    """The live flows of a capture, fed one packet at a time (sans-IO).

    :meth:`packet` returns the packet's flow and direction, plus the flows that ended
    because of it (closed, idle, or reused); :meth:`finish` ends the rest.

    A flow is a row under a packed key until it needs an object (:meth:`promote`); the
    order of last activity is a log of rows, compacted at twice the live flows.
    """

    idle_timeout, udp_idle_timeout, closed_linger = _Timeout(), _Timeout(), _Timeout()

    def __init__(self, *, idle_timeout: float = IDLE_TIMEOUT, udp_idle_timeout: float = UDP_IDLE_TIMEOUT,
                 closed_linger: float = CLOSED_LINGER) -> None:  # fmt: skip
        self._calm_until = float("-inf")
        self.idle_timeout = idle_timeout
        self.udp_idle_timeout = udp_idle_timeout
        self.closed_linger = closed_linger
        self.keys = FlowKeys()
        self._live: dict[int, int] = {}  # packed key (client -> server) -> row
        self._rows = _Rows()
        self._objects: dict[int, Flow] = {}  # row -> its promoted flow
        self._log = array("i")  # rows by last activity, oldest first (stale entries skipped)
        self._head = 0  # the log's first entry not yet known stale
        #: (row, index) of flows that reached a final state, in order; the last time of
        #: those that left the table another way, by index (they still hold their place).
        self._closed: deque[tuple[int, int]] = deque()
        self._gone: dict[int, float] = {}
        self._transitions: dict[tuple[int, int, bool, bool], int] = {}
        self._count = 0
        self._now = float("-inf")
        #: ``_calm_until``: nothing can expire before this time (:meth:`_expire`) while packet
        #: times never go back (the log is then in order of last time); -inf: look every packet.
        self._ordered = True

    def __len__(self) -> int:
        return len(self._live)

    def packet(self, proto: str, src: str, sport: int, dst: str, dport: int, flags: int | None,
               packet_no: int, time: float, wire_length: int, payload_length: int,
               interface: int = 0, reset_acceptable: bool = True, tunnel: str = "",
               ) -> tuple[Flow, Direction, list[Flow]]:  # fmt: skip
        """Account one packet. Returns (its flow, its direction, flows that just ended).

        ``interface`` is the capture interface the packet was seen on, ``tunnel`` the
        tunnels it came through (:attr:`FlowKey.tunnel`): the same addresses on another
        interface, or in another tunnel, are another flow. ``reset_acceptable=False`` says a RST's
        sequence number is not acceptable (RFC 9293 §3.10.7.3; the streams stage's
        reassembly knows the sequence space, :meth:`StreamReassembler.reset_acceptable`):
        it then ends nothing. The flow handed out is promoted (see the class); :meth:`feed`
        is the same without it.
        """
        row, flow, from_client, ended = self.feed(
            proto, src, sport, dst, dport, flags, packet_no, time, wire_length, payload_length,
            interface, reset_acceptable, tunnel,
        )  # fmt: skip
        return (
            (flow or self.promote(row)),
            (Direction.TO_SERVER if from_client else Direction.TO_CLIENT),
            ended,
        )

    def feed(self, proto: str, src: str, sport: int, dst: str, dport: int, flags: int | None,
             packet_no: int, time: float, wire_length: int, payload_length: int,
             interface: int = 0, reset_acceptable: bool = True, tunnel: str = "",
             ) -> tuple[int, Flow | None, bool, list[Flow]]:  # fmt: skip
        """:meth:`packet` without promoting: ``(row, its Flow or None while it is a row,
        whether the sender is the client, flows that just ended)``."""  # fmt: skip
        ended: list[Flow] = []
        if time > self._now:
            self._now = time
            if time > self._calm_until:
                self._expire(ended)
        elif time < self._now and self._ordered:
            self._calm_until = float("-inf")  # a packet from the past: never calm again
            self._ordered = False
        live, rows = self._live, self._rows
        # The pair cache read here (a hit is nearly every packet), :meth:`FlowKeys.pair` on a miss
        found = self.keys.pairs.get((proto, src, sport, dst, dport, interface, tunnel))
        if found is None:
            found = self.keys.pair(proto, src, sport, dst, dport, interface, tunnel)
        forward, reverse = found
        row = live.get(forward)
        from_client = True
        if row is None:
            row = live.get(reverse)
            from_client = False
        flow = None
        if row is not None:
            flow = self._objects.get(row)
            if flags is not None and flags & _SYN and not flags & _ACK and (
                flow.over if flow is not None else rows.bits[row] & 0x0F in _r._FINAL_CODES
            ):
                # A new SYN on a finished connection's ports: a new connection.
                ended.append(self._take(row, "ports reused"))
                row = flow = None
            else:
                self._touch(row)
        if row is None:
            from_client = orient(sport, dport, flags if proto == "tcp" else None)
            key = forward if from_client else reverse
            bits = _r._UDP
            if proto == "tcp":
                bits = 0 if (flags or 0) & _SYN else _r._MIDSTREAM
            row = live[key] = rows.new(key, self._count, packet_no, time, bits)
            self._count += 1
            self._touch(row)
        if flow is not None:  # counted here, as in the row's columns below
            if from_client:
                flow.packets_to_server += 1
                flow.bytes_to_server += wire_length
                flow.payload_to_server += payload_length
            else:
                flow.packets_to_client += 1
                flow.bytes_to_client += wire_length
                flow.payload_to_client += payload_length
            flow.last = packet_no
            flow.last_time = time
            tcp = flow.tcp
            # A segment without SYN, FIN or RST where an ACK changes nothing (data on an
            # established connection: nearly every packet) is not fed to the tracker.
            if tcp is not None and flags is not None and (flags & 0x07 or tcp.state not in _ACK_STAYS):
                was_over = tcp.over
                tcp.feed(flags, from_client, packet_no, reset_acceptable)
                if tcp.over and not was_over:
                    self._closed.append((row, flow.index))
            return row, flow, from_client, ended
        if from_client:
            rows.packets_to_server[row] += 1
            rows.bytes_to_server[row] += wire_length
            rows.payload_to_server[row] += payload_length
        else:
            rows.packets_to_client[row] += 1
            rows.bytes_to_client[row] += wire_length
            rows.payload_to_client[row] += payload_length
        rows.last[row] = packet_no
        rows.last_time[row] = time
        bits = rows.bits[row]
        if bits & 0x0F != _r._UDP and flags is not None:
            code = bits & 0x0F
            step = (code, flags & 0x17, from_client, reset_acceptable)
            following = self._transitions.get(step)
            if following is None:
                following = self._transitions[step] = _r._next_code(*step)
            if following < 0:  # an anomaly or an ignored RST: the full tracker records it
                flow = self.promote(row)
                flow.tcp.feed(flags, from_client, packet_no, reset_acceptable)  # type: ignore[union-attr]
                return row, flow, from_client, ended
            if flags & 0x16 == _SYN:  # the client's SYN (tcp_input's TcpInput.SYN)
                bits |= _r._HANDSHAKE
            rows.bits[row] = bits & 0xF0 | following
            if following in _r._FINAL_CODES and code not in _r._FINAL_CODES:
                self._closed.append((row, rows.index[row]))
        return row, None, from_client, ended

    def account(self, pkt: Any) -> tuple[_Facts, Flow, Direction, list[Flow]] | None:
        """Account one dissected packet: its :func:`transport_facts` and what :meth:`packet` returns
        (``None``, nothing accounted, without a TCP or UDP header)."""
        facts = transport_facts(pkt)
        if facts is None:
            return None
        proto, src, sport, dst, dport, flags, payload_length, _, _ = facts
        flow, direction, ended = self.packet(
            proto, src, sport, dst, dport, flags, pkt.no, pkt.time, pkt.wire_length,
            payload_length, pkt.interface, tunnel=pkt.facts.tunnel,
        )  # fmt: skip
        return facts, flow, direction, ended

    # ------------------------------------------------------------------ rows and objects

    def promote(self, row: int) -> Flow:
        """The live flow of ``row`` as a :class:`Flow` object, kept from now on."""
        flow = self._objects.get(row)
        if flow is None:
            flow = self._objects[row] = self._flow_of(row)
        return flow

    def promoted(self, row: int) -> Flow | None:
        return self._objects.get(row)  # None: the flow is still a row

    def key_of(self, row: int) -> FlowKey:
        """The :class:`FlowKey` of a live row (built afresh: a row keeps none)."""
        flow = self._objects.get(row)
        return flow.key if flow is not None else _key_of(self.keys.unpack(self._rows.keys[row]))  # type: ignore[arg-type]

    def index_of(self, row: int) -> int:
        return self._rows.index[row]  # a promoted flow keeps its index

    def note_syn(self, row: int, to_server: bool, seq: int) -> None:
        """Keep a SYN's sequence number for the streams stage (the first one each way)."""
        rows = self._rows
        seen = _r._SYN_TO_SERVER if to_server else _r._SYN_TO_CLIENT
        if not rows.bits[row] & seen:
            rows.bits[row] |= seen
            (rows.syn_to_server if to_server else rows.syn_to_client)[row] = seq

    def syns(self, row: int) -> tuple[int | None, int | None] | None:
        """The SYN sequence numbers :meth:`note_syn` kept ``(to server, to client)``, or None."""
        rows = self._rows
        bits = rows.bits[row]
        if not bits & (_r._SYN_TO_SERVER | _r._SYN_TO_CLIENT):
            return None
        return (rows.syn_to_server[row] if bits & _r._SYN_TO_SERVER else None,
                rows.syn_to_client[row] if bits & _r._SYN_TO_CLIENT else None)  # fmt: skip

    def _flow_of(self, row: int) -> Flow:
        """A :class:`Flow` holding a row's numbers."""
        rows = self._rows
        flow = Flow(self.keys.unpack(rows.keys[row]), rows.index[row], rows.first[row],  # type: ignore[arg-type]
                    rows.first_time[row], row)  # fmt: skip
        flow.packets_to_server, flow.packets_to_client = (
            rows.packets_to_server[row],
            rows.packets_to_client[row],
        )
        flow.bytes_to_server, flow.bytes_to_client = (
            rows.bytes_to_server[row],
            rows.bytes_to_client[row],
        )
        flow.payload_to_server, flow.payload_to_client = (
            rows.payload_to_server[row],
            rows.payload_to_client[row],
        )
        flow.last, flow.last_time = rows.last[row], rows.last_time[row]
        bits = rows.bits[row]
        flow.midstream = bool(bits & _r._MIDSTREAM)
        if flow.tcp is not None:
            flow.tcp.state = _r._STATES[bits & 0x0F]
            flow.tcp.handshake_seen = bool(bits & _r._HANDSHAKE)
        return flow

    def _touch(self, row: int) -> None:
        """``row`` had a packet: it moves to the newest place of the activity log."""
        log, position = self._log, self._rows.position
        if position[row] < 0 or position[row] != len(log) - 1:
            position[row] = len(log)
            log.append(row)
            # Compact on the log's whole length, the entries already passed included: with
            # a few flows taking turns, those are nearly all of it (4 bytes per packet).
            if len(log) > 2 * len(self._live) + 1024:
                self._compact()

    def _compact(self) -> None:
        log, position = self._log, self._rows.position
        kept = array(
            "i",
            (row for at, row in enumerate(log[self._head :], self._head) if position[row] == at),
        )
        for at, row in enumerate(kept):
            position[row] = at
        self._log, self._head = kept, 0

    def _oldest(self) -> int | None:
        """The live row idle longest (stale log entries before it are skipped for good)."""
        log, position, head = self._log, self._rows.position, self._head
        while head < len(log):
            row = log[head]
            if position[row] == head:
                self._head = head
                return row
            head += 1
        self._head = head
        return None

    def _take(self, row: int, reason: str | None = None) -> Flow:
        """Take a live row out of the table: its flow, with ``end_reason`` set if given."""
        flow = self._objects.pop(row, None) or self._flow_of(row)
        flow.row = -1
        if reason is not None:
            flow.end_reason = reason
        rows = self._rows
        if flow.over:
            self._gone[flow.index] = flow.last_time  # it keeps its place in the closed queue
        del self._live[rows.keys[row]]  # type: ignore[arg-type]
        rows.keys[row] = None
        rows.position[row] = -1
        rows.free.append(row)
        return flow

    def make_client(self, flow: Flow, client: Endpoint) -> bool:
        """``client`` is the flow's client, as its payload shows; True if it was turned round.

        Only a midstream flow can be turned round (a captured SYN says who the client is
        better than any payload); its key, its per-direction counters and the way its
        packets are looked up all swap sides. The caller (the pipeline, which sniffed the
        payload) swaps whatever per-direction state it keeps itself.
        """
        key = flow.key
        if not flow.midstream or key.client == client or key.server != client:
            return False
        flow._key = key.reversed()
        proto, client_ip, client_port, server_ip, server_port, interface, tunnel = flow.ident
        flow.ident = (proto, server_ip, server_port, client_ip, client_port, interface, tunnel)
        if flow.row >= 0 and self._objects.get(flow.row) is flow:
            del self._live[self._rows.keys[flow.row]]  # type: ignore[arg-type]
            packed = self.keys.pack(*flow.ident)
            self._live[packed] = flow.row
            self._rows.keys[flow.row] = packed
            self._touch(flow.row)  # the flow had a packet just now: the newest activity
        flow.packets_to_server, flow.packets_to_client = (
            flow.packets_to_client,
            flow.packets_to_server,
        )
        flow.bytes_to_server, flow.bytes_to_client = flow.bytes_to_client, flow.bytes_to_server
        flow.payload_to_server, flow.payload_to_client = (
            flow.payload_to_client,
            flow.payload_to_server,
        )
        if flow.tcp is not None:  # a half-close seen so far was the other side's
            flow.tcp.state = _SWAPPED_CLOSE.get(flow.tcp.state, flow.tcp.state)
        flow.reoriented = True
        return True

    def locate(self, proto: str, src: str, sport: int, dst: str, dport: int, interface: int = 0,
               tunnel: str = "") -> tuple[int, bool] | None:  # fmt: skip
        """The live row a packet with these addresses (on this hop) belongs to, and whether
        its sender is the client; ``None`` for a packet that would start a new flow."""
        forward, reverse = self.keys.pair(proto, src, sport, dst, dport, interface, tunnel)
        row = self._live.get(forward)
        if row is not None:
            return row, True
        row = self._live.get(reverse)
        return None if row is None else (row, False)

    def drain(self) -> Iterator[Flow]:
        """End every flow still in the table (end of capture), oldest activity first, one
        at a time (a million half-open flows are never a million objects at once)."""
        while (row := self._oldest()) is not None:
            flow = self._take(row)
            flow.end_reason = flow.end_reason or "end of capture"
            yield flow
        self._closed.clear()
        self._gone.clear()
        self._calm_until = float("-inf")

    def finish(self) -> list[Flow]:  # what drain() yields, as a list
        return list(self.drain())

    def _last_time(self, row: int) -> float:
        return flow.last_time if (flow := self._objects.get(row)) is not None else self._rows.last_time[row]

    def _expire(self, ended: list[Flow]) -> None:
        now, rows = self._now, self._rows
        closed, objects = self._closed, self._objects
        # No flow can time out sooner than the shortest of the three timeouts: a flow that
        # comes or closes from now on is not due before ``now + shortest``.
        shortest = min(self.idle_timeout, self.udp_idle_timeout, self.closed_linger)
        calm = now + shortest
        while closed:
            at, index = closed[0]
            live = rows.keys[at] is not None and rows.index[at] == index
            last_time = self._last_time(at) if live else self._gone.get(index, float("-inf"))
            if last_time + self.closed_linger >= now:
                calm = min(calm, last_time + self.closed_linger)  # (its time only grows)
                break
            closed.popleft()
            if live:  # a final state stays final
                flow = self._take(at)
                flow.end_reason = flow.tcp.state.value if flow.tcp else "closed"
                ended.append(flow)
            self._gone.pop(index, None)
        # While the oldest flow is younger than the shortest timeout, nothing is left to do.
        while (row := self._oldest()) is not None:
            flow_object = objects.get(row)
            last = flow_object.last_time if flow_object is not None else rows.last_time[row]
            if last + shortest >= now:
                calm = min(calm, last + shortest)  # (any flow behind it is younger)
                break
            code = rows.bits[row] & 0x0F if flow_object is None else -1
            tcp = flow_object.tcp is not None if flow_object is not None else code != _r._UDP
            over = flow_object.over if flow_object is not None else code in _r._FINAL_CODES
            timeout = self.idle_timeout if tcp else self.udp_idle_timeout
            if over:
                timeout = min(timeout, self.closed_linger)
            if last + timeout >= now:
                calm = min(calm, last + shortest)
                break
            flow = self._take(row)
            flow.end_reason = "idle" if not over else flow.tcp.state.value  # type: ignore[union-attr]
            ended.append(flow)
        if self._ordered:
            self._calm_until = calm


def flow_records(packets: Iterable[Any]) -> Iterator[FlowRecord]:
    """The flows of a capture, each yielded as soon as it ends (streaming).

    Only the flow table's rows are kept: no reassembly, parsing, or flow object until a flow ends.
    """
    table = FlowTable()
    feed = table.feed
    for pkt in packets:
        facts = transport_facts(pkt)
        if facts is None:
            continue
        proto, src, sport, dst, dport, flags, payload_length, _, _ = facts
        ended = feed(proto, src, sport, dst, dport, flags, pkt.no, pkt.time, pkt.wire_length,
                     payload_length, pkt.interface, True, pkt.facts.tunnel)[3]  # fmt: skip
        for flow in ended:
            yield flow.record()
    for flow in table.drain():
        yield flow.record()


_Facts = tuple[str, str, int, str, int, "int | None", int, int, bytes]


def transport_facts(pkt: Any) -> _Facts | None:
    """(proto, src ip, src port, dst ip, dst port, tcp flags, payload length, seq, payload).

    None for packets without a usable TCP or UDP header (ARP, ICMP, fragments, a
    transport header cut short). Read from :attr:`Packet.facts
    <osilab.capture.packet.Packet.facts>`, the capture stage's one reading of a frame's
    flow (fast for a common frame, from the layers otherwise): in a tunnel, the innermost
    packet's (its tunnels are ``facts.tunnel``); an ICMP error's quoted headers are not
    the packet's own. The payload is bounded by the IP length, as :attr:`Packet.payload` is.
    """
    facts = pkt.facts
    if facts.proto is None or facts.dst_port is None or facts.dst is None:
        return None
    return stream_facts(facts)


def stream_facts(facts: Any) -> _Facts:
    """The :data:`_Facts` of a TCP/UDP frame's :class:`~osilab.capture.facts.FlowFacts`
    (the tracker's view of a record; :func:`transport_facts` of a packet)."""
    return (facts.proto, facts.src, facts.src_port, facts.dst, facts.dst_port, facts.tcp_flags,
            facts.payload_length, facts.tcp_seq or 0, facts.payload)  # fmt: skip

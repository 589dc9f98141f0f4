"""The stream pipeline: packets in, flows, reassembled bytes and application messages out.

This is the one place where the pieces of :mod:`osilab.streams` meet packets:

1. the :class:`~osilab.streams.flows.FlowTable` puts each TCP/UDP packet in its flow and
   says which way it travels;
2. per TCP flow and direction, a :class:`~osilab.streams.reassembly.StreamReassembler`
   turns segments into ordered chunks (one packet each) and marked gaps;
3. per flow, a :class:`~osilab.pipeline.dispatch.FlowParser` sniffs the protocol and feeds
   the chunks to its parser, which returns the application messages each chunk completed.

:func:`track` yields one :class:`Step` per packet, in capture order, as soon as the packet
has been handled (streaming: memory depends on the live flows, not on the capture size).
:func:`conversations` is the view of its messages; :func:`~osilab.pipeline.annotate.annotate`
(the packets with stream-aware application layers, as tshark shows them) is built on the
same tracker, and :func:`~osilab.pipeline.follow.follow` (one flow's bytes) on the same
flow table and reassembly.

Flows are per hop: a packet's capture interface, and the tunnels it came through, are
part of its flow's identity, so a capture taken on seven links at once is seven sets of
flows, and one inner connection mirrored in two VXLAN VNIs two flows
(:class:`~osilab.streams.keys.FlowKey`).

Speed and memory
----------------
Given a :class:`~osilab.capture.reader.Capture`, :func:`conversations` (and so
``iter_http`` and the ALB replay) never builds a :class:`Packet`: each record's TCP facts
and payload are read with one ``struct`` call (:mod:`osilab.capture.facts`), and only unusual
frames are dissected. ``annotate`` dissects a packet of a recognised flow only up to
its transport layer, since its application layers come from the stream. Memory stays
bounded: a flow gets its object, reassemblers and parser only with its first payload (FIN
or RST), so a flood of half-open flows keeps nothing here: each stays a row of the flow
table, which also keeps its SYN's sequence number for the reassembler to start from
(:meth:`~osilab.streams.flows.FlowTable.note_syn`); they are dropped when the flow ends, each direction
holds at most :data:`~osilab.streams.reassembly.MAX_BUFFERED_BYTES` out of order, and all
flows together at most :data:`MAX_HELD_TOTAL` (past it, the biggest holder gives up its
hole: a :class:`Gap` that says so).

What this module must not know: files, printing, or any protocol's syntax.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from osilab.capture.facts import flow_facts
from osilab.capture.packet import TCP_RST, Packet
from osilab.capture.reader import Capture
from osilab.pipeline.dispatch import FlowParser, SharedState, client_speaks
from osilab.protocols import AppMessage
from osilab.streams.flows import Flow, FlowRecord, FlowRow, FlowTable, _Facts, stream_facts
from osilab.streams.frozen import quick_init
from osilab.streams.keys import Direction, Endpoint, FlowKey
from osilab.streams.reassembly import Chunk, StreamReassembler

__all__ = ["Step", "FlowMessage", "track", "conversations", "MAX_HELD_TOTAL"]

_SYN, _ACK, _FIN = 0x02, 0x10, 0x01
_TO_SERVER, _TO_CLIENT = Direction.TO_SERVER, Direction.TO_CLIENT

#: Out-of-order bytes held for reassembly over all flows at once (64 MiB). Each direction
#: holds at most :data:`~osilab.streams.reassembly.MAX_BUFFERED_BYTES`, but a capture with
#: holes in many flows at the same time could still add up; past this budget the direction
#: holding the most gives up its holes (a :class:`Gap` with the reason, then its data).
MAX_HELD_TOTAL = 64 * 1024 * 1024
_BUDGET_REASON = "given up: the reassembly memory of all flows (MAX_HELD_TOTAL) was full"


@quick_init  # one is made for every message of a capture
@dataclass(frozen=True, slots=True)
class FlowMessage:
    """An application message and the flow it belongs to."""

    flow: FlowKey
    message: AppMessage


@dataclass(frozen=True, slots=True)
class Step:
    """What one packet did (``packet`` is None for the final flush at the end of capture).

    Attributes:
        packet: the packet.
        flow: its flow, or None when it is not TCP/UDP.
        flow_index: the flow's 0-based index (as Wireshark's tcp.stream), or -1.
        direction: which way it travelled in its flow.
        application: the protocol its flow was recognised as (``"raw"`` when none).
        messages: application messages completed at this packet (any flow).
        ended: flows that ended at this packet (closed, idle, reused) or at the end.
    """

    packet: Packet | None
    flow: FlowKey | None
    flow_index: int
    direction: Direction | None
    application: str | None
    messages: tuple[FlowMessage, ...]
    ended: tuple[FlowRecord, ...]


class _FlowState:
    """The streams stage's per-flow state, kept in :attr:`Flow.state`."""

    __slots__ = ("parser", "streams", "ended", "closed", "sniffed")

    def __init__(self, flow: Flow, keylog: str | None, syns: tuple[int | None, int | None] | None = None,
                 shared: SharedState | None = None) -> None:  # fmt: skip
        self.parser = FlowParser(flow.key, keylog, shared)
        self.streams = (
            (StreamReassembler(), StreamReassembler()) if flow.key.proto == "tcp" else None
        )
        if syns is not None and self.streams is not None:  # replay the SYNs put off
            for stream, isn in zip(self.streams, syns, strict=True):
                if isn is not None:
                    stream.segment(isn, _SYN, b"", 0, 0.0)
        self.ended = [False, False]
        self.closed = False
        self.sniffed = False  # the first payload was looked at (for who is the client)


class _Tracker:
    def __init__(
        self,
        keylog: str | None,
        on_syn: Callable[[FlowKey, int, float], object] | None = None,
        on_end: Callable[[FlowKey], object] | None = None,
    ) -> None:
        self.keylog = keylog
        #: What the parsers of this read share across flows (QUIC's connection-ID table).
        self.shared = SharedState()
        self.table = FlowTable()
        #: Told ``(flow, packet number, time)`` of every client SYN (an ALB's "connection opened").
        self.on_syn = on_syn
        #: Told the flow of every flow that ended, after its last messages.
        self.on_end = on_end
        #: Bytes held out of order over all flows, and who holds them (for MAX_HELD_TOTAL).
        self.held_total = 0
        self._holders: dict[StreamReassembler, tuple[Flow, Direction]] = {}

    def step(self, pkt: Packet) -> Step:
        found = _packet_facts(pkt)
        if found is None:
            return Step(pkt, None, -1, None, None, (), ())
        facts, missing, tunnel = found
        flow, direction, application, messages, records = self.advance(
            facts, pkt.no, pkt.time, pkt.wire_length, missing, pkt.interface, tunnel
        )
        return Step(pkt, flow.key, flow.index, direction, application, tuple(messages), records)

    def advance(
        self,
        facts: _Facts,
        no: int,
        time: float,
        wire_length: int,
        missing: int,
        interface: int = 0,
        tunnel: str = "",
    ) -> tuple[Flow | FlowRow, Direction, str | None, list[FlowMessage], tuple[FlowRecord, ...]]:
        """One TCP/UDP packet's facts through the flow table, reassembly and its parser.

        ``interface`` is the capture interface the packet was seen on and ``tunnel`` the
        tunnels it came through: together its hop, part of the flow's identity
        (:class:`~osilab.streams.keys.FlowKey`). Returns its flow, its direction, the protocol its flow speaks (None while
        undecided), the messages completed (any flow) and the records of flows that
        ended. :meth:`step` (a :class:`Packet`), :func:`annotate` and the fast path of
        :func:`conversations` (records) all come here, so they cannot disagree. A flow that
        has carried nothing yet is still a row of the table: it comes back as a
        :class:`FlowRow` (its key and index, read when asked for).
        """
        proto, src, sport, dst, dport, flags, payload_length, seq, payload = facts
        bits = flags or 0
        reset = proto == "tcp" and bool(bits & TCP_RST)
        if reset:
            reset = self._reset_acceptable(proto, src, sport, dst, dport, interface, seq, tunnel)
        table = self.table
        row, flow, from_client, ended = table.feed(
            proto, src, sport, dst, dport, flags, no, time, wire_length, payload_length, interface,
            reset or not bits & TCP_RST, tunnel,
        )  # fmt: skip
        direction = _TO_SERVER if from_client else _TO_CLIENT
        messages: list[FlowMessage] = []
        records = tuple(self._end(gone, messages) for gone in ended) if ended else ()
        if bits & _SYN and not bits & _ACK and self.on_syn is not None and proto == "tcp":
            key = FlowKey(proto, Endpoint(src, sport), Endpoint(dst, dport), interface, tunnel)
            # A flow object already holds its key: pass that one (a row has none to share)
            self.on_syn(flow.key if flow is not None and flow.key == key else key, no, time)
        state = flow.state if flow is not None else None
        if type(state) is not _FlowState:
            if not (payload_length or missing or reset or bits & (_FIN | TCP_RST)):
                # No payload yet: a bare SYN, SYN+ACK or ACK changes nothing in reassembly
                # but a SYN's sequence number; the table keeps that in the flow's row (a
                # SYN flood stays small: no flow object, no reassembler, no parser).
                if bits & _SYN:
                    table.note_syn(row, from_client, seq)
                return flow or FlowRow(table, row), direction, None, messages, records
            if flow is None:
                flow = table.promote(row)
            state = flow.state = _FlowState(flow, self.keylog, table.syns(row), self.shared)
        assert flow is not None
        if payload_length and not state.sniffed:
            state.sniffed = True
            if flow.midstream and self._reorient(flow, state, direction, src, sport, payload):
                direction = _TO_CLIENT if direction is _TO_SERVER else _TO_SERVER
        parser = state.parser
        found: list[AppMessage] = []
        streams = state.streams
        if streams is None:  # UDP: each datagram is a message of its own
            if payload_length:
                found += parser.feed(direction, payload, no, time)
        elif not state.closed:
            side = 0 if direction is _TO_SERVER else 1
            stream = streams[side]
            if stream.in_order(seq, bits, payload, missing):
                # The next bytes, readable at once (nothing held, nothing ends): as the
                # one chunk segment() would have made of them
                found = parser.feed(direction, payload, no, time)
            else:
                held = stream.buffered_bytes
                items = stream.segment(seq, bits, payload, no, time, missing)
                if items:
                    self._deliver(parser, direction, items, time, found)
                if stream.buffered_bytes != held:
                    self._account(stream, held, flow, direction, no, messages, found)
                if stream.finished and not state.ended[side]:
                    state.ended[side] = True
                    found += parser.end(direction, no, time)
            if reset or flow.over:  # copied first: ``found`` may be the parser's own list,
                found = [*found]  # which closing the parser may clear and fill again
                found += self._close(flow, state, no, time)
        if found:
            key = flow.key
            for message in found:  # (a loop: a comprehension is a call of its own before 3.12)
                messages.append(FlowMessage(key, message))
        application = parser.protocol
        if application is not None and application != flow.application:
            flow.application = application
        return flow, direction, application, messages, records

    def _reorient(
        self,
        flow: Flow,
        state: _FlowState,
        direction: Direction,
        src: str,
        sport: int,
        payload: bytes,
    ) -> bool:
        """A midstream flow's first payload says who its client is (a request line comes
        from the client, a status line from the server: :func:`client_speaks`), before the
        ports do. Turns the flow round when the ports got it wrong; True if it did.
        """
        from_client = client_speaks(payload)
        if from_client is None or from_client is (direction is Direction.TO_SERVER):
            return False
        sender = Endpoint(src, sport)
        client = sender if from_client else (
            flow.key.server if sender == flow.key.client else flow.key.client
        )
        if not self.table.make_client(flow, client):
            return False
        if state.streams is not None:
            state.streams = (state.streams[1], state.streams[0])
        state.ended.reverse()
        state.parser = FlowParser(flow.key, self.keylog, self.shared)  # nothing was fed to it yet
        return True

    def _reset_acceptable(
        self, proto: str, src: str, sport: int, dst: str, dport: int, interface: int, seq: int,
        tunnel: str = "",
    ) -> bool:
        """Whether a RST ends its connection: its sequence number must be exactly what the
        receiver expects next (RFC 9293 §3.10.7.3, the full check; see
        :meth:`~osilab.streams.reassembly.StreamReassembler.reset_acceptable`). A RST that
        is not acceptable ends nothing, so the data after it is still reassembled."""
        table = self.table
        known = table.locate(proto, src, sport, dst, dport, interface, tunnel)
        if known is None:
            return True
        row, from_client = known
        flow = table.promoted(row)
        if flow is None or type(flow.state) is not _FlowState:  # only SYNs so far: replay them
            syns = table.syns(row)
            if syns is None:
                return True
            flow = table.promote(row)
            flow.state = _FlowState(flow, self.keylog, syns, self.shared)
        if flow.state.streams is None:
            return True
        return flow.state.streams[0 if from_client else 1].reset_acceptable(seq)

    @staticmethod
    def _deliver(
        parser: FlowParser,
        direction: Direction,
        items: list,
        time: float | None,
        found: list[AppMessage],
    ) -> None:
        """Feed reassembled chunks (and gaps) to the flow's parser; ``time`` is the
        packet's that made them readable (None at the end: each chunk's own time)."""
        for item in items:
            if type(item) is Chunk:
                found += parser.feed(
                    direction,
                    item.data,
                    item.delivered_at,
                    time if time is not None else item.time,
                )
            else:
                found += parser.gap(direction, item.size, item.packet_no)

    def _account(
        self,
        stream: StreamReassembler,
        before: int,
        flow: Flow,
        direction: Direction,
        no: int,
        messages: list[FlowMessage],
        found_here: list[AppMessage],
    ) -> None:
        """Keep :attr:`held_total` and, past :data:`MAX_HELD_TOTAL`, make room: the
        messages this completes go to ``found_here`` for this packet's flow, to
        ``messages`` for another flow."""
        self.held_total += stream.buffered_bytes - before
        if stream.buffered_bytes:
            self._holders[stream] = (flow, direction)
        else:
            self._holders.pop(stream, None)
        while self.held_total > MAX_HELD_TOTAL and self._holders:
            biggest = max(self._holders, key=lambda s: s.buffered_bytes)
            owner, way = self._holders.pop(biggest)
            self.held_total -= biggest.buffered_bytes
            found: list[AppMessage] = found_here if owner is flow else []
            items = biggest.give_up(no, _BUDGET_REASON)
            if type(owner.state) is _FlowState:
                self._deliver(owner.state.parser, way, items, None, found)
            if owner is not flow:
                messages += [FlowMessage(owner.key, message) for message in found]

    def _close(
        self, flow: Flow, state: _FlowState, packet_no: int, time: float
    ) -> list[AppMessage]:
        """The connection is over: flush both directions and close the parser, once."""
        if state.closed:
            return []
        found: list[AppMessage] = []
        if state.streams is not None:
            for side, direction in ((0, Direction.TO_SERVER), (1, Direction.TO_CLIENT)):
                stream = state.streams[side]
                if stream in self._holders:  # what it held is delivered (or given up) now
                    del self._holders[stream]
                    self.held_total -= stream.buffered_bytes
                self._deliver(state.parser, direction, stream.finish(packet_no), None, found)
                if not state.ended[side]:
                    state.ended[side] = True
                    found += state.parser.end(direction, packet_no, time)
        found += state.parser.close()
        state.closed = True
        return found

    def _end(self, flow: Flow, messages: list[FlowMessage]) -> FlowRecord:
        self._let_go(flow, messages)
        return flow.record()

    def _let_go(self, flow: Flow, messages: list[FlowMessage]) -> None:
        """A flow ended: its last messages go to ``messages``, its state is released."""
        state = flow.state
        if type(state) is _FlowState:
            for message in self._close(flow, state, flow.last, flow.last_time):
                messages.append(FlowMessage(flow.key, message))
            if state.parser.protocol is not None:
                flow.application = state.parser.protocol
        flow.state = None  # release buffers
        if self.on_end is not None:
            self.on_end(flow.key)

    def finish(self) -> Step:
        messages: list[FlowMessage] = []
        records = tuple(self._end(flow, messages) for flow in self.table.drain())
        return Step(None, None, -1, None, None, tuple(messages), records)

    def finish_messages(self) -> Iterator[FlowMessage]:
        """The last messages of every flow still live, one flow at a time (what
        :meth:`finish` gives, without a record of each flow: a million half-open flows
        are let go without a million records at once)."""
        for flow in self.table.drain():
            messages: list[FlowMessage] = []
            self._let_go(flow, messages)
            yield from messages


def track(
    packets: Iterable[Packet],
    *,
    keylog: str | None = None,
    on_syn: Callable[[FlowKey, int, float], object] | None = None,
) -> Iterator[Step]:
    """One :class:`Step` per packet, in capture order, then a final flush step.

    Args:
        packets: a capture (``osilab.read(path)``) or any iterable of packets.
        keylog: an NSS key log file, passed to the TLS parser for decryption.
        on_syn: told ``(flow, packet number, time)`` of every client SYN.
    """
    tracker = _Tracker(keylog, on_syn)
    for pkt in packets:
        yield tracker.step(pkt)
    yield tracker.finish()


def conversations(
    packets: Iterable[Packet],
    *,
    keylog: str | None = None,
    on_syn: Callable[[FlowKey, int, float], object] | None = None,
    on_end: Callable[[FlowKey], object] | None = None,
) -> Iterator[FlowMessage]:
    """Every application message of a capture, in the order they complete.

    Given a :class:`~osilab.capture.reader.Capture` (``osilab.read(path)``), the packets
    are not built at all: :func:`~osilab.capture.facts.flow_facts` reads each TCP segment's facts and payload
    straight from the records, and only unusual packets are dissected. The messages are
    the same as from the packets (``tests/streams/test_fast_pipeline.py``), several
    times faster. ``on_syn(flow, packet_no, time)`` is told of every client SYN, and
    ``on_end(flow)`` of every flow that ended (after its last messages).

    >>> import osilab
    >>> msgs = conversations(osilab.read("../shared/captures/thirdparty/zeek/http-get.pcap"))  # doctest: +SKIP
    >>> [m.message.summary for m in msgs][:1]  # doctest: +SKIP
    ['GET /download/CHANGES.bro-aux.txt HTTP/1.1']
    """
    tracker = _Tracker(keylog, on_syn, on_end)
    if isinstance(packets, Capture):
        advance = tracker.advance
        as_stream = _stream_facts
        for facts in flow_facts(packets):  # no Packet objects: the capture stage's fast path
            if facts.proto is not None:
                found = advance(as_stream(facts), facts.no, facts.time, facts.wire_length,
                                facts.missing, facts.interface, facts.tunnel)[3]  # fmt: skip
                if found:
                    yield from found
    else:
        for pkt in packets:
            yield from tracker.step(pkt).messages
    yield from tracker.finish_messages()


#: The tracker's view of a frame's :class:`~osilab.capture.facts.FlowFacts`:
#: ``(proto, src, src port, dst, dst port, tcp flags, payload length, seq, payload)``.
_stream_facts = stream_facts


def _packet_facts(pkt: Packet) -> tuple[_Facts, int, str] | None:
    """``(transport facts, TCP bytes missing, tunnel)`` of a packet, None when it carries no
    TCP or UDP: from :attr:`Packet.facts`, the capture stage's one fast path (read from the
    bytes for a common frame, from the layers otherwise)."""
    facts = pkt.facts
    if facts.proto is None:
        return None
    return _stream_facts(facts), facts.missing, facts.tunnel


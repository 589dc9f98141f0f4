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
The other functions are views over it: :func:`conversations` (the messages),
:func:`annotate` (the packets with stream-aware application layers, as tshark shows
them), :func:`follow` (one flow's bytes, for ``osilab follow``).

Speed and memory
----------------
Given a :class:`~osilab.capture.reader.Capture`, :func:`conversations` (and so
``iter_http`` and the ALB replay) never builds a :class:`Packet`: each record's TCP facts
and payload are read with one ``struct`` call (:func:`_quick_facts`), and only unusual
frames are dissected. :func:`annotate` dissects a packet of a recognised flow only up to
its transport layer, since its application layers come from the stream. Memory stays
bounded: a flow's reassembler and parser are dropped when the flow ends, each direction
holds at most :data:`~osilab.streams.reassembly.MAX_BUFFERED_BYTES` out of order, and all
flows together at most :data:`MAX_HELD_TOTAL` (past it, the biggest holder gives up its
hole: a :class:`Gap` that says so).

What this module must not know: files, printing, or any protocol's syntax.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from osilab.capture.dissect import dissect
from osilab.capture.fast import address_text, raw_records
from osilab.capture.packet import TCP_RST, Layer, Packet
from osilab.capture.reader import Capture
from osilab.layers import place
from osilab.pipeline.dispatch import FlowParser
from osilab.protocols import AppMessage, Direction
from osilab.streams.flows import Flow, FlowRecord, FlowTable, _Facts, transport_facts
from osilab.streams.keys import Endpoint, FlowKey
from osilab.streams.reassembly import Chunk, Gap, StreamReassembler

__all__ = [
    "Step",
    "FlowMessage",
    "FollowItem",
    "track",
    "conversations",
    "annotate",
    "follow",
    "find_flow",
    "Fragments",
    "MAX_FRAGMENTED_DATAGRAMS",
    "FRAGMENT_TIMEOUT",
    "MAX_HELD_TOTAL",
]

_SYN, _ACK = 0x02, 0x10

#: Out-of-order bytes held for reassembly over all flows at once (64 MiB). Each direction
#: holds at most :data:`~osilab.streams.reassembly.MAX_BUFFERED_BYTES`, but a capture with
#: holes in many flows at the same time could still add up; past this budget the direction
#: holding the most gives up its holes (a :class:`Gap` with the reason, then its data).
MAX_HELD_TOTAL = 64 * 1024 * 1024
_BUDGET_REASON = "given up: the reassembly memory of all flows (MAX_HELD_TOTAL) was full"

#: Datagrams being put together from IP fragments at once (the oldest is dropped beyond).
MAX_FRAGMENTED_DATAGRAMS = 1024
#: Seconds of capture time a datagram's fragments wait for the rest (Linux ipfrag_time).
FRAGMENT_TIMEOUT = 30.0


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

    __slots__ = ("parser", "streams", "ended", "closed")

    def __init__(self, flow: Flow, keylog: str | None) -> None:
        self.parser = FlowParser(flow.key, keylog)
        self.streams = (
            (StreamReassembler(), StreamReassembler()) if flow.key.proto == "tcp" else None
        )
        self.ended = [False, False]
        self.closed = False


def _missing(pkt: Packet, payload_length: int) -> int:
    """Payload bytes the capture cut off (snap length), from the IP length fields."""
    if pkt.wire_length <= len(pkt.data):
        return 0
    tcp = pkt.layer("tcp")
    net = pkt.layer("ip") or pkt.layer("ipv6")
    if tcp is None or net is None:
        return 0
    if net.name == "ip":
        carried = net.fields.get("len", 0) - net.fields.get("hdr_len", 20)
    else:
        carried = net.fields.get("plen", 0) - (net.length - 40)
    return max(0, carried - tcp.fields.get("hdr_len", 20) - payload_length)


class _Tracker:
    def __init__(
        self,
        keylog: str | None,
        on_syn: Callable[[FlowKey, int, float], object] | None = None,
        on_end: Callable[[FlowKey], object] | None = None,
    ) -> None:
        self.keylog = keylog
        self.table = FlowTable()
        #: Told ``(flow, packet number, time)`` of every client SYN (an ALB's "connection opened").
        self.on_syn = on_syn
        #: Told the flow of every flow that ended, after its last messages.
        self.on_end = on_end
        #: Bytes held out of order over all flows, and who holds them (for MAX_HELD_TOTAL).
        self.held_total = 0
        self._holders: dict[StreamReassembler, tuple[Flow, Direction]] = {}

    def step(self, pkt: Packet) -> Step:
        facts = transport_facts(pkt)
        if facts is None:
            return Step(pkt, None, -1, None, None, (), ())
        missing = _missing(pkt, len(facts[8])) if facts[0] == "tcp" else 0
        flow, direction, application, messages, records = self.advance(
            facts, pkt.no, pkt.time, pkt.wire_length, missing
        )
        return Step(pkt, flow.key, flow.index, direction, application, tuple(messages), records)

    def advance(
        self, facts: _Facts, no: int, time: float, wire_length: int, missing: int
    ) -> tuple[Flow, Direction, str | None, list[FlowMessage], tuple[FlowRecord, ...]]:
        """One TCP/UDP packet's facts through the flow table, reassembly and its parser.

        Returns its flow, its direction, the protocol its flow speaks (None while
        undecided), the messages completed (any flow) and the records of flows that
        ended. :meth:`step` (a :class:`Packet`), :func:`annotate` and the fast path of
        :func:`conversations` (records) all come here, so they cannot disagree.
        """
        proto, src, sport, dst, dport, flags, payload_length, seq, payload = facts
        flow, direction, ended = self.table.packet(
            proto, src, sport, dst, dport, flags, no, time, wire_length, payload_length
        )
        messages: list[FlowMessage] = []
        records = tuple(self._end(gone, messages) for gone in ended) if ended else ()
        if (
            self.on_syn is not None
            and flags is not None
            and flags & _SYN
            and not flags & _ACK
            and proto == "tcp"
        ):
            self.on_syn(FlowKey(proto, Endpoint(src, sport), Endpoint(dst, dport)), no, time)
        state = flow.state
        if state is None:
            state = flow.state = _FlowState(flow, self.keylog)
        parser = state.parser
        found: list[AppMessage] = []
        if state.streams is None:  # UDP: each datagram is a message of its own
            if payload_length:
                found += parser.feed(direction, payload, no, time)
        elif not state.closed:
            side = 0 if direction is Direction.TO_SERVER else 1
            stream = state.streams[side]
            held = stream.buffered_bytes
            items = stream.segment(seq, flags or 0, payload, no, time, missing)
            if items:
                self._deliver(parser, direction, items, time, found)
            if stream.buffered_bytes != held:
                self._account(stream, held, flow, direction, no, messages, found)
            if stream.finished and not state.ended[side]:
                state.ended[side] = True
                found += parser.end(direction, no, time)
            if (flags or 0) & TCP_RST or flow.over:
                found += self._close(flow, state, no, time)
        if found:
            key = flow.key
            messages += [FlowMessage(key, message) for message in found]
        application = parser.protocol
        if application is not None and application != flow.application:
            flow.application = application
        return flow, direction, application, messages, records

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
            if owner.state is not None:
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
        state = flow.state
        if state is not None:
            for message in self._close(flow, state, flow.last, flow.last_time):
                messages.append(FlowMessage(flow.key, message))
            if state.parser.protocol is not None:
                flow.application = state.parser.protocol
            flow.state = None  # release buffers
        if self.on_end is not None:
            self.on_end(flow.key)
        return flow.record()

    def finish(self) -> Step:
        messages: list[FlowMessage] = []
        records = tuple(self._end(flow, messages) for flow in self.table.finish())
        return Step(None, None, -1, None, None, tuple(messages), records)


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
    are not built at all: :func:`_fast_facts` reads each TCP segment's facts and payload
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
        for no, time, wire_length, facts, missing in _fast_facts(packets):
            if facts is not None:
                found = advance(facts, no, time, wire_length, missing)[3]
                if found:
                    yield from found
    else:
        for pkt in packets:
            yield from tracker.step(pkt).messages
    yield from tracker.finish().messages


#: Ethernet II + IPv4 (20-byte header) + TCP, read in one call from frame offset 14: IP
#: total length, flags and fragment offset, addresses; TCP ports, sequence number, data
#: offset and flags.
_ETH_IPV4_TCP = struct.Struct("!2xH2xH4x4s4sHHI4xH")


def _quick_facts(data: bytes, wire: int) -> tuple[_Facts, int] | None:
    """``(transport facts, bytes missing)`` of an Ethernet II + IPv4 + TCP frame, or None.

    The common frame (IPv4 without options and not a fragment, a whole TCP header) is read
    with one :meth:`struct.Struct.unpack_from`; for anything else, None: the caller asks
    the full dissector. Address text comes from the fast paths' shared cache
    (:func:`osilab.capture.fast.address_text`).
    """
    end = len(data)
    if end < 54 or data[14] != 0x45 or data[23] != 6 or data[12:14] != b"\x08\x00":
        return None
    total, flags_frag, raw_src, raw_dst, sport, dport, seq, offset_flags = _ETH_IPV4_TCP.unpack_from(
        data, 14
    )
    ip_end = 14 + total if 14 + total < end else end
    header = (offset_flags >> 12) * 4
    if total < 20 or flags_frag & 0x3FFF or header < 20 or ip_end - 34 < header:
        return None
    src = address_text(raw_src)
    dst = address_text(raw_dst)
    start = 34 + header
    size = ip_end - start
    missing = 0
    if wire > end:  # cut by the snap length: the rest of the payload is a gap
        missing = max(0, total - 20 - header - size)
    payload = data[start:ip_end] if size else b""
    return ("tcp", src, sport, dst, dport, offset_flags & 0x01FF, size, seq, payload), missing


def _packet_facts(pkt: Packet) -> tuple[_Facts, int] | None:
    """:func:`_quick_facts` for a packet when it can, else from its dissected layers."""
    if pkt.linktype == 1 and pkt.read_error is None:
        found = _quick_facts(pkt.data, pkt.wire_length)
        if found is not None:
            return found
    facts = transport_facts(pkt)
    if facts is None:
        return None
    return facts, (_missing(pkt, len(facts[8])) if facts[0] == "tcp" else 0)


def _fast_facts(
    capture: Capture,
) -> Iterator[tuple[int, float, int, _Facts | None, int]]:
    """``(no, time, wire_length, transport facts or None, bytes missing)`` per record.

    The facts are :func:`~osilab.streams.flows.transport_facts`' and ``missing`` is
    :func:`_missing`'s, read without building a :class:`Packet` (:func:`_quick_facts`);
    every other frame, and every damaged record, is dissected in full and asked the same
    questions, so the rare cases stay exact.
    """
    quick = _quick_facts
    for no, time, linktype, data, wire, iface, problem in raw_records(capture):
        found = quick(data, wire) if problem is None and linktype == 1 else None
        if found is None:  # the rare frame: dissect it in full and ask the same questions
            pkt = Packet(no, time, data, linktype, wire_length=wire, interface=iface,
                         read_error=problem)  # fmt: skip
            found = _packet_facts(pkt)
        if found is None:
            yield no, time, wire, None, 0
        else:
            yield no, time, wire, found[0], found[1]


def _message_layer(message: AppMessage, payload_offset: int) -> Layer:
    where = place(message.protocol)
    fields = dict(message.fields)
    fields["first_packet"] = message.first_packet
    fields["reassembled_length"] = message.length
    summary = message.summary
    if message.first_packet != message.last_packet:
        summary += f" [reassembled: packets {message.first_packet}-{message.last_packet}, {message.length} bytes]"
    return Layer(
        message.protocol,
        where.osi,
        where.tcpip,
        payload_offset,
        message.length,
        fields,
        summary,
        message.damaged,
    )


def _shows_as_layer(message: AppMessage) -> bool:
    fields = message.fields
    return fields.get("layer", True) is not False and fields.get("stage") != "headers"


_TRANSPORT = frozenset({"tcp", "udp"})


def annotate(packets: Iterable[Packet], *, keylog: str | None = None) -> Iterator[Packet]:
    """The same packets, with stream-aware application layers (as tshark shows them).

    Each application message is added as a :class:`Layer` on the packet that completes it
    (its ``length`` is the reassembled message length, its fields say where it started):
    an HTTP request split over three segments appears as ``http`` in the third. Segments
    of a recognised flow that complete nothing keep only their transport layer; flows whose
    protocol osilab has no stream parser for keep their per-packet layers.
    """
    fragments = Fragments()
    tracker = _Tracker(keylog)
    advance = tracker.advance
    for pkt in packets:
        found = _packet_facts(pkt)
        if found is None:  # not TCP/UDP: maybe a fragment that completes a datagram
            carried = fragments.packet(pkt)
            if carried:
                base = tuple(lay for lay in pkt.layers if lay.name != "data")
                pkt = _rebuilt(pkt, base + carried)
            yield pkt
            continue
        no = pkt.no
        flow, _direction, application, messages, _ended = advance(
            found[0], no, pkt.time, pkt.wire_length, found[1]
        )
        if application is None or application == "raw":
            yield pkt
            continue
        # The flow's application layers come from the stream: what this one segment alone
        # would show above TCP is not needed, so the dissection stops at the transport.
        layers = pkt._layers
        if layers is None:
            layers = dissect(pkt.data, pkt.linktype, through_transport=True)
        else:
            for i, lay in enumerate(layers):
                if lay.name in _TRANSPORT:
                    layers = layers[: i + 1]
                    break
        top = layers[-1] if layers else None
        offset = top.offset + top.length if top is not None and top.name in _TRANSPORT else len(pkt.data)
        key = flow.key
        extra = tuple(
            _message_layer(fm.message, offset)
            for fm in messages
            if fm.flow == key and fm.message.last_packet == no and _shows_as_layer(fm.message)
        )
        yield _rebuilt(pkt, layers + extra)


def _rebuilt(pkt: Packet, layers: tuple[Layer, ...]) -> Packet:
    """The same packet with another layer stack (Packet.with_layers keeps application layers)."""
    return Packet(
        pkt.no,
        pkt.time,
        pkt.data,
        pkt.linktype,
        wire_length=pkt.wire_length,
        interface=pkt.interface,
        interface_name=pkt.interface_name,
        comment=pkt.comment,
        read_error=pkt.read_error,
        layers=layers,
    )


class Fragments:
    """IPv4 and IPv6 fragment reassembly, only to show what the fragments carried.

    RFC 791 §3.2 (IPv4) and RFC 8200 §4.5 (IPv6): a datagram too big for a link is cut
    into fragments that share an identification; the receiver puts them back by their
    offsets once the last one (More Fragments = 0) and every byte before it are there.
    Like tshark, osilab then shows the transport layer (and what it carries) on the
    fragment that completed the datagram. Memory is bounded by
    :data:`MAX_FRAGMENTED_DATAGRAMS` and :data:`FRAGMENT_TIMEOUT`.
    """

    def __init__(self) -> None:
        # key -> [time, {offset: bytes}, total length or None, header-builder facts]
        self._pending: OrderedDict[tuple, list] = OrderedDict()

    def packet(self, pkt: Packet) -> tuple[Layer, ...] | None:
        """The layers the completed datagram adds on this fragment, or None."""
        net = None
        for lay in pkt.layers:
            if lay.name in ("ip", "ipv6"):
                net = lay
                break
        if net is None or net.damaged:
            return None
        data = pkt.data
        if net.name == "ip":
            offset, more = net.fields["frag_offset"], bool(net.fields["flags"] & 1)
            if not offset and not more:
                return None
            key = (4, net.fields["src"], net.fields["dst"], net.fields["id"], net.fields["proto"])
            start, end = net.offset + net.length, min(len(data), net.offset + net.fields["len"])
        else:
            if "fragment.offset" not in net.fields:
                return None
            offset, more = net.fields["fragment.offset"], net.fields["fragment.more"]
            if not offset and not more:
                return None
            frag = net.offset + net.length - 8  # the fragment header ends the ipv6 layer
            ident = int.from_bytes(data[frag + 4 : frag + 8], "big")
            key = (6, net.fields["src"], net.fields["dst"], ident, net.fields["final_nxt"])
            start, end = (
                net.offset + net.length,
                min(len(data), net.offset + 40 + net.fields["plen"]),
            )
        now = pkt.time
        while self._pending:
            oldest_key, oldest = next(iter(self._pending.items()))
            if (
                oldest[0] + FRAGMENT_TIMEOUT >= now
                and len(self._pending) < MAX_FRAGMENTED_DATAGRAMS
            ):
                break
            del self._pending[oldest_key]
        entry = self._pending.setdefault(key, [now, {}, None, None])
        entry[1].setdefault(offset, bytes(data[start:end]))
        if offset == 0:
            entry[3] = bytes(
                data[net.offset : net.offset + (net.length if net.name == "ip" else 40)]
            )
        if not more:
            entry[2] = offset + (end - start)
        total = entry[2]
        if total is None or entry[3] is None:
            return None
        payload = bytearray()
        for at in sorted(entry[1]):
            if at > len(payload):
                return None  # a hole: wait for the missing fragment
            payload += entry[1][at][len(payload) - at :]
        if len(payload) < total:
            return None
        del self._pending[key]
        header = bytearray(entry[3])
        if key[0] == 4:
            header[2:4] = (len(header) + total).to_bytes(2, "big")
            header[6:8] = b"\x00\x00"
            layers = dissect(bytes(header) + bytes(payload[:total]), 228)
        else:
            header[4:6] = total.to_bytes(2, "big")
            header[6] = key[4]
            layers = dissect(bytes(header) + bytes(payload[:total]), 229)
        at = start
        return tuple(
            replace(
                lay,
                offset=at,
                summary=lay.summary + f" [reassembled from IP fragments, {total} bytes]",
            )
            for lay in layers[1:]
        )


@dataclass(frozen=True, slots=True)
class FollowItem:
    """One piece of a followed flow: a chunk of bytes or a gap, and its direction."""

    direction: Direction
    item: Chunk | Gap


def find_flow(flow: str | int | FlowKey, key: FlowKey, index: int) -> bool:
    """Whether ``flow`` (a FlowKey, a ``client-server`` string or an index) names this flow."""
    if isinstance(flow, int):
        return flow == index
    if isinstance(flow, str):
        if flow.isdigit():
            return int(flow) == index
        try:
            flow = FlowKey.parse(flow, key.proto)
        except ValueError:
            return False
    return {flow.client, flow.server} == {key.client, key.server} and flow.proto == key.proto


def follow(packets: Iterable[Packet], flow: str | int | FlowKey) -> Iterator[FollowItem]:
    """One TCP flow's conversation, both directions, in the order the bytes became readable.

    ``flow`` is a flow index (as ``osilab flows`` numbers them), a ``client-server`` string
    or a :class:`FlowKey`. UDP flows yield one chunk per datagram.
    """
    table = FlowTable()
    chosen: int | None = None
    streams: tuple[StreamReassembler, StreamReassembler] | None = None
    for pkt in packets:
        facts = transport_facts(pkt)
        if facts is None:
            continue
        proto, src, sport, dst, dport, flags, payload_length, seq, payload = facts
        found, direction, _ = table.packet(
            proto, src, sport, dst, dport, flags, pkt.no, pkt.time, pkt.wire_length, payload_length
        )
        if chosen is None and find_flow(flow, found.key, found.index):
            chosen = found.index
            streams = (StreamReassembler(), StreamReassembler())
        if found.index != chosen or streams is None:
            continue
        if proto == "udp":
            if payload:
                yield FollowItem(direction, Chunk(payload, 0, pkt.no, pkt.time, pkt.no))
            continue
        side = 0 if direction is Direction.TO_SERVER else 1
        items = streams[side].segment(
            seq, flags or 0, payload, pkt.no, pkt.time, _missing(pkt, len(payload))
        )
        for item in items:
            yield FollowItem(direction, item)
    if streams is not None:
        for side, direction in ((0, Direction.TO_SERVER), (1, Direction.TO_CLIENT)):
            for item in streams[side].finish():
                yield FollowItem(direction, item)

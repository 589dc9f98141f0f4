"""Packets with stream-aware application layers: what tshark shows, one packet at a time.

A packet seen alone shows only what its own bytes hold: an HTTP request cut over three
TCP segments is three pieces of "data". Wireshark instead reassembles the stream and shows
the request on the segment that completes it. :func:`annotate` does the same on top of the
stream tracker (:mod:`osilab.pipeline.tracker`):

1. each packet goes through the tracker, exactly as :func:`~osilab.pipeline.tracker.conversations`
   feeds it, so the two cannot disagree;
2. a packet of a flow whose protocol was recognised keeps its layers up to TCP or UDP, and
   gains one :class:`~osilab.capture.packet.Layer` per application message it completed
   (:func:`_message_layer`);
3. an IP fragment that completes a datagram gains the transport layer the datagram carried
   (:class:`Fragments`, RFC 791 §3.2 and RFC 8200 §4.5).

What this module must not know: files, printing, or any protocol's syntax.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import replace

from osilab.capture.dissect import dissect
from osilab.capture.layer import Layer
from osilab.capture.packet import Packet
from osilab.layers import place
from osilab.pipeline.tracker import _packet_facts, _Tracker
from osilab.protocols import AppMessage

__all__ = ["annotate", "Fragments", "MAX_FRAGMENTED_DATAGRAMS", "FRAGMENT_TIMEOUT"]

#: Datagrams being put together from IP fragments at once (the oldest is dropped beyond).
MAX_FRAGMENTED_DATAGRAMS = 1024
#: Seconds of capture time a datagram's fragments wait for the rest (Linux ipfrag_time).
FRAGMENT_TIMEOUT = 30.0


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
            found[0], no, pkt.time, pkt.wire_length, found[1], pkt.interface, found[2]
        )
        if application is None or application == "raw":
            yield pkt
            continue
        # The flow's application layers come from the stream: what this one segment alone
        # would show above TCP is not needed, so the dissection stops at the transport.
        # In a tunnel that transport is the inner packet's: the one whose payload the flow has.
        layers = pkt._layers
        if layers is None:
            layers = dissect(pkt.data, pkt.linktype, through_transport=True)
        start = pkt.facts.payload_offset
        for i, lay in enumerate(layers):
            if lay.name in _TRANSPORT and lay.offset + lay.length == start:
                layers = layers[: i + 1]
                break
        top = layers[-1] if layers else None
        offset = top.offset + top.length if top is not None and top.name in _TRANSPORT else len(pkt.data)
        if messages:  # (most segments complete no message)
            key = flow.key
            layers += tuple(
                _message_layer(fm.message, offset)
                for fm in messages
                if fm.flow == key and fm.message.last_packet == no and _shows_as_layer(fm.message)
            )
        yield _rebuilt(pkt, layers)


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

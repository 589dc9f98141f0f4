"""The flow facts of a frame, fast: what layer 4 needs, without building layers.

Why this module exists
----------------------
:class:`~osilab.capture.packet.Packet` and :mod:`osilab.capture.dissect` are built to
*teach*: every header becomes a :class:`~osilab.capture.layer.Layer` with its offset,
length, fields and a one-line summary. That costs a few microseconds per packet. A layer-4
balancer (an AWS NLB) and the stream tracker need far less: the transport protocol, the
two addresses and ports, for TCP the flags, sequence and acknowledgment numbers, and where
the payload is. A replay of a million packets should not pay for summaries nobody reads.

:class:`FlowFacts` holds exactly those facts, one record per frame, and is made in one of
two ways that always agree:

* :func:`quick_facts` reads them with :func:`struct.unpack_from` at offsets computed from
  the link type: Ethernet II (with any number of 802.1Q / 802.1ad VLAN tags), Linux cooked
  capture v1 and v2 (SLL, SLL2), BSD loopback (null, host byte order; loop, network byte
  order) and raw IP (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6); IPv4 (RFC 791) and IPv6
  (RFC 8200) without extension headers; TCP (RFC 9293 §3.1) and UDP (RFC 768). The common
  frame, Ethernet + IPv4 without options + TCP, is one ``struct`` call.
* :func:`layer_facts` reads them from the dissector's layers. Anything unusual (IP options
  cut short, IPv6 extension headers, IP-in-IP tunnels, a header cut by the snap length, a
  damaged record) goes this way, so the fast code stays short and the rare cases exact.

The promise: **the same facts the full dissector gives**. ``tests/test_fast.py`` checks it
packet by packet on every bundled capture and on hand-built frames of every link type.
``damaged`` follows the rule an L4 balancer needs: set when the record could not be read
whole, the IP header is damaged, or the TCP/UDP header is damaged before its ports (and,
for TCP, its flags and sequence number). Damage *after* those (options or payload cut by
the snap length) hides nothing an L4 balancer uses: the packet was whole on the wire.

Speed: a :class:`FlowFacts` is a :class:`~typing.NamedTuple` (a frozen record with named
fields) because a frozen dataclass costs about ten times more to make (1.7 µs against
0.16 µs here), which an NLB replay of ~400k packets a second would notice.

What this module must not know: balancers, streams, HTTP. It reads; callers decide.

Example:
    >>> import osilab
    >>> from osilab.capture.facts import flow_facts
    >>> for f in flow_facts(osilab.read("captures/nlb/nlb.pcapng")):      # doctest: +SKIP
    ...     print(f.no, f.proto, f"{f.src}:{f.src_port} -> {f.dst}:{f.dst_port}")
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from osilab.capture.dissect import dissect
from osilab.capture.files import ReadCallback, Record
from osilab.capture.layer import IP_TEXT, Layer, ip_text
from osilab.capture.tunnels import TUNNEL_ETHERTYPES, UDP_TUNNEL_PORTS, tunnel_of

if TYPE_CHECKING:
    from osilab.capture.reader import Capture

__all__ = [
    "FlowFacts", "FLOW_FACTS_FIELDS", "flow_facts", "quick_facts", "layer_facts", "missing_bytes",
]  # fmt: skip


class FlowFacts(NamedTuple):
    """One frame's flow facts, as the full dissector would give them.

    ``proto`` is ``"tcp"`` or ``"udp"`` when the frame carries one (the first TCP/UDP
    header above the first IP header), else ``None``; ``src`` is ``None`` when the frame
    carries no IP header at all. The TCP fields are ``None`` unless ``proto`` is TCP.
    """

    no: int  #: the frame number, from 1, as Wireshark counts
    time: float  #: capture time, seconds since the epoch
    interface: int  #: the capture interface (hop) the frame was seen on, from 0
    proto: str | None  #: "tcp", "udp", or None (not TCP/UDP, or not IP at all)
    src: str | None  #: source IP address as text
    src_port: int | None
    dst: str | None
    dst_port: int | None
    tcp_flags: int | None  #: the 9 TCP flag bits (FIN 0x01 ... NS 0x100)
    tcp_seq: int | None  #: sequence number (RFC 9293 SEG.SEQ)
    tcp_ack: int | None  #: acknowledgment number (SEG.ACK)
    payload_offset: int  #: where the TCP/UDP payload starts in ``data`` (its end when none)
    payload_length: int  #: payload bytes captured, bounded by the IP length (no padding)
    missing: int  #: TCP payload bytes the snap length cut off (the IP length says they were sent)
    wire_length: int  #: the frame's length on the wire
    damaged: str | None  #: why the facts above cannot be trusted, or None
    data: bytes  #: the frame's captured bytes
    #: the tunnels the flow's packet came through (:func:`~osilab.capture.tunnels.tunnel_of`,
    #: e.g. ``"vxlan 42 192.0.2.1-192.0.2.2"``), ``""`` when none: part of the flow's hop
    tunnel: str = ""

    @property
    def payload(self) -> bytes:
        """The TCP or UDP payload bytes."""
        start = self.payload_offset
        return self.data[start : start + self.payload_length]

    def __repr__(self) -> str:  # without the frame bytes
        return (f"FlowFacts(#{self.no} if{self.interface} {self.proto} {self.src}:{self.src_port}"
                f" -> {self.dst}:{self.dst_port} flags={self.tcp_flags} seq={self.tcp_seq}"
                f" payload={self.payload_length} damaged={self.damaged!r}"
                + (f" tunnel={self.tunnel!r})" if self.tunnel else ")"))  # fmt: skip


#: The field names of :class:`FlowFacts`, in order.
FLOW_FACTS_FIELDS: tuple[str, ...] = FlowFacts._fields

_facts = tuple.__new__  # FlowFacts(...) without the keyword handling: the hot path
_VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100))
_IPV6_EXTENSIONS = frozenset((0, 43, 44, 51, 60, 135))
_TUNNELS = frozenset((4, 41, 47))  # IP in IP, IPv6 in IP, GRE: the dissector follows them
#: UDP ports of tunnels (VXLAN, GENEVE, GTP-U, Teredo...): the flow is the inner packet's.
_UDP_TUNNELS = frozenset(UDP_TUNNEL_PORTS)
#: EtherTypes (and 802.3 lengths) whose frames may carry IP further in: MPLS, PPPoE, LLC/SNAP.
_LINK_TUNNELS = frozenset(TUNNEL_ETHERTYPES)
_TCP = struct.Struct("!HHIIH").unpack_from
_UDP = struct.Struct("!HH").unpack_from
# Ethernet + IPv4 without options + TCP, the common case, in one call from offset 12:
# the EtherType; IP version+IHL, total length, flags+fragment offset, protocol, addresses;
# TCP ports, seq, ack, offset+flags. Read before it is known to be that case (the
# fields then say whether it is): cheaper than testing bytes one at a time first.
_ETH_IPV4_TCP = struct.Struct("!HBxH2xHxB2x4s4sHHIIH").unpack_from


def quick_facts(no: int, time: float, linktype: int, data: bytes, wire_length: int,
                interface: int = 0) -> FlowFacts | None:  # fmt: skip
    """The facts of an undamaged frame read at fixed offsets, or None: ask the dissector.

    None means only "not a frame this reader handles" (see the module docstring); every
    frame it does answer for gets the facts :func:`layer_facts` would give.
    """
    record = (no, time, linktype, data, wire_length, interface, None)
    return next(_read((record,), _none))


def _none(record: Record) -> None:
    return None


def _dissected(record: Record) -> FlowFacts:
    no, time, linktype, data, wire_length, interface, problem = record
    return layer_facts(no, time, interface, data, wire_length, dissect(data, linktype), problem)


def _read(records: Iterable[Record], rare: Callable[[Record], FlowFacts | None]) -> Iterator[FlowFacts | None]:
    """The fast parser, one item per record: its facts, or ``rare(record)`` for a damaged
    record or a frame it leaves to the dissector. One loop over many records, so that the
    names it uses are looked up once (a function call per packet costs the NLB 10%)."""
    text = IP_TEXT
    make = _facts
    eth_ipv4_tcp, unpack_tcp, unpack_udp = _ETH_IPV4_TCP, _TCP, _UDP
    udp_tunnels = _UDP_TUNNELS
    for record in records:
        no, time, linktype, data, wire_length, interface, problem = record
        if problem is not None:
            yield rare(record)
            continue
        end = len(data)
        # -- the common case first: Ethernet II, IPv4 with a 20-byte header, TCP ---------
        if linktype == 1 and end >= 54:
            (ethertype, version_ihl, total, flags_frag, proto, raw_src, raw_dst, sport, dport, seq,
             ack, offset_flags) = eth_ipv4_tcp(data, 12)  # fmt: skip
            ip_end = 14 + total if 14 + total < end else end
            header = (offset_flags >> 12) * 4
            if (ethertype == 0x0800 and version_ihl == 0x45 and proto == 6 and total >= 20
                    and not flags_frag & 0x3FFF and header >= 20 and ip_end - 34 >= header):  # fmt: skip
                start = 34 + header
                size = ip_end - start
                missing = total - 20 - header - size if wire_length > end else 0
                yield make(FlowFacts, (
                    no, time, interface, "tcp", text.get(raw_src) or ip_text(raw_src), sport,
                    text.get(raw_dst) or ip_text(raw_dst), dport, offset_flags & 0x01FF, seq, ack,
                    start, size, missing if missing > 0 else 0, wire_length, None, data, ""))  # fmt: skip
                continue
        # -- link layer: find the EtherType (or the IP version) and where IP starts ------
        if linktype == 1:  # Ethernet II
            if end < 14:
                yield rare(record)
                continue
            ethertype = (data[12] << 8) | data[13]
            off = 14
            while ethertype in _VLAN_TYPES and end - off >= 4:  # 802.1Q tags: 4 bytes each
                ethertype = (data[off + 2] << 8) | data[off + 3]
                off += 4
            if ethertype in _VLAN_TYPES:
                yield rare(record)
                continue
        elif linktype in (101, 12, 14, 228, 229):  # raw IP: the version nibble decides
            if not end:
                yield rare(record)
                continue
            version = 4 if linktype == 228 else 6 if linktype == 229 else data[0] >> 4
            ethertype = 0x0800 if version == 4 else 0x86DD if version == 6 else 0
            off = 0
        elif linktype == 113 or linktype == 276:  # Linux cooked capture v1 / v2
            off = 16 if linktype == 113 else 20
            at = 14 if linktype == 113 else 0
            if end < off or ((data[at] << 8) | data[at + 1]) in _VLAN_TYPES:
                yield rare(record)
                continue
            ethertype = (data[at] << 8) | data[at + 1]
        elif linktype in (0, 108):  # BSD loopback: an address family, not an EtherType
            if end < 4:
                yield rare(record)
                continue
            family = int.from_bytes(data[:4], "big")
            if linktype == 0:  # host byte order: take whichever reading is small
                little = int.from_bytes(data[:4], "little")
                family = little if little < 256 else family
            ethertype = 0x0800 if family == 2 else 0x86DD if family in (10, 24, 28, 30) else 0
            off = 4
        else:
            yield rare(record)
            continue
        # -- network layer ---------------------------------------------------------------
        if ethertype == 0x0800:
            version_ihl = data[off] if end - off >= 20 else 0
            header = (version_ihl & 0x0F) * 4
            total = (data[off + 2] << 8) | data[off + 3] if version_ihl else 0
            if version_ihl >> 4 != 4 or header < 20 or end - off < header or total < header:
                yield rare(record)
                continue
            ip_end = off + total if off + total < end else end
            carried = total - header
            raw = data[off + 12 : off + 16]
            src = text.get(raw) or ip_text(raw)
            raw = data[off + 16 : off + 20]
            dst = text.get(raw) or ip_text(raw)
            proto = data[off + 9]
            if ((data[off + 6] << 8) | data[off + 7]) & 0x3FFF:  # MF or an offset: a fragment
                proto = -1  # no transport header to read here
            off += header
        elif ethertype == 0x86DD:
            if end - off < 40 or data[off] >> 4 != 6 or data[off + 6] in _IPV6_EXTENSIONS:
                yield rare(record)
                continue
            carried = (data[off + 4] << 8) | data[off + 5]
            proto = data[off + 6]
            ip_end = off + 40 + carried if carried and off + 40 + carried < end else end
            raw = data[off + 8 : off + 24]
            src = text.get(raw) or ip_text(raw)
            raw = data[off + 24 : off + 40]
            dst = text.get(raw) or ip_text(raw)
            off += 40
        elif ethertype in _LINK_TUNNELS or ethertype <= 1500:
            yield rare(record)
            continue
        else:
            yield _no_transport(no, time, interface, None, None, wire_length, data)
            continue
        # -- transport layer -------------------------------------------------------------
        if proto == 6:
            if ip_end - off < 20:
                yield rare(record)
                continue
            sport, dport, seq, ack, offset_flags = unpack_tcp(data, off)
            header = (offset_flags >> 12) * 4
            if header < 20 or ip_end - off < header:
                yield rare(record)
                continue
            start = off + header
            size = ip_end - start
            missing = carried - header - size if wire_length > end else 0
            yield make(FlowFacts, (no, time, interface, "tcp", src, sport, dst, dport,
                                   offset_flags & 0x01FF, seq, ack, start, size,
                                   missing if missing > 0 else 0, wire_length, None, data, ""))  # fmt: skip
        elif proto == 17:
            length = (data[off + 4] << 8) | data[off + 5] if ip_end - off >= 8 else 0
            if length < 8:
                yield rare(record)
                continue
            sport, dport = unpack_udp(data, off)
            if dport in udp_tunnels or sport in udp_tunnels:
                yield rare(record)
                continue
            udp_end = off + length if off + length < ip_end else ip_end
            yield make(FlowFacts, (no, time, interface, "udp", src, sport, dst, dport, None, None,
                                   None, off + 8, udp_end - off - 8, 0, wire_length, None, data, ""))  # fmt: skip
        elif proto in _TUNNELS:
            yield rare(record)
        else:  # a fragment, No Next Header (59), ICMP...: addresses, no ports
            yield _no_transport(no, time, interface, src, dst, wire_length, data)


def _no_transport(no: int, time: float, interface: int, src: str | None, dst: str | None,
                  wire_length: int, data: bytes) -> FlowFacts:  # fmt: skip
    return _facts(FlowFacts, (no, time, interface, None, src, None, dst, None, None, None, None,
                              len(data), 0, 0, wire_length, None, data, ""))  # fmt: skip


def layer_facts(no: int, time: float, interface: int, data: bytes, wire_length: int,
                layers: Sequence[Layer], read_error: str | None = None) -> FlowFacts:  # fmt: skip
    """The facts from a dissected frame's layers (the slow path, and the reference).

    The flow is the innermost packet's: the network layer is the first ``ip``/``ipv6``
    layer with addresses at the deepest tunnel depth that has one (:attr:`Layer.depth`),
    the transport the first ``tcp``/``udp`` layer with ports after it at that depth. A
    VXLAN-mirrored TCP segment is the inner TCP connection's, as on the wire it came from;
    an ICMP error's quoted headers are not the packet's own (the walk stops at ICMP).
    The tunnels around that packet are ``tunnel`` (:func:`~osilab.capture.tunnels.tunnel_of`):
    the same inner connection in two tunnels is two flows.
    """
    net = trans = None
    deepest = -1
    searching = False  # still looking for the transport header of the packet ``net`` opens
    for layer in layers:
        name = layer.name
        if (name == "ip" or name == "ipv6") and layer.depth > deepest and "src" in layer.fields:
            net, deepest, trans, searching = layer.fields, layer.depth, None, True
        elif searching and layer.depth == deepest:
            if (name == "tcp" or name == "udp") and "srcport" in layer.fields:
                trans, searching = layer, False
            elif name == "icmp" or name == "icmpv6":
                searching = False
    damaged = read_error or _l4_damage(layers)
    src = net["src"] if net is not None else None
    dst = net.get("dst") if net is not None else None
    tunnel = tunnel_of(layers, deepest) if deepest > 0 else ""
    if trans is None:
        return FlowFacts(no, time, interface, None, src, None, dst, None, None, None, None,
                         len(data), 0, 0, wire_length, damaged, data, tunnel)  # fmt: skip
    fields = trans.fields
    start = trans.offset + trans.length
    if trans.name == "udp":
        return FlowFacts(no, time, interface, "udp", src, fields["srcport"], dst,
                         fields.get("dstport"), None, None, None, start,
                         fields.get("payload_len", 0), 0, wire_length, damaged, data, tunnel)  # fmt: skip
    size = fields.get("len", 0)
    return FlowFacts(no, time, interface, "tcp", src, fields["srcport"], dst, fields.get("dstport"),
                     fields.get("flags", 0), fields.get("seq", 0), fields.get("ack", 0), start,
                     size, missing_bytes(layers, data, wire_length, size), wire_length, damaged, data,
                     tunnel)  # fmt: skip


def _l4_damage(layers: Sequence[Layer]) -> str | None:
    """Damage that hides an L4 fact: the IP header, or TCP/UDP before its ports (and flags)."""
    for layer in layers:
        if not layer.damaged:
            continue
        if layer.name in ("ip", "ipv6"):
            return f"{layer.name}: {layer.damaged}"
        if layer.name in ("tcp", "udp"):
            needed = ("srcport", "dstport") + (("flags", "seq") if layer.name == "tcp" else ())
            if any(key not in layer.fields for key in needed):
                return f"{layer.name}: {layer.damaged}"
    return None


def missing_bytes(
    layers: Sequence[Layer], data: bytes, wire_length: int, payload_length: int
) -> int:
    """TCP payload bytes the capture cut off (snap length), from the IP length fields.

    ``payload_length`` is the payload the frame still holds. The IPv4 total length
    (RFC 791) or the IPv6 payload length (RFC 8200) says what was sent; what is left once
    the IP and TCP headers and the captured payload are taken off never reached the file.
    Used by the slow path here and by the stream tracker on dissected packets.
    """
    if wire_length <= len(data):
        return 0
    tcp = next((layer for layer in layers if layer.name == "tcp"), None)
    net = next((layer for layer in layers if layer.name == "ip"), None) or next(
        (layer for layer in layers if layer.name == "ipv6"), None)  # fmt: skip
    if tcp is None or net is None:
        return 0
    if net.name == "ip":
        carried = net.fields.get("len", 0) - net.fields.get("hdr_len", 20)
    else:
        carried = net.fields.get("plen", 0) - (net.length - 40)
    return max(0, carried - tcp.fields.get("hdr_len", 20) - payload_length)


def flow_facts(capture: Capture, *, progress: ReadCallback | None = None) -> Iterator[FlowFacts]:
    """Every frame's :class:`FlowFacts`, in capture order, without building packets.

    One item for **every** frame, including non-IP frames (``src`` is ``None``) and IP
    packets that carry neither TCP nor UDP (``proto`` is ``None``), so that a consumer can
    account for every packet. A damaged record comes out with ``damaged`` set; a frame
    the fast parser leaves to the dissector, with the dissector's facts. Memory stays
    constant: one read buffer and a bounded cache of address text.
    """
    return _read(capture.raw_records(progress=progress), _dissected)  # type: ignore[return-value]

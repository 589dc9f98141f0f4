"""The fast path for layer-4 work: each packet's flow facts, without building layers.

Why this module exists
----------------------
:class:`~osilab.capture.packet.Packet` and :mod:`osilab.capture.dissect` are built to
*teach*: every header becomes a :class:`~osilab.capture.packet.Layer` with its offset,
length, fields and a one-line summary. That costs a few microseconds per packet. A layer-4
balancer (an AWS NLB) needs far less: the transport protocol, the two addresses, the two
ports, and for TCP the flags and the sequence number. An NLB replay of a million packets
should not pay for summaries nobody reads.

:func:`flow_tuples` gives exactly those facts, one plain tuple per packet, read with
:func:`struct.unpack_from` at offsets computed from the link type:

* link: Ethernet II (with any number of 802.1Q / 802.1ad VLAN tags), Linux cooked
  capture v1 and v2 (SLL, SLL2), BSD loopback (null, host byte order; loop, network
  byte order) and raw IP (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6);
* network: IPv4 (RFC 791) and IPv6 (RFC 8200) without extension headers;
* transport: TCP (RFC 9293 §3.1) and UDP (RFC 768).

The promise: **the same facts the full dissector gives**. For every packet, the tuple
holds what ``Packet.proto``, ``.ip_src``, ``.src_port``, ``.ip_dst``, ``.dst_port``,
``.tcp_flags`` and ``.tcp_seq`` would say, and ``damaged`` is set exactly when the full
stack shows damage that hides those facts (a damaged record, a broken IP header, a TCP
or UDP header cut before its ports). ``tests/test_fast.py`` checks this packet by packet
on every bundled capture. Anything unusual (IP options cut short, IPv6 extension
headers, IP-in-IP tunnels, fragments of IPv6, a header cut by the snap length, a damaged
record) is handed to the full dissector for that one packet, so the fast code stays short
and the rare cases stay exact.

The record walk is fast too: :func:`fast_records` reads pcap and pcapng with one
:func:`struct.unpack_from` per record and one copy of the frame bytes, in 1 MiB reads
(constant memory). When the file holds anything it does not expect (a damaged block, a
cut record, a gzip file, an obsolete pcapng block type), it hands over to the full
reader, :meth:`Capture.records`, which resynchronises and records the errors; packets
already given are not given twice.

What this module must not know: balancers, streams, HTTP. It reads; callers decide.

Example:
    >>> from osilab.capture import read
    >>> from osilab.capture.fast import flow_tuples
    >>> for no, time, proto, src, sport, dst, dport, flags, seq, damaged in flow_tuples(
    ...         read("captures/nlb/nlb.pcapng")):      # doctest: +SKIP
    ...     print(no, proto, f"{src}:{sport} -> {dst}:{dport}")
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from osilab.capture.reader import MAX_RECORD

if TYPE_CHECKING:
    from osilab.capture.packet import Packet
    from osilab.capture.reader import Capture

__all__ = [
    "FLOW_TUPLE_FIELDS",
    "FlowTuple",
    "Record",
    "address_text",
    "fast_records",
    "flow_tuples",
    "packet_flow_tuple",
    "raw_records",
]

#: The fields of one :func:`flow_tuples` item, in order.
FLOW_TUPLE_FIELDS = (
    "no",  # the frame number, from 1, as Wireshark counts
    "time",  # capture time, seconds since the epoch
    "proto",  # "tcp", "udp", or None (not TCP/UDP, or not IP at all)
    "src",  # source IP address as text, None when the frame carries no IP header
    "src_port",  # None unless proto is "tcp" or "udp"
    "dst",
    "dst_port",
    "tcp_flags",  # the 9 TCP flag bits (FIN 0x01 ... NS 0x100); None unless TCP
    "tcp_seq",  # the TCP sequence number; None unless TCP
    "damaged",  # why the facts above cannot be trusted (a reason), or None
)

#: ``(no, time, proto, src, src_port, dst, dst_port, tcp_flags, tcp_seq, damaged)``
FlowTuple = tuple[
    int,
    float,
    str | None,
    str | None,
    int | None,
    str | None,
    int | None,
    int | None,
    int | None,
    str | None,
]
#: ``(no, time, linktype, data, wire_length, interface)``, as :meth:`Capture.records` gives.
Record = tuple[int, float, int, bytes, int, int]
_WalkItem = tuple[int, float, int, bytes, int, int, str | None]

_CHUNK = 1 << 20
_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}  # fmt: skip
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


class _Unusual(Exception):
    """The fast walk met something only the full reader handles (internal signal)."""


# ---------------------------------------------------------------------------------------
# The record walk
# ---------------------------------------------------------------------------------------


#: Called with the number of bytes just read from the file (about once per MiB): how a
#: progress bar at the edge follows the walk without this module knowing of bars.
ReadCallback = Callable[[int], object]


def _walk(capture: Capture, progress: ReadCallback | None = None) -> Iterator[_WalkItem]:
    """Records with their read problem: the fast walk, then the full reader if needed."""
    if progress is None:
        progress = getattr(capture, "progress", None)
    with open(capture.path, "rb") as handle:
        magic = handle.read(4)
    last = 0
    if magic in _PCAP_MAGICS or magic == _PCAPNG_SHB:
        walker = _pcap_walk if magic in _PCAP_MAGICS else _pcapng_walk
        try:
            for record in walker(capture.path, progress):
                last = record[0]
                yield record
            return
        except _Unusual:
            pass  # hand over to the full reader below, after the records already given
    for pkt in capture:  # the full reader: damaged records come out with their read_error
        if pkt.no > last:
            yield (
                pkt.no,
                pkt.time,
                pkt.linktype,
                pkt.data,
                pkt.wire_length,
                pkt.interface,
                pkt.read_error,
            )


class _Window:
    """A sliding window over a file, so that a record can be read whole from ``data``."""

    __slots__ = ("handle", "data", "eof", "progress")

    def __init__(self, handle: BinaryIO, progress: ReadCallback | None = None) -> None:
        self.handle = handle
        self.data = b""
        self.eof = False
        self.progress = progress

    def need(self, pos: int, n: int, *, end_ok: bool = False) -> int:
        """Slide so that ``data[pos:pos+n]`` is there; returns the new ``pos``.

        Returns -1 when the file ends exactly at ``pos`` and ``end_ok`` (a clean end);
        raises :class:`_Unusual` when it ends inside what was asked for.
        """
        while len(self.data) - pos < n:
            if self.eof:
                if end_ok and pos == len(self.data):
                    return -1
                raise _Unusual("the file ends inside a record")
            more = self.handle.read(max(_CHUNK, n))
            if not more:
                self.eof = True
                continue
            if self.progress is not None:
                self.progress(len(more))
            self.data = self.data[pos:] + more
            pos = 0
        return pos


def _pcap_walk(path: str, progress: ReadCallback | None = None) -> Iterator[_WalkItem]:
    with open(path, "rb", buffering=0) as handle:
        window = _Window(handle, progress)
        window.need(0, 24)
        order, resolution = _PCAP_MAGICS[window.data[:4]]
        snaplen, linktype = struct.unpack_from(order + "II", window.data, 16)
        linktype &= 0x0FFFFFFF  # the top bits may carry FCS information
        limit = max(MAX_RECORD, snaplen if snaplen < 16 * MAX_RECORD else 0)
        header = struct.Struct(order + "IIII").unpack_from
        pos = 24
        no = 0
        while True:
            if len(window.data) - pos < 16:
                pos = window.need(pos, 16, end_ok=True)
                if pos < 0:
                    return
            seconds, fraction, caplen, wirelen = header(window.data, pos)
            if caplen > limit:
                raise _Unusual("a record header claims more than the maximum")
            start = pos + 16
            if len(window.data) - start < caplen:
                start = window.need(start, caplen)
            pos = start + caplen
            no += 1
            yield (no, seconds + fraction * resolution, linktype, window.data[start:pos],
                   wirelen if wirelen > caplen else caplen, 0, None)  # fmt: skip


def _pcapng_walk(path: str, progress: ReadCallback | None = None) -> Iterator[_WalkItem]:
    with open(path, "rb", buffering=0) as handle:
        window = _Window(handle, progress)
        pos = 0
        no = 0
        order = "<"
        head = struct.Struct("<II").unpack_from
        epb = struct.Struct("<IIIII").unpack_from
        word = struct.Struct("<I").unpack_from
        section: list[
            tuple[int, float, int]
        ] = []  # per IDB of this section: linktype, resolution, index
        described = 0
        while True:
            if len(window.data) - pos < 12:
                pos = window.need(pos, 12, end_ok=True)
                if pos < 0:
                    return
            data = window.data
            if data[pos : pos + 4] == _PCAPNG_SHB:  # a Section Header Block sets the byte order
                bom = data[pos + 8 : pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    order = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    order = ">"
                else:
                    raise _Unusual("unknown byte-order magic")
                head = struct.Struct(order + "II").unpack_from
                epb = struct.Struct(order + "IIIII").unpack_from
                word = struct.Struct(order + "I").unpack_from
                section = []
            block_type, length = head(data, pos)
            if length < 12 or length % 4 or length > 16 * MAX_RECORD:
                raise _Unusual("impossible block length")
            if len(data) - pos < length:
                pos = window.need(pos, length)
                data = window.data
            if word(data, pos + length - 4)[0] != length:
                raise _Unusual("block lengths disagree")
            if block_type == 6:  # Enhanced Packet Block
                if length < 32:
                    raise _Unusual("packet block too short")
                iface_id, ts_high, ts_low, caplen, wirelen = epb(data, pos + 8)
                if iface_id >= len(section) or caplen > length - 32:
                    raise _Unusual("packet block names an unknown interface or is cut")
                linktype, resolution, index = section[iface_id]
                no += 1
                yield (no, ((ts_high << 32) | ts_low) * resolution, linktype,
                       data[pos + 28 : pos + 28 + caplen], wirelen if wirelen > caplen else caplen,
                       index, None)  # fmt: skip
            elif block_type == 1:  # Interface Description Block
                if length < 20:
                    raise _Unusual("interface description block too short")
                linktype = struct.unpack_from(order + "H", data, pos + 8)[0]
                resolution = _tsresol(data[pos + 16 : pos + length - 4], order)
                section.append((linktype, resolution, described))
                described += 1
            elif block_type in (2, 3):  # obsolete Packet Block, Simple Packet Block: rare
                raise _Unusual("packet block type the fast walk leaves to the full reader")
            pos += length


def _tsresol(options: bytes, order: str) -> float:
    """The if_tsresol option (code 9) of an IDB: power of 10, or of 2 with the high bit."""
    p = 0
    while p + 4 <= len(options):
        code, size = struct.unpack_from(order + "HH", options, p)
        if code == 0:
            break
        if code == 9 and size >= 1:
            value = options[p + 4]
            return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0**-value
        p += 4 + ((size + 3) & ~3)
    return 1e-6


def raw_records(
    capture: Capture, *, progress: ReadCallback | None = None
) -> Iterator[tuple[int, float, int, bytes, int, int, str | None]]:
    """Every record, damaged ones included: :func:`fast_records` items plus ``read_error``.

    ``(no, time, linktype, data, wire_length, interface, read_error)``; ``read_error`` is
    the full reader's reason for a damaged record (what ``Packet.read_error`` holds), else
    ``None``. For a consumer that builds its own view of every packet (the streams
    stage's fast path) and must see the same packets as iterating the capture gives.
    """
    return _walk(capture, progress)


def fast_records(capture: Capture, *, progress: ReadCallback | None = None) -> Iterator[Record]:
    """The same records as :meth:`Capture.records`, read faster.

    ``(no, time, linktype, data, wire_length, interface)`` per frame; damaged records are
    skipped (the full reader lists them in ``capture.errors``). Unlike
    :meth:`Capture.records`, the fast walk does not fill ``capture.interfaces`` or keep
    pcapng comments: use the full reader for those.
    """
    for record in _walk(capture, progress):
        if record[6] is None:
            yield record[:6]


# ---------------------------------------------------------------------------------------
# The flow facts
# ---------------------------------------------------------------------------------------

#: Address text, cached: a capture holds few distinct addresses (bounded all the same).
_ADDRESS_TEXT: dict[bytes, str] = {}
_ADDRESS_CACHE_LIMIT = 65_536
_VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100))
_TUNNELS = frozenset((4, 41))  # IP in IP, IPv6 in IP: the full dissector follows them
_IPV6_EXTENSIONS = frozenset((0, 43, 44, 51, 60, 135))
_NON_IP = (
    None,
    None,
    None,
    None,
    None,
    None,
    None,
)  # proto, src, src_port, dst, dst_port, flags, seq


def address_text(raw: bytes) -> str:
    """The text of a packed IPv4 or IPv6 address, from a bounded cache shared by every
    fast path (a capture holds few distinct addresses, and each is formatted once)."""
    text = _ADDRESS_TEXT.get(raw)
    if text is None:
        text = str(ipaddress.ip_address(raw))
        if len(_ADDRESS_TEXT) < _ADDRESS_CACHE_LIMIT:
            _ADDRESS_TEXT[raw] = text
    return text


def packet_flow_tuple(packet: Packet) -> FlowTuple:
    """The flow facts of a fully dissected :class:`Packet` (the slow path and the reference).

    ``damaged`` follows the rule an L4 balancer needs: a record the reader could not read
    whole, a damaged IP header, or a TCP/UDP header damaged before its ports (and, for TCP,
    its flags and sequence number). Damage *after* those (options or payload cut by the snap
    length) hides nothing an L4 balancer uses: the packet was whole on the wire.
    """
    damaged = packet.read_error
    if not damaged:
        for layer in packet.layers:
            if not layer.damaged:
                continue
            if layer.name in ("ip", "ipv6"):
                damaged = f"{layer.name}: {layer.damaged}"
                break
            if layer.name in ("tcp", "udp"):
                needed = ("srcport", "dstport") + (("flags", "seq") if layer.name == "tcp" else ())
                if any(key not in layer.fields for key in needed):
                    damaged = f"{layer.name}: {layer.damaged}"
                    break
    return (packet.no, packet.time, packet.proto, packet.ip_src, packet.src_port, packet.ip_dst,
            packet.dst_port, packet.tcp_flags, packet.tcp_seq, damaged)  # fmt: skip


def _slow(no: int, time: float, linktype: int, data: bytes, problem: str | None) -> FlowTuple:
    from osilab.capture.packet import Packet

    return packet_flow_tuple(Packet(no, time, data, linktype, read_error=problem))


def flow_tuples(capture: Capture, *, progress: ReadCallback | None = None) -> Iterator[FlowTuple]:
    """Every packet's flow facts, in capture order, without building layers.

    Yields ``(no, time, proto, src, src_port, dst, dst_port, tcp_flags, tcp_seq, damaged)``
    (:data:`FLOW_TUPLE_FIELDS`) for **every** frame, including non-IP frames (``src`` is
    ``None``) and IP packets that carry neither TCP nor UDP (``proto`` is ``None``, the
    addresses are set), so that a consumer can account for every packet. A damaged
    record comes out with ``damaged`` set and the facts ``None``.

    These are the facts the full dissector gives (see the module docstring); the packet
    numbers are Wireshark's. Memory stays constant: one read buffer and a bounded cache
    of address text.
    """
    unpack_tcp = struct.Struct("!HHIIH").unpack_from
    unpack_udp = struct.Struct("!HHH").unpack_from
    # Ethernet + IPv4 without options + TCP, the common case, in one call from offset 14:
    # IP total length, flags+fragment offset, addresses; TCP ports, sequence, offset+flags.
    unpack_eth_ipv4_tcp = struct.Struct("!2xH2xH4x4s4sHHI4xH").unpack_from
    text = _ADDRESS_TEXT
    address = address_text
    for no, time, linktype, data, _wire, _iface, problem in _walk(capture, progress):
        if problem:  # a damaged record: the full reader's reason, the full dissector's facts
            yield _slow(no, time, linktype, data, problem)
            continue
        end = len(data)
        # -- the common case first: Ethernet II, IPv4 with a 20-byte header, TCP ----------
        if (
            linktype == 1
            and end >= 54
            and data[14] == 0x45
            and data[23] == 6
            and data[12:14] == b"\x08\x00"
        ):
            total_length, flags_frag, raw_src, raw_dst, src_port, dst_port, seq, offset_flags = (
                unpack_eth_ipv4_tcp(data, 14)
            )
            ip_end = 14 + total_length if 14 + total_length < end else end
            if (
                total_length >= 20
                and not flags_frag & 0x3FFF  # not a fragment
                and offset_flags >> 12 >= 5
                and ip_end - 34 >= (offset_flags >> 12) * 4  # the whole TCP header is there
            ):
                src = text.get(raw_src) or address(raw_src)
                dst = text.get(raw_dst) or address(raw_dst)
                yield (
                    no,
                    time,
                    "tcp",
                    src,
                    src_port,
                    dst,
                    dst_port,
                    offset_flags & 0x01FF,
                    seq,
                    None,
                )
                continue
        # -- link layer: find the EtherType (or the IP version) and where IP starts ------
        if linktype == 1:  # Ethernet II
            if end < 14:
                yield _slow(no, time, linktype, data, problem)
                continue
            ethertype = (data[12] << 8) | data[13]
            off = 14
            while ethertype in _VLAN_TYPES and end - off >= 4:  # 802.1Q tags: 4 bytes each
                ethertype = (data[off + 2] << 8) | data[off + 3]
                off += 4
            if ethertype in _VLAN_TYPES:
                yield _slow(no, time, linktype, data, problem)
                continue
        elif linktype in (101, 12, 14, 228, 229):  # raw IP: the version nibble decides
            if not end:
                yield _slow(no, time, linktype, data, problem)
                continue
            version = data[0] >> 4
            if linktype == 228:
                version = 4
            elif linktype == 229:
                version = 6
            ethertype = 0x0800 if version == 4 else 0x86DD if version == 6 else 0
            off = 0
        elif linktype == 113 or linktype == 276:  # Linux cooked capture v1 / v2
            header = 16 if linktype == 113 else 20
            if end < header:
                yield _slow(no, time, linktype, data, problem)
                continue
            at = 14 if linktype == 113 else 0
            ethertype = (data[at] << 8) | data[at + 1]
            off = header
            if ethertype in _VLAN_TYPES:
                yield _slow(no, time, linktype, data, problem)
                continue
        elif linktype in (0, 108):  # BSD loopback: an address family, not an EtherType
            if end < 4:
                yield _slow(no, time, linktype, data, problem)
                continue
            family = int.from_bytes(data[:4], "big")
            if linktype == 0:
                little = int.from_bytes(data[:4], "little")
                family = little if little < 256 else family
            ethertype = 0x0800 if family == 2 else 0x86DD if family in (10, 24, 28, 30) else 0
            off = 4
        else:
            yield _slow(no, time, linktype, data, problem)
            continue
        # -- network layer ---------------------------------------------------------------
        if ethertype == 0x0800:
            if end - off < 20:
                yield _slow(no, time, linktype, data, problem)
                continue
            version_ihl = data[off]
            header_length = (version_ihl & 0x0F) * 4
            total_length = (data[off + 2] << 8) | data[off + 3]
            if (version_ihl >> 4 != 4 or header_length < 20 or end - off < header_length
                    or total_length < header_length):  # fmt: skip
                yield _slow(no, time, linktype, data, problem)
                continue
            ip_end = off + total_length if off + total_length < end else end
            raw = data[off + 12 : off + 16]
            src = text.get(raw) or address(raw)
            raw = data[off + 16 : off + 20]
            dst = text.get(raw) or address(raw)
            if ((data[off + 6] << 8) | data[off + 7]) & 0x3FFF:  # MF flag or an offset: a fragment
                yield no, time, None, src, None, dst, None, None, None, None
                continue
            proto = data[off + 9]
            off += header_length
        elif ethertype == 0x86DD:
            if end - off < 40 or data[off] >> 4 != 6:
                yield _slow(no, time, linktype, data, problem)
                continue
            payload_length = (data[off + 4] << 8) | data[off + 5]
            proto = data[off + 6]
            if proto in _IPV6_EXTENSIONS:
                yield _slow(no, time, linktype, data, problem)
                continue
            ip_end = (
                off + 40 + payload_length
                if payload_length and off + 40 + payload_length < end
                else end
            )
            raw = data[off + 8 : off + 24]
            src = text.get(raw) or address(raw)
            raw = data[off + 24 : off + 40]
            dst = text.get(raw) or address(raw)
            off += 40
            if proto == 59:  # No Next Header
                yield no, time, None, src, None, dst, None, None, None, None
                continue
        else:
            yield (no, time, *_NON_IP, None)
            continue
        # -- transport layer -------------------------------------------------------------
        if proto == 6:
            if ip_end - off < 20:
                yield _slow(no, time, linktype, data, problem)
                continue
            src_port, dst_port, seq, _ack, offset_flags = unpack_tcp(data, off)
            if offset_flags >> 12 < 5 or ip_end - off < (offset_flags >> 12) * 4:
                yield _slow(no, time, linktype, data, problem)
                continue
            yield no, time, "tcp", src, src_port, dst, dst_port, offset_flags & 0x01FF, seq, None
        elif proto == 17:
            if ip_end - off < 8:
                yield _slow(no, time, linktype, data, problem)
                continue
            src_port, dst_port, length = unpack_udp(data, off)
            if length < 8:
                yield _slow(no, time, linktype, data, problem)
                continue
            yield no, time, "udp", src, src_port, dst, dst_port, None, None, None
        elif proto in _TUNNELS:
            yield _slow(no, time, linktype, data, problem)
        else:
            yield no, time, None, src, None, dst, None, None, None, None

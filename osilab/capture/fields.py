"""The fields osilab decodes, named as Wireshark names them: the one table filters and ``show`` read.

A :class:`~osilab.capture.layer.Layer` keeps its fields under short keys (``pkt["tcp"]["srcport"]``).
Wireshark's display filters and ``tshark -V`` use full names (``tcp.srcport``), and a few of
them mean something slightly different from the key they are read from:

* ``tcp.seq`` in Wireshark is the *relative* sequence number; the number on the wire is
  ``tcp.seq_raw``, which is what osilab keeps (so osilab offers ``tcp.seq_raw``, never ``tcp.seq``);
* ``tcp.window_size`` is the window *after* scaling; the 16 bits in the header are
  ``tcp.window_size_value``;
* a field with a bit mask has the masked bits shifted down: ``ip.frag_offset`` counts 8-byte
  units (RFC 791 §3.1), ``ip.flags`` is the 3-bit field, ``ipv6.fraghdr.offset`` also counts
  8-byte units (RFC 8200 §4.5);
* a few names stand for two fields at once: ``ip.addr`` is ``ip.src`` or ``ip.dst``,
  ``tcp.port`` is ``tcp.srcport`` or ``tcp.dstport`` ("either" fields).

:data:`FIELDS` is that table, one :class:`FieldSpec` per Wireshark name: its type (Wireshark's
``FT_`` family), the layer keys it is read from, how the value is converted, and where it sits
in its header (``offset``/``length`` from the start of the layer, for the fixed headers).
Every name in it is checked against ``tshark -G fields`` by the tests.

:func:`field_values` reads one field's occurrences in a packet: a field is present once per
layer that has it, so in a tunnelled frame (two ``ip`` layers) ``ip.src`` has two occurrences.
``frame.*`` fields come from the packet itself (its number, lengths and interface).

This module knows packets and layers only; it parses no expression (that is :mod:`.filter`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from osilab.capture.layer import Layer
    from osilab.capture.packet import Packet

__all__ = ["FieldSpec", "Kind", "FIELDS", "PROTOCOL_NAMES", "field_values", "layer_fields",
           "frame_fields", "typed"]

#: Wireshark's field types, as osilab groups them: ``uint`` (FT_UINT*, FT_INT*), ``bool``
#: (FT_BOOLEAN), ``string`` (FT_STRING, FT_STRINGZ), ``ipv4`` / ``ipv6`` (FT_IPv4, FT_IPv6),
#: ``ether`` (FT_ETHER), ``bytes`` (FT_BYTES).
Kind = Literal["uint", "bool", "string", "ipv4", "ipv6", "ether", "bytes"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One Wireshark field osilab decodes.

    Attributes:
        name: the full display-filter name (``"tcp.srcport"``).
        kind: its type (:data:`Kind`).
        keys: the :attr:`Layer.fields` keys it is read from (two for an "either" field).
        title: Wireshark's description of it.
        offset: where it starts, counted from the start of its layer, when fixed.
        length: how many bytes it spans there, when fixed.
        convert: turns the stored value into Wireshark's (a mask and shift, a unit), or ``None``.
        when: the value is shown only when this is true of the layer (``tcp.ack_raw`` only
            with the ACK flag, as Wireshark adds it), or ``None``.
    """

    name: str
    kind: Kind
    keys: tuple[str, ...]
    title: str
    offset: int | None = None
    length: int | None = None
    convert: Callable[[Any], Any] | None = None
    when: Callable[[Mapping[str, Any]], bool] | None = None

    @property
    def protocol(self) -> str:
        """The layer the field belongs to: ``"tcp"`` for ``tcp.srcport``."""
        return self.name.split(".", 1)[0]

    @property
    def either(self) -> bool:
        """Whether the name stands for several fields (``ip.addr``, ``tcp.port``)."""
        return len(self.keys) > 1


def _bit(mask: int) -> Callable[[Any], Any]:
    return lambda value: bool(value & mask)


def _shift(mask: int, shift: int) -> Callable[[Any], Any]:
    return lambda value: (value & mask) >> shift


def _eighths(value: Any) -> Any:
    return value // 8


def _code(value: Any) -> Any:
    return ord(value) if isinstance(value, str) and len(value) == 1 else value


def _present(value: Any) -> Any:
    return True  # a flag Wireshark adds to every request (or response) it reads


def _acked(fields: Mapping[str, Any]) -> bool:
    return bool(fields.get("flags", 0) & 0x10)


_HTTP2_TYPES = {"DATA": 0, "HEADERS": 1, "PRIORITY": 2, "RST_STREAM": 3, "SETTINGS": 4,
                "PUSH_PROMISE": 5, "PING": 6, "GOAWAY": 7, "WINDOW_UPDATE": 8, "CONTINUATION": 9}


def _http2_type(value: Any) -> Any:
    return _HTTP2_TYPES.get(value)  # MAGIC (the preface) is no frame: None, not shown


def _f(name: str, kind: Kind, keys: str | tuple[str, ...], title: str, at: tuple[int, int] | None = None,
       convert: Callable[[Any], Any] | None = None,
       when: Callable[[Mapping[str, Any]], bool] | None = None) -> FieldSpec:
    offset, length = at if at is not None else (None, None)
    return FieldSpec(name, kind, (keys,) if isinstance(keys, str) else keys, title, offset, length,
                     convert, when)


# The table, protocol by protocol, in header order. (name, type, key(s), title, (offset, length)).
_TABLE: tuple[FieldSpec, ...] = (
    # IEEE 802.3 Ethernet II
    _f("eth.dst", "ether", "dst", "Destination", (0, 6)),
    _f("eth.src", "ether", "src", "Source", (6, 6)),
    _f("eth.addr", "ether", ("src", "dst"), "Address (source or destination)"),
    _f("eth.type", "uint", "type", "Type", (12, 2)),
    # IEEE 802.1Q
    _f("vlan.priority", "uint", "priority", "Priority", (0, 2)),
    _f("vlan.dei", "bool", "dei", "Drop eligible indicator", (0, 2), bool),
    _f("vlan.id", "uint", "id", "ID", (0, 2)),
    _f("vlan.etype", "uint", "etype", "Type", (2, 2)),
    # Linux cooked capture
    _f("sll.pkttype", "uint", "pkttype", "Packet type"),
    _f("sll.hatype", "uint", "hatype", "Link-layer address type"),
    _f("sll.ifindex", "uint", "ifindex", "Interface index"),
    _f("sll.src.eth", "ether", "src.eth", "Source"),
    _f("sll.etype", "uint", "etype", "Protocol"),
    # BSD loopback
    _f("null.family", "uint", "family", "Family", (0, 4)),
    # RFC 826 ARP
    _f("arp.hw.type", "uint", "hw.type", "Hardware type", (0, 2)),
    _f("arp.proto.type", "uint", "proto.type", "Protocol type", (2, 2)),
    _f("arp.opcode", "uint", "opcode", "Opcode", (6, 2)),
    _f("arp.src.hw_mac", "ether", "src.hw_mac", "Sender MAC address", (8, 6)),
    _f("arp.src.proto_ipv4", "ipv4", "src.proto_ipv4", "Sender IP address", (14, 4)),
    _f("arp.dst.hw_mac", "ether", "dst.hw_mac", "Target MAC address", (18, 6)),
    _f("arp.dst.proto_ipv4", "ipv4", "dst.proto_ipv4", "Target IP address", (24, 4)),
    # RFC 791 IPv4
    _f("ip.version", "uint", "version", "Version", (0, 1)),
    _f("ip.hdr_len", "uint", "hdr_len", "Header length", (0, 1)),
    _f("ip.dsfield", "uint", "dsfield", "Differentiated services field", (1, 1)),
    _f("ip.len", "uint", "len", "Total length", (2, 2)),
    _f("ip.id", "uint", "id", "Identification", (4, 2)),
    _f("ip.flags", "uint", "flags", "Flags", (6, 1)),
    _f("ip.flags.df", "bool", "flags", "Don't fragment", (6, 1), _bit(0x2)),
    _f("ip.flags.mf", "bool", "flags", "More fragments", (6, 1), _bit(0x1)),
    _f("ip.frag_offset", "uint", "frag_offset", "Fragment offset (8-byte units)", (6, 2), _eighths),
    _f("ip.ttl", "uint", "ttl", "Time to live", (8, 1)),
    _f("ip.proto", "uint", "proto", "Protocol", (9, 1)),
    _f("ip.src", "ipv4", "src", "Source address", (12, 4)),
    _f("ip.dst", "ipv4", "dst", "Destination address", (16, 4)),
    _f("ip.addr", "ipv4", ("src", "dst"), "Source or destination address"),
    # RFC 8200 IPv6
    _f("ipv6.version", "uint", "version", "Version", (0, 1)),
    _f("ipv6.tclass", "uint", "tclass", "Traffic class", (0, 2)),
    _f("ipv6.flow", "uint", "flow", "Flow label", (1, 3)),
    _f("ipv6.plen", "uint", "plen", "Payload length", (4, 2)),
    _f("ipv6.nxt", "uint", "nxt", "Next header", (6, 1)),
    _f("ipv6.hlim", "uint", "hlim", "Hop limit", (7, 1)),
    _f("ipv6.src", "ipv6", "src", "Source address", (8, 16)),
    _f("ipv6.dst", "ipv6", "dst", "Destination address", (24, 16)),
    _f("ipv6.addr", "ipv6", ("src", "dst"), "Source or destination address"),
    _f("ipv6.fraghdr.offset", "uint", "fragment.offset", "Fragment offset (8-byte units)", None,
       _eighths),
    _f("ipv6.fraghdr.more", "bool", "fragment.more", "More fragments", None, bool),
    # RFC 792 ICMP, RFC 4443 ICMPv6
    _f("icmp.type", "uint", "type", "Type", (0, 1)),
    _f("icmp.code", "uint", "code", "Code", (1, 1)),
    _f("icmp.ident", "uint", "ident", "Identifier", (4, 2)),
    _f("icmp.seq", "uint", "seq", "Sequence number", (6, 2)),
    _f("icmpv6.type", "uint", "type", "Type", (0, 1)),
    _f("icmpv6.code", "uint", "code", "Code", (1, 1)),
    _f("icmpv6.echo.identifier", "uint", "echo.identifier", "Identifier", (4, 2)),
    _f("icmpv6.echo.sequence_number", "uint", "echo.sequence_number", "Sequence", (6, 2)),
    # RFC 9293 TCP
    _f("tcp.srcport", "uint", "srcport", "Source port", (0, 2)),
    _f("tcp.dstport", "uint", "dstport", "Destination port", (2, 2)),
    _f("tcp.port", "uint", ("srcport", "dstport"), "Source or destination port"),
    _f("tcp.seq_raw", "uint", "seq", "Sequence number (raw)", (4, 4)),
    _f("tcp.ack_raw", "uint", "ack", "Acknowledgment number (raw)", (8, 4), None, _acked),
    _f("tcp.hdr_len", "uint", "hdr_len", "Header length", (12, 1)),
    _f("tcp.flags", "uint", "flags", "Flags", (12, 2)),
    _f("tcp.flags.cwr", "bool", "flags", "Congestion window reduced", (13, 1), _bit(0x80)),
    _f("tcp.flags.ece", "bool", "flags", "ECN-Echo", (13, 1), _bit(0x40)),
    _f("tcp.flags.urg", "bool", "flags", "Urgent", (13, 1), _bit(0x20)),
    _f("tcp.flags.ack", "bool", "flags", "Acknowledgment", (13, 1), _bit(0x10)),
    _f("tcp.flags.push", "bool", "flags", "Push", (13, 1), _bit(0x08)),
    _f("tcp.flags.reset", "bool", "flags", "Reset", (13, 1), _bit(0x04)),
    _f("tcp.flags.syn", "bool", "flags", "Syn", (13, 1), _bit(0x02)),
    _f("tcp.flags.fin", "bool", "flags", "Fin", (13, 1), _bit(0x01)),
    _f("tcp.window_size_value", "uint", "window_size", "Window (unscaled)", (14, 2)),
    _f("tcp.options.mss_val", "uint", "options.mss_val", "MSS value"),
    _f("tcp.options.wscale.shift", "uint", "options.wscale.shift", "Window scale shift count"),
    _f("tcp.len", "uint", "len", "Segment data length"),
    # RFC 768 UDP
    _f("udp.srcport", "uint", "srcport", "Source port", (0, 2)),
    _f("udp.dstport", "uint", "dstport", "Destination port", (2, 2)),
    _f("udp.port", "uint", ("srcport", "dstport"), "Source or destination port"),
    _f("udp.length", "uint", "length", "Length", (4, 2)),
    _f("udp.checksum", "uint", "checksum", "Checksum", (6, 2)),
    # RFC 1035 DNS (the first question; every A, AAAA and CNAME answer)
    _f("dns.id", "uint", "id", "Transaction ID"),
    _f("dns.flags", "uint", "flags", "Flags"),
    _f("dns.flags.response", "bool", "flags.response", "Response", None, bool),
    _f("dns.flags.opcode", "uint", "flags.opcode", "Opcode"),
    _f("dns.flags.rcode", "uint", "flags.rcode", "Reply code"),
    _f("dns.count.queries", "uint", "count.queries", "Questions"),
    _f("dns.count.answers", "uint", "count.answers", "Answer RRs"),
    _f("dns.qry.name", "string", "qry.name", "Name"),
    _f("dns.qry.type", "uint", "qry.type", "Type"),
    _f("dns.a", "ipv4", "a", "Address"),
    _f("dns.aaaa", "ipv6", "aaaa", "AAAA Address"),
    _f("dns.cname", "string", "cname", "CNAME"),
    # RFC 8446 TLS (one layer per record)
    _f("tls.record.content_type", "uint", "record.content_type", "Content type"),
    _f("tls.record.version", "uint", "record.version", "Version"),
    _f("tls.record.length", "uint", "record.length", "Length"),
    _f("tls.handshake.type", "uint", "handshake.type", "Handshake type"),
    _f("tls.handshake.version", "uint", "handshake.version", "Version"),
    _f("tls.handshake.ciphersuite", "uint", "handshake.ciphersuite", "Cipher suite"),
    _f("tls.handshake.extensions_server_name", "string", "handshake.extensions_server_name",
       "Server name (SNI)"),
    _f("tls.handshake.extensions_alpn_str", "string", "handshake.extensions_alpn_str",
       "ALPN next protocol"),
    _f("tls.handshake.extensions.supported_version", "uint",
       "handshake.extensions.supported_version", "Supported version"),
    # RFC 9112 HTTP/1.x
    _f("http.request", "bool", "request.method", "Request", None, _present),
    _f("http.response", "bool", "response.code", "Response", None, _present),
    _f("http.request.method", "string", "request.method", "Request method"),
    _f("http.request.uri", "string", "request.uri", "Request URI"),
    _f("http.request.version", "string", "request.version", "Request version"),
    _f("http.host", "string", "host", "Host"),
    _f("http.response.version", "string", "response.version", "Response version"),
    _f("http.response.code", "uint", "response.code", "Status code"),
    _f("http.response.phrase", "string", "response.phrase", "Response phrase"),
    # RFC 9113 HTTP/2 (one layer per segment's frames)
    _f("http2.type", "uint", "types", "Frame type", None, _http2_type),
    # PostgreSQL frontend/backend protocol
    _f("pgsql.frontend", "bool", "frontend", "Frontend (client) message", None, bool),
    _f("pgsql.type", "string", "type", "Type"),
    _f("pgsql.length", "uint", "length", "Length"),
    _f("pgsql.query", "string", "query", "Query"),
    _f("pgsql.tag", "string", "tag", "Tag"),
    _f("pgsql.status", "uint", "status", "Transaction status", None, _code),
    _f("pgsql.authtype", "uint", "authtype", "Authentication type"),
    _f("pgsql.parameter_name", "string", "parameter_name", "Parameter name"),
    _f("pgsql.parameter_value", "string", "parameter_value", "Parameter value"),
    _f("pgsql.field.count", "uint", "field.count", "Field count"),
    _f("pgsql.severity", "string", "severity", "Severity"),
    _f("pgsql.code", "string", "code", "Code"),
    _f("pgsql.message", "string", "message", "Message"),
    # Redis RESP
    _f("resp.string", "string", "simple_string", "Simple string"),
    _f("resp.error", "string", "error", "Error"),
    _f("resp.integer", "uint", "integer", "Integer"),
    _f("resp.array.length", "uint", "array.length", "Array length"),
    # HAProxy PROXY protocol
    _f("proxy.version", "uint", "version", "Version"),
    _f("proxy.v1.proto", "string", "v1.proto", "Protocol (v1)"),
    _f("proxy.src.ipv4", "ipv4", "src.ipv4", "Source address"),
    _f("proxy.dst.ipv4", "ipv4", "dst.ipv4", "Destination address"),
    _f("proxy.src.ipv6", "ipv6", "src.ipv6", "Source address"),
    _f("proxy.dst.ipv6", "ipv6", "dst.ipv6", "Destination address"),
    _f("proxy.srcport", "uint", "srcport", "Source port", None, int),
    _f("proxy.dstport", "uint", "dstport", "Destination port", None, int),
    _f("proxy.v2.tlv.type", "uint", "v2.tlv.type", "TLV type"),
    # payload osilab does not decode
    _f("data.len", "uint", "len", "Length"),
)

#: The frame's own fields: from the :class:`Packet`, not from a layer.
_FRAME: tuple[FieldSpec, ...] = (
    _f("frame.number", "uint", "no", "Frame number"),
    _f("frame.len", "uint", "wire_length", "Frame length on the wire"),
    _f("frame.cap_len", "uint", "cap_len", "Captured length"),
    _f("frame.interface_id", "uint", "interface", "Interface id"),
    _f("frame.interface_name", "string", "interface_name", "Interface name"),
    _f("frame.comment", "string", "comment", "Comment"),
)

#: Wireshark field name -> its :class:`FieldSpec`.
FIELDS: MappingProxyType[str, FieldSpec] = MappingProxyType(
    {spec.name: spec for spec in _FRAME + _TABLE}
)

#: Protocol names a filter may test alone (``dns``, ``tcp``): every layer osilab makes.
PROTOCOL_NAMES: frozenset[str] = frozenset({"frame"} | {spec.protocol for spec in _TABLE} | {
    "http2", "tls", "resp", "pgsql", "proxy"})

_BY_PROTOCOL: dict[str, tuple[FieldSpec, ...]] = {}
for _spec in _TABLE:
    _BY_PROTOCOL[_spec.protocol] = (*_BY_PROTOCOL.get(_spec.protocol, ()), _spec)
del _spec


@lru_cache(maxsize=65_536)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@lru_cache(maxsize=4_096)
def _ether(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", "").replace("-", "").replace(".", ""))


def typed(spec: FieldSpec, value: Any) -> Any:
    """A value (already converted) as the filter compares it: an ``ipaddress`` object for
    addresses, ``bytes`` for hardware addresses, the value itself otherwise; ``None`` when
    unreadable."""
    try:
        if spec.kind in ("ipv4", "ipv6"):
            return _address(value)
        if spec.kind == "ether":
            return _ether(value)
    except ValueError:
        return None
    return value


def _stored(spec: FieldSpec, fields: Mapping[str, Any]) -> Iterator[Any]:
    """The field's occurrences in one layer's fields, converted to Wireshark's meaning."""
    if spec.when is not None and not spec.when(fields):
        return
    for key in spec.keys:
        raw = fields.get(key)
        if raw is None:
            continue
        for one in raw if isinstance(raw, tuple) else (raw,):
            value = spec.convert(one) if spec.convert is not None else one
            if value is not None:
                yield value


def frame_fields(pkt: Packet) -> dict[str, Any]:
    """The ``frame.*`` values of a packet, under their keys (``no``, ``wire_length``...)."""
    return {"no": pkt.no, "wire_length": pkt.wire_length, "cap_len": len(pkt.data),
            "interface": pkt.interface, "interface_name": pkt.interface_name,
            "comment": pkt.comment}


def _tcp_len(tcp: Mapping[str, Any], net: Layer | None) -> Any:
    """``tcp.len`` as Wireshark computes it: the IP payload length less the TCP header, so a
    segment cut by the snap length still says how much data it carried (RFC 9293 §3.8.2's
    SEG.LEN without SYN/FIN); the captured payload length when there is no IP header."""
    if net is not None and net.name == "ip" and "len" in net.fields:
        return max(0, net.fields["len"] - net.fields["hdr_len"] - tcp.get("hdr_len", 20))
    if net is not None and net.name == "ipv6" and "plen" in net.fields and net.fields["plen"]:
        return max(0, net.fields["plen"] - (net.length - 40) - tcp.get("hdr_len", 20))
    return tcp.get("len")


#: Fields whose value needs the network header below their layer: name -> (fields, network layer) -> value.
_FROM_NETWORK: MappingProxyType[str, Callable[[Mapping[str, Any], Layer | None], Any]] = \
    MappingProxyType({"tcp.len": _tcp_len})


def _in_layers(pkt: Packet, spec: FieldSpec) -> Iterator[Any]:
    name = spec.protocol
    derive = _FROM_NETWORK.get(spec.name)
    net: Layer | None = None
    for layer in pkt.layers:
        if layer.name == name:
            if derive is not None:
                value = derive(layer.fields, net)
                if value is not None:
                    yield value
            else:
                yield from _stored(spec, layer.fields)
        if layer.name in ("ip", "ipv6"):
            net = layer


def field_values(pkt: Packet, spec: FieldSpec) -> list[Any]:
    """Every occurrence of one field in a packet, bottom layer first (typed: :func:`typed`)."""
    if spec.protocol == "frame":
        found: Iterator[Any] = _stored(spec, frame_fields(pkt))
    else:
        found = _in_layers(pkt, spec)
    return [one for one in (typed(spec, value) for value in found) if one is not None]


def layer_fields(layer: Layer, net: Layer | None = None) -> Iterator[tuple[FieldSpec, Any]]:
    """The Wireshark fields of one layer and their values (for ``show``), one pair per
    occurrence; ``net`` is the IP layer below it, for the fields computed from it
    (``tcp.len``). "Either" fields are left out: they repeat the fields they stand for."""
    for spec in _BY_PROTOCOL.get(layer.name, ()):
        if spec.either:
            continue
        derive = _FROM_NETWORK.get(spec.name)
        if derive is not None:
            value = derive(layer.fields, net)
            if value is not None:
                yield spec, value
            continue
        for value in _stored(spec, layer.fields):
            yield spec, value

"""Per-packet dissection: the bytes of one frame -> an ordered tuple of :class:`Layer`.

How it works: each protocol has one small function that reads its header at an offset,
returns the :class:`Layer` it found, and says what comes next (the next protocol and
where it starts). :func:`dissect` walks that chain from the link type until there is
nothing left to read. The dispatch tables that say "ethertype 0x0800 means IPv4" are
plain immutable mappings at the bottom of this module, so the whole protocol graph can
be read in one place.

Rules this module keeps:

* It never raises on bad bytes. A header that is cut short or claims more bytes than the
  frame has becomes a layer marked ``damaged`` with the reason and the byte offset
  *in the frame*; dissection stops there. (The reader adds the file and packet number.)
* It looks at one packet only. Application messages that span several TCP segments are
  put together by :mod:`osilab.streams`, which adds their layers to the packet that
  completes them, as Wireshark does.
* It never decodes more than a learner needs: a handful of key fields per layer, named
  as Wireshark names them (without the protocol prefix).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from struct import unpack_from
from types import MappingProxyType

from osilab.capture.layer import Layer, cut_layer, ip_text, mac_text, new_layer
from osilab.capture.tls_records import DTLS_MINORS, dtls, looks_like_tls, tls
from osilab.capture.tunnels import TUNNEL_DISSECTORS, TUNNEL_ETHERTYPES, TUNNELS, UDP_TUNNEL_PORTS

__all__ = [
    "dissect",
    "LINKTYPES",
    "ETHERTYPES",
    "IP_PROTOCOLS",
    "HTTP_METHODS",
    "HTTP_LINE_LIMIT",
    "looks_like_http",
    "http_line_pending",
]

# A dissector reads one header: (data, offset, end, context) -> (layer, next_name, next_offset).
# ``end`` is where this protocol's bytes end (the IP length bounds what is above it).
_Next = tuple[Layer, str | None, int, int]
_layer = new_layer


def _short(name: str, data: bytes, offset: int, end: int, need: int) -> Layer:
    return cut_layer(name, offset, end, need)


# ---------------------------------------------------------------------------------------
# Link layer
# ---------------------------------------------------------------------------------------

def _eth(data: bytes, off: int, end: int) -> _Next:
    if end - off < 14:
        return _short("eth", data, off, end, 14), None, off, end
    ethertype = unpack_from("!H", data, off + 12)[0]
    fields = {"dst": mac_text(data[off:off + 6]), "src": mac_text(data[off + 6:off + 12]), "type": ethertype}
    summary = f"Ethernet {fields['src']} -> {fields['dst']}, type 0x{ethertype:04x}"
    if ethertype <= 1500:  # IEEE 802.3 length field: an 802.2 LLC header follows
        return _layer("eth", off, 14, fields, summary + " (802.3 length)"), "llc", off + 14, min(end, off + 14 + ethertype)
    return _layer("eth", off, 14, fields, summary), ETHERTYPES.get(ethertype, "data"), off + 14, end


def _vlan(data: bytes, off: int, end: int, name: str = "vlan") -> _Next:
    if end - off < 4:
        return _short(name, data, off, end, 4), None, off, end
    tci, ethertype = unpack_from("!HH", data, off)
    fields = {"id": tci & 0x0FFF, "priority": tci >> 13, "dei": (tci >> 12) & 1, "etype": ethertype}
    title = "802.1Q VLAN" if name == "vlan" else "802.1ad service VLAN"
    summary = f"{title} {fields['id']}, priority {fields['priority']}, type 0x{ethertype:04x}"
    if ethertype <= 1500:
        return _layer(name, off, 4, fields, summary), "llc", off + 4, min(end, off + 4 + ethertype)
    return _layer(name, off, 4, fields, summary), ETHERTYPES.get(ethertype, "data"), off + 4, end


def _ieee8021ad(data: bytes, off: int, end: int) -> _Next:
    """IEEE 802.1ad (QinQ): the provider's S-tag, laid out as an 802.1Q tag (EtherType 0x88a8)."""
    return _vlan(data, off, end, "ieee8021ad")


#: Cisco's SNAP protocol ids (OUI 00:00:0c): PVST+ BPDUs are spanning tree per VLAN.
_SNAP_CISCO = {0x010B: "stp"}


def _llc(data: bytes, off: int, end: int) -> _Next:
    """IEEE 802.2 LLC: DSAP, SSAP, control (1 byte for U frames, else 2); with DSAP = SSAP =
    0xaa, a SNAP header follows (RFC 1042): an OUI(24) and, for OUI 0, an EtherType."""
    if end - off < 3:
        return _short("llc", data, off, end, 3), None, off, end
    dsap, ssap, control = data[off], data[off + 1], data[off + 2]
    size = 3 if control & 3 == 3 else 4
    fields: dict = {"dsap": dsap, "ssap": ssap, "control": control}
    nxt: str | None = {0x42: "stp"}.get(dsap, "data")
    if dsap == ssap == 0xAA and end - off >= 8:
        oui, pid = int.from_bytes(data[off + 3:off + 6], "big"), unpack_from("!H", data, off + 6)[0]
        fields["oui"], fields["pid"] = oui, pid
        size = 8
        nxt = ETHERTYPES.get(pid, "data") if oui == 0 else _SNAP_CISCO.get(pid, "data") if oui == 0x0C else "data"
    summary = f"LLC DSAP 0x{dsap:02x} SSAP 0x{ssap:02x}" + (f", SNAP type 0x{fields['pid']:04x}" if "pid" in fields else "")
    return _layer("llc", off, size, fields, summary), nxt if off + size < end else None, off + size, end


_SLL_PKTTYPE = ("to us", "broadcast", "multicast", "to another host", "sent by us")


def _sll(data: bytes, off: int, end: int) -> _Next:
    if end - off < 16:
        return _short("sll", data, off, end, 16), None, off, end
    pkttype, hatype, halen = unpack_from("!HHH", data, off)
    proto = unpack_from("!H", data, off + 14)[0]
    addr = data[off + 6: off + 6 + min(halen, 8)]
    fields = {"pkttype": pkttype, "hatype": hatype, "src.eth": mac_text(addr), "etype": proto, "version": 1}
    kind = _SLL_PKTTYPE[pkttype] if pkttype < 5 else str(pkttype)
    summary = f"Linux cooked capture v1, {kind}, from {fields['src.eth']}, type 0x{proto:04x}"
    return _layer("sll", off, 16, fields, summary), ETHERTYPES.get(proto, "data"), off + 16, end


def _sll2(data: bytes, off: int, end: int) -> _Next:
    if end - off < 20:
        return _short("sll", data, off, end, 20), None, off, end
    proto, _reserved, ifindex, hatype = unpack_from("!HHIH", data, off)
    pkttype, halen = data[off + 10], data[off + 11]
    addr = data[off + 12: off + 12 + min(halen, 8)]
    fields = {"pkttype": pkttype, "hatype": hatype, "ifindex": ifindex, "src.eth": mac_text(addr),
              "etype": proto, "version": 2}
    kind = _SLL_PKTTYPE[pkttype] if pkttype < 5 else str(pkttype)
    summary = f"Linux cooked capture v2, if {ifindex}, {kind}, type 0x{proto:04x}"
    return _layer("sll", off, 20, fields, summary), ETHERTYPES.get(proto, "data"), off + 20, end


def _null(data: bytes, off: int, end: int, big_endian: bool = False) -> _Next:
    if end - off < 4:
        return _short("null", data, off, end, 4), None, off, end
    raw = data[off:off + 4]
    if big_endian:
        family = int.from_bytes(raw, "big")
    else:  # written in the capturing host's byte order: take whichever reading is small
        little, big = int.from_bytes(raw, "little"), int.from_bytes(raw, "big")
        family = little if little < 256 else big
    nxt = "ip" if family == 2 else "ipv6" if family in (10, 24, 28, 30) else "data"
    fields = {"family": family}
    return _layer("null", off, 4, fields, f"BSD loopback, address family {family}"), nxt, off + 4, end


def _loop(data: bytes, off: int, end: int) -> _Next:
    return _null(data, off, end, big_endian=True)


def _raw(data: bytes, off: int, end: int) -> _Next:
    """Raw IP: no link header at all; the version nibble says IPv4 or IPv6."""
    if off >= end:
        return _short("ip", data, off, end, 20), None, off, end
    version = data[off] >> 4
    name = "ip" if version == 4 else "ipv6" if version == 6 else "data"
    return _DISSECTORS[name](data, off, end)


# ---------------------------------------------------------------------------------------
# Network layer
# ---------------------------------------------------------------------------------------

def _arp(data: bytes, off: int, end: int) -> _Next:
    if end - off < 8:
        return _short("arp", data, off, end, 8), None, off, end
    htype, ptype, hlen, plen, opcode = unpack_from("!HHBBH", data, off)
    total = 8 + 2 * hlen + 2 * plen
    if end - off < total:
        return _short("arp", data, off, end, total), None, off, end
    p = off + 8
    sha, spa = data[p:p + hlen], data[p + hlen:p + hlen + plen]
    p += hlen + plen
    tha, tpa = data[p:p + hlen], data[p + hlen:p + hlen + plen]
    fields = {"opcode": opcode, "hw.type": htype, "proto.type": ptype,
              "src.hw_mac": mac_text(sha), "dst.hw_mac": mac_text(tha)}
    if plen == 4:
        fields["src.proto_ipv4"], fields["dst.proto_ipv4"] = ip_text(spa), ip_text(tpa)
        s, t = fields["src.proto_ipv4"], fields["dst.proto_ipv4"]
    else:
        s, t = spa.hex(), tpa.hex()
    if opcode == 1:
        summary = f"ARP who has {t}? tell {s}" if s != t else f"ARP announcement (gratuitous) for {s}"
    elif opcode == 2:
        summary = f"ARP {s} is at {fields['src.hw_mac']}"
    else:
        summary = f"ARP opcode {opcode}"
    return _layer("arp", off, total, fields, summary), None, off + total, end


_IP_FLAGS = {0x4000: "DF", 0x2000: "MF"}


def _ip(data: bytes, off: int, end: int) -> _Next:
    if end - off < 20:
        return _short("ip", data, off, end, 20), None, off, end
    vihl, tos, total, ident, flags_frag, ttl, proto = unpack_from("!BBHHHBB", data, off)
    hdr_len = (vihl & 0x0F) * 4
    version = vihl >> 4
    if version != 4 or hdr_len < 20:
        bad = f"not an IPv4 header (version {version}, header length {hdr_len}) at frame offset {off}"
        return _layer("ip", off, min(20, end - off), {"version": version, "hdr_len": hdr_len},
                      "IPv4: bad header", bad), None, off, end
    src, dst = ip_text(data[off + 12:off + 16]), ip_text(data[off + 16:off + 20])
    frag_offset = (flags_frag & 0x1FFF) * 8
    more = bool(flags_frag & 0x2000)
    fields = {"version": 4, "hdr_len": hdr_len, "dsfield": tos, "len": total, "id": ident,
              "flags": flags_frag >> 13, "frag_offset": frag_offset, "ttl": ttl, "proto": proto,
              "src": src, "dst": dst}
    summary = f"IPv4 {src} -> {dst}, TTL {ttl}, protocol {proto}"
    if frag_offset or more:
        summary += f", fragment at {frag_offset}{' (more follow)' if more else ''}"
    if end - off < hdr_len:
        return (_layer("ip", off, end - off, fields, summary,
                       f"IPv4 header claims {hdr_len} bytes at frame offset {off}, only {end - off} captured"),
                None, off, end)
    damaged = None
    ip_end = off + total
    if total < hdr_len:
        damaged = f"IPv4 total length {total} is shorter than its header ({hdr_len}) at frame offset {off + 2}"
        ip_end = end
    elif ip_end > end:
        # The packet is longer than what was captured: snap length, or a lying length field.
        ip_end = end
    layer = _layer("ip", off, hdr_len, fields, summary, damaged)
    if damaged:
        return layer, None, off + hdr_len, ip_end
    if frag_offset:  # a later fragment: no transport header here
        return layer, "data", off + hdr_len, ip_end
    if more:  # the first fragment: its transport header is here but its payload is not whole
        return layer, "data", off + hdr_len, ip_end
    return layer, IP_PROTOCOLS.get(proto, "data"), off + hdr_len, ip_end


_IPV6_EXTENSIONS = {0: "hop-by-hop options", 43: "routing", 44: "fragment",
                    60: "destination options", 51: "authentication", 135: "mobility"}


def _ipv6_layer(data: bytes, off: int, end: int) -> _Next:
    if end - off < 40:
        return _short("ipv6", data, off, end, 40), None, off, end
    vtcfl, plen, nxt, hlim = unpack_from("!IHBB", data, off)
    if vtcfl >> 28 != 6:
        return (_layer("ipv6", off, 40, {"version": vtcfl >> 28}, "IPv6: bad header",
                       f"not an IPv6 header (version {vtcfl >> 28}) at frame offset {off}"), None, off, end)
    src, dst = ip_text(data[off + 8:off + 24]), ip_text(data[off + 24:off + 40])
    fields: dict = {"version": 6, "tclass": (vtcfl >> 20) & 0xFF, "flow": vtcfl & 0xFFFFF,
                    "plen": plen, "nxt": nxt, "hlim": hlim, "src": src, "dst": dst}
    ip_end = min(end, off + 40 + plen) if plen else end
    p = off + 40
    header = nxt
    extensions = []
    fragment = False
    damaged = None
    while header in _IPV6_EXTENSIONS:
        if ip_end - p < 8:
            damaged = f"IPv6 {_IPV6_EXTENSIONS[header]} header cut short at frame offset {p}"
            break
        following = data[p]
        if header == 44:
            size = 8
            frag = unpack_from("!H", data, p + 2)[0]
            fields["fragment.offset"] = frag & 0xFFF8
            fields["fragment.more"] = bool(frag & 1)
            fragment = bool(frag & 0xFFF9)
        elif header == 51:
            size = (data[p + 1] + 2) * 4
        else:
            size = (data[p + 1] + 1) * 8
        extensions.append(_IPV6_EXTENSIONS[header])
        p += size
        header = following
    if p > ip_end:
        damaged = damaged or f"IPv6 extension headers run past the packet at frame offset {ip_end}"
        p = ip_end
    fields["extensions"] = tuple(extensions)
    fields["final_nxt"] = header
    summary = f"IPv6 {src} -> {dst}, hop limit {hlim}, next header {header}"
    if extensions:
        summary += f" (after {', '.join(extensions)})"
    layer = _layer("ipv6", off, p - off, fields, summary, damaged)
    if damaged:
        return layer, None, p, ip_end
    if fragment:
        return layer, "data", p, ip_end
    if header == 59:  # No Next Header
        return layer, None, p, ip_end
    return layer, IP_PROTOCOLS.get(header, "data"), p, ip_end


_ICMP_TYPES = {0: "echo reply", 3: "destination unreachable", 4: "source quench", 5: "redirect",
               8: "echo request", 9: "router advertisement", 10: "router solicitation",
               11: "time exceeded", 12: "parameter problem", 13: "timestamp", 14: "timestamp reply"}


def _icmp(data: bytes, off: int, end: int) -> _Next:
    if end - off < 4:
        return _short("icmp", data, off, end, 4), None, off, end
    icmp_type, code = data[off], data[off + 1]
    fields: dict = {"type": icmp_type, "code": code}
    length = min(8, end - off)
    what = _ICMP_TYPES.get(icmp_type, f"type {icmp_type}")
    nxt = ("ip" if icmp_type in _ICMP_ERRORS else "data") if end - off > 8 else None
    if icmp_type in (0, 8) and end - off >= 8:
        fields["ident"], fields["seq"] = unpack_from("!HH", data, off + 4)
        fields["seq_le"] = int.from_bytes(data[off + 6:off + 8], "little")
        what = f"echo (ping) {'request' if icmp_type == 8 else 'reply'} {_echo_numbers(fields)}"
        nxt = "echo_data" if end - off > 8 else None
    return _layer("icmp", off, length, fields, f"ICMP {what} (code {code})"), nxt, off + length, end


#: ICMP messages that quote the IP header and first 8 bytes of the datagram they report
#: (RFC 792; RFC 4443 §3 for ICMPv6): tshark shows the quoted headers as layers.
_ICMP_ERRORS = frozenset((3, 4, 5, 11, 12))
_ICMPV6_ERRORS = frozenset((1, 2, 3, 4))


_ICMPV6_TYPES = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded",
                 4: "parameter problem", 128: "echo request", 129: "echo reply",
                 130: "multicast listener query", 131: "multicast listener report",
                 133: "router solicitation", 134: "router advertisement",
                 135: "neighbor solicitation", 136: "neighbor advertisement", 137: "redirect",
                 143: "multicast listener report v2"}


def _icmpv6(data: bytes, off: int, end: int) -> _Next:
    if end - off < 4:
        return _short("icmpv6", data, off, end, 4), None, off, end
    icmp_type, code = data[off], data[off + 1]
    fields: dict = {"type": icmp_type, "code": code}
    what = _ICMPV6_TYPES.get(icmp_type, f"type {icmp_type}")
    if icmp_type in (128, 129) and end - off >= 8:
        fields["echo.identifier"], fields["echo.sequence_number"] = unpack_from("!HH", data, off + 4)
        what = f"echo (ping) {'request' if icmp_type == 128 else 'reply'} " \
               f"id=0x{fields['echo.identifier']:04x}, seq={fields['echo.sequence_number']}"
        length = 8
        nxt = "echo_data" if end - off > 8 else None
    elif icmp_type in _ICMPV6_ERRORS and end - off > 8:  # the packet that caused it, quoted
        length, nxt = 8, "ipv6"
    else:  # ND and MLD messages: their bodies are part of ICMPv6 itself
        length, nxt = end - off, None
    return _layer("icmpv6", off, length, fields, f"ICMPv6 {what} (code {code})"), nxt, off + length, end


# ---------------------------------------------------------------------------------------
# Transport layer
# ---------------------------------------------------------------------------------------

_TCP_FLAG_NAMES = ((0x02, "SYN"), (0x10, "ACK"), (0x01, "FIN"), (0x04, "RST"), (0x08, "PSH"),
                   (0x20, "URG"), (0x40, "ECE"), (0x80, "CWR"))
_TCP_OPTIONS = {0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sack_perm", 5: "sack", 8: "timestamp",
                30: "mptcp", 34: "tfo"}


def tcp_flags_text(flags: int) -> str:
    """``0x12`` -> ``"SYN,ACK"``: the flag names in the order a learner reads them."""
    return ",".join(name for bit, name in _TCP_FLAG_NAMES if flags & bit)


def _tcp(data: bytes, off: int, end: int) -> _Next:
    if end - off < 20:
        return _short("tcp", data, off, end, 20), None, off, end
    sport, dport, seq, ack, offflags, window = unpack_from("!HHIIHH", data, off)
    hdr_len = (offflags >> 12) * 4
    flags = offflags & 0x01FF
    fields: dict = {"srcport": sport, "dstport": dport, "seq": seq, "ack": ack, "hdr_len": hdr_len,
                    "flags": flags, "flags_str": tcp_flags_text(flags), "window_size": window}
    if hdr_len < 20:
        fields["len"] = 0
        return (_layer("tcp", off, 20, fields, f"TCP {sport} -> {dport}: bad header",
                       f"TCP header length {hdr_len} is below the minimum 20 at frame offset {off + 12}"),
                None, off, end)
    if end - off < hdr_len:
        fields["len"] = 0
        return (_layer("tcp", off, end - off, fields, f"TCP {sport} -> {dport} [{fields['flags_str']}]",
                       f"TCP header claims {hdr_len} bytes at frame offset {off}, only {end - off} captured"),
                None, off, end)
    options: list[str] = []
    p, stop = off + 20, off + hdr_len
    if hdr_len == 32 and data[p:p + 4] == b"\x01\x01\x08\x0a":  # the common case: NOP NOP TS
        options = ["nop", "nop", "timestamp"]
        p = stop
    while p < stop:
        kind = data[p]
        if kind == 0:
            options.append("eol")
            break
        if kind == 1:
            options.append("nop")
            p += 1
            continue
        if p + 1 >= stop or data[p + 1] < 2:
            options.append("malformed")
            break
        size = data[p + 1]
        name = _TCP_OPTIONS.get(kind, f"option {kind}")
        if kind == 2 and size == 4:
            fields["options.mss_val"] = unpack_from("!H", data, p + 2)[0]
        elif kind == 3 and size == 3:
            fields["options.wscale.shift"] = data[p + 2]
        options.append(name)
        p += size
    fields["options"] = tuple(options)
    payload_len = max(0, end - off - hdr_len)
    fields["len"] = payload_len
    summary = f"TCP {sport} -> {dport} [{fields['flags_str']}] seq={seq}"
    if flags & 0x10:
        summary += f" ack={ack}"
    summary += f" win={window} len={payload_len}"
    nxt = _tcp_application(data, off + hdr_len, end, sport, dport) if payload_len else None
    return _layer("tcp", off, hdr_len, fields, summary), nxt, off + hdr_len, end


def _udp_application(data: bytes, off: int, end: int, sport: int, dport: int) -> str:
    """Which dissector reads a UDP payload: a tunnel or a protocol by port, DTLS by content."""
    by_port = UDP_PORTS.get(dport) or UDP_PORTS.get(sport)
    if by_port is not None:
        return by_port
    if end - off >= 13 and 20 <= data[off] <= 25 and data[off + 1] == 0xFE and data[off + 2] in DTLS_MINORS:
        return "dtls"
    return "data"


def _udp(data: bytes, off: int, end: int) -> _Next:
    if end - off < 8:
        return _short("udp", data, off, end, 8), None, off, end
    sport, dport, length, checksum = unpack_from("!HHHH", data, off)
    fields = {"srcport": sport, "dstport": dport, "length": length, "checksum": checksum}
    udp_end = min(end, off + length) if length >= 8 else end
    fields["payload_len"] = udp_end - off - 8
    summary = f"UDP {sport} -> {dport} len={fields['payload_len']}"
    damaged = None
    if length < 8:
        damaged = f"UDP length {length} is below the 8-byte header at frame offset {off + 4}"
    nxt = None
    if fields["payload_len"] > 0 and not damaged:
        nxt = _udp_application(data, off + 8, udp_end, sport, dport)
    return _layer("udp", off, 8, fields, summary, damaged), nxt, off + 8, udp_end


# ---------------------------------------------------------------------------------------
# Application layer (only what one packet shows; streams add what spans several)
# ---------------------------------------------------------------------------------------

#: The methods osilab knows by name (RFC 9110 §9, PATCH of RFC 5789, WebDAV of RFC 4918,
#: QUERY of draft-ietf-httpbis-safe-method-w-body). For display and for a request line
#: that has not arrived whole yet only: RFC 9110 §9.1 makes *any* token a method, so a
#: request is told by its whole request line (:func:`looks_like_http`), never by this table.
HTTP_METHODS = frozenset(
    b"GET POST PUT DELETE HEAD OPTIONS PATCH CONNECT TRACE PROPFIND PROPPATCH MKCOL COPY MOVE "
    b"LOCK UNLOCK SEARCH REPORT QUERY".split()
)
# RFC 9112 §3: request-line = method SP request-target SP HTTP-version, the method a token
# (RFC 9110 §5.6.2). The target may hold spaces here (a mangled line is still a request,
# which the desync classifier then judges), never a control character; the line must end
# in the version. Binary protocols do not write that by chance.
_REQUEST_LINE = re.compile(
    rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64} [^\x00-\x20\x7f][^\x00-\x08\x0a-\x1f\x7f]*"
    rb" HTTP/[0-9]\.[0-9]\r?\n"
)
_METHOD_AND_SPACE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64} ")
#: Bytes of a request line looked at (longer lines are sniffed by the known methods only).
HTTP_LINE_LIMIT = 8192


def looks_like_http(data: bytes) -> bool:
    """Whether bytes start like an HTTP/1.x message: a status line, or a request line.

    A request line counts with **any** token as its method once the whole line is there
    (up to its LF, within :data:`HTTP_LINE_LIMIT` bytes); before that, or for an HTTP/0.9
    line without a version, only a method of :data:`HTTP_METHODS` followed by a space does.
    The one sniffer of HTTP: the per-packet dissector, the stream dispatcher and the HTTP
    parser's resynchronisation all ask it.

    >>> looks_like_http(b"QUERY /users HTTP/1.1\\r\\n"), looks_like_http(b"GET /a")
    (True, True)
    >>> looks_like_http(b"X-TRACK /a"), looks_like_http(b"\\x16\\x03\\x01\\x02\\x00")
    (False, False)
    """
    if data.startswith((b"HTTP/1.", b"HTTP/0.9")):
        return True
    space = data.find(b" ", 0, 65)
    if space <= 0:
        return False
    if bytes(data[:space]) in HTTP_METHODS:
        return True
    return _REQUEST_LINE.match(data, 0, HTTP_LINE_LIMIT) is not None


def http_line_pending(data: bytes) -> bool:
    """Whether ``data`` may still become a request line of an unknown method: a token
    and a space, no line end yet (so a sniffer should wait for more bytes)."""
    return (
        len(data) < HTTP_LINE_LIMIT
        and b"\n" not in data
        and _METHOD_AND_SPACE.match(data) is not None
    )
_PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _tcp_application(data: bytes, off: int, end: int, sport: int, dport: int) -> str:
    head = data[off:off + 16]
    if head.startswith(b"PROXY ") or head.startswith(_PROXY_V2_SIGNATURE):
        return "proxy"
    if head.startswith(b"PRI * HTTP/2.0"):
        return "http2"
    if looks_like_tls(data, off, end):
        return "tls"
    if looks_like_http(data[off:min(end, off + HTTP_LINE_LIMIT)]):
        return "http"
    return TCP_PORTS.get(dport) or TCP_PORTS.get(sport) or "data"


def _proxy(data: bytes, off: int, end: int) -> _Next:
    if data.startswith(_PROXY_V2_SIGNATURE, off):
        if end - off < 16:
            return _short("proxy", data, off, end, 16), None, off, end
        ver_cmd, family, length = data[off + 12], data[off + 13], unpack_from("!H", data, off + 14)[0]
        total = 16 + length
        fields: dict = {"version": ver_cmd >> 4, "command": "PROXY" if ver_cmd & 0x0F else "LOCAL",
                        "family": family}
        if family in (0x11, 0x12) and length >= 12:
            fields["src"], fields["dst"] = ip_text(data[off + 16:off + 20]), ip_text(data[off + 20:off + 24])
            fields["srcport"], fields["dstport"] = unpack_from("!HH", data, off + 24)
        elif family in (0x21, 0x22) and length >= 36:
            fields["src"], fields["dst"] = ip_text(data[off + 16:off + 32]), ip_text(data[off + 32:off + 48])
            fields["srcport"], fields["dstport"] = unpack_from("!HH", data, off + 48)
        damaged = None if end - off >= total else f"PROXY v2 header of {total} bytes cut at frame offset {end}"
        summary = f"PROXY v2 {fields['command']} {fields.get('src', '?')}:{fields.get('srcport', '?')} -> " \
                  f"{fields.get('dst', '?')}:{fields.get('dstport', '?')}"
        stop = min(end, off + total)
    else:
        eol = data.find(b"\r\n", off, min(end, off + 108))
        if eol < 0:
            return _short("proxy", data, off, end, 8), None, off, end
        parts = bytes(data[off:eol]).decode("ascii", "replace").split(" ")
        fields = {"version": 1, "family": parts[1] if len(parts) > 1 else "?"}
        if len(parts) == 6:
            fields.update(src=parts[2], dst=parts[3], srcport=parts[4], dstport=parts[5])
        summary = "PROXY v1 " + " ".join(parts[1:])
        damaged = None
        stop = eol + 2
    layer = _layer("proxy", off, stop - off, fields, summary, damaged)
    if damaged or stop >= end:
        return layer, None, stop, end
    return layer, _tcp_application(data, stop, end, 0, 0), stop, end


def _http(data: bytes, off: int, end: int) -> _Next:
    chunk = bytes(data[off:end])
    head_end = chunk.find(b"\r\n\r\n")
    complete = head_end >= 0
    head = chunk[:head_end] if complete else chunk
    lines = head.split(b"\r\n")
    first = lines[0].decode("latin-1")
    fields: dict = {}
    parts = first.split(" ", 2)
    if first.startswith("HTTP/"):
        fields["response.version"] = parts[0]
        if len(parts) > 1 and parts[1].isdigit():
            fields["response.code"] = int(parts[1])
        fields["response.phrase"] = parts[2] if len(parts) > 2 else ""
    else:
        fields["request.method"] = parts[0]
        fields["request.uri"] = parts[1] if len(parts) > 1 else ""
        fields["request.version"] = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:] if complete else lines[1:-1]:
        name, sep, value = line.partition(b":")
        if sep:
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    fields["headers"] = tuple(headers)
    for header_name, header_value in headers:
        if header_name.lower() == "host":
            fields["host"] = header_value
            break
    fields["headers_complete"] = complete
    length = (head_end + 4) if complete else (end - off)
    summary = first + ("" if complete else " (headers continue in later segments)")
    return _layer("http", off, length, fields, summary), None, end, end


def _http2(data: bytes, off: int, end: int) -> _Next:
    fields = {"preface": data.startswith(_HTTP2_PREFACE, off)}
    return _layer("http2", off, end - off, fields, "HTTP/2 connection preface"), None, end, end


def _dns(data: bytes, off: int, end: int, over_tcp: bool = False) -> _Next:
    start = off + 2 if over_tcp else off
    if end - start < 12:
        return _short("dns", data, off, end, 12), None, end, end
    ident, flags, qdcount, ancount = unpack_from("!HHHH", data, start)
    response = bool(flags & 0x8000)
    fields: dict = {"id": ident, "flags": flags, "flags.response": response, "count.queries": qdcount,
                    "count.answers": ancount, "flags.rcode": flags & 0x0F}
    name, p = _dns_name(data, start + 12, start, end)
    damaged = None
    if qdcount and name is not None and p + 4 <= end:
        fields["qry.name"] = name
        fields["qry.type"] = unpack_from("!H", data, p)[0]
    elif qdcount:
        damaged = f"DNS question cut or malformed at frame offset {start + 12}"
    kind = "response" if response else "query"
    what = f" {fields.get('qry.name', '?')}" if qdcount else ""
    summary = f"DNS {kind} 0x{ident:04x}{what}" + (f", {ancount} answers" if response else "")
    return _layer("dns", off, end - off, fields, summary, damaged), None, end, end


def _dns_tcp(data: bytes, off: int, end: int) -> _Next:
    return _dns(data, off, end, over_tcp=True)


def _dns_name(data: bytes, p: int, message_start: int, end: int) -> tuple[str | None, int]:
    """Read a DNS name (RFC 1035 §4.1.4, with compression pointers); (None, p) if malformed."""
    labels: list[str] = []
    after = None
    jumps = 0
    while p < end:
        size = data[p]
        if size == 0:
            return ".".join(labels), (after if after is not None else p + 1)
        if size & 0xC0 == 0xC0:
            if p + 1 >= end or jumps > 20:
                return None, p
            if after is None:
                after = p + 2
            p = message_start + (((size & 0x3F) << 8) | data[p + 1])
            jumps += 1
            continue
        if size & 0xC0 or p + 1 + size > end:
            return None, p
        labels.append(bytes(data[p + 1:p + 1 + size]).decode("ascii", "replace"))
        p += 1 + size
    return None, p


def _by_port(name: str, title: str) -> Callable[[bytes, int, int], _Next]:
    def dissector(data: bytes, off: int, end: int) -> _Next:
        size = end - off
        return _layer(name, off, size, {"len": size}, f"{title}, {size} bytes"), None, end, end

    return dissector


def _echo_numbers(fields: dict) -> str:
    """An echo's identifier and sequence number as tshark shows them: the sequence number
    read both ways (``seq=13312/52``), since Windows' ping counts in little-endian."""
    return f"id=0x{fields['ident']:04x}, seq={fields['seq']}/{fields['seq_le']}"


def _echo_data(data: bytes, off: int, end: int) -> _Next:
    """The payload of an ICMP or ICMPv6 echo (RFC 792, RFC 4443 §4.1): whatever ping put
    there, returned as sent in the reply. tshark calls it ``data`` too; it is part of the
    ICMP message, so it sits at the network layer, not the application's."""
    size = max(0, end - off)
    kind = "request" if data[off - 8] in (8, 128) else "reply"  # the echo header before it
    ident, seq = unpack_from("!HH", data, off - 4)
    summary = f"ping {kind} id=0x{ident:04x} seq={seq}: {size} bytes of echo data (returned as sent)"
    return Layer("data", 3, "internet", off, size, {"len": size}, summary), None, end, end


def _data(data: bytes, off: int, end: int) -> _Next:
    size = max(0, end - off)
    return _layer("data", off, size, {"len": size}, f"{size} bytes of data osilab does not decode"), None, end, end


# ---------------------------------------------------------------------------------------
# The tables: read these to see the whole protocol graph
# ---------------------------------------------------------------------------------------

#: LINKTYPE_ value (tcpdump.org/linktypes.html) -> the first dissector.
LINKTYPES: MappingProxyType[int, str] = MappingProxyType({
    0: "null",      # BSD loopback, host byte order
    1: "eth",       # Ethernet II
    9: "ppp",       # PPP, with or without HDLC-like framing (RFC 1661, RFC 1662)
    50: "ppp",      # PPP in HDLC-like framing
    12: "raw",      # DLT_RAW on some BSDs
    14: "raw",
    101: "raw",     # LINKTYPE_RAW
    108: "loop",    # OpenBSD loopback, network byte order
    113: "sll",     # Linux cooked capture v1
    228: "ip",      # LINKTYPE_IPV4
    229: "ipv6",    # LINKTYPE_IPV6
    239: "nflog",   # Linux netfilter NFLOG
    276: "sll2",    # Linux cooked capture v2
})

#: EtherType -> dissector (IEEE registry).
ETHERTYPES: MappingProxyType[int, str] = MappingProxyType({
    0x0800: "ip", 0x0806: "arp", 0x8035: "arp", 0x86DD: "ipv6", 0x8100: "vlan", 0x88A8: "ieee8021ad",
    0x9100: "vlan", **TUNNEL_ETHERTYPES,
})

#: IP protocol number -> dissector (IANA "Assigned Internet Protocol Numbers").
IP_PROTOCOLS: MappingProxyType[int, str] = MappingProxyType({
    1: "icmp", 4: "ip", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre", 58: "icmpv6",
})

#: Well-known TCP ports for payload that does not announce itself by its first bytes.
TCP_PORTS: MappingProxyType[int, str] = MappingProxyType({
    53: "dns_tcp", 5432: "pgsql", 6379: "resp",
})

#: Well-known UDP ports.
UDP_PORTS: MappingProxyType[int, str] = MappingProxyType({53: "dns", **UDP_TUNNEL_PORTS})

_DISSECTORS: MappingProxyType[str, Callable[[bytes, int, int], _Next]] = MappingProxyType({
    "eth": _eth, "vlan": _vlan, "ieee8021ad": _ieee8021ad, "llc": _llc, "sll": _sll, "sll2": _sll2, "null": _null, "loop": _loop,
    "raw": _raw, "arp": _arp, "ip": _ip, "ipv6": _ipv6_layer, "icmp": _icmp, "icmpv6": _icmpv6,
    "tcp": _tcp, "udp": _udp, "dns": _dns, "dns_tcp": _dns_tcp, "tls": tls, "http": _http,
    "http2": _http2, "proxy": _proxy, "dtls": dtls, "data": _data, "echo_data": _echo_data, **TUNNEL_DISSECTORS,
    "pgsql": _by_port("pgsql", "PostgreSQL wire protocol"),
    "resp": _by_port("resp", "Redis RESP"),
})


def dissect(data: bytes, linktype: int, *, through_transport: bool = False) -> tuple[Layer, ...]:
    """Dissect one frame into its layer stack, bottom first. Never raises on bad bytes.

    ``through_transport`` stops after the first TCP or UDP layer: for the streams stage,
    which puts the application layers of a recognised flow together from the reassembled
    stream and would throw away what one segment alone shows.

    >>> from osilab.capture.dissect import dissect
    >>> frame = bytes.fromhex("ffffffffffff0200000000010806") + bytes(28)
    >>> [layer.name for layer in dissect(frame, 1)]
    ['eth', 'arp']
    """
    first = LINKTYPES.get(linktype)
    if first is None:
        return (_layer("data", 0, len(data), {"len": len(data)},
                       f"unknown link type {linktype}: {len(data)} bytes osilab cannot decode",
                       f"unknown link type {linktype}"),)
    layers: list[Layer] = []
    name: str | None = first
    off, end = 0, len(data)
    depth = 0  # tunnels around the current layer (Layer.depth)
    routed = entering = False  # a network layer seen at this depth; a tunnel header just read
    while name is not None and off < end and len(layers) < 32:
        if entering and name not in TUNNELS:  # the first header of the packet a tunnel carries
            depth, routed, entering = depth + 1, False, False
        if name == "gtp" and depth:  # as Wireshark: GTP-U inside GTP-U is left undecoded
            name = "data"
        try:
            layer, name, off, end = _DISSECTORS[name](data, off, end)
        except Exception as exc:  # noqa: BLE001 - a dissector bug must not lose the packet
            layers.append(_layer("data", off, end - off, {"len": end - off},
                                 f"{name}: could not decode", f"{name} dissector failed: {exc!r}"))
            break
        kind = layer.name
        if depth:
            layer = replace(layer, depth=depth)
        layers.append(layer)
        if kind == "ip" or kind == "ipv6":
            routed = True
            entering = name == "ip" or name == "ipv6"  # IP in IP: this header is the tunnel's
        elif kind in TUNNELS and routed:
            entering = True
        if layer.damaged or (through_transport and (kind == "tcp" or kind == "udp") and name not in TUNNELS):
            break
    return tuple(layers)

"""Tunnels and the extra link layers real networks add: one dissector per header.

Theory of operation
-------------------
A tunnel carries a whole packet as the payload of another: VXLAN (RFC 7348) puts an
Ethernet frame in a UDP datagram, GRE (RFC 2784) an IP packet or an Ethernet frame in IP,
MPLS (RFC 3032) pushes labels in front of an IP packet. On the wire this is only one more
header, after which the dissector starts again from the bottom: Ethernet, IP, TCP... of
the *inner* packet. So each dissector here reads its header, like those of
:mod:`osilab.capture.dissect`, and names the dissector of what follows ("eth", "ip",
"ipv6", "ppp"...): :func:`osilab.capture.dissect.dissect` walks the chain and marks the
inner layers (:attr:`osilab.capture.layer.Layer.depth`).

Where a tunnel says what it carries, the number comes from a registry; these tables are
the data at the bottom of the module (:data:`GRE_PROTOCOLS`, :data:`PPP_PROTOCOLS`,
:data:`TUNNEL_DISSECTORS`). Where it does not (MPLS, GTP-U, Teredo), the version nibble of
the inner header decides, as tshark decides.

Rules this module keeps (those of :mod:`osilab.capture.dissect`): never raise on bad
bytes (a short header becomes a damaged layer naming the frame offset), one packet at a
time, a few fields per layer named as Wireshark names them.

What this module must not know: flows, streams, any protocol above the transport.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from struct import unpack_from
from types import MappingProxyType

from osilab.capture.layer import Layer, cut_layer, ip_text, new_layer

__all__ = ["TUNNEL_DISSECTORS", "TUNNELS", "GRE_PROTOCOLS", "PPP_PROTOCOLS", "UDP_TUNNEL_PORTS",
           "TUNNEL_ETHERTYPES", "TUNNEL_IDS", "tunnel_of"]  # fmt: skip

_Next = tuple[Layer, str | None, int, int]


def _by_version(data: bytes, off: int, end: int) -> str | None:
    """The inner packet's dissector from its first nibble (4: IPv4, 6: IPv6), as tshark guesses."""
    if off >= end:
        return None
    return {4: "ip", 6: "ipv6"}.get(data[off] >> 4, "data")


# ---------------------------------------------------------------------------------------
# Overlays in UDP: VXLAN, GENEVE, GTP-U, Teredo, AYIYA, MPLS-in-UDP
# ---------------------------------------------------------------------------------------

def _vxlan(data: bytes, off: int, end: int) -> _Next:
    """RFC 7348 §5: flags(8, I = 0x08 says the VNI is valid) reserved(24) VNI(24) reserved(8)."""
    if end - off < 8:
        return cut_layer("vxlan", off, end, 8), None, off, end
    flags, vni = data[off], int.from_bytes(data[off + 4:off + 7], "big")
    fields = {"flags": flags, "vni": vni}
    return new_layer("vxlan", off, 8, fields, f"VXLAN, VNI {vni}"), "eth", off + 8, end


def _geneve(data: bytes, off: int, end: int) -> _Next:
    """RFC 8926 §3.4: ver(2) opt_len(6, in 4-byte words) O C rsvd(6) protocol(16) VNI(24)
    rsvd(8), then options: class(16) type(8) rsvd(3) length(5, 4-byte words) and its data."""
    if end - off < 8:
        return cut_layer("geneve", off, end, 8), None, off, end
    first, flags, proto = unpack_from("!BBH", data, off)
    size = 8 + (first & 0x3F) * 4
    vni = int.from_bytes(data[off + 4:off + 7], "big")
    fields: dict = {"version": first >> 6, "opt_len": first & 0x3F, "flags.oam": bool(flags & 0x80),
                    "flags.critical": bool(flags & 0x40), "proto_type": proto, "vni": vni}
    if end - off < size:
        return (new_layer("geneve", off, end - off, fields, f"GENEVE, VNI {vni}",
                          f"GENEVE options of {size - 8} bytes cut at frame offset {end}"), None, end, end)
    options = []
    p = off + 8
    while p + 4 <= off + size:
        option_class, option_type, length = unpack_from("!HBB", data, p)
        options.append((option_class, option_type, (length & 0x1F) * 4))
        p += 4 + (length & 0x1F) * 4
    fields["options"] = tuple(options)
    summary = f"GENEVE, VNI {vni}, protocol 0x{proto:04x}" + (f", {len(options)} options" if options else "")
    return new_layer("geneve", off, size, fields, summary), GRE_PROTOCOLS.get(proto, "data"), off + size, end


def _gtp(data: bytes, off: int, end: int) -> _Next:
    """GTP-U (3GPP TS 29.281 §5): flags(8: version 3 bits, PT, E, S, PN) type(8) length(16)
    TEID(32); with E, S or PN: sequence(16) N-PDU(8) next extension type(8), then extensions."""
    if end - off < 8:
        return cut_layer("gtp", off, end, 8), None, off, end
    flags, message_type, length, teid = unpack_from("!BBHI", data, off)
    fields: dict = {"flags": flags, "version": flags >> 5, "message_type": message_type,
                    "length": length, "teid": teid}
    p = off + 8
    if flags & 0x07:
        if end - p < 4:
            return cut_layer("gtp", off, end, 12), None, off, end
        fields["seq_number"] = unpack_from("!H", data, p)[0]
        following = data[p + 3]
        p += 4
        while following and p < end:  # extension headers: length in 4-byte words, next type last
            size = data[p] * 4
            if not size or p + size > end:
                return (new_layer("gtp", off, end - off, fields, f"GTP-U TEID 0x{teid:08x}",
                                  f"GTP extension header cut at frame offset {p}"), None, end, end)
            following = data[p + size - 1]
            p += size
    summary = f"GTP-U TEID 0x{teid:08x}, message type {message_type}"
    nxt = _by_version(data, p, end) if message_type == 255 else None  # 255: G-PDU, a user packet
    return new_layer("gtp", off, p - off, fields, summary), nxt, p, end


def _teredo(data: bytes, off: int, end: int) -> _Next:
    """RFC 4380 §5.1.1: optional authentication (0x0001) and origin indication (0x0000)
    headers, then an IPv6 packet. The origin's port and address are sent inverted."""
    p = off
    fields: dict = {}
    if end - p >= 4 and data[p:p + 2] == b"\x00\x01":
        id_len, auth_len = data[p + 2], data[p + 3]
        p += 4 + id_len + auth_len + 9  # nonce (8) and confirmation (1)
        fields["auth"] = True
    if end - p >= 8 and data[p:p + 2] == b"\x00\x00":
        fields["orig.port"] = unpack_from("!H", data, p + 2)[0] ^ 0xFFFF
        fields["orig.addr"] = ip_text(bytes(b ^ 0xFF for b in data[p + 4:p + 8]))
        p += 8
    if p > end:
        return cut_layer("teredo", off, end, p - off), None, end, end
    summary = "Teredo IPv6 over UDP" + (f", origin {fields['orig.addr']}:{fields['orig.port']}"
                                        if "orig.addr" in fields else "")
    return new_layer("teredo", off, p - off, fields, summary), _by_version(data, p, end), p, end


_AYIYA_NEXT = MappingProxyType({4: "ip", 41: "ipv6"})


def _ayiya(data: bytes, off: int, end: int) -> _Next:
    """AYIYA (draft-massar-v6ops-ayiya §5): identity length (2^n bytes) and type, signature
    length (4-byte words) and hash, auth method and opcode, next header, epoch(32), identity,
    signature, then (opcode 1, forward) the packet of IP protocol "next header"."""
    if end - off < 8:
        return cut_layer("ayiya", off, end, 8), None, off, end
    id_len = 1 << (data[off] >> 4)
    sig_len = (data[off + 1] >> 4) * 4
    opcode, next_header = data[off + 2] & 0x0F, data[off + 3]
    size = 8 + id_len + sig_len
    fields = {"opcode": opcode, "nextheader": next_header, "epoch": unpack_from("!I", data, off + 4)[0]}
    if end - off < size:
        return cut_layer("ayiya", off, end, size), None, off, end
    nxt = _AYIYA_NEXT.get(next_header, "data") if opcode == 1 and size < end - off else None
    return new_layer("ayiya", off, size, fields, f"AYIYA opcode {opcode}, next header {next_header}"), \
        nxt, off + size, end


def _mpls(data: bytes, off: int, end: int) -> _Next:
    """RFC 3032 §2.1: label stack entries of 32 bits, label(20) TC(3) S(1) TTL(8), until the
    one whose S (bottom of stack) bit is set. The stack does not say what follows it."""
    labels = []
    p = off
    while True:
        if end - p < 4:
            return cut_layer("mpls", off, end, p - off + 4), None, off, end
        entry = unpack_from("!I", data, p)[0]
        labels.append(entry >> 12)
        p += 4
        if entry & 0x100:
            break
    first = unpack_from("!I", data, off)[0]
    fields = {"label": labels[0], "exp": (first >> 9) & 7, "ttl": first & 0xFF, "labels": tuple(labels),
              "bottom": 1}
    summary = "MPLS label" + ("s " if len(labels) > 1 else " ") + ", ".join(map(str, labels))
    return new_layer("mpls", off, p - off, fields, summary), _by_version(data, p, end), p, end


# ---------------------------------------------------------------------------------------
# GRE and what it carries: ERSPAN, Cisco MetaData
# ---------------------------------------------------------------------------------------

def _gre(data: bytes, off: int, end: int) -> _Next:
    """RFC 2784 §2.1 and RFC 2890: C R K S flags, version(3), protocol type (an EtherType);
    then checksum+reserved (C or R), key (K), sequence number (S), and for PPTP's enhanced
    GRE (version 1, RFC 2637 §4.1) an acknowledgment number (A, 0x0080)."""
    if end - off < 4:
        return cut_layer("gre", off, end, 4), None, off, end
    flags, proto = unpack_from("!HH", data, off)
    version = flags & 7
    p = off + 4
    fields: dict = {"flags_and_version": flags, "proto": proto, "version": version}
    size = 4 + (4 if flags & 0xC000 else 0) + (4 if flags & 0x2000 else 0) + (4 if flags & 0x1000 else 0)
    size += 4 if version == 1 and flags & 0x0080 else 0
    if end - off < size:
        return cut_layer("gre", off, end, size), None, off, end
    if flags & 0xC000:
        p += 4
    if flags & 0x2000:
        fields["key"] = unpack_from("!I", data, p)[0]
        p += 4
    if flags & 0x1000:
        fields["sequence_number"] = unpack_from("!I", data, p)[0]
    summary = f"GRE, protocol 0x{proto:04x}" + (f", key {fields['key']}" if "key" in fields else "")
    nxt = GRE_PROTOCOLS.get(proto, "data")
    if proto == 0x88BE and not flags & 0x1000:
        nxt = "erspan1"  # ERSPAN type I has no header and no sequence number
    if off + size >= end:
        nxt = None
    return new_layer("gre", off, size, fields, summary), nxt, off + size, end


def _erspan(data: bytes, off: int, end: int) -> _Next:
    """ERSPAN type II (GRE 0x88be) and III (GRE 0x22eb), draft-foschiano-erspan §4.
    II: version(4) VLAN(12) COS(3) En(2) T(1) session(10) reserved(12) index(20).
    III: version(4) VLAN(12) COS(3) BSO(2) T(1) session(10) timestamp(32) SGT(16)
    P(1) FT(5) HW ID(6) D(1) Gra(2) O(1), and 8 more bytes when O is set."""
    if end - off < 8:
        return cut_layer("erspan", off, end, 8), None, off, end
    first, second = unpack_from("!HH", data, off)
    version = first >> 12
    fields: dict = {"version": version, "vlan": first & 0x0FFF, "cos": second >> 13,
                    "session_id": second & 0x03FF}
    if version != 2:  # type II (version 1)
        fields["index"] = unpack_from("!I", data, off + 4)[0] & 0xFFFFF
        summary = f"ERSPAN type II, session {fields['session_id']}"
        return new_layer("erspan", off, 8, fields, summary), "eth", off + 8, end
    if end - off < 12:
        return cut_layer("erspan", off, end, 12), None, off, end
    fields["timestamp"], fields["sgt"], last = unpack_from("!IHH", data, off + 4)
    frame_type = (last >> 10) & 0x1F
    fields["ft"] = frame_type
    size = 12 + (8 if last & 1 else 0)
    if end - off < size:
        return cut_layer("erspan", off, end, size), None, off, end
    summary = f"ERSPAN type III, session {fields['session_id']}, frame type {frame_type}"
    nxt = {0: "eth", 2: "ip"}.get(frame_type, "data")
    return new_layer("erspan", off, size, fields, summary), nxt, off + size, end


def _erspan1(data: bytes, off: int, end: int) -> _Next:
    """ERSPAN type I: no header of its own, the mirrored Ethernet frame follows GRE directly."""
    fields = {"version": 0}
    return new_layer("erspan", off, 0, fields, "ERSPAN type I (no header)"), "eth", off, end


def _cmd_gre(data: bytes, off: int, end: int) -> _Next:
    """Cisco MetaData in GRE (protocol 0x8909), as Wireshark reads it: the inner EtherType(16),
    version(8), length(8), option(16), security group tag(16)."""
    if end - off < 8:
        return cut_layer("cmd", off, end, 8), None, off, end
    inner, version, length, option, sgt = unpack_from("!HBBHH", data, off)
    fields = {"type": inner, "version": version, "length": length, "options": option, "sgt": sgt}
    return (new_layer("cmd", off, 8, fields, f"Cisco MetaData, SGT {sgt}, type 0x{inner:04x}"),
            GRE_PROTOCOLS.get(inner, "data"), off + 8, end)


# ---------------------------------------------------------------------------------------
# PPP, PPPoE, NFLOG, STP and the loopback test frame
# ---------------------------------------------------------------------------------------

def _ppp(data: bytes, off: int, end: int) -> _Next:
    """RFC 1661 §2 (and RFC 1662 HDLC-like framing): address 0xff and control 0x03 when
    present, then the protocol: one byte when its low bit is set (compressed), else two."""
    p = off
    fields: dict = {}
    if data[p:p + 2] == b"\xff\x03":
        fields["address"], fields["control"] = 0xFF, 0x03
        p += 2
    if end - p < 1:
        return cut_layer("ppp", off, end, 4), None, off, end
    if data[p] & 1:
        proto, p = data[p], p + 1
    elif end - p >= 2:
        proto, p = unpack_from("!H", data, p)[0], p + 2
    else:
        return cut_layer("ppp", off, end, 4), None, off, end
    fields["protocol"] = proto
    return (new_layer("ppp", off, p - off, fields, f"PPP, protocol 0x{proto:04x}"),
            PPP_PROTOCOLS.get(proto, "data"), p, end)


_LCP_CODES = {1: "Configure-Request", 2: "Configure-Ack", 3: "Configure-Nak", 4: "Configure-Reject",
              5: "Terminate-Request", 6: "Terminate-Ack", 7: "Code-Reject", 8: "Protocol-Reject",
              9: "Echo-Request", 10: "Echo-Reply", 11: "Discard-Request"}


def _lcp(data: bytes, off: int, end: int) -> _Next:
    """RFC 1661 §5: code(8) identifier(8) length(16), then options or data."""
    if end - off < 4:
        return cut_layer("lcp", off, end, 4), None, off, end
    code, ident, length = unpack_from("!BBH", data, off)
    fields = {"code": code, "identifier": ident, "length": length}
    size = min(max(length, 4), end - off)
    summary = f"PPP LCP {_LCP_CODES.get(code, f'code {code}')}, id {ident}"
    return new_layer("lcp", off, size, fields, summary), None, off + size, end


_PPPOE_CODES = {0x00: "session data", 0x09: "PADI", 0x07: "PADO", 0x19: "PADR", 0x65: "PADS", 0xA7: "PADT"}


def _pppoe(name: str) -> Callable[[bytes, int, int], _Next]:
    """RFC 2516 §4: version(4) type(4) code(8) session id(16) length(16); the session stage
    (EtherType 0x8864) carries a PPP protocol field and frame, the discovery stage (0x8863) tags."""

    def dissector(data: bytes, off: int, end: int) -> _Next:
        if end - off < 6:
            return cut_layer(name, off, end, 6), None, off, end
        vt, code, session, length = unpack_from("!BBHH", data, off)
        fields = {"version": vt >> 4, "type": vt & 0x0F, "code": code, "session_id": session,
                  "payload_length": length}
        summary = f"PPPoE {_PPPOE_CODES.get(code, f'code 0x{code:02x}')}, session 0x{session:04x}"
        stop = min(end, off + 6 + length)
        if name == "pppoed":
            return new_layer(name, off, stop - off, fields, summary), None, stop, stop
        return new_layer(name, off, 6, fields, summary), "ppp", off + 6, stop

    return dissector


def _nflog(data: bytes, off: int, end: int) -> _Next:
    """LINKTYPE_NFLOG (239): family(8) version(8) resource id(16, network order), then TLVs of
    length(16) and type(16) in the host's byte order, padded to 4; type 9 holds the packet."""
    if end - off < 4:
        return cut_layer("nflog", off, end, 4), None, off, end
    family, version = data[off], data[off + 1]
    fields: dict = {"family": family, "version": version, "res_id": unpack_from("!H", data, off + 2)[0]}
    p = off + 4
    while p + 4 <= end:
        length, tlv_type = unpack_from("<HH", data, p)
        if length < 4:
            break
        if tlv_type == 10:  # NFULA_PREFIX: the rule's log prefix
            fields["prefix"] = bytes(data[p + 4:p + length]).rstrip(b"\x00").decode("ascii", "replace")
        if tlv_type == 9:  # NFULA_PAYLOAD
            stop = min(end, p + length)
            nxt = "ip" if family == 2 else "ipv6" if family == 10 else "data"
            return (new_layer("nflog", off, p + 4 - off, fields, f"NFLOG, family {family}"),
                    nxt, p + 4, stop)
        p += (length + 3) & ~3
    return new_layer("nflog", off, end - off, fields, f"NFLOG, family {family}, no packet"), None, end, end


def _stp(data: bytes, off: int, end: int) -> _Next:
    """IEEE 802.1D §9.3: protocol id(16) version(8) BPDU type(8), then the BPDU."""
    if end - off < 4:
        return cut_layer("stp", off, end, 4), None, off, end
    protocol, version, bpdu_type = unpack_from("!HBB", data, off)
    fields = {"protocol": protocol, "version": version, "type": bpdu_type}
    what = {0x00: "configuration", 0x80: "topology change", 0x02: "RST/MST"}.get(bpdu_type, hex(bpdu_type))
    return new_layer("stp", off, end - off, fields, f"STP {what} BPDU, version {version}"), None, end, end


def _ctp(data: bytes, off: int, end: int) -> _Next:
    """Ethernet Configuration Testing Protocol (EtherType 0x9000): skip count(16, little
    endian), then function(16) and receipt number(16)."""
    if end - off < 6:
        return cut_layer("loop", off, end, 6), None, off, end
    skip, function, receipt = unpack_from("<HHH", data, off)
    fields = {"skipcount": skip, "function": function, "receipt_number": receipt}
    nxt = "data" if end - off > 6 else None
    return new_layer("loop", off, 6, fields, f"Loopback test, function {function}"), nxt, off + 6, end


# ---------------------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------------------

#: GRE protocol type (an EtherType, RFC 2784 §2.4) -> dissector; also GENEVE's protocol type.
GRE_PROTOCOLS: MappingProxyType[int, str | None] = MappingProxyType({
    0x0000: None,       # Cisco's GRE keepalive: nothing inside
    0x0800: "ip", 0x86DD: "ipv6", 0x0806: "arp",
    0x6558: "eth",      # Transparent Ethernet Bridging (NVGRE, GENEVE's Ethernet)
    0x8847: "mpls", 0x8848: "mpls",
    0x880B: "ppp",      # PPTP's enhanced GRE (RFC 2637)
    0x88BE: "erspan",   # ERSPAN type II (type I: no sequence number, see _gre)
    0x22EB: "erspan",   # ERSPAN type III
    0x8909: "cmd_gre",  # Cisco MetaData
})

#: PPP protocol number (IANA "PPP DLL Protocol Numbers") -> dissector.
PPP_PROTOCOLS: MappingProxyType[int, str] = MappingProxyType({
    0x0021: "ip", 0x0057: "ipv6", 0x0281: "mpls", 0xC021: "lcp",
})

#: EtherType -> dissector, for the link layers and tunnels this module reads.
TUNNEL_ETHERTYPES: MappingProxyType[int, str] = MappingProxyType({
    0x8847: "mpls", 0x8848: "mpls", 0x8863: "pppoed", 0x8864: "pppoes", 0x9000: "ctp",
})

#: UDP port -> tunnel dissector (IANA port registry; 8472 is the Linux kernel's VXLAN default).
UDP_TUNNEL_PORTS: MappingProxyType[int, str] = MappingProxyType({
    4789: "vxlan", 8472: "vxlan", 6081: "geneve", 2152: "gtp", 3544: "teredo", 5072: "ayiya",
    6635: "mpls",
})

#: The headers after which a new (inner) packet starts, when a network layer came before
#: (layer names, and the names of the dissectors that make them).
TUNNELS = frozenset({"vxlan", "geneve", "gre", "erspan", "erspan1", "cmd", "cmd_gre", "mpls", "gtp",
                     "teredo", "ayiya"})

TUNNEL_DISSECTORS: MappingProxyType[str, Callable[[bytes, int, int], _Next]] = MappingProxyType({
    "vxlan": _vxlan, "geneve": _geneve, "gtp": _gtp, "teredo": _teredo, "ayiya": _ayiya,
    "mpls": _mpls, "gre": _gre, "erspan": _erspan, "erspan1": _erspan1, "cmd_gre": _cmd_gre,
    "ppp": _ppp, "lcp": _lcp, "pppoed": _pppoe("pppoed"), "pppoes": _pppoe("pppoes"),
    "nflog": _nflog, "stp": _stp, "ctp": _ctp,
})


# ---------------------------------------------------------------------------------------
# Which tunnel a packet came through: part of its flow's hop
# ---------------------------------------------------------------------------------------

#: Tunnel layer -> the field that tells two tunnels of that kind between the same two
#: endpoints apart, when both directions of a connection carry the same value: the VXLAN
#: network identifier (RFC 7348 §5: one VNI is one layer-2 segment), the GRE key (RFC 2890
#: §2.1, a configured value of the tunnel), the ERSPAN session (one mirror session). Left
#: out on purpose: MPLS labels and GTP-U TEIDs are chosen by each receiver (RFC 3031 §3.1,
#: 3GPP TS 29.281 §5.1), so the two directions of one connection carry different ones, as
#: does PPTP's enhanced GRE (version 1: the key holds the peer's call ID); and the GENEVE
#: VNI (RFC 8926 §3.4), which Open vSwitch sets per direction (tcpdump's geneve.pcap: one
#: SSH connection, VNI 10 one way and 11 the other) and an AWS Gateway Load Balancer
#: leaves 0 (its flow is in the options).
TUNNEL_IDS: MappingProxyType[str, str] = MappingProxyType({
    "vxlan": "vni", "gre": "key", "erspan": "session_id",
})

_TUNNEL_LAYERS = frozenset({"vxlan", "geneve", "gre", "erspan", "cmd", "mpls", "gtp", "teredo", "ayiya"})
_IP_VERSION = MappingProxyType({"ip": "4", "ipv6": "6"})


def tunnel_of(layers: Sequence[Layer], depth: int) -> str:
    """The tunnels a packet of ``depth`` (:attr:`Layer.depth` of its network layer) came
    through, outermost first, as text: ``""`` for a packet in no tunnel.

    Each tunnel is its headers (with the identifier of :data:`TUNNEL_IDS` when there is
    one) and the two addresses of the IP header that carries it, lower text first, so
    that both directions of a connection name the same tunnel: ``"vxlan 42
    192.0.2.1-192.0.2.2"``, ``"gre erspan 100 10.0.0.1-10.0.0.2"``; IP in IP (RFC 2003,
    RFC 4213) is named by the versions, inner first: ``"6in4 192.0.2.1-198.51.100.2"``.
    Nested tunnels are joined by ``/``. The flows stage keys a flow by it, so the same inner
    connection seen in two VNIs is two flows on two hops.

    >>> from osilab.capture.dissect import dissect
    >>> inner = bytes(12) + b"\\x08\\x00" + bytes.fromhex("450000140000000040060000c0000201c0000202")
    >>> udp = bytes.fromhex("d43112b500320000") + bytes.fromhex("0800000000002a00")
    >>> outer = bytes.fromhex("4500004600000000401100000a0000020a000001")
    >>> layers = dissect(bytes(12) + b"\\x08\\x00" + outer + udp + inner, 1)
    >>> tunnel_of(layers, 1)
    'vxlan 42 10.0.0.1-10.0.0.2'
    """
    if depth <= 0:
        return ""
    nets: dict[int, tuple[str, str, str]] = {}  # depth -> the packet's own IP header there
    headers: dict[int, list[str]] = {}  # depth -> the tunnel headers read at that depth
    for layer in layers:
        at, name = layer.depth, layer.name
        if at > depth:
            break
        if (name == "ip" or name == "ipv6") and at not in nets and "src" in layer.fields:
            nets[at] = (name, layer.fields["src"], layer.fields.get("dst", "?"))
        elif name in _TUNNEL_LAYERS and at < depth and at in nets:
            ident = layer.fields.get(TUNNEL_IDS.get(name, ""))
            if name == "gre" and layer.fields.get("version"):
                ident = None
            headers.setdefault(at, []).append(name if ident is None else f"{name} {ident}")
    segments = []
    for at in range(depth):
        net = nets.get(at)
        if net is None:
            continue
        inner = nets.get(at + 1)
        what = headers.get(at) or [f"{_IP_VERSION[inner[0] if inner else 'ip']}in{_IP_VERSION[net[0]]}"]
        low, high = sorted(net[1:])
        segments.append(f"{' '.join(what)} {low}-{high}")
    return "/".join(segments)

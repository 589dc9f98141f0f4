"""Layer taxonomies: where each protocol sits in the OSI, TCP/IP and 5-layer models.

Three models describe the same packets:

* **OSI** (ISO/IEC 7498-1): seven layers, from Physical (1) to Application (7).
* **TCP/IP** (RFC 1122 §1.1.3): four layers: Link, Internet, Transport, Application.
  RFC 1122 has no physical layer and folds OSI 5-7 into Application.
* **The 5-layer textbook model** (Kurose & Ross; Tanenbaum): Physical, Link, Network,
  Transport, Application.

Each layer has a *PDU name*, the word for "one unit of data at this layer": a *frame* at
the link layer, a *packet* at the network layer, a *segment* (TCP) or *datagram* (UDP) at
the transport layer and a *message* at the application layer.

The models are idealisations and real protocols do not always fit. This module says so
where it happens, in :attr:`ProtocolPlace.note`:

* **ARP** resolves layer-3 addresses into layer-2 addresses. It rides directly in an
  Ethernet frame (no IP header), so it is usually drawn at layer 2 and a half.
* **TLS** is above TCP and below HTTP. OSI would call its record layer *presentation*
  (6) and its handshake *session* (5); TCP/IP simply calls it application.
* **ICMP** is carried inside IP but is part of the network layer's own machinery (3).

This module is pure data: it knows nothing of bytes or files.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "LayerName",
    "OSI",
    "TCPIP",
    "FIVE_LAYER",
    "ProtocolPlace",
    "PROTOCOLS",
    "place",
    "osi_name",
    "tcpip_to_osi",
]


@dataclass(frozen=True, slots=True)
class LayerName:
    """One layer of a model: its number, its name and the name of its PDU."""

    number: int
    name: str
    pdu: str


#: The seven OSI layers (ISO/IEC 7498-1), bottom to top.
OSI: tuple[LayerName, ...] = (
    LayerName(1, "Physical", "bit"),
    LayerName(2, "Data link", "frame"),
    LayerName(3, "Network", "packet"),
    LayerName(4, "Transport", "segment / datagram"),
    LayerName(5, "Session", "data"),
    LayerName(6, "Presentation", "data"),
    LayerName(7, "Application", "message"),
)

#: The four TCP/IP layers of RFC 1122, bottom to top, with the OSI layers each covers.
TCPIP: tuple[LayerName, ...] = (
    LayerName(1, "Link", "frame"),
    LayerName(2, "Internet", "packet"),
    LayerName(3, "Transport", "segment / datagram"),
    LayerName(4, "Application", "message"),
)

#: The textbook five-layer model, bottom to top.
FIVE_LAYER: tuple[LayerName, ...] = (
    LayerName(1, "Physical", "bit"),
    LayerName(2, "Link", "frame"),
    LayerName(3, "Network", "packet"),
    LayerName(4, "Transport", "segment / datagram"),
    LayerName(5, "Application", "message"),
)

#: Which OSI layers each TCP/IP layer covers (RFC 1122 has no physical layer).
tcpip_to_osi: MappingProxyType[str, tuple[int, ...]] = MappingProxyType(
    {
        "link": (1, 2),
        "internet": (3,),
        "transport": (4,),
        "application": (5, 6, 7),
    }
)


@dataclass(frozen=True, slots=True)
class ProtocolPlace:
    """Where one protocol sits.

    Attributes:
        name: osilab's layer name (Wireshark's short name where there is one).
        title: the protocol's full name.
        osi: the OSI layer number osilab files it under.
        tcpip: the TCP/IP layer, ``"link"``, ``"internet"``, ``"transport"`` or ``"application"``.
        pdu: what one unit of this protocol is called.
        note: where the protocol fits no single layer, the honest explanation.
    """

    name: str
    title: str
    osi: int
    tcpip: str
    pdu: str
    note: str = ""


_P = ProtocolPlace

#: Every protocol osilab dissects, by layer name.
PROTOCOLS: MappingProxyType[str, ProtocolPlace] = MappingProxyType(
    {
        p.name: p
        for p in (
            _P("eth", "Ethernet II", 2, "link", "frame"),
            _P("vlan", "IEEE 802.1Q VLAN tag", 2, "link", "frame",
               "A 4-byte tag inside the Ethernet header; QinQ stacks two of them."),
            _P("sll", "Linux cooked capture (SLL/SLL2)", 2, "link", "frame",
               "Not a real wire format: Linux writes it when capturing on 'any' interface."),
            _P("null", "BSD loopback (null)", 2, "link", "frame",
               "Not a real wire format: a 4-byte address family on the loopback interface."),
            _P("ieee8021ad", "IEEE 802.1ad service VLAN tag (QinQ)", 2, "link", "frame",
               "The provider's outer tag (EtherType 0x88a8); the customer's 802.1Q tag follows."),
            _P("llc", "IEEE 802.2 Logical Link Control (with SNAP)", 2, "link", "frame",
               "Follows an 802.3 frame whose type field is a length; SNAP adds an EtherType."),
            _P("stp", "Spanning Tree Protocol (IEEE 802.1D)", 2, "link", "frame",
               "Bridges talking to each other about the link layer's own topology."),
            _P("loop", "Ethernet Configuration Testing Protocol (loopback)", 2, "link", "frame"),
            _P("cmd", "Cisco MetaData (security group tag)", 2, "link", "frame"),
            _P("pppoed", "PPP over Ethernet, discovery stage (RFC 2516)", 2, "link", "frame"),
            _P("pppoes", "PPP over Ethernet, session stage (RFC 2516)", 2, "link", "frame"),
            _P("ppp", "Point-to-Point Protocol (RFC 1661)", 2, "link", "frame"),
            _P("lcp", "PPP Link Control Protocol (RFC 1661)", 2, "link", "packet",
               "PPP's own control messages: they set up the link layer itself."),
            _P("mpls", "Multiprotocol Label Switching (RFC 3032)", 2, "link", "label stack",
               "Between the link and network layers (often called layer 2.5): routers forward on "
               "the label, not on the IP header after it."),
            _P("nflog", "Linux netfilter log (NFLOG)", 2, "link", "frame",
               "Not a real wire format: Linux writes it for packets an iptables NFLOG rule logged."),
            _P("vxlan", "Virtual eXtensible LAN (RFC 7348)", 2, "link", "frame",
               "A tunnel: an 8-byte header in a UDP datagram, then a whole inner Ethernet frame. "
               "VPC Traffic Mirroring delivers copies this way; osilab files the header at 2, "
               "the layer it extends."),
            _P("geneve", "Generic Network Virtualization Encapsulation (RFC 8926)", 2, "link", "frame",
               "A tunnel like VXLAN, with options; an AWS Gateway Load Balancer speaks it on UDP 6081."),
            _P("erspan", "Encapsulated Remote SPAN (port mirroring)", 2, "link", "frame",
               "A mirrored Ethernet frame carried in GRE."),
            _P("gre", "Generic Routing Encapsulation (RFC 2784, RFC 2890)", 3, "internet", "packet",
               "A tunnel: IP protocol 47 carries another packet (IP, Ethernet, MPLS...) whole."),
            _P("gtp", "GPRS Tunnelling Protocol, user plane (3GPP TS 29.281)", 3, "internet", "packet",
               "A tunnel: mobile networks carry the phone's IP packets in UDP 2152."),
            _P("teredo", "Teredo (RFC 4380)", 3, "internet", "packet",
               "A tunnel: IPv6 inside UDP, to cross IPv4 NATs."),
            _P("ayiya", "Anything In Anything", 3, "internet", "packet",
               "A tunnel: an IP packet inside UDP 5072, to cross NATs."),
            _P("arp", "Address Resolution Protocol", 2, "link", "packet",
               "ARP maps IP (layer 3) addresses to MAC (layer 2) addresses and rides directly "
               "in Ethernet: it is neither purely layer 2 nor layer 3 (often called 2.5)."),
            _P("ip", "Internet Protocol version 4", 3, "internet", "packet"),
            _P("ipv6", "Internet Protocol version 6", 3, "internet", "packet"),
            _P("icmp", "Internet Control Message Protocol", 3, "internet", "message",
               "Carried inside IP, yet part of the network layer's own control plane."),
            _P("icmpv6", "ICMP for IPv6", 3, "internet", "message",
               "Also carries IPv6 Neighbor Discovery, IPv6's replacement for ARP."),
            _P("tcp", "Transmission Control Protocol", 4, "transport", "segment"),
            _P("udp", "User Datagram Protocol", 4, "transport", "datagram"),
            _P("dns", "Domain Name System", 7, "application", "message"),
            _P("socks", "SOCKS proxy protocol (RFC 1928)", 5, "application", "message",
               "A proxy's greeting and CONNECT before the client's own bytes: session-like "
               "set-up (5) carried in the TCP payload."),
            _P("dtls", "Datagram Transport Layer Security (RFC 6347, RFC 9147)", 6, "application",
               "record", "TLS for UDP: each record says its own epoch and sequence number."),
            _P("tls", "Transport Layer Security", 6, "application", "record",
               "TLS sits between TCP and the application: OSI would split it into session "
               "(handshake, layer 5) and presentation (encryption, layer 6); TCP/IP calls it "
               "application. osilab files it under 6."),
            _P("quic", "QUIC (RFC 9000; v2 RFC 9369)", 4, "transport", "packet",
               "A transport protocol built in user space on top of UDP: another transport "
               "(4) inside a transport. It carries TLS 1.3's handshake in its own CRYPTO "
               "frames and encrypts itself, and names connections by connection IDs, not "
               "by the 5-tuple."),
            _P("http", "Hypertext Transfer Protocol", 7, "application", "message"),
            _P("http3", "HTTP/3 (RFC 9114)", 7, "application", "frame",
               "HTTP on QUIC streams: each request has a stream of its own, and header "
               "blocks are compressed with QPACK (RFC 9204)."),
            _P("http2", "HTTP/2", 7, "application", "frame",
               "HTTP/2 has its own framing layer (streams multiplexed on one connection), "
               "something OSI would call session (5)."),
            _P("websocket", "WebSocket (RFC 6455)", 7, "application", "frame",
               "Starts as an HTTP/1.1 Upgrade; after the 101 the connection carries frames, not "
               "requests, so an L7 balancer that routed the Upgrade can only carry them."),
            _P("resp", "Redis serialization protocol", 7, "application", "message"),
            _P("pgsql", "PostgreSQL frontend/backend protocol", 7, "application", "message"),
            _P("proxy", "PROXY protocol", 5, "application", "header",
               "A header a proxy prepends to a TCP stream to pass on the client's addresses: "
               "session-like information (5) carried as the first bytes of the payload."),
            _P("data", "Undecoded payload", 7, "application", "data",
               "Bytes osilab does not recognise; shown as data rather than hidden."),
        )
    }
)


def place(name: str) -> ProtocolPlace:
    """Where the protocol ``name`` sits; unknown names are filed as application data."""
    found = PROTOCOLS.get(name)
    if found is None:
        return ProtocolPlace(name, name, 7, "application", "data", "Not in osilab's vocabulary.")
    return found


def osi_name(number: int) -> str:
    """The name of OSI layer ``number`` (1-7)."""
    return OSI[number - 1].name

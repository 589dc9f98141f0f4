"""Tunnels, link layers, SSL 2.0 / DTLS hellos and STARTTLS: hand-built packets, checked by tshark.

Each case is a frame built with scapy (or by hand where scapy has no layer for it). The
test checks three things, so that none can pass by accident:

* osilab's layer names equal tshark's ``frame.protocols`` mapped onto osilab's vocabulary
  (``tests/tshark_oracle.py``), with the decode-as options tshark needs;
* the inner layers (those after the tunnel) carry ``depth`` 1 or more, the outer ones 0;
* the flow facts are the *inner* packet's 5-tuple, as tshark's last ``ip.src``/``udp.srcport``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.all import IP, TCP, UDP, Dot1AD, Dot1Q, Dot3, Ether, IPv6, Raw, wrpcap  # type: ignore[attr-defined]
from scapy.contrib.erspan import ERSPAN_I, ERSPAN_II, ERSPAN_III  # type: ignore[import-untyped]
from scapy.contrib.geneve import GENEVE  # type: ignore[import-untyped]
from scapy.contrib.gtp import GTP_U_Header  # type: ignore[import-untyped]
from scapy.contrib.mpls import MPLS  # type: ignore[import-untyped]
from scapy.layers.dns import DNS, DNSQR  # type: ignore[import-untyped]
from scapy.layers.l2 import GRE, LLC, SNAP  # type: ignore[import-untyped]
from scapy.layers.ppp import PPP, PPPoE, PPPoED  # type: ignore[import-untyped]
from tshark_oracle import frame_protocols, to_osilab_names, tshark_fields

import osilab
from osilab.capture.dissect import dissect
from osilab.pipeline import annotate

A, B = "192.0.2.1", "192.0.2.2"  # outer (tunnel end points)
C, D = "198.51.100.7", "203.0.113.10"  # inner
INNER_TCP = IP(src=C, dst=D) / TCP(sport=40000, dport=80, flags="S")
INNER_UDP = IP(src=C, dst=D) / UDP(sport=40001, dport=53) / DNS(qd=DNSQR(qname="example.com"))
OUTER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=A, dst=B)
INNER_ETH = Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:04")


def _teredo() -> bytes:
    origin = b"\x00\x00" + struct.pack("!H", 40000 ^ 0xFFFF) + bytes(b ^ 0xFF for b in bytes((192, 0, 2, 9)))
    inner = IPv6(src="2001::1", dst="2001::2") / UDP(sport=5000, dport=6000) / Raw(b"x" * 8)
    return bytes(OUTER / UDP(sport=3544, dport=3544) / Raw(origin + bytes(inner)))


def _ayiya() -> bytes:
    # identity length 2^4 = 16 bytes (type 1, an IPv6 address), signature 5 words (SHA-1),
    # auth method 2, opcode 1 (forward), next header 41 (IPv6), epoch
    header = bytes((0x41, 0x52, 0x21, 41)) + struct.pack("!I", 1) + bytes(16) + bytes(20)
    inner = IPv6(src="2001::1", dst="2001::2") / UDP(sport=5000, dport=6000) / Raw(b"x" * 8)
    return bytes(OUTER / UDP(sport=5072, dport=5072) / Raw(header + bytes(inner)))


def _geneve_with_option() -> bytes:
    option = struct.pack("!HBB", 0x0108, 0x01, 1) + b"\x00\x00\x00\x2a"  # AWS GWLB-like TLV, 4 bytes
    # version 0, opt_len 2 words (the option's 4-byte header and its 4 bytes), protocol 0x6558, VNI 7
    geneve = bytes((0x02, 0x00)) + struct.pack("!H", 0x6558) + bytes((0, 0, 7, 0))
    return bytes(OUTER / UDP(sport=50000, dport=6081) / Raw(geneve + option + bytes(INNER_ETH / INNER_TCP)))


def _nflog() -> bytes:
    payload = bytes(INNER_UDP)
    tlv = struct.pack("<HH", 4 + len(payload), 9) + payload
    prefix = struct.pack("<HH", 8, 10) + b"tst\x00"
    return bytes((2, 0, 0, 0)) + prefix + tlv + bytes(-len(tlv) % 4)


#: name -> (frame, linktype, tshark options, inner 5-tuple (src, sport, dst, dport) or None)
CASES: dict[str, tuple[bytes, int, tuple[str, ...], tuple | None]] = {
    "vxlan 4789": (bytes(OUTER / UDP(sport=50000, dport=4789) / bytes.fromhex("0800000000007b00")
                         / INNER_ETH / INNER_TCP), 1, (), (C, 40000, D, 80)),
    "vxlan 8472 (Linux)": (bytes(OUTER / UDP(sport=50000, dport=8472) / bytes.fromhex("0800000000007b00")
                                 / INNER_ETH / INNER_UDP), 1, ("-d", "udp.port==8472,vxlan"), (C, 40001, D, 53)),
    "geneve ethernet": (bytes(OUTER / UDP(sport=50000, dport=6081) / GENEVE(vni=7, proto=0x6558)
                              / INNER_ETH / INNER_TCP), 1, (), (C, 40000, D, 80)),
    "geneve option": (_geneve_with_option(), 1, (), (C, 40000, D, 80)),
    "geneve ip": (bytes(OUTER / UDP(sport=50000, dport=6081) / GENEVE(vni=7, proto=0x0800) / INNER_UDP),
                  1, (), (C, 40001, D, 53)),
    "gre ip": (bytes(OUTER / GRE() / INNER_TCP), 1, (), (C, 40000, D, 80)),
    "gre key seq": (bytes(OUTER / GRE(key_present=1, key=5, seqnum_present=1, seqence_number=9) / INNER_UDP),
                    1, (), (C, 40001, D, 53)),
    "gre ethernet (NVGRE-like)": (bytes(OUTER / GRE(proto=0x6558) / INNER_ETH / INNER_TCP), 1, (),
                                  (C, 40000, D, 80)),
    "erspan I": (bytes(OUTER / GRE(proto=0x88BE) / ERSPAN_I() / INNER_ETH / INNER_TCP), 1, (), (C, 40000, D, 80)),
    "erspan II": (bytes(OUTER / GRE(proto=0x88BE, seqnum_present=1) / ERSPAN_II(session_id=3)
                        / INNER_ETH / INNER_TCP), 1, (), (C, 40000, D, 80)),
    "erspan III": (bytes(OUTER / GRE(proto=0x22EB, seqnum_present=1) / ERSPAN_III(session_id=3)
                         / INNER_ETH / INNER_UDP), 1, (), (C, 40001, D, 53)),
    "mpls": (bytes(Ether() / MPLS(label=16, s=0) / MPLS(label=17, s=1) / INNER_TCP), 1, (), (C, 40000, D, 80)),
    "mpls in vlan": (bytes(Ether() / Dot1Q(vlan=10, type=0x8847) / MPLS(label=16, s=1) / INNER_UDP), 1, (),
                     (C, 40001, D, 53)),
    "mpls over udp": (bytes(OUTER / UDP(sport=50000, dport=6635) / MPLS(label=16, s=1) / INNER_TCP), 1, (),
                      (C, 40000, D, 80)),
    "pppoe discovery": (bytes(Ether() / PPPoED(code=0x09) / Raw(b"\x01\x01\x00\x00")), 1, (), None),
    "pppoe session ip": (bytes(Ether() / PPPoE(sessionid=0x11) / PPP(proto=0x0021) / INNER_TCP), 1, (),
                         (C, 40000, D, 80)),
    "qinq": (bytes(Ether() / Dot1AD(vlan=100) / Dot1Q(vlan=10) / INNER_UDP), 1, (), (C, 40001, D, 53)),
    "4in4": (bytes(OUTER / INNER_TCP), 1, (), (C, 40000, D, 80)),
    "6in4": (bytes(OUTER / IPv6(src="2001::1", dst="2001::2") / UDP(sport=1, dport=2) / Raw(b"x")), 1, (),
             ("2001::1", 1, "2001::2", 2)),
    "4in6": (bytes(Ether() / IPv6(src="2001::a", dst="2001::b") / INNER_TCP), 1, (), (C, 40000, D, 80)),
    "6in6": (bytes(Ether() / IPv6(src="2001::a", dst="2001::b") / IPv6(src="2001::1", dst="2001::2")
                   / UDP(sport=1, dport=2) / Raw(b"x")), 1, (), ("2001::1", 1, "2001::2", 2)),
    "teredo origin": (_teredo(), 1, (), ("2001::1", 5000, "2001::2", 6000)),
    "ayiya": (_ayiya(), 1, (), ("2001::1", 5000, "2001::2", 6000)),
    "gtp-u": (bytes(OUTER / UDP(sport=2152, dport=2152) / GTP_U_Header(teid=0x1234, gtp_type=255) / INNER_TCP),
              1, (), (C, 40000, D, 80)),
    "nflog": (_nflog(), 239, (), (C, 40001, D, 53)),
    "llc snap ip": (bytes(Dot3() / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800)
                          / INNER_UDP), 1, (), (C, 40001, D, 53)),
}


def _write(tmp_path: Path, name: str, frame: bytes, linktype: int) -> Path:
    from scapy.utils import PcapWriter  # type: ignore[import-untyped]

    path = tmp_path / (name.replace(" ", "_").replace("(", "").replace(")", "") + ".pcap")
    with PcapWriter(str(path), linktype=linktype, sync=True) as writer:
        writer.write(frame)
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_tunnel_layers_match_tshark(tmp_path: Path, tshark: str, name: str) -> None:
    frame, linktype, options, inner = CASES[name]
    path = _write(tmp_path, name, frame, linktype)
    theirs = to_osilab_names(frame_protocols(str(path), options)[1])
    (pkt,) = list(annotate(osilab.read(path)))
    ours = [n for i, n in enumerate(pkt.names()) if n != "data" and (i == 0 or pkt.names()[i - 1] != n)]
    # (consecutive duplicates collapse on both sides: 4in4 is ip:ip, which tshark_oracle folds)
    assert ours == theirs, f"{name}: osilab {ours}, tshark {theirs}"
    if inner is None:
        return
    facts = pkt.facts
    assert (facts.src, facts.src_port, facts.dst, facts.dst_port) == inner
    # tshark's view of the same: its last (innermost) addresses and ports
    fields = tshark_fields(path, "ip.src", "ipv6.src", "tcp.srcport", "udp.srcport", options=options)[0]
    addresses = [a for a in (fields[0] + "," + fields[1]).split(",") if a]
    ports = [p for p in (fields[2] + "," + fields[3]).split(",") if p]
    assert inner[0] in addresses and str(inner[1]) in ports


@pytest.mark.parametrize("name", sorted(n for n, case in CASES.items() if case[3] is not None and n not in
                                        ("mpls", "mpls in vlan", "pppoe session ip", "qinq", "nflog", "llc snap ip")))
def test_inner_layers_are_marked(name: str) -> None:
    """Every layer after the tunnel has depth 1 (the tunnel header itself belongs outside)."""
    frame, linktype, _options, _inner = CASES[name]
    layers = dissect(frame, linktype)
    depths = [layer.depth for layer in layers]
    assert depths[0] == 0 and depths[-1] == 1, [(lay.name, lay.depth) for lay in layers]
    assert depths == sorted(depths), "depth only grows from the outside in"
    assert layers[-1].inner and not layers[0].inner
    assert layers[-1].to_json()["depth"] == 1 and "depth" not in layers[0].to_json()


def test_link_layers_without_an_ip_before_are_not_tunnels() -> None:
    """MPLS, PPPoE, QinQ on the first hop carry the only IP packet there is: depth 0."""
    for name in ("mpls", "pppoe session ip", "qinq"):
        frame, linktype, _options, _inner = CASES[name]
        assert {layer.depth for layer in dissect(frame, linktype)} == {0}, name


def test_vxlan_in_vxlan_counts_each_tunnel() -> None:
    inner = bytes(OUTER / UDP(sport=1, dport=4789) / bytes.fromhex("0800000000000100") / INNER_ETH / INNER_UDP)
    frame = bytes(OUTER / UDP(sport=2, dport=4789) / bytes.fromhex("0800000000000200") / INNER_ETH / Raw(inner[14:]))
    frame = frame[:42 + 8] + inner  # outer eth/ip/udp/vxlan, then the whole inner VXLAN frame
    layers = dissect(frame, 1)
    assert [(lay.name, lay.depth) for lay in layers if lay.name in ("vxlan", "dns")] == [
        ("vxlan", 0), ("vxlan", 1), ("dns", 2)]


def test_icmp_error_quotes_are_not_the_packets_flow() -> None:
    """tshark shows an ICMP error's quoted IP and UDP headers; the packet's flow stays ICMP."""
    frame = bytes(Ether() / IP(src=A, dst=B, proto=1) / Raw(bytes((11, 0, 0, 0, 0, 0, 0, 0)) + bytes(INNER_UDP)[:28]))
    assert [layer.name for layer in dissect(frame, 1)] == ["eth", "ip", "icmp", "ip", "udp"]
    pkt = osilab.capture.packet.Packet(1, 0.0, frame)
    assert pkt.proto is None and pkt.ip_src == A


def test_fast_path_hands_tunnels_to_the_dissector() -> None:
    """The fast reader never answers for a tunnelled frame with the outer 5-tuple."""
    from osilab.capture.facts import quick_facts

    for name, (frame, linktype, _options, inner) in CASES.items():
        facts = quick_facts(1, 0.0, linktype, frame, len(frame))
        if inner is not None and facts is not None:
            assert (facts.src, facts.src_port, facts.dst, facts.dst_port) == inner, name
    plain = bytes(OUTER / TCP(sport=1, dport=2))
    assert quick_facts(1, 0.0, 1, plain, len(plain)) is not None  # plain frames stay fast


def test_written_cases_open(tmp_path: Path) -> None:
    """The scapy-built frames are well-formed pcap records (a guard on the test itself)."""
    path = tmp_path / "all.pcap"
    wrpcap(str(path), [Ether(frame) for frame, linktype, _o, _i in CASES.values() if linktype == 1])
    assert [pkt.no for pkt in osilab.read(path) if pkt.damaged] == []
    assert len(list(osilab.read(path))) == sum(1 for case in CASES.values() if case[1] == 1)


def test_show_html_and_summary_make_the_nesting_visible() -> None:
    from osilab.capture.display import packet_html, packet_text
    from osilab.commands.summary import hierarchy

    frame, linktype, _options, _inner = CASES["vxlan 4789"]
    pkt = osilab.capture.packet.Packet(1, 0.0, frame, linktype)
    text = packet_text(pkt)
    assert "    ###[ tcp ]### (inner, in tunnel 1)" in text and "\n###[ udp ]###  OSI 4" in text
    html = packet_html(pkt)
    assert html.count("(inner 1)") == 3  # eth, ip, tcp of the inner packet
    assert "dashed" in html
    _total, _bytes, pkts, _size, _damaged = hierarchy([pkt])
    assert pkts["tcp", "vxlan"] == 1 and pkts["udp", None] == 1 and ("tcp", None) not in pkts

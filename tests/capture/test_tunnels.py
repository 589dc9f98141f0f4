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


# ---------------------------------------------------------------------------------------
# The tunnel is part of the hop: the same inner connection in two tunnels is two flows
# ---------------------------------------------------------------------------------------

E = "192.0.2.3"  # a third tunnel end point
LINK = Ether(src="02:00:00:00:00:05", dst="02:00:00:00:00:06")

def _vxlan(src: str, dst: str, vni: int, sport: int):  # type: ignore[no-untyped-def]
    header = bytes.fromhex("08000000") + vni.to_bytes(3, "big") + b"\x00"
    return lambda inner: LINK / IP(src=src, dst=dst) / UDP(sport=sport, dport=4789) / Raw(header + bytes(INNER_ETH / inner))


def _geneve(src: str, dst: str, vni: int, sport: int):  # type: ignore[no-untyped-def]
    return lambda inner: LINK / IP(src=src, dst=dst) / UDP(sport=sport, dport=6081) / GENEVE(vni=vni, proto=0x0800) / inner


def _gre(src: str, dst: str, key: int, _sport: int):  # type: ignore[no-untyped-def]
    return lambda inner: LINK / IP(src=src, dst=dst) / GRE(key_present=1, key=key, proto=0x0800) / inner


def _ipip(src: str, dst: str, _id: int, _sport: int):  # type: ignore[no-untyped-def]
    return lambda inner: LINK / IP(src=src, dst=dst, proto=4) / inner


def _conversation(tunnel, outer: tuple[str, str], ident: int) -> list:  # type: ignore[no-untyped-def]
    """One TCP connection C:40000 -> D:80 (handshake, a GET, its answer) in one tunnel; the
    replies travel the tunnel the other way, with another UDP source port (RFC 7348 §5:
    the source port is a hash of the inner headers, so it differs per direction)."""
    there, back = tunnel(outer[0], outer[1], ident, 50000), tunnel(outer[1], outer[0], ident, 50001)
    get = b"GET / HTTP/1.1\r\nHost: d\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    return [there(IP(src=C, dst=D) / TCP(sport=40000, dport=80, flags="S", seq=100)),
            back(IP(src=D, dst=C) / TCP(sport=80, dport=40000, flags="SA", seq=500, ack=101)),
            there(IP(src=C, dst=D) / TCP(sport=40000, dport=80, flags="A", seq=101, ack=501)),
            there(IP(src=C, dst=D) / TCP(sport=40000, dport=80, flags="PA", seq=101, ack=501) / Raw(get)),
            back(IP(src=D, dst=C) / TCP(sport=80, dport=40000, flags="PA", seq=501, ack=101 + len(get)) / Raw(ok))]


#: name -> (tunnel builder, the two tunnels (outer addresses, identifier), the two hops
#: osilab names, tshark options). Each row: the same inner connection in both tunnels.
TWO_TUNNELS = {
    "vxlan, two VNIs": (_vxlan, (((A, B), 42), ((A, B), 43)),
                        ("if0/vxlan 42 192.0.2.1-192.0.2.2", "if0/vxlan 43 192.0.2.1-192.0.2.2"), ()),
    "vxlan, two outer pairs": (_vxlan, (((A, B), 42), ((E, A), 42)),
                               ("if0/vxlan 42 192.0.2.1-192.0.2.2", "if0/vxlan 42 192.0.2.1-192.0.2.3"), ()),
    "geneve, two outer pairs": (_geneve, (((A, B), 7), ((A, E), 7)),
                                ("if0/geneve 192.0.2.1-192.0.2.2", "if0/geneve 192.0.2.1-192.0.2.3"), ()),
    "gre, two keys": (_gre, (((A, B), 5), ((A, B), 6)),
                      ("if0/gre 5 192.0.2.1-192.0.2.2", "if0/gre 6 192.0.2.1-192.0.2.2"), ()),
    "ip in ip, two outer pairs": (_ipip, (((A, B), 0), ((A, E), 0)),
                                  ("if0/4in4 192.0.2.1-192.0.2.2", "if0/4in4 192.0.2.1-192.0.2.3"), ()),
}


def _two_tunnels(tmp_path: Path, name: str) -> Path:
    tunnel, ((first, one), (second, two)), _hops, _options = TWO_TUNNELS[name]
    a, b = _conversation(tunnel, first, one), _conversation(tunnel, second, two)
    frames = [frame for pair in zip(a, b, strict=True) for frame in pair]  # interleaved
    for i, frame in enumerate(frames):
        frame.time = 1_700_000_000 + i / 100
    path = tmp_path / "two.pcap"
    wrpcap(str(path), frames)
    return path


@pytest.mark.parametrize("name", TWO_TUNNELS)
def test_same_inner_flow_in_two_tunnels_is_two_flows(tmp_path: Path, name: str) -> None:
    """Each tunnel's copy is a flow of its own, oriented C -> D, with both directions in it
    (the replies come back with the outer addresses swapped), on a hop naming its tunnel."""
    from osilab.pipeline import conversations, track
    from osilab.streams import flows

    path = _two_tunnels(tmp_path, name)
    hops = TWO_TUNNELS[name][2]
    capture = osilab.read(path)
    records = sorted(flows(capture), key=lambda r: r.index)
    assert [str(r.key) for r in records] == [f"{C}:40000-{D}:80"] * 2
    assert [(r.packets_to_server, r.packets_to_client) for r in records] == [(3, 2), (3, 2)]
    assert [capture.hop_name(r.interface, r.key.tunnel) for r in records] == list(hops)
    # the fast path over records, the packet path, and the tracker agree
    tracked = sorted((r for step in track(osilab.read(path)) for r in step.ended), key=lambda r: r.index)
    assert [r.key for r in tracked] == [r.key for r in records]
    fast = [(m.flow, m.message.summary) for m in conversations(osilab.read(path))]
    slow = [(m.flow, m.message.summary) for m in conversations(iter(osilab.read(path)))]
    assert fast == slow
    assert sorted({flow.tunnel for flow, _summary in fast}) == [r.key.tunnel for r in records]
    assert {(flow.tunnel, summary) for flow, summary in fast} == {
        (r.key.tunnel, summary) for r in records for summary in ("GET / HTTP/1.1", "HTTP/1.1 200 OK")}


@pytest.mark.parametrize("name", TWO_TUNNELS)
def test_two_tunnels_by_the_command_line(tmp_path: Path, name: str) -> None:
    """``osilab flows --json`` and ``osilab http --json`` name the tunnelled hop."""
    import json

    from osilab_cli import run_osilab

    path = _two_tunnels(tmp_path, name)
    for command in ("flows", "http"):
        done = run_osilab(command, str(path), "--json", "--quiet")
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        assert sorted(row["hop"] for row in rows) == sorted(TWO_TUNNELS[name][2]), command


@pytest.mark.parametrize("name", TWO_TUNNELS)
def test_two_tunnels_against_tshark(tmp_path: Path, tshark: str, name: str) -> None:
    """tshark 4.0's tcp.stream keys a TCP conversation by addresses and ports alone, so it
    puts both tunnels' copies in one stream (and marks the second SYN a retransmission).
    Decided from the bytes: the two copies crossed different tunnels (another VNI, key or
    outer address pair), which on a mirror are two links, and RFC 7348 §4 makes each VNI
    its own layer-2 segment, where the same addresses may be different hosts; so osilab
    keeps them apart. What tshark and osilab must share is the inner 5-tuple of every
    frame and which frames belong to one tunnel's copy (the outer addresses and
    identifier, from tshark's own fields)."""
    path = _two_tunnels(tmp_path, name)
    rows = tshark_fields(path, "tcp.stream", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport",
                         "vxlan.vni", "geneve.vni", "gre.key", options=TWO_TUNNELS[name][3])
    assert {row[0] for row in rows} == {"0"}  # one stream for both copies: the difference above
    ours = [pkt.facts for pkt in osilab.read(path)]
    assert len(rows) == len(ours) == 10
    theirs: dict[tuple, set[str]] = {}  # tshark's tunnel (outer pair, VNI or key) -> our names
    for row, facts in zip(rows, ours, strict=True):
        sources, destinations = row[1].split(","), row[2].split(",")
        inner = (sources[-1], destinations[-1], int(row[3]), int(row[4]))
        assert inner == (facts.src, facts.dst, facts.src_port, facts.dst_port), facts.no
        tunnel = (frozenset((sources[0], destinations[0])), row[5] or row[6] or row[7])
        theirs.setdefault(tunnel, set()).add(facts.tunnel)
    # the same partition of the frames: each tshark tunnel is exactly one of ours, and back
    assert len(theirs) == 2 and all(len(names) == 1 for names in theirs.values())
    assert len(set().union(*theirs.values())) == 2


def test_geneve_vni_is_not_part_of_the_hop() -> None:
    """tcpdump's geneve.pcap (Open vSwitch) carries one SSH connection with VNI 10 one way
    and 11 the other: the VNI is per direction there, so it cannot tell tunnels apart
    (tunnels.TUNNEL_IDS); the connection stays one flow, its two directions together."""
    from shared_paths import TUNNELS

    from osilab.streams import flows

    path = TUNNELS / "tcpdump/geneve.pcap"
    if not path.exists():
        pytest.skip(f"{path} is not there (the shared captures)")
    records = list(flows(osilab.read(path)))
    assert [(r.key.tunnel, r.packets_to_server, r.packets_to_client) for r in records] == [
        ("geneve 20.0.0.1-20.0.0.2", 17, 16)]

"""Writing captures and the scapy bridge (issue 23 items 2 and 3).

The writer is checked by round trip: what ``osilab.write`` writes reads back identical
(records, interface names), tshark reads it, and ``route --write`` leaves each decision's why
in a pcapng packet comment tshark shows (``frame.comment``). ``from_scapy`` is checked on
packets built in scapy, against tshark's dissection of the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from osilab_cli import run_osilab as _osilab
from shared_paths import CAPTURES
from tshark_oracle import frame_protocols, to_osilab_names, tshark_fields

import osilab

ALB = CAPTURES / "alb" / "alb.pcapng"
KEYLOG = CAPTURES / "alb" / "keylog.txt"
NLB = CAPTURES / "nlb" / "nlb.pcapng"



def test_pcapng_round_trip_is_identical(tmp_path: Path, tshark: str) -> None:
    cap = osilab.read(ALB)
    out = tmp_path / "copy.pcapng"
    assert osilab.write(cap, out) == len(cap)
    again = osilab.read(out)
    assert list(again.records()) == list(cap.records())
    assert [i.name for i in again.interfaces] == [i.name for i in cap.interfaces]
    assert len(tshark_fields(out, "frame.number")) == len(cap)
    hops = {row[0] for row in tshark_fields(out, "frame.interface_name")}
    assert hops == {i.name for i in cap.interfaces}


def test_pcap_by_extension_keeps_every_frame(tmp_path: Path, tshark: str) -> None:
    """A ``.pcap`` name writes classic pcap (one link type, no interfaces): every frame and
    its microsecond time survive (pcap has no interface, so all are interface 0)."""
    cap = osilab.read(ALB)
    out = tmp_path / "copy.pcap"
    osilab.write(cap, out)
    assert out.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"
    want = [(no, round(t * 1e6), lt, data, wire) for no, t, lt, data, wire, _ in cap.records()]
    got = [(no, round(t * 1e6), lt, data, wire) for no, t, lt, data, wire, _ in osilab.read(out).records()]
    assert got == want
    assert len(tshark_fields(out, "frame.number")) == len(want)


def test_pcap_refuses_two_link_types(tmp_path: Path) -> None:
    packets = [osilab.Packet(1, 1.0, bytes(14), 1), osilab.Packet(2, 2.0, bytes(20), 228)]
    with pytest.raises(osilab.CaptureError, match="write pcapng"):
        osilab.write(packets, tmp_path / "two.pcap")
    assert osilab.write(packets, tmp_path / "two.pcapng") == 2


@pytest.mark.parametrize(("lb", "capture", "extra"), [
    ("nlb", NLB, []),
    ("alb", ALB, ["--keylog", str(KEYLOG)]),
])  # fmt: skip
def test_route_write_puts_each_why_in_a_comment(tmp_path: Path, tshark: str, lb: str,
                                                capture: Path, extra: list[str]) -> None:  # fmt: skip
    out = tmp_path / f"{lb}.pcapng"
    done = _osilab("route", str(capture), "--lb", lb, "--json", "--write", str(out), *extra)
    assert done.returncode == 0, done.stderr
    import json

    decisions = [json.loads(line) for line in done.stdout.splitlines()]
    comments = [row[0] for row in tshark_fields(out, "frame.comment") if row and row[0]]
    # one comment per packet a decision was made at; several decisions may share a packet
    assert len(comments) == len({d["decided_at"] for d in decisions})
    text = " | ".join(comments)
    for d in decisions:
        assert f"(frame {d['decided_at']} of the capture read)" in text
        assert d["why"][:60].replace(",", "\\,") in text or d["why"][:60] in text
    # only the packets of decided flows: every written frame is on the balancer's hop
    assert {row[0] for row in tshark_fields(out, "frame.interface_name")} == {decisions[0]["hop"]}


def test_layers_write_writes_the_packets_listed(tmp_path: Path, tshark: str) -> None:
    out = tmp_path / "five.pcapng"
    done = _osilab("layers", str(ALB), "--limit", "5", "--write", str(out))
    assert done.returncode == 0, done.stderr
    assert [r[0] for r in tshark_fields(out, "frame.number")] == ["1", "2", "3", "4", "5"]
    assert list(osilab.read(out).records()) == list(osilab.read(ALB).records())[:5]


def _built() -> list:
    from scapy.all import DNS, DNSQR, ICMP, IP, TCP, UDP, Ether, IPv6, Raw

    syn = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="198.51.100.7", dst="192.0.2.1") / TCP(sport=40000, dport=80, flags="S")
    syn.time = 1_700_000_000.25
    syn.comment = b"built in scapy"
    get = Ether() / IP(src="198.51.100.7", dst="192.0.2.1") / TCP(sport=40000, dport=80, flags="PA") / Raw(b"GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n")
    dns = IP(src="198.51.100.7", dst="192.0.2.53") / UDP(sport=5353, dport=53) / DNS(qd=DNSQR(qname="shop.example"))
    ping = Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMP()
    return [syn, get, dns, ping]


def test_from_scapy_reads_scapy_built_packets(tshark: str) -> None:
    built = _built()
    cap = osilab.from_scapy(built)
    packets = list(cap)
    assert [p.no for p in packets] == [1, 2, 3, 4]
    assert [p.data for p in packets] == [bytes(b) for b in built]
    assert packets[0].time == 1_700_000_000.25 and packets[0].comment == "built in scapy"
    assert packets[0]["tcp"]["tcp.dstport"] == 80 and packets[2].linktype == 228
    # tshark reads the same bytes the same way (the Capture is a real pcapng file)
    theirs = frame_protocols(cap.path)
    for pkt in packets:
        assert pkt.names() == to_osilab_names(theirs[pkt.no]), pkt.no


def test_from_scapy_refuses_a_packet_without_a_link_layer() -> None:
    from scapy.all import TCP

    with pytest.raises(osilab.UsageError, match="Ether"):
        osilab.from_scapy([TCP()])


def test_to_scapy_gives_the_frame_back() -> None:
    pkt = osilab.read(ALB)[2]
    built = pkt.to_scapy()
    assert bytes(built) == pkt.data
    assert built.haslayer("TCP") and built["TCP"].dport == pkt.dst_port
    assert float(built.time) == pkt.time and built.sniffed_on == pkt.interface_name
    again = osilab.from_scapy([built])[0]
    assert again.data == pkt.data and again.interface_name == pkt.interface_name

"""The fast paths (osilab.capture.files, osilab.capture.facts) give the same facts as the
full dissector, and the record walk the same records as an independent reader.

* The record walk gives, frame by frame, the bytes, wire length and time that scapy's
  raw pcap/pcapng reader gives, on every bundled capture (third-party and lab), and reads
  damaged files (a cut record, a damaged record header) as the packets do.
* :func:`flow_facts` gives, packet by packet, what the full dissector's layers say:
  protocol, addresses, ports, TCP flags, sequence and acknowledgment numbers, where the
  payload is, and whether damage hides them. The reference is computed here from the
  layers, independently of ``osilab.capture.facts``.
* Hand-built frames cover each link type and each unusual case the fast path hands to
  the full dissector (VLAN, SLL, SLL2, null, raw IP, IPv6 extension headers, fragments,
  tunnels, cut headers).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from shared_paths import CAPTURES, thirdparty_captures, tunnel_captures

from osilab.capture import read
from osilab.capture.facts import FLOW_FACTS_FIELDS, flow_facts


def _captures() -> list[Path]:
    lab = sorted(CAPTURES.glob("*/*.pcapng")) if CAPTURES.is_dir() else []
    return thirdparty_captures() + tunnel_captures() + lab


#: The facts compared, by FlowFacts field name (``damaged`` as a bool).
COMPARED = ("no", "time", "interface", "proto", "src", "src_port", "dst", "dst_port",
            "tcp_flags", "tcp_seq", "tcp_ack", "payload_offset", "payload_length",
            "wire_length", "damaged")  # fmt: skip


def reference(pkt) -> tuple:  # type: ignore[no-untyped-def]
    """The facts, read from the full layer stack the way an L4 balancer reads them."""
    damaged = bool(pkt.read_error)
    net = trans = None
    looking = False
    for layer in pkt.layers:
        if layer.damaged and layer.name in ("ip", "ipv6"):
            damaged = True
        if (
            layer.damaged
            and layer.name == "tcp"
            and not {"srcport", "dstport", "flags", "seq"} <= set(layer.fields)
        ):
            damaged = True
        if (
            layer.damaged
            and layer.name == "udp"
            and not {"srcport", "dstport"} <= set(layer.fields)
        ):
            damaged = True
        # The innermost packet's: a tunnel's inner IP header (deeper) replaces the outer one,
        # and an ICMP error's quoted headers (same depth, after icmp) are not the packet's.
        if layer.name in ("ip", "ipv6") and "src" in layer.fields and (net is None or layer.depth > net.depth):
            net, trans, looking = layer, None, True
        elif net is not None and looking and layer.depth == net.depth:
            if layer.name in ("tcp", "udp") and "srcport" in layer.fields:
                trans, looking = layer, False
            elif layer.name in ("icmp", "icmpv6"):
                looking = False
    tcp = trans is not None and trans.name == "tcp"
    return (pkt.no, pkt.time, pkt.interface, trans.name if trans else None,
            net["src"] if net else None, trans["srcport"] if trans else None,
            net["dst"] if net else None, trans["dstport"] if trans else None,
            trans["flags"] if tcp else None, trans["seq"] if tcp else None,
            trans["ack"] if tcp else None,
            trans.offset + trans.length if trans else len(pkt.data),
            trans.get("len" if tcp else "payload_len", 0) if trans else 0,
            pkt.wire_length, damaged)  # fmt: skip


def _as_compared(facts) -> tuple:  # type: ignore[no-untyped-def]
    values = [getattr(facts, name) for name in COMPARED]
    values[-1] = values[-1] is not None
    return tuple(values)


def _check_same(path: Path) -> int:
    capture = read(path)
    fast = [_as_compared(f) for f in flow_facts(capture)]
    full = [reference(pkt) for pkt in read(path)]
    assert len(fast) == len(full), f"{path.name}: {len(fast)} fast facts for {len(full)} packets"
    for mine, theirs in zip(fast, full, strict=True):
        assert mine == theirs, f"{path.name} packet {theirs[0]}: " + ", ".join(
            f"{name}: fast {a!r} full {b!r}"
            for name, a, b in zip(COMPARED, mine, theirs, strict=True)
            if a != b
        )
    return len(fast)


def _packets_as_records(path: Path) -> list[tuple]:
    return [(p.no, p.time, p.linktype, p.data, p.wire_length, p.interface)
            for p in read(path) if p.read_error is None]  # fmt: skip


def test_the_compared_facts_are_flow_facts() -> None:
    assert set(COMPARED) <= set(FLOW_FACTS_FIELDS)


@pytest.mark.parametrize("path", _captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_flow_facts_match_the_full_dissector(path: Path) -> None:
    assert _check_same(path) > 0


@pytest.mark.parametrize("path", _captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_records_match_scapys_reader(path: Path) -> None:
    """The one record walk against an independent reader: bytes, wire length, time."""
    from scapy.utils import RawPcapReader

    capture = read(path)
    mine = list(capture.records())
    if capture.errors or capture.format.endswith("gzip"):
        pytest.skip("a damaged or compressed file: scapy reads it differently")
    try:
        theirs = list(RawPcapReader(str(path)))
    except Exception as exc:  # noqa: BLE001 - scapy's own limits are not osilab's
        pytest.skip(f"scapy cannot read it: {exc}")
    assert len(mine) == len(theirs)
    for (no, time, _linktype, data, wire, _iface), (raw, meta) in zip(mine, theirs, strict=True):
        if hasattr(meta, "tshigh"):  # pcapng
            ticks = (meta.tshigh << 32) | meta.tslow
            expected_time = ticks / meta.tsresol
        else:
            expected_time = meta.sec + meta.usec / (1e9 if meta.usec >= 1e6 else 1e6)
        assert data == raw, f"packet {no}"
        assert wire == max(meta.wirelen, len(raw)), f"packet {no}"
        assert time == pytest.approx(expected_time, abs=1e-5), f"packet {no}"
    assert list(capture.records()) == _packets_as_records(path)


def test_the_bundled_captures_are_there() -> None:
    if not thirdparty_captures():
        pytest.skip("the shared third-party captures are not here (set OSILAB_SHARED)")
    assert len(_captures()) >= 40


# ---------------------------------------------------------------------------------------
# Hand-built frames: every link type, every unusual case
# ---------------------------------------------------------------------------------------

ETH = bytes.fromhex("020000000002020000000001")


def ipv4(proto: int, payload: bytes, *, flags_frag: int = 0, ihl: int = 5, total: int | None = None,
         src: bytes = bytes((198, 51, 100, 7)), dst: bytes = bytes((203, 0, 113, 20))) -> bytes:  # fmt: skip
    options = bytes((ihl - 5) * 4)
    length = 4 * ihl + len(payload) if total is None else total
    head = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0, length, 1, flags_frag, 64, proto, 0, src, dst
    )
    return head + options + payload


def ipv6(nxt: int, payload: bytes, *, plen: int | None = None) -> bytes:
    src = bytes.fromhex("20010db8000000000000000000000007")
    dst = bytes.fromhex("20010db8000000000000000000000014")
    size = len(payload) if plen is None else plen
    return struct.pack("!IHBB", 6 << 28, size, nxt, 64) + src + dst + payload


def tcp(flags: int = 0x02, *, data_offset: int = 5, payload: bytes = b"", seq: int = 1000) -> bytes:
    head = struct.pack("!HHIIHHHH", 51514, 80, seq, 0, (data_offset << 12) | flags, 64240, 0, 0)
    return head + bytes(max(0, data_offset - 5) * 4) + payload


def udp(payload: bytes = b"\x00" * 12, *, length: int | None = None) -> bytes:
    return (
        struct.pack("!HHHH", 40000, 53, 8 + len(payload) if length is None else length, 0) + payload
    )


def eth(ethertype: int, payload: bytes) -> bytes:
    return ETH + struct.pack("!H", ethertype) + payload


def vlan(payload_type: int, payload: bytes, tags: int = 1) -> bytes:
    frame = payload
    inner = payload_type
    for _ in range(tags):
        frame = struct.pack("!HH", 100, inner) + frame
        inner = 0x8100
    return eth(0x8100, frame)


def sll(ethertype: int, payload: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, ETH[:6] + b"\0\0", ethertype) + payload


def sll2(ethertype: int, payload: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", ethertype, 0, 2, 1, 0, 6, ETH[:6] + b"\0\0") + payload


FRAMES: list[tuple[str, int, bytes]] = [
    ("ethernet ipv4 tcp syn", 1, eth(0x0800, ipv4(6, tcp(0x02)))),
    ("ethernet ipv4 tcp with options and data", 1, eth(0x0800, ipv4(6, tcp(0x18, data_offset=8, payload=b"GET / HTTP/1.1\r\n\r\n")))),
    ("ethernet ipv4 udp", 1, eth(0x0800, ipv4(17, udp()))),
    ("ethernet ipv4 icmp", 1, eth(0x0800, ipv4(1, bytes(8)))),
    ("ethernet ipv4 options", 1, eth(0x0800, ipv4(6, tcp(), ihl=7))),
    ("ethernet padding beyond the IP length", 1, eth(0x0800, ipv4(6, tcp())) + bytes(6)),
    ("ethernet arp", 1, eth(0x0806, bytes(28))),
    ("ethernet 802.3 length field", 1, eth(100, bytes(46))),
    ("ethernet too short", 1, ETH[:10]),
    ("vlan ipv4 tcp", 1, vlan(0x0800, ipv4(6, tcp()))),
    ("q-in-q ipv4 tcp", 1, vlan(0x0800, ipv4(6, tcp()), tags=2)),
    ("sll ipv4 tcp", 113, sll(0x0800, ipv4(6, tcp()))),
    ("sll2 ipv6 udp", 276, sll2(0x86DD, ipv6(17, udp()))),
    ("null little-endian ipv4", 0, struct.pack("<I", 2) + ipv4(6, tcp())),
    ("null big-endian ipv6", 0, struct.pack(">I", 30) + ipv6(6, tcp())),
    ("loop ipv4", 108, struct.pack(">I", 2) + ipv4(17, udp())),
    ("raw ipv4", 101, ipv4(6, tcp())),
    ("raw ipv6", 101, ipv6(6, tcp())),
    ("raw neither", 101, b"\x50" + bytes(30)),
    ("linktype ipv4", 228, ipv4(6, tcp(0x11))),
    ("linktype ipv6", 229, ipv6(17, udp())),
    ("unknown link type", 147, bytes(60)),
    ("ipv4 first fragment", 1, eth(0x0800, ipv4(6, tcp(), flags_frag=0x2000))),
    ("ipv4 later fragment", 1, eth(0x0800, ipv4(6, bytes(24), flags_frag=0x0003))),
    ("ipv4 in ipv4", 1, eth(0x0800, ipv4(4, ipv4(6, tcp())))),
    ("ipv6 in ipv4", 1, eth(0x0800, ipv4(41, ipv6(17, udp())))),
    ("ipv4 total length below the header", 1, eth(0x0800, ipv4(6, tcp(), total=12))),
    ("ipv4 header cut", 1, eth(0x0800, ipv4(6, tcp(), ihl=15)[:30])),
    ("ipv4 version wrong", 1, eth(0x0800, b"\x65" + ipv4(6, tcp())[1:])),
    ("ipv4 tcp cut before its ports", 1, eth(0x0800, ipv4(6, tcp())[:24])),
    ("ipv4 tcp header cut in its options", 1, eth(0x0800, ipv4(6, tcp(data_offset=10))[:50])),
    ("ipv4 tcp data offset below 5", 1, eth(0x0800, ipv4(6, tcp(data_offset=3)))),
    ("ipv4 udp length below 8", 1, eth(0x0800, ipv4(17, udp(length=4)))),
    ("ipv4 udp cut", 1, eth(0x0800, ipv4(17, udp())[:25])),
    ("ipv6 hop-by-hop then tcp", 1, eth(0x86DD, ipv6(0, bytes((6, 0)) + bytes(6) + tcp()))),
    ("ipv6 fragment header", 1, eth(0x86DD, ipv6(44, bytes((17, 0, 0, 1)) + bytes(4) + udp()))),
    ("ipv6 no next header", 1, eth(0x86DD, ipv6(59, b""))),
    ("ipv6 jumbo-style zero payload length", 1, eth(0x86DD, ipv6(6, tcp(), plen=0))),
    ("ipv6 cut", 1, eth(0x86DD, ipv6(6, tcp())[:30])),
    ("ipv6 icmpv6", 1, eth(0x86DD, ipv6(58, bytes((128, 0)) + bytes(6)))),
]  # fmt: skip


def write_pcap(path: Path, frames: list[tuple[int, bytes]], linktype: int) -> None:
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, (_, frame) in enumerate(frames):
            out.write(
                struct.pack("<IIII", 1_700_000_000 + i, 250_000, len(frame), len(frame)) + frame
            )


@pytest.mark.parametrize(("name", "linktype", "frame"), FRAMES, ids=[f[0] for f in FRAMES])
def test_hand_built_frame(tmp_path: Path, name: str, linktype: int, frame: bytes) -> None:
    path = tmp_path / "one.pcap"
    write_pcap(path, [(linktype, frame)], linktype)
    assert _check_same(path) == 1


def test_damaged_file_hands_over_to_the_full_reader(tmp_path: Path) -> None:
    """A cut last record and a damaged record header: the same packets, numbers and errors."""
    frames = [(1, eth(0x0800, ipv4(6, tcp(seq=n)))) for n in range(50)]
    path = tmp_path / "cut.pcap"
    write_pcap(path, frames, 1)
    whole = path.read_bytes()
    record = 16 + len(frames[0][1])
    damaged = bytearray(whole)
    struct.pack_into("<I", damaged, 24 + 20 * record + 8, 0x7FFFFFFF)  # record 21 claims 2 GB
    cases = {"cut": whole[:-10], "bad header": bytes(damaged)}
    for label, content in cases.items():
        path.write_bytes(content)
        assert _check_same(path) >= 48, label
        capture = read(path)
        assert list(capture.records()) == _packets_as_records(path), label
        assert len(capture.errors) == 1, label


def test_pcapng_with_two_interfaces_and_resolutions(tmp_path: Path) -> None:
    """IDB options (if_tsresol) and interface indexes come out as the reader has them."""

    def block(kind: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb_micro = block(1, struct.pack("<HHI", 1, 0, 0))
    idb_nano = block(
        1, struct.pack("<HHI", 101, 0, 0) + struct.pack("<HH", 9, 1) + b"\x09\0\0\0" + bytes(4)
    )
    frame_eth = eth(0x0800, ipv4(6, tcp()))
    frame_raw = ipv6(17, udp())

    def epb(iface: int, ticks: int, frame: bytes) -> bytes:
        return block(
            6,
            struct.pack("<IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
            + frame,
        )

    path = tmp_path / "two.pcapng"
    path.write_bytes(shb + idb_micro + idb_nano + epb(0, 1_700_000_000_000_000, frame_eth)
                     + epb(1, 1_700_000_000_000_000_123, frame_raw) + epb(0, 1_700_000_001_000_000, frame_eth))  # fmt: skip
    records = list(read(path).records())
    assert [(r[0], r[2], r[5]) for r in records] == [(1, 1, 0), (2, 101, 1), (3, 1, 0)]
    assert records[0][1] == 1_700_000_000.0 and records[2][1] == 1_700_000_001.0
    assert records[1][1] == pytest.approx(1_700_000_000.000000123, abs=1e-6)
    assert [f.proto for f in flow_facts(read(path))] == ["tcp", "udp", "tcp"]
    assert _check_same(path) == 3


# ---------------------------------------------------------------------------------------
# The NLB fed from the fast path decides exactly as when fed full packets
# ---------------------------------------------------------------------------------------

NLB_CONFIG = {
    "Type": "network",
    "TargetGroups": [
        {
            "Name": "web",
            "Protocol": "TCP",
            "Port": 80,
            "Targets": ["192.0.2.11:80", "192.0.2.12:80"],
        },
        {
            "Name": "dns",
            "Protocol": "UDP",
            "Port": 53,
            "Targets": ["192.0.2.30:53", "192.0.2.31:53"],
        },
    ],
    "Listeners": [
        {
            "Protocol": "TCP",
            "Port": 80,
            "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}],
        },
        {
            "Protocol": "UDP",
            "Port": 53,
            "DefaultActions": [{"Type": "forward", "TargetGroupName": "dns"}],
        },
    ],
}


@pytest.mark.parametrize("path", _captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_nlb_from_flow_facts_equals_nlb_from_packets(path: Path) -> None:
    balancers = pytest.importorskip("osilab.balancers")
    by_packets = balancers.NetworkLoadBalancer(NLB_CONFIG)
    for pkt in read(path):
        by_packets.feed_packet(pkt)
    by_tuples = balancers.NetworkLoadBalancer(NLB_CONFIG)
    for f in flow_facts(read(path)):
        by_tuples.feed(no=f.no, time=f.time, proto=f.proto, src_ip=f.src, src_port=f.src_port,
                       dst_ip=f.dst, dst_port=f.dst_port, tcp_flags=f.tcp_flags or 0,
                       tcp_seq=f.tcp_seq, damaged=f.damaged)  # fmt: skip
    assert by_tuples.accounting == by_packets.accounting
    mine = [(d.decided_at, d.target, d.target_group, str(d.flow)) for d in by_tuples.decisions]
    theirs = [(d.decided_at, d.target, d.target_group, str(d.flow)) for d in by_packets.decisions]
    assert mine == theirs

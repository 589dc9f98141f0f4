"""The one pcapng codec and the hop names: write -> read gives the same records back, and
every interface of a capture is named as the lab wrote it (else ``if<N>``)."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import pytest
from shared_paths import CAPTURES, THIRDPARTY

import osilab
from osilab.capture import Interface, Packet, hop_name, write_pcapng
from osilab.capture.pcapng import pcap_to_pcapng

ALB = CAPTURES / "alb" / "alb.pcapng"


def _needs(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return path


def _pcap(records: list[tuple[int, int, bytes, int]], *, nano: bool = False) -> bytes:
    """A classic little-endian pcap: (seconds, fraction, frame, wire length) per record."""
    out = struct.pack("<IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for seconds, fraction, frame, wire in records:
        out += struct.pack("<IIII", seconds, fraction, len(frame), wire) + frame
    return out


FRAME = bytes.fromhex("020000000002020000000001" "0800") + bytes(46)


def test_round_trip_of_a_lab_capture_keeps_every_record_and_interface(tmp_path: Path) -> None:
    source = osilab.read(_needs(ALB))
    records = list(source.records())
    out = tmp_path / "copy.pcapng"
    assert write_pcapng(records, out, interfaces=source.interfaces) == len(records)
    copy = osilab.read(out)
    assert list(copy.records()) == records
    assert copy.errors == []
    assert copy.interfaces == source.interfaces


def test_round_trip_of_packets_keeps_comments_and_describes_interfaces(tmp_path: Path) -> None:
    packets = [Packet(1, 1_700_000_000.123456, FRAME, 1, comment="first"),
               Packet(2, 1_700_000_000.5, FRAME[:40], 1, wire_length=60, interface=3),
               Packet(3, 1_700_000_001.000789, FRAME, 1)]  # fmt: skip
    out = tmp_path / "packets.pcapng"
    with open(out, "wb") as handle:
        write_pcapng(packets, handle)
    back = list(osilab.read(out))
    assert [(p.time, p.data, p.wire_length, p.comment) for p in back] == [
        (p.time, p.data, p.wire_length, p.comment) for p in packets
    ]
    assert [p.interface for p in back] == [0, 1, 0]  # described in order of appearance


@pytest.mark.parametrize("nano", [False, True], ids=["microseconds", "nanoseconds"])
def test_pcap_to_pcapng_reads_back_as_the_pcap(tmp_path: Path, nano: bool) -> None:
    fraction = 999_999_999 if nano else 999_999
    pcap = tmp_path / "hop.pcap"
    pcap.write_bytes(_pcap([(1_700_000_000, fraction, FRAME, 60), (1_700_000_001, 7, FRAME[:30], 60)],
                           nano=nano))  # fmt: skip
    converted = tmp_path / "hop.pcapng"
    converted.write_bytes(pcap_to_pcapng(pcap.read_bytes(), "alb-web1", "ALB to web1"))
    mine, theirs = list(osilab.read(converted).records()), list(osilab.read(pcap).records())
    # the same records; the times agree to the float: pcap's are made as seconds + fraction,
    # pcapng's as units x resolution, which may differ in the last bit
    assert [r[:1] + r[2:] for r in mine] == [r[:1] + r[2:] for r in theirs]
    assert [r[1] for r in mine] == pytest.approx([r[1] for r in theirs], abs=1e-6, rel=0)
    capture = osilab.read(converted)
    list(capture)
    (iface,) = capture.interfaces
    assert (iface.name, iface.description, iface.resolution) == (
        "alb-web1", "ALB to web1", 1e-9 if nano else 1e-6)


def test_hop_names_of_the_lab_capture_are_its_topology_hops() -> None:
    capture = osilab.read(_needs(ALB))
    topology = json.loads((ALB.parent / "topology.json").read_text())
    names = [hop["interface"] for hop in topology["hops"]]
    assert [capture.hop_name(i) for i in range(len(names))] == names  # before any read
    assert capture.hop_name(len(names)) == f"if{len(names)}"
    seen = {(pkt.interface, pkt.interface_name) for pkt in capture}
    assert {capture.hop_name(i) for i, _ in seen} == set(names)
    assert all(capture.hop_name(i) == name for i, name in seen)


def test_a_pcap_is_hop_if0(tmp_path: Path) -> None:
    path = tmp_path / "one.pcap"
    path.write_bytes(_pcap([(1, 0, FRAME, 60)]))
    assert osilab.read(path).hop_name(0) == "if0"
    packed = tmp_path / "one.pcap.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert osilab.read(packed).hop_name(0) == "if0"
    zeek = THIRDPARTY / "zeek" / "http-get.pcap"
    if zeek.exists():
        assert osilab.read(zeek).hop_name(0) == "if0"


def test_hop_name_helper() -> None:
    interfaces = [Interface(0, 1, "client-alb"), Interface(1, 1, None)]
    assert [hop_name(interfaces, i) for i in range(3)] == ["client-alb", "if1", "if2"]


def test_a_second_read_does_not_describe_the_interfaces_twice() -> None:
    capture = osilab.read(_needs(ALB))
    list(capture)
    first = list(capture.interfaces)
    list(capture.records())
    assert capture.interfaces == first

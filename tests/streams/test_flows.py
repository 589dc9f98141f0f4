"""Flows: orientation, counts, streaming eviction, and the number of TCP conversations vs tshark."""

from __future__ import annotations

import subprocess

import pytest
from shared_paths import thirdparty_captures

import osilab
from osilab.streams import flows
from osilab.streams.flows import FlowTable, orient


@pytest.mark.parametrize(
    ("sport", "dport", "flags", "sender_is_client"),
    [
        (51514, 80, None, True),
        (80, 51514, None, False),
        (443, 22, None, True),  # both well known: the lower port is the server's
        (60000, 29518, None, True),  # both ordinary: the lower port is the server's
        (6379, 40000, None, False),  # a registered service port
        (80, 51514, 0x02, True),  # a SYN says it all
        (51514, 80, 0x12, False),  # so does a SYN+ACK
    ],
)
def test_orientation(sport, dport, flags, sender_is_client):
    assert orient(sport, dport, flags) is sender_is_client


def test_flows_that_end_leave_the_table():
    table = FlowTable(idle_timeout=10, closed_linger=1)
    table.packet("tcp", "192.0.2.1", 40000, "203.0.113.5", 80, 0x02, 1, 0.0, 60, 0)
    table.packet("tcp", "192.0.2.1", 40000, "203.0.113.5", 80, 0x04, 2, 0.5, 60, 0)  # reset
    table.packet("udp", "192.0.2.1", 5000, "203.0.113.5", 53, None, 3, 1.0, 60, 20)
    assert len(table) == 2
    _, _, ended = table.packet("tcp", "192.0.2.2", 40001, "203.0.113.5", 80, 0x02, 4, 2.0, 60, 0)
    assert [f.record().state for f in ended] == ["reset"]
    flow, _, ended = table.packet(
        "tcp", "192.0.2.2", 40001, "203.0.113.5", 80, 0x10, 5, 500.0, 60, 0
    )
    # Both silent flows idled out; this late segment starts a new flow, seen mid-stream.
    assert sorted((f.key.proto, f.record().end_reason) for f in ended) == [
        ("tcp", "idle"),
        ("udp", "idle"),
    ]
    assert len(table) == 1 and flow.midstream and flow.index == 3


def _udp(table: FlowTable, sport: int, no: int, time: float) -> list[str]:
    """One datagram from client port ``sport``; the end reasons of the flows it ended."""
    _, _, ended = table.packet("udp", "192.0.2.1", sport, "203.0.113.5", 53, None, no, time, 60, 20)
    return sorted(f"{f.key.client.port}:{f.record().end_reason}" for f in ended)


def test_expiry_is_looked_at_again_when_a_timeout_is_lowered() -> None:
    """The table skips expiry until the earliest time anything can end (worked out from
    the timeouts): lowering a timeout must make it look again, or flows would end late."""
    table = FlowTable(udp_idle_timeout=100)
    assert _udp(table, 1000, 1, 0.0) == [] and _udp(table, 1001, 2, 1.0) == []
    table.udp_idle_timeout = 5
    assert _udp(table, 1002, 3, 10.0) == ["1000:idle", "1001:idle"]


def test_expiry_after_a_packet_from_the_past() -> None:
    """Times that go back (merged captures, clock steps) end the skip for good: every flow
    still ends once its own silence is longer than its timeout."""
    table = FlowTable(udp_idle_timeout=10)
    assert _udp(table, 1000, 1, 100.0) == []
    assert _udp(table, 1001, 2, 50.0) == []  # from the past: the log is no longer in order
    assert _udp(table, 1002, 3, 105.0) == []
    assert _udp(table, 1003, 4, 111.0) == ["1000:idle", "1001:idle"]
    assert _udp(table, 1004, 5, 116.0) == ["1002:idle"]


def test_json_keys_and_counts_on_a_real_capture(thirdparty):
    [record] = [
        r for r in flows(osilab.read(thirdparty / "zeek/http-get.pcap")) if r.key.proto == "tcp"
    ]
    obj = record.to_json()
    assert list(obj)[:8] == [
        "proto",
        "client",
        "server",
        "packets",
        "bytes",
        "first",
        "last",
        "state",
    ]
    assert (obj["client"], obj["server"]) == ("141.142.228.5:59856", "192.150.187.43:80")
    assert (obj["packets"], obj["first"], obj["last"], obj["state"]) == (14, 1, 14, "closed")
    assert obj["bytes"] == sum(
        p.wire_length for p in osilab.read(thirdparty / "zeek/http-get.pcap")
    )


def _tshark_tcp_conversations(path) -> int:
    out = subprocess.run(
        ["tshark", "-n", "-q", "-r", str(path), "-z", "conv,tcp"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return sum(1 for line in out.splitlines() if "<->" in line)


#: Captures where osilab's count differs from tshark's, with the reason.
CONVERSATION_DIFFERENCES = {
    "suricata-verify/fuzz-bad-record-length.pcap": "the fuzzed frame's TCP header is cut short: "
    "osilab keeps no flow for a transport header without payload length, tshark counts it",
}


def test_same_number_of_tcp_conversations_as_tshark(tshark, thirdparty):
    total = agree = 0
    differ = []
    for path in thirdparty_captures():
        key = f"{path.parent.name}/{path.name}"
        theirs = _tshark_tcp_conversations(path)
        ours = sum(1 for r in flows(osilab.read(path)) if r.key.proto == "tcp")
        total += 1
        if ours == theirs:
            agree += 1
        else:
            differ.append((key, ours, theirs, CONVERSATION_DIFFERENCES.get(key, "UNEXPLAINED")))
    print(
        f"\nmeasured: TCP conversations: {agree}/{total} captures give tshark's count; differences: {differ}"
    )
    assert all(reason != "UNEXPLAINED" for *_, reason in differ), differ


def test_packed_keys_unpack_to_the_texts_they_were_packed_from() -> None:
    """FlowKeys packs a flow's identity into one int (the flow table's key); any text,
    canonical or not, comes back as it went in, and two flows never share a key."""
    from osilab.streams.rows import FlowKeys

    keys = FlowKeys()
    idents = [
        ("tcp", "198.51.100.7", 51514, "203.0.113.10", 80, 0, ""),
        ("udp", "2001:db8::1", 5353, "2001:db8::2", 53, 3, "vxlan 42 192.0.2.1-192.0.2.2"),
        ("tcp", "192.0.2.1", 65535, "2001:db8::9", 0, 1, ""),  # mixed families (odd, but kept)
        ("tcp", "2001:DB8::1", 1, "not an address", 2, 0, ""),  # non-canonical texts
        ("tcp", "203.0.113.10", 80, "198.51.100.7", 51514, 0, ""),  # the first one reversed
    ]
    packed = [keys.pack(*ident) for ident in idents]
    assert [keys.unpack(key) for key in packed] == idents
    assert len(set(packed)) == len(idents)


def test_a_flow_without_payload_stays_a_row_until_handed_out() -> None:
    table = FlowTable()
    for port in range(1000, 1100):
        table.feed("tcp", "192.0.2.1", port, "203.0.113.5", 80, 0x02, port, 0.0, 60, 0)
    assert len(table) == 100 and not table._objects  # rows only: no Flow object
    flow, _, _ = table.packet("tcp", "203.0.113.5", 80, "192.0.2.1", 1000, 0x12, 2000, 0.1, 60, 0)
    assert table._objects == {flow.row: flow} and flow.packets == (1, 1)
    assert flow.record().state == "syn_received" and flow.index == 0
    ended = table.finish()
    assert [f.index for f in ended] == list(range(1, 100)) + [0]  # oldest activity first
    assert {f.record().state for f in ended[:-1]} == {"syn_sent"}


def test_the_activity_log_stays_bounded_when_few_flows_take_turns() -> None:
    """Two UDP flows alternating for 100,000 packets: the expiry log is compacted, so it
    holds about one entry per live flow, not one per packet (4 bytes per packet forever)."""
    table = FlowTable()
    for no in range(1, 100_001):
        port = 5000 + no % 2
        table.feed("udp", "198.51.100.7", port, "203.0.113.10", 53, None, no, no * 1e-3, 60, 18)
    assert len(table) == 2
    assert len(table._log) <= 2 * len(table) + 1024

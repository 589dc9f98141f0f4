"""The NLB's QUIC listener against its UDP listener on a synthetic connection migration,
and AWS's rules for QUIC listeners (NLB-UG create-listener; API TargetDescription).

The migration: a QUIC client's first Initial (RFC 9001 Appendix A.2's packet, whose
Destination Connection ID the client drew at random) is hashed to a target; that target
issues connection IDs in QUIC-LB's plaintext form (a first octet, then its 8-byte
QuicServerId); the client sends short-header packets with that ID, first from its first
port, then from a new one (RFC 9000 §9). A UDP listener sees a new 5-tuple and hashes it
afresh; a QUIC listener reads the server ID and keeps the connection on its target.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from protocols.test_quic import V1_CLIENT_INITIAL, _udp_frame

import osilab
from osilab.balancers.nlb import NetworkLoadBalancer
from osilab.balancers.quic_lb import QuicServerId, destination_connection_id, server_id_of
from osilab.errors import ConfigError

TARGETS = ["10.0.1.11:443", "10.0.1.12:443", "10.0.1.13:443"]
SERVER_IDS = {t: f"0x00000000000000a{i + 1}" for i, t in enumerate(TARGETS)}
VIP, CLIENT_IP = ("203.0.113.10", 443), "198.51.100.7"


def config(listener: str = "QUIC", *, extra_listeners: tuple[dict, ...] = (), ids: bool = True,
           group_protocol: str | None = None) -> dict:  # fmt: skip
    targets = [{"Id": t.split(":")[0], "Port": 443, **({"QuicServerId": SERVER_IDS[t]} if ids else {})}
               for t in TARGETS]  # fmt: skip
    return {
        "Type": "network",
        "TargetGroups": [{"Name": "web", "Protocol": group_protocol or listener, "Port": 443,
                          "Targets": targets}],  # fmt: skip
        "Listeners": [{"Protocol": listener, "Port": 443,
                       "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}]},
                      *extra_listeners],  # fmt: skip
    }


def short_packet(server_id: str) -> bytes:
    """A 1-RTT packet whose DCID is QUIC-LB plaintext: first octet 0x40 (config rotation
    0b010), the 8-byte server ID, a 4-byte nonce; then protected bytes."""
    return b"\x41" + b"\x40" + bytes.fromhex(server_id[2:]) + b"\x5e\xed\x00\x01" + bytes(40)


def migration(server_id: str, new_port: int) -> list[tuple[int, bytes]]:
    """(client port, payload) of the client's datagrams: Initial, one 1-RTT, the move."""
    return [(50000, V1_CLIENT_INITIAL), (50000, short_packet(server_id)), (new_port, short_packet(server_id))]


def feed(nlb: NetworkLoadBalancer, datagrams: list[tuple[int, bytes]]):
    return [nlb.feed(no=no, time=1.0 + no, proto="udp", src_ip=CLIENT_IP, src_port=port,
                     dst_ip=VIP[0], dst_port=VIP[1], payload=payload)
            for no, (port, payload) in enumerate(datagrams, 1)]  # fmt: skip


def first_target(listener: str) -> str:
    nlb = NetworkLoadBalancer(config(listener, ids=listener != "UDP"))
    return feed(nlb, migration("0x0000000000000000", 50000)[:1])[0].decision.target


def test_udp_moves_the_migrated_client_quic_keeps_it():
    hashed = first_target("QUIC")
    assert hashed == first_target("UDP")  # the first Initial: both hash the 5-tuple
    # a new port for which the 5-tuple hash picks another target (most ports do)
    probe = NetworkLoadBalancer(config("UDP", ids=False))
    new_port = next(port for port in range(50001, 50100)
                    if feed(probe, [(port, b"")])[-1].decision.target != hashed)  # fmt: skip
    datagrams = migration(SERVER_IDS[hashed], new_port)

    udp = feed(NetworkLoadBalancer(config("UDP", ids=False)), datagrams)
    assert [f.decision.target for f in udp] == [hashed, hashed, udp[2].decision.target]
    assert udp[2].new_flow and udp[2].decision.target != hashed
    assert "hashing the protocol, source and destination addresses and ports" in udp[2].decision.why

    quic = feed(NetworkLoadBalancer(config("QUIC")), datagrams)
    assert [f.decision.target for f in quic] == [hashed] * 3
    assert quic[0].decision.seen != ("quic.dcid",)  # the Initial: hashed
    assert "8394c8f03e515708 carries no QuicServerId" in quic[0].decision.why
    # It read the connection ID, so the why must not also say it never read the payload.
    assert "never reads the payload" not in quic[0].decision.why
    assert "reads only the QUIC header's Destination Connection ID" in quic[0].decision.why
    assert quic[2].new_flow and quic[2].decision.seen == ("quic.dcid",)
    why = quic[2].decision.why
    assert f"server ID {SERVER_IDS[hashed]}" in why and "the 5-tuple did not decide" in why
    assert f"{CLIENT_IP}:{new_port}" in why


def _pcap(path: Path, datagrams: list[tuple[int, bytes]]) -> Path:
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for no, (port, payload) in enumerate(datagrams, 1):
            frame = _udp_frame((CLIENT_IP, port), VIP, payload)
            out.write(struct.pack("<IIII", 1_700_000_000 + no, 0, len(frame), len(frame)) + frame)
    return path


def test_both_adapters_read_the_connection_id_from_a_capture(tmp_path):
    """``feed_packet`` (packets) and ``feed_flows`` (the fast path) decide as ``feed`` does."""
    hashed = first_target("QUIC")
    datagrams = migration(SERVER_IDS[hashed], 50077)
    path = _pcap(tmp_path / "migration.pcap", datagrams)
    by_packet = NetworkLoadBalancer(config("QUIC"))
    for packet in osilab.read(path):
        by_packet.feed_packet(packet)
    by_facts = NetworkLoadBalancer(config("QUIC"))
    by_facts.feed_flows(osilab.capture.flow_facts(osilab.read(path)))
    for nlb in (by_packet, by_facts):
        assert [(d.target, d.seen) for d in nlb.decisions] == [
            (hashed, nlb.decisions[0].seen), (hashed, ("quic.dcid",))]


@pytest.mark.parametrize(("dcid", "server_id"), [
    ("40" "00000000000000a1" "5eed0001", "00000000000000a1"),  # config rotation 0b010
    ("00" "1122334455667788", "1122334455667788"),  # no nonce: still routable
    ("e0" "00000000000000a1" "5eed0001", None),  # 0b111: "this ID carries no server ID"
    ("40" "00000000", None),  # too short for an 8-byte server ID
])  # fmt: skip
def test_quic_lb_plaintext_server_ids(dcid, server_id):
    found = server_id_of(bytes.fromhex(dcid))
    assert (found.hex() if found is not None else None) == server_id


def test_the_dcid_of_long_and_short_headers():
    assert destination_connection_id(V1_CLIENT_INITIAL) == bytes.fromhex("8394c8f03e515708")
    assert destination_connection_id(short_packet("0x00000000000000a2"))[1:9].hex() == "00000000000000a2"
    assert destination_connection_id(b"\x00" * 20) is None  # the fixed bit is clear: not QUIC


UDP_LISTENER = {"Protocol": "UDP", "Port": 53, "DefaultActions": [{"Type": "forward", "TargetGroupName": "dns"}]}
QUIC_2 = {"Protocol": "QUIC", "Port": 8443, "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}]}


@pytest.mark.parametrize(("raw", "message"), [
    (config("QUIC", extra_listeners=(QUIC_2,)), "only one QUIC or TCP_QUIC listener"),
    (config("TCP_QUIC", extra_listeners=(UDP_LISTENER,), group_protocol="TCP_QUIC"),
     "not allowed on a Network Load Balancer that has UDP or TCP_UDP listeners"),
    (config("QUIC", ids=False), "needs a QuicServerId: it is required if the protocol is QUIC"),
    (config("QUIC", group_protocol="UDP"), "uses UDP, which a QUIC listener cannot forward to"),
    (config("QUIC", group_protocol="TCP_UDP"), "must use the QUIC protocol"),
    (config("UDP"), "a QuicServerId can't be used with the UDP protocol"),
])  # fmt: skip
def test_aws_rules_for_quic_listeners(raw, message):
    raw["TargetGroups"].append({"Name": "dns", "Protocol": "UDP", "Port": 53, "Targets": ["10.0.1.53:53"]})
    with pytest.raises(ConfigError, match=message):
        NetworkLoadBalancer(raw)


def test_duplicate_server_ids_are_refused():
    raw = config("QUIC")
    raw["TargetGroups"][0]["Targets"][1]["QuicServerId"] = SERVER_IDS[TARGETS[0]]
    with pytest.raises(ConfigError, match="must be unique at the listener level"):
        NetworkLoadBalancer(raw)


@pytest.mark.parametrize("text", ["0x00000000000000A1", "00000000000000a1", "0x00a1", 161])
def test_server_id_format(text):
    with pytest.raises(ConfigError, match="0x prefix followed by 16 hexadecimal characters"):
        QuicServerId.parse(text)


def test_docstring_examples():
    import doctest

    from osilab.balancers import quic_lb

    result = doctest.testmod(quic_lb)
    assert result.failed == 0 and result.attempted > 0

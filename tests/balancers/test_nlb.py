"""The NLB model: one decision per flow at the SYN, flow table, idle timeouts, health, PROXY v2."""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter

import pytest
from balancers.balancer_helpers import (
    ACK,
    CLIENT,
    LB,
    PSH,
    SYN,
    FakePacket,
    nlb_config,
    tcp_connection,
)

from osilab.balancers.nlb import NetworkLoadBalancer, proxy_v2_header
from osilab.balancers.replay import replay

T0 = 1_700_000_000.0


def feed_all(nlb: NetworkLoadBalancer, packets) -> list:
    return [nlb.feed_packet(p) for p in packets]


def test_one_decision_per_flow_at_the_syn_and_every_packet_follows() -> None:
    nlb = NetworkLoadBalancer(nlb_config())
    packets = tcp_connection(1, 51514, payloads=3)
    fates = feed_all(nlb, packets)
    assert len(nlb.decisions) == 1
    decision = nlb.decisions[0]
    assert decision.unit == "flow" and decision.request is None
    assert decision.decided_at == 1 and fates[0].new_flow
    assert all(f.routed and f.decision is decision for f in fates)
    assert decision.seen == ("ip.src", "tcp.srcport", "ip.dst", "tcp.dstport")
    assert str(decision.flow) == f"{CLIENT}:51514-{LB}:80"
    assert "packet 1" in decision.why and "never reads the payload" in decision.why
    assert decision.target in ("192.0.2.11:80", "192.0.2.12:80", "192.0.2.13:80")
    assert nlb.accounting == {"routed": len(packets)}


def test_connections_spread_over_targets_and_are_reproducible() -> None:
    packets = [p for i in range(300) for p in tcp_connection(1 + 13 * i, 40000 + i, t0=T0 + i)]
    first = replay(packets, NetworkLoadBalancer(nlb_config()))
    second = replay(packets, NetworkLoadBalancer(nlb_config()))
    assert [d.target for d in first.decisions] == [d.target for d in second.decisions]
    counts = first.decisions.counts()
    print(
        f"\nNLB 300 connections over 3 targets: {counts}, imbalance {first.decisions.imbalance():.3f}"
    )
    assert len(first.decisions) == 300 and min(counts.values()) > 60
    assert first.total == len(packets) == first.routed


def test_mid_stream_packets_are_not_routable() -> None:
    nlb = NetworkLoadBalancer(nlb_config())
    packets = tcp_connection(1, 51514)[3:]  # the handshake was not seen
    result = replay(packets, nlb)
    assert len(result.decisions) == 0
    assert result.accounting == {"mid-stream without a handshake": len(packets)}


def test_tcp_idle_timeout_default_350() -> None:
    nlb = NetworkLoadBalancer(nlb_config())
    syn, synack, ack, data = tcp_connection(1, 51514)[:4]
    feed_all(nlb, [syn, synack, ack])
    data.time = ack.time + 349
    assert nlb.feed_packet(data).routed
    late = FakePacket(5, data.time + 351, "tcp", CLIENT, LB, 51514, 80, PSH | ACK, 5000)
    fate = nlb.feed_packet(late)
    assert not fate.routed and fate.reason == "idle timeout"
    again = FakePacket(6, late.time + 1, "tcp", CLIENT, LB, 51514, 80, ACK, 5000)
    assert nlb.feed_packet(again).reason == "idle timeout"  # the flow stays forgotten
    new_syn = FakePacket(7, late.time + 2, "tcp", CLIENT, LB, 51514, 80, SYN, 9999)
    assert nlb.feed_packet(new_syn).new_flow  # a new connection on the same ports
    assert len(nlb.decisions) == 2


@pytest.mark.parametrize(
    ("idle", "gap", "routed"), [(60, 59, True), (60, 61, False), (6000, 5999, True)]
)
def test_tcp_idle_timeout_is_configurable(idle: int, gap: float, routed: bool) -> None:
    nlb = NetworkLoadBalancer(
        nlb_config(listener={"Attributes": {"tcp.idle_timeout.seconds": str(idle)}})
    )
    syn, synack, ack, data = tcp_connection(1, 51514)[:4]
    feed_all(nlb, [syn, synack, ack])
    data.time = ack.time + gap
    assert nlb.feed_packet(data).routed is routed


def udp_config() -> dict:
    config = nlb_config()
    config["TargetGroups"][0]["Protocol"] = "UDP"
    config["Listeners"][0]["Protocol"] = "UDP"
    config["Listeners"][0]["Port"] = 53
    return config


def test_udp_flow_and_idle_timeout_makes_a_new_flow() -> None:
    nlb = NetworkLoadBalancer(udp_config())
    query = lambda no, t: FakePacket(no, t, "udp", CLIENT, LB, 40000, 53)  # noqa: E731
    answer = FakePacket(2, T0 + 0.01, "udp", LB, CLIENT, 53, 40000)
    assert nlb.feed_packet(query(1, T0)).new_flow
    assert nlb.feed_packet(answer).routed
    assert not nlb.feed_packet(query(3, T0 + 100)).new_flow  # within 120 s: same flow
    fate = nlb.feed_packet(query(4, T0 + 100 + 121))
    assert fate.new_flow and fate.routed  # UDP: after 120 s idle, simply a new flow
    assert [d.decided_at for d in nlb.decisions] == [1, 4]
    assert nlb.decisions[0].seen == ("ip.src", "udp.srcport", "ip.dst", "udp.dstport")
    assert nlb.decisions[0].client_ip_at_target == CLIENT  # always preserved for UDP


def test_health_change_rehashes_new_flows_only() -> None:
    targets = ["192.0.2.11:80", "192.0.2.12:80", "192.0.2.13:80"]
    # find which target the first connections land on, then make it unhealthy at +50 s
    probe = NetworkLoadBalancer(nlb_config(targets))
    before = [tcp_connection(1 + 13 * i, 40000 + i, t0=T0 + i) for i in range(30)]
    feed_all(probe, [p for c in before for p in c])
    victim = Counter(d.target for d in probe.decisions).most_common(1)[0][0]

    # connection termination off: open flows stay (tests/balancers/test_health.py checks the RST)
    keep = [{"Key": "target_health_state.unhealthy.connection_termination.enabled", "Value": "false"}]
    nlb = NetworkLoadBalancer(
        nlb_config(targets, HealthChanges=[{"Time": 50, "Target": victim, "State": "unhealthy"}],
                   Attributes=keep)
    )
    # old connections: handshake before +50 s, data after it
    old = [c[:3] for c in before]
    feed_all(nlb, [p for c in old for p in c])
    old_targets = {d.flow.client.port: d.target for d in nlb.decisions}
    on_victim = [port for port, t in old_targets.items() if t == victim]
    assert on_victim
    late_data = [
        FakePacket(1000 + i, T0 + 60 + i, "tcp", CLIENT, LB, port, 80, PSH | ACK, 1)
        for i, port in enumerate(on_victim)
    ]
    fates = feed_all(nlb, late_data)
    assert all(f.routed and f.decision.target == victim for f in fates)  # existing flows stay
    new = [tcp_connection(5000 + 13 * i, 45000 + i, t0=T0 + 60 + i) for i in range(60)]
    feed_all(nlb, [p for c in new for p in c])
    new_decisions = [d for d in nlb.decisions if d.flow.client.port >= 45000]
    assert len(new_decisions) == 60 and victim not in {d.target for d in new_decisions}
    assert "unhealthy" in new_decisions[0].why
    # flows on surviving targets keep hashing to the same place (Maglev, little disruption)
    same = sum(
        nlb.decisions[i].target == probe.decisions[i].target
        for i in range(30)
        if probe.decisions[i].target != victim
    )
    assert same == sum(1 for d in probe.decisions if d.target != victim)


def test_all_unhealthy_fails_open() -> None:
    targets = ["192.0.2.11:80", "192.0.2.12:80"]
    changes = [{"Time": 0, "Target": t, "State": "unhealthy"} for t in targets]
    nlb = NetworkLoadBalancer(nlb_config(targets, HealthChanges=changes))
    feed_all(nlb, tcp_connection(1, 51514))
    assert nlb.decisions[0].target in targets and "fails open" in nlb.decisions[0].why


def test_accounting_sums_to_total() -> None:
    packets = tcp_connection(1, 51514) + [
        FakePacket(20, T0 + 1, None, None, None, None, None),  # ARP: non-IP
        FakePacket(21, T0 + 1, "tcp", CLIENT, LB, 51600, 22, SYN, 1),  # no listener on 22
        FakePacket(22, T0 + 1, None, CLIENT, LB, None, None),  # ICMP: no listener
        FakePacket(23, T0 + 1, "tcp", CLIENT, LB, 51601, 80, PSH | ACK, 1),  # mid-stream
        FakePacket(24, T0 + 1, "tcp", CLIENT, LB, 51602, 80, SYN, 1, read_error="truncated record"),
    ]
    result = replay(packets, NetworkLoadBalancer(nlb_config()))
    assert result.accounting == {
        "routed": 10,
        "non-IP": 1,
        "no listener": 2,
        "mid-stream without a handshake": 1,
        "damaged": 1,
    }
    assert sum(result.accounting.values()) == result.total == len(packets)


def test_source_ip_affinity_sends_every_connection_of_a_client_to_one_target() -> None:
    nlb = NetworkLoadBalancer(nlb_config(Stickiness="source_ip"))
    feed_all(nlb, [p for i in range(40) for p in tcp_connection(1 + 13 * i, 40000 + i)])
    assert len({d.target for d in nlb.decisions}) == 1
    assert nlb.decisions[0].seen == ("ip.src", "ip.dst")


def test_sequence_number_option() -> None:
    nlb = NetworkLoadBalancer(nlb_config(Hash="5-tuple+seq"))
    feed_all(nlb, tcp_connection(1, 51514))
    assert nlb.decisions[0].seen[-1] == "tcp.seq"
    # the same 4-tuple reused after FIN with a new ISN is a new connection, hashed again
    reuse = tcp_connection(20, 51514, t0=T0 + 5)
    for p in reuse:
        p.tcp_seq += 7
    feed_all(nlb, reuse)
    assert [d.decided_at for d in nlb.decisions] == [1, 20]


def test_tls_listener_and_tcp_443_explain_what_the_nlb_could_see() -> None:
    tls = nlb_config()
    tls["Listeners"][0].update(Protocol="TLS", Port=443)
    nlb = NetworkLoadBalancer(tls)
    feed_all(nlb, tcp_connection(1, 51514, port=443))
    assert "terminates TLS" in nlb.decisions[0].why
    tcp443 = nlb_config()
    tcp443["Listeners"][0]["Port"] = 443
    nlb = NetworkLoadBalancer(tcp443)
    feed_all(nlb, tcp_connection(1, 51514, port=443))
    assert "SNI" in nlb.decisions[0].why and "does not route on it" in nlb.decisions[0].why
    assert "tls.handshake.extensions_server_name" not in nlb.decisions[0].seen


def test_client_ip_preservation() -> None:
    off = NetworkLoadBalancer(nlb_config())
    feed_all(off, tcp_connection(1, 51514))
    on = NetworkLoadBalancer(nlb_config(PreserveClientIp=True))
    feed_all(on, tcp_connection(1, 51514))
    assert off.decisions[0].client_ip_at_target == "the NLB's private IP"
    assert on.decisions[0].client_ip_at_target == CLIENT


# ------------------------------------------------------------------ PROXY protocol v2


def parse_proxy_v2(data: bytes) -> dict:
    """An independent reading of haproxy doc/proxy-protocol.txt §2.2, for checking."""
    assert data[:12] == bytes.fromhex("0D0A0D0A000D0A515549540A")
    version, command = data[12] >> 4, data[12] & 0x0F
    family, transport = data[13] >> 4, data[13] & 0x0F
    (length,) = struct.unpack("!H", data[14:16])
    body = data[16 : 16 + length]
    assert len(data) == 16 + length
    size = 4 if family == 1 else 16
    src = ipaddress.ip_address(body[:size])
    dst = ipaddress.ip_address(body[size : 2 * size])
    sport, dport = struct.unpack("!HH", body[2 * size : 2 * size + 4])
    tlvs = []
    rest = body[2 * size + 4 :]
    while rest:
        kind, tlv_len = rest[0], struct.unpack("!H", rest[1:3])[0]
        tlvs.append((kind, rest[3 : 3 + tlv_len]))
        rest = rest[3 + tlv_len :]
    return dict(
        version=version,
        command=command,
        family=family,
        transport=transport,
        src=str(src),
        dst=str(dst),
        sport=sport,
        dport=dport,
        tlvs=tlvs,
        length=length,
    )


@pytest.mark.parametrize(
    ("proto", "src", "dst", "family", "transport", "length"),
    [
        ("tcp", "198.51.100.7", "203.0.113.20", 1, 1, 12),
        ("udp", "198.51.100.7", "203.0.113.20", 1, 2, 12),
        ("tcp", "2001:db8::7", "2001:db8::20", 2, 1, 36),
    ],
)
def test_proxy_v2_bytes(proto, src, dst, family, transport, length) -> None:
    parsed = parse_proxy_v2(proxy_v2_header(proto, src, 51514, dst, 80))
    assert parsed == dict(
        version=2,
        command=1,
        family=family,
        transport=transport,
        src=src,
        dst=dst,
        sport=51514,
        dport=80,
        tlvs=[],
        length=length,
    )


def test_proxy_v2_tlv_and_decision_bytes() -> None:
    vpce = (0xEA, b"\x01vpce-08d2bf15fac5001c5")
    parsed = parse_proxy_v2(
        proxy_v2_header("tcp", "198.51.100.7", 1, "203.0.113.20", 2, tlvs=(vpce,))
    )
    assert parsed["tlvs"] == [vpce] and parsed["length"] == 12 + 3 + len(vpce[1])
    nlb = NetworkLoadBalancer(nlb_config(ProxyProtocolV2=True))
    feed_all(nlb, tcp_connection(1, 51514))
    header = nlb.decisions[0].proxy_v2
    assert header is not None
    parsed = parse_proxy_v2(header)
    assert (parsed["src"], parsed["sport"], parsed["dst"], parsed["dport"]) == (
        CLIENT,
        51514,
        LB,
        80,
    )
    assert nlb.decisions[0].to_json()["proxy_v2"] == header.hex()


def test_flow_table_is_swept_on_long_captures(monkeypatch) -> None:
    import osilab.balancers.nlb as nlb_module

    monkeypatch.setattr(nlb_module, "SWEEP_EVERY", 50)
    nlb = NetworkLoadBalancer(nlb_config())
    packets = [p for i in range(100) for p in tcp_connection(1 + 13 * i, 40000 + i, t0=T0 + i * 10)]
    result = replay(packets, nlb)
    assert result.routed == len(packets) and len(result.decisions) == 100
    assert len(nlb._flows) < 40  # closed flows quiet for 240 s are forgotten
    # a stray packet of a forgotten, closed flow is mid-stream (AWS: RST)
    stray = FakePacket(99999, T0 + 2000, "tcp", CLIENT, LB, 40000, 80, ACK, 1)
    assert nlb.feed_packet(stray).reason == "mid-stream without a handshake"

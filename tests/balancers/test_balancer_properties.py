"""Invariants, swept by Hypothesis: accounting, flow affinity, wildcard semantics."""

from __future__ import annotations

import fnmatch

from balancers.balancer_helpers import ACK, CLIENT, FIN, LB, PSH, RST, SYN, FakePacket, nlb_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osilab.balancers import NetworkLoadBalancer, replay
from osilab.balancers.rules import wildcard_match

FLAG_CHOICES = [SYN, SYN | ACK, ACK, PSH | ACK, FIN | ACK, RST, 0]

packet_facts = st.tuples(
    st.sampled_from(["tcp", "tcp", "udp", None]),  # proto (None: ICMP and friends)
    st.sampled_from([CLIENT, "198.51.100.8", None]),  # None: not IP
    st.integers(40000, 40003),  # client port
    st.sampled_from([80, 80, 22]),  # server port (22 has no listener)
    st.booleans(),  # direction: client -> server?
    st.sampled_from(FLAG_CHOICES),
    st.floats(0, 400),  # gap since the previous packet (crosses idle timeouts)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(packet_facts, max_size=60))
def test_nlb_accounting_and_flow_affinity(facts) -> None:
    config = nlb_config()
    config["TargetGroups"][0]["Protocol"] = "TCP_UDP"
    config["Listeners"][0]["Protocol"] = "TCP_UDP"
    nlb = NetworkLoadBalancer(config)
    packets, now = [], 1_700_000_000.0
    for no, (proto, client, cport, sport, outbound, flags, gap) in enumerate(facts, start=1):
        now += gap
        if client is None:
            packets.append(FakePacket(no, now, None, None, None, None, None))
            continue
        ends = (client, cport, LB, sport) if outbound else (LB, sport, client, cport)
        packets.append(
            FakePacket(
                no,
                now,
                proto,
                ends[0],
                ends[2],
                ends[1] if proto else None,
                ends[3] if proto else None,
                flags if proto == "tcp" else None,
                1000,
            )
        )
    fates = [nlb.feed_packet(p) for p in packets]
    accounting = dict(nlb.accounting)
    assert sum(accounting.values()) == len(packets)
    assert accounting.get("routed", 0) == sum(f.routed for f in fates)
    for packet, fate in zip(packets, fates, strict=True):
        if fate.new_flow:
            decision = fate.decision
            assert decision is not None and decision.decided_at == packet.no
            if packet.proto == "tcp":
                assert (
                    packet.tcp_flags & SYN and not packet.tcp_flags & ACK
                )  # TCP decides at a SYN only
        if fate.routed:
            decision = fate.decision
            assert decision is not None
            endpoints = {(packet.ip_src, packet.src_port), (packet.ip_dst, packet.dst_port)}
            assert endpoints == {
                (decision.flow.client.ip, decision.flow.client.port),
                (decision.flow.server.ip, decision.flow.server.port),
            }
        else:
            assert fate.reason in (
                "non-IP",
                "no listener",
                "mid-stream without a handshake",
                "idle timeout",
                "damaged",
            )
    # the same packets replayed give the same decisions (reproducible, no hidden randomness)
    again = replay(packets, NetworkLoadBalancer(config))
    assert [d.target for d in again.decisions] == [d.target for d in nlb.decisions]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab/.*?", max_size=8), st.text(alphabet="ab/.", max_size=10))
def test_wildcards_match_like_fnmatch_without_brackets(pattern: str, value: str) -> None:
    """AWS * and ? mean what shell globs mean (with no [...] classes, and * crossing '/')."""
    assert wildcard_match(pattern, value, case_sensitive=True) is fnmatch.fnmatchcase(
        value, pattern
    )

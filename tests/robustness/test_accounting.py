"""Accounting: for every capture, a replay says what happened to every packet.

Each packet is routed, or not routable with a reason (non-IP, no listener, mid-stream
without a handshake, damaged, idle timeout). The counts must sum to the number of packets
the reader yields, counted independently here, on every bundled and third-party capture.
"""

from __future__ import annotations

import pytest
from shared_paths import CAPTURES, thirdparty_captures

import osilab
from osilab.balancers import NetworkLoadBalancer, default_config, replay

BUNDLED = sorted(CAPTURES.glob("*/*.pcapng"))
REASONS = {"routed", "non-IP", "no listener", "mid-stream without a handshake", "damaged", "idle timeout"}


def _servers(path):
    """The server side of every flow, as default_config wants it (from the SYN/ACKs and ports)."""
    servers = set()
    for pkt in osilab.read(path):
        if pkt.proto == "tcp" and pkt.tcp_flags is not None and pkt.tcp_flags & 0x12 == 0x12:
            servers.add((pkt.ip_src, pkt.src_port, "tcp"))
        elif pkt.proto == "udp" and pkt.dst_port is not None and pkt.dst_port < 1024:
            servers.add((pkt.ip_dst, pkt.dst_port, "udp"))
    return servers or {("192.0.2.10", 80, "tcp")}


@pytest.mark.parametrize("path", thirdparty_captures() + BUNDLED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_nlb_replay_accounts_for_every_packet(path):
    expected = sum(1 for _ in osilab.read(path))
    result = replay(osilab.read(path), NetworkLoadBalancer(default_config("network", _servers(path))))
    assert result.total == expected
    assert sum(result.accounting.values()) == expected
    assert set(result.accounting) <= REASONS, result.accounting

"""replay() and compare(): packets in, decisions and accounting out, both models side by side."""

from __future__ import annotations

import importlib

import pytest
from balancers.balancer_helpers import (
    alb_config,
    flow,
    nlb_config,
    request,
    response,
    tcp_connection,
)

from osilab.balancers import ApplicationLoadBalancer, NetworkLoadBalancer, compare, replay
from osilab.balancers.compare import servers_seen

T0 = 1_700_000_000.0


def keep_alive_capture(connections: int = 3, requests_per_connection: int = 2):
    """Packets of a few keep-alive connections, and the HTTP messages in them."""
    packets, messages = [], []
    no = 1
    for c in range(connections):
        port = 50000 + c
        conn = tcp_connection(no, port, t0=T0 + c, payloads=requests_per_connection)
        packets += conn
        on = flow(client_port=port)
        for r in range(requests_per_connection):
            data = conn[3 + 4 * r]  # the request segment
            req = request(
                f"/api/item/{c}/{r}" if r % 2 else "/",
                index=r,
                on=on,
                first=data.no,
                complete=data.no,
                time=data.time,
            )
            messages += [req, response(req, packet=conn[3 + 4 * r + 2].no)]
        no += len(conn)
    return packets, messages


def test_alb_replay_from_messages() -> None:
    _, messages = keep_alive_capture()
    result = replay(messages, ApplicationLoadBalancer(alb_config()))
    assert result.unit == "request" and result.total == 6 and result.routed == 6
    assert [d.decided_at for d in result.decisions] == [
        m.headers_complete_packet for m in messages[::2]
    ]


def test_alb_replay_accounts_for_every_request() -> None:
    fixed = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}
    config = alb_config(
        [
            {
                "Priority": "1",
                "Conditions": [{"Field": "path-pattern", "Values": ["/api/*"]}],
                "Actions": [fixed],
            }
        ]
    )
    _, messages = keep_alive_capture()
    result = replay(messages, ApplicationLoadBalancer(config))
    assert result.accounting == {"routed": 3, "fixed-response": 3}
    assert sum(result.accounting.values()) == result.total


def test_alb_replay_uses_iter_http_and_sees_the_syns(monkeypatch) -> None:
    packets, messages = keep_alive_capture()
    seen_packets = []

    def fake_iter_http(source, *, keylog=None, on_syn=None, on_end=None, on_certificate=None, unread_tls=None):
        # iter_http's contract: read every packet, tell on_syn of each client SYN
        for packet in source:
            seen_packets.append(packet.no)
            if packet.proto == "tcp" and packet.tcp_flags & 0x12 == 0x02 and on_syn:
                on_syn(flow(client_port=packet.src_port), packet.no, packet.time)
        yield from messages

    # replay reads osilab.pipeline.iter_http when an L7 replay starts (an NLB never needs it)
    monkeypatch.setattr(importlib.import_module("osilab.pipeline"), "iter_http", fake_iter_http)
    result = replay(packets, ApplicationLoadBalancer(alb_config()))
    assert seen_packets == [p.no for p in packets]
    assert result.total == 3 * 2
    assert "packets after the SYN (packet 1)" in result.decisions[0].why


def test_compare_side_by_side() -> None:
    packets, messages = keep_alive_capture(connections=3, requests_per_connection=2)
    config = alb_config(
        groups=[{"Name": "web", "Targets": ["192.0.2.11:80", "192.0.2.12:80", "192.0.2.13:80"]}]
    )
    result = compare(packets, config, messages=messages)
    assert len(result.rows) == 6
    for row in result.rows:
        syn = next(p.no for p in packets if p.src_port == row.request.flow.client.port)
        assert row.nlb_decided_at == syn == row.syn_packet
        assert row.alb_decided_at == row.request.headers_complete_packet
        assert row.alb_packets_after_syn == row.request.headers_complete_packet - syn
        assert row.syn_time is not None
        assert row.alb_ms_after_syn == pytest.approx((row.request.time - row.syn_time) * 1000)
        assert (row.alb_packets_after_syn or 0) > 0
        assert f"TCP payload of packet {row.request.headers_complete_packet}" in row.nlb_why
    # the NLB pins both requests of a connection to one target; the ALB goes round robin
    by_conn: dict[str, set] = {}
    for row in result.rows:
        by_conn.setdefault(str(row.request.flow), set()).add(row.nlb_target)
    assert all(len(targets) == 1 for targets in by_conn.values())
    assert [row.alb_target for row in result.rows] == [
        "192.0.2.11:80",
        "192.0.2.12:80",
        "192.0.2.13:80",
    ] * 2
    assert result.alb_request_counts() == {
        "192.0.2.11:80": 2,
        "192.0.2.12:80": 2,
        "192.0.2.13:80": 2,
    }
    assert result.imbalance()["alb"] == 1.0
    assert sum(result.nlb_request_counts().values()) == 6
    assert result.requests_per_connection() == {
        str(flow(client_port=50000 + c)): 2 for c in range(3)
    }
    assert result.nlb.total == len(packets) and result.nlb.routed == len(packets)
    lines = "\n".join(result.summary_lines())
    assert "keep-alive" in lines and "imbalance" in lines
    frame = result.to_dataframe()
    assert list(frame["alb_decided_at"]) == [r.alb_decided_at for r in result.rows]


def test_compare_default_config_from_the_capture() -> None:
    packets, messages = keep_alive_capture()
    assert servers_seen(packets) == [("203.0.113.20", 80, "tcp")]
    result = compare(packets, messages=messages)
    # Only what the capture shows: the one server the clients reached (no invented targets).
    assert result.targets == ("203.0.113.20:80",)
    assert len(result.rows) == 6


def test_nlb_config_gives_the_alb_counterpart() -> None:
    packets, messages = keep_alive_capture()
    result = compare(packets, nlb_config(), messages=messages)
    assert result.alb.routed == 6 and len(result.nlb.decisions) == 3


def test_decision_list_views() -> None:
    packets, _ = keep_alive_capture()
    result = replay(packets, NetworkLoadBalancer(nlb_config()))
    decisions = result.decisions
    assert sum(decisions.counts().values()) == 3
    assert decisions.imbalance() >= 1.0
    assert "decisions" in decisions._repr_html_() and "<table" in decisions[0]._repr_html_()
    frame = decisions.to_dataframe()
    assert list(frame.columns[:8]) == [
        "unit",
        "flow",
        "request",
        "decided_at",
        "target_group",
        "target",
        "seen",
        "why",
    ]
    assert "routed" in result._repr_html_()


def test_compare_with_both_configs_given() -> None:
    packets, messages = keep_alive_capture()
    alb = alb_config(groups=[{"Name": "web", "Targets": ["192.0.2.41:80", "192.0.2.42:80"]}])
    result = compare(packets, nlb_config(), alb_config=alb, messages=messages)
    assert {row.alb_target for row in result.rows} == {"192.0.2.41:80", "192.0.2.42:80"}
    assert {row.nlb_target for row in result.rows} <= {
        "192.0.2.11:80",
        "192.0.2.12:80",
        "192.0.2.13:80",
    }


def test_every_result_object_shows_itself(capsys) -> None:
    packets, messages = keep_alive_capture()
    result = compare(packets, messages=messages)
    result.show()
    result.nlb.show()
    result.alb.decisions[0].show()
    out = capsys.readouterr().out
    assert "GET /: NLB 203.0.113.20:80" in out and "imbalance" in out
    assert f"NLB: {len(packets)} packets, {len(packets)} routed" in out
    assert "why:" in out and "X-Forwarded-For" in out
    assert result.summary().startswith("6 requests on 3 connections")
    assert result.alb.decisions.summary().startswith("6 decisions; per target:")
    assert "<table" in result._repr_html_()


def test_each_model_is_spread_over_its_own_targets() -> None:
    """An NLB with more listeners than the ALB must not dilute the ALB's imbalance."""
    packets, messages = keep_alive_capture(connections=3, requests_per_connection=2)
    alb = alb_config(groups=[{"Name": "web", "Targets": ["192.0.2.11:80", "192.0.2.12:80"]}])
    nlb = nlb_config(["192.0.2.11:80", "192.0.2.12:80", "192.0.2.13:80", "192.0.2.14:80"])
    result = compare(packets, nlb, alb_config=alb, messages=messages)
    assert set(result.alb_request_counts()) == {"192.0.2.11:80", "192.0.2.12:80"}
    assert len(result.nlb_request_counts()) == 4
    assert result.imbalance()["alb"] == 1.0

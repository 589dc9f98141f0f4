"""What both models do when a target's health changes, and the ALB's target-group facts
(issue 18; ../shared/docs/lb-reference.md §1.5, §1.7, §2, §6), table-driven."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from balancers.balancer_helpers import (
    ACK,
    CLIENT,
    LB,
    PSH,
    FakePacket,
    alb_config,
    flow,
    nlb_config,
    request,
    response,
    tcp_connection,
)

from osilab.balancers.alb import ApplicationLoadBalancer
from osilab.balancers.nlb import NetworkLoadBalancer
from osilab.capture.facts import FlowFacts

A, B = "192.0.2.11:80", "192.0.2.12:80"
T0 = 1_700_000_000.0


def _attrs(**attributes: str) -> list[dict[str, str]]:
    return [{"Key": k.replace("__", "."), "Value": v} for k, v in attributes.items()]


def _open_flows(nlb: NetworkLoadBalancer, count: int = 8) -> dict[int, str]:
    """``count`` connections, handshake only, at T0+i ms: client port -> target."""
    for i in range(count):
        for packet in tcp_connection(1 + 10 * i, 40000 + i, t0=T0 + i * 0.01)[:3]:
            nlb.feed_packet(packet)
    return {d.flow.client.port: d.target for d in nlb.decisions}


def _data(no: int, time: float, port: int) -> FakePacket:
    return FakePacket(no, time, "tcp", CLIENT, LB, port, 80, PSH | ACK, 1)


# (health entry, attributes, packet time after the change, the victim's flows then routed?)
NLB_CASES = [
    ("unhealthy", {}, 1.0, False),  # NLB-UG: RST on the flows already on it
    ("unhealthy", {"target_health_state.unhealthy.connection_termination.enabled": "false"}, 1.0, True),
    ("unhealthy", {"target_health_state.unhealthy.draining_interval_seconds": "30"}, 10.0, True),
    ("unhealthy", {"target_health_state.unhealthy.draining_interval_seconds": "30"}, 31.0, False),
    ("draining", {}, 340.0, True),  # past the 300 s delay without connection termination: they stay
    ("draining", {"deregistration_delay.timeout_seconds": "60",
                  "deregistration_delay.connection_termination.enabled": "true"}, 30.0, True),
    ("draining", {"deregistration_delay.timeout_seconds": "60",
                  "deregistration_delay.connection_termination.enabled": "true"}, 61.0, False),
]  # fmt: skip


@pytest.mark.parametrize(("state", "attributes", "after", "routed"), NLB_CASES)
@pytest.mark.parametrize("fast", [False, True], ids=["feed", "feed_flows"])
def test_nlb_flows_on_a_target_that_leaves(state, attributes, after, routed, fast) -> None:
    victim = A
    config = nlb_config([A, B], Health=[{"Target": victim, "At": 5, "State": state}],
                        Attributes=[{"Key": k, "Value": v} for k, v in attributes.items()])  # fmt: skip
    nlb = NetworkLoadBalancer(config)
    targets = _open_flows(nlb)
    ports = [p for p, t in targets.items() if t == victim]
    others = [p for p, t in targets.items() if t != victim]
    assert ports and others
    late = [_data(1000 + i, T0 + 5 + after + i * 0.001, p) for i, p in enumerate(ports + others)]
    if fast:
        facts = [FlowFacts(p.no, p.time, 0, "tcp", p.ip_src, p.src_port, p.ip_dst, p.dst_port,
                           p.tcp_flags, p.tcp_seq, None, 0, 0, 0, 0, None, b"") for p in late]  # fmt: skip
        nlb.feed_flows(facts)
        reasons = nlb.accounting
        assert reasons["reset by the NLB"] == (0 if routed else len(ports))
    else:
        fates = [nlb.feed_packet(p) for p in late]
        assert [f.routed for f in fates[: len(ports)]] == [routed] * len(ports)
        assert all(f.routed for f in fates[len(ports) :])  # flows on the other target live on
        if not routed:
            assert {f.reason for f in fates[: len(ports)]} == {"reset by the NLB"}
    resets = [d for d in nlb.decisions if d.action == "reset"]
    assert len(resets) == (0 if routed else len(ports))
    assert all(d.target == victim and not d.forwarded for d in resets)
    if resets:
        assert "TCP RST" in resets[0].why and victim in resets[0].why
    new = [d for d in nlb.decisions if d.action == "forward" and d.time > T0 + 5]
    assert victim not in {d.target for d in new}


def test_nlb_a_target_back_in_time_keeps_its_flows() -> None:
    config = nlb_config([A, B], Attributes=_attrs(
        target_health_state__unhealthy__draining_interval_seconds="30"),
        Health=[{"Target": A, "At": 5, "State": "unhealthy"}, {"Target": A, "At": 20, "State": "healthy"}])  # fmt: skip
    nlb = NetworkLoadBalancer(config)
    ports = [p for p, t in _open_flows(nlb).items() if t == A]
    fates = [nlb.feed_packet(_data(1000 + i, T0 + 40 + i, p)) for i, p in enumerate(ports)]
    assert all(f.routed for f in fates) and not [d for d in nlb.decisions if d.action == "reset"]


def test_nlb_every_target_unhealthy_fails_open_and_resets_nothing() -> None:
    config = nlb_config(
        [A, B], Health=[{"Target": t, "At": 5, "State": "unhealthy"} for t in (A, B)]
    )
    nlb = NetworkLoadBalancer(config)
    ports = list(_open_flows(nlb))
    fates = [nlb.feed_packet(_data(1000 + i, T0 + 6 + i, p)) for i, p in enumerate(ports)]
    assert all(f.routed for f in fates)
    later = [nlb.feed_packet(p) for p in tcp_connection(5000, 50000, t0=T0 + 20)]
    assert later[0].new_flow and "fails open" in later[0].decision.why


def test_nlb_no_registered_target() -> None:
    config = nlb_config([A, B], Health=[{"Target": t, "At": 0, "State": "unused"} for t in (A, B)])
    nlb = NetworkLoadBalancer(config)
    fate = nlb.feed_packet(tcp_connection(1, 40000, t0=T0)[0])
    assert not fate.routed and fate.reason == "no registered target"


# --------------------------------------------------------------------------- the ALB


def _alb(groups: list[dict[str, Any]] | None = None, **extra: Any) -> ApplicationLoadBalancer:
    return ApplicationLoadBalancer(alb_config(groups=groups, **extra))


def _web(**fields: Any) -> list[dict[str, Any]]:
    return [{"Name": "web", "Protocol": "HTTP", "Port": 80, "Targets": [A, B], **fields}]


def test_alb_new_requests_avoid_the_target_and_requests_in_flight_finish() -> None:
    alb = _alb(_web(Health=[{"Target": A, "At": 5, "State": "unhealthy"}]))
    first = alb.request(request(on=flow(client_port=1), time=T0))  # to A, no response yet
    assert first.target == A
    moved = [alb.request(request(on=flow(client_port=2 + i), time=T0 + 6 + i)) for i in range(4)]
    assert {d.target for d in moved} == {B}
    assert "already in flight on it finish there" in moved[0].why  # said once
    assert "in flight" not in moved[1].why and "unhealthy" in moved[1].why
    assert first.request is not None
    alb.response(response(first.request))  # the request in flight ended normally
    assert alb.outstanding[A] == 0


@pytest.mark.parametrize(
    ("states", "targets", "status"),
    [
        (("unhealthy", "unhealthy"), {A, B}, None),  # fail open: both used
        (("draining", "unhealthy"), {B}, None),  # fail open over the registered one
        (("draining", "draining"), set(), 503),  # nowhere to go
    ],
)
def test_alb_fail_open_and_no_target(states, targets, status) -> None:
    health = [{"Target": t, "At": 0, "State": s} for t, s in zip((A, B), states, strict=True)]
    alb = _alb(_web(Health=health))
    decisions = [
        alb.request(request(on=flow(client_port=1 + i), time=T0 + 1 + i)) for i in range(4)
    ]
    assert {d.target for d in decisions if d.target} == targets
    assert {d.status for d in decisions} == {status}


def test_alb_slow_start_share_rises_linearly() -> None:
    """A target healthy again at +10 s with slow start 100 s: at +60 s its share is one half,
    so it takes a third of the requests (0.5 / 1.5); from +110 s round robin is even again."""
    attributes = {"slow_start.duration_seconds": "100"}
    health = [
        {"Target": A, "At": 0, "State": "unhealthy"},
        {"Target": A, "At": 10, "State": "healthy"},
    ]
    alb = _alb(_web(Attributes=attributes, Health=health))
    alb.request(request(on=flow(client_port=1), time=T0))
    at_half = [alb.request(request(on=flow(client_port=10 + i), time=T0 + 60)) for i in range(30)]
    assert Counter(d.target for d in at_half) == {A: 10, B: 20}
    assert "weighted by slow start" in at_half[0].why
    after = [alb.request(request(on=flow(client_port=100 + i), time=T0 + 111)) for i in range(10)]
    assert Counter(d.target for d in after) == {A: 5, B: 5}
    assert "slow start" not in after[-1].why


@pytest.mark.parametrize(
    ("version", "method", "content_type", "group_version", "forwarded"),
    [  # ALB-UG load-balancer-target-groups, "Protocol version" table
        ("HTTP/1.1", "GET", None, "HTTP1", True),
        ("HTTP/1.1", "GET", None, "HTTP2", False),
        ("HTTP/1.1", "POST", None, "GRPC", False),
        ("HTTP/2", "GET", None, "HTTP1", True),
        ("HTTP/2", "GET", None, "HTTP2", True),
        ("HTTP/2", "GET", None, "GRPC", False),
        ("HTTP/2", "POST", None, "GRPC", True),
        ("HTTP/2", "POST", "application/grpc", "HTTP1", False),
        ("HTTP/2", "POST", "application/grpc", "HTTP2", True),
        ("HTTP/2", "POST", "application/grpc+proto", "GRPC", True),
    ],
)
def test_alb_protocol_version(version, method, content_type, group_version, forwarded) -> None:
    import dataclasses

    alb = _alb(_web(ProtocolVersion=group_version))
    headers = (("Content-Type", content_type),) if content_type else ()
    req = dataclasses.replace(request(method=method, headers=headers), version=version)
    decision = alb.request(req)
    assert decision.forwarded is forwarded
    if forwarded and group_version != "HTTP1":
        assert f"ProtocolVersion is {group_version}" in decision.why
    if not forwarded:
        assert decision.action == "not-routable" and group_version in decision.why


@pytest.mark.parametrize(
    ("attributes", "gaps", "closed_at"),
    [
        ({}, (30, 30, 30), None),  # 60 s idle timeout, never idle that long
        ({}, (30, 61), 1),  # the second gap is longer than the idle timeout
        ({"idle_timeout.timeout_seconds": "120"}, (30, 61), None),
        # client_keep_alive.seconds 60: closed 60 s after it opened, however busy
        ({"client_keep_alive.seconds": "60"}, (20, 20, 21), 2),
    ],
)
def test_alb_idle_timeout_and_client_keep_alive(attributes, gaps, closed_at) -> None:
    alb = _alb(Attributes=attributes)
    on = flow(client_port=7)
    alb.connection_opened(on, 1, T0)
    time, decisions = T0, []
    for index, gap in enumerate(gaps):
        time += gap
        decisions.append(alb.request(request(on=on, index=index, time=time)))
    actions = [d.action for d in decisions]
    if closed_at is None:
        assert set(actions) == {"forward"}
    else:
        assert actions[:closed_at] == ["forward"] * closed_at
        assert set(actions[closed_at:]) == {"idle-timeout"}
        assert "closed" in decisions[closed_at].why
    alb.connection_opened(on, 99, time + 1)  # a new connection on the same 4-tuple
    assert alb.request(request(on=on, index=0, time=time + 1)).forwarded


def test_alb_lambda_target() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:shop"
    alb = _alb([{"Name": "web", "TargetType": "lambda", "Targets": [arn]}])
    decision = alb.request(request())
    assert decision.target == arn and "Lambda" in (decision.client_ip_at_target or "")

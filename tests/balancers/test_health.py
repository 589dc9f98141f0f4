"""Target health over a replay: changes come due with the capture's clock, fail open,
draining, slow start (issue 18; facts from ../shared/docs/lb-reference.md §1.5, §2, §6)."""

from __future__ import annotations

import pytest

from osilab.balancers.config import HealthChange, TargetGroup, parse_config
from osilab.balancers.explain import health_state_note
from osilab.balancers.health import TargetHealth

A, B, C = "192.0.2.11:80", "192.0.2.12:80", "192.0.2.13:80"
T0 = 1_700_000_000.0


def health(*changes: tuple[float, str, str], **group: object) -> TargetHealth:
    return TargetHealth.of(
        TargetGroup(
            "web", "HTTP", 80, (A, B, C), health_changes=tuple(HealthChange(*c) for c in changes),
            **group,  # type: ignore[arg-type]
        )
    )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "now", "changed", "live"),
    [
        ((), T0, False, [A, B, C]),
        (((5.0, A, "unhealthy"),), T0 + 4.9, False, [A, B, C]),  # relative time: not yet
        (((5.0, A, "unhealthy"),), T0 + 5.0, True, [B, C]),
        (((T0 + 1, B, "unhealthy"),), T0 + 1, True, [A, C]),  # an epoch time
        (((1.0, A, "healthy"),), T0 + 2, False, [A, B, C]),  # already healthy: no change
        (((1.0, B, "unhealthy"), (2.0, B, "healthy")), T0 + 3, True, [A, B, C]),  # order kept
        (((1.0, A, "unhealthy"), (1.0, B, "unhealthy"), (1.0, C, "unhealthy")), T0 + 1, True,
         [A, B, C]),  # every target down: fail open
        (((1.0, A, "draining"),), T0 + 1, True, [B, C]),  # deregistered: no new traffic
        (((1.0, A, "draining"), (1.0, B, "unhealthy"), (1.0, C, "unhealthy")), T0 + 1, True,
         [B, C]),  # fail open uses the registered targets, not the draining one
        (((1.0, A, "unused"), (1.0, B, "unused"), (1.0, C, "unused")), T0 + 1, True, []),
    ],
)  # fmt: skip
def test_changes_come_due(changes, now, changed, live) -> None:
    state = health(*changes)
    assert bool(state.advance(now, first_time=T0)) is changed
    assert state.live == live


def test_a_rejoining_target_takes_its_registration_place() -> None:
    state = health((1.0, A, "unhealthy"), (2.0, A, "healthy"))
    state.advance(T0 + 1, first_time=T0)
    assert state.healthy == [B, C]
    state.advance(T0 + 2, first_time=T0)
    assert state.healthy == [A, B, C]
    assert state.pending == []


@pytest.mark.parametrize(
    ("attributes", "state", "terminate_after"),
    [
        # NLB-UG target-group-health-checks: RST at once by default
        ({}, "unhealthy", 0.0),
        ({"unhealthy_termination": False}, "unhealthy", None),
        ({"unhealthy_draining": 30.0}, "unhealthy", 30.0),
        # deregistration: no RST unless connection termination is on, then at the delay's end
        ({}, "draining", None),
        ({"deregistration_termination": True}, "draining", 300.0),  # default delay 300 s
        ({"deregistration_termination": True, "deregistration_delay": 0.0}, "draining", 0.0),
    ],
)
def test_what_a_change_does_to_open_flows(attributes, state, terminate_after) -> None:
    target_health = health((10.0, A, state), **attributes)
    event = target_health.advance(T0 + 10, first_time=T0)[0]  # (+ "unused" when the delay is 0)
    expected = None if terminate_after is None else T0 + 10 + terminate_after
    assert event.terminate_at == expected
    if state == "draining":  # after the delay the target is no longer registered
        target_health.advance(T0 + 10 + target_health.group.deregistration_delay, first_time=T0)
        assert target_health.state[A] == "unused"


@pytest.mark.parametrize(
    ("elapsed", "share"),
    [(0.0, 1e-3), (15.0, 0.25), (30.0, 0.5), (45.0, 0.75), (60.0, 1.0), (90.0, 1.0)],
)
def test_slow_start_is_a_linear_ramp_from_the_moment_of_health(elapsed, share) -> None:
    state = health((1.0, A, "unhealthy"), (5.0, A, "healthy"), slow_start=60.0)
    state.advance(T0 + 5, first_time=T0)
    assert state.weights(T0 + 5 + elapsed)[A] == pytest.approx(share)
    assert state.weights(T0 + 5 + elapsed)[B] == 1.0


def test_no_slow_start_for_targets_healthy_at_the_start_or_alone() -> None:
    assert not health(slow_start=60.0).in_slow_start
    alone = health((1.0, A, "unhealthy"), (1.0, B, "unhealthy"), (1.0, C, "unhealthy"),
                   (2.0, A, "healthy"), slow_start=60.0)  # fmt: skip
    alone.advance(T0 + 2, first_time=T0)
    assert not alone.in_slow_start  # no other healthy target to ramp next to


@pytest.mark.parametrize(
    ("state", "live", "note"),
    [
        ({}, [A, B, C], ""),
        ({A: "unhealthy"}, [B, C], f"{A} unhealthy, so new traffic goes to the 2 other targets only"),
        ({A: "draining"}, [B, C], f"{A} draining, so new traffic goes to the 2 other targets only"),
        ({A: "unhealthy", B: "unhealthy", C: "unhealthy"}, [A, B, C],
         "every registered target is unhealthy, so the balancer fails open and uses them all"),
    ],
)  # fmt: skip
def test_the_balancers_say_why_they_chose_among_fewer_targets(state, live, note) -> None:
    assert health_state_note((A, B, C), state, live) == note


# --------------------------------------------------------------------------- the configuration


def _group(lb_type: str = "application", **fields: object) -> TargetGroup:
    protocol = "HTTP" if lb_type == "application" else fields.pop("Protocol", "TCP")
    group = {"Name": "g", "Protocol": protocol, "Port": 80, "Targets": [A, B], **fields}
    listener = {"Protocol": "HTTP" if lb_type == "application" else protocol, "Port": 80,
                "DefaultActions": [{"Type": "forward", "TargetGroupName": "g"}]}  # fmt: skip
    return parse_config({"Type": lb_type, "TargetGroups": [group], "Listeners": [listener]}).group(
        "g"
    )


def test_target_group_defaults_are_aws_defaults() -> None:
    group = _group()
    assert (group.deregistration_delay, group.deregistration_termination) == (300.0, False)
    assert (group.unhealthy_termination, group.unhealthy_draining) == (True, 0.0)
    assert (group.slow_start, group.protocol_version, group.target_type) == (0.0, "HTTP1", "ip")


@pytest.mark.parametrize(
    ("target_type", "protocol", "preserved"),
    [  # lb-reference §2: off for IP targets over TCP/TLS, on otherwise, always on for UDP
        ("ip", "TCP", False), ("ip", "TLS", False), ("ip", "UDP", True), ("ip", "TCP_UDP", True),
        ("instance", "TCP", True), ("instance", "TLS", True), ("alb", "TCP", True),
    ],
)  # fmt: skip
def test_client_ip_preservation_defaults_by_target_type(target_type, protocol, preserved) -> None:
    targets = (
        ["arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/1"]
        if target_type == "alb"
        else [A, B]
    )
    group = _group("network", Protocol=protocol, TargetType=target_type, Targets=targets)
    assert group.preserve_client_ip is preserved


@pytest.mark.parametrize(
    ("lb_type", "fields", "message"),
    [
        ("application", {"Attributes": {"slow_start.duration_seconds": "10"}}, "0 \\(off\\) or 30-900"),
        ("application", {"Attributes": {"slow_start.duration_seconds": "901"}}, "between 0 and 900"),
        ("application", {"Attributes": {"slow_start.duration_seconds": "30",
                                        "load_balancing.algorithm.type": "least_outstanding_requests"}},
         "cannot be combined with least_outstanding_requests"),
        ("application", {"Attributes": {"slow_start.duration_seconds": "30",
                                        "load_balancing.algorithm.type": "weighted_random"}},
         "cannot be combined with weighted_random"),
        ("network", {"Attributes": {"slow_start.duration_seconds": "30"}}, "application load balancer attribute"),
        ("application", {"Attributes": {"deregistration_delay.timeout_seconds": "3601"}}, "between 0 and 3600"),
        ("application", {"ProtocolVersion": "HTTP3"}, "ProtocolVersion must be one of"),
        ("application", {"TargetType": "alb"}, "for a network load balancer only"),
        ("network", {"TargetType": "lambda"}, "for an application load balancer only"),
        ("application", {"TargetType": "lambda", "Targets": ["192.0.2.11:80"]}, "named by its ARN"),
        ("application", {"Health": [{"Target": C, "At": 1, "State": "unhealthy"}]}, "not registered here"),
        ("application", {"Health": [{"Target": A, "At": 1, "State": "sleepy"}]}, "a health State is one of"),
    ],
)  # fmt: skip
def test_what_aws_refuses(lb_type, fields, message) -> None:
    from osilab.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        _group(lb_type, **fields)


def test_a_lambda_target_is_its_function_arn() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:shop"
    group = _group(TargetType="lambda", Targets=[{"Id": arn}])
    assert group.targets == (arn,)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"Target": A, "At": 12.5, "State": "unhealthy"}, HealthChange(12.5, A, "unhealthy")),
        ({"Target": A, "Time": 3, "State": "healthy"}, HealthChange(3.0, A, "healthy")),
        # describe-target-health states, read for routing
        ({"Target": A, "At": 0, "State": "initial"}, HealthChange(0.0, A, "unused")),
        ({"Target": A, "At": 0, "State": "unavailable"}, HealthChange(0.0, A, "unhealthy")),
        ({"Target": A, "At": 0, "State": "unhealthy.draining"}, HealthChange(0.0, A, "unhealthy")),
        ({"Target": A, "At": 0, "State": "draining"}, HealthChange(0.0, A, "draining")),
    ],
)
def test_a_health_schedule_in_the_group_or_for_the_whole_balancer(entry, expected) -> None:
    assert _group(Health=[entry]).health_changes == (expected,)
    config = {"Type": "application", "Health": [entry],
              "TargetGroups": [{"Name": "g", "Targets": [A, B]}, {"Name": "h", "Targets": [A]}],
              "Listeners": [{"Protocol": "HTTP", "Port": 80,
                             "DefaultActions": [{"Type": "forward", "TargetGroupName": "g"}]}]}  # fmt: skip
    parsed = parse_config(config)
    assert parsed.group("g").health_changes == parsed.group("h").health_changes == (expected,)


@pytest.mark.parametrize(
    ("value", "ok"), [("59", False), ("60", True), ("604800", True), ("604801", False)]
)
def test_client_keep_alive_range(value, ok) -> None:
    from osilab.errors import ConfigError

    config = {"Type": "application", "Attributes": {"client_keep_alive.seconds": value},
              "TargetGroups": [{"Name": "g", "Targets": [A]}],
              "Listeners": [{"Protocol": "HTTP", "Port": 80,
                             "DefaultActions": [{"Type": "forward", "TargetGroupName": "g"}]}]}  # fmt: skip
    if ok:
        assert parse_config(config).client_keep_alive == float(value)
    else:
        with pytest.raises(
            ConfigError, match="client_keep_alive.seconds must be between 60 and 604800"
        ):
            parse_config(config)

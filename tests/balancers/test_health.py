"""Target health over a replay: changes come due with the capture's clock, and fail open."""

from __future__ import annotations

import pytest

from osilab.balancers.config import HealthChange, TargetGroup
from osilab.balancers.explain import nlb_health_note
from osilab.balancers.health import TargetHealth

A, B, C = "192.0.2.11:80", "192.0.2.12:80", "192.0.2.13:80"
T0 = 1_700_000_000.0


def health(*changes: tuple[float, str, str]) -> TargetHealth:
    group = TargetGroup(
        "web", "HTTP", 80, (A, B, C), health_changes=tuple(HealthChange(*c) for c in changes)
    )
    return TargetHealth.of(group)


@pytest.mark.parametrize(
    ("changes", "now", "changed", "live"),
    [
        ((), T0, False, [A, B, C]),
        (((5.0, A, "unhealthy"),), T0 + 4.9, False, [A, B, C]),  # relative time: not yet
        (((5.0, A, "unhealthy"),), T0 + 5.0, True, [B, C]),
        (((T0 + 1, B, "unhealthy"),), T0 + 1, True, [A, C]),  # an epoch time
        (((1.0, A, "healthy"),), T0 + 2, False, [A, B, C]),  # already healthy: no change
        (((1.0, B, "unhealthy"), (2.0, B, "healthy")), T0 + 3, True, [A, B, C]),  # order kept
        (
            ((1.0, A, "unhealthy"), (1.0, B, "unhealthy"), (1.0, C, "unhealthy")),
            T0 + 1,
            True,
            [A, B, C],  # every target down: fail open
        ),
    ],
)
def test_changes_come_due(changes, now, changed, live) -> None:
    state = health(*changes)
    assert state.advance(now, first_time=T0) is changed
    assert state.live == live


def test_a_rejoining_target_takes_its_registration_place() -> None:
    state = health((1.0, A, "unhealthy"), (2.0, A, "healthy"))
    state.advance(T0 + 1, first_time=T0)
    assert state.healthy == [B, C]
    state.advance(T0 + 2, first_time=T0)
    assert state.healthy == [A, B, C]
    assert state.pending == []


@pytest.mark.parametrize(
    ("healthy", "note"),
    [
        ([A, B, C], ""),
        ([B, C], f"{A} unhealthy, so new flows hash over the 2 healthy targets only"),
        ([], "every target is unhealthy, so the NLB fails open and uses them all"),
    ],
)
def test_the_nlb_says_why_it_hashed_over_fewer_targets(healthy, note) -> None:
    assert nlb_health_note((A, B, C), healthy) == note

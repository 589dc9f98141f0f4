"""Target health during a replay: which registered targets new traffic may go to.

Theory of operation
-------------------
A capture does not say when AWS's health checks failed, so the configuration does:
each target group may list ``HealthChanges`` (time, target, ``"healthy"`` or
``"unhealthy"``). As the replay's clock (the capture's time) passes a change, the
target leaves or rejoins the group's healthy list, which stays in registration order.

Both balancers route **new** traffic over the healthy targets only; what is already
decided stays (an NLB flow keeps its target). When every target is unhealthy the
balancer *fails open* and uses them all (``lb-reference.md`` §6, [NLB-UG
target-group-health-checks.md]; osilab's ALB does the same): :attr:`TargetHealth.live`
says which.

A change's ``time`` is an epoch time, or, below :data:`EPOCH_THRESHOLD`, seconds after
the replay's first packet. This module keeps no clock: the caller says what time it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from osilab.balancers.config import HealthChange, TargetGroup

__all__ = ["EPOCH_THRESHOLD", "TargetHealth"]

#: HealthChanges times below this are offsets from the first packet, not epoch times.
EPOCH_THRESHOLD = 1e9


@dataclass(slots=True)
class TargetHealth:
    """The health of one target group's targets, with its changes still to come.

    >>> from osilab.balancers.config import TargetGroup, HealthChange
    >>> group = TargetGroup("web", "HTTP", 80, ("192.0.2.11:80", "192.0.2.12:80"),
    ...                     health_changes=(HealthChange(5.0, "192.0.2.11:80", "unhealthy"),))
    >>> health = TargetHealth.of(group)
    >>> health.advance(100.0, first_time=100.0), health.live
    (False, ['192.0.2.11:80', '192.0.2.12:80'])
    >>> health.advance(105.0, first_time=100.0), health.live
    (True, ['192.0.2.12:80'])
    """

    #: The registered targets, in registration order.
    targets: tuple[str, ...]
    #: The targets healthy now, in registration order.
    healthy: list[str]
    #: The changes not yet due, in time order.
    pending: list[HealthChange]

    @classmethod
    def of(cls, group: TargetGroup) -> TargetHealth:
        """Every target healthy, the group's ``HealthChanges`` still to come."""
        return cls(group.targets, list(group.targets), list(group.health_changes))

    @property
    def live(self) -> list[str]:
        """The targets new traffic may go to: the healthy ones, or all when none is (fail open)."""
        return self.healthy or list(self.targets)

    def advance(self, time: float, first_time: float | None) -> bool:
        """Apply every change due by ``time``; True when the healthy list changed.

        ``first_time`` is the replay's first packet time, from which relative change
        times count (``None``: not known yet, a relative time is then taken as it is).
        """
        changed = False
        while self.pending:
            change = self.pending[0]
            when = change.time
            if when < EPOCH_THRESHOLD and first_time is not None:
                when += first_time
            if when > time:
                break
            self.pending.pop(0)
            if change.state == "unhealthy" and change.target in self.healthy:
                self.healthy.remove(change.target)
                changed = True
            elif change.state == "healthy" and change.target not in self.healthy:
                # keep registration order
                self.healthy = [t for t in self.targets if t in self.healthy or t == change.target]
                changed = True
        return changed

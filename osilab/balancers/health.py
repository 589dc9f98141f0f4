"""Target health during a replay: which registered targets new traffic may go to, and what
happens to the traffic already on a target whose health changes.

Theory of operation
-------------------
A capture does not say when AWS's health checks failed, so the configuration does: a
**health schedule**, ``"Health": [{"Target": "192.0.2.11:80", "At": 12.5, "State":
"unhealthy"}]`` (or ``HealthChanges`` with ``Time``; or the states of
``describe-target-health``, at time 0). ``At`` is an epoch time, or, below
:data:`EPOCH_THRESHOLD`, seconds after the replay's first packet. As the replay's clock
(the capture's time) passes an entry, the target's state changes:

============  =====================================================================
state         what new traffic and open traffic do (``lb-reference.md`` §1.5, §6)
============  =====================================================================
healthy       takes new flows and requests (after a slow start, see below)
unhealthy     no new traffic; NLB flows already on it get a TCP RST from the NLB,
              after ``target_health_state.unhealthy.draining_interval_seconds``,
              unless ``...unhealthy.connection_termination.enabled`` is false
draining      deregistered: no new traffic; open NLB flows live on for
              ``deregistration_delay.timeout_seconds``, then get RST when
              ``deregistration_delay.connection_termination.enabled``; the target
              is then ``unused``
unused        not registered (describe-target-health ``initial``, or after draining)
============  =====================================================================

An ALB request already forwarded (in flight) finishes on its target whatever happens;
only the next request chooses again. When no registered target is healthy, both
balancers **fail open** and use every registered (unhealthy) target [NLB-UG
target-group-health-checks]: :attr:`TargetHealth.live` says which.

**Slow start** (ALB ``slow_start.duration_seconds``, 30-900 s): a target that becomes
healthy while another target is already healthy takes a share that rises *linearly*
from 0 to its full share over the duration, counted from the moment it became healthy
in the capture's time [ALB-UG edit-target-group-attributes]; targets healthy at the
start are not in slow start. :meth:`TargetHealth.weights` gives the shares.

This module keeps no clock and sends no packet: the caller says what time it is, and
:meth:`TargetHealth.advance` returns the :class:`HealthEvent` s that fell due, for the
model to act on (the NLB resets flows; the ALB notes requests in flight).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from osilab.balancers.config import HealthChange, TargetGroup

__all__ = ["EPOCH_THRESHOLD", "HealthEvent", "TargetHealth", "absolute_time"]

#: Health schedule times below this are offsets from the first packet, not epoch times.
EPOCH_THRESHOLD = 1e9


def absolute_time(when: float, first_time: float | None) -> float:
    """A schedule time as a capture time: offsets count from the first packet.

    >>> absolute_time(5.0, 1_700_000_000.0), absolute_time(1_700_000_009.0, 1_700_000_000.0)
    (1700000005.0, 1700000009.0)
    """
    if when < EPOCH_THRESHOLD and first_time is not None:
        return when + first_time
    return when


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """One target's state change, as it fell due.

    ``terminate_at`` is when the NLB resets the flows still open on the target (``None``:
    it does not), from the group's termination attributes.
    """

    time: float
    target: str
    state: str
    previous: str
    terminate_at: float | None = None


@dataclass(slots=True)
class TargetHealth:
    """The health of one target group's targets, with its changes still to come.

    >>> from osilab.balancers.config import TargetGroup, HealthChange
    >>> group = TargetGroup("web", "HTTP", 80, ("192.0.2.11:80", "192.0.2.12:80"),
    ...                     health_changes=(HealthChange(5.0, "192.0.2.11:80", "unhealthy"),))
    >>> health = TargetHealth.of(group)
    >>> health.advance(100.0, first_time=100.0), health.live
    ([], ['192.0.2.11:80', '192.0.2.12:80'])
    >>> [e.state for e in health.advance(105.0, first_time=100.0)], health.live
    (['unhealthy'], ['192.0.2.12:80'])
    """

    #: The registered targets, in registration order.
    targets: tuple[str, ...]
    #: The targets healthy now, in registration order.
    healthy: list[str]
    #: The changes not yet due, in time order.
    pending: list[HealthChange]
    #: The group whose attributes say what a change does.
    group: TargetGroup | None = None
    #: Each target's state now (:data:`~osilab.balancers.config.model.HEALTH_STATES`).
    state: dict[str, str] = field(default_factory=dict)
    #: Targets in slow start: target -> the capture time it became healthy.
    slow_since: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, group: TargetGroup) -> TargetHealth:
        """Every target healthy, the group's schedule still to come."""
        return cls(
            group.targets, list(group.targets), list(group.health_changes), group,
            {t: "healthy" for t in group.targets},
        )  # fmt: skip

    @property
    def live(self) -> list[str]:
        """The targets new traffic may go to: the healthy ones, else (fail open) every
        registered one (healthy, unhealthy), in registration order; ``[]`` when none is."""
        if self.healthy:
            return self.healthy
        return [t for t in self.targets if self.state.get(t, "healthy") == "unhealthy"]

    @property
    def all_healthy(self) -> bool:
        """True while every registered target is healthy (nothing to say, nothing to skip)."""
        return len(self.healthy) == len(self.targets)

    def registered(self, target: str) -> bool:
        """Whether ``target`` is registered now (not draining, not unused)."""
        return self.state.get(target, "healthy") in ("healthy", "unhealthy")

    def advance(self, time: float, first_time: float | None) -> list[HealthEvent]:
        """Apply every change due by ``time``; returns them (empty: nothing changed).

        ``first_time`` is the replay's first packet time, from which relative change
        times count (``None``: not known yet, a relative time is then taken as it is).
        A ``draining`` target becomes ``unused`` when its deregistration delay ends.
        """
        events: list[HealthEvent] = []
        while self.pending:
            change = self.pending[0]
            when = absolute_time(change.time, first_time)
            if when > time:
                break
            self.pending.pop(0)
            event = self._apply(change.target, change.state, when)
            if event is not None:
                events.append(event)
        return events

    def _apply(self, target: str, state: str, when: float) -> HealthEvent | None:
        previous = self.state.get(target, "healthy")
        if state == previous:
            return None
        self.state[target] = state
        others = [t for t in self.healthy if t != target]
        if state == "healthy":
            self.healthy = [t for t in self.targets if t in self.healthy or t == target]
            group = self.group
            if group is not None and group.slow_start and others:
                self.slow_since[target] = when  # not when it is the only healthy one
        else:
            self.healthy = others
            self.slow_since.pop(target, None)
        terminate_at = None
        group = self.group
        if group is not None and state == "unhealthy" and group.unhealthy_termination:
            terminate_at = when + group.unhealthy_draining
        if group is not None and state == "draining":
            ends = when + group.deregistration_delay
            if group.deregistration_termination:
                terminate_at = ends
            # after the delay the target is no longer registered at all
            self.pending.append(HealthChange(ends, target, "unused"))
            self.pending.sort(key=lambda change: change.time)
        return HealthEvent(when, target, state, previous, terminate_at)

    def weights(self, time: float) -> dict[str, float]:
        """Each live target's share of new traffic at ``time``: 1, or during slow start
        the fraction of the duration elapsed (linear ramp), never below a small floor so a
        target just out of its health check still gets its first request eventually."""
        group = self.group
        shares = {}
        for target in self.live:
            since = self.slow_since.get(target)
            if since is None or group is None or not group.slow_start:
                shares[target] = 1.0
                continue
            share = (time - since) / group.slow_start
            if share >= 1.0:
                del self.slow_since[target]  # slow start is over
                shares[target] = 1.0
            else:
                shares[target] = max(share, 1e-3)
        return shares

    @property
    def in_slow_start(self) -> bool:
        """True while some target's share is still ramping up."""
        return bool(self.slow_since)

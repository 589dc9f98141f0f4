"""What an ALB's target group does besides picking by rule: its round robin (with slow
start), the protocol it speaks to the targets, and the life of a client connection.

Theory of operation
-------------------
- **Round robin** (:class:`RoundRobin`): the next position in the list of live targets,
  back to the first when past its end. After a health change the turn goes on from where
  it was (HAProxy's ``static-rr`` does the same, which lets the lab's failover scenario
  check the model). While a target is in **slow start** its share rises linearly from 0
  to 1 over ``slow_start.duration_seconds`` [ALB-UG edit-target-group-attributes]; the
  round robin is then a *smooth weighted* one (nginx's algorithm: every target earns its
  share each turn, the richest is picked and pays the sum), so a half-share target gets
  one request in three next to a full one, spread out rather than in bursts.
- **ProtocolVersion** (:func:`protocol_refusal`): what the ALB speaks to the target,
  ``HTTP1`` (default), ``HTTP2`` or ``GRPC``. AWS's table [ALB-UG
  load-balancer-target-groups; ``lb-reference.md`` §1.7]: an HTTP/1.1 request goes to
  HTTP1 only; an HTTP/2 request to HTTP1 or HTTP2, and to GRPC when it is a POST; a gRPC
  request to HTTP2 or GRPC. Any other combination is an error.
- **Client connections** (:class:`ConnectionClock`): the ALB owns the client's TCP
  connection and closes it after ``idle_timeout.timeout_seconds`` (default 60) without
  traffic, or ``client_keep_alive.seconds`` (default 3600) after it opened, however
  busy (``lb-reference.md`` §1.7, §6). Times are the capture's.

Sans-IO: plain values in, plain values out; no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from osilab.protocols.messages import HttpRequest
from osilab.streams.keys import FlowKey

__all__ = ["RoundRobin", "ConnectionClock", "protocol_refusal", "request_protocol"]


@dataclass(slots=True)
class RoundRobin:
    """One target group's round robin: a position, a count of turns, slow-start credits.

    >>> rr = RoundRobin()
    >>> [rr.pick(["a", "b"])[0] for _ in range(3)], rr.pick(["b"])[0], rr.pick(["a", "b"])[0]
    (['a', 'b', 'a'], 'b', 'b')
    >>> rr = RoundRobin()
    >>> "".join(rr.pick(["a", "b"], {"a": 1.0, "b": 0.5})[0] for _ in range(6))
    'abaaba'
    """

    position: int = 0
    turns: int = 0
    credit: dict[str, float] = field(default_factory=dict)

    def pick(self, live: Sequence[str], shares: dict[str, float] | None = None) -> tuple[str, str]:
        """(target, how) for the next request; ``shares`` when some target is in slow start."""
        self.turns += 1
        if shares and any(share < 1.0 for share in shares.values()):
            for target in live:
                self.credit[target] = self.credit.get(target, 0.0) + shares[target]
            chosen = max(live, key=lambda t: self.credit[t])  # ties: registration order
            self.credit[chosen] -= sum(shares[t] for t in live)
            ramp = ", ".join(f"{t} {s:.0%}" for t, s in shares.items() if s < 1.0)
            return chosen, (
                f"round robin, turn {self.turns}, weighted by slow start ({ramp} of a full "
                "share, rising linearly over slow_start.duration_seconds)"
            )
        self.credit.clear()
        if self.position >= len(live):
            self.position = 0
        chosen = live[self.position]
        self.position += 1
        return chosen, f"round robin, turn {self.turns} of this target group"


def request_protocol(request: HttpRequest) -> str:
    """``"gRPC"``, ``"HTTP/2"`` or the request's HTTP/1 version, as AWS's table names them."""
    if any(
        name.lower() == "content-type" and value.lower().startswith("application/grpc")
        for name, value in request.headers
    ):
        return "gRPC"
    if request.version.upper() in ("HTTP/2", "HTTP/2.0", "2"):
        return "HTTP/2"
    return request.version


def protocol_refusal(request: HttpRequest, version: str) -> str | None:
    """The request's protocol when target-group ``version`` cannot carry it, else ``None``.

    >>> from osilab.streams.keys import Endpoint, FlowKey
    >>> flow = FlowKey("tcp", Endpoint("198.51.100.7", 1), Endpoint("203.0.113.20", 80))
    >>> get = HttpRequest(flow, 0, "GET", "/", "HTTP/1.1", (), 1, 1, 0.0)
    >>> protocol_refusal(get, "HTTP1"), protocol_refusal(get, "HTTP2")
    (None, 'HTTP/1.1')
    """
    client = request_protocol(request)
    if client == "gRPC":
        return client if version == "HTTP1" else None
    if client == "HTTP/2":
        return client if version == "GRPC" and request.method != "POST" else None
    return client if version in ("HTTP2", "GRPC") else None


@dataclass(slots=True)
class ConnectionClock:
    """When each client connection opened and last carried traffic, to tell when the ALB
    closed it. Bounded: beyond ``limit`` connections the oldest is forgotten (a forgotten
    connection starts again at its next message, as if just opened)."""

    limit: int = 65_536
    _times: dict[FlowKey, list[float]] = field(default_factory=dict)

    def opened(self, flow: FlowKey, time: float | None) -> None:
        """A new connection on ``flow`` (its SYN): its clock starts again."""
        self._times.pop(flow, None)
        if time is not None:
            self.traffic(flow, time)

    def traffic(self, flow: FlowKey, time: float) -> None:
        """Something crossed ``flow`` at ``time`` (a request or a response)."""
        times = self._times.get(flow)
        if times is None:
            self._times[flow] = [time, time]
            if len(self._times) > self.limit:
                del self._times[next(iter(self._times))]
        else:
            times[1] = max(times[1], time)

    def closed(
        self, flow: FlowKey, time: float, idle: float, keep_alive: float
    ) -> tuple[float, str] | None:
        """``(closed at, why)`` when the ALB had closed ``flow`` by ``time``; else ``None``
        (and ``time`` counts as traffic)."""
        times = self._times.get(flow)
        if times is None:
            self.traffic(flow, time)
            return None
        opened, last = times
        idle_end, keep_end = last + idle, opened + keep_alive
        if time <= min(idle_end, keep_end):
            times[1] = max(last, time)
            return None
        if idle_end <= keep_end:
            return idle_end, (
                f"the idle timeout (idle_timeout.timeout_seconds {idle:g}) passed without traffic"
            )
        return keep_end, (
            f"the client keep-alive duration (client_keep_alive.seconds {keep_alive:g}) ended"
        )

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
  busy (``lb-reference.md`` §1.7, §6). Times are the capture's. The clock also keeps
  each connection's SYN (for the why's "N packets after the SYN"), compactly: a SYN
  flood's half-open connections are all held.

Sans-IO: plain values in, plain values out; no clock.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import isnan

from osilab.protocols.messages import HttpRequest
from osilab.streams.keys import FlowKey
from osilab.streams.rows import FlowKeys

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


class ConnectionClock:
    """Where and when each client connection opened (its SYN's packet number, its time)
    and when it last carried traffic, to tell when the ALB closed it.

    A SYN flood opens a million connections that never carry a request, so one costs
    what a row costs: its :class:`~osilab.streams.keys.FlowKey` packed into one ``int``
    (:class:`~osilab.streams.rows.FlowKeys`, as the flow table packs it) keys one
    dictionary whose value is a row number into three ``array`` columns: about 140 bytes,
    where a dictionary of SYNs and one of ``[opened, last]`` lists by FlowKey took about
    520. The FlowKey-keyed methods below pack the key on each call (the last flow asked
    about is remembered: a keep-alive connection's requests share one FlowKey).

    Bounded: beyond ``limit`` connections the oldest (by its latest SYN, or its first
    message when no SYN was seen) is forgotten, SYN and clock alike (a forgotten
    connection starts again at its next message, as if just opened). The dictionary's
    own order says which is the oldest; but a dictionary forgets its front by leaving a
    hole there until it next grows, and grows to three times what it holds: held full by
    a flood, it would double its size (5 MiB instead of 2.5) and ``next(iter(...))`` would
    step over up to 100,000 holes for each connection forgotten (a minute of a
    million-SYN replay). So while full it is copied afresh (the same keys, in the same
    order) every ``limit // 4`` connections forgotten: before it can grow, and the holes
    stay few.

    >>> from osilab.streams.keys import Endpoint, FlowKey
    >>> clock = ConnectionClock()
    >>> flow = FlowKey("tcp", Endpoint("198.51.100.7", 51514), Endpoint("203.0.113.20", 80))
    >>> clock.opened(flow, 100.0, packet=1)
    >>> clock.syn(flow), clock.closed(flow, 130.0, idle=60.0, keep_alive=3600.0)
    (1, None)
    >>> clock.closed(flow, 200.0, idle=60.0, keep_alive=3600.0)[0]  # 60 s after 130
    190.0
    """

    __slots__ = ("limit", "_keys", "_rows", "_syn", "_opened", "_last", "_free", "_flow", "_key",
                 "_forgotten")  # fmt: skip

    def __init__(self, limit: int = 65_536) -> None:
        self.limit = limit
        self._keys = FlowKeys()
        #: packed flow key -> its row; in insertion order, the oldest first
        self._rows: dict[int, int] = {}
        #: By row: the SYN's packet number (``_NO_SYN``: none, or forgotten), the time the
        #: connection opened and the time of its last traffic (``_NO_TIME`` both: not yet).
        self._syn = array("q")
        self._opened, self._last = array("d"), array("d")
        self._free = array("i")  # rows of forgotten connections, to reuse
        self._flow: FlowKey | None = None  # the last flow packed, and its key
        self._key = 0
        self._forgotten = 0  # connections forgotten since ``_rows`` was last copied afresh

    def __len__(self) -> int:
        """How many connections are remembered."""
        return len(self._rows)

    def opened(self, flow: FlowKey, time: float | None, packet: int | None = None) -> None:
        """A new connection on ``flow`` (its SYN, packet number ``packet``, at ``time``):
        its clock starts again (from its first traffic when ``time`` is None)."""
        key = self._pack(flow)
        row = self._rows.pop(key, None)  # a reused 4-tuple is a new connection: the newest
        if packet is None and time is None:
            if row is not None:
                self._free.append(row)
            return
        if row is None:
            row = self._new()
        self._rows[key] = row
        self._syn[row] = _NO_SYN if packet is None else packet
        self._opened[row] = self._last[row] = _NO_TIME if time is None else time
        self._bound()

    def syn(self, flow: FlowKey) -> int | None:
        """The packet number of ``flow``'s SYN, if it was seen and not forgotten."""
        row = self._rows.get(self._pack(flow))
        if row is None or self._syn[row] == _NO_SYN:
            return None
        return self._syn[row]

    def forget_syn(self, flow: FlowKey) -> None:
        """Forget ``flow``'s SYN (the capture saw the last of it); its clock stays."""
        key = self._pack(flow)
        row = self._rows.get(key)
        if row is None:
            return
        self._syn[row] = _NO_SYN
        if isnan(self._opened[row]):  # nothing left to remember
            del self._rows[key]
            self._free.append(row)

    def traffic(self, flow: FlowKey, time: float) -> None:
        """Something crossed ``flow`` at ``time`` (a request or a response)."""
        key = self._pack(flow)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = self._new()
            self._syn[row] = _NO_SYN
            self._opened[row] = self._last[row] = time
            self._bound()
        elif isnan(self._opened[row]):  # opened without a time: this is its first traffic
            self._opened[row] = self._last[row] = time
        elif time > self._last[row]:
            self._last[row] = time

    def closed(
        self, flow: FlowKey, time: float, idle: float, keep_alive: float
    ) -> tuple[float, str] | None:
        """``(closed at, why)`` when the ALB had closed ``flow`` by ``time``; else ``None``
        (and ``time`` counts as traffic)."""
        row = self._rows.get(self._pack(flow))
        if row is None or isnan(self._opened[row]):
            self.traffic(flow, time)
            return None
        opened, last = self._opened[row], self._last[row]
        idle_end, keep_end = last + idle, opened + keep_alive
        if time <= min(idle_end, keep_end):
            self._last[row] = max(last, time)
            return None
        if idle_end <= keep_end:
            return idle_end, (
                f"the idle timeout (idle_timeout.timeout_seconds {idle:g}) passed without traffic"
            )
        return keep_end, (
            f"the client keep-alive duration (client_keep_alive.seconds {keep_alive:g}) ended"
        )

    def _pack(self, flow: FlowKey) -> int:
        if flow is not self._flow:
            self._key = self._keys.pack(flow.proto, flow.client.ip, flow.client.port,
                                        flow.server.ip, flow.server.port, flow.interface,
                                        flow.tunnel)  # fmt: skip
            self._flow = flow
        return self._key

    def _new(self) -> int:
        if self._free:
            return self._free.pop()
        self._syn.append(_NO_SYN)
        self._opened.append(_NO_TIME)
        self._last.append(_NO_TIME)
        return len(self._syn) - 1

    def _bound(self) -> None:
        rows = self._rows
        if len(rows) > self.limit:  # dicts keep insertion order: drop the oldest
            self._free.append(rows.pop(next(iter(rows))))
            self._forgotten += 1
            if self._forgotten >= max(self.limit // 4, 1):  # no holes, and room to grow
                self._rows, self._forgotten = dict(rows), 0


#: A row's "no SYN" and "no time yet" (packet numbers are never negative; NaN is no time).
_NO_SYN = -1
_NO_TIME = float("nan")

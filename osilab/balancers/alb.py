"""A sans-IO model of an AWS Application Load Balancer (layer 7).

Theory of operation
-------------------
An ALB is a proxy: "the load balancer maintains two connections", one with the client
and one with the target [ALB-UG application-load-balancers.md]. The client's TCP
handshake ends at the ALB; the ALB cannot choose anything until the request's headers
have arrived, often several segments after the SYN. Then, **per request**:

1. The **listener** is the one on the port the client connected to.
2. **Desync mitigation** (``routing.http.desync_mitigation_mode``, default
   ``defensive``) may block a request whose head is ambiguous or malformed
   (``lb-reference.md`` §1.8): the ALB answers 400 itself.
3. The **rules** run in ascending priority; the first whose conditions all match wins;
   otherwise the default rule (:mod:`osilab.balancers.rules`). Then, in ``Order``, the
   winner's checks (``jwt-validation``, ``authenticate-oidc``/``-cognito``,
   :mod:`osilab.balancers.auth`) may answer 401 or 302 themselves, and its transforms
   (:mod:`osilab.balancers.transforms`) rewrite the Host or URL (500 when that fails).
   On an mTLS listener (:mod:`osilab.balancers.mtls`) a connection whose client
   certificate verify mode refuses never gets this far.
4. The winning **action**: ``redirect`` (the ALB answers 301/302 with a Location built
   from ``#{protocol}``, ``#{host}``, ``#{port}``, ``#{path}``, ``#{query}``),
   ``fixed-response`` (the ALB answers by itself), or ``forward`` to one target group
   or to several by weight (sticky by the ``AWSALBTG`` cookie when group stickiness is
   on).
5. Inside the target group: an ``AWSALB`` stickiness cookie that decodes to a healthy
   registered target wins; otherwise the group's **algorithm** picks:
   ``round_robin`` (osilab: deterministic, starting at the first registered target and
   advancing one per pick), ``least_outstanding_requests`` (fewest requests forwarded
   whose response has not been seen complete; ties to the first registered) or
   ``weighted_random`` (seeded, so reproducible).
6. The request goes to the target with **X-Forwarded-For** (append/preserve/remove),
   **X-Forwarded-Proto**, **X-Forwarded-Port** and **X-Amzn-Trace-Id** added, in the
   group's ``ProtocolVersion`` (HTTP1, HTTP2, GRPC; a request the version cannot carry
   is refused, as AWS's table says [ALB-UG load-balancer-target-groups]).

Health (:mod:`osilab.balancers.health`): new requests choose among the healthy targets
(slow start weights a newly healthy one, linearly); a request already forwarded (in
flight) finishes where it is. The client connection is the ALB's own: it closes it after
``idle_timeout.timeout_seconds`` without traffic, or ``client_keep_alive.seconds``
after it opened; a later request on it is not routed (``action="idle-timeout"``).

The model is fed :class:`~osilab.protocols.messages.HttpRequest` (one decision each, at
``headers_complete_packet``) and :class:`~osilab.protocols.messages.HttpResponse` (to
count outstanding requests). It opens no socket and reads no clock: times are the
capture's. The stickiness cookies are opaque tokens (a keyed MAC over the group and
target) that this model alone can decode, as only AWS can decode its encrypted ones.

Desync mitigation follows ``lb-reference.md`` §1.8 through the one policy table,
:data:`osilab.balancers.mitigation.POLICY` (:func:`~osilab.balancers.mitigation.mitigate`).
The request's verdict comes from the HTTP parser (:mod:`osilab.protocols.desync`).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from osilab.balancers import explain
from osilab.balancers.auth import check_action
from osilab.balancers.config import Action, Listener, Rule, TargetGroup
from osilab.balancers.config.model import APPLICATION
from osilab.balancers.decision import Decision, DecisionKeeper, DecisionList, DeferredDecision
from osilab.balancers.explain import trace_id
from osilab.balancers.hashing import stable_hash
from osilab.balancers.health import TargetHealth
from osilab.balancers.mitigation import mitigate
from osilab.balancers.mtls import client_headers
from osilab.balancers.rules import (
    FIELD_HOST,
    FIELD_PATH,
    FIELD_QUERY,
    CompiledRules,
    evaluate_rules,
)
from osilab.balancers.targets import ConnectionClock, RoundRobin, protocol_refusal
from osilab.balancers.transforms import Rewrite, apply_transforms
from osilab.errors import ConfigError
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.streams.keys import FlowKey

__all__ = [
    "ApplicationLoadBalancer",
    "encode_cookie",
    "decode_cookie",
    "trace_id",
    "redirect_location",
]

#: Connections whose SYN packet number is remembered (for the "packets after the SYN"
#: note), and requests remembered as outstanding at a target. Both are bounded so that a
#: capture of millions of connections, or a one-sided capture whose responses never come,
#: cannot grow memory without end: beyond the cap the oldest entry is forgotten (its
#: request then stops counting as outstanding; ``forgotten`` counts these).
MAX_TRACKED = 65_536

#: Cookie lifetime AWS sets: a fixed 7 days, renewed on every request [ALB-UG sticky-sessions.md].
COOKIE_EXPIRY_SECONDS = 7 * 24 * 3600


def _mac(data: bytes, seed: int) -> bytes:
    return hmac.new(seed.to_bytes(8, "big") + b"osilab-alb-cookie", data, hashlib.sha256).digest()[
        :10
    ]


def encode_cookie(target_group: str, target: str | None, seed: int = 0) -> str:
    """An opaque stickiness cookie value naming a target group (and target).

    AWS encrypts its ``AWSALB``/``AWSALBTG`` values; osilab signs instead, so the value
    is just as useless to a client and this model can still decode it.
    """
    payload = f"{target_group}\x00{target or ''}".encode()
    return base64.urlsafe_b64encode(_mac(payload, seed) + payload).decode().rstrip("=")


def decode_cookie(value: str, seed: int = 0) -> tuple[str, str | None] | None:
    """``(target_group, target)`` from a value made by :func:`encode_cookie`, or ``None``
    when the value is not one (tampered, truncated, from another balancer)."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, TypeError):
        return None
    mac, payload = raw[:10], raw[10:]
    if len(mac) < 10 or not hmac.compare_digest(mac, _mac(payload, seed)):
        return None
    group, _, target = payload.decode(errors="replace").partition("\x00")
    return group, target or None


def _cookies(request: HttpRequest) -> dict[str, str]:
    jar: dict[str, str] = {}
    for name, value in request.headers:
        if name.lower() != "cookie":
            continue
        for part in value.split(";"):
            key, sep, val = part.strip().partition("=")
            if sep and key not in jar:
                jar[key] = val
    return jar


def _backend_note(request: HttpRequest) -> str:
    """What a back end stopping at this request's invalid length would read after it."""
    if not request.backend_would_read:
        return ""
    lines = "; ".join(repr(line) for line in request.backend_would_read)
    return (
        f"; its body length is invalid, and a back end that stops at that length would "
        f"go on to read {lines}, which the ALB never sees"
    )


def _host_without_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def redirect_location(
    redirect: Any, *, listener_protocol: str, listener_port: int, request: HttpRequest
) -> str:
    """The ``Location`` of a redirect action, placeholders substituted.

    ``#{protocol}`` is the listener's protocol, ``#{host}`` the request's host (without
    port), ``#{port}`` the listener port, ``#{path}`` the path **without its leading
    slash** (AWS writes ``"/#{path}"``), ``#{query}`` the query without ``?``. A default
    port (80 for HTTP, 443 for HTTPS) is left out of the URL.
    """
    values = {
        "#{protocol}": listener_protocol,
        "#{host}": _host_without_port(request.host or ""),
        "#{port}": str(listener_port),
        "#{path}": request.path.lstrip("/"),
        "#{query}": request.query,
    }

    def fill(template: str) -> str:
        for placeholder, value in values.items():
            template = template.replace(placeholder, value)
        return template

    protocol = fill(redirect.protocol).lower()
    host = fill(redirect.host)
    port = fill(redirect.port)
    path = fill(redirect.path)
    query = fill(redirect.query)
    default = {"http": "80", "https": "443"}.get(protocol)
    authority = host if port == default else f"{host}:{port}"
    return f"{protocol}://{authority}{path}" + (f"?{query}" if query else "")


#: What a redirect's Location copies from the request: placeholder -> the field it reads
#: (``#{protocol}`` and ``#{port}`` are the listener's, chosen by ``tcp.dstport``).
_REDIRECT_READS = {"#{host}": FIELD_HOST, "#{path}": FIELD_PATH, "#{query}": FIELD_QUERY}

#: The first field every decision read: the listener is the one on the destination port.
_LISTENER_FIELD = "tcp.dstport"


def _read_also(seen: tuple[str, ...], *fields: str) -> tuple[str, ...]:
    """``seen`` and then ``fields`` not yet in it, in the order they were read."""
    return seen + tuple(f for f in dict.fromkeys(fields) if f not in seen)


def _redirect_reads(redirect: Any) -> tuple[str, ...]:
    """The request fields a redirect's templates copy, in Location order."""
    templates = (redirect.protocol, redirect.host, redirect.port, redirect.path, redirect.query)
    return tuple(
        field
        for template in templates
        for placeholder, field in _REDIRECT_READS.items()
        if placeholder in template
    )


def _forward_why(routed: _Routed, group: str, target: str, how: str, syn: int | None,
                 version: str) -> str:
    """A forward's why, from facts bound when it was decided (built when first read)."""
    return explain.alb_forward_why_in_full(routed.request, routed.rule_why, group, target, how,
                                           syn, version, routed.close_note, routed.listener.idle_timeout)  # fmt: skip


def _request_line(request: HttpRequest) -> str:
    """The request line as the target receives it (HTTP/1.1 towards targets)."""
    return f"{request.method} {request.target} HTTP/1.1"


@dataclass(frozen=True, slots=True)
class _ListenerPlan:
    """What every request on one listener needs, worked out once per configuration: the
    listener, its name in decisions (``"HTTP:80"``), its rules compiled
    (:class:`~osilab.balancers.rules.CompiledRules`) and its idle timeout."""

    listener: Listener
    name: str
    rules: CompiledRules

    @classmethod
    def of(cls, listener: Listener) -> _ListenerPlan:
        rules = CompiledRules(listener.rules, read_first=(_LISTENER_FIELD,))
        return cls(listener, f"{listener.protocol}:{listener.port}", rules)


@dataclass(slots=True)
class _GroupState:
    group: TargetGroup
    health: TargetHealth
    rng: random.Random | None = None
    rr: RoundRobin = dataclasses.field(default_factory=RoundRobin)
    #: What the last health changes did to requests in flight (said once, on the next pick).
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclass(slots=True)
class _Routed:
    """A request past its listener, the desync mitigation and the rules: what its action needs.

    ``base`` holds the :class:`Decision` fields already known (flow, packets, listener,
    rule); ``close_note`` is what the desync mitigation adds to the why (``""``: nothing).
    Not frozen, though never changed once made: one is made for every request, and a
    frozen dataclass's ``__init__`` costs several times a plain one's.
    """

    request: HttpRequest
    listener: Listener
    action: Action
    base: dict[str, Any]
    seen: tuple[str, ...]
    close_note: str
    rewrite: Rewrite = Rewrite()
    extra_headers: tuple[tuple[str, str], ...] = ()
    #: The rules' why once something added to it; ``None``: :func:`evaluate_rules`' own,
    #: built only when read (the rules were matched by :class:`CompiledRules`).
    known_rule_why: str | None = None

    @property
    def rule_why(self) -> str:
        """Which rule matched and why (or why none did)."""
        if self.known_rule_why is not None:
            return self.known_rule_why
        return evaluate_rules(self.listener.rules, self.request).why


class ApplicationLoadBalancer(DecisionKeeper):
    """An AWS ALB, fed HTTP requests and responses.

    >>> from osilab.streams.keys import Endpoint, FlowKey
    >>> alb = ApplicationLoadBalancer({"Type": "application",
    ...     "TargetGroups": [{"Name": "web", "Targets": ["192.0.2.11:80", "192.0.2.12:80"]}],
    ...     "Listeners": [{"Protocol": "HTTP", "Port": 80,
    ...                    "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}]}]})
    >>> flow = FlowKey("tcp", Endpoint("198.51.100.7", 51514), Endpoint("203.0.113.20", 80))
    >>> req = HttpRequest(flow, 0, "GET", "/", "HTTP/1.1", (("Host", "shop.example"),), 4, 4, 1.0)
    >>> alb.request(req).target
    '192.0.2.11:80'
    """

    kind = "alb"
    lb_type = APPLICATION

    def _start(self) -> None:
        #: Outstanding requests and SYN notes forgotten because of :data:`MAX_TRACKED`.
        self.forgotten = 0
        self._groups: dict[str, _GroupState] = {}
        for group in self.config.target_groups:
            rng = random.Random(
                stable_hash(group.name.encode(), self.seed, purpose=b"weighted-random")
            )
            self._groups[group.name] = _GroupState(group, TargetHealth.of(group), rng=rng)
        self._group_rng = random.Random(
            stable_hash(b"forward-weights", self.seed, purpose=b"weighted-tg")
        )
        self.outstanding: dict[str, int] = {
            t: 0 for g in self.config.target_groups for t in g.targets
        }
        self._in_flight: dict[tuple[FlowKey, int], str] = {}
        self._first_time: float | None = None
        self._now = 0.0
        #: Client connections the desync mitigation closed: flow -> the sentence saying
        #: when and why. Bytes that arrive on them later never reach a target.
        self._closed_by_mitigation: dict[FlowKey, str] = {}
        #: Client certificate chains (DER, leaf first) by connection, for mutual TLS.
        self._client_chains: dict[FlowKey, tuple[bytes, ...]] = {}
        #: Client connections' SYN, opening and last traffic (the why's "N packets after
        #: the SYN"; idle timeout, client keep-alive), a compact row each.
        self._clock = ConnectionClock(MAX_TRACKED)
        #: Each TCP port's listener plan (None: no listener), made at its first request,
        #: for the configuration it was made from (:meth:`_plan`).
        self._plans: dict[int, _ListenerPlan | None] = {}
        self._plans_of = self.config

    # ------------------------------------------------------------------ connection facts

    def connection_opened(self, flow: FlowKey, packet: int, time: float | None = None) -> None:
        """The client's SYN for ``flow`` was packet ``packet`` (optional; used in the why).

        ``time``, when given, also starts the clock that relative ``HealthChanges``
        times count from (otherwise the first request's time does).
        """
        if self._first_time is None and time is not None:
            self._first_time = time
        self._clock.opened(flow, time, packet)  # a reused 4-tuple is a new connection
        self._closed_by_mitigation.pop(flow, None)
        self._client_chains.pop(flow, None)  # a new connection presents its own certificate

    def client_certificate(self, flow: FlowKey, chain: Sequence[bytes]) -> None:
        """The client of ``flow`` presented ``chain`` (DER, leaf first) in its TLS handshake
        (its Certificate message, :mod:`osilab.protocols.tls`): read by mutual TLS."""
        self._client_chains.pop(flow, None)
        self._client_chains[flow] = tuple(chain)
        if len(self._client_chains) > MAX_TRACKED:
            del self._client_chains[next(iter(self._client_chains))]

    def connection_ended(self, flow: FlowKey) -> None:
        """The capture saw the last of ``flow`` (closed, idle or reused), after its last
        request: forget its SYN. Its requests still without a response keep counting as
        outstanding (use :meth:`connection_closed` to stop that too)."""
        self._clock.forget_syn(flow)
        self._closed_by_mitigation.pop(flow, None)

    def connection_closed(self, flow: FlowKey) -> None:
        """The client's connection ended (its requests without a response stop counting)."""
        self._clock.forget_syn(flow)
        self._closed_by_mitigation.pop(flow, None)
        for key in [k for k in self._in_flight if k[0] == flow]:
            target = self._in_flight.pop(key)
            self.outstanding[target] -= 1

    # ------------------------------------------------------------------ feeding

    def feed(self, message: HttpRequest | HttpResponse) -> Decision | None:
        """Feed a request (returns its decision) or a response (returns ``None``).

        A request of a back end's reading only (``reading="backend"``: after an invalid
        length, where the ALB stopped reading) gets no decision: the ALB never saw it.
        The why of the request with the invalid length names it instead.
        """
        if isinstance(message, HttpRequest):
            if message.reading != "alb":
                return None
            return self.request(message)
        if isinstance(message, HttpResponse):
            self.response(message)
            return None
        raise ConfigError(
            f"an ALB is fed HttpRequest or HttpResponse, not {type(message).__name__}"
        )

    def feed_all(self, messages: Iterable[HttpRequest | HttpResponse]) -> DecisionList:
        """Feed many messages in order; returns all decisions so far."""
        for message in messages:
            self.feed(message)
        return self.decisions

    def response(self, response: HttpResponse) -> None:
        """A complete response: its request is no longer outstanding at its target."""
        key = (
            response.flow,
            response.stream_id if response.stream_id is not None else response.index,
        )
        target = self._in_flight.pop(key, None)
        if target is not None:
            self.outstanding[target] -= 1
        self._clock.traffic(response.flow, response.time)

    def idle_closed(self, flow: FlowKey, time: float) -> tuple[float, str] | None:
        """``(closed at, why)`` when the ALB had closed ``flow`` by ``time``, else ``None`` (and
        ``time`` counts as traffic). After a WebSocket's 101 every message, either way, is such
        traffic: carried unread until the idle timeout closes the tunnel [RFC 6455 §4; ALB-UG]."""
        plan = self._plan(flow.server.port)
        idle = plan.listener.idle_timeout if plan is not None else 60.0
        return self._clock.closed(flow, time, idle, self.config.client_keep_alive)

    def _plan(self, port: int) -> _ListenerPlan | None:
        """The plan of the listener on TCP ``port`` (None: no listener there), made once."""
        if self._plans_of is not self.config:  # a new configuration: plan again
            self._plans, self._plans_of = {}, self.config
        if port in self._plans:
            return self._plans[port]
        listener = self.config.listener(port, "tcp")
        plan = self._plans[port] = _ListenerPlan.of(listener) if listener is not None else None
        return plan

    def _timed_out(self, request: HttpRequest, listener: Listener) -> Decision | None:
        """The ALB closed this client connection before the request came: the idle timeout
        (no traffic for ``idle_timeout.timeout_seconds``) or the client keep-alive duration
        (``client_keep_alive.seconds`` since it opened) [``lb-reference.md`` §1.7, §6]."""
        closed = self._clock.closed(
            request.flow, request.time, listener.idle_timeout, self.config.client_keep_alive
        )
        if closed is None:
            return None
        closed_at, cause = closed
        return self._record(Decision(
            unit="request", flow=request.flow, request=request,
            decided_at=request.headers_complete_packet, time=request.time, target_group=None,
            target=None, seen=(_LISTENER_FIELD, "tcp.stream", "frame.time"),
            why=explain.alb_idle_timeout_why(request, closed_at, cause), action="idle-timeout",
            first_packet=request.first_packet, listener=f"{listener.protocol}:{listener.port}",
        ))  # fmt: skip

    def request(self, request: HttpRequest) -> Decision:
        """Decide one request: the whole of steps 1-6 above."""
        if self._first_time is None:
            self._first_time = request.time
        self._apply_health(request.time)
        port = request.flow.server.port
        plan = self._plan(port)
        base: dict[str, Any] = {
            "unit": "request",
            "flow": request.flow,
            "request": request,
            "decided_at": request.headers_complete_packet,
            "time": request.time,
            "first_packet": request.first_packet,
        }
        if plan is None:
            return self._record(
                Decision(
                    **base,
                    target_group=None,
                    target=None,
                    seen=(_LISTENER_FIELD,),
                    why=explain.alb_no_listener_why(port),
                    action="not-routable",
                )
            )
        listener = plan.listener
        base["listener"] = plan.name
        timed_out = self._timed_out(request, listener)
        if timed_out is not None:
            return timed_out

        closed = self._closed_by_mitigation  # usually empty: no dictionary lookup then
        closed_why = closed.get(request.flow) if closed else None
        if closed_why is not None:
            # This is how the defence works: a smuggled request hides *after* an ambiguous
            # one on the same connection. Closing the connection throws it away unread.
            return self._record(
                Decision(
                    **base,
                    target_group=None,
                    target=None,
                    seen=(_LISTENER_FIELD, "tcp.stream"),
                    why=explain.alb_closed_connection_why(request, closed_why),
                    action="connection-closed",
                )
            )

        close_note = _backend_note(request) if request.backend_would_read else ""
        verdict = request.desync
        if verdict is not None and verdict.klass != "Compliant":
            mode = self.config.desync_mitigation_mode
            mitigation = mitigate(verdict, mode)
            mitigation_why = mitigation.why.rstrip(".")
            if mitigation.close_client_connection:
                self._closed_by_mitigation[request.flow] = explain.alb_mitigation_closed(
                    request, mode
                )
                if len(self._closed_by_mitigation) > MAX_TRACKED:
                    del self._closed_by_mitigation[next(iter(self._closed_by_mitigation))]
            if not mitigation.forwarded:
                return self._record(
                    Decision(
                        **base,
                        target_group=None,
                        target=None,
                        seen=(_LISTENER_FIELD, "http.request.line", "http.request.headers"),
                        why=explain.alb_blocked_why(request, mode, mitigation_why + close_note),
                        action="blocked",
                        status=400,
                    )
                )
            if mitigation.close_target_connection:  # forwarded, then both connections closed
                close_note = f"; desync mitigation: {mitigation_why}" + close_note

        rule, seen = plan.rules.match(request)
        base["rule"] = rule.label if rule else "default"
        routed = _Routed(request, listener, action=rule.action if rule else listener.default_action,
                         base=base, seen=seen, close_note=close_note)  # fmt: skip
        prepared = self._prepare(routed, rule)
        if isinstance(prepared, Decision):
            return prepared
        if prepared.action.type in ("redirect", "fixed-response"):
            return self._answer(prepared)
        return self._forward(prepared)

    def _prepare(self, routed: _Routed, rule: Rule | None) -> _Routed | Decision:
        """Between the rules and the terminal action: mutual TLS, the checks in ``Order``,
        then the winner's transforms. Returns the ALB's own answer, or the routed request
        with what they added to its why and headers."""
        request, listener = routed.request, routed.listener
        actions = rule.actions if rule is not None else listener.default_actions
        if listener.mtls.mode == "off" and len(actions) == 1 and (rule is None or not rule.transforms):
            return routed  # the common case: nothing between the rules and the forward
        note = explain.alb_own_response_note(listener)
        answer = {**routed.base, "target_group": None, "target": None, "seen": routed.seen}
        mtls = client_headers(
            listener.mtls, self._client_chains.get(request.flow), request.time, listener.renamed
        )
        if mtls.refused is not None:
            why = explain.alb_tls_refused_why(request, mtls.refused)
            return self._record(Decision(**answer, why=why, action="tls-refused"))
        rule_why = routed.rule_why + mtls.why
        jar = _cookies(request)
        for action in actions[:-1]:
            check = check_action(action, request, jar)
            if not check.passed:
                assert check.status is not None
                why = explain.alb_check_why(request=request, rule_why=rule_why,
                    check_why=check.why, status=check.status, location=check.location, note=note)  # fmt: skip
                return self._record(Decision(**answer, why=why, action=action.type,
                                             status=check.status, location=check.location))  # fmt: skip
            rule_why += f"; {check.why}"
        rewrite = apply_transforms(rule, request)
        if rewrite.failed is not None:
            why = explain.alb_transform_failed_why(
                request=request, rule_why=rule_why, failed=rewrite.failed, note=note
            )
            return self._record(Decision(**answer, why=why, action="transform-failed", status=500))
        return dataclasses.replace(routed, known_rule_why=rule_why + rewrite.why, rewrite=rewrite,
                                   extra_headers=mtls.headers)  # fmt: skip

    def _answer(self, routed: _Routed) -> Decision:
        """A redirect or a fixed response: the ALB answers itself, no target sees the request."""
        request, listener, action = routed.request, routed.listener, routed.action
        location = None
        if action.redirect is not None:
            location = redirect_location(
                action.redirect,
                listener_protocol=listener.protocol,
                listener_port=listener.port,
                request=request,
            )
            status = int(action.redirect.status_code.split("_")[1])
            seen = _read_also(routed.seen, *_redirect_reads(action.redirect))
        else:
            seen = routed.seen
            assert action.fixed_response is not None
            status = int(action.fixed_response.status_code)
        why = explain.alb_answer_why(
            request=request,
            rule_why=routed.rule_why,
            status=status,
            location=location,
            close_note=routed.close_note + explain.alb_own_response_note(listener),
        )
        return self._record(
            Decision(
                **routed.base,
                target_group=None,
                target=None,
                seen=seen,
                why=why,
                action=action.type,
                status=status,
                location=location,
            )
        )

    # ------------------------------------------------------------------ forwarding

    def _forward(self, routed: _Routed) -> Decision:
        """A forward action: a target group (by weight or AWSALBTG), then a target in it."""
        request, action, seen = routed.request, routed.action, routed.seen
        cookies: list[str] = []
        notes: list[str] = []
        group_name: str | None = None
        if len(action.target_groups) > 1 or action.group_stickiness:
            jar = _cookies(request)
            entries = [e for e in action.target_groups if e.weight > 0]
            if action.group_stickiness:
                seen = _read_also(seen, "http.cookie")
                decoded = decode_cookie(jar["AWSALBTG"], self.seed) if "AWSALBTG" in jar else None
                if decoded and decoded[0] in [e.name for e in entries]:
                    group_name = decoded[0]
                    notes.append(f"its AWSALBTG cookie keeps it on target group {group_name}")
                elif "AWSALBTG" in jar:
                    notes.append(
                        "its AWSALBTG cookie could not be decoded, so the weights chose again"
                    )
            if group_name is None:
                total = sum(e.weight for e in entries)
                point = self._group_rng.random() * total
                for entry in entries:
                    if point < entry.weight:
                        group_name = entry.name
                        break
                    point -= entry.weight
                else:  # pragma: no cover - floating point edge
                    group_name = entries[-1].name
                weights = ", ".join(f"{e.name} {e.weight}" for e in action.target_groups)
                notes.append(f"target group {group_name} drawn by weight ({weights})")
            if action.group_stickiness:
                cookies.append(
                    self._set_cookie(
                        "AWSALBTG", encode_cookie(group_name, None, self.seed), request.time
                    )
                )
        else:
            jar = {}
            group_name = action.target_groups[0].name
        state = self._groups[group_name]
        group = state.group
        refused = self._protocol_refused(routed, group)
        if refused is not None:
            return refused
        if not state.health.live:  # every target deregistered: nowhere to go
            why = explain.alb_answer_why(
                request=request, rule_why=routed.rule_why, status=503, location=None,
                close_note=f"; {explain.health_state_note(group.targets, state.health.state, [])} "
                f"in target group {group_name}",
            )  # fmt: skip
            return self._record(Decision(**routed.base, target_group=group_name, target=None,
                                         seen=seen, why=why, action="not-routable", status=503))  # fmt: skip
        if group.stickiness in ("lb_cookie", "app_cookie"):
            seen = _read_also(seen, "http.cookie")
            jar = jar or _cookies(request)
        target, how = self._pick_target(state, request, jar, cookies)
        if state.notes:
            notes += state.notes
            state.notes.clear()
        if not state.health.all_healthy:  # the note is "" while every target is healthy
            health = state.health
            health_note = explain.health_state_note(group.targets, health.state, health.live)
            if health_note:
                notes.append(health_note)
        if notes:
            how = "; ".join(notes) + "; " + how
        key = (
            request.flow,
            request.stream_id if request.stream_id is not None else request.index,
        )
        self._in_flight[key] = target
        self.outstanding[target] = self.outstanding.get(target, 0) + 1
        if len(self._in_flight) > MAX_TRACKED:  # a response never seen: stop waiting for it
            oldest = next(iter(self._in_flight))
            self.outstanding[self._in_flight.pop(oldest)] -= 1
            self.forgotten += 1
        to_target = routed.rewrite.request(request)  # as the target receives it
        listener, config = routed.listener, self.config
        # The why and the headers are built when read (DeferredDecision), from facts bound now.
        return self._record(DeferredDecision(
            **routed.base, target_group=group_name, target=target, seen=seen,
            request_line_to_target=_request_line(to_target) if routed.rewrite.changed else None,
            client_ip_at_target=explain.client_ip_note(group.target_type),
            cookies=tuple(cookies),
            why_of=functools.partial(
                _forward_why, routed, group_name, target, how, self._clock.syn(request.flow),
                group.protocol_version),
            headers_of=functools.partial(
                explain.alb_headers_to_target, to_target, listener, xff_mode=config.xff_mode,
                xff_client_port=config.xff_client_port, seed=self.seed,
                extra=routed.extra_headers),
        ))  # fmt: skip

    def _pick_target(
        self, state: _GroupState, request: HttpRequest, jar: dict[str, str], cookies: list[str]
    ) -> tuple[str, str]:
        group = state.group
        live = state.health.live
        if group.stickiness == "app_cookie":
            return self._app_cookie_target(state, request, jar)
        if group.stickiness == "lb_cookie":
            decoded = decode_cookie(jar["AWSALB"], self.seed) if "AWSALB" in jar else None
            if decoded and decoded[0] == group.name and decoded[1] in state.health.healthy:
                target = decoded[1]
                cookies.append(
                    self._set_cookie(
                        "AWSALB", encode_cookie(group.name, target, self.seed), request.time
                    )
                )
                return target, "its AWSALB stickiness cookie names this target"
        target, how = self._algorithm(state, live)
        if group.stickiness == "lb_cookie":
            cookies.append(
                self._set_cookie(
                    "AWSALB", encode_cookie(group.name, target, self.seed), request.time
                )
            )
            if "AWSALB" in jar:
                how += "; its AWSALB cookie was undecodable or named a target no longer available, so it gets a new one"
            else:
                how += "; the response will set an AWSALB stickiness cookie"
        return target, how

    def _app_cookie_target(
        self, state: _GroupState, request: HttpRequest, jar: dict[str, str]
    ) -> tuple[str, str]:
        """Application-based stickiness: the ALB's ``AWSALBAPP-0`` cookie names the target
        once the target has set its own cookie [ALB-UG sticky-sessions.md]."""
        group = state.group
        decoded = decode_cookie(jar["AWSALBAPP-0"], self.seed) if "AWSALBAPP-0" in jar else None
        if decoded and decoded[0] == group.name and decoded[1] in state.health.healthy:
            return decoded[1], "its AWSALBAPP-0 stickiness cookie names this target"
        target, how = self._algorithm(state, state.health.live)
        if "AWSALBAPP-0" in jar:
            how += "; its AWSALBAPP-0 cookie was undecodable or named a target no longer available"
        return target, (
            f"{how}; when the target's response sets the application cookie "
            f"{group.app_cookie_name}, the ALB adds AWSALBAPP-0 naming {target}"
        )

    def _algorithm(self, state: _GroupState, live: list[str]) -> tuple[str, str]:
        group = state.group
        if group.algorithm == "least_outstanding_requests":
            order = {t: i for i, t in enumerate(group.targets)}
            target = min(live, key=lambda t: (self.outstanding.get(t, 0), order[t]))
            counts = ", ".join(f"{t} {self.outstanding.get(t, 0)}" for t in live)
            return target, f"least outstanding requests ({counts})"
        if group.algorithm == "weighted_random":
            assert state.rng is not None
            target = state.rng.choice(live)
            return target, "weighted random (equal weights, seeded)"
        shares = state.health.weights(self._now) if state.health.in_slow_start else None
        return state.rr.pick(live, shares)

    def _protocol_refused(self, routed: _Routed, group: TargetGroup) -> Decision | None:
        """A request the group's ProtocolVersion cannot carry (AWS's table, ``lb-reference.md``
        §1.7): HTTP/1.x to HTTP2 or GRPC; gRPC to HTTP1; a non-POST HTTP/2 request to GRPC."""
        client = protocol_refusal(routed.request, group.protocol_version)
        if client is None:
            return None
        why = explain.alb_protocol_refused_why(routed.request, group.name, group.protocol_version, client)
        return self._record(Decision(**routed.base, target_group=group.name, target=None,
                                     seen=routed.seen, why=why, action="not-routable"))  # fmt: skip

    def _set_cookie(self, name: str, value: str, time: float) -> str:
        expires = formatdate(time + COOKIE_EXPIRY_SECONDS, usegmt=True)
        return f"{name}={value}; Expires={expires}; Path=/"

    # ------------------------------------------------------------------ health and bookkeeping

    def _apply_health(self, time: float) -> None:
        self._now = time
        for state in self._groups.values():
            if not state.health.pending:  # no HealthChanges (left): nothing to advance
                continue
            for event in state.health.advance(time, self._first_time):
                if event.state == "healthy":
                    continue
                count = sum(1 for t in self._in_flight.values() if t == event.target)
                note = explain.alb_in_flight_note(event.target, event.state, count)
                if note:
                    state.notes.append(note)

"""The "why" of a decision, in sentences a learner understands.

Each function turns the facts of one decision into one sentence (sometimes two). The
sentences always name the packet, the fields and the values, because the lesson is
*what the balancer could see at that moment*:

- an NLB decides at the SYN from addresses and ports, before any byte of HTTP exists;
- an ALB decides when the request's headers are complete, from host, path, headers...

This module only writes text; it decides nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from osilab.balancers.config import Listener, TargetGroup
from osilab.balancers.quic_lb import QuicRoute
from osilab.protocols.messages import HttpRequest
from osilab.streams.keys import FlowKey

__all__ = [
    "NOT_ROUTABLE_REASONS",
    "nlb_flow_why",
    "nlb_tls_note",
    "nlb_quic_why",
    "nlb_follow_why",
    "nlb_request_why",
    "nlb_missed_syn_why",
    "alb_forward_why",
    "alb_answer_why",
    "alb_termination_note",
    "alb_no_listener_why",
    "alb_mitigation_closed",
    "alb_blocked_why",
    "alb_closed_connection_why",
    "alb_check_why",
    "alb_transform_failed_why",
    "alb_tls_refused_why",
    "alb_own_response_note",
    "health_state_note",
    "nlb_reset_why",
    "alb_in_flight_note",
    "alb_idle_timeout_why",
    "alb_websocket_note",
    "alb_forward_why_in_full",
    "alb_headers_to_target",
    "trace_id",
    "alb_protocol_note",
    "alb_protocol_refused_why",
    "client_ip_note",
    "cdn_behavior_why",
    "cdn_answer_why",
    "cdn_method_why",
    "cdn_hit_why",
    "cdn_forward_why",
    "alb_tunnel_why",
    "alb_protocol_version_why",
]

#: Why a packet reaching an NLB is not routed, with the behaviour AWS documents.
NOT_ROUTABLE_REASONS = {
    "non-IP": "not an IP packet: a load balancer only sees IP traffic",
    "no listener": "no listener on this protocol and port: AWS drops unintended traffic",
    "mid-stream without a handshake": (
        "a TCP packet of no known connection (its SYN was never seen): AWS answers with RST"
    ),
    "damaged": "the packet is damaged (truncated or malformed headers)",
    "idle timeout": (
        "the flow was idle longer than the idle timeout and was forgotten: AWS answers TCP data with RST"
    ),
    "reset by the NLB": (
        "the flow's target became unhealthy (or its deregistration delay ended with connection "
        "termination on): the NLB sent RST to the client and forgot the flow"
    ),
    "no registered target": (
        "every target of the group is deregistered (draining or unused): a new flow has nowhere to go"
    ),
}


def _endpoints(flow: FlowKey) -> str:
    return f"{flow.client} -> {flow.server}"


def nlb_flow_why(
    flow: FlowKey,
    packet: int,
    listener: Listener,
    group: TargetGroup,
    target: str,
    method: str,
    *,
    first_is_syn: bool,
    health_note: str = "",
) -> str:
    """Why an NLB sent a new flow to a target (said at the flow's first packet).

    ``method`` says how the hash became a target (``"Maglev slot 7 of 65537"``);
    ``health_note`` is :func:`health_state_note`'s, when some targets are away.
    """
    what = "the SYN" if first_is_syn else "the flow's first packet"
    fields = {
        "5-tuple": "protocol, source and destination addresses and ports",
        "5-tuple+seq": "protocol, addresses, ports and the SYN's sequence number",
        "source-ip": "source and destination IP addresses only (source IP affinity)",
        "source-ip-proto": "protocol and source and destination IP addresses (source IP affinity)",
    }[group.hash]
    sentence = (
        f"the NLB chose {target} (target group {group.name}) at packet {packet}, {what}, "
        f"by hashing the {fields} of {flow.proto.upper()} {_endpoints(flow)} ({method}) "
        f"on listener {listener.protocol}:{listener.port}; every later packet of this flow "
        f"follows it, {NEVER_READS_PAYLOAD}"
    )
    notes = (nlb_tls_note(listener.protocol, listener.port), health_note)
    extras = [note for note in notes if note]
    return sentence + ("; " + "; ".join(extras) if extras else "") + "."


#: What :func:`nlb_flow_why` says of the payload; a QUIC listener reads one field of it.
NEVER_READS_PAYLOAD = "and the NLB never reads the payload"
_READS_THE_DCID = "and of the payload the NLB reads only the QUIC header's Destination Connection ID"


def nlb_quic_why(flow: FlowKey, packet: int, listener: Listener, group: TargetGroup,
                 route: QuicRoute, hashed_why: str) -> str:  # fmt: skip
    """Why a QUIC listener sent a new 5-tuple where it did: the server ID in the packet's
    Destination Connection ID (QUIC-LB), or, when the DCID names no registered server
    (a client's first Initial), the 5-tuple hash (``hashed_why``) with that said."""
    dcid = route.dcid.hex() if route.dcid is not None else None
    if route.target is None:
        if dcid is not None:  # it did read the payload: its connection ID
            hashed_why = hashed_why.replace(NEVER_READS_PAYLOAD, _READS_THE_DCID)
        if dcid is None:
            return hashed_why[:-1] + "; the datagram is not QUIC, so it is hashed like UDP."
        return (hashed_why[:-1] + f"; its Destination Connection ID {dcid} carries no QuicServerId "
                "registered in the group (a client's first Initial: the client chose that ID at "
                "random), so the 5-tuple decided, and the target's own IDs will steer the rest.")  # fmt: skip
    return (f"the NLB chose {route.target} (target group {group.name}) at packet {packet} by the "
            f"Destination Connection ID {dcid} of {flow.proto.upper()} {_endpoints(flow)}: its "
            f"server ID 0x{(route.server_id or b'').hex()} (the octets after the first, QUIC-LB plaintext) "
            f"is that target's QuicServerId on listener {listener.protocol}:{listener.port}; the "
            "5-tuple did not decide, so a client that moved to a new address or port stays on "
            "the target that issued the ID (QUIC connection migration).")  # fmt: skip


def nlb_tls_note(listener_protocol: str, port: int) -> str:
    """What TLS changes for an NLB listener (nothing for the route), or ``""``.

    >>> nlb_tls_note("TCP", 443)
    'a TCP listener on 443 passes TLS through: the NLB could see at most the SNI in the ClientHello, and it does not route on it'
    """
    if listener_protocol == "TLS":
        return (
            "the TLS listener terminates TLS, so the NLB decrypts the stream and opens a new "
            "connection to the target, but it still routes on the 5-tuple only"
        )
    if port == 443 and listener_protocol in ("TCP", "TCP_UDP"):
        return (
            "a TCP listener on 443 passes TLS through: the NLB could see at most the SNI in "
            "the ClientHello, and it does not route on it"
        )
    return ""


def nlb_follow_why(flow: FlowKey, decided_at: int) -> str:
    """A later packet of a known flow."""
    return f"follows the decision made at packet {decided_at} for {_endpoints(flow)}"


def nlb_request_why(request: HttpRequest, decided_at: int, target: str | None) -> str:
    """Why the NLB's target for an HTTP request was fixed long before the request existed.

    >>> from osilab.streams.keys import Endpoint, FlowKey
    >>> flow = FlowKey("tcp", Endpoint("198.51.100.7", 51514), Endpoint("203.0.113.20", 80))
    >>> req = HttpRequest(flow, 0, "GET", "/api/items", "HTTP/1.1", (), 6, 6, 0.0)
    >>> nlb_request_why(req, 1, "192.0.2.11:80")
    'the path /api/items is in the TCP payload of packet 6, but the NLB chose its target at packet 1 from 198.51.100.7:51514 -> 203.0.113.20:80 (request 1 on this connection goes to 192.0.2.11:80 like every other)'
    """
    where = (
        f"packet {request.headers_complete_packet}"
        if request.first_packet == request.headers_complete_packet
        else f"packets {request.first_packet}-{request.headers_complete_packet}"
    )
    return (
        f"the path {request.path} is in the TCP payload of {where}, but the NLB chose its "
        f"target at packet {decided_at} from {_endpoints(request.flow)} "
        f"(request {request.index + 1} on this connection goes to {target} like every other)"
    )


def alb_termination_note(flow: FlowKey, target: str) -> str:
    """The ALB is a proxy: two TCP connections, not one."""
    return (
        f"the client's TCP connection {_endpoints(flow)} ends at the ALB, "
        f"which opens (or reuses) its own connection to {target}"
    )


def _request_at(request: HttpRequest) -> str:
    """``GET /x (headers complete at packet 7)``: a request and where it was whole."""
    return f"{request.method} {request.target} (headers complete at packet {request.headers_complete_packet})"


def _headers_complete(request: HttpRequest) -> str:
    return (
        f"at packet {request.headers_complete_packet} the headers of {request.method} "
        f"{request.target} were complete"
    )


def alb_forward_why(
    *,
    request: HttpRequest,
    rule_why: str,
    target_group: str,
    target: str,
    how: str,
    syn: int | None = None,
    close_note: str = "",
) -> str:
    """Why an ALB forwarded a request where it did.

    ``syn`` is the packet of the connection's SYN, when captured (the ALB decided that
    many packets later); ``close_note`` what the desync mitigation adds (``"; ..."``).
    """
    sentence = (
        f"{_headers_complete(request)}; {rule_why}; forwarded to target group "
        f"{target_group}, target {target} ({how}); {alb_termination_note(request.flow, target)}"
    )
    if syn is not None:
        sentence += f"; that is {request.headers_complete_packet - syn} packets after the SYN (packet {syn})"
    return sentence + close_note + "."


def alb_forward_why_in_full(
    request: HttpRequest, rule_why: str, target_group: str, target: str, how: str,
    syn: int | None, protocol_version: str, close_note: str, idle_timeout: float,
) -> str:
    """:func:`alb_forward_why` with the notes a forward may add: the ProtocolVersion spoken
    to the target, the desync mitigation's ``close_note``, a WebSocket Upgrade's. Every
    argument is a fact known when the ALB decided, so the sentence can be built later
    (:class:`~osilab.balancers.decision.DeferredDecision`) and still be the same."""
    notes = (
        alb_protocol_note(protocol_version) + close_note
        + alb_websocket_note(request, target, idle_timeout)
    )  # fmt: skip
    return alb_forward_why(request=request, rule_why=rule_why, target_group=target_group,
                           target=target, how=how, syn=syn, close_note=notes)  # fmt: skip


def trace_id(time: float, key: str, seed: int = 0) -> str:
    """An ``X-Amzn-Trace-Id`` root: ``1-<8 hex epoch seconds>-<24 hex>`` (deterministic here).

    >>> trace_id(1700000000.5, "flow#0")[:11]
    '1-6553f100-'
    """
    unique = hashlib.blake2b(key.encode(), digest_size=12, key=seed.to_bytes(8, "big")).hexdigest()
    return f"1-{int(time) & 0xFFFFFFFF:08x}-{unique}"


def alb_headers_to_target(
    request: HttpRequest, listener: Listener, *, xff_mode: str, xff_client_port: bool,
    seed: int, extra: tuple[tuple[str, str], ...] = (),
) -> tuple[tuple[str, str], ...]:
    """The request's headers as the ALB's target receives them, then ``extra`` (mTLS's).

    ``X-Forwarded-For`` appended to, preserved or removed (``routing.http.xff_header_
    processing.mode``), ``X-Forwarded-Proto``/``-Port`` set from the listener, and an
    ``X-Amzn-Trace-Id`` root added, or a ``Self=`` before a client's own ``Root=``
    [ALB-UG x-forwarded-headers.md, load-balancer-request-tracing.md].
    """
    client = request.flow.client
    client_text = client.ip
    if xff_client_port:
        client_text = (
            f"[{client.ip}]:{client.port}" if ":" in client.ip else f"{client.ip}:{client.port}"
        )
    headers: list[tuple[str, str]] = []
    xff_values = []
    trace = None
    for name, value in request.headers:
        lowered = name.lower()
        if lowered == "x-forwarded-for":
            xff_values.append(value)
            if xff_mode == "preserve":
                headers.append((name, value))
            continue
        if lowered in ("x-forwarded-proto", "x-forwarded-port"):
            continue
        if lowered == "x-amzn-trace-id":
            trace = value
            continue
        headers.append((name, value))
    if xff_mode == "append":
        headers.append(("X-Forwarded-For", ", ".join(xff_values + [client_text])))
    headers.append(("X-Forwarded-Proto", listener.protocol.lower()))
    headers.append(("X-Forwarded-Port", str(listener.port)))
    key = f"{request.flow}#{request.stream_id if request.stream_id is not None else request.index}"
    new_id = trace_id(request.time, key, seed)
    if trace is None:
        headers.append(("X-Amzn-Trace-Id", f"Root={new_id}"))
    elif "Root=" in trace:
        headers.append(("X-Amzn-Trace-Id", f"Self={new_id};{trace}"))
    else:
        headers.append(("X-Amzn-Trace-Id", f"Root={new_id};{trace}"))
    return tuple(headers) + extra


def alb_websocket_note(request: HttpRequest, target: str, idle_timeout: float) -> str:
    """What a WebSocket Upgrade changes (``""`` for any other request): one decision, then bytes.

    RFC 6455 §4: after the target's ``101`` the connection carries frames, not requests;
    an ALB keeps it on the target that answered 101 and reads none of them (ALB-UG:
    "WebSockets stay with the target that sent 101"; ``lb-reference.md``).
    """
    upgrade = (request.header("upgrade") or "").lower()
    if request.stream_id is not None or "websocket" not in upgrade:
        return ""
    return (
        "; it asks for WebSocket (Upgrade: websocket, RFC 6455), so this is the connection's "
        f"one routing decision: after the 101 every message goes to {target}, carried both ways "
        "without being read (no rule sees a message), until a side closes or nothing passes "
        f"for the idle timeout ({idle_timeout:g} s)"
    )


def alb_answer_why(
    *, request: HttpRequest, rule_why: str, status: int, location: str | None, close_note: str = ""
) -> str:
    """Why the ALB answered a request itself: a redirect (``location``) or a fixed response."""
    answer = f"with Location {location}" if location is not None else "(fixed-response)"
    return (
        f"{_headers_complete(request)}; {rule_why}; the ALB answers {status} itself "
        f"{answer} and no target sees the request{close_note}."
    )


def alb_no_listener_why(port: int) -> str:
    """A request to a port the ALB has no listener on."""
    return f"no listener on port {port}: the ALB would never have accepted this connection"


def alb_mitigation_closed(request: HttpRequest, mode: str) -> str:
    """When and why the desync mitigation closed a client connection (said of later bytes)."""
    return (
        f"at packet {request.headers_complete_packet} desync mitigation ({mode} mode) "
        f"closed it after {request.method} {request.target}"
    )


def alb_blocked_why(request: HttpRequest, mode: str, mitigation_why: str) -> str:
    """A request the desync mitigation blocked (the ALB answered 400 itself)."""
    return (
        f"desync mitigation ({mode} mode) blocked {request.method} {request.target} at "
        f"packet {request.headers_complete_packet}: {mitigation_why}"
    )


def alb_closed_connection_why(request: HttpRequest, closed: str) -> str:
    """A request that arrived on a connection the desync mitigation had already closed.

    ``closed`` is :func:`alb_mitigation_closed`'s sentence for that connection.
    """
    return (
        f"{_request_at(request)} arrived on a connection the ALB had already closed: "
        f"{closed}; no target ever sees these bytes"
    )


def nlb_missed_syn_why() -> str:
    """A request whose connection the NLB never saw open (its SYN is not in the capture)."""
    return "the NLB never saw this connection's SYN, so it could not route it"


def alb_own_response_note(listener: Listener) -> str:
    """What the listener's header-modification attributes put on a response the ALB writes
    itself (redirect, fixed response, 401, 302, 500), or ``""`` [ALB-UG header-modification].
    """
    added = [f"{name}: {value}" for name, value in listener.response_headers]
    server = (
        "Server: awselb/2.0"
        if listener.server_header
        else "no Server header (routing.http.response.server.enabled is false)"
    )
    if not added and listener.server_header:
        return ""
    return f"; its own response carries {', '.join([server, *added])} (header modification)"


def alb_check_why(
    *,
    request: HttpRequest,
    rule_why: str,
    check_why: str,
    status: int,
    location: str | None,
    note: str = "",
) -> str:
    """Why a check action (jwt-validation, authenticate-oidc/-cognito) answered by itself."""
    answer = f" with Location {location}" if location else ""
    return (
        f"{_headers_complete(request)}; {rule_why}; {check_why}; the ALB answers {status} "
        f"itself{answer} and no target sees the request{note}."
    )


def alb_transform_failed_why(
    *, request: HttpRequest, rule_why: str, failed: str, note: str = ""
) -> str:
    """A transform matched but produced an invalid host or URL: AWS answers 500."""
    return (
        f"{_headers_complete(request)}; {rule_why}; {failed}, so the transform fails and the "
        f"ALB answers 500 itself (transforms run after the rule has won){note}."
    )


def alb_tls_refused_why(request: HttpRequest, refused: str) -> str:
    """A connection mutual TLS verify mode would have refused at its handshake."""
    return (
        f"{_request_at(request)} came on a connection the ALB would never have finished: {refused}"
    )


# --------------------------------------------------------------------------- health (issue 18)


def health_state_note(targets: Sequence[str], state: dict[str, str], live: Sequence[str]) -> str:
    """Why new traffic chose among fewer targets than are registered, or ``""``.

    >>> health_state_note(("a:80", "b:80"), {"a:80": "draining", "b:80": "healthy"}, ["b:80"])
    'a:80 draining, so new traffic goes to the 1 other targets only'
    """
    away = [t for t in targets if state.get(t, "healthy") != "healthy"]
    if not away:
        return ""
    if live and all(state.get(t) == "unhealthy" for t in live):
        return "every registered target is unhealthy, so the balancer fails open and uses them all"
    if not live:
        return "no target is registered (draining or unused)"
    said = ", ".join(f"{t} {state[t]}" for t in away)
    return f"{said}, so new traffic goes to the {len(live)} other targets only"


def nlb_reset_why(
    flow: FlowKey, decided_at: int, target: str, state: str, changed_at: float, *, delay: float
) -> str:
    """Why the NLB sent RST on an open flow: its target became unhealthy, or its
    deregistration delay ended [NLB-UG target-group-health-checks, load-balancer-target-groups]."""
    if state == "draining":
        cause = (
            f"its target {target} was deregistered at {changed_at:.3f} and the deregistration "
            f"delay ({delay:g} s) ended with deregistration_delay.connection_termination.enabled"
        )
    else:
        wait = f" and the unhealthy draining interval ({delay:g} s) ended" if delay else ""
        cause = (
            f"its target {target} became unhealthy at {changed_at:.3f}{wait}, and "
            "target_health_state.unhealthy.connection_termination.enabled is true (AWS's default)"
        )
    return (
        f"the flow {_endpoints(flow)} (decided at packet {decided_at}) was reset: {cause}, so "
        "the NLB sends the client a TCP RST and forgets the flow; later packets of it are not routed"
    )


def alb_in_flight_note(target: str, state: str, count: int) -> str:
    """What an ALB does with requests already on a target that leaves (they finish there)."""
    if not count:
        return ""
    return (
        f"{target} became {state}; the {count} request(s) already in flight on it finish "
        "there, only new requests choose again"
    )


def alb_idle_timeout_why(request: HttpRequest, closed_at: float, cause: str) -> str:
    """A request on a client connection the ALB had already closed (idle timeout or client
    keep-alive duration) [ALB-UG application-load-balancers.md, edit-load-balancer-attributes]."""
    return (
        f"{_request_at(request)} came at {request.time:.3f} on a connection the ALB had closed "
        f"at {closed_at:.3f}: {cause}; the client must open a new connection, and no target "
        "sees this request"
    )


def alb_protocol_note(version: str) -> str:
    """What the ALB speaks to the target (``ProtocolVersion``), or ``""`` for HTTP1."""
    spoken = {"HTTP2": "HTTP/2", "GRPC": "gRPC over HTTP/2"}.get(version)
    if spoken is None:
        return ""
    return f"; the target group's ProtocolVersion is {version}, so the ALB speaks {spoken} to the target"


def alb_protocol_refused_why(request: HttpRequest, group: str, version: str, client: str) -> str:
    """A request the target group's ProtocolVersion cannot carry [ALB-UG load-balancer-target-groups]."""
    return (
        f"{_request_at(request)} is {client} and target group {group} has ProtocolVersion "
        f"{version}: AWS lists this combination as an error, so no target sees the request"
    )


def client_ip_note(target_type: str) -> str:
    """Where an ALB's target learns the client's address, by ``TargetType``."""
    if target_type == "lambda":
        return "the Lambda event's X-Forwarded-For (a Lambda function has no TCP connection)"
    return "the ALB's private IP (the client is in X-Forwarded-For)"


# -- the CloudFront edge (osilab.balancers.cdn) ----------------------------------------
# An edge answers some requests itself: the lesson is which requests never reach an
# origin, and which field of the request (path, scheme, query, cookie) made it so.


def cdn_behavior_why(path: str, behavior: str, position: int | None, count: int) -> str:
    """Which cache behavior took the request: first matching PathPattern in list order."""
    if position is None:
        return (
            f"no PathPattern of the {count} cache behaviors matches {path}, so the default "
            "behavior (*) applies"
        )
    return (
        f"cache behavior {behavior} (behavior {position + 1} of {count}: the first whose "
        f"PathPattern matches {path}; behaviors are tried in list order)"
    )


def cdn_answer_why(
    *,
    request: HttpRequest,
    behavior_why: str,
    scheme: str,
    policy: str,
    status: int,
    location: str | None,
) -> str:
    """The edge answered by the viewer protocol policy (301 redirect or 403 error)."""
    answer = f"301 to {location}" if location else f"{status}"
    return (
        f"{_headers_complete(request)} on {scheme}; {behavior_why}; its ViewerProtocolPolicy is "
        f"{policy}, so the edge answers {answer} itself and no origin sees the request."
    )


def cdn_method_why(*, request: HttpRequest, behavior_why: str, allowed: str) -> str:
    """A method the behavior does not allow: CloudFront answers 403 itself."""
    return (
        f"{_headers_complete(request)}; {behavior_why}; it allows only {allowed}, so the edge "
        f"answers 403 itself and no origin sees the {request.method}."
    )


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def cdn_hit_why(
    *,
    request: HttpRequest,
    behavior_why: str,
    key: str,
    stored_packet: int,
    age: float,
    ttl: float,
    ttl_from: str,
) -> str:
    """A fresh copy in the cache: the edge answers, the origin never hears of it."""
    return (
        f"{_headers_complete(request)}; {behavior_why}; cache key {key}; the edge stored this "
        f"object {_duration(age)} earlier (the response at packet {stored_packet}, TTL {ttl:g} s "
        f"from {ttl_from}), so it is fresh: Hit from cloudfront, answered at the edge, and no "
        "origin sees the request."
    )


def cdn_forward_why(
    *,
    request: HttpRequest,
    behavior_why: str,
    key: str | None,
    reason: str,
    origin: str,
    target: str,
    cache: str,
) -> str:
    """A Miss or a RefreshHit: the edge asks the origin (the origin request)."""
    keyed = f"cache key {key}; " if key else ""
    return (
        f"{_headers_complete(request)}; {behavior_why}; {keyed}{reason}, so the edge opens (or "
        f"reuses) its own connection to origin {origin} at {target} and forwards the request "
        f"with Via and X-Forwarded-For ({cache} from cloudfront)."
    )


def alb_tunnel_why(
    *,
    message: str,
    packet: int,
    time: float,
    upgrade_packet: int,
    target: str,
    idle: float,
    closed: tuple[float, str] | None,
    back: bool = False,
) -> str:
    """A WebSocket message after the 101: carried unread, or not carried once the ALB closed
    the connection by its idle timeout (``back``: a message from the target to the client).

    RFC 6455 §4: after the 101 the connection carries frames, not requests; the ALB made
    its one routing decision at the Upgrade request (packet ``upgrade_packet``) and now
    only copies bytes between its two connections, looking at nothing above TCP but the
    time since the last traffic [ALB-UG; ``lb-reference.md`` §1.7]. ``closed`` is the
    model's ``(closed at, why)`` (:meth:`ApplicationLoadBalancer.idle_closed`), or ``None``.
    """
    if closed is not None:
        closed_at, cause = closed
        return (
            f"{message} (packet {packet}) comes at {time:.3f} on a WebSocket connection the ALB "
            f"had closed at {closed_at:.3f}: {cause}; it would not be carried: the client must "
            "open a new connection and send a new Upgrade request."
        )
    where = f"packet {packet}" + (", as the ALB sends it on to the client" if back else "")
    return (
        f"{message} ({where}) comes after the 101, so it is carried, not read: the ALB "
        f"made this connection's one routing decision at the Upgrade request (packet "
        f"{upgrade_packet}) and copies the frame "
        + (f"from {target} back to the client" if back else f"to {target}")
        + " without reading it (no rule sees a "
        "message), so in effect it is a layer 4 balancer now; the message restarts the idle "
        f"timeout ({idle:g} s without traffic either way closes both connections)."
    )


def alb_protocol_version_why(group: str, version: str, seen: str | None) -> str:
    """What the ALB speaks to the target (``ProtocolVersion``), and whether the capture shows it.

    ``seen`` is the protocol of the ALB's request on its connection to the target, as
    :func:`osilab.balancers.targets.request_protocol` names it (``HTTP/1.1``, ``HTTP/2``,
    ``gRPC``), or ``None``. [ALB-UG load-balancer-target-groups: HTTP1 is the default; an
    HTTP/2 client's request is sent as HTTP/1.1 to an HTTP1 target group.]
    """
    spoken, fits = {
        "HTTP1": ("HTTP/1.1", lambda s: s.startswith("HTTP/1")),
        "HTTP2": ("HTTP/2", lambda s: s in ("HTTP/2", "gRPC")),
        "GRPC": ("gRPC over HTTP/2", lambda s: s == "gRPC"),
    }[version]
    sentence = (
        f"target group {group} has ProtocolVersion {version}"
        + (" (the default)" if version == "HTTP1" else "")
        + f", so the ALB speaks {spoken} to its targets, whatever the client spoke"
    )
    if seen is None:
        return sentence
    if fits(seen):
        return sentence + f"; the capture shows {seen} on the ALB's connection to the target"
    return sentence + (
        f"; the capture shows {seen} on the ALB's connection to the target: the real balancer "
        "spoke another protocol than this configuration says"
    )

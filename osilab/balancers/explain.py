"""The "why" of a decision, in sentences a learner understands.

Each function turns the facts of one decision into one sentence (sometimes two). The
sentences always name the packet, the fields and the values, because the lesson is
*what the balancer could see at that moment*:

- an NLB decides at the SYN from addresses and ports, before any byte of HTTP exists;
- an ALB decides when the request's headers are complete, from host, path, headers...

This module only writes text; it decides nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from osilab.balancers.config import Listener, TargetGroup
from osilab.protocols.messages import HttpRequest
from osilab.streams.keys import FlowKey

__all__ = [
    "NOT_ROUTABLE_REASONS",
    "nlb_flow_why",
    "nlb_tls_note",
    "nlb_health_note",
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
    ``health_note`` is :func:`nlb_health_note`'s, when some targets are down.
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
        "follows it, and the NLB never reads the payload"
    )
    notes = (nlb_tls_note(listener.protocol, listener.port), health_note)
    extras = [note for note in notes if note]
    return sentence + ("; " + "; ".join(extras) if extras else "") + "."


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


def nlb_health_note(targets: Sequence[str], healthy: Sequence[str]) -> str:
    """Why a new flow hashed over fewer targets than are registered, or ``""``.

    >>> nlb_health_note(("192.0.2.11:80", "192.0.2.12:80"), ["192.0.2.12:80"])
    '192.0.2.11:80 unhealthy, so new flows hash over the 1 healthy targets only'
    """
    if len(healthy) >= len(targets):
        return ""
    if not healthy:
        return "every target is unhealthy, so the NLB fails open and uses them all"
    down = [t for t in targets if t not in healthy]
    return f"{', '.join(down)} unhealthy, so new flows hash over the {len(healthy)} healthy targets only"


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

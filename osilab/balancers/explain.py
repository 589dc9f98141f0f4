"""The "why" of a decision, in sentences a learner understands.

Each function turns the facts of one decision into one sentence (sometimes two). The
sentences always name the packet, the fields and the values, because the lesson is
*what the balancer could see at that moment*:

- an NLB decides at the SYN from addresses and ports, before any byte of HTTP exists;
- an ALB decides when the request's headers are complete, from host, path, headers...

This module only writes text; it decides nothing.
"""

from __future__ import annotations

from osilab.protocols.messages import HttpRequest
from osilab.streams.keys import FlowKey

__all__ = [
    "NOT_ROUTABLE_REASONS",
    "nlb_flow_why",
    "nlb_follow_why",
    "nlb_request_why",
    "alb_forward_why",
    "alb_termination_note",
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
    *,
    flow: FlowKey,
    packet: int,
    first_is_syn: bool,
    listener: str,
    target_group: str,
    target: str,
    hash_kind: str,
    method: str,
    tls_note: str = "",
    health_note: str = "",
) -> str:
    """Why an NLB sent a new flow to a target (said at the flow's first packet)."""
    what = "the SYN" if first_is_syn else "the flow's first packet"
    fields = {
        "5-tuple": "protocol, source and destination addresses and ports",
        "5-tuple+seq": "protocol, addresses, ports and the SYN's sequence number",
        "source-ip": "source and destination IP addresses only (source IP affinity)",
        "source-ip-proto": "protocol and source and destination IP addresses (source IP affinity)",
    }[hash_kind]
    sentence = (
        f"the NLB chose {target} (target group {target_group}) at packet {packet}, {what}, "
        f"by hashing the {fields} of {flow.proto.upper()} {_endpoints(flow)} ({method}) "
        f"on listener {listener}; every later packet of this flow follows it, and the NLB "
        "never reads the payload"
    )
    extras = [note for note in (tls_note, health_note) if note]
    return sentence + ("; " + "; ".join(extras) if extras else "") + "."


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


def alb_forward_why(
    *,
    request: HttpRequest,
    rule_why: str,
    target_group: str,
    target: str,
    how: str,
) -> str:
    """Why an ALB forwarded a request where it did."""
    return (
        f"at packet {request.headers_complete_packet} the headers of {request.method} "
        f"{request.target} were complete; {rule_why}; forwarded to target group "
        f"{target_group}, target {target} ({how}); {alb_termination_note(request.flow, target)}."
    )

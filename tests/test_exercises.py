"""Each exercise checker accepts a right answer and explains at least two kinds of wrong one.

The right answers here are worked out from the capture files themselves, by a route
independent of the checker: raw header bytes, the first SYN of a hop, the packet whose
payload completes ``\\r\\n\\r\\n``, the desync classifier run on the captured head bytes.
A re-recorded capture changes the numbers and these tests follow it; nothing here is a
packet number typed in by hand.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from shared_paths import CAPTURES

import osilab
from osilab.errors import UsageError
from osilab.lessons import exercises


def _hop(scenario: str, hop: str) -> list[osilab.Packet]:
    return [
        p
        for p in osilab.read(CAPTURES / scenario / f"{scenario}.pcapng")
        if p.interface_name == hop
    ]


def _tcp(data: bytes) -> tuple[int, int, int, int, bytes]:
    """(source port, destination port, flags, sequence number, payload) of an Ethernet/IPv4/TCP frame."""
    ihl = (data[14] & 0x0F) * 4
    total = struct.unpack("!H", data[16:18])[0]
    tcp = 14 + ihl
    sport, dport, seq = struct.unpack("!HHI", data[tcp : tcp + 8])
    offset = (data[tcp + 12] >> 4) * 4
    flags = data[tcp + 13]
    return sport, dport, flags, seq, data[tcp + offset : 14 + total]


def _is_ipv4_tcp(data: bytes) -> bool:
    return len(data) > 34 and data[12:14] == b"\x08\x00" and data[23] == 6


def _request_ids(scenario: str, suite: str) -> list[str]:
    records = json.loads((CAPTURES / scenario / "client.json").read_text())
    return [r["rid"] for r in records if r["suite"] == suite]


# --------------------------------------------------------------------------- the answers


def right_header_bytes() -> int:
    """Ethernet 14 + IPv4 IHL*4 + TCP data offset*4 of the first frame whose payload is a request."""
    for pkt in _hop("alb", "client-alb"):
        if _is_ipv4_tcp(pkt.data) and _tcp(pkt.data)[4].startswith((b"GET ", b"POST ")):
            ihl = (pkt.data[14] & 0x0F) * 4
            return 14 + ihl + (pkt.data[14 + ihl + 12] >> 4) * 4
    raise AssertionError("no request frame")


def right_nlb_packet() -> int:
    """The first SYN (SYN set, ACK not) of the NLB's client side."""
    for pkt in _hop("nlb", "client-nlb"):
        if _is_ipv4_tcp(pkt.data) and _tcp(pkt.data)[2] & 0x12 == 0x02:
            return pkt.no
    raise AssertionError("no SYN")


def right_alb_packet() -> tuple[int, int]:
    """(first packet, packet completing the head) of the 'slow_head' request, from raw payloads."""
    rid = _request_ids("alb", "slow_head")[0].encode()
    stream: dict[tuple[int, int], bytearray] = {}
    first: dict[tuple[int, int], int] = {}
    seen: set[tuple[tuple[int, int], int]] = set()
    for pkt in _hop("alb", "client-alb"):
        if not _is_ipv4_tcp(pkt.data):
            continue
        sport, dport, _, seq, payload = _tcp(pkt.data)
        if dport != 80 or not payload or ((sport, dport), seq) in seen:
            continue
        seen.add(((sport, dport), seq))
        key = (sport, dport)
        first.setdefault(key, pkt.no)
        stream.setdefault(key, bytearray()).extend(payload)
        if rid in stream[key] and b"\r\n\r\n" in stream[key]:
            return first[key], pkt.no
    raise AssertionError("no slow_head request")


def right_desync_tier() -> str:
    """The guardian's tier for the raw head bytes of the smuggle capture's first request."""
    from osilab.protocols.desync import classify_head

    for pkt in _hop("smuggle", "client-alb"):
        if _is_ipv4_tcp(pkt.data):
            payload = _tcp(pkt.data)[4]
            if payload.startswith(b"POST "):
                head = payload.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                return classify_head(head)[1].klass
    raise AssertionError("no POST in the smuggle capture")


STATIC_RULES = [
    {
        "Priority": "10",
        "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/static/*"]}}],
        "Actions": [{"Type": "forward", "TargetGroupName": "static"}],
    }
]


def _rules(pattern: str, priority: str = "10", field: str = "path-pattern") -> list[dict]:
    return [
        {
            "Priority": priority,
            "Conditions": [{"Field": field, "PathPatternConfig": {"Values": [pattern]}}],
            "Actions": [{"Type": "forward", "TargetGroupName": "static"}],
        }
    ]


# --------------------------------------------------------------------------- the tests


def test_every_exercise_is_listed_and_runs_on_a_bundled_capture() -> None:
    assert exercises.names() == [
        "header-bytes",
        "nlb-decision",
        "alb-decision",
        "nlb-fields",
        "alb-rules",
        "desync-tier",
    ]
    for name in exercises.names():
        ex = exercises.get(name)
        assert ex.path.is_relative_to(CAPTURES), f"{name} runs on {ex.path}"
        assert ex.packets and all(p.interface_name == ex.hop for p in ex.packets)
        assert ex.question and ex.hint
        assert name in ex._repr_html_() and name in str(ex)


def test_an_unknown_exercise_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match="header-bytes"):
        exercises.get("no-such-exercise")


def test_header_bytes() -> None:
    ex = exercises.get("header-bytes")
    right = right_header_bytes()
    assert ex.check(right), ex.check(right).message
    assert f"= {right} bytes" in ex.check(right).message
    forgot_ethernet = ex.check(right - 14)
    assert not forgot_ethernet and "eth header" in forgot_ethernet.message
    minimum_tcp = ex.check(right - 12)  # a 20-byte TCP header instead of 32 (timestamps)
    assert not minimum_tcp and "tcp.hdr_len is 32" in minimum_tcp.message
    whole = ex.check(len(ex.request_packet.data))
    assert not whole and "whole frame" in whole.message
    not_a_number = ex.check("lots")
    assert not not_a_number and "whole number" in not_a_number.message


def test_nlb_decision() -> None:
    ex = exercises.get("nlb-decision")
    right = right_nlb_packet()
    assert ex.check(right) and "SYN" in ex.check(right).message
    assert ex.check(f"#{right}"), "a packet number written the Wireshark way is accepted"
    first_request = ex.requests[0].headers_complete_packet
    at_request = ex.check(first_request)
    assert not at_request and "L7 balancer (ALB)" in at_request.message
    other_hop = ex.check(right + 1)  # the SYN forwarded on the back side, or the SYN-ACK
    assert not other_hop
    assert "another hop" in other_hop.message or "SYN-ACK" in other_hop.message
    assert not ex.check(None) and "packet number" in ex.check(None).message


def test_alb_decision() -> None:
    ex = exercises.get("alb-decision")
    first, complete = right_alb_packet()
    assert first < complete, "the slow head really is split over several packets"
    assert ex.check(complete) and "completes the headers" in ex.check(complete).message
    too_early = ex.check(first)
    assert not too_early and "first bytes" in too_early.message
    syns_of_flow = [
        p.no
        for p in ex.packets
        if p.tcp_flags == 0x02 and p.src_port == ex.request.flow.client.port
    ]
    at_syn = ex.check(syns_of_flow[0])
    assert not at_syn and "NLB decides" in at_syn.message
    assert not ex.check(None) and "packet number" in ex.check(None).message


def test_nlb_fields() -> None:
    ex = exercises.get("nlb-fields")
    right = ["ip.src", "ip.dst", "tcp.srcport", "tcp.dstport"]  # the flow hash (AWS NLB docs)
    assert ex.check(right) and ex.check(", ".join(right))
    with_l7 = ex.check(right + ["http.host"])
    assert not with_l7 and "application-layer" in with_l7.message
    partial = ex.check(["ip.dst", "tcp.dstport"])
    assert not partial and "Missing: ip.src, tcp.srcport" in partial.message
    link = ex.check(right + ["eth.src"])
    assert not link and "rewritten at every IP hop" in link.message
    unknown = ex.check(["ip.src", "url"])
    assert not unknown and "not in it: url" in unknown.message


def test_alb_rules() -> None:
    ex = exercises.get("alb-rules")
    http_requests = [
        r
        for r in json.loads((CAPTURES / "alb" / "client.json").read_text())
        if r["scheme"] == "http"
    ]
    assert len(ex.requests) == len(http_requests), (
        "every plain-HTTP request of the capture is checked"
    )
    static = sum(1 for r in http_requests if r["target"].startswith("/static/"))
    assert static > 0
    assert ex.check(STATIC_RULES), ex.check(STATIC_RULES).message
    assert ex.check(json.dumps({"Rules": STATIC_RULES})), "JSON text and the describe-rules shape"
    no_wildcard = ex.check(_rules("/static"))
    assert not no_wildcard
    assert f"{static} of {len(http_requests)} requests" in no_wildcard.message
    assert "whole path" in no_wildcard.message
    too_wide = ex.check(_rules("/*"))
    assert not too_wide and f"{len(http_requests) - static} of" in too_wide.message
    refused = ex.check(_rules("/static/*", priority="0"))
    assert not refused and "AWS would refuse" in refused.message and "Priority" in refused.message
    not_json = ex.check("{Rules: ")
    assert not not_json and "not valid JSON" in not_json.message


def test_desync_tier() -> None:
    ex = exercises.get("desync-tier")
    right = right_desync_tier()
    assert right != "Compliant", "the capture's smuggling attempt is flagged"
    assert "Transfer-Encoding" in ex.request_head and "Content-Length" in ex.request_head
    assert ex.check(right) and ex.check(right.lower())
    tiers = ["Compliant", "Acceptable", "Ambiguous", "Severe"]
    lenient = ex.check(tiers[tiers.index(right) - 1])
    assert not lenient and "too lenient" in lenient.message
    if right != "Severe":
        strict = ex.check("Severe")
        assert not strict and "stricter" in strict.message
    nonsense = ex.check("dangerous")
    assert not nonsense and "Answer with one of" in nonsense.message


def test_feedback_reads_well_as_text_and_html() -> None:
    feedback = exercises.get("header-bytes").check(1)
    assert str(feedback).startswith("Not yet. ")
    assert "&#10008;" in feedback._repr_html_()
    assert isinstance(Path(exercises.get("header-bytes").path), Path)

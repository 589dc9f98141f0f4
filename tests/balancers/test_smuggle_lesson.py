"""The request-smuggling lesson on the real ``smuggle`` capture: only an L7 balancer can see it.

The lab's client sent ``POST /api/orders`` carrying both ``Content-Length`` (covering a
hidden ``GET /api/items/2``) and ``Transfer-Encoding: chunked`` (ending before it), then an
innocent request on the same connection, once through the ALB role (HAProxy) and once
through the NLB role (nftables). ``captures/README.md`` tells what the real servers did.

What these tests hold the models to:

- the ALB model classifies the outer request as ``Ambiguous`` / ``BothTeClPresent``
  (http-desync-guardian's class for CL+TE) and, in each ``desync_mitigation_mode``, does
  what AWS documents (lb-reference.md 1.8): *monitor* lets the hidden request through,
  *defensive* forwards the outer request and closes the connection, *strictest* blocks it;
- in the default (*defensive*) mode the requests the model forwards are exactly those
  HAProxy's own log says it forwarded, and the ones it throws away are exactly
  ``truth.json``'s ``not_forwarded``;
- the NLB model decides once per connection from addresses and ports alone, so the same
  attack goes through it unseen, and the capture proves the hidden request reached a target.
"""

from __future__ import annotations

import json
import re

import pytest
from balancers.test_balancers_vs_lab import _front, _lab_alb_config, _scenario
from shared_paths import CAPTURES

import osilab
from osilab.balancers import ApplicationLoadBalancer, NetworkLoadBalancer, replay


def _client_notes() -> dict[str, dict]:
    return {r["rid"]: r for r in json.loads((CAPTURES / "smuggle" / "client.json").read_text())}


def _rids(note: str, vip: str) -> list[str]:
    return [
        rid
        for rid, r in _client_notes().items()
        if r["note"] == note and r["destination"].startswith(vip)
    ]


def _alb_replay(mode: str):
    capture, truth = _scenario("smuggle")
    config = _lab_alb_config()
    config["Attributes"] = [{"Key": "routing.http.desync_mitigation_mode", "Value": mode}]
    result = replay(_front(capture, "client-alb"), ApplicationLoadBalancer(config))
    by_rid = {d.request.header("x-request-id"): d for d in result.decisions if d.request}
    return result, by_rid, truth


ALB_VIP = "203.0.113.10"
NLB_VIP = "203.0.113.20"


def test_the_outer_request_is_ambiguous_because_it_has_both_te_and_cl() -> None:
    _, by_rid, _ = _alb_replay("defensive")
    (outer,) = _rids("outer request (CL and TE)", ALB_VIP)
    verdict = by_rid[outer].request.desync
    assert (verdict.klass, verdict.reason) == ("Ambiguous", "BothTeClPresent")


def test_defensive_mode_forwards_exactly_what_haproxy_forwarded() -> None:
    result, by_rid, truth = _alb_replay("defensive")
    (outer,) = _rids("outer request (CL and TE)", ALB_VIP)
    (hidden,) = _rids("hidden inside the outer body", ALB_VIP)
    (after,) = _rids("sent after, same connection", ALB_VIP)

    forwarded = {rid for rid, d in by_rid.items() if d.forwarded}
    thrown_away = {rid for rid, d in by_rid.items() if d.action == "connection-closed"}
    haproxy_forwarded = {rid for rid, r in truth["requests"].items() if r["balancer"] == "alb"}
    assert forwarded == haproxy_forwarded
    assert thrown_away == set(truth["not_forwarded"]) == {hidden, after}
    assert "closes both the client and the target connection" in by_rid[outer].why
    assert "closed it after POST" in by_rid[hidden].why
    # accounting: every request is counted once, under what happened to it
    assert result.accounting == {"routed": len(forwarded), "connection-closed": 2}


def test_strictest_mode_blocks_the_attempt_with_400() -> None:
    _, by_rid, _ = _alb_replay("strictest")
    (outer,) = _rids("outer request (CL and TE)", ALB_VIP)
    (hidden,) = _rids("hidden inside the outer body", ALB_VIP)
    assert (by_rid[outer].action, by_rid[outer].status, by_rid[outer].target) == (
        "blocked",
        400,
        None,
    )
    assert "BothTeClPresent" in by_rid[outer].why
    assert by_rid[hidden].action == "connection-closed"


def test_monitor_mode_lets_the_smuggled_request_through() -> None:
    """Monitor only counts: the hidden request is routed like any other, which is the attack."""
    _, by_rid, _ = _alb_replay("monitor")
    (hidden,) = _rids("hidden inside the outer body", ALB_VIP)
    assert by_rid[hidden].forwarded
    assert by_rid[hidden].target_group == "tg-api"


def test_the_nlb_cannot_see_the_attempt_and_the_hidden_request_reaches_a_target() -> None:
    capture, _ = _scenario("smuggle")
    nlb = NetworkLoadBalancer(
        {
            "Type": "network",
            "TargetGroups": [
                {
                    "Name": "tcp-80",
                    "Protocol": "TCP",
                    "Port": 80,
                    "Targets": ["192.0.2.11:80", "192.0.2.12:80"],
                }
            ],
            "Listeners": [
                {
                    "Protocol": "TCP",
                    "Port": 80,
                    "DefaultActions": [{"Type": "forward", "TargetGroupName": "tcp-80"}],
                }
            ],
        }
    )
    result = replay(_front(capture, "client-nlb"), nlb)
    assert result.decisions, "the NLB decided nothing on the client-nlb hop"
    for decision in result.decisions:
        # one decision per connection, at its SYN, from L3/L4 fields only
        assert decision.unit == "flow" and decision.request is None
        assert all(f.startswith(("ip.", "ipv6.", "tcp.", "udp.")) for f in decision.seen)
    (hidden,) = _rids("hidden inside the outer body", NLB_VIP)
    behind = b"".join(
        p.payload
        for p in osilab.read(capture)
        if p.interface_name in ("nlb-web1", "nlb-web2") and p.payload
    )
    # the bytes of the hidden request crossed the NLB unchanged, inside the POST's body
    assert re.search(rb"GET /api/items/\d+\?rid=" + hidden.encode(), behind)


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-v"])

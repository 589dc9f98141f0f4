"""Oracle: the models against the real balancers of the osilab lab (captures/*/truth.json).

The lab records real traffic through real balancers and logs what they decided
(``captures/README.md``). Configured like them, the models must decide the same:

- the NLB role is nftables ``dnat to jhash ip saddr . tcp sport . ip daddr . tcp dport
  mod 2 seed 0x5115eed``; with ``HashTable: nft-jhash`` the NLB model uses that very
  hash, so every connection must land where the kernel sent it, decided at its SYN;
- the ALB role is HAProxy ``mode http`` with one ACL per AWS condition type and round
  robin backends; the ALB model with the equivalent AWS rules must pick the same rule,
  target group and target for every request it can read.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from shared_paths import CAPTURES

import osilab
from osilab.balancers import ApplicationLoadBalancer, NetworkLoadBalancer, replay
from osilab.lab.configs import ALB_TARGET_GROUPS
from osilab.lab.record import alb_targets

LAB_SEED = 0x05115EED
WEB = ["192.0.2.11", "192.0.2.12"]


def _scenario(name: str) -> tuple:
    capture = CAPTURES / name / f"{name}.pcapng"
    truth = CAPTURES / name / "truth.json"
    if not capture.exists() or not truth.exists():
        pytest.skip(f"the lab capture {capture} is not recorded (osilab lab record)")
    return capture, json.loads(truth.read_text())


def _front(capture, hop: str):
    return (p for p in osilab.read(capture) if p.interface_name == hop)


def test_nlb_model_matches_the_lab_nftables_balancer() -> None:
    capture, truth = _scenario("nlb")
    groups, listeners = [], []
    for port in (80, 443):
        groups.append(
            {
                "Name": f"tcp-{port}",
                "Protocol": "TCP",
                "Port": port,
                "Targets": [f"{ip}:{port}" for ip in WEB],
                "HashTable": "nft-jhash",
                "HashSeed": LAB_SEED,
            }
        )
        listeners.append(
            {
                "Protocol": "TCP",
                "Port": port,
                "DefaultActions": [{"Type": "forward", "TargetGroupName": f"tcp-{port}"}],
            }
        )
    nlb = NetworkLoadBalancer({"Type": "network", "TargetGroups": groups, "Listeners": listeners})
    result = replay(_front(capture, "client-nlb"), nlb)
    decided = {str(d.flow.client): d for d in result.decisions}
    connections = truth["connections"]
    assert len(connections) >= 40
    mismatches = [
        (c["client"], c["target"], decided[c["client"]].target if c["client"] in decided else None)
        for c in connections
        if c["client"] not in decided
        or str(decided[c["client"]].target).split(":")[0] != c["target"].split(":")[0]
    ]
    print(
        f"\nmeasured: NLB model vs nftables: {len(connections) - len(mismatches)}/{len(connections)} connections "
        f"on the same target; accounting {result.accounting}"
    )
    assert mismatches == []
    for decision in result.decisions:
        assert decision.seen == ("ip.src", "tcp.srcport", "ip.dst", "tcp.dstport")
    # every IP packet of the front hop belongs to a decided flow (the rest is ARP)
    assert set(result.accounting) <= {"routed", "non-IP"}
    assert result.routed > 10 * len(connections)


def _lab_alb_config() -> dict:
    rules: list[tuple[str, dict[str, Any], str]] = [
        ("host-header", {"HostHeaderConfig": {"Values": ["admin.example.com"]}}, "tg-admin"),
        (
            "http-header",
            {"HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["1"]}},
            "tg-canary",
        ),
        (
            "http-request-method",
            {"HttpRequestMethodConfig": {"Values": ["DELETE", "PUT"]}},
            "tg-write",
        ),
        (
            "query-string",
            {"QueryStringConfig": {"Values": [{"Key": "version", "Value": "beta"}]}},
            "tg-beta",
        ),
        ("source-ip", {"SourceIpConfig": {"Values": ["198.51.100.8/32"]}}, "tg-office"),
        ("path-pattern", {"PathPatternConfig": {"Values": ["/api/*"]}}, "tg-api"),
    ]
    # The groups' targets as HAProxy's backends list them (the lab renders both from one
    # table): each rule's group on addresses of its own, the instances' secondary ones.
    targets = alb_targets()
    members = {group: [targets[t] for t in names] for group, names in ALB_TARGET_GROUPS.items()}
    http = {
        "Protocol": "HTTP",
        "Port": 80,
        "DefaultActions": [{"Type": "forward", "TargetGroupName": "tg-web"}],
        "Rules": [
            {
                "Priority": str(i),
                "Conditions": [{"Field": field, **config}],
                "Actions": [{"Type": "forward", "TargetGroupName": group}],
            }
            for i, (field, config, group) in enumerate(rules, start=1)
        ],
    }
    https = {**copy.deepcopy(http), "Protocol": "HTTPS", "Port": 443}
    # the mTLS listener (same rules; its certificate check is test_mtls_capture.py's)
    mtls = {**copy.deepcopy(http), "Protocol": "HTTPS", "Port": 8443}
    return {
        "Type": "application",
        "TargetGroups": [
            {"Name": name, "Protocol": "HTTP", "Port": 80, "Targets": [f"{ip}:80" for ip in ips]}
            for name, ips in members.items()
        ],
        "Listeners": [http, https, mtls],
    }


RULE_NAMES = {
    "1": "host",
    "2": "header",
    "3": "method",
    "4": "query",
    "5": "source",
    "6": "path",
    "default": "default",
}


def test_alb_model_matches_the_lab_haproxy_balancer() -> None:
    capture, truth = _scenario("alb")
    try:
        alb = ApplicationLoadBalancer(_lab_alb_config())
        result = replay(
            _front(capture, "client-alb"), alb, keylog=str(CAPTURES / "alb" / "keylog.txt")
        )
    except osilab.OsilabError as exc:
        if "iter_http" in str(exc) or "HTTP reader" in str(exc):
            pytest.skip(f"the HTTP reader is not ready: {exc}")
        raise
    requests = truth["requests"]
    compared, decrypted, wrong = 0, 0, []
    for decision in result.decisions:
        rid = decision.request.header("x-request-id") if decision.request else None
        if rid not in requests:
            continue
        compared += 1
        decrypted += decision.request.flow.server.port in (443, 8443)  # TLS, read with the key log
        real = requests[rid]
        got = (RULE_NAMES[decision.rule or ""], decision.target_group, decision.target)
        if got != (real["rule"], real["target_group"], real["target"]):
            wrong.append((rid, got, (real["rule"], real["target_group"], real["target"])))
    print(
        f"\nmeasured: ALB model vs HAProxy: {compared - len(wrong)}/{compared} requests with the same rule, "
        f"target group and target ({len(requests)} in the truth; {decrypted} of them HTTPS, "
        f"HTTP/1.1 and h2, decrypted with the key log)"
    )
    assert compared == len(requests)  # every request: plain HTTP, and HTTPS via the key log
    assert decrypted >= 32  # the HTTPS connections (HTTP/1.1 and h2) of the scenario
    assert wrong == []
    assert all(
        d.decided_at == d.request.headers_complete_packet for d in result.decisions if d.request
    )

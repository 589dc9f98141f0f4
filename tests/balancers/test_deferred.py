"""Work a balancer defers or compiles (issue 22) gives what the eager work gave.

- :class:`~osilab.balancers.rules.CompiledRules` picks the same rule and reports the same
  ``seen`` as :func:`~osilab.balancers.rules.evaluate_rules`, for every way through a
  rule set (table-driven: each request stops at a different condition).
- A :class:`~osilab.balancers.decision.DeferredDecision` reads, compares, prints and
  serialises as the eager :class:`~osilab.balancers.decision.Decision` of the same facts,
  on the ALB's and the NLB's real decisions over the bundled captures.
"""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from shared_paths import CAPTURES

import osilab
from osilab.balancers import ApplicationLoadBalancer, NetworkLoadBalancer, default_config, replay
from osilab.balancers.compare import servers_seen
from osilab.balancers.config import load_config
from osilab.balancers.decision import Decision, DeferredDecision
from osilab.balancers.rules import CompiledRules, evaluate_rules
from osilab.protocols.messages import HttpRequest
from osilab.streams.keys import Endpoint, FlowKey

CONFIG = load_config({
    "Type": "application",
    "TargetGroups": [{"Name": "web", "Targets": ["192.0.2.11:80"]},
                     {"Name": "api", "Targets": ["192.0.2.12:80"]}],
    "Listeners": [{"Protocol": "HTTP", "Port": 80,
                   "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}],
                   "Rules": [
        {"Priority": "5", "Conditions": [
            {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}},
            {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/upload*"]}}],
         "Actions": [{"Type": "forward", "TargetGroupName": "api"}]},
        {"Priority": "10", "Conditions": [
            {"Field": "host-header", "HostHeaderConfig": {"Values": ["api.*"]}},
            {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/v?/*", "/api/*"]}}],
         "Actions": [{"Type": "forward", "TargetGroupName": "api"}]},
        {"Priority": "20", "Conditions": [
            {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8", "fd00::/8"]}}],
         "Actions": [{"Type": "forward", "TargetGroupName": "api"}]},
        {"Priority": "30", "Conditions": [
            {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Beta",
                                                           "Values": ["on"]}},
            {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "v",
                                                                         "Value": "2"}]}}],
         "Actions": [{"Type": "forward", "TargetGroupName": "api"}]},
    ]}],
})  # fmt: skip

#: (client ip, method, target, headers): each stops the walk through the rules elsewhere.
REQUESTS = [
    ("198.51.100.7", "GET", "/", (("Host", "shop.example"),)),
    ("198.51.100.7", "POST", "/upload/a", (("Host", "shop.example"),)),
    ("198.51.100.7", "POST", "/other", (("Host", "api.example"),)),
    ("198.51.100.7", "GET", "/v2/items", (("Host", "api.example"),)),
    ("198.51.100.7", "GET", "/api/items", (("Host", "API.example"),)),
    ("198.51.100.7", "GET", "/web", (("Host", "api.example"),)),
    ("10.1.2.3", "GET", "/", (("Host", "shop.example"),)),
    ("fd00::7", "GET", "/", (("Host", "shop.example"),)),
    ("2001:db8::7", "GET", "/", (("Host", "shop.example"),)),
    ("198.51.100.7", "GET", "/?v=2", (("Host", "x"), ("X-Beta", "on"))),
    ("198.51.100.7", "GET", "/?v=3", (("Host", "x"), ("X-Beta", "on"))),
    ("198.51.100.7", "GET", "/", (("Host", "x"), ("X-Beta", "off"))),
    ("198.51.100.7", "GET", "/", ()),
]


@pytest.mark.parametrize(("client", "method", "target", "headers"), REQUESTS)
def test_compiled_rules_pick_and_read_as_evaluate_rules(
    client: str, method: str, target: str, headers: tuple[tuple[str, str], ...]
) -> None:
    flow = FlowKey("tcp", Endpoint(client, 40000), Endpoint("203.0.113.20", 80))
    request = HttpRequest(flow, 0, method, target, "HTTP/1.1", headers, 1, 1, 0.0)
    rules = CONFIG.listeners[0].rules
    compiled = CompiledRules(rules, read_first=("tcp.dstport",))
    eager = evaluate_rules(rules, request)
    for _ in range(2):  # the second time ``seen`` comes from the cache
        rule, seen = compiled.match(request)
        assert rule is eager.rule
        assert seen == ("tcp.dstport",) + tuple(f for f in eager.seen if f != "tcp.dstport")


def _eager(decision: Decision) -> Decision:
    """The same facts in a plain Decision (every deferred field built now)."""
    return Decision(**{f.name: getattr(decision, f.name) for f in dataclasses.fields(Decision)})


def _same(decision: Decision) -> None:
    eager = _eager(decision)
    assert decision == eager and eager == decision and hash(decision) == hash(eager)
    assert decision.to_json() == eager.to_json()
    assert decision.text() == eager.text()
    assert pickle.loads(pickle.dumps(decision)).to_json() == eager.to_json()


@pytest.mark.parametrize("path", sorted(CAPTURES.glob("*/*.pcapng")), ids=lambda p: p.parent.name)
def test_deferred_decisions_read_as_eager_ones(path) -> None:  # type: ignore[no-untyped-def]
    servers = [s for s in servers_seen(osilab.read(path)) if s[2] == "tcp"]
    deferred = 0
    for kind, model in (("application", ApplicationLoadBalancer), ("network", NetworkLoadBalancer)):
        config = default_config(kind, servers or [("192.0.2.10", 80, "tcp")])
        balancer = model(config, keep_decisions=None)
        for decision in replay(osilab.read(path), balancer).decisions:
            deferred += isinstance(decision, DeferredDecision)
            _same(decision)
            _same(decision)  # built again (NLB) or kept (ALB): the same both times
    if deferred == 0:
        pytest.skip(f"{path.name}: no decision to compare")


def test_keep_built_false_builds_each_read_and_keeps_nothing() -> None:
    calls: list[int] = []

    def why() -> str:
        calls.append(1)
        return "because"

    flow = FlowKey("tcp", Endpoint("198.51.100.7", 1), Endpoint("203.0.113.20", 80))
    kept = DeferredDecision(unit="flow", flow=flow, request=None, decided_at=1, time=0.0,
                            target_group="web", target="t", seen=(), why_of=why)  # fmt: skip
    assert not calls and kept.why == kept.why == "because" and len(calls) == 1
    again = DeferredDecision(unit="flow", flow=flow, request=None, decided_at=1, time=0.0,
                             target_group="web", target="t", seen=(), why_of=why,
                             keep_built=False)  # fmt: skip
    assert again.why == again.why == "because" and len(calls) == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        kept.why = "other"  # type: ignore[misc]

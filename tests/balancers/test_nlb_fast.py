"""The NLB's fast path (``feed_flows``) makes exactly the decisions of the full path.

``replay(osilab.read(path), nlb)`` feeds the NLB from the record walk
(:func:`osilab.capture.facts.flow_facts` -> :meth:`NetworkLoadBalancer.feed_flows`);
``replay(iter(capture), nlb)`` feeds it full packets one by one (``feed_packet``). On
every bundled and third-party capture both must give the same decisions (packet, flow,
target, why) and the same accounting; also with the flow-table sweep happening every few
packets, and with a health change pending (which sends packets down the full path).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_paths import CAPTURES, thirdparty_captures

import osilab
from osilab.balancers import NetworkLoadBalancer, default_config, replay
from osilab.balancers.compare import servers_seen

CAPTURE_FILES = thirdparty_captures() + sorted(CAPTURES.glob("*/*.pcapng"))


def _facts(result) -> tuple:  # type: ignore[no-untyped-def]
    decisions = [(d.decided_at, str(d.flow), d.target, d.why, d.time) for d in result.decisions]
    return decisions, result.accounting, result.total


def _config(path: Path, *, health: bool = False) -> dict:
    # A capture with no server gets one listener, never hit (the default invents nothing).
    base = default_config("network", servers_seen(osilab.read(path)) or [("192.0.2.10", 80, "tcp")])
    config = {
        "Type": "network",
        "TargetGroups": [{"Name": g.name, "Protocol": g.protocol, "Port": g.port,
                          "Targets": list(g.targets)} for g in base.target_groups],
        "Listeners": [{"Protocol": li.protocol, "Port": li.port,
                       "DefaultActions": [{"Type": "forward",
                                           "TargetGroupName": li.default_action.target_groups[0].name}]}
                      for li in base.listeners],
    }  # fmt: skip
    if health:
        group = config["TargetGroups"][0]
        group["HealthChanges"] = [{"Time": 0.001, "Target": group["Targets"][0], "State": "unhealthy"},
                                  {"Time": 0.5, "Target": group["Targets"][0], "State": "healthy"}]  # fmt: skip
    return config


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fast_and_full_paths_decide_the_same(path: Path) -> None:
    config = _config(path)
    fast = replay(osilab.read(path), NetworkLoadBalancer(config))
    full = replay(iter(osilab.read(path)), NetworkLoadBalancer(config))
    assert _facts(fast) == _facts(full)


@pytest.mark.parametrize("path", sorted(CAPTURES.glob("*/*.pcapng")), ids=lambda p: p.parent.name)
def test_same_decisions_with_sweeps_and_health_changes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import osilab.balancers.nlb as nlb_module

    monkeypatch.setattr(nlb_module, "SWEEP_EVERY", 7)
    config = _config(path, health=True)
    fast = replay(osilab.read(path), NetworkLoadBalancer(config))
    full = replay(iter(osilab.read(path)), NetworkLoadBalancer(config))
    assert _facts(fast) == _facts(full)


def test_feed_flows_counts_what_it_was_fed() -> None:
    path = CAPTURES / "nlb" / "nlb.pcapng"
    from osilab.capture.facts import flow_facts

    nlb = NetworkLoadBalancer(_config(path))
    fed = nlb.feed_flows(flow_facts(osilab.read(path)))
    assert fed == sum(1 for _ in osilab.read(path)) == nlb.total

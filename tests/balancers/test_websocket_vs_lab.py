"""After the Upgrade, an ALB is an L4 balancer: the models against the lab's websocket scenario.

captures/websocket was recorded by ``osilab lab record --scenario websocket``: aiohttp
WebSocket servers behind nginx, reached through the ALB role's WebSocket listener (HAProxy
``mode http``, one rule on ``/ws/*``, ``timeout tunnel`` as the idle timeout) and through
the NLB role (nftables). The configs beside the capture are what the lab rendered; with
them the models must send each connection where the real balancer did (truth.json: the
HAProxy log for the ALB, the back side's first SYN for the NLB), with one decision per
connection -- at the Upgrade request for the ALB, at the SYN for the NLB -- and no decision
for any of the many messages that followed.
"""

from __future__ import annotations

import json

import pytest
from shared_paths import CAPTURES

import osilab
from osilab.balancers import ApplicationLoadBalancer, NetworkLoadBalancer, replay
from osilab.balancers.config.beside import config_beside
from osilab.pipeline.websocket import iter_websocket

FOLDER = CAPTURES / "websocket"
CAPTURE = FOLDER / "websocket.pcapng"


@pytest.fixture(scope="module")
def truth() -> dict:
    if not CAPTURE.exists():
        pytest.skip("captures/websocket is not recorded (osilab lab record --scenario websocket)")
    return json.loads((FOLDER / "truth.json").read_text())


def _hop(name: str):
    return (p for p in osilab.read(CAPTURE) if p.interface_name == name)


def test_the_alb_decides_once_at_the_upgrade_and_says_what_follows(truth):
    config = json.loads(config_beside(CAPTURE, "alb").read_text())
    result = replay(_hop("client-alb"), ApplicationLoadBalancer(config))
    alb = {rid: v for rid, v in truth["requests"].items() if v["balancer"] == "alb"}
    decided = {d.request.query.removeprefix("rid="): d for d in result.decisions}
    assert len(result.decisions) == len(alb) >= 4  # one per connection, none per message
    for rid, real in alb.items():
        decision = decided[rid]
        assert (decision.target_group, decision.target) == (real["target_group"], real["target"]), rid
        assert "one routing decision" in decision.why and "without being read" in decision.why
    messages = [m for flow, m in iter_websocket(osilab.read(CAPTURE))]
    on_front = [m for m in messages if m.flow.server.port == 8080 and m.flow.server.ip == "203.0.113.10"]
    print(f"\nmeasured: ALB model vs HAProxy: {len(alb)}/{len(alb)} WebSocket connections on the same "
          f"target, {len(result.decisions)} decisions for {len(on_front)} messages on client-alb")  # fmt: skip
    assert len(on_front) > 5 * len(alb)


def test_the_nlb_decides_at_the_syn_as_for_any_flow(truth):
    config = json.loads(config_beside(CAPTURE, "nlb").read_text())
    result = replay(_hop("client-nlb"), NetworkLoadBalancer(config))
    decided = {str(d.flow.client): d.target for d in result.decisions}
    connections = [c for c in truth["connections"] if c["balancer"] == "nlb"]
    assert connections and {c["client"]: c["target"] for c in connections} == {
        c["client"]: decided[c["client"]] for c in connections
    }


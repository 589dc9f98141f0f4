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
from osilab.capture.packet import TCP_FIN, TCP_RST
from osilab.pipeline.websocket import iter_websocket
from osilab.streams.keys import Direction

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



def _first_fin(flow) -> tuple[float, bool]:
    """(time, sent by the balancer) of the first FIN or RST on ``flow`` as client-alb shows it."""
    for packet in _hop("client-alb"):
        ends = (packet.tcp_flags or 0) & (TCP_FIN | TCP_RST)
        ports = {packet.src_port, packet.dst_port}
        if ends and ports == {flow.client.port, flow.server.port}:
            return packet.time, packet.src_port == flow.server.port
    raise AssertionError(f"{flow}: no FIN or RST on client-alb")


def test_the_alb_closes_an_idle_websocket_by_its_idle_timeout(truth):
    """HAProxy's ``timeout tunnel`` is the lab's idle timeout (3 s in alb.config.json): the
    connection the client left idle (w0004) is closed by the balancer 3 s after its last
    message; the others are closed by the client first. The model, fed every message of
    each connection at the capture's times, must carry all of them and close the idle one
    when HAProxy did; a message after that would not be carried."""
    config = json.loads(config_beside(CAPTURE, "alb").read_text())
    idle = float(config["Attributes"]["idle_timeout.timeout_seconds"])
    alb = ApplicationLoadBalancer(config)
    result = replay(_hop("client-alb"), alb)
    by_flow = {d.flow: d.request.query.removeprefix("rid=") for d in result.decisions}
    messages: dict = {}
    for flow, message in iter_websocket(_hop("client-alb")):
        messages.setdefault(flow, []).append(message)
    client = {r["rid"]: r for r in json.loads((FOLDER / "client.json").read_text())}
    agreed = 0
    for flow, rid in by_flow.items():
        assert all(alb.idle_closed(flow, m.time) is None for m in messages[flow]), rid
        fin_time, by_balancer = _first_fin(flow)
        real_closer = client[rid]["extra"]["closed_by"]
        handshake = [m for m in messages[flow] if m.kind == "close"]
        closed = alb.idle_closed(flow, fin_time + 0.05)
        if real_closer == "balancer":
            # No closing handshake (RFC 6455 §7): HAProxy's FIN, on the idle timeout, ends it.
            assert not handshake and by_balancer, rid
            assert closed is not None and "idle_timeout.timeout_seconds 3" in closed[1], rid
            assert closed[0] == pytest.approx(messages[flow][-1].time + idle)
            assert abs(closed[0] - fin_time) < 0.05, (rid, closed[0], fin_time)  # HAProxy's FIN
            late = alb.idle_closed(flow, closed[0] + 1.0)
            assert late is not None and late[0] == closed[0]  # still closed: not carried
        else:
            # The client began the closing handshake (its Close was carried, like every
            # message) before the idle timeout; the server then ends TCP (RFC 6455 §7.1.1).
            assert handshake and handshake[0].direction is Direction.TO_SERVER, rid
            assert closed is None, rid
        agreed += 1
    idle_ones = [rid for rid in by_flow.values() if client[rid]["extra"]["closed_by"] == "balancer"]
    print(f"\nmeasured: ALB model vs HAProxy: {agreed}/{len(by_flow)} WebSocket connections closed "
          f"by the same side at the same time ({len(idle_ones)} by the idle timeout)")  # fmt: skip
    assert idle_ones and agreed == len(by_flow)

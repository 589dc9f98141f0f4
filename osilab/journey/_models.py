"""Ask the balancer models why a balancer did what the capture shows.

The journey *sees* what a balancer did (the packets on both of its sides); the models of
:mod:`osilab.balancers` *explain* it, in the one sentence of their
:class:`~osilab.balancers.decision.Decision`. This module feeds a model what the real
balancer was fed on the client-side hop and returns the decision for the journey's
request or flow:

* the ALB model gets every HTTP request that reached the ALB's address on that hop, in
  order (round robin depends on the requests before), each after its connection's SYN;
* the NLB model gets every packet of that hop (it decides at each flow's SYN);
* after a WebSocket Upgrade (:func:`alb_message`) the ALB model, which decided once at the
  Upgrade request, is told of every message on that connection up to the one shown: it
  carries them unread, unless its idle timeout had closed the connection first.

Both run the configuration the lab wrote beside the capture (``alb.config.json``,
``nlb.config.json``: :func:`osilab.balancers.config.beside.config_beside`), so the model
and the real balancer run the same listener rules and targets. A model is a model: when
its target differs from the one the capture shows, the journey says so rather than
pretending.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from osilab.balancers import (
    ApplicationLoadBalancer,
    BalancerConfig,
    Decision,
    NetworkLoadBalancer,
    explain,
)
from osilab.journey._index import CaptureIndex, Exchange
from osilab.protocols import AppMessage, Direction
from osilab.streams.keys import FlowKey

__all__ = [
    "alb_decision",
    "alb_message",
    "nlb_decision",
    "nlb_flow_decisions",
    "DECIDE",
    "CONFIG_KINDS",
]


def alb_decision(index: CaptureIndex, leg: Exchange, config: BalancerConfig) -> Decision | None:
    """The ALB model's decision for ``leg``'s request (``None`` if the model never saw it)."""
    return _alb_at(index, leg, config)[1]


def alb_message(
    index: CaptureIndex, leg: Exchange, config: BalancerConfig, message: AppMessage
) -> Decision | None:
    """The ALB model on ``message``, a WebSocket message after ``leg``'s Upgrade was answered
    101 (``unit="message"``): carried unread to the Upgrade's target (``action="forward"``),
    or not carried because the idle timeout had closed the connection (``"idle-timeout"``).
    ``None`` when the model did not forward the Upgrade request."""
    alb, upgrade = _alb_at(index, leg, config)
    if upgrade is None or upgrade.target is None or leg.response is None:
        return None
    flow = leg.flow.key
    alb.response(leg.response)  # the 101: the last HTTP traffic on the connection
    for earlier in index.websocket.get(flow, ()):
        if earlier is message:
            break
        alb.idle_closed(flow, earlier.time)  # each message, either way, is traffic
    closed = alb.idle_closed(flow, message.time)
    listener = alb.config.listener(flow.server.port, "tcp")
    why = explain.alb_tunnel_why(
        message=message.summary, packet=message.last_packet, time=message.time,
        upgrade_packet=upgrade.decided_at, target=upgrade.target,
        idle=listener.idle_timeout if listener is not None else 60.0, closed=closed,
        back=message.direction is Direction.TO_CLIENT,
    )  # fmt: skip
    return Decision(
        unit="message", flow=flow, request=upgrade.request, decided_at=message.last_packet,
        time=message.time, target_group=upgrade.target_group,
        target=upgrade.target if closed is None else None, seen=("tcp.stream", "frame.time"),
        why=why, action="forward" if closed is None else "idle-timeout",
        first_packet=message.first_packet, listener=upgrade.listener,
    )  # fmt: skip


def _alb_at(
    index: CaptureIndex, leg: Exchange, config: BalancerConfig
) -> tuple[ApplicationLoadBalancer, Decision | None]:
    """An ALB model fed ``leg``'s hop up to ``leg``'s request, and its decision for it."""
    alb = ApplicationLoadBalancer(config)
    vip, hop = leg.flow.key.server, leg.flow.key.interface
    for exchange in index.exchanges:
        key = exchange.flow.key
        if key.interface != hop or key.server != vip:
            continue
        if exchange.flow.syn_packet is not None:
            alb.connection_opened(key, exchange.flow.syn_packet)
        decision = alb.request(exchange.request)
        if exchange is leg:
            return alb, decision
        if exchange.response is not None:
            alb.response(exchange.response)
    return alb, None


def nlb_decision(index: CaptureIndex, leg: Exchange, config: BalancerConfig) -> Decision | None:
    """The NLB model's decision for the flow carrying ``leg`` (``None`` if it made none)."""
    return nlb_flow_decisions(index, (leg.flow.key,), config)[leg.flow.key]


def nlb_flow_decisions(
    index: CaptureIndex, flows: Iterable[FlowKey], config: BalancerConfig
) -> dict[FlowKey, Decision | None]:
    """The NLB model's decision for each of ``flows`` (client -> balancer, all on one hop),
    the model fed every packet of that hop once. A QUIC connection that migrated is two
    flows (two 5-tuples): the model decides each afresh at its first datagram, and its why
    says which field decided (the 5-tuple, or the server ID in the connection ID)."""
    wanted = tuple(dict.fromkeys(flows))
    nlb = NetworkLoadBalancer(config)
    for interface in dict.fromkeys(key.interface for key in wanted):
        for packet in index.hop_packets(interface):
            nlb.feed_packet(packet)
    return {key: nlb.flow_decision(key) for key in wanted}


#: Balancer kind (the name of its config file beside the capture) -> its model's question.
DECIDE: Mapping[str, Callable[[CaptureIndex, Exchange, BalancerConfig], Decision | None]] = (
    MappingProxyType({"alb": alb_decision, "nlb": nlb_decision})
)

#: Every balancer config a journey reads beside a capture: the kinds of :data:`DECIDE`, and
#: ``nlb-quic`` (the quic scenario's QUIC-aware balancer, an NLB with a QUIC listener; AWS
#: allows no QUIC listener beside a UDP one, so the lab writes it as a second NLB).
CONFIG_KINDS = (*DECIDE, "nlb-quic")

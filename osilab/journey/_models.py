"""Ask the balancer models why a balancer did what the capture shows.

The journey *sees* what a balancer did (the packets on both of its sides); the models of
:mod:`osilab.balancers` *explain* it, in the one sentence of their
:class:`~osilab.balancers.decision.Decision`. This module feeds a model what the real
balancer was fed on the client-side hop and returns the decision for the journey's
request or flow:

* the ALB model gets every HTTP request that reached the ALB's address on that hop, in
  order (round robin depends on the requests before), each after its connection's SYN;
* the NLB model gets every packet of that hop (it decides at each flow's SYN).

Both run the configuration the lab wrote beside the capture (``alb.config.json``,
``nlb.config.json``: :func:`osilab.balancers.config.beside.config_beside`), so the model
and the real balancer run the same listener rules and targets. A model is a model: when
its target differs from the one the capture shows, the journey says so rather than
pretending.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from osilab.balancers import (
    ApplicationLoadBalancer,
    BalancerConfig,
    Decision,
    NetworkLoadBalancer,
)
from osilab.journey._index import CaptureIndex, Exchange

__all__ = ["alb_decision", "nlb_decision", "DECIDE"]


def alb_decision(index: CaptureIndex, leg: Exchange, config: BalancerConfig) -> Decision | None:
    """The ALB model's decision for ``leg``'s request (``None`` if the model never saw it)."""
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
            return decision
        if exchange.response is not None:
            alb.response(exchange.response)
    return None


def nlb_decision(index: CaptureIndex, leg: Exchange, config: BalancerConfig) -> Decision | None:
    """The NLB model's decision for the flow carrying ``leg`` (``None`` if it made none)."""
    nlb = NetworkLoadBalancer(config)
    for packet in index.hop_packets(leg.flow.key.interface):
        nlb.feed_packet(packet)
    return nlb.flow_decision(leg.flow.key)


#: Balancer kind (the name of its config file beside the capture) -> its model's question.
DECIDE: Mapping[str, Callable[[CaptureIndex, Exchange, BalancerConfig], Decision | None]] = (
    MappingProxyType({"alb": alb_decision, "nlb": nlb_decision})
)
